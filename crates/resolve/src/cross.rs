//! The cross-encoder in the matcher: records written as the text it reads, its fine-tuning on
//! labelled pairs, and its probability stacked with the trees'.
//!
//! The trees see each pair through features computed from each record and their overlap; the
//! cross-encoder ([`shopfuse_embed::CrossEncoder`]) reads both records at once. The two are
//! combined on the validation pairs — a weight between their log-odds and a threshold, both
//! chosen for the best validation F1 — rather than by giving the trees the cross-encoder's
//! probability as one more feature: the probability on its own training pairs is overfitted,
//! and cross-fitting a transformer five times is out of reach on two cores.

use serde::Serialize;
use shopfuse_core::metrics::Scores;
use shopfuse_embed::cross_encoder::{FineTuneReport, LabelledTextPair, TrainingEvent};
use shopfuse_embed::{CrossEncoder, EncoderError};

use crate::pairs::{LabelledPair, Record};

/// Values longer than this many characters (descriptions) go after the short ones, so the
/// cut at the cross-encoder's token limit falls on them.
const LONG_VALUE: usize = 80;

/// A record as the cross-encoder reads it: `attribute: value` for every non-empty value, the
/// short ones (title, brand, price, model) first in the record's order, then the long ones.
pub fn serialise(record: &Record) -> String {
    let filled = || record.attrs.iter().filter(|(_, v)| !v.trim().is_empty());
    let short = filled().filter(|(_, v)| v.len() <= LONG_VALUE);
    let long = filled().filter(|(_, v)| v.len() > LONG_VALUE);
    short
        .chain(long)
        .map(|(a, v)| format!("{a}: {}", v.trim()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The pairs serialised, kept alive while the cross-encoder borrows them.
pub struct SerialisedPairs {
    texts: Vec<(String, String, bool)>,
}

impl SerialisedPairs {
    pub fn new(pairs: &[LabelledPair]) -> Self {
        SerialisedPairs {
            texts: pairs
                .iter()
                .map(|p| (serialise(&p.left), serialise(&p.right), p.is_match))
                .collect(),
        }
    }

    pub fn labelled(&self) -> Vec<LabelledTextPair<'_>> {
        self.texts
            .iter()
            .map(|(l, r, m)| LabelledTextPair {
                left: l,
                right: r,
                is_match: *m,
            })
            .collect()
    }

    pub fn unlabelled(&self) -> Vec<(&str, &str)> {
        self.texts
            .iter()
            .map(|(l, r, _)| (l.as_str(), r.as_str()))
            .collect()
    }
}

/// Fine-tunes `model` on `train`, early-stopped on `valid`.
pub fn fine_tune(
    model: &mut CrossEncoder,
    train: &[LabelledPair],
    valid: &[LabelledPair],
    progress: &mut dyn FnMut(TrainingEvent),
) -> Result<FineTuneReport, EncoderError> {
    let (train, valid) = (SerialisedPairs::new(train), SerialisedPairs::new(valid));
    model.fine_tune(&train.labelled(), &valid.labelled(), progress)
}

/// The cross-encoder next to the trees on a labelled benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct CrossEncoderEval {
    /// The cross-encoder alone, at the threshold best on validation.
    pub alone_threshold: f64,
    pub alone_valid: Scores,
    pub alone_test: Scores,
    /// Weight of the cross-encoder's log-odds in the stack (the trees' get 1 − weight).
    pub weight: f64,
    pub stacked_threshold: f64,
    pub stacked_valid: Scores,
    pub stacked_test: Scores,
    /// Pairs per second of the cross-encoder's inference on the validation and test pairs.
    pub pairs_per_second: f64,
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

/// The stack's probability: `σ(w·logit(cross) + (1 − w)·logit(trees))`.
pub fn stacked(trees: f64, cross: f64, weight: f64) -> f64 {
    let z = weight * logit(cross) + (1.0 - weight) * logit(trees);
    1.0 / (1.0 + (-z).exp())
}

/// Scores the cross-encoder alone and stacked with the trees' probabilities (`trees_valid`,
/// `trees_test`), the weight and thresholds chosen on `valid`.
pub fn evaluate(
    model: &CrossEncoder,
    valid: &[LabelledPair],
    test: &[LabelledPair],
    trees_valid: &[f64],
    trees_test: &[f64],
) -> Result<CrossEncoderEval, EncoderError> {
    let started = std::time::Instant::now();
    let predict = |pairs: &[LabelledPair]| -> Result<Vec<f64>, EncoderError> {
        let texts = SerialisedPairs::new(pairs);
        Ok(model
            .predict(&texts.unlabelled())?
            .into_iter()
            .map(f64::from)
            .collect())
    };
    let (cv, ct) = (predict(valid)?, predict(test)?);
    let pairs_per_second = (valid.len() + test.len()) as f64 / started.elapsed().as_secs_f64();
    let (lv, lt) = (labels(valid), labels(test));
    let (alone_threshold, _) = crate::matcher::best_threshold(&cv, &lv);
    let mut best = (f64::MIN, 0.0, 0.5);
    for step in 0..=20 {
        let weight = f64::from(step) / 20.0;
        let blended: Vec<f64> = trees_valid
            .iter()
            .zip(&cv)
            .map(|(&t, &c)| stacked(t, c, weight))
            .collect();
        let (threshold, scores) = crate::matcher::best_threshold(&blended, &lv);
        if scores.f1 > best.0 {
            best = (scores.f1, weight, threshold);
        }
    }
    let (_, weight, stacked_threshold) = best;
    let blend = |trees: &[f64], cross: &[f64]| -> Vec<f64> {
        trees
            .iter()
            .zip(cross)
            .map(|(&t, &c)| stacked(t, c, weight))
            .collect()
    };
    Ok(CrossEncoderEval {
        alone_threshold,
        alone_valid: Scores::of(&cv, &lv, alone_threshold),
        alone_test: Scores::of(&ct, &lt, alone_threshold),
        weight,
        stacked_threshold,
        stacked_valid: Scores::of(&blend(trees_valid, &cv), &lv, stacked_threshold),
        stacked_test: Scores::of(&blend(trees_test, &ct), &lt, stacked_threshold),
        pairs_per_second,
    })
}

fn labels(pairs: &[LabelledPair]) -> Vec<bool> {
    pairs.iter().map(|p| p.is_match).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(attrs: &[(&str, &str)]) -> Record {
        Record {
            attrs: attrs
                .iter()
                .map(|(a, v)| (a.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn short_values_come_before_long_ones_and_empty_ones_are_dropped() {
        let description = "a long description ".repeat(10);
        let r = record(&[
            ("title", "Sandisk Cruzer Glide 64GB"),
            ("description", &description),
            ("brand", ""),
            ("price", " 9.99 "),
        ]);
        let text = serialise(&r);
        assert!(
            text.starts_with("title: Sandisk Cruzer Glide 64GB; price: 9.99; description: a long"),
            "{text}"
        );
        assert!(!text.contains("brand"));
    }

    #[test]
    fn the_stack_moves_from_the_trees_to_the_cross_encoder_with_the_weight() {
        assert!((stacked(0.8, 0.1, 0.0) - 0.8).abs() < 1e-9);
        assert!((stacked(0.8, 0.1, 1.0) - 0.1).abs() < 1e-9);
        let half = stacked(0.8, 0.2, 0.5);
        assert!((half - 0.5).abs() < 1e-9, "{half}");
    }
}
