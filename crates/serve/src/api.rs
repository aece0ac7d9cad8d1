//! The routes under `/api/v1`, their roles, and the OpenAPI document generated from them.
//!
//! Every handler takes a [`Caller`] (the key's name and role, or `401`), checks the role its
//! route needs (`403` otherwise), looks up the index and answers JSON. Bad input — a query
//! parameter of the wrong type, an unknown one, a limit out of range — is a `400` naming the
//! parameter; nothing a client sends reaches a panic.

use std::collections::HashSet;

use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::{from_fn_with_state, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use crate::audit::AuditEntry;
use crate::error::ErrorBody;
use crate::index::{Customer, ProductDetail, ProductSummary, Recommendation};
use crate::metrics::RequestLabels;
use crate::{ApiError, AppState, Role};

/// Request bodies larger than this are refused with `413`.
pub const MAX_BODY_BYTES: usize = 4 << 20;
/// The most products one page lists.
pub const MAX_PAGE: usize = 500;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/ready", get(ready))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/products", get(list_products))
        .route("/api/v1/products/{golden_id}", get(product))
        .route(
            "/api/v1/listings/{platform}/{listing_id}",
            get(product_by_listing),
        )
        .route("/api/v1/customers/{customer_id}", get(customer))
        .route(
            "/api/v1/accounts/{platform}/{account_id}",
            get(customer_by_account),
        )
        .route(
            "/api/v1/customers/{customer_id}/recommendations",
            get(recommendations),
        )
        .route("/api/v1/metrics", get(metrics))
        .route_layer(from_fn_with_state(state.clone(), track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .with_state(state)
}

/// The key a request came with.
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    fn require(&self, needed: Role, route: &str) -> Result<(), ApiError> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(ApiError::forbidden(route, needed, self.role))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let presented = header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| header("x-api-key"))
            .ok_or_else(ApiError::unauthorized)?;
        let keys = state.keys();
        let key = keys.find(presented).ok_or_else(ApiError::unauthorized)?;
        if let Err(wait) = state.limiter().take(&key.name, Instant::now()) {
            let mut refused = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "key {:?} is over its {} requests per second; retry in {} ms",
                    key.name,
                    state.limiter().per_second(),
                    wait.as_millis().max(1)
                ),
            );
            refused.retry_after = Some(wait.as_secs().max(1));
            return Err(refused);
        }
        Ok(Caller {
            name: key.name.clone(),
            role: key.role,
        })
    }
}

/// A query string parsed into `T`, or a `400` that names what was wrong.
fn query<T>(parsed: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    parsed
        .map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(format!("query string: {}", e.body_text())))
}

/// Writes the audit line of a per-customer read; refuses the read when it cannot.
fn audit(
    state: &AppState,
    caller: &Caller,
    route: &str,
    customer_id: &str,
) -> Result<(), ApiError> {
    let entry = AuditEntry {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        key: caller.name.clone(),
        role: caller.role.to_string(),
        route: route.to_string(),
        customer_id: customer_id.to_string(),
    };
    state.audit().record(&entry).map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "audit_unavailable",
            format!(
                "per-customer data is served only when the read can be audited, and {} cannot be written: {e}",
                state.audit().path().display()
            ),
        )
    })
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/api/v1/health", responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    /// The committed version being served.
    pub version: u64,
    pub committed_at: Option<String>,
    pub products: usize,
    pub customers: usize,
}

/// Readiness: the version served and what it holds.
#[utoipa::path(get, path = "/api/v1/ready", responses((status = 200, body = Readiness)))]
async fn ready(State(state): State<AppState>) -> Json<Readiness> {
    let index = state.index();
    Json(Readiness {
        status: "ready",
        version: index.version,
        committed_at: index.committed_at.clone(),
        products: index.products.len(),
        customers: index.customer_count(),
    })
}

/// Counts every answered request by its declared route (never the raw path: ids would make
/// a series each) and times it.
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let response = next.run(request).await;
    let labels = RequestLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    state.metrics().observe(labels, started.elapsed());
    response
}

/// Prometheus text format: requests and latency by route and status, the version served.
#[utoipa::path(
    get, path = "/api/v1/metrics",
    responses((status = 200, description = "Prometheus text exposition format", body = String),
              (status = 401, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn metrics(State(state): State<AppState>, caller: Caller) -> Result<String, ApiError> {
    caller.require(Role::Viewer, "/api/v1/metrics")?;
    Ok(state.metrics().render(state.index().version))
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; see /api/v1/openapi.json",
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route; the API is described at /api/v1/openapi.json")
}

/// Filters of the product list; every one optional.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// Exact golden category.
    pub category: Option<String>,
    /// Exact brand.
    pub brand: Option<String>,
    /// Listed on this platform.
    pub platform: Option<String>,
    /// Words that must all appear in the title (case-insensitive).
    pub q: Option<String>,
    /// Lowest median price in the base currency.
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    /// Page size, 1–500 (default 50).
    pub limit: Option<usize>,
    /// Products to skip (default 0).
    pub offset: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct ProductPage {
    /// Products matching the filters, all pages together.
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub items: Vec<ProductSummary>,
}

/// Golden products, filtered and paged, in id order.
#[utoipa::path(
    get, path = "/api/v1/products", params(ProductQuery),
    responses((status = 200, body = ProductPage), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn list_products(
    State(state): State<AppState>,
    caller: Caller,
    parsed: Result<Query<ProductQuery>, QueryRejection>,
) -> Result<Json<ProductPage>, ApiError> {
    caller.require(Role::Viewer, "/api/v1/products")?;
    let q = query(parsed)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1–{MAX_PAGE} (is {limit})"
        )));
    }
    let words: Vec<String> =
        q.q.as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
    let index = state.index();
    let matching: Vec<&ProductSummary> = index
        .products
        .iter()
        .map(|p| &p.summary)
        .filter(|p| product_matches(p, &q, &words))
        .collect();
    let offset = q.offset.unwrap_or(0);
    Ok(Json(ProductPage {
        total: matching.len(),
        offset,
        limit,
        items: matching
            .into_iter()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect(),
    }))
}

fn product_matches(p: &ProductSummary, q: &ProductQuery, words: &[String]) -> bool {
    let same = |want: &Option<String>, have: &Option<String>| {
        want.as_ref()
            .is_none_or(|w| have.as_deref() == Some(w.as_str()))
    };
    let title = p.title.as_deref().unwrap_or_default().to_lowercase();
    same(&q.category, &p.category)
        && same(&q.brand, &p.brand)
        && q.platform.as_ref().is_none_or(|w| p.platforms.contains(w))
        && words.iter().all(|w| title.contains(w.as_str()))
        && q.min_price
            .is_none_or(|m| p.price_base.is_some_and(|x| x >= m))
        && q.max_price
            .is_none_or(|m| p.price_base.is_some_and(|x| x <= m))
}

/// One golden product: its offers on every platform, field provenance and the merges that
/// built it.
#[utoipa::path(
    get, path = "/api/v1/products/{golden_id}",
    params(("golden_id" = String, Path, description = "Golden product id (GP…)")),
    responses((status = 200, body = ProductDetail), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn product(
    State(state): State<AppState>,
    caller: Caller,
    Path(golden_id): Path<String>,
) -> Result<Json<ProductDetail>, ApiError> {
    caller.require(Role::Viewer, "/api/v1/products/{golden_id}")?;
    let index = state.index();
    let p = index
        .product(&golden_id)
        .ok_or_else(|| ApiError::not_found(format!("no golden product {golden_id:?}")))?;
    Ok(Json(ProductDetail::clone(p)))
}

/// The golden product a platform listing belongs to.
#[utoipa::path(
    get, path = "/api/v1/listings/{platform}/{listing_id}",
    params(("platform" = String, Path, description = "taobao, jd, amazon, own_shop …"),
           ("listing_id" = String, Path, description = "The listing's id on its platform")),
    responses((status = 200, body = ProductDetail), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn product_by_listing(
    State(state): State<AppState>,
    caller: Caller,
    Path((platform, listing_id)): Path<(String, String)>,
) -> Result<Json<ProductDetail>, ApiError> {
    caller.require(Role::Viewer, "/api/v1/listings/{platform}/{listing_id}")?;
    let index = state.index();
    let p = index
        .product_of_listing(&platform, &listing_id)
        .and_then(|id| index.product(id))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no listing {listing_id:?} on platform {platform:?}"
            ))
        })?;
    Ok(Json(ProductDetail::clone(p)))
}

/// One unified customer: its accounts, profile and the identity links' reasons.
#[utoipa::path(
    get, path = "/api/v1/customers/{customer_id}",
    params(("customer_id" = String, Path, description = "Unified customer id (CU…)")),
    responses((status = 200, body = Customer), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(customer_id): Path<String>,
) -> Result<Json<Customer>, ApiError> {
    const ROUTE: &str = "/api/v1/customers/{customer_id}";
    caller.require(Role::Analyst, ROUTE)?;
    let index = state.index();
    let c = index
        .customer(&customer_id)
        .ok_or_else(|| ApiError::not_found(format!("no customer {customer_id:?}")))?;
    audit(&state, &caller, ROUTE, &c.customer_id)?;
    Ok(Json(Customer::clone(c)))
}

/// The unified customer a platform account belongs to.
#[utoipa::path(
    get, path = "/api/v1/accounts/{platform}/{account_id}",
    params(("platform" = String, Path, description = "taobao, jd, amazon, own_shop …"),
           ("account_id" = String, Path, description = "The account's id on its platform")),
    responses((status = 200, body = Customer), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn customer_by_account(
    State(state): State<AppState>,
    caller: Caller,
    Path((platform, account_id)): Path<(String, String)>,
) -> Result<Json<Customer>, ApiError> {
    const ROUTE: &str = "/api/v1/accounts/{platform}/{account_id}";
    caller.require(Role::Analyst, ROUTE)?;
    let index = state.index();
    let c = index
        .customer_of_account(&platform, &account_id)
        .and_then(|id| index.customer(id))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no account {account_id:?} on platform {platform:?}"
            ))
        })?;
    audit(&state, &caller, ROUTE, &c.customer_id)?;
    Ok(Json(Customer::clone(c)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RecommendationQuery {
    /// How many, 1–100 (default 10; at most as many as the run kept per customer).
    pub k: Option<usize>,
    /// Golden ids to leave out, comma-separated (already in the basket, out of stock …).
    pub exclude: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RecommendationList {
    pub customer_id: String,
    pub items: Vec<Recommendation>,
}

/// A customer's recommended products, best first, each with its reason.
#[utoipa::path(
    get, path = "/api/v1/customers/{customer_id}/recommendations",
    params(("customer_id" = String, Path, description = "Unified customer id (CU…)"),
           RecommendationQuery),
    responses((status = 200, body = RecommendationList), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn recommendations(
    State(state): State<AppState>,
    caller: Caller,
    Path(customer_id): Path<String>,
    parsed: Result<Query<RecommendationQuery>, QueryRejection>,
) -> Result<Json<RecommendationList>, ApiError> {
    const ROUTE: &str = "/api/v1/customers/{customer_id}/recommendations";
    caller.require(Role::Analyst, ROUTE)?;
    let q = query(parsed)?;
    let k = q.k.unwrap_or(10);
    if !(1..=100).contains(&k) {
        return Err(ApiError::bad_request(format!("k must be 1–100 (is {k})")));
    }
    let excluded: HashSet<&str> = q
        .exclude
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .collect();
    let index = state.index();
    if index.customer(&customer_id).is_none() {
        return Err(ApiError::not_found(format!("no customer {customer_id:?}")));
    }
    audit(&state, &caller, ROUTE, &customer_id)?;
    let items = index
        .recommendations(&customer_id)
        .iter()
        .filter(|r| !excluded.contains(r.golden_id.as_str()))
        .take(k)
        .cloned()
        .collect();
    Ok(Json(RecommendationList { customer_id, items }))
}

/// The OpenAPI 3 document, generated from the handlers and their types.
#[derive(OpenApi)]
#[openapi(
    info(title = "shopfuse", description = "The fused multi-platform catalogue and customer view."),
    paths(health, ready, list_products, product, product_by_listing, customer,
          customer_by_account, recommendations, metrics),
    modifiers(&ApiKeyScheme)
)]
pub struct ApiDoc;

struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}
