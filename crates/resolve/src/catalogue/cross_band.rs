//! The cross-encoder in the resolve stage: the candidate pairs the trees are least sure of,
//! re-read by a transformer that sees both listings at once.
//!
//! Vocabulary:
//! - the **band**: the candidate pairs whose tree log-odds lie within
//!   `[resolve.cross_encoder] band_log_odds` of the threshold's, nearest first, at most
//!   `max_pairs` of them. Only these are re-read, so the cost is bounded by a setting rather
//!   than growing with the catalogue (most candidates are plainly different products);
//! - the **stack**: a band pair's probability becomes σ(w·logit(cross) + (1 − w)·logit(trees)),
//!   the rest keep the trees'. The weight w is chosen on the held-out labelled pairs for the
//!   best F1 at the trees' threshold, the smallest weight among ties, so a cross-encoder that
//!   does not help gets weight 0 and changes nothing;
//! - the **project's own** cross-encoder: without a `model` setting it is fine-tuned on the
//!   project's labelled candidate pairs (GTIN equality or review, the matcher's own labels), and
//!   kept under `.shopfuse/models/` with a manifest holding the SHA-256 of those pairs and the
//!   settings. A re-run whose pairs and settings are unchanged loads it instead of training
//!   again, which keeps re-runs idempotent as well as fast.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};
use shopfuse_core::config::CrossEncoderConfig;
use shopfuse_core::metrics::Scores;
use shopfuse_core::Progress;
use shopfuse_embed::cross_encoder::{CrossEncoderSettings, TokenWeight, TrainingEvent};
use shopfuse_embed::{CrossEncoder, EncoderError};

use crate::cross::{logit, serialise, stacked, SerialisedPairs};
use crate::pairs::Record;

/// Where the stage finds the cross-encoder, and keeps the one it trains.
#[derive(Debug, Clone)]
pub struct CrossEncoderFiles {
    /// all-MiniLM-L6-v2's directory: the base every cross-encoder is tuned from.
    pub base_dir: PathBuf,
    /// A fine-tuned artefact to use as it is (`[resolve.cross_encoder] model`).
    pub given: Option<PathBuf>,
    /// Where the project's own is kept when no model is given.
    pub trained_dir: PathBuf,
}

/// Where the cross-encoder of a run came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CrossEncoderOrigin {
    /// The artefact named in the settings.
    Given,
    /// Fine-tuned in this run on the project's labelled pairs.
    Trained,
    /// The project's own, trained by an earlier run on the same pairs and settings.
    Reused,
}

/// What the cross-encoder did in one resolve run.
#[derive(Debug, Clone, Serialize)]
pub struct CrossEncoderSummary {
    pub origin: CrossEncoderOrigin,
    /// The artefact's directory.
    pub model: PathBuf,
    /// Labelled pairs it was trained and early-stopped on (0 and 0 when given or reused).
    pub train_pairs: usize,
    pub early_stop_pairs: usize,
    pub training_seconds: f64,
    /// Candidate pairs re-read, and whether `max_pairs` cut the band short.
    pub band_pairs: usize,
    pub band_capped: bool,
    /// Weight of the cross-encoder's log-odds in the band's stack.
    pub weight: f64,
    /// The held-out labelled pairs at the trees' threshold, without and with the band's stack.
    pub held_out_before: Scores,
    pub held_out_after: Scores,
    /// Candidate pairs moved across the threshold by the stack.
    pub decisions_changed: usize,
    /// Share of the band's word pieces the base model does not know (`[UNK]`): high on
    /// Chinese listings with the English MiniLM, which then reads little more than their
    /// Latin tokens.
    pub unknown_token_share: f64,
    pub pairs_per_second: f64,
    pub seconds: f64,
}

/// The labelled candidate pairs the stage has: their positions among the candidates and
/// labels, for training and for the held-out choice of the weight.
pub struct LabelledPositions<'a> {
    pub train: &'a [usize],
    pub y_train: &'a [bool],
    pub held_out: &'a [usize],
    pub y_held_out: &'a [bool],
}

/// The trees' scores of every candidate pair, changed in place for the band's pairs.
pub struct BandScores<'a> {
    pub probability: &'a mut [f64],
    pub drivers: &'a mut [String],
    pub threshold: f64,
}

/// Gets the cross-encoder (given, reused or trained), re-reads the band's pairs and stacks
/// their probability with the trees'. `record_of(k)` is candidate pair `k`'s two records.
pub fn rescore_band(
    files: &CrossEncoderFiles,
    config: &CrossEncoderConfig,
    record_of: &(dyn Fn(usize) -> (Record, Record) + Sync),
    labelled: &LabelledPositions<'_>,
    scores: BandScores<'_>,
    progress: &dyn Progress,
) -> Result<CrossEncoderSummary, EncoderError> {
    let started = Instant::now();
    let text_of = |k: usize| {
        let (left, right) = record_of(k);
        (serialise(&left), serialise(&right))
    };
    let obtained = obtain(files, config, &text_of, labelled, progress)?;
    let band = band_of(scores.probability, scores.threshold, config);
    let read_started = Instant::now();
    let (cross, unknown_token_share) = predict(&obtained.model, &band.pairs, &text_of, progress)?;
    let pairs_per_second = band.pairs.len() as f64 / read_started.elapsed().as_secs_f64();
    let weight = choose_weight(&band.pairs, &cross, &scores, labelled);
    let held_out_probability =
        |p: &[f64]| -> Vec<f64> { labelled.held_out.iter().map(|&k| p[k]).collect() };
    let before = held_out_probability(scores.probability);
    let mut decisions_changed = 0;
    for (&k, &c) in band.pairs.iter().zip(&cross) {
        let p = stacked(scores.probability[k], c, weight);
        let changed = (p >= scores.threshold) != (scores.probability[k] >= scores.threshold);
        // The word pieces behind a decision the cross-encoder turned: a backward pass each, so
        // only for those, and at most `EXPLAINED_CHANGES` of them.
        let tokens = if changed && decisions_changed < EXPLAINED_CHANGES {
            let (left, right) = text_of(k);
            let weights = obtained.model.explain(&left, &right, EXPLAINED_TOKENS)?;
            format!(", tokens {}", token_list(&weights))
        } else {
            String::new()
        };
        decisions_changed += usize::from(changed);
        scores.probability[k] = p;
        let trees = std::mem::take(&mut scores.drivers[k]);
        scores.drivers[k] = format!("cross_encoder={c:.3} (weight {weight:.2}{tokens}); {trees}");
    }
    let after = held_out_probability(scores.probability);
    Ok(CrossEncoderSummary {
        origin: obtained.origin,
        model: obtained.dir,
        train_pairs: obtained.train_pairs,
        early_stop_pairs: obtained.early_stop_pairs,
        training_seconds: obtained.seconds,
        band_pairs: band.pairs.len(),
        band_capped: band.capped,
        weight,
        held_out_before: Scores::of(&before, labelled.y_held_out, scores.threshold),
        held_out_after: Scores::of(&after, labelled.y_held_out, scores.threshold),
        decisions_changed,
        unknown_token_share,
        pairs_per_second,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Decisions turned by the cross-encoder whose tokens are listed in the pair's drivers.
const EXPLAINED_CHANGES: usize = 1_000;
/// Word pieces listed per explained pair.
const EXPLAINED_TOKENS: usize = 5;

/// `word(side ±weight)`, strongest first: `256gb(right -0.41) iphone(left +0.12)`.
fn token_list(weights: &[TokenWeight]) -> String {
    weights
        .iter()
        .map(|t| {
            let side = if t.right { "right" } else { "left" };
            format!("{}({side} {:+.2})", t.token, t.weight)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The band: candidate positions nearest the threshold in log-odds, within the band's width,
/// at most `max_pairs`.
struct Band {
    pairs: Vec<usize>,
    capped: bool,
}

fn band_of(probability: &[f64], threshold: f64, config: &CrossEncoderConfig) -> Band {
    let centre = logit(threshold);
    let mut inside: Vec<(f64, usize)> = probability
        .iter()
        .enumerate()
        .map(|(k, &p)| ((logit(p) - centre).abs(), k))
        .filter(|(d, _)| *d <= config.band_log_odds)
        .collect();
    inside.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let capped = inside.len() > config.max_pairs;
    inside.truncate(config.max_pairs);
    let mut pairs: Vec<usize> = inside.into_iter().map(|(_, k)| k).collect();
    pairs.sort_unstable();
    Band { pairs, capped }
}

/// Pairs read by the cross-encoder per progress step.
const PREDICT_CHUNK: usize = 512;

/// The cross-encoder's probability of each pair at `positions`, and the share of their word
/// pieces it does not know.
fn predict(
    model: &CrossEncoder,
    positions: &[usize],
    text_of: &(dyn Fn(usize) -> (String, String) + Sync),
    progress: &dyn Progress,
) -> Result<(Vec<f64>, f64), EncoderError> {
    progress.start("resolve: cross-encoder", positions.len() as u64);
    let mut out = Vec::with_capacity(positions.len());
    let (mut unknown, mut total) = (0, 0);
    for chunk in positions.chunks(PREDICT_CHUNK) {
        let texts: Vec<(String, String)> = chunk.iter().map(|&k| text_of(k)).collect();
        let pairs: Vec<(&str, &str)> = texts
            .iter()
            .map(|(l, r)| (l.as_str(), r.as_str()))
            .collect();
        out.extend(model.predict(&pairs)?.into_iter().map(f64::from));
        let (u, t) = model.unknown_tokens(&pairs)?;
        (unknown, total) = (unknown + u, total + t);
        progress.advance(chunk.len() as u64);
    }
    progress.finish();
    Ok((out, unknown as f64 / total.max(1) as f64))
}

/// The weight (0, 0.05, …, 1) with the best held-out F1 at the trees' threshold when the band's
/// pairs are stacked; the smallest among ties, so no evidence means no change.
fn choose_weight(
    band: &[usize],
    cross: &[f64],
    scores: &BandScores<'_>,
    labelled: &LabelledPositions<'_>,
) -> f64 {
    let in_band: std::collections::HashMap<usize, f64> =
        band.iter().copied().zip(cross.iter().copied()).collect();
    let f1_at = |weight: f64| {
        let p: Vec<f64> = labelled
            .held_out
            .iter()
            .map(|&k| {
                let trees = scores.probability[k];
                in_band
                    .get(&k)
                    .map_or(trees, |&c| stacked(trees, c, weight))
            })
            .collect();
        Scores::of(&p, labelled.y_held_out, scores.threshold).f1
    };
    let mut best = (f1_at(0.0), 0.0);
    for step in 1..=20 {
        let weight = f64::from(step) / 20.0;
        let f1 = f1_at(weight);
        if f1 > best.0 + 1e-12 {
            best = (f1, weight);
        }
    }
    best.1
}

/// A cross-encoder ready to read pairs, and where it came from.
struct Obtained {
    model: CrossEncoder,
    origin: CrossEncoderOrigin,
    dir: PathBuf,
    train_pairs: usize,
    early_stop_pairs: usize,
    seconds: f64,
}

/// The name under which the manifest records the project's training pairs.
const PROJECT_PAIRS: &str = "project labelled candidate pairs";

fn obtain(
    files: &CrossEncoderFiles,
    config: &CrossEncoderConfig,
    text_of: &(dyn Fn(usize) -> (String, String) + Sync),
    labelled: &LabelledPositions<'_>,
    progress: &dyn Progress,
) -> Result<Obtained, EncoderError> {
    let started = Instant::now();
    let done = |model, origin, dir: &PathBuf, train_pairs, early_stop_pairs| Obtained {
        model,
        origin,
        dir: dir.clone(),
        train_pairs,
        early_stop_pairs,
        seconds: started.elapsed().as_secs_f64(),
    };
    if let Some(dir) = &files.given {
        let (model, _) = CrossEncoder::load(dir, &files.base_dir)?;
        return Ok(done(model, CrossEncoderOrigin::Given, dir, 0, 0));
    }
    let train = sample(labelled.train, labelled.y_train, config.max_train_pairs);
    let early_stop = sample(
        labelled.held_out,
        labelled.y_held_out,
        (config.max_train_pairs / 4).max(1),
    );
    let texts = |set: &[(usize, bool)]| {
        SerialisedPairs::from_texts(
            set.iter()
                .map(|&(k, y)| {
                    let (l, r) = text_of(k);
                    (l, r, y)
                })
                .collect(),
        )
    };
    let (train, early_stop) = (texts(&train), texts(&early_stop));
    let settings = CrossEncoderSettings {
        epochs: config.epochs,
        ..CrossEncoderSettings::default()
    };
    let data = vec![(
        PROJECT_PAIRS.to_string(),
        pairs_sha256(train.texts(), early_stop.texts()),
    )];
    let dir = &files.trained_dir;
    if let Ok((model, manifest)) = CrossEncoder::load(dir, &files.base_dir) {
        if manifest.data == data && manifest.settings == settings {
            return Ok(done(model, CrossEncoderOrigin::Reused, dir, 0, 0));
        }
    }
    let mut model = CrossEncoder::from_pretrained(&files.base_dir, settings)?;
    let report = model.fine_tune(
        &train.labelled(),
        &early_stop.labelled(),
        &mut training_progress(progress),
    )?;
    progress.finish();
    model.save(dir, data, report)?;
    let (n_train, n_stop) = (train.texts().len(), early_stop.texts().len());
    Ok(done(
        model,
        CrossEncoderOrigin::Trained,
        dir,
        n_train,
        n_stop,
    ))
}

/// One progress bar per epoch of fine-tuning.
fn training_progress(progress: &dyn Progress) -> impl FnMut(TrainingEvent) + '_ {
    let mut epoch_started = None;
    move |event| {
        if let TrainingEvent::Batch { epoch, total, .. } = event {
            if epoch_started != Some(epoch) {
                if epoch_started.is_some() {
                    progress.finish();
                }
                progress.start(
                    &format!("resolve: cross-encoder training, epoch {epoch}"),
                    total as u64,
                );
                epoch_started = Some(epoch);
            }
            progress.advance(1);
        }
    }
}

/// At most `n` of the labelled positions, spread evenly over them (they are in candidate
/// order, which is listing order, so an even spread covers the catalogue), with their labels.
fn sample(positions: &[usize], labels: &[bool], n: usize) -> Vec<(usize, bool)> {
    let all = positions.iter().copied().zip(labels.iter().copied());
    if positions.len() <= n {
        return all.collect();
    }
    let stride = positions.len() as f64 / n as f64;
    let picked: Vec<(usize, bool)> = all.collect();
    (0..n)
        .map(|i| picked[(i as f64 * stride) as usize])
        .collect()
}

/// SHA-256 of the training and early-stopping pairs as the cross-encoder reads them.
fn pairs_sha256(train: &[(String, String, bool)], early_stop: &[(String, String, bool)]) -> String {
    let mut hasher = Sha256::new();
    for (set, name) in [(train, "train"), (early_stop, "early_stop")] {
        hasher.update(name.as_bytes());
        for (l, r, y) in set {
            for part in [
                l.as_str(),
                "\u{1f}",
                r.as_str(),
                if *y { "\u{1f}1\n" } else { "\u{1f}0\n" },
            ] {
                hasher.update(part.as_bytes());
            }
        }
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_band_is_the_pairs_nearest_the_threshold_capped() {
        let probability = [0.01, 0.4, 0.55, 0.6, 0.95, 0.49];
        let config = CrossEncoderConfig {
            band_log_odds: 1.0,
            max_pairs: 10,
            ..CrossEncoderConfig::default()
        };
        let band = band_of(&probability, 0.5, &config);
        assert_eq!(band.pairs, [1, 2, 3, 5]);
        assert!(!band.capped);
        let capped = band_of(
            &probability,
            0.5,
            &CrossEncoderConfig {
                max_pairs: 2,
                ..config
            },
        );
        // |logit| of 0.49 is 0.04, of 0.55 is 0.2: the two nearest, in candidate order.
        assert_eq!(capped.pairs, [2, 5]);
        assert!(capped.capped);
    }

    #[test]
    fn the_weight_is_zero_without_evidence_and_grows_with_it() {
        // Held-out pairs 0..4; the band holds 1 and 2, which the trees get wrong.
        let mut probability = vec![0.9, 0.45, 0.55, 0.1];
        let mut drivers = vec![String::new(); 4];
        let labelled = LabelledPositions {
            train: &[],
            y_train: &[],
            held_out: &[0, 1, 2, 3],
            y_held_out: &[true, true, false, false],
        };
        let scores = BandScores {
            probability: &mut probability,
            drivers: &mut drivers,
            threshold: 0.5,
        };
        let right = choose_weight(&[1, 2], &[0.95, 0.05], &scores, &labelled);
        assert!(right > 0.0 && right <= 1.0, "{right}");
        // A cross-encoder that agrees with the trees' mistakes earns nothing.
        let wrong = choose_weight(&[1, 2], &[0.3, 0.7], &scores, &labelled);
        assert_eq!(wrong, 0.0);
    }

    #[test]
    fn token_lists_name_the_side_and_sign() {
        let weights = [
            TokenWeight {
                token: "256gb".into(),
                right: true,
                weight: -0.412,
            },
            TokenWeight {
                token: "iphone".into(),
                right: false,
                weight: 0.1,
            },
        ];
        assert_eq!(
            token_list(&weights),
            "256gb(right -0.41) iphone(left +0.10)"
        );
    }

    #[test]
    fn samples_are_spread_and_capped() {
        let positions: Vec<usize> = (0..10).collect();
        let labels: Vec<bool> = (0..10).map(|i| i % 2 == 0).collect();
        assert_eq!(sample(&positions, &labels, 20).len(), 10);
        let five = sample(&positions, &labels, 5);
        assert_eq!(
            five.iter().map(|p| p.0).collect::<Vec<_>>(),
            [0, 2, 4, 6, 8]
        );
        assert!(five.iter().all(|&(k, y)| y == (k % 2 == 0)));
    }

    #[test]
    fn the_pairs_checksum_sees_text_labels_and_sets() {
        let pair = |l: &str, y| (l.to_string(), "r".to_string(), y);
        let a = pairs_sha256(&[pair("a", true)], &[]);
        assert_ne!(a, pairs_sha256(&[pair("a", false)], &[]));
        assert_ne!(a, pairs_sha256(&[pair("b", true)], &[]));
        assert_ne!(a, pairs_sha256(&[], &[pair("a", true)]));
        assert_eq!(a, pairs_sha256(&[pair("a", true)], &[]));
    }
}
