//! The stage's tables — `review_sentiment` (one row per review), `review_aspects` (one row
//! per aspect a clause names) and `sentiment_alerts` — and the run that fills them: train
//! the model on the configured public sets and the project's stars, classify every review
//! and clause, raise alerts, write. The trained model is kept under
//! `.shopfuse/sentiment/` with its manifest, for `shopfuse sentiment "TEXT"`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use shopfuse_core::config::SentimentConfig;
use shopfuse_core::value::rows_to_batch;
use shopfuse_core::{Encoder, Transaction, Value};
use shopfuse_resolve::catalogue::offers;

use crate::aspects::{mentions, AspectVectors};
use crate::corpus::PublicCorpus;
use crate::model::{ModelSettings, Polarity, SentimentModel, TrainingText};
use crate::monitor::{alerts, Mention};
use crate::SentimentError;

shopfuse_core::table! {
    /// One row per review: its polarity from the text, the golden product it is about, and
    /// whether the text contradicts the stars.
    pub mod review_sentiment("review_sentiment") {
        /// The review's id on its platform.
        review_id: Text;
        /// The platform.
        platform: Text;
        /// The reviewer's account on the platform (pseudonymous; what erasure finds the row by).
        account_id: Text null;
        /// The listing reviewed.
        listing_id: Text;
        /// The golden product of the listing (null when the listing is not in the catalogue).
        golden_id: Text null;
        /// When the review was written.
        reviewed_at: Timestamp null;
        /// The star rating, 1–5, when given.
        rating: Float null;
        /// negative / neutral / positive, from the text.
        polarity: Text;
        /// The model's calibrated probability that the text is positive.
        p_positive: Float;
        /// Four or five stars with clearly negative text, or one or two with clearly positive
        /// text (p_positive below 0.2 / above 0.8): for the risk stage and for review.
        rating_mismatch: Bool;
    }
}

shopfuse_core::table! {
    /// One row per aspect a review clause names, with the clause's own polarity.
    pub mod review_aspects("review_aspects") {
        /// The review.
        review_id: Text;
        /// The golden product (null when the listing is not in the catalogue).
        golden_id: Text null;
        /// The platform.
        platform: Text;
        /// The reviewer's account on the platform (what erasure finds the row by).
        account_id: Text null;
        /// quality, logistics, price, service, authenticity, packaging or size_fit.
        aspect: Text;
        /// The clause, as cut from the review.
        clause: Text;
        /// The clause's polarity.
        polarity: Text;
        /// The clause's probability of being positive.
        p_positive: Float;
        /// How the aspect was found: `seed:WORD` or `similarity:COSINE`.
        matched_by: Text;
    }
}

shopfuse_core::table! {
    /// One row per alert: a golden product whose negative share, overall or on one aspect,
    /// jumped against its own history.
    pub mod sentiment_alerts("sentiment_alerts") {
        /// `SA` + a hash of product, aspect and start: stable across re-runs.
        alert_id: Text;
        /// The golden product.
        golden_id: Text;
        /// `overall` or the aspect.
        aspect: Text;
        /// The first flagged window's start.
        window_start: Timestamp;
        /// The last flagged window's end.
        window_end: Timestamp;
        /// Mentions in the strongest window.
        mentions: Int;
        /// Negative mentions in the strongest window.
        negative: Int;
        /// The strongest window's negative share.
        negative_share: Float;
        /// The history's negative share the window is compared with.
        baseline_share: Float;
        /// One-sided binomial z-score of the strongest window against the history.
        z_score: Float;
        /// Exact one-sided binomial probability of the strongest window's negative count at
        /// the history's share (what flags a window).
        p_value: Float;
        /// Negative aspect mentions of the product in the span, `aspect:count` by count,
        /// joined by `;`: what an `overall` alert is about.
        negative_aspects: Text;
        /// Platforms of the negative mentions in the span, `platform:count` joined by `;`.
        platforms: Text;
        /// Up to three of the most negative reviews: `review_id: text`, joined by ` | `.
        examples: Text;
    }
}

/// What the stage reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SentimentSummary {
    pub reviews: usize,
    pub negative: usize,
    pub neutral: usize,
    pub positive: usize,
    pub aspect_mentions: usize,
    pub alerts: usize,
    pub rating_mismatches: usize,
    pub public_training_rows: usize,
    pub weak_labels: usize,
    pub holdout_accuracy: Option<f64>,
    pub model_path: Option<String>,
    pub seconds: f64,
}

/// One review as read from `clean_reviews`.
#[derive(Debug, Clone)]
pub struct ReviewRow {
    pub review_id: String,
    pub platform: String,
    pub account_id: Option<String>,
    pub listing_id: String,
    pub golden_id: Option<String>,
    pub at: Option<i64>,
    pub rating: Option<f64>,
    pub text: String,
}

/// Where a project's trained model is kept.
pub fn model_dir(project_root: &Path) -> PathBuf {
    project_root.join(".shopfuse").join("sentiment")
}

/// Trains, classifies, raises alerts and replaces the three tables.
pub fn run_sentiment(
    tx: &mut Transaction<'_>,
    config: &SentimentConfig,
    project_root: &Path,
    encoder: Option<&dyn Encoder>,
) -> Result<SentimentSummary, SentimentError> {
    let started = std::time::Instant::now();
    let reviews = read_reviews(tx)?;
    let mut summary = SentimentSummary {
        reviews: reviews.len(),
        ..Default::default()
    };
    let memo = encoder
        .filter(|_| config.encoder_head)
        .map(crate::memo::MemoEncoder::new);
    let encoder = memo.as_ref().map(|m| m as &dyn Encoder);
    let model = train_project_model(&reviews, config, project_root, encoder, &mut summary)?;
    let texts: Vec<&str> = reviews.iter().map(|r| r.text.as_str()).collect();
    let predictions = model.predict(&texts, encoder)?;
    let vectors = encoder.map(AspectVectors::new).transpose()?;
    let aspect_mentions = mentions(&texts, &model, encoder, vectors.as_ref())?;
    let mut monitored: Vec<Mention> = Vec::new();
    for (i, (r, p)) in reviews.iter().zip(&predictions).enumerate() {
        if let (Some(g), Some(at)) = (&r.golden_id, r.at) {
            monitored.push(mention(r, g, at, "overall", p.polarity, p.p_positive, i));
        }
    }
    for m in &aspect_mentions {
        let r = &reviews[m.review];
        if let (Some(g), Some(at)) = (&r.golden_id, r.at) {
            monitored.push(mention(
                r,
                g,
                at,
                m.aspect,
                m.polarity,
                m.p_positive,
                m.review,
            ));
        }
    }
    let raised = alerts(&monitored, config);
    summary.aspect_mentions = aspect_mentions.len();
    summary.alerts = raised.len();
    write_reviews(tx, &reviews, &predictions, &mut summary)?;
    write_aspects(tx, &reviews, &aspect_mentions)?;
    write_alerts(tx, &reviews, &aspect_mentions, &raised)?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn mention(
    r: &ReviewRow,
    golden: &str,
    at: i64,
    aspect: &str,
    polarity: Polarity,
    p_positive: f64,
    review: usize,
) -> Mention {
    Mention {
        golden_id: golden.to_string(),
        aspect: aspect.to_string(),
        at,
        negative: polarity == Polarity::Negative,
        platform: r.platform.clone(),
        review,
        negativity: 1.0 - p_positive,
    }
}

/// Each configured public set's files with their SHA-256 (`path → hash`), for the stage's
/// fingerprint: a changed file retrains the model. A directory that cannot be read yields
/// nothing here; the run then fails on it with the file named.
pub fn training_fingerprints(
    config: &SentimentConfig,
    project_root: &Path,
) -> Vec<(String, String)> {
    use sha2::{Digest, Sha256};
    let mut out = Vec::new();
    for dir in &config.training_data {
        let dir = resolve_dir(dir, project_root);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "tsv" || x == "txt"))
            .collect();
        files.sort();
        for f in files {
            if let Ok(bytes) = std::fs::read(&f) {
                out.push((f.display().to_string(), hex::encode(Sha256::digest(&bytes))));
            }
        }
    }
    out
}

fn resolve_dir(dir: &Path, project_root: &Path) -> PathBuf {
    if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        project_root.join(dir)
    }
}

/// The configured public sets (their train and dev splits; a test split is never trained
/// on) and, when enabled, the project's star-rated reviews.
pub fn training_texts(
    reviews: &[ReviewRow],
    config: &SentimentConfig,
    project_root: &Path,
) -> Result<(Vec<TrainingText>, Vec<crate::corpus::DataFile>, usize), SentimentError> {
    let mut texts = Vec::new();
    let mut files = Vec::new();
    for dir in &config.training_data {
        let dir = resolve_dir(dir, project_root);
        let corpus = PublicCorpus::read(&dir)?;
        texts.extend(corpus.train.iter().chain(&corpus.dev).map(|t| t.training()));
        files.extend(
            corpus
                .files
                .into_iter()
                .filter(|f| !f.path.ends_with("test.tsv")),
        );
    }
    let mut weak = 0;
    if config.weak_labels {
        for r in reviews {
            if let Some(rating) = r.rating {
                weak += 1;
                texts.push(TrainingText {
                    text: r.text.clone(),
                    label: Polarity::of_rating(rating),
                });
            }
        }
    }
    Ok((texts, files, weak))
}

fn train_project_model(
    reviews: &[ReviewRow],
    config: &SentimentConfig,
    project_root: &Path,
    encoder: Option<&dyn Encoder>,
    summary: &mut SentimentSummary,
) -> Result<SentimentModel, SentimentError> {
    let (texts, files, weak) = training_texts(reviews, config, project_root)?;
    summary.weak_labels = weak;
    summary.public_training_rows = texts.len() - weak;
    let settings = ModelSettings {
        head: config
            .encoder_head
            .then(|| ModelSettings::default().head)
            .flatten(),
        encoder_share: config.encoder_share,
        ..Default::default()
    };
    let mut model = SentimentModel::train(&texts, None, encoder, &settings)?;
    model.manifest.data = files;
    model.manifest.weak_labels = weak;
    summary.holdout_accuracy = model.manifest.holdout_accuracy_stack;
    let dir = model_dir(project_root);
    model.save(&dir)?;
    summary.model_path = Some(dir.display().to_string());
    Ok(model)
}

/// The columns of `offers` [`golden_by_listing`] reads.
pub(crate) const OFFER_COLUMNS: &[&str] =
    &[offers::platform, offers::listing_id, offers::golden_id];

/// (platform, listing id) → golden id, from `offers` read with [`OFFER_COLUMNS`].
pub(crate) fn golden_by_listing(
    offers_rows: Option<shopfuse_core::value::NamedRows>,
) -> HashMap<(String, String), String> {
    let Some(o) = offers_rows else {
        return HashMap::new();
    };
    o.rows
        .iter()
        .filter_map(|r| {
            Some((
                (o.text(r, offers::platform)?, o.text(r, offers::listing_id)?),
                o.text(r, offers::golden_id)?,
            ))
        })
        .collect()
}

/// The columns of `clean_reviews` the review readers (this stage, risk) use.
pub const CLEAN_REVIEW_COLUMNS: &[&str] = &[
    "review_id",
    "account_id",
    "listing_id",
    "rating",
    "text",
    "reviewed_at",
    "_platform",
];

/// Every review with text, joined to its golden product.
pub fn read_reviews(tx: &Transaction<'_>) -> Result<Vec<ReviewRow>, SentimentError> {
    let golden = golden_by_listing(tx.read_columns(offers::NAME, OFFER_COLUMNS)?);
    let Some(rows) = tx.read_columns("clean_reviews", CLEAN_REVIEW_COLUMNS)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for r in &rows.rows {
        let Some(text) = rows.text(r, "text") else {
            continue;
        };
        let platform = rows.text(r, "_platform").unwrap_or_default();
        let listing_id = rows.text(r, "listing_id").unwrap_or_default();
        out.push(ReviewRow {
            review_id: rows.text(r, "review_id").unwrap_or_default(),
            account_id: rows.text(r, "account_id"),
            golden_id: golden.get(&(platform.clone(), listing_id.clone())).cloned(),
            platform,
            listing_id,
            at: rows.i64(r, "reviewed_at"),
            rating: rows.f64(r, "rating"),
            text,
        });
    }
    Ok(out)
}

/// Stars and text disagree clearly.
pub fn is_mismatch(rating: Option<f64>, p_positive: f64) -> bool {
    match rating {
        Some(r) if r >= 4.0 => p_positive < 0.2,
        Some(r) if r <= 2.0 => p_positive > 0.8,
        _ => false,
    }
}

fn rounded(x: f64) -> Value {
    Value::Float((x * 10_000.0).round() / 10_000.0)
}

fn write_reviews(
    tx: &mut Transaction<'_>,
    reviews: &[ReviewRow],
    predictions: &[crate::model::Prediction],
    summary: &mut SentimentSummary,
) -> Result<(), SentimentError> {
    let rows: Vec<Vec<Value>> = reviews
        .iter()
        .zip(predictions)
        .map(|(r, p)| {
            let mismatch = is_mismatch(r.rating, p.p_positive);
            summary.rating_mismatches += mismatch as usize;
            match p.polarity {
                Polarity::Negative => summary.negative += 1,
                Polarity::Neutral => summary.neutral += 1,
                Polarity::Positive => summary.positive += 1,
            }
            vec![
                Value::text(&r.review_id),
                Value::text(&r.platform),
                Value::opt_text(&r.account_id),
                Value::text(&r.listing_id),
                Value::opt_text(&r.golden_id),
                r.at.map_or(Value::Null, Value::Timestamp),
                r.rating.map_or(Value::Null, Value::Float),
                Value::text(p.polarity.as_str()),
                rounded(p.p_positive),
                Value::Bool(mismatch),
            ]
        })
        .collect();
    let schema = review_sentiment::TABLE.schema();
    let batch = rows_to_batch(&schema, &rows)?;
    tx.replace(review_sentiment::NAME, &schema, &[batch])?;
    Ok(())
}

fn write_aspects(
    tx: &mut Transaction<'_>,
    reviews: &[ReviewRow],
    found: &[crate::aspects::AspectMention],
) -> Result<(), SentimentError> {
    let rows: Vec<Vec<Value>> = found
        .iter()
        .map(|m| {
            let r = &reviews[m.review];
            vec![
                Value::text(&r.review_id),
                Value::opt_text(&r.golden_id),
                Value::text(&r.platform),
                Value::opt_text(&r.account_id),
                Value::text(m.aspect),
                Value::text(&m.clause),
                Value::text(m.polarity.as_str()),
                rounded(m.p_positive),
                Value::text(&m.matched_by),
            ]
        })
        .collect();
    let schema = review_aspects::TABLE.schema();
    let batch = rows_to_batch(&schema, &rows)?;
    tx.replace(review_aspects::NAME, &schema, &[batch])?;
    Ok(())
}

/// `aspect:count` of the negative aspect mentions of `alert`'s product within its span,
/// most first.
fn negative_aspects(
    alert: &crate::monitor::Alert,
    reviews: &[ReviewRow],
    found: &[crate::aspects::AspectMention],
) -> String {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for m in found.iter().filter(|m| m.polarity == Polarity::Negative) {
        let r = &reviews[m.review];
        let in_span =
            r.at.is_some_and(|at| (alert.window_start..alert.window_end).contains(&at));
        if in_span && r.golden_id.as_deref() == Some(alert.golden_id.as_str()) {
            *counts.entry(m.aspect).or_default() += 1;
        }
    }
    let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts
        .iter()
        .map(|(a, n)| format!("{a}:{n}"))
        .collect::<Vec<_>>()
        .join(";")
}

fn write_alerts(
    tx: &mut Transaction<'_>,
    reviews: &[ReviewRow],
    found: &[crate::aspects::AspectMention],
    raised: &[crate::monitor::Alert],
) -> Result<(), SentimentError> {
    use sha2::{Digest, Sha256};
    let rows: Vec<Vec<Value>> = raised
        .iter()
        .map(|a| {
            let key = format!("{}|{}|{}", a.golden_id, a.aspect, a.window_start);
            let id = format!("SA{}", &hex::encode(Sha256::digest(key.as_bytes()))[..12]);
            let examples: Vec<String> = a
                .examples
                .iter()
                .map(|&i| format!("{}: {}", reviews[i].review_id, reviews[i].text))
                .collect();
            vec![
                Value::Text(id),
                Value::text(&a.golden_id),
                Value::text(&a.aspect),
                Value::Timestamp(a.window_start),
                Value::Timestamp(a.window_end),
                Value::Int(a.mentions as i64),
                Value::Int(a.negative as i64),
                rounded(a.negative_share),
                rounded(a.baseline_share),
                rounded(a.z),
                Value::Float(a.p_value),
                Value::Text(negative_aspects(a, reviews, found)),
                Value::text(&a.platforms),
                Value::Text(examples.join(" | ")),
            ]
        })
        .collect();
    let schema = sentiment_alerts::TABLE.schema();
    let batch = rows_to_batch(&schema, &rows)?;
    tx.replace(sentiment_alerts::NAME, &schema, &[batch])?;
    Ok(())
}
