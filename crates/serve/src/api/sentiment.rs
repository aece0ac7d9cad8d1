//! Review sentiment from the sentiment stage's tables: one golden product's sentiment per
//! platform, aspect and month with its alerts and most negative reviews
//! (`GET /api/v1/products/{golden_id}/sentiment`), and every alert
//! (`GET /api/v1/reports/sentiment`). Reviews are public on the platforms and carry no
//! account id here: viewer role.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::reports::blocking;
use super::{page_limit, query, Caller};
use crate::error::ErrorBody;
use crate::{ApiError, AppState, Role};

/// What a failed read of the sentiment tables means: the stage has not run (`409`, saying
/// what to run), or the project's files are at fault (`503`).
fn read_failed(e: shopfuse_sentiment::SentimentError) -> ApiError {
    let status = match e {
        shopfuse_sentiment::SentimentError::NotRun { .. } => StatusCode::CONFLICT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let code = if status == StatusCode::CONFLICT {
        "not_built"
    } else {
        "report_failed"
    };
    ApiError::new(status, code, e.to_string())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductSentimentQuery {
    /// Most negative reviews listed (default 5, at most 500).
    pub examples: Option<usize>,
}

/// One golden product's review sentiment: totals per platform, negative share per aspect
/// and month, its alerts, and its most negative reviews with their text.
#[utoipa::path(
    get, path = "/api/v1/products/{golden_id}/sentiment",
    params(("golden_id" = String, Path, description = "Golden product id (GP…)"), ProductSentimentQuery),
    responses((status = 200, description = "The product's sentiment report", content_type = "application/json"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn product_sentiment(
    State(state): State<AppState>,
    caller: Caller,
    Path(golden_id): Path<String>,
    parsed: Result<Query<ProductSentimentQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Viewer, "/api/v1/products/{golden_id}/sentiment")?;
    let q = query(parsed)?;
    let examples = page_limit(Some(q.examples.unwrap_or(5)))?;
    if state.index().product(&golden_id).is_none() {
        return Err(ApiError::not_found(format!(
            "no golden product {golden_id:?}"
        )));
    }
    let id = golden_id.clone();
    let report = blocking(move || {
        Ok(shopfuse_sentiment::report::product_sentiment(
            state.store(),
            &id,
            examples,
        ))
    })
    .await?
    .map_err(read_failed)?;
    report
        .map(|r| Json(serde_json::to_value(r).unwrap_or_default()))
        .ok_or_else(|| ApiError::not_found(format!("{golden_id} has no reviews")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Alerts listed, newest first (default 50).
    pub limit: Option<usize>,
    /// Only this golden product's.
    pub golden_id: Option<String>,
}

/// The sentiment alerts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SentimentAlerts {
    /// Rows of `sentiment_alerts` (alert_id, golden_id, aspect, window_start/end in µs,
    /// mentions, negative, negative_share, baseline_share, z_score, platforms, examples).
    pub alerts: Vec<serde_json::Value>,
    /// Every alert the last run raised.
    pub total: usize,
}

/// Products whose negative share, overall or on one aspect, jumped against their own history.
#[utoipa::path(
    get, path = "/api/v1/reports/sentiment", params(AlertsQuery),
    responses((status = 200, body = SentimentAlerts), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn alerts(
    State(state): State<AppState>,
    caller: Caller,
    parsed: Result<Query<AlertsQuery>, QueryRejection>,
) -> Result<Json<SentimentAlerts>, ApiError> {
    caller.require(Role::Viewer, "/api/v1/reports/sentiment")?;
    let q = query(parsed)?;
    let limit = page_limit(q.limit)?;
    let result = blocking(move || {
        Ok(shopfuse_sentiment::report::read_alerts(
            state.store(),
            q.golden_id.as_deref(),
        ))
    })
    .await?;
    let all = result.map_err(read_failed)?;
    let total = all.len();
    let alerts = all
        .into_iter()
        .take(limit)
        .map(|a| serde_json::to_value(a).unwrap_or_default())
        .collect();
    Ok(Json(SentimentAlerts { alerts, total }))
}
