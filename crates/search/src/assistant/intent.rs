//! [`IntentClassifier`]: what a customer-service question asks for.
//!
//! Multinomial naive Bayes over the question's terms (jieba words, stemmed English words,
//! numbers as one symbol) and the character bigrams of its Chinese: a few hundred labelled
//! examples are enough for it, it trains in microseconds on every start, and words it never
//! saw in training (product names) drop out instead of pulling towards a class. Written here
//! rather than taken from a crate: the model is twenty lines, the crates that have it bring a
//! linear-algebra stack with them.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::tokenizer::{is_han, terms};
use crate::SearchError;

/// The labelled examples shipped with the project.
pub const SHIPPED_EXAMPLES: &str = include_str!("../../data/intents.tsv");

/// What a question asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    ProductQuestion,
    Comparison,
    PriceStock,
    OrderStatus,
    ReturnsPolicy,
    Recommendation,
}

impl Intent {
    pub const ALL: [Intent; 6] = [
        Intent::ProductQuestion,
        Intent::Comparison,
        Intent::PriceStock,
        Intent::OrderStatus,
        Intent::ReturnsPolicy,
        Intent::Recommendation,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Intent::ProductQuestion => "product_question",
            Intent::Comparison => "comparison",
            Intent::PriceStock => "price_stock",
            Intent::OrderStatus => "order_status",
            Intent::ReturnsPolicy => "returns_policy",
            Intent::Recommendation => "recommendation",
        }
    }

    pub fn parse(s: &str) -> Option<Intent> {
        Intent::ALL.into_iter().find(|i| i.name() == s)
    }
}

/// The features of a question.
pub fn features(text: &str) -> Vec<String> {
    let mut out: Vec<String> = terms(text)
        .into_iter()
        .map(|t| {
            if t.text.chars().any(|c| c.is_ascii_digit()) {
                "<num>".to_string()
            } else {
                t.text
            }
        })
        .collect();
    let han: Vec<char> = text.chars().collect();
    for w in han.windows(2) {
        if is_han(w[0]) && is_han(w[1]) {
            out.push(format!("{}{}", w[0], w[1]));
        }
    }
    out
}

/// A trained classifier.
#[derive(Debug, Clone)]
pub struct IntentClassifier {
    log_prior: [f64; 6],
    log_likelihood: HashMap<String, [f64; 6]>,
}

impl IntentClassifier {
    /// Trained on the shipped examples.
    pub fn shipped() -> Self {
        let examples = parse_examples(SHIPPED_EXAMPLES, std::path::Path::new("data/intents.tsv"))
            .expect("the shipped intent examples parse");
        IntentClassifier::train(&examples)
    }

    pub fn train(examples: &[(Intent, String)]) -> Self {
        let mut counts: HashMap<String, [f64; 6]> = HashMap::new();
        let mut totals = [0f64; 6];
        let mut docs = [0f64; 6];
        for (intent, text) in examples {
            let c = *intent as usize;
            docs[c] += 1.0;
            // Presence, not counts: a word repeated in one question is one piece of evidence.
            let unique: HashSet<String> = features(text).into_iter().collect();
            for f in unique {
                counts.entry(f).or_insert([0.0; 6])[c] += 1.0;
                totals[c] += 1.0;
            }
        }
        let vocabulary = counts.len() as f64;
        let n: f64 = docs.iter().sum();
        let log_prior = docs.map(|d| ((d + 1.0) / (n + 6.0)).ln());
        let log_likelihood = counts
            .into_iter()
            .map(|(f, c)| {
                let mut l = [0f64; 6];
                for k in 0..6 {
                    l[k] = ((c[k] + 0.5) / (totals[k] + 0.5 * vocabulary)).ln();
                }
                (f, l)
            })
            .collect();
        IntentClassifier {
            log_prior,
            log_likelihood,
        }
    }

    /// The most likely intent and its posterior probability.
    pub fn classify(&self, text: &str) -> (Intent, f64) {
        let mut score = self.log_prior;
        let unique: HashSet<String> = features(text).into_iter().collect();
        for f in unique {
            if let Some(l) = self.log_likelihood.get(&f) {
                for k in 0..6 {
                    score[k] += l[k];
                }
            }
        }
        let max = score.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = score.iter().map(|s| (s - max).exp()).sum();
        let (best, s) = score
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .expect("six classes");
        (Intent::ALL[best], (s - max).exp() / z)
    }
}

/// `intent<TAB>question` lines; `#` starts a comment.
pub fn parse_examples(
    text: &str,
    path: &std::path::Path,
) -> Result<Vec<(Intent, String)>, SearchError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |message: String| SearchError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let (intent, question) = line
            .split_once('\t')
            .ok_or_else(|| bad("expected intent<TAB>question".into()))?;
        let intent = Intent::parse(intent).ok_or_else(|| {
            bad(format!(
                "unknown intent {intent:?} (one of {})",
                Intent::ALL.map(Intent::name).join(", ")
            ))
        })?;
        out.push((intent, question.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_examples_train_a_classifier_that_reads_new_phrasings() {
        let c = IntentClassifier::shipped();
        for (q, want) in [
            ("我的订单12345到哪了？", Intent::OrderStatus),
            ("What's the status of my order 998?", Intent::OrderStatus),
            ("退款多久能到账？", Intent::ReturnsPolicy),
            (
                "Where is it cheapest, and is it in stock?",
                Intent::PriceStock,
            ),
            (
                "Compare the Apple iPhone 15 versus the Galaxy S24",
                Intent::Comparison,
            ),
            ("推荐一款3000元以内的耳机", Intent::Recommendation),
        ] {
            assert_eq!(c.classify(q).0, want, "{q}");
        }
    }

    #[test]
    fn a_bad_example_line_names_its_line() {
        let e = parse_examples(
            "order_status\twhere\nnonsense\n",
            std::path::Path::new("x.tsv"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("x.tsv, line 2"), "{e}");
    }
}
