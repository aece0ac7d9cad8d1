//! What the stage's tables say about one golden product — per platform, per aspect, per
//! month, its alerts and the most negative reviews — and one text analysed on its own
//! (`shopfuse sentiment "TEXT"`). Read by the CLI and the API alike.

use std::collections::BTreeMap;

use serde::Serialize;
use shopfuse_core::value::NamedRows;
use shopfuse_core::{Encoder, TableStore};

use crate::aspects::{clause_aspects, clauses, AspectVectors};
use crate::model::{Polarity, Prediction, SentimentModel};
use crate::tables::{review_aspects, review_sentiment, sentiment_alerts};
use crate::SentimentError;

/// Counts of one slice of reviews or mentions.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Tally {
    pub total: usize,
    pub negative: usize,
    pub neutral: usize,
    pub positive: usize,
    /// Share of negative ones.
    pub negative_share: f64,
    /// Mean star rating (reviews only, when rated).
    pub mean_rating: Option<f64>,
    #[serde(skip)]
    rated: usize,
}

impl Tally {
    fn add(&mut self, polarity: &str, rating: Option<f64>) {
        self.total += 1;
        match polarity {
            "negative" => self.negative += 1,
            "positive" => self.positive += 1,
            _ => self.neutral += 1,
        }
        self.negative_share = self.negative as f64 / self.total as f64;
        if let Some(r) = rating {
            let sum = self.mean_rating.map_or(0.0, |m| m * self.rated as f64);
            self.rated += 1;
            self.mean_rating = Some((sum + r) / self.rated as f64);
        }
    }
}

/// An alert as the report shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AlertView {
    pub alert_id: String,
    pub golden_id: String,
    pub aspect: String,
    pub window_start: Option<i64>,
    pub window_end: Option<i64>,
    pub mentions: i64,
    pub negative: i64,
    pub negative_share: f64,
    pub baseline_share: f64,
    pub z_score: f64,
    pub p_value: f64,
    pub negative_aspects: String,
    pub platforms: String,
    pub examples: String,
}

/// A review as the report lists it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReviewView {
    pub review_id: String,
    pub platform: String,
    pub reviewed_at: Option<i64>,
    pub rating: Option<f64>,
    pub polarity: String,
    pub p_positive: f64,
    pub rating_mismatch: bool,
    pub text: Option<String>,
}

/// One golden product's sentiment.
#[derive(Debug, Clone, Serialize)]
pub struct ProductSentiment {
    pub golden_id: String,
    pub overall: Tally,
    pub platforms: BTreeMap<String, Tally>,
    /// Aspect → its clause mentions.
    pub aspects: BTreeMap<String, Tally>,
    /// `YYYY-MM` → the month's reviews.
    pub months: BTreeMap<String, Tally>,
    pub alerts: Vec<AlertView>,
    /// The most negative reviews, most negative first.
    pub most_negative: Vec<ReviewView>,
    pub rating_mismatches: usize,
}

pub(crate) fn missing(store: &TableStore, table: &'static str) -> SentimentError {
    SentimentError::NotRun {
        path: store.tables_dir().to_path_buf(),
        table,
    }
}

fn month(at: Option<i64>) -> String {
    at.and_then(chrono::DateTime::from_timestamp_micros)
        .map(|t| t.format("%Y-%m").to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Every alert, newest first; only those of `golden_id` when given.
pub fn read_alerts(
    store: &TableStore,
    golden_id: Option<&str>,
) -> Result<Vec<AlertView>, SentimentError> {
    let Some(rows) = store.read_rows(sentiment_alerts::NAME)? else {
        return Err(missing(store, sentiment_alerts::NAME));
    };
    let mut out: Vec<AlertView> = rows
        .rows
        .iter()
        .map(|r| alert_view(&rows, r))
        .filter(|a| golden_id.is_none_or(|g| a.golden_id == g))
        .collect();
    out.sort_by(|a, b| {
        b.window_start
            .cmp(&a.window_start)
            .then(a.p_value.total_cmp(&b.p_value))
    });
    Ok(out)
}

fn alert_view(rows: &NamedRows, r: &[shopfuse_core::Value]) -> AlertView {
    use sentiment_alerts as a;
    AlertView {
        alert_id: rows.text(r, a::alert_id).unwrap_or_default(),
        golden_id: rows.text(r, a::golden_id).unwrap_or_default(),
        aspect: rows.text(r, a::aspect).unwrap_or_default(),
        window_start: rows.i64(r, a::window_start),
        window_end: rows.i64(r, a::window_end),
        mentions: rows.i64(r, a::mentions).unwrap_or_default(),
        negative: rows.i64(r, a::negative).unwrap_or_default(),
        negative_share: rows.f64(r, a::negative_share).unwrap_or_default(),
        baseline_share: rows.f64(r, a::baseline_share).unwrap_or_default(),
        z_score: rows.f64(r, a::z_score).unwrap_or_default(),
        p_value: rows.f64(r, a::p_value).unwrap_or_default(),
        negative_aspects: rows.text(r, a::negative_aspects).unwrap_or_default(),
        platforms: rows.text(r, a::platforms).unwrap_or_default(),
        examples: rows.text(r, a::examples).unwrap_or_default(),
    }
}

/// The sentiment of one golden product; `None` when it has no reviews.
pub fn product_sentiment(
    store: &TableStore,
    golden_id: &str,
    examples: usize,
) -> Result<Option<ProductSentiment>, SentimentError> {
    let rows = store
        .read_rows(review_sentiment::NAME)?
        .ok_or_else(|| missing(store, review_sentiment::NAME))?;
    let texts = review_texts(store)?;
    let mut report = ProductSentiment {
        golden_id: golden_id.to_string(),
        overall: Tally::default(),
        platforms: BTreeMap::new(),
        aspects: BTreeMap::new(),
        months: BTreeMap::new(),
        alerts: read_alerts(store, Some(golden_id))?,
        most_negative: Vec::new(),
        rating_mismatches: 0,
    };
    use review_sentiment as s;
    let mut reviews: Vec<ReviewView> = Vec::new();
    for r in &rows.rows {
        if rows.str(r, s::golden_id) != Some(golden_id) {
            continue;
        }
        let view = ReviewView {
            review_id: rows.text(r, s::review_id).unwrap_or_default(),
            platform: rows.text(r, s::platform).unwrap_or_default(),
            reviewed_at: rows.i64(r, s::reviewed_at),
            rating: rows.f64(r, s::rating),
            polarity: rows.text(r, s::polarity).unwrap_or_default(),
            p_positive: rows.f64(r, s::p_positive).unwrap_or_default(),
            rating_mismatch: rows.bool(r, s::rating_mismatch) == Some(true),
            text: None,
        };
        report.overall.add(&view.polarity, view.rating);
        report
            .platforms
            .entry(view.platform.clone())
            .or_default()
            .add(&view.polarity, view.rating);
        report
            .months
            .entry(month(view.reviewed_at))
            .or_default()
            .add(&view.polarity, view.rating);
        report.rating_mismatches += view.rating_mismatch as usize;
        reviews.push(view);
    }
    if reviews.is_empty() {
        return Ok(None);
    }
    if let Some(a) = store.read_columns(
        review_aspects::NAME,
        &[
            review_aspects::golden_id,
            review_aspects::aspect,
            review_aspects::polarity,
        ],
    )? {
        for r in &a.rows {
            if a.str(r, review_aspects::golden_id) == Some(golden_id) {
                report
                    .aspects
                    .entry(a.text(r, review_aspects::aspect).unwrap_or_default())
                    .or_default()
                    .add(a.str(r, review_aspects::polarity).unwrap_or_default(), None);
            }
        }
    }
    reviews.sort_by(|a, b| a.p_positive.total_cmp(&b.p_positive));
    reviews.truncate(examples);
    for v in &mut reviews {
        v.text = texts
            .get(&(v.platform.clone(), v.review_id.clone()))
            .cloned();
    }
    report.most_negative = reviews;
    Ok(Some(report))
}

/// (platform, review id) → the review's text, from `clean_reviews`.
pub(crate) fn review_texts(
    store: &TableStore,
) -> Result<std::collections::HashMap<(String, String), String>, SentimentError> {
    let Some(rows) = store.read_columns("clean_reviews", &["_platform", "review_id", "text"])?
    else {
        return Ok(Default::default());
    };
    Ok(rows
        .rows
        .iter()
        .filter_map(|r| {
            Some((
                (rows.text(r, "_platform")?, rows.text(r, "review_id")?),
                rows.text(r, "text")?,
            ))
        })
        .collect())
}

/// One clause of an analysed text.
#[derive(Debug, Clone, Serialize)]
pub struct ClauseView {
    pub clause: String,
    pub polarity: Polarity,
    pub p_positive: f64,
    /// The aspects it names, each with how (`seed:WORD` / `similarity:COSINE`).
    pub aspects: Vec<(String, String)>,
}

/// A text analysed on its own.
#[derive(Debug, Clone, Serialize)]
pub struct TextAnalysis {
    pub text: String,
    pub prediction: Prediction,
    pub clauses: Vec<ClauseView>,
}

/// The text's polarity and, clause by clause, polarity and aspects.
pub fn analyse(
    model: &SentimentModel,
    encoder: Option<&dyn Encoder>,
    text: &str,
) -> Result<TextAnalysis, SentimentError> {
    let encoder = encoder.filter(|_| model.uses_encoder());
    let prediction = model.predict(&[text], encoder)?[0];
    let vectors = encoder.map(AspectVectors::new).transpose()?;
    let parts = clauses(text);
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let predictions = model.predict(&refs, encoder)?;
    let aspects = clause_aspects(&refs, encoder, vectors.as_ref())?;
    let clauses = parts
        .iter()
        .zip(predictions)
        .zip(aspects)
        .map(|((c, p), aspects)| ClauseView {
            clause: c.clone(),
            polarity: p.polarity,
            p_positive: p.p_positive,
            aspects: aspects
                .into_iter()
                .map(|(aspect, how)| (aspect.to_string(), how))
                .collect(),
        })
        .collect();
    Ok(TextAnalysis {
        text: text.to_string(),
        prediction,
        clauses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_keeps_its_share_and_mean_rating() {
        let mut t = Tally::default();
        t.add("negative", Some(1.0));
        t.add("positive", Some(5.0));
        t.add("neutral", None);
        assert_eq!((t.total, t.negative, t.positive, t.neutral), (3, 1, 1, 1));
        assert!((t.negative_share - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(t.mean_rating, Some(3.0));
    }
}
