//! `GET /api/v1/search` (viewer) and `POST /api/v1/ask` (viewer; analyst, audited, when the
//! question is about one customer's orders).
//!
//! The search index and the assistant's policies are loaded on the first request after each
//! commit and kept in the [`AppState`], the encoder once per state; without the encoder's files the search is lexical
//! and says so in its `notes`.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use shopfuse_core::Encoder;
use shopfuse_search::assistant::{customer_orders, Assistant, IntentClassifier, PolicySection};
use shopfuse_search::{Filters, Mode, SearchIndex, SearchRequest};
use utoipa::{IntoParams, ToSchema};

use super::{audit, json_rejection, query, Caller};
use crate::error::ErrorBody;
use crate::{ApiError, AppState, Role};

/// The loaded search side of one committed version (kept in [`AppState`]).
pub struct SearchService {
    version: u64,
    index: SearchIndex,
    policies: Vec<PolicySection>,
    /// Trained once per loaded version, not per question.
    classifier: IntentClassifier,
}

/// The project's encoder, loaded on the first search (the state keeps it for the process).
fn encoder(state: &AppState) -> Option<&dyn Encoder> {
    state
        .encoder()
        .get_or_init(|| {
            shopfuse_pipeline::project_encoder(state.project())
                .ok()
                .map(|e| Box::new(e) as Box<dyn Encoder>)
        })
        .as_deref()
}

/// The service of the committed version, loaded when the version changed. A project whose
/// runs have not built the search stage yet is a `409` that says what to run, not a failure.
fn service(state: &AppState) -> Result<Arc<SearchService>, ApiError> {
    let version = state.index().version;
    let mut slot = state.search().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = slot.as_ref().filter(|s| s.version == version) {
        return Ok(s.clone());
    }
    let project = state.project();
    let unavailable = |e: shopfuse_search::SearchError| ApiError::unavailable(e.to_string());
    let index = match shopfuse_search::open_project(project) {
        Ok((index, _)) => index,
        Err(e @ shopfuse_search::SearchError::NoIndex) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_built",
                e.to_string(),
            ))
        }
        // The index directory is busy (a run is syncing it): answer from memory instead.
        Err(shopfuse_search::SearchError::Tantivy(_))
        | Err(shopfuse_search::SearchError::Io { .. }) => in_memory(state)?,
        Err(e) => return Err(unavailable(e)),
    };
    let policies = shopfuse_search::assistant::load_policies(&project.root).map_err(unavailable)?;
    let service = Arc::new(SearchService {
        version,
        index,
        policies,
        classifier: IntentClassifier::shipped(),
    });
    *slot = Some(service.clone());
    Ok(service)
}

/// The committed catalogue indexed in memory, for when the index on disk cannot be opened.
fn in_memory(state: &AppState) -> Result<SearchIndex, ApiError> {
    let unavailable = |e: &dyn std::fmt::Display| ApiError::unavailable(e.to_string());
    let (_, batches) = state
        .store()
        .read_table(shopfuse_search::search_documents::NAME)
        .map_err(|e| unavailable(&e))?
        .ok_or_else(|| unavailable(&shopfuse_search::SearchError::NoIndex))?;
    let docs = shopfuse_search::document::read_documents(&batches).map_err(|e| unavailable(&e))?;
    SearchIndex::in_memory(docs, Default::default()).map_err(|e| unavailable(&e))
}

/// Runs `work` off the async threads, keeping its own status codes.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The query, in Chinese, English or both.
    pub q: String,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub platform: Option<String>,
    pub color: Option<String>,
    pub capacity: Option<String>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    /// Only products in stock somewhere.
    pub in_stock: Option<bool>,
    /// lexical, dense or hybrid (default).
    pub mode: Option<String>,
    /// Keep colour/capacity words as text (default false: they become filters).
    pub no_attributes: Option<bool>,
    /// 1–100 (default 10).
    pub limit: Option<usize>,
}

fn request_of(q: SearchQuery) -> Result<SearchRequest, ApiError> {
    if q.q.trim().is_empty() {
        return Err(ApiError::bad_request("q: the query is empty"));
    }
    if q.q.chars().count() > 500 {
        return Err(ApiError::bad_request("q: at most 500 characters"));
    }
    let limit = q.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1–100 (is {limit})"
        )));
    }
    let mut r = SearchRequest::new(q.q);
    r.limit = limit;
    r.mode = match q.mode.as_deref() {
        None => Mode::Hybrid,
        Some(m) => m.parse().map_err(|e: shopfuse_search::SearchError| {
            ApiError::bad_request(format!("mode: {e}"))
        })?,
    };
    r.attributes = !q.no_attributes.unwrap_or(false);
    r.filters = Filters {
        brand: q.brand,
        category: q.category,
        platform: q.platform,
        color: q.color,
        capacity: q.capacity,
        min_price: q.min_price,
        max_price: q.max_price,
        in_stock: q.in_stock.unwrap_or(false),
    };
    r.filters
        .validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(r)
}

/// Ranked golden products with the best offer per platform, why each matched, and facets.
#[utoipa::path(
    get, path = "/api/v1/search", params(SearchQuery),
    responses((status = 200, description = "query as understood, hits, facets, notes", content_type = "application/json"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
              (status = 409, description = "the search stage has not run", body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn search(
    State(state): State<AppState>,
    caller: Caller,
    parsed: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require(Role::Viewer, "/api/v1/search")?;
    let request = request_of(query(parsed)?)?;
    let results = off_thread(move || {
        let service = service(&state)?;
        let failed = |e: &dyn std::fmt::Display| ApiError::unavailable(e.to_string());
        let vector = match (request.mode, encoder(&state)) {
            (Mode::Lexical, _) | (_, None) => None,
            (_, Some(e)) => Some(
                e.encode(&[request.query.as_str()])
                    .map_err(|e| failed(&e))?
                    .row(0)
                    .to_vec(),
            ),
        };
        let results = service
            .index
            .search(&request, vector.as_deref())
            .map_err(|e| failed(&e))?;
        serde_json::to_value(results).map_err(|e| failed(&e))
    })
    .await?;
    Ok(Json(results))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskBody {
    /// The question, in Chinese or English (at most 1,000 characters).
    pub question: String,
    /// The unified customer (CU…) asking; needs an analyst key and is audited.
    pub customer_id: Option<String>,
}

/// A grounded answer in the question's language, with its intent and every cited fact;
/// `found` is false when the facts were not there.
#[utoipa::path(
    post, path = "/api/v1/ask", request_body = AskBody,
    responses((status = 200, description = "question, language, intent, confidence, text, citations, found", content_type = "application/json"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 409, description = "the search stage has not run", body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn ask(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<AskBody>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    const ROUTE: &str = "/api/v1/ask";
    caller.require(Role::Viewer, ROUTE)?;
    let Json(body) = body.map_err(json_rejection)?;
    let question = body.question.trim().to_string();
    if question.is_empty() || question.chars().count() > 1000 {
        return Err(ApiError::bad_request("question: 1–1,000 characters"));
    }
    if let Some(c) = &body.customer_id {
        caller.require(Role::Analyst, ROUTE)?;
        let known = state.index().customer(c).is_some();
        if !known {
            return Err(ApiError::not_found(format!("no customer {c:?}")));
        }
        audit(&state, &caller, ROUTE, c)?;
    }
    let answer = off_thread(move || {
        let service = service(&state)?;
        let failed = |e: &dyn std::fmt::Display| ApiError::unavailable(e.to_string());
        let assistant = Assistant {
            index: &service.index,
            classifier: &service.classifier,
            policies: &service.policies,
            encoder: encoder(&state),
            currency: state.project().config.project.base_currency.clone(),
        };
        let store = state.store();
        let read = |t: &str, cols: &[&str]| store.read_columns(t, cols);
        let orders = |c: &str| customer_orders(&read, c);
        let answer = assistant
            .answer(&question, body.customer_id.as_deref(), &orders)
            .map_err(|e| failed(&e))?;
        serde_json::to_value(answer).map_err(|e| failed(&e))
    })
    .await?;
    Ok(Json(answer))
}
