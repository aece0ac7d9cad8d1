//! `GET /api/v1/customers/{id}/propensity` (analyst, audited): one customer's purchase, churn
//! and value scores with their drivers and per-platform probabilities; `POST
//! /api/v1/audiences`: the customers a condition selects — a differentially private count
//! for a viewer, keyed-hash pseudonyms for an analyst, and the platforms' own account ids
//! only for an admin who asks for them (audited).
//!
//! Both read the committed tables through the server's read-only SQL session, so they see
//! exactly the version the rest of the API serves once it reloads.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use shopfuse_core::value::NamedRows;
use shopfuse_pipeline::audience::{audience, audience_size, AudienceIds, AudienceRequest};
use shopfuse_pipeline::PipelineError;
use shopfuse_propensity::{propensity as p, propensity_platforms as pp};
use utoipa::ToSchema;

use super::{audit_with, json_rejection, Caller};
use crate::error::ErrorBody;
use crate::{ApiError, AppState, Role};

#[derive(Debug, Serialize, ToSchema)]
pub struct PlatformPropensity {
    pub platform: String,
    /// P(a purchase on this platform in 30 days), from the fused customer.
    pub p_buy_30d: Option<f64>,
    /// The same from this platform's data alone.
    pub p_buy_30d_alone: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerPropensity {
    pub customer_id: String,
    /// The cut-off of the scores (RFC 3339).
    pub as_of: Option<String>,
    pub p_buy_30d: Option<f64>,
    pub p_buy_30d_btyd: Option<f64>,
    pub p_alive: Option<f64>,
    pub p_churn_90d: Option<f64>,
    pub expected_purchases_90d: Option<f64>,
    pub expected_spend_90d: Option<f64>,
    /// `feature[scope]=value (±log-odds)`, strongest first.
    pub drivers: Vec<String>,
    pub per_platform: Vec<PlatformPropensity>,
}

/// One customer's propensity scores.
#[utoipa::path(
    get, path = "/api/v1/customers/{customer_id}/propensity",
    params(("customer_id" = String, Path, description = "Unified customer id (CU…)")),
    responses((status = 200, body = CustomerPropensity), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn customer_propensity(
    State(state): State<AppState>,
    caller: Caller,
    Path(customer_id): Path<String>,
) -> Result<Json<CustomerPropensity>, ApiError> {
    const ROUTE: &str = "/api/v1/customers/{customer_id}/propensity";
    caller.require(Role::Analyst, ROUTE)?;
    if state.index().customer(&customer_id).is_none() {
        return Err(ApiError::not_found(format!("no customer {customer_id:?}")));
    }
    audit_with(&state, &caller, ROUTE, &customer_id, None)?;
    let id = customer_id.clone();
    let (scores, platforms) = tokio::task::spawn_blocking(move || {
        let engine = state.sql_engine()?;
        let quoted = shopfuse_query::sql_literal(&id);
        let read = |table: &str| -> Result<NamedRows, shopfuse_query::QueryError> {
            if !engine.tables().iter().any(|t| t == table) {
                return Ok(NamedRows::default());
            }
            let r = engine.sql(&format!(
                "select * from {table} where customer_id = {quoted} order by 1, 2"
            ))?;
            Ok(NamedRows::from_batches(&r.schema, &r.batches)?)
        };
        Ok::<_, shopfuse_query::QueryError>((read(p::NAME)?, read(pp::NAME)?))
    })
    .await
    .map_err(|e| ApiError::unavailable(e.to_string()))?
    .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let Some(row) = scores.rows.first() else {
        return Err(ApiError::not_found(format!(
            "no propensity scores for {customer_id:?} yet: the propensity stage has not run on this version"
        )));
    };
    let f = |c: &str| scores.f64(row, c);
    Ok(Json(CustomerPropensity {
        as_of: scores
            .i64(row, p::as_of)
            .and_then(chrono::DateTime::from_timestamp_micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        p_buy_30d: f(p::p_buy_30d),
        p_buy_30d_btyd: f(p::p_buy_30d_btyd),
        p_alive: f(p::p_alive),
        p_churn_90d: f(p::p_churn_90d),
        expected_purchases_90d: f(p::expected_purchases_90d),
        expected_spend_90d: f(p::expected_spend_90d),
        drivers: scores
            .text(row, p::drivers)
            .map(|d| d.split("; ").map(String::from).collect())
            .unwrap_or_default(),
        per_platform: platforms
            .rows
            .iter()
            .map(|r| PlatformPropensity {
                platform: platforms.text(r, pp::platform).unwrap_or_default(),
                p_buy_30d: platforms.f64(r, pp::p_buy_30d),
                p_buy_30d_alone: platforms.f64(r, pp::p_buy_30d_alone),
            })
            .collect(),
        customer_id,
    }))
}

/// Which ids an audience's accounts carry.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdsField {
    Pseudonymous,
    Platform,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AudienceBody {
    /// SQL condition over one row per customer (propensity and profile columns), e.g.
    /// `p_buy_30d > 0.6 and segment = 'at risk'`.
    #[serde(rename = "where")]
    pub condition: String,
    /// Only accounts on this platform.
    pub platform: Option<String>,
    /// `pseudonymous` (default) or `platform` (admin only).
    pub ids: Option<IdsField>,
    /// Only a count with Laplace noise of this budget (0 < ε ≤ 10). A viewer always gets
    /// this, with ε = 1 unless given.
    pub dp_epsilon: Option<f64>,
    /// The most accounts returned, 1–100,000 (default 10,000).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AudienceAccount {
    pub customer_id: String,
    pub platform: String,
    pub pseudonymous_id: String,
    /// The platform's own id: admin with `ids = platform` only.
    pub account_id: Option<String>,
    pub p_buy_30d: Option<f64>,
    pub segment: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AudienceAnswer {
    /// Customers selected: exact, or noisy when `epsilon` is set.
    pub customers: f64,
    pub epsilon: Option<f64>,
    pub platform: Option<String>,
    /// Empty for a noisy count.
    pub accounts: Vec<AudienceAccount>,
    /// More accounts matched than `limit`.
    pub truncated: bool,
}

/// The customers a condition selects, as a count or as accounts to activate.
#[utoipa::path(
    post, path = "/api/v1/audiences", request_body = AudienceBody,
    responses((status = 200, body = AudienceAnswer), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn audiences(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<AudienceBody>, JsonRejection>,
) -> Result<Json<AudienceAnswer>, ApiError> {
    const ROUTE: &str = "/api/v1/audiences";
    caller.require(Role::Viewer, ROUTE)?;
    let Json(body) = body.map_err(json_rejection)?;
    let ids = match body.ids.unwrap_or(IdsField::Pseudonymous) {
        IdsField::Pseudonymous => AudienceIds::Pseudonymous,
        IdsField::Platform => {
            caller.require(Role::Admin, "/api/v1/audiences with ids = platform")?;
            AudienceIds::Platform
        }
    };
    let epsilon = match (caller.role, body.dp_epsilon) {
        (Role::Viewer, None) => Some(1.0),
        (_, e) => e,
    };
    if let Some(e) = epsilon.filter(|e| !(*e > 0.0 && *e <= 10.0)) {
        return Err(ApiError::bad_request(format!(
            "dp_epsilon must be in (0, 10] (is {e})"
        )));
    }
    let limit = body.limit.unwrap_or(10_000);
    if !(1..=100_000).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1–100000 (is {limit})"
        )));
    }
    let request = AudienceRequest {
        condition: body.condition,
        platform: body.platform,
        ids,
    };
    if epsilon.is_none() {
        let detail = format!(
            "where {}; platform {}",
            request.condition,
            request.platform.as_deref().unwrap_or("all")
        );
        audit_with(&state, &caller, ROUTE, "*", Some(detail))?;
    }
    let secret = state
        .project()
        .secret()
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let answer = tokio::task::spawn_blocking(move || {
        let engine = state.sql_engine().map_err(PipelineError::from)?;
        match epsilon {
            Some(e) => {
                let n = audience_size(&engine, &request)? as f64;
                let noise = shopfuse_learn::privacy::laplace(1.0 / e, &mut rand::rng());
                Ok::<_, PipelineError>(AudienceAnswer {
                    customers: (n + noise).round().max(0.0),
                    epsilon: Some(e),
                    platform: request.platform,
                    accounts: Vec::new(),
                    truncated: false,
                })
            }
            None => {
                let a = audience(&engine, &secret, &request)?;
                let truncated = a.members.len() > limit;
                Ok(AudienceAnswer {
                    customers: a.customers as f64,
                    epsilon: None,
                    platform: a.platform,
                    truncated,
                    accounts: a
                        .members
                        .into_iter()
                        .take(limit)
                        .map(|m| AudienceAccount {
                            customer_id: m.customer_id,
                            platform: m.platform,
                            pseudonymous_id: m.pseudonymous_id,
                            account_id: m.account_id,
                            p_buy_30d: m.p_buy_30d,
                            segment: m.segment,
                        })
                        .collect(),
                })
            }
        }
    })
    .await
    .map_err(|e| ApiError::unavailable(e.to_string()))?
    .map_err(audience_error)?;
    Ok(Json(answer))
}

/// A bad condition (syntax, an unknown column) is the caller's: 400; the rest is 503.
fn audience_error(e: PipelineError) -> ApiError {
    match &e {
        PipelineError::Query(q) if q.is_caller_error() => {
            ApiError::bad_request(format!("where: {q}"))
        }
        PipelineError::Audience(m) => ApiError::not_found(m.clone()),
        _ => ApiError::unavailable(e.to_string()),
    }
}
