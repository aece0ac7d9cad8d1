//! The cross-encoder in the matcher: records written as the text it reads, its fine-tuning on
//! labelled pairs, and its probability stacked with the trees'.
//!
//! The trees see each pair through features computed from each record and their overlap; the
//! cross-encoder ([`shopfuse_embed::CrossEncoder`]) reads both records at once. The two are
//! combined on the validation pairs — a weight between their log-odds and a threshold, both
//! chosen for the best validation F1 — rather than by giving the trees the cross-encoder's
//! probability as one more feature: the probability on its own training pairs is overfitted,
//! and cross-fitting a transformer five times is out of reach on two cores.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use shopfuse_core::metrics::Scores;
use shopfuse_embed::cross_encoder::{FineTuneReport, LabelledTextPair, TokenWeight, TrainingEvent};
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

    /// Pairs already written as text: `(left, right, is_match)`.
    pub fn from_texts(texts: Vec<(String, String, bool)>) -> Self {
        SerialisedPairs { texts }
    }

    pub fn texts(&self) -> &[(String, String, bool)] {
        &self.texts
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

/// Fine-tunes `model` on `train` and `augment` altered copies of each training pair
/// ([`augmented`], seeded by `seed`), early-stopped on `valid`.
pub fn fine_tune(
    model: &mut CrossEncoder,
    train: &[LabelledPair],
    valid: &[LabelledPair],
    augment: Augmentation,
    progress: &mut dyn FnMut(TrainingEvent),
) -> Result<FineTuneReport, EncoderError> {
    let mut rng = ChaCha8Rng::seed_from_u64(augment.seed);
    let mut all = train.to_vec();
    for _ in 0..augment.copies {
        all.extend(train.iter().map(|p| augmented(p, &mut rng)));
    }
    let (train, valid) = (SerialisedPairs::new(&all), SerialisedPairs::new(valid));
    model.fine_tune(&train.labelled(), &valid.labelled(), progress)
}

/// Ditto's data augmentation, made once before training: `copies` altered copies of every
/// training pair. (Ditto alters a pair afresh each epoch; here the frozen layers' outputs are
/// computed once per pair, so the copies are fixed and each costs one more pair per epoch.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Augmentation {
    pub copies: usize,
    pub seed: u64,
}

/// Words a deleted span has at most.
const MAX_SPAN: usize = 4;

/// A copy of `pair` with the same label that reads differently: the two records swapped half of
/// the time (the label does not depend on the order), then one of Ditto's label-preserving
/// operators on one side — an attribute's value deleted (never the title's), or a span of up
/// to four words deleted from a value of at least four words. A pair too short for either is
/// only swapped.
pub fn augmented(pair: &LabelledPair, rng: &mut impl Rng) -> LabelledPair {
    let (mut left, mut right) = (pair.left.clone(), pair.right.clone());
    if rng.random_bool(0.5) {
        std::mem::swap(&mut left, &mut right);
    }
    let side = if rng.random_bool(0.5) {
        &mut left
    } else {
        &mut right
    };
    let words = |v: &str| v.split_whitespace().count();
    let deletable: Vec<usize> = (0..side.attrs.len())
        .filter(|&i| side.attrs[i].0 != "title" && !side.attrs[i].1.trim().is_empty())
        .collect();
    let spannable: Vec<usize> = (0..side.attrs.len())
        .filter(|&i| words(&side.attrs[i].1) >= MAX_SPAN)
        .collect();
    let delete_attribute = !deletable.is_empty() && (spannable.is_empty() || rng.random_bool(0.5));
    if delete_attribute {
        let i = deletable[rng.random_range(0..deletable.len())];
        side.attrs[i].1.clear();
    } else if !spannable.is_empty() {
        let i = spannable[rng.random_range(0..spannable.len())];
        let tokens: Vec<&str> = side.attrs[i].1.split_whitespace().collect();
        let len = rng.random_range(1..=MAX_SPAN.min(tokens.len() / 2).max(1));
        let start = rng.random_range(0..=tokens.len() - len);
        let kept: Vec<&str> = tokens[..start]
            .iter()
            .chain(&tokens[start + len..])
            .copied()
            .collect();
        side.attrs[i].1 = kept.join(" ");
    }
    LabelledPair {
        left,
        right,
        is_match: pair.is_match,
    }
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
    /// The stack applied only to the pairs the trees are least sure of, as the resolve stage
    /// would, for several sizes of that band.
    pub bands: Vec<BandEval>,
}

/// The cross-encoder read only for the pairs whose tree log-odds lie within `half_width` of
/// the trees' threshold (the stack decides those; the trees decide the rest).
#[derive(Debug, Clone, Serialize)]
pub struct BandEval {
    /// The share of validation pairs the band was sized to hold.
    pub target_share: f64,
    /// Half the band's width in log-odds around the trees' threshold.
    pub half_width: f64,
    pub valid_share: f64,
    pub test_share: f64,
    pub valid: Scores,
    pub test: Scores,
}

/// Shares of pairs the reported bands hold on validation.
const BAND_SHARES: [f64; 4] = [0.1, 0.2, 0.3, 0.5];

pub(crate) fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

/// The stack's probability: `σ(w·logit(cross) + (1 − w)·logit(trees))`.
pub fn stacked(trees: f64, cross: f64, weight: f64) -> f64 {
    let z = weight * logit(cross) + (1.0 - weight) * logit(trees);
    1.0 / (1.0 + (-z).exp())
}

/// The trees' probabilities and threshold on the validation and test pairs.
pub struct TreeScores<'a> {
    pub valid: &'a [f64],
    pub test: &'a [f64],
    pub threshold: f64,
}

/// Scores the cross-encoder alone and stacked with the trees' probabilities, the weight and
/// thresholds chosen on `valid`, and the stack applied in bands of uncertain pairs.
pub fn evaluate(
    model: &CrossEncoder,
    valid: &[LabelledPair],
    test: &[LabelledPair],
    trees: TreeScores,
) -> Result<CrossEncoderEval, EncoderError> {
    let (trees_valid, trees_test) = (trees.valid, trees.test);
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
    let trees_threshold = trees.threshold;
    let band = |half_width: f64, trees: &[f64], cross: &[f64], labels: &[bool]| {
        let rule = BandRule {
            trees_threshold: logit(trees_threshold),
            half_width,
            weight,
            stacked_threshold,
        };
        band_decisions(trees, cross, &rule, labels)
    };
    let bands = BAND_SHARES
        .iter()
        .map(|&share| {
            let half_width = band_half_width(trees_valid, trees_threshold, share);
            let (valid_share, valid_scores) = band(half_width, trees_valid, &cv, &lv);
            let (test_share, test_scores) = band(half_width, trees_test, &ct, &lt);
            BandEval {
                target_share: share,
                half_width,
                valid_share,
                test_share,
                valid: valid_scores,
                test: test_scores,
            }
        })
        .collect();
    Ok(CrossEncoderEval {
        alone_threshold,
        alone_valid: Scores::of(&cv, &lv, alone_threshold),
        alone_test: Scores::of(&ct, &lt, alone_threshold),
        weight,
        stacked_threshold,
        stacked_valid: Scores::of(&blend(trees_valid, &cv), &lv, stacked_threshold),
        stacked_test: Scores::of(&blend(trees_test, &ct), &lt, stacked_threshold),
        pairs_per_second,
        bands,
    })
}

/// How a band decides: inside it the stack at its threshold, outside it the trees at theirs.
struct BandRule {
    /// The trees' threshold as log-odds.
    trees_threshold: f64,
    half_width: f64,
    weight: f64,
    stacked_threshold: f64,
}

impl BandRule {
    fn in_band(&self, trees: f64) -> bool {
        (logit(trees) - self.trees_threshold).abs() <= self.half_width
    }
}

/// The half-width (log-odds) of the band around `threshold` holding `share` of `trees`.
pub fn band_half_width(trees: &[f64], threshold: f64, share: f64) -> f64 {
    let centre = logit(threshold);
    let mut distances: Vec<f64> = trees.iter().map(|&p| (logit(p) - centre).abs()).collect();
    distances.sort_by(f64::total_cmp);
    let k = ((share * distances.len() as f64).ceil() as usize).clamp(1, distances.len().max(1));
    distances.get(k - 1).copied().unwrap_or(0.0)
}

/// The share of pairs in the band and the scores of the band's decisions.
fn band_decisions(trees: &[f64], cross: &[f64], rule: &BandRule, labels: &[bool]) -> (f64, Scores) {
    let mut inside = 0usize;
    let decided: Vec<f64> = trees
        .iter()
        .zip(cross)
        .map(|(&t, &c)| {
            let matched = if rule.in_band(t) {
                inside += 1;
                stacked(t, c, rule.weight) >= rule.stacked_threshold
            } else {
                logit(t) >= rule.trees_threshold
            };
            f64::from(u8::from(matched))
        })
        .collect();
    (
        inside as f64 / trees.len().max(1) as f64,
        Scores::of(&decided, labels, 0.5),
    )
}

/// The word pieces the cross-encoder weighed most in the pair `left`, `right`.
pub fn explain(
    model: &CrossEncoder,
    left: &Record,
    right: &Record,
) -> Result<Vec<TokenWeight>, EncoderError> {
    model.explain(&serialise(left), &serialise(right), EXPLAINED_TOKENS)
}

/// Word pieces listed per explained pair.
const EXPLAINED_TOKENS: usize = 8;

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
    fn augmented_copies_keep_the_label_and_lose_a_little() {
        let pair = LabelledPair {
            left: record(&[
                ("title", "Sandisk Cruzer Glide 64GB USB 2.0 flash drive"),
                ("brand", "sandisk"),
                ("price", "9.99"),
            ]),
            right: record(&[("title", "Cruzer Glide 64 GB"), ("brand", "")]),
            is_match: true,
        };
        let words = |r: &Record| -> usize {
            r.attrs
                .iter()
                .map(|(_, v)| v.split_whitespace().count())
                .sum()
        };
        let total = words(&pair.left) + words(&pair.right);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut swapped = 0;
        for _ in 0..200 {
            let copy = augmented(&pair, &mut rng);
            assert!(copy.is_match);
            let lost = total - (words(&copy.left) + words(&copy.right));
            // One value deleted (one word here) or a span of one to four words.
            assert!((1..=MAX_SPAN).contains(&lost), "{copy:?}");
            // The titles are never emptied.
            for side in [&copy.left, &copy.right] {
                assert!(!side.get("title").unwrap().is_empty());
            }
            // Deletion clears values but keeps attributes: only the left record has a price.
            swapped += usize::from(copy.right.get("price").is_some());
        }
        assert!((60..=140).contains(&swapped), "{swapped} of 200 swapped");
    }

    #[test]
    fn a_band_holds_its_share_and_decides_inside_with_the_stack() {
        let trees = [0.05, 0.3, 0.45, 0.55, 0.7, 0.95];
        let width = band_half_width(&trees, 0.5, 1.0 / 3.0);
        let rule = BandRule {
            trees_threshold: 0.0,
            half_width: width,
            weight: 1.0,
            stacked_threshold: 0.5,
        };
        let inside: Vec<bool> = trees.iter().map(|&t| rule.in_band(t)).collect();
        assert_eq!(inside, [false, false, true, true, false, false]);
        // The cross-encoder flips both band pairs; outside, the trees decide.
        let cross = [0.9, 0.9, 0.9, 0.1, 0.1, 0.1];
        let labels = [false, false, true, false, true, true];
        let (share, scores) = band_decisions(&trees, &cross, &rule, &labels);
        assert!((share - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!((scores.true_positives, scores.false_positives), (3, 0));
        assert_eq!(scores.false_negatives, 0);
    }

    #[test]
    fn the_stack_moves_from_the_trees_to_the_cross_encoder_with_the_weight() {
        assert!((stacked(0.8, 0.1, 0.0) - 0.8).abs() < 1e-9);
        assert!((stacked(0.8, 0.1, 1.0) - 0.1).abs() < 1e-9);
        let half = stacked(0.8, 0.2, 0.5);
        assert!((half - 0.5).abs() < 1e-9, "{half}");
    }
}
