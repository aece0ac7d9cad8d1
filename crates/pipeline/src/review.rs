//! The review queue of product matching: the candidate pairs the matcher is least sure about,
//! for `shopfuse review export` and `GET /api/v1/review/pairs` alike.

use serde::Serialize;
use shopfuse_core::value::NamedRows;
use shopfuse_query::QueryEngine;
use shopfuse_resolve::catalogue::review_labels;

use crate::PipelineError;

/// One pair to review: both listings with their titles, the match probability and what drove
/// it.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewPair {
    pub left_platform: String,
    pub left_listing_id: String,
    pub left_title: String,
    pub right_platform: String,
    pub right_listing_id: String,
    pub right_title: String,
    pub match_probability: f64,
    pub drivers: String,
}

/// The pairs closest to the matcher's threshold that no GTIN decided and nobody reviewed yet,
/// closest first, `offset` skipped; `None` before resolve has run.
pub fn uncertain_pairs(
    engine: &QueryEngine,
    limit: usize,
    offset: usize,
) -> Result<Option<Vec<ReviewPair>>, PipelineError> {
    if !engine.tables().iter().any(|t| t == "resolve_candidates") {
        return Ok(None);
    }
    let reviewed_table = review_labels::NAME;
    let reviewed = if engine.tables().iter().any(|t| t == reviewed_table) {
        format!(
            "and not exists (select 1 from {reviewed_table} r where r.left_platform = c.left_platform \
             and r.left_listing_id = c.left_listing_id and r.right_platform = c.right_platform \
             and r.right_listing_id = c.right_listing_id)"
        )
    } else {
        String::new()
    };
    let query = format!(
        "select c.left_platform, c.left_listing_id, l.title as left_title, c.right_platform, \
         c.right_listing_id, r.title as right_title, c.match_probability, c.drivers \
         from resolve_candidates c \
         join offers l on l.platform = c.left_platform and l.listing_id = c.left_listing_id \
         join offers r on r.platform = c.right_platform and r.listing_id = c.right_listing_id \
         where c.label_source <> 'gtin' {reviewed} \
         order by abs(c.match_probability - c.threshold), c.left_platform, c.left_listing_id, \
         c.right_platform, c.right_listing_id limit {limit} offset {offset}"
    );
    let result = engine.sql(&query)?;
    let rows = NamedRows::from_batches(&result.schema, &result.batches)?;
    Ok(Some(
        rows.rows
            .iter()
            .map(|r| {
                let text = |c: &str| rows.text(r, c).unwrap_or_default();
                ReviewPair {
                    left_platform: text("left_platform"),
                    left_listing_id: text("left_listing_id"),
                    left_title: text("left_title"),
                    right_platform: text("right_platform"),
                    right_listing_id: text("right_listing_id"),
                    right_title: text("right_title"),
                    match_probability: rows.f64(r, "match_probability").unwrap_or(0.0),
                    drivers: text("drivers"),
                }
            })
            .collect(),
    ))
}
