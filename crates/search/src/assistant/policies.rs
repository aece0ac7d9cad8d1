//! The project's policy documents: `policies/*.md`, split into sections at their `##`
//! headings, each section one citable fact (`policies/returns.zh.md#七天无理由退货`).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Serialize;

use crate::tokenizer::{is_han, term_set};
use crate::SearchError;

/// One section of a policy document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicySection {
    /// Path relative to the project (`policies/returns.en.md`).
    pub file: String,
    pub heading: String,
    pub body: String,
    /// "zh" when the section is mostly Chinese, else "en".
    pub language: &'static str,
}

impl PolicySection {
    /// How an answer cites it.
    pub fn citation(&self) -> String {
        format!("{}#{}", self.file, self.heading)
    }
}

pub fn language_of(text: &str) -> &'static str {
    let han = text.chars().filter(|c| is_han(*c)).count();
    let latin = text.chars().filter(|c| c.is_ascii_alphabetic()).count();
    if han * 3 >= latin && han > 0 {
        "zh"
    } else {
        "en"
    }
}

/// Every section of every `*.md` under `dir` (none when the folder does not exist).
pub fn load_policies(project_root: &Path) -> Result<Vec<PolicySection>, SearchError> {
    let dir = project_root.join("policies");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|e| SearchError::io(&path, e))?;
        let rel = format!(
            "policies/{}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        out.extend(sections(&rel, &text));
    }
    Ok(out)
}

/// The `##` sections of one document (a document without any is one section under its
/// title, or its file name).
pub fn sections(file: &str, text: &str) -> Vec<PolicySection> {
    let mut out: Vec<PolicySection> = Vec::new();
    let mut title = file.to_string();
    let mut current: Option<(String, String)> = None;
    let push = |heading: String, body: String, out: &mut Vec<PolicySection>| {
        let body = body.trim().to_string();
        if !body.is_empty() {
            out.push(PolicySection {
                file: file.to_string(),
                language: language_of(&format!("{heading} {body}")),
                heading,
                body,
            });
        }
    };
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            if let Some((heading, body)) = current.take() {
                push(heading, body, &mut out);
            }
            current = Some((h.trim().to_string(), String::new()));
        } else if let Some(h) = line.strip_prefix("# ") {
            title = h.trim().to_string();
        } else {
            let (_, body) = current.get_or_insert_with(|| (title.clone(), String::new()));
            body.push_str(line);
            body.push('\n');
        }
    }
    if let Some((heading, body)) = current {
        push(heading, body, &mut out);
    }
    out
}

/// The sections with each one's lexical overlap with a question: the summed inverse
/// section frequency of the question's terms the section has, leaving out the terms
/// `framing` names (words of asking, which match policy prose by chance: "can", "能").
pub fn lexical_scores(
    sections: &[PolicySection],
    question: &str,
    framing: &dyn Fn(&str) -> bool,
) -> Vec<f64> {
    let sets: Vec<HashSet<String>> = sections
        .iter()
        .map(|s| term_set(&format!("{} {}", s.heading, s.body)))
        .collect();
    let mut df: HashMap<&str, usize> = HashMap::new();
    for set in &sets {
        for t in set {
            *df.entry(t.as_str()).or_insert(0) += 1;
        }
    }
    let n = sections.len() as f64;
    let q: HashSet<String> = term_set(question)
        .into_iter()
        .filter(|t| !framing(t))
        .collect();
    sets.iter()
        .map(|set| {
            q.iter()
                .filter(|t| set.contains(*t))
                .map(|t| (1.0 + n / df[t.as_str()] as f64).ln())
                .sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_at_second_level_headings() {
        let s = sections(
            "policies/r.md",
            "# Policies\n\nintro\n\n## Returns\n\nSend it back.\n\n## 退款\n\n三天到账。\n",
        );
        assert_eq!(s.len(), 3);
        assert_eq!(s[1].citation(), "policies/r.md#Returns");
        assert_eq!(s[2].language, "zh");
        let scores = lexical_scores(&s, "how do I send it back", &|_| false);
        assert!(scores[1] > scores[2]);
        let scores = lexical_scores(&s, "how do I send it back", &|t| t == "back");
        assert_eq!(scores[1], lexical_scores(&s, "send it", &|_| false)[1]);
    }
}
