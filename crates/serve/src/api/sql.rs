//! `POST /api/v1/sql`: read-only SQL over the committed tables for the analyst role.
//!
//! One statement, `SELECT` or `WITH … SELECT`; DataFusion's planner is told to refuse DDL,
//! DML and session statements, and the session reads no files beyond the tables (see
//! [`shopfuse_query::QueryEngine::read_only`]). Every query is audited with its text, since it may read any
//! customer's (pseudonymised) rows. The session over a committed version is opened once
//! and kept until a newer version is committed.

use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use shopfuse_query::QueryError;
use utoipa::ToSchema;

use super::{audit_with, json_rejection, Caller};
use crate::error::ErrorBody;
use crate::{ApiError, AppState, Role};

/// The most rows one answer carries.
pub const MAX_ROWS: usize = 10_000;
/// The longest a query may run.
pub const MAX_TIMEOUT_MS: u64 = 30_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    /// One SELECT; tables as `shopfuse tables` lists them.
    pub sql: String,
    /// 1–10,000 (default 1,000).
    pub max_rows: Option<usize>,
    /// 1–30,000 (default 10,000).
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SqlColumn {
    pub name: String,
    /// The Arrow type, e.g. `Utf8`, `Int64`, `Timestamp(Microsecond, Some("UTC"))`.
    pub data_type: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SqlAnswer {
    /// The committed version the query read.
    pub version: u64,
    pub columns: Vec<SqlColumn>,
    /// One object per row, column name → value.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    /// More rows than `max_rows` matched; only the first are here.
    pub truncated: bool,
    pub elapsed_ms: f64,
}

/// Runs one read-only query over the committed tables.
#[utoipa::path(
    post, path = "/api/v1/sql", request_body = SqlRequest,
    responses((status = 200, body = SqlAnswer), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn query(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<SqlRequest>, JsonRejection>,
) -> Result<Json<SqlAnswer>, ApiError> {
    const ROUTE: &str = "/api/v1/sql";
    caller.require(Role::Analyst, ROUTE)?;
    let Json(request) = body.map_err(json_rejection)?;
    let max_rows = request.max_rows.unwrap_or(1_000);
    let timeout_ms = request.timeout_ms.unwrap_or(10_000);
    if !(1..=MAX_ROWS).contains(&max_rows) {
        return Err(ApiError::bad_request(format!(
            "max_rows must be 1–{MAX_ROWS} (is {max_rows})"
        )));
    }
    if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(ApiError::bad_request(format!(
            "timeout_ms must be 1–{MAX_TIMEOUT_MS} (is {timeout_ms})"
        )));
    }
    audit_with(&state, &caller, ROUTE, "*", Some(request.sql.clone()))?;
    let started = Instant::now();
    let timeout = Duration::from_millis(timeout_ms);
    let answer = tokio::task::spawn_blocking(move || {
        let engine = state.sql_engine()?;
        let limited = engine.read_only(&request.sql, max_rows, timeout)?;
        Ok::<_, QueryError>((engine.version(), limited))
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "query_failed",
            e.to_string(),
        )
    })?;
    let (version, limited) = answer.map_err(query_error)?;
    let rows = limited.result.to_json_rows().map_err(query_error)?;
    Ok(Json(SqlAnswer {
        version,
        columns: limited
            .result
            .schema
            .fields()
            .iter()
            .map(|f| SqlColumn {
                name: f.name().clone(),
                data_type: f.data_type().to_string(),
            })
            .collect(),
        rows,
        truncated: limited.truncated,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    }))
}

fn query_error(e: QueryError) -> ApiError {
    let code = match &e {
        QueryError::NotReadOnly(_) => "not_read_only",
        QueryError::Timeout(_) => "query_timeout",
        QueryError::DataFusion(_) => "bad_sql",
        _ => "query_failed",
    };
    let status = if e.is_caller_error() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    ApiError::new(status, code, e.to_string())
}
