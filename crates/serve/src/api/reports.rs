//! Reports under `/api/v1/reports`: data quality, quarantine by reason, customer segments
//! (differentially private for the viewer role) and the stages' own summaries with their
//! models' validation figures.
//!
//! Why segment counts are noisy for viewers: a count per segment, asked for again after one
//! customer's data changed, tells who changed. The viewer gets the Laplace mechanism of
//! `shopfuse report customers` (ε per query, default 1); analysts may ask for exact figures.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use shopfuse_clean::quality::QualityReport;
use shopfuse_learn::ReportGrouping;
use utoipa::IntoParams;

use super::{query, Caller};
use crate::error::ErrorBody;
use crate::{ApiError, AppState, Role};

/// Runs a blocking read of the committed tables; a failure is a `503` (the project's files,
/// not the request, are at fault).
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "report_failed", e))
}

/// Per source: rows read, accepted, quarantined, nulls and invalid values per field,
/// duplicates and outliers (what `shopfuse report quality` prints).
#[utoipa::path(
    get, path = "/api/v1/reports/quality",
    responses((status = 200, description = "The quality report", content_type = "application/json"),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn quality(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Viewer, "/api/v1/reports/quality")?;
    let report = blocking(move || {
        let report = QualityReport::load(state.store()).map_err(|e| e.to_string())?;
        report
            .map(|r| serde_json::to_value(r).map_err(|e| e.to_string()))
            .transpose()
    })
    .await?;
    report
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no quality report yet: run `shopfuse run`"))
}

/// Quarantined rows by source, kind and reason.
#[utoipa::path(
    get, path = "/api/v1/reports/quarantine",
    responses((status = 200, description = "Rows per source, kind and reason", content_type = "application/json"),
              (status = 401, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn quarantine(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Viewer, "/api/v1/reports/quarantine")?;
    let rows = blocking(move || {
        let engine = state.sql_engine().map_err(|e| e.to_string())?;
        if !engine.tables().iter().any(|t| t == "quarantine") {
            return Ok(Vec::new());
        }
        engine
            .sql(
                "select source, platform, kind, reason, count(*) as rows from quarantine \
                 group by source, platform, kind, reason order by source, kind, reason",
            )
            .and_then(|r| r.to_json_rows())
            .map_err(|e| e.to_string())
    })
    .await?;
    Ok(Json(serde_json::json!({ "groups": rows })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SegmentQuery {
    /// `segment` (default) or `platforms` (how many platforms a customer uses).
    pub by: Option<String>,
    /// Privacy budget of this query, 0.01–10. Viewers always get noise (default 1);
    /// analysts get exact figures unless they set it.
    pub epsilon: Option<f64>,
    /// Spend per customer counted at most, in the base currency (default 20,000).
    pub clip: Option<f64>,
}

/// Customers and spend per segment (or per number of platforms used).
#[utoipa::path(
    get, path = "/api/v1/reports/segments", params(SegmentQuery),
    responses((status = 200, description = "Groups with customers, spend and the noise used", content_type = "application/json"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn segments(
    State(state): State<AppState>,
    caller: Caller,
    parsed: Result<Query<SegmentQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Viewer, "/api/v1/reports/segments")?;
    let q = query(parsed)?;
    let grouping = match q.by.as_deref().unwrap_or("segment") {
        "segment" => ReportGrouping::Segment,
        "platforms" => ReportGrouping::Platforms,
        other => {
            return Err(ApiError::bad_request(format!(
                "by must be segment or platforms (is {other:?})"
            )))
        }
    };
    let epsilon = match (caller.role, q.epsilon) {
        (Role::Viewer, None) => Some(1.0),
        (_, e) => e,
    };
    if let Some(e) = epsilon.filter(|e| !(0.01..=10.0).contains(e)) {
        return Err(ApiError::bad_request(format!(
            "epsilon must be 0.01–10 (is {e})"
        )));
    }
    let clip = q.clip.unwrap_or(20_000.0);
    let index = state.index();
    let customers: Vec<(String, usize, f64)> = index
        .customers()
        .map(|c| (c.segment.clone(), c.platforms.len(), c.monetary_base))
        .collect();
    let platforms: std::collections::BTreeSet<&str> = index
        .customers()
        .flat_map(|c| c.platforms.iter().map(String::as_str))
        .collect();
    let report = shopfuse_learn::customer_report(
        &customers,
        grouping,
        platforms.len(),
        epsilon,
        clip,
        &mut rand::rng(),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    serde_json::to_value(report).map(Json).map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "report_failed",
            e.to_string(),
        )
    })
}

/// Each stage's summary from the run that last ran it: counts, and its models' validation
/// figures (the matcher's held-out precision/recall/F1 and threshold, the identity model's
/// parameters, the recommender's validation NDCG@10 and hybrid weights).
#[utoipa::path(
    get, path = "/api/v1/reports/evaluations",
    responses((status = 200, description = "Stage → version and summary", content_type = "application/json"),
              (status = 401, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn evaluations(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Viewer, "/api/v1/reports/evaluations")?;
    let manifest = blocking(move || state.store().manifest().map_err(|e| e.to_string())).await?;
    let stages: serde_json::Map<String, serde_json::Value> = manifest
        .stages
        .iter()
        .map(|(name, record)| {
            let entry = serde_json::json!({
                "version": record.version, "seconds": record.seconds, "summary": record.summary,
            });
            (name.clone(), entry)
        })
        .collect();
    Ok(Json(serde_json::json!({
        "version": manifest.version, "committed_at": manifest.committed_at, "stages": stages,
    })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QuarantineRowsQuery {
    /// Only this `[[sources]]` entry.
    pub source: Option<String>,
    /// Only this reason (invalid_value, missing_required, malformed_row, erased).
    pub reason: Option<String>,
    /// Only this entity kind.
    pub kind: Option<String>,
    /// 1–500 (default 50).
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// The quarantined rows themselves, filtered and paged: file, line, field, reason, the
/// message with its fix, and the raw line (empty for kinds with personal data).
#[utoipa::path(
    get, path = "/api/v1/reports/quarantine/rows", params(QuarantineRowsQuery),
    responses((status = 200, description = "total and rows", content_type = "application/json"),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn quarantine_rows(
    State(state): State<AppState>,
    caller: Caller,
    parsed: Result<Query<QuarantineRowsQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    // Raw lines are the source as exported: analysts, as for the SQL endpoint.
    caller.require(Role::Analyst, "/api/v1/reports/quarantine/rows")?;
    let q = query(parsed)?;
    let limit = super::page_limit(q.limit)?;
    let offset = q.offset.unwrap_or(0);
    let filter = [
        ("source", &q.source),
        ("reason", &q.reason),
        ("kind", &q.kind),
    ]
    .iter()
    .filter_map(|(column, value)| {
        value
            .as_deref()
            .map(|v| format!("{column} = {}", shopfuse_query::sql_literal(v)))
    })
    .chain(std::iter::once("true".to_string()))
    .collect::<Vec<_>>()
    .join(" and ");
    let (total, rows) = blocking(move || {
        let engine = state.sql_engine().map_err(|e| e.to_string())?;
        if !engine.tables().iter().any(|t| t == "quarantine") {
            return Ok((0, Vec::new()));
        }
        let run = |sql: String| {
            engine
                .sql(&sql)
                .and_then(|r| r.to_json_rows())
                .map_err(|e| e.to_string())
        };
        let total = run(format!("select count(*) as n from quarantine where {filter}"))?
            .first()
            .and_then(|r| r.get("n").and_then(|v| v.as_i64()))
            .unwrap_or(0);
        let rows = run(format!(
            "select source, platform, kind, file, \"row\", field, \"column\", reason, message, raw \
             from quarantine where {filter} order by source, file, \"row\" limit {limit} offset {offset}"
        ))?;
        Ok((total, rows))
    })
    .await?;
    Ok(Json(serde_json::json!({
        "total": total, "offset": offset, "limit": limit, "rows": rows,
    })))
}
