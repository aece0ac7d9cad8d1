//! The review queue over HTTP: `GET /api/v1/review/pairs` (analyst) lists the candidate
//! pairs closest to the matcher's threshold, `POST /api/v1/review/decisions` (admin) stores
//! reviewers' decisions as review labels — the same table `shopfuse review import` fills, so
//! the next run uses them as must-links / cannot-links and training labels.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use shopfuse_core::TableStore;
use shopfuse_pipeline::review::uncertain_pairs;
use shopfuse_resolve::catalogue::ReviewLabel;
use shopfuse_resolve::review::merge_review_labels;
use utoipa::{IntoParams, ToSchema};

use super::{json_rejection, query, Caller};
use crate::error::ErrorBody;
use crate::{ApiError, AppState, Role};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PairsQuery {
    /// 1–500 (default 50).
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// A pair of listings the matcher is unsure about.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewCandidate {
    pub left_platform: String,
    pub left_listing_id: String,
    pub left_title: String,
    pub right_platform: String,
    pub right_listing_id: String,
    pub right_title: String,
    pub match_probability: f64,
    /// The features that moved the probability most.
    pub drivers: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewQueue {
    pub pairs: Vec<ReviewCandidate>,
}

/// The pairs closest to the threshold that no GTIN decided and nobody reviewed yet.
#[utoipa::path(
    get, path = "/api/v1/review/pairs", params(PairsQuery),
    responses((status = 200, body = ReviewQueue), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn pairs(
    State(state): State<AppState>,
    caller: Caller,
    parsed: Result<Query<PairsQuery>, QueryRejection>,
) -> Result<Json<ReviewQueue>, ApiError> {
    caller.require(Role::Analyst, "/api/v1/review/pairs")?;
    let q = query(parsed)?;
    let limit = super::page_limit(q.limit)?;
    let offset = q.offset.unwrap_or(0);
    let found = tokio::task::spawn_blocking(move || {
        let engine = state.sql_engine().map_err(|e| e.to_string())?;
        uncertain_pairs(&engine, limit, offset)
            .map_err(|e| format!("{e}: {}", super::error_chain(&e)))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "query_failed", e))?;
    let pairs = found.ok_or_else(|| {
        ApiError::not_found("no candidate pairs yet: the project has not been resolved")
    })?;
    Ok(Json(ReviewQueue {
        pairs: pairs
            .into_iter()
            .map(|p| ReviewCandidate {
                left_platform: p.left_platform,
                left_listing_id: p.left_listing_id,
                left_title: p.left_title,
                right_platform: p.right_platform,
                right_listing_id: p.right_listing_id,
                right_title: p.right_title,
                match_probability: p.match_probability,
                drivers: p.drivers,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDecisions {
    /// 1–10,000 decisions.
    pub decisions: Vec<ReviewDecision>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDecision {
    pub left_platform: String,
    pub left_listing_id: String,
    pub right_platform: String,
    pub right_listing_id: String,
    /// true: the same product; false: different products.
    pub same_product: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewReceipt {
    /// Decisions stored by this request.
    pub labels: usize,
    /// Reviewed pairs in the project now.
    pub total_reviewed: usize,
    /// The version committed with them; the next `shopfuse run` resolves with them.
    pub version: u64,
}

/// Stores review decisions as labels for the next run (a pair decided before takes the new
/// decision).
#[utoipa::path(
    post, path = "/api/v1/review/decisions", request_body = ReviewDecisions,
    responses((status = 200, body = ReviewReceipt), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn decisions(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<ReviewDecisions>, JsonRejection>,
) -> Result<Json<ReviewReceipt>, ApiError> {
    caller.require(Role::Admin, "/api/v1/review/decisions")?;
    let Json(batch) = body.map_err(json_rejection)?;
    if batch.decisions.is_empty() || batch.decisions.len() > 10_000 {
        return Err(ApiError::bad_request(format!(
            "decisions: 1–10,000 per request (this one {})",
            batch.decisions.len()
        )));
    }
    let labels = labels(&state, &batch.decisions)?;
    let source = format!("api:{}", caller.name);
    let stored = labels.len();
    let outcome = tokio::task::spawn_blocking(move || {
        let store = TableStore::open(state.project()).map_err(|e| e.to_string())?;
        let mut tx = store.begin().map_err(|e| e.to_string())?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let total =
            merge_review_labels(&mut tx, &labels, &now, &source).map_err(|e| e.to_string())?;
        let manifest = tx.commit(now).map_err(|e| e.to_string())?;
        let _ = state.reload_if_committed();
        Ok::<_, String>((total, manifest.version))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store_busy", e))?;
    Ok(Json(ReviewReceipt {
        labels: stored,
        total_reviewed: outcome.0,
        version: outcome.1,
    }))
}

/// The decisions as labels, each pair in key order; a `400` naming the first decision with
/// a listing the catalogue does not have.
fn labels(state: &AppState, decisions: &[ReviewDecision]) -> Result<Vec<ReviewLabel>, ApiError> {
    let index = state.index();
    decisions
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let left = (d.left_platform.clone(), d.left_listing_id.clone());
            let right = (d.right_platform.clone(), d.right_listing_id.clone());
            for (side, (platform, listing)) in [("left", &left), ("right", &right)] {
                if index.product_of_listing(platform, listing).is_none() {
                    return Err(ApiError::bad_request(format!(
                        "decisions[{i}]: no {side} listing {listing:?} on {platform:?}"
                    )));
                }
            }
            if left == right {
                return Err(ApiError::bad_request(format!(
                    "decisions[{i}]: a listing paired with itself"
                )));
            }
            let (left, right) = if left <= right {
                (left, right)
            } else {
                (right, left)
            };
            Ok(ReviewLabel {
                left,
                right,
                is_match: d.same_product,
            })
        })
        .collect()
}
