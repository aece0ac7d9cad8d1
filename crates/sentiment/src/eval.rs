//! Evaluation: on a **public set** (ChnSentiCorp's standard split — train on train, stack on
//! dev, report dev and test; amazon-cells by stratified k-fold cross-validation) each part
//! of the ensemble and the ensemble next to the published figures; and on a **generated
//! project** the committed tables against the generator's `truth/`: three-way accuracy and
//! macro-F1, rating–text mismatches, aspects, and the planted defect batches found as alerts.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;
use shopfuse_core::{Encoder, TableStore};
use shopfuse_resolve::catalogue::offers;

use crate::corpus::{LabelledText, PublicCorpus, PublicSet};
use crate::metrics::{accuracy, macro_f1};
use crate::model::{
    EncoderUse, ModelManifest, ModelSettings, Polarity, Prediction, SentimentModel, TrainingText,
};
use crate::tables::{review_aspects, review_sentiment, sentiment_alerts};
use crate::SentimentError;

/// One model's binary accuracy on a public set.
#[derive(Debug, Clone, Serialize)]
pub struct PartAccuracy {
    /// `nbsvm`, `encoder_head` or `ensemble`.
    pub model: String,
    /// On the dev split (ChnSentiCorp; the ensemble's stack is fitted on it, so its dev
    /// figure is not held out).
    pub dev: Option<f64>,
    /// On the test split, or the mean over the folds.
    pub test: f64,
    /// Standard deviation over the folds (cross-validation only).
    pub test_sd: Option<f64>,
}

/// A published figure for the same protocol.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    pub model: &'static str,
    pub dev: Option<f64>,
    pub test: f64,
    pub source: &'static str,
}

/// What `eval sentiment --data DIR` prints.
#[derive(Debug, Clone, Serialize)]
pub struct PublicEval {
    pub set: PublicSet,
    pub protocol: String,
    pub train_rows: usize,
    pub test_rows: usize,
    pub parts: Vec<PartAccuracy>,
    pub published: Vec<Published>,
    /// Training time of one model (the mean over folds for cross-validation).
    pub train_seconds: f64,
    /// Inference over the test rows, texts per second.
    pub predict_per_second: f64,
    pub manifest: ModelManifest,
}

fn binary(texts: &[LabelledText]) -> Vec<TrainingText> {
    texts.iter().map(LabelledText::training).collect()
}

/// A model's predictions on some texts: as it predicts by default (the cascade), timed, and
/// with the encoder reading every text (the head's own figure and the full stack's).
struct Predictions {
    cascade: Vec<Prediction>,
    every: Vec<Prediction>,
    cascade_seconds: f64,
}

impl Predictions {
    fn of(
        model: &SentimentModel,
        texts: &[&str],
        encoder: Option<&dyn Encoder>,
    ) -> Result<Predictions, SentimentError> {
        let started = std::time::Instant::now();
        let cascade = model.predict(texts, encoder)?;
        let cascade_seconds = started.elapsed().as_secs_f64();
        let every = model.predict_with(texts, encoder, EncoderUse::Every)?;
        Ok(Predictions {
            cascade,
            every,
            cascade_seconds,
        })
    }

    /// Binary accuracy of each of [`PART_NAMES`] at 0.5.
    fn accuracies(&self, truth: &[LabelledText]) -> [Option<f64>; 4] {
        let acc = |rows: &[Prediction], f: &dyn Fn(&Prediction) -> Option<f64>| {
            let mut right = 0;
            for (p, t) in rows.iter().zip(truth) {
                right += ((f(p)? >= 0.5) == t.positive) as usize;
            }
            (!truth.is_empty()).then(|| right as f64 / truth.len() as f64)
        };
        let has_head = self.every.first().is_some_and(|p| p.p_head.is_some());
        [
            acc(&self.cascade, &|p| Some(p.p_nbsvm)),
            acc(&self.every, &|p| p.p_head),
            acc(&self.every, &|p| has_head.then_some(p.p_positive)),
            acc(&self.cascade, &|p| Some(p.p_positive)),
        ]
    }
}

/// The parts a public evaluation reports: the NB-SVM, the encoder head, the stack with the
/// encoder on every text, and the default (the cascade: the encoder on the least sure).
const PART_NAMES: [&str; 4] = ["nbsvm", "encoder_head", "ensemble_every_text", "ensemble"];

/// Trains and scores on a public set in `dir`.
pub fn eval_public(
    dir: &Path,
    encoder: Option<&dyn Encoder>,
    settings: &ModelSettings,
    folds: usize,
) -> Result<PublicEval, SentimentError> {
    let corpus = PublicCorpus::read(dir)?;
    match corpus.set {
        PublicSet::ChnSentiCorp => standard_split(corpus, encoder, settings),
        PublicSet::AmazonCells => cross_validate(corpus, encoder, settings, folds.max(2)),
    }
}

fn standard_split(
    corpus: PublicCorpus,
    encoder: Option<&dyn Encoder>,
    settings: &ModelSettings,
) -> Result<PublicEval, SentimentError> {
    // Dev is encoded while training and again for its figures: once with the memo. The test
    // texts are new to it, so the speed figure is a cold one.
    let memo = encoder.map(crate::memo::MemoEncoder::new);
    let encoder = memo.as_ref().map(|m| m as &dyn Encoder);
    let (train, dev) = (binary(&corpus.train), binary(&corpus.dev));
    let mut model = SentimentModel::train(&train, Some(&dev), encoder, settings)?;
    model.manifest.data = corpus.files.clone();
    let texts = |rows: &[LabelledText]| rows.iter().map(|t| t.text.clone()).collect::<Vec<_>>();
    let dev_texts = texts(&corpus.dev);
    let dev_p = Predictions::of(&model, &refs(&dev_texts), encoder)?;
    let test_texts = texts(&corpus.test);
    let test_p = Predictions::of(&model, &refs(&test_texts), encoder)?;
    let predict_seconds = test_p.cascade_seconds;
    let dev_acc = dev_p.accuracies(&corpus.dev);
    let test_acc = test_p.accuracies(&corpus.test);
    let parts = (0..PART_NAMES.len())
        .filter_map(|k| {
            Some(PartAccuracy {
                model: PART_NAMES[k].into(),
                dev: dev_acc[k],
                test: test_acc[k]?,
                test_sd: None,
            })
        })
        .collect();
    Ok(PublicEval {
        set: corpus.set,
        protocol: "standard split: fit on train, stack and select on dev, report test once".into(),
        train_rows: corpus.train.len(),
        test_rows: corpus.test.len(),
        parts,
        published: chnsenticorp_published(),
        train_seconds: model.manifest.seconds,
        predict_per_second: corpus.test.len() as f64 / predict_seconds.max(1e-9),
        manifest: model.manifest,
    })
}

fn refs(texts: &[String]) -> Vec<&str> {
    texts.iter().map(String::as_str).collect()
}

/// The figures ymcui/Chinese-BERT-wwm reports on this split (max over 10 runs) and the
/// TextCNN baseline the issue names.
fn chnsenticorp_published() -> Vec<Published> {
    const CUI: &str = "Cui et al. 2019 (arXiv 1906.08101), ymcui/Chinese-BERT-wwm README";
    vec![
        Published {
            model: "BERT (Chinese base)",
            dev: Some(0.947),
            test: 0.950,
            source: CUI,
        },
        Published {
            model: "ERNIE",
            dev: Some(0.954),
            test: 0.954,
            source: CUI,
        },
        Published {
            model: "RoBERTa-wwm-ext",
            dev: Some(0.950),
            test: 0.956,
            source: CUI,
        },
        Published {
            model: "TextCNN",
            dev: None,
            test: 0.936,
            source: "the baseline the issue names",
        },
    ]
}

fn cross_validate(
    corpus: PublicCorpus,
    encoder: Option<&dyn Encoder>,
    settings: &ModelSettings,
    folds: usize,
) -> Result<PublicEval, SentimentError> {
    let rows = corpus.train;
    let fold_of = stratified_folds(&rows, folds);
    let mut per_fold: Vec<[Option<f64>; 4]> = Vec::new();
    let (mut train_seconds, mut predict_seconds) = (0.0, 0.0);
    let mut manifest = ModelManifest::default();
    for k in 0..folds {
        let in_fold = |inside: bool| -> Vec<LabelledText> {
            rows.iter()
                .zip(&fold_of)
                .filter(|(_, &f)| (f == k) == inside)
                .map(|(t, _)| t.clone())
                .collect()
        };
        let (train_rows, test_rows) = (in_fold(false), in_fold(true));
        // A memo per fold: the held-out fold's texts stay unseen, so its speed is a cold one.
        let memo = encoder.map(crate::memo::MemoEncoder::new);
        let encoder = memo.as_ref().map(|m| m as &dyn Encoder);
        let model = SentimentModel::train(&binary(&train_rows), None, encoder, settings)?;
        train_seconds += model.manifest.seconds;
        let texts: Vec<String> = test_rows.iter().map(|t| t.text.clone()).collect();
        let p = Predictions::of(&model, &refs(&texts), encoder)?;
        predict_seconds += p.cascade_seconds;
        per_fold.push(p.accuracies(&test_rows));
        manifest = model.manifest;
    }
    manifest.data = corpus.files;
    let parts = (0..PART_NAMES.len())
        .filter_map(|k| {
            let values: Vec<f64> = per_fold.iter().filter_map(|f| f[k]).collect();
            if values.len() != folds {
                return None;
            }
            let mean = values.iter().sum::<f64>() / folds as f64;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (folds - 1) as f64;
            Some(PartAccuracy {
                model: PART_NAMES[k].into(),
                dev: None,
                test: mean,
                test_sd: Some(var.sqrt()),
            })
        })
        .collect();
    Ok(PublicEval {
        set: PublicSet::AmazonCells,
        protocol: format!(
            "stratified {folds}-fold cross-validation (seeded); each fold's model stacks on 15 % of its training rows"
        ),
        train_rows: rows.len(),
        test_rows: rows.len(),
        parts,
        published: Vec::new(),
        train_seconds: train_seconds / folds as f64,
        predict_per_second: rows.len() as f64 / predict_seconds.max(1e-9),
        manifest,
    })
}

/// A fold per row, each fold with the same share of each label (seeded, so reproducible).
fn stratified_folds(rows: &[LabelledText], folds: usize) -> Vec<usize> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0xf01d);
    let mut fold_of = vec![0; rows.len()];
    // One round-robin over both labels in turn: each fold gets its share of each label and
    // the folds' sizes differ by one at most.
    let mut next = 0;
    for positive in [false, true] {
        let mut idx: Vec<usize> = (0..rows.len())
            .filter(|&i| rows[i].positive == positive)
            .collect();
        idx.shuffle(&mut rng);
        for i in idx {
            fold_of[i] = next % folds;
            next += 1;
        }
    }
    fold_of
}

/// Per-polarity precision, recall and F1.
#[derive(Debug, Clone, Serialize)]
pub struct ClassFigures {
    pub polarity: Polarity,
    pub support: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// Precision and recall of a set of flagged items.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Detection {
    pub truth: usize,
    pub flagged: usize,
    pub correct: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Detection {
    fn of(truth: usize, flagged: usize, correct: usize) -> Detection {
        let s = shopfuse_core::metrics::Scores::from_counts(
            correct,
            flagged.saturating_sub(correct),
            truth.saturating_sub(correct),
        );
        Detection {
            truth,
            flagged,
            correct,
            precision: s.precision,
            recall: s.recall,
            f1: s.f1,
        }
    }
}

/// One planted defect batch and the alert that found it.
#[derive(Debug, Clone, Serialize)]
pub struct DefectFound {
    pub defect: String,
    pub aspect: String,
    pub golden_ids: Vec<String>,
    pub start: String,
    pub end: String,
    pub reviews: usize,
    pub alert_id: Option<String>,
    pub alert_aspect: Option<String>,
    /// Days from the batch's start to the end of the alert's first window.
    pub days_to_alert: Option<f64>,
}

/// What `eval sentiment` prints on a generated project.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectEval {
    pub reviews: usize,
    /// Reviews of the truth file found in `review_sentiment`.
    pub matched: usize,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub classes: Vec<ClassFigures>,
    /// Accuracy per language of the text (Chinese when it has Han characters).
    pub accuracy_by_language: BTreeMap<String, f64>,
    /// The stars alone (4–5 positive, 3 neutral, 1–2 negative) against the text's truth:
    /// what reading the text adds.
    pub stars_accuracy: f64,
    pub stars_macro_f1: f64,
    pub mismatch: Detection,
    /// (aspect, polarity) pairs named by each review, against the truth's.
    pub aspects: Detection,
    pub defects: Vec<DefectFound>,
    /// Alerts that overlap a planted batch of the same product.
    pub alerts: Detection,
}

/// A truth row of `truth/review_sentiment.csv`.
struct TruthRow {
    sentiment: Polarity,
    mismatch: bool,
    aspects: HashSet<String>,
}

/// Scores the project's committed sentiment tables against `truth_dir`'s
/// `review_sentiment.csv` and `sentiment_defects.csv`.
pub fn eval_project(
    store: &TableStore,
    truth_dir: &Path,
    window_days: u32,
) -> Result<ProjectEval, SentimentError> {
    let truth = read_truth(&truth_dir.join("review_sentiment.csv"))?;
    let rows = store
        .read_columns(
            review_sentiment::NAME,
            &[
                review_sentiment::platform,
                review_sentiment::review_id,
                review_sentiment::polarity,
                review_sentiment::rating,
                review_sentiment::rating_mismatch,
            ],
        )?
        .ok_or_else(|| crate::report::missing(store, review_sentiment::NAME))?;
    let texts = crate::report::review_texts(store)?;
    let (mut t, mut p, mut stars) = (Vec::new(), Vec::new(), Vec::new());
    let mut by_language: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut mismatch_flagged, mut mismatch_correct) = (0, 0);
    for r in &rows.rows {
        let key = (
            rows.text(r, review_sentiment::platform).unwrap_or_default(),
            rows.text(r, review_sentiment::review_id)
                .unwrap_or_default(),
        );
        let Some(truth_row) = truth.get(&key) else {
            continue;
        };
        let predicted =
            parse_polarity(&rows.text(r, review_sentiment::polarity).unwrap_or_default());
        t.push(truth_row.sentiment);
        p.push(predicted);
        stars.push(
            rows.f64(r, review_sentiment::rating)
                .map_or(Polarity::Neutral, Polarity::of_rating),
        );
        let language = match texts.get(&key) {
            Some(text) if text.chars().any(crate::ngrams::is_han) => "zh",
            _ => "en",
        };
        let l = by_language.entry(language.into()).or_default();
        l.0 += (truth_row.sentiment == predicted) as usize;
        l.1 += 1;
        let flagged = rows.bool(r, review_sentiment::rating_mismatch) == Some(true);
        mismatch_flagged += flagged as usize;
        mismatch_correct += (flagged && truth_row.mismatch) as usize;
    }
    let mismatch_truth = truth.values().filter(|t| t.mismatch).count();
    let classes = Polarity::ALL
        .iter()
        .map(|&c| class_figures(c, &t, &p))
        .collect();
    let (defects, alerts) =
        defect_detection(store, &truth_dir.join("sentiment_defects.csv"), window_days)?;
    Ok(ProjectEval {
        reviews: truth.len(),
        matched: t.len(),
        accuracy: accuracy(&t, &p),
        macro_f1: macro_f1(&t, &p),
        classes,
        accuracy_by_language: by_language
            .into_iter()
            .map(|(k, (right, n))| (k, right as f64 / n.max(1) as f64))
            .collect(),
        stars_accuracy: accuracy(&t, &stars),
        stars_macro_f1: macro_f1(&t, &stars),
        mismatch: Detection::of(mismatch_truth, mismatch_flagged, mismatch_correct),
        aspects: aspect_detection(store, &truth)?,
        defects,
        alerts,
    })
}

fn parse_polarity(s: &str) -> Polarity {
    match s {
        "negative" => Polarity::Negative,
        "positive" => Polarity::Positive,
        _ => Polarity::Neutral,
    }
}

fn class_figures(c: Polarity, t: &[Polarity], p: &[Polarity]) -> ClassFigures {
    let support = t.iter().filter(|&&x| x == c).count();
    let flagged = p.iter().filter(|&&x| x == c).count();
    let correct = t.iter().zip(p).filter(|(&a, &b)| a == c && b == c).count();
    let d = Detection::of(support, flagged, correct);
    ClassFigures {
        polarity: c,
        support,
        precision: d.precision,
        recall: d.recall,
        f1: d.f1,
    }
}

fn csv_error(path: &Path, message: String) -> SentimentError {
    SentimentError::Data {
        path: path.to_path_buf(),
        row: None,
        message,
    }
}

/// Reads a CSV with a header into maps of column → cell, naming the file and row on error.
fn read_csv(
    path: &Path,
    required: &[&str],
) -> Result<Vec<HashMap<String, String>>, SentimentError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| {
        csv_error(
            path,
            format!("cannot read it ({e}); `shopfuse generate` writes it into truth/"),
        )
    })?;
    let headers = reader
        .headers()
        .map_err(|e| csv_error(path, format!("unreadable header: {e}")))?
        .clone();
    for name in required {
        if !headers.iter().any(|h| h == *name) {
            return Err(csv_error(path, format!("no `{name}` column")));
        }
    }
    let mut out = Vec::new();
    for (k, record) in reader.records().enumerate() {
        let record = record.map_err(|e| SentimentError::Data {
            path: PathBuf::from(path),
            row: Some(k + 2),
            message: format!("malformed row: {e}"),
        })?;
        out.push(
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect(),
        );
    }
    Ok(out)
}

fn read_truth(path: &Path) -> Result<HashMap<(String, String), TruthRow>, SentimentError> {
    let rows = read_csv(
        path,
        &["platform", "review_id", "sentiment", "mismatch", "aspects"],
    )?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let aspects = r["aspects"]
                .split(';')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            (
                (r["platform"].clone(), r["review_id"].clone()),
                TruthRow {
                    sentiment: parse_polarity(&r["sentiment"]),
                    mismatch: r["mismatch"] == "1",
                    aspects,
                },
            )
        })
        .collect())
}

/// (aspect, polarity) pairs per review: predicted from `review_aspects` (a review naming an
/// aspect in clauses of both polarities counts both) against the truth's.
fn aspect_detection(
    store: &TableStore,
    truth: &HashMap<(String, String), TruthRow>,
) -> Result<Detection, SentimentError> {
    let Some(rows) = store.read_columns(
        review_aspects::NAME,
        &[
            review_aspects::platform,
            review_aspects::review_id,
            review_aspects::aspect,
            review_aspects::polarity,
        ],
    )?
    else {
        return Ok(Detection::default());
    };
    let mut predicted: HashSet<(String, String, String)> = HashSet::new();
    for r in &rows.rows {
        let polarity = rows.text(r, review_aspects::polarity).unwrap_or_default();
        // A neutral clause names the aspect without a side; the truth always has one.
        if polarity == "neutral" {
            continue;
        }
        predicted.insert((
            rows.text(r, review_aspects::platform).unwrap_or_default(),
            rows.text(r, review_aspects::review_id).unwrap_or_default(),
            format!(
                "{}:{polarity}",
                rows.text(r, review_aspects::aspect).unwrap_or_default()
            ),
        ));
    }
    let mut truth_n = 0;
    let mut correct = 0;
    for ((platform, id), t) in truth {
        truth_n += t.aspects.len();
        for a in &t.aspects {
            correct += predicted.contains(&(platform.clone(), id.clone(), a.clone())) as usize;
        }
    }
    let flagged = predicted
        .iter()
        .filter(|(p, id, _)| truth.contains_key(&(p.clone(), id.clone())))
        .count();
    Ok(Detection::of(truth_n, flagged, correct))
}

const DAY_US: i64 = 86_400_000_000;

fn day_us(path: &Path, s: &str) -> Result<i64, SentimentError> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
        .ok_or_else(|| csv_error(path, format!("{s:?} is not a YYYY-MM-DD date")))
}

/// Each planted batch and the first alert on one of its golden products whose aspect is
/// the batch's (or `overall`) and whose span overlaps the batch (or the window after it);
/// and alerts that match no batch.
fn defect_detection(
    store: &TableStore,
    path: &Path,
    window_days: u32,
) -> Result<(Vec<DefectFound>, Detection), SentimentError> {
    let batches = read_csv(
        path,
        &["defect", "aspect", "start", "end", "reviews", "listings"],
    )?;
    let golden = crate::tables::golden_by_listing(
        store.read_columns(offers::NAME, crate::tables::OFFER_COLUMNS)?,
    );
    let alerts = store
        .read_columns(
            sentiment_alerts::NAME,
            &[
                sentiment_alerts::alert_id,
                sentiment_alerts::golden_id,
                sentiment_alerts::aspect,
                sentiment_alerts::window_start,
                sentiment_alerts::window_end,
            ],
        )?
        .map(|a| {
            a.rows
                .iter()
                .map(|r| {
                    (
                        a.text(r, sentiment_alerts::alert_id).unwrap_or_default(),
                        a.text(r, sentiment_alerts::golden_id).unwrap_or_default(),
                        a.text(r, sentiment_alerts::aspect).unwrap_or_default(),
                        a.i64(r, sentiment_alerts::window_start).unwrap_or_default(),
                        a.i64(r, sentiment_alerts::window_end).unwrap_or_default(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let mut matched_alerts: HashSet<String> = HashSet::new();
    let mut found = Vec::new();
    let window = window_days as i64 * DAY_US;
    for b in &batches {
        let (start, end) = (day_us(path, &b["start"])?, day_us(path, &b["end"])?);
        let mut ids: Vec<String> = b["listings"]
            .split(';')
            .filter_map(|pl| pl.split_once(':'))
            .filter_map(|(p, l)| golden.get(&(p.to_string(), l.to_string())).cloned())
            .collect();
        ids.sort();
        ids.dedup();
        // Every alert on the product during the batch is explained by it (its reviews are
        // negative on other aspects too); the batch is found by one on its aspect or overall.
        let during: Vec<&(String, String, String, i64, i64)> = alerts
            .iter()
            .filter(|a| ids.contains(&a.1) && a.3 < end + window && a.4 > start)
            .collect();
        matched_alerts.extend(during.iter().map(|a| a.0.clone()));
        let mut hits: Vec<&&(String, String, String, i64, i64)> = during
            .iter()
            .filter(|a| a.2 == b["aspect"] || a.2 == "overall")
            .collect();
        hits.sort_by_key(|a| (a.3, a.2 == "overall"));
        let first = hits.first();
        found.push(DefectFound {
            defect: b["defect"].clone(),
            aspect: b["aspect"].clone(),
            golden_ids: ids,
            start: b["start"].clone(),
            end: b["end"].clone(),
            reviews: b["reviews"].parse().unwrap_or(0),
            alert_id: first.map(|a| a.0.clone()),
            alert_aspect: first.map(|a| a.2.clone()),
            days_to_alert: first.map(|a| (a.3 + window - start) as f64 / DAY_US as f64),
        });
    }
    // Recall is over batches (one alert per batch is enough), precision over alerts.
    let detected = found.iter().filter(|d| d.alert_id.is_some()).count();
    let by_batch = Detection::of(batches.len(), batches.len(), detected);
    let by_alert = Detection::of(batches.len(), alerts.len(), matched_alerts.len());
    let f1 = if by_alert.precision + by_batch.recall == 0.0 {
        0.0
    } else {
        2.0 * by_alert.precision * by_batch.recall / (by_alert.precision + by_batch.recall)
    };
    let detection = Detection {
        recall: by_batch.recall,
        f1,
        ..by_alert
    };
    Ok((found, detection))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_stratified_and_cover_every_row() {
        let rows: Vec<LabelledText> = (0..100)
            .map(|i| LabelledText {
                text: i.to_string(),
                positive: i % 4 == 0,
            })
            .collect();
        let folds = stratified_folds(&rows, 10);
        for k in 0..10 {
            let in_fold: Vec<usize> = (0..100).filter(|&i| folds[i] == k).collect();
            assert_eq!(in_fold.len(), 10);
            let positive = in_fold.iter().filter(|&&i| rows[i].positive).count();
            assert!((2..=3).contains(&positive), "fold {k}: {positive}");
        }
    }

    #[test]
    fn detection_figures() {
        let d = Detection::of(10, 5, 4);
        assert!((d.precision - 0.8).abs() < 1e-12 && (d.recall - 0.4).abs() < 1e-12);
        assert_eq!(Detection::of(0, 0, 0).f1, 0.0);
    }
}
