//! [`IntentClassifier`]: what a customer-service question asks for.
//!
//! Multinomial naive Bayes over the question's terms (jieba words, stemmed English words,
//! numbers as one symbol) and the character bigrams of its Chinese: a few hundred labelled
//! examples are enough for it, it trains in microseconds on every start, and words it never
//! saw in training (product names) drop out instead of pulling towards a class. Written here
//! rather than taken from a crate: the model is twenty lines, the crates that have it bring a
//! linear-algebra stack with them.
//!
//! Naive Bayes only knows the words of its examples, so a new phrasing with none of them
//! ("When will the money be back in my Alipay?") falls to the prior. With the project's
//! encoder the posterior is blended with a dense one: the question's cosine to the nearest
//! example of each intent, softened into a distribution ([`DENSE_WEIGHT`],
//! [`DENSE_TEMPERATURE`], chosen by leave-one-out accuracy on the shipped examples, see
//! [`leave_one_out`]).

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use shopfuse_core::encoder::{Embeddings, Encoder};

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
    /// Terms the examples of at least [`FRAMING_INTENTS`] intents use: words of asking
    /// ("how", "my", "能", "吗"), not of the subject asked about.
    framing: HashSet<String>,
    examples: Vec<(Intent, String)>,
    /// The examples' vectors under the encoder named first, encoded on first use.
    example_vectors: OnceLock<(String, Embeddings)>,
}

/// Share of the dense posterior in the blend.
pub const DENSE_WEIGHT: f64 = 0.75;
/// Cosine differences are small; dividing by this before the softmax makes them count.
pub const DENSE_TEMPERATURE: f64 = 0.05;

/// A term in the examples of this many of the six intents is a framing word.
const FRAMING_INTENTS: usize = 3;

impl IntentClassifier {
    /// Trained on the shipped examples.
    pub fn shipped() -> Self {
        IntentClassifier::train(&shipped_examples())
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
        let n: f64 = docs.iter().sum();
        let log_prior = docs.map(|d| ((d + 1.0) / (n + 6.0)).ln());
        let framing = counts
            .iter()
            .filter(|(_, c)| c.iter().filter(|&&k| k > 0.0).count() >= FRAMING_INTENTS)
            .map(|(f, _)| f.clone())
            .collect();
        IntentClassifier {
            log_prior,
            log_likelihood: log_likelihood_of(counts, &totals),
            framing,
            examples: examples.to_vec(),
            example_vectors: OnceLock::new(),
        }
    }

    /// Whether the examples of many intents use `term` (see [`FRAMING_INTENTS`]).
    pub fn is_framing(&self, term: &str) -> bool {
        self.framing.contains(term)
    }

    /// The most likely intent and its posterior probability, from the words alone.
    pub fn classify(&self, text: &str) -> (Intent, f64) {
        best_of(&self.posterior(text))
    }

    /// The naive Bayes posterior over [`Intent::ALL`].
    pub fn posterior(&self, text: &str) -> [f64; 6] {
        let mut score = self.log_prior;
        let unique: HashSet<String> = features(text).into_iter().collect();
        for f in unique {
            if let Some(l) = self.log_likelihood.get(&f) {
                for k in 0..6 {
                    score[k] += l[k];
                }
            }
        }
        softmax(score)
    }

    /// The most likely intent with the encoder's help (words alone without one).
    pub fn classify_with(
        &self,
        text: &str,
        encoder: Option<&dyn Encoder>,
    ) -> Result<(Intent, f64), SearchError> {
        let Some(encoder) = encoder else {
            return Ok(self.classify(text));
        };
        let examples = self.example_vectors(encoder)?;
        let question = encoder.encode(&[text])?;
        let labels: Vec<usize> = self.examples.iter().map(|(i, _)| *i as usize).collect();
        let dense = dense_posterior(question.row(0), &examples, &labels, None, DENSE_TEMPERATURE);
        Ok(best_of(&blend(&self.posterior(text), &dense, DENSE_WEIGHT)))
    }

    fn example_vectors(
        &self,
        encoder: &dyn Encoder,
    ) -> Result<std::borrow::Cow<'_, Embeddings>, SearchError> {
        let encode = || {
            let texts: Vec<&str> = self.examples.iter().map(|(_, t)| t.as_str()).collect();
            encoder.encode(&texts)
        };
        if self.example_vectors.get().is_none() {
            let _ = self
                .example_vectors
                .set((encoder.model_id().to_string(), encode()?));
        }
        match self.example_vectors.get() {
            Some((model, v)) if model == encoder.model_id() => Ok(std::borrow::Cow::Borrowed(v)),
            // Kept for the encoder it was first used with; another one encodes afresh.
            _ => Ok(std::borrow::Cow::Owned(encode()?)),
        }
    }
}

fn softmax(score: [f64; 6]) -> [f64; 6] {
    let max = score.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let z: f64 = score.iter().map(|s| (s - max).exp()).sum();
    score.map(|s| (s - max).exp() / z)
}

fn best_of(p: &[f64; 6]) -> (Intent, f64) {
    let (best, s) = p
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("six classes");
    (Intent::ALL[best], *s)
}

fn blend(words: &[f64; 6], dense: &[f64; 6], weight: f64) -> [f64; 6] {
    std::array::from_fn(|k| (1.0 - weight) * words[k] + weight * dense[k])
}

/// The softmax of the question's cosine to the nearest example of each intent (an intent
/// without examples gets none); `skip` leaves one example out.
fn dense_posterior(
    question: &[f32],
    examples: &Embeddings,
    labels: &[usize],
    skip: Option<usize>,
    temperature: f64,
) -> [f64; 6] {
    let mut nearest = [f64::NEG_INFINITY; 6];
    for (j, &label) in labels.iter().enumerate() {
        if Some(j) == skip {
            continue;
        }
        let c = f64::from(crate::dense::dot(question, examples.row(j)));
        nearest[label] = nearest[label].max(c);
    }
    softmax(nearest.map(|c| c / temperature))
}

/// Leave-one-out accuracy on `examples` of the words alone, the encoder alone and the blend
/// at each (weight, temperature) of `settings`: each example classified by a model that
/// never saw it.
pub fn leave_one_out(
    examples: &[(Intent, String)],
    encoder: &dyn Encoder,
    settings: &[(f64, f64)],
) -> Result<(f64, Vec<f64>, Vec<f64>), SearchError> {
    let texts: Vec<&str> = examples.iter().map(|(_, t)| t.as_str()).collect();
    let vectors = encoder.encode(&texts)?;
    let labels: Vec<usize> = examples.iter().map(|(i, _)| *i as usize).collect();
    let mut words_right = 0usize;
    let mut dense_right = vec![0usize; settings.len()];
    let mut blend_right = vec![0usize; settings.len()];
    for (i, (intent, text)) in examples.iter().enumerate() {
        let mut rest = examples.to_vec();
        rest.remove(i);
        let words = IntentClassifier::train(&rest).posterior(text);
        words_right += usize::from(best_of(&words).0 == *intent);
        for (k, &(weight, temperature)) in settings.iter().enumerate() {
            let dense = dense_posterior(vectors.row(i), &vectors, &labels, Some(i), temperature);
            dense_right[k] += usize::from(best_of(&dense).0 == *intent);
            blend_right[k] += usize::from(best_of(&blend(&words, &dense, weight)).0 == *intent);
        }
    }
    let n = examples.len().max(1) as f64;
    let share = |v: Vec<usize>| v.into_iter().map(|r| r as f64 / n).collect();
    Ok((
        words_right as f64 / n,
        share(dense_right),
        share(blend_right),
    ))
}

/// The labelled examples shipped with the project, parsed.
pub fn shipped_examples() -> Vec<(Intent, String)> {
    parse_examples(SHIPPED_EXAMPLES, std::path::Path::new("data/intents.tsv"))
        .expect("the shipped intent examples parse")
}

/// Smoothed log P(term | intent) from presence counts.
fn log_likelihood_of(
    counts: HashMap<String, [f64; 6]>,
    totals: &[f64; 6],
) -> HashMap<String, [f64; 6]> {
    let vocabulary = counts.len() as f64;
    counts
        .into_iter()
        .map(|(f, c)| {
            let mut l = [0f64; 6];
            for k in 0..6 {
                l[k] = ((c[k] + 0.5) / (totals[k] + 0.5 * vocabulary)).ln();
            }
            (f, l)
        })
        .collect()
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
    fn framing_words_are_those_many_intents_ask_with() {
        let c = IntentClassifier::train(&[
            (Intent::OrderStatus, "how is my order".into()),
            (Intent::ReturnsPolicy, "how do I return it".into()),
            (Intent::PriceStock, "how much is the phone".into()),
            (Intent::Recommendation, "suggest a phone".into()),
        ]);
        assert!(c.is_framing("how"));
        assert!(!c.is_framing("phone"), "two intents only");
        assert!(!c.is_framing("return"));
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
