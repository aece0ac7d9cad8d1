//! Fraud and risk from the risk stage's tables: the riskiest orders and reviews and the
//! densest rings (`GET /api/v1/risk`), and one ring with its member accounts and their orders
//! (`GET /api/v1/risk/rings/{ring_id}`). Both name accounts and customers: analyst role, and
//! every customer a response names is audited.

use std::collections::BTreeSet;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value as Json_};
use utoipa::IntoParams;

use super::reports::blocking;
use super::{audit, page_limit, query, Caller};
use crate::error::ErrorBody;
use crate::{ApiError, AppState, Role};

/// The stage has not run (`409`), an unknown ring (`404`), or the files are at fault (`503`).
fn read_failed(e: shopfuse_risk::RiskError) -> ApiError {
    match e {
        shopfuse_risk::RiskError::NotRun { .. } => {
            ApiError::new(StatusCode::CONFLICT, "not_built", e.to_string())
        }
        shopfuse_risk::RiskError::Unknown { .. } => ApiError::not_found(e.to_string()),
        _ => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "report_failed",
            e.to_string(),
        ),
    }
}

/// Audits each distinct customer the rows name.
fn audit_rows<'a>(
    state: &AppState,
    caller: &Caller,
    route: &str,
    rows: impl Iterator<Item = &'a Map<String, Json_>>,
) -> Result<(), ApiError> {
    let customers: BTreeSet<&str> = rows
        .filter_map(|r| r.get("customer_id").and_then(Json_::as_str))
        .collect();
    for c in customers {
        audit(state, caller, route, c)?;
    }
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RiskQuery {
    /// Rows of each kind (orders, reviews, rings), 1–500 (default 20).
    pub top: Option<usize>,
}

/// The riskiest orders and reviews with their reasons, and the densest rings with their
/// evidence.
#[utoipa::path(
    get, path = "/api/v1/risk", params(RiskQuery),
    responses((status = 200, description = "orders, reviews, rings", content_type = "application/json"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn top(
    State(state): State<AppState>,
    caller: Caller,
    parsed: Result<Query<RiskQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    const ROUTE: &str = "/api/v1/risk";
    caller.require(Role::Analyst, ROUTE)?;
    let q = query(parsed)?;
    let n = page_limit(Some(q.top.unwrap_or(20)))?;
    let st = state.clone();
    let top = blocking(move || Ok(shopfuse_risk::report::top(st.store(), n)))
        .await?
        .map_err(read_failed)?;
    audit_rows(&state, &caller, ROUTE, top.orders.iter())?;
    Ok(Json(serde_json::to_value(top).unwrap_or_default()))
}

/// One ring: its evidence, member accounts (with their customers) and their orders.
#[utoipa::path(
    get, path = "/api/v1/risk/rings/{ring_id}",
    params(("ring_id" = String, Path, description = "Ring id (RG…)")),
    responses((status = 200, description = "ring, accounts, orders", content_type = "application/json"),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn ring(
    State(state): State<AppState>,
    caller: Caller,
    Path(ring_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    const ROUTE: &str = "/api/v1/risk/rings/{ring_id}";
    caller.require(Role::Analyst, ROUTE)?;
    let st = state.clone();
    let view = blocking(move || Ok(shopfuse_risk::report::ring(st.store(), &ring_id)))
        .await?
        .map_err(read_failed)?;
    audit_rows(&state, &caller, ROUTE, view.accounts.iter())?;
    Ok(Json(serde_json::to_value(view).unwrap_or_default()))
}
