//! Attribute understanding: colour and capacity words in a query, in either language, become
//! filters, so "黑色 256G" cannot return the white 128 GB variant of the right phone.
//!
//! A word becomes a filter only when the catalogue has products with that value (a query for
//! "red" in a shop that sells no red products is left as text); the words of a filter leave
//! the lexical query, since every result now has them.

use std::collections::{BTreeSet, HashMap};

use crate::document::LearnedAliases;
use crate::tokenizer::{capacity_term, fold, terms};

/// Built-in colour words per canonical colour (the golden records' lower-case English): the
/// generator's and the big platforms' spellings. A project's learned aliases add to them.
const COLOURS: &[(&str, &[&str])] = &[
    (
        "black",
        &[
            "black",
            "黑色",
            "黑",
            "曜石黑",
            "午夜黑",
            "亮黑色",
            "雅川青",
        ],
    ),
    ("white", &["white", "白色", "白", "珍珠白", "雪域白"]),
    ("blue", &["blue", "蓝色", "蓝", "远峰蓝", "天空蓝"]),
    ("purple", &["purple", "紫色", "紫", "暗紫色", "流光紫"]),
    ("green", &["green", "绿色", "绿", "苍岭绿"]),
    ("gold", &["gold", "golden", "金色", "金", "香槟金"]),
    ("silver", &["silver", "银色", "银"]),
    ("grey", &["grey", "gray", "灰色", "灰", "深空灰", "星空灰"]),
    ("red", &["red", "红色", "红"]),
    ("pink", &["pink", "粉色", "粉"]),
];

/// The built-in spellings of a canonical colour.
pub fn colour_words(canonical: &str) -> Vec<&'static str> {
    COLOURS
        .iter()
        .find(|(c, _)| *c == canonical)
        .map(|(_, w)| w.to_vec())
        .unwrap_or_default()
}

/// What the catalogue has: the values a query word may turn into a filter.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    /// Folded spelling (one index term) → canonical colour.
    colour_of: HashMap<String, String>,
    colours: BTreeSet<String>,
    /// Canonical capacity term (`256gb`) → the golden form (`256GB`).
    capacity_of: HashMap<String, String>,
}

impl Vocabulary {
    pub fn new<'a>(
        colours: impl IntoIterator<Item = &'a str>,
        capacities: impl IntoIterator<Item = &'a str>,
        aliases: &LearnedAliases,
    ) -> Self {
        let mut v = Vocabulary {
            colours: colours.into_iter().map(|c| c.to_lowercase()).collect(),
            ..Vocabulary::default()
        };
        // Keyed by the index term of each spelling too: "purple" is the term "purpl".
        let mut add = |spelling: &str, canonical: &str| {
            let mut keys = vec![fold(spelling)];
            keys.extend(terms(spelling).into_iter().map(|t| t.text));
            for k in keys {
                v.colour_of
                    .entry(k)
                    .or_insert_with(|| canonical.to_string());
            }
        };
        for (canonical, words) in COLOURS {
            for w in *words {
                add(w, canonical);
            }
        }
        for (spelling, canonical) in aliases.pairs("color") {
            add(&spelling, &canonical);
        }
        for c in capacities {
            if let Some(term) = terms(c).first() {
                v.capacity_of.insert(term.text.clone(), c.to_string());
            }
        }
        v
    }

    /// Whether `term` names a colour or a capacity the catalogue has.
    pub fn is_attribute(&self, term: &str) -> bool {
        self.colour(term).is_some()
            || capacity_term(term).is_some_and(|c| self.capacity_of.contains_key(&c))
    }

    fn colour(&self, word: &str) -> Option<&String> {
        self.colour_of
            .get(word)
            .filter(|c| self.colours.contains(*c))
    }
}

/// A query split into what is searched as text and what became a filter.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Understood {
    /// The query with the filter words taken out.
    pub text: String,
    pub color: Option<String>,
    pub capacity: Option<String>,
    /// The query words that became filters, as written.
    pub filter_words: Vec<String>,
}

/// Finds the colour and capacity words of `query`.
pub fn understand(query: &str, vocabulary: &Vocabulary) -> Understood {
    let mut out = Understood::default();
    let mut kept: Vec<String> = Vec::new();
    let folded = fold(query);
    // Whole words of the query (spaces and punctuation separate); a word that holds a colour
    // glued to other text ("紫色256g") is looked at term by term.
    for word in folded.split(|c: char| c.is_whitespace() || ",，;；/|".contains(c)) {
        if word.is_empty() {
            continue;
        }
        let word_terms = terms(word);
        let mut rest: Vec<String> = Vec::new();
        let mut taken = false;
        for t in &word_terms {
            if out.color.is_none() {
                if let Some(c) = vocabulary.colour(&t.text) {
                    out.color = Some(c.clone());
                    taken = true;
                    continue;
                }
            }
            if out.capacity.is_none() {
                if let Some(cap) =
                    capacity_term(&t.text).and_then(|c| vocabulary.capacity_of.get(&c))
                {
                    out.capacity = Some(cap.clone());
                    taken = true;
                    continue;
                }
            }
            rest.push(t.text.clone());
        }
        if taken {
            out.filter_words.push(word.to_string());
            if !rest.is_empty() {
                kept.push(rest.join(" "));
            }
        } else {
            kept.push(word.to_string());
        }
    }
    out.text = kept.join(" ");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocabulary() -> Vocabulary {
        Vocabulary::new(
            ["black", "white", "purple"],
            ["128GB", "256GB", "1024GB"],
            &LearnedAliases::default(),
        )
    }

    #[test]
    fn colour_and_capacity_words_in_either_language_become_filters() {
        let u = understand("华为 mate 50 紫色 256G", &vocabulary());
        assert_eq!(u.color.as_deref(), Some("purple"));
        assert_eq!(u.capacity.as_deref(), Some("256GB"));
        assert_eq!(u.text, "华为 mate 50");
        let u = understand("purple Mate 50", &vocabulary());
        assert_eq!(u.color.as_deref(), Some("purple"));
        let u = understand("Black iPhone 15 1TB", &vocabulary());
        assert_eq!(
            (u.color.as_deref(), u.capacity.as_deref()),
            (Some("black"), Some("1024GB"))
        );
        assert_eq!(u.text, "iphone 15");
    }

    #[test]
    fn values_the_catalogue_lacks_stay_text() {
        let u = understand("red phone 64GB", &vocabulary());
        assert_eq!(u.color, None);
        assert_eq!(u.capacity, None);
        assert_eq!(u.text, "red phone 64gb");
    }

    #[test]
    fn a_glued_colour_is_found() {
        let u = understand("mate50紫色256g", &vocabulary());
        assert_eq!(u.color.as_deref(), Some("purple"));
        assert_eq!(u.capacity.as_deref(), Some("256GB"));
    }
}
