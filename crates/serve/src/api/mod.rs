//! The routes under `/api/v1`, their roles, and the OpenAPI document generated from them.
//!
//! Every handler takes a [`Caller`] (the key's name and role, or `401`), checks the role its
//! route needs (`403` otherwise), looks up the index and answers JSON. Bad input — a query
//! parameter of the wrong type, an unknown one, a limit out of range — is a `400` naming the
//! parameter; nothing a client sends reaches a panic.

mod events;
mod keys;
mod propensity;
mod reports;
mod review;
mod risk;
mod sales;
pub(crate) mod search;
mod sentiment;
mod sql;
mod timeline;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::{from_fn_with_state, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use crate::audit::AuditEntry;
use crate::error::ErrorBody;
use crate::index::{Customer, ProductDetail, ProductSummary, Recommendation};
use crate::live::recommend_with_live;
use crate::metrics::RequestLabels;
use crate::{ApiError, AppState, Role, ServeIndex};

/// Request bodies larger than this are refused with `413`.
pub const MAX_BODY_BYTES: usize = 4 << 20;
/// The most products one page lists.
pub const MAX_PAGE: usize = 500;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/ready", get(ready))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/products", get(list_products))
        .route("/api/v1/products/facets", get(facets))
        .route(
            "/api/v1/products/{golden_id}/prices",
            get(sales::product_prices),
        )
        .route("/api/v1/products/{golden_id}", get(product))
        .route(
            "/api/v1/listings/{platform}/{listing_id}",
            get(product_by_listing),
        )
        .route("/api/v1/customers", get(list_customers))
        .route(
            "/api/v1/customers/{customer_id}",
            get(customer).merge(delete(erase_customer)),
        )
        .route(
            "/api/v1/accounts/{platform}/{account_id}",
            get(customer_by_account),
        )
        .route(
            "/api/v1/customers/{customer_id}/recommendations",
            get(recommendations),
        )
        .route(
            "/api/v1/customers/{customer_id}/interactions",
            get(events::interactions),
        )
        .route(
            "/api/v1/customers/{customer_id}/propensity",
            get(propensity::customer_propensity),
        )
        .route(
            "/api/v1/customers/{customer_id}/timeline",
            get(timeline::timeline),
        )
        .route("/api/v1/audiences", post(propensity::audiences))
        .route("/api/v1/products/{golden_id}/similar", get(similar))
        .route(
            "/api/v1/products/{golden_id}/sentiment",
            get(sentiment::product_sentiment),
        )
        .route("/api/v1/reports/sentiment", get(sentiment::alerts))
        .route("/api/v1/risk", get(risk::top))
        .route("/api/v1/risk/rings/{ring_id}", get(risk::ring))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/ask", post(search::ask))
        .route("/api/v1/events", post(events::post_events))
        .route("/api/v1/sql", post(sql::query))
        .route("/api/v1/keys", get(keys::list).post(keys::create))
        .route("/api/v1/keys/{name}", delete(keys::revoke))
        .route("/api/v1/review/pairs", get(review::pairs))
        .route("/api/v1/review/decisions", post(review::decisions))
        .route("/api/v1/reports/quality", get(reports::quality))
        .route("/api/v1/reports/quarantine", get(reports::quarantine))
        .route(
            "/api/v1/reports/quarantine/rows",
            get(reports::quarantine_rows),
        )
        .route("/api/v1/reports/sales", get(sales::sales))
        .route("/api/v1/forecasts", get(sales::forecasts))
        .route("/api/v1/reports/segments", get(reports::segments))
        .route("/api/v1/reports/evaluations", get(reports::evaluations))
        .route("/api/v1/metrics", get(metrics))
        .route_layer(from_fn_with_state(state.clone(), track))
        .merge(crate::dashboard::routes())
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

/// A paged route's `limit` (default 50), or a `400` naming its bound.
fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(50);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request(format!(
            "limit must be 1–{MAX_PAGE} (is {limit})"
        )))
    }
}

/// An index entry answered as it is: serialised from the shared copy, never cloned (a
/// product with its offers and provenance is kilobytes; serde's own `Arc` support would need
/// its `rc` feature across the whole dependency tree).
pub struct Shared<T>(pub std::sync::Arc<T>);

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// A body that is not what the route takes: `400` naming the field (axum's message carries
/// the path, e.g. `events[3].type: unknown variant`), `413` when too large, `415` without a
/// JSON content type.
fn json_rejection(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        _ => "bad_request",
    };
    // axum says 422 for a well-formed body of the wrong shape; to a client both are a 400.
    let status = if status.is_server_error() || status == StatusCode::UNPROCESSABLE_ENTITY {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    ApiError::new(status, code, format!("body: {}", rejection.body_text()))
}

/// The index served, one of its customers, and that customer's live events.
type CustomerWithLive = (Arc<ServeIndex>, Arc<Customer>, Vec<crate::live::LiveEvent>);

/// A customer as the served index has them, with their live events (taken in the order the
/// state requires, so the overlay belongs to that index); `404` for an unknown id.
fn customer_with_live(state: &AppState, customer_id: &str) -> Result<CustomerWithLive, ApiError> {
    let live = state.live();
    let index = state.index();
    let c = index
        .customer(customer_id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no customer {customer_id:?}")))?;
    let events = live.of_accounts(
        c.accounts
            .iter()
            .map(|a| (a.platform.as_str(), a.account_id.as_str())),
    );
    Ok((index, c, events))
}

/// Writes the audit line of a per-customer read; refuses the read when it cannot.
fn audit(
    state: &AppState,
    caller: &Caller,
    route: &str,
    customer_id: &str,
) -> Result<(), ApiError> {
    audit_with(state, caller, route, customer_id, None)
}

/// [`audit`] with a detail (the SQL text of a query).
fn audit_with(
    state: &AppState,
    caller: &Caller,
    route: &str,
    customer_id: &str,
    detail: Option<String>,
) -> Result<(), ApiError> {
    let entry = AuditEntry {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        key: caller.name.clone(),
        role: caller.role.to_string(),
        route: route.to_string(),
        customer_id: customer_id.to_string(),
        detail,
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

/// Who a key is: what the dashboard asks first, to show only what the role may see.
#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    /// The key's name.
    pub name: String,
    /// viewer, analyst or admin.
    pub role: String,
    pub project: String,
    pub base_currency: String,
    /// The committed version being served.
    pub version: u64,
    pub committed_at: Option<String>,
    /// The platforms of the project's sources.
    pub platforms: Vec<String>,
}

/// The caller's key name and role, and the project it reads.
#[utoipa::path(
    get, path = "/api/v1/whoami",
    responses((status = 200, body = WhoAmI), (status = 401, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn whoami(State(state): State<AppState>, caller: Caller) -> Json<WhoAmI> {
    let config = &state.project().config;
    let mut platforms: Vec<String> = config.sources.iter().map(|s| s.platform.clone()).collect();
    platforms.sort();
    platforms.dedup();
    let index = state.index();
    Json(WhoAmI {
        name: caller.name,
        role: caller.role.to_string(),
        project: config.project.name.clone(),
        base_currency: config.project.base_currency.clone(),
        version: index.version,
        committed_at: index.committed_at.clone(),
        platforms,
    })
}

#[derive(Serialize, ToSchema)]
pub struct FacetValue {
    pub value: String,
    pub products: usize,
}

/// What the catalogue's filters offer: every brand, category and platform with its product
/// count (most first), and the range of median prices.
#[derive(Serialize, ToSchema)]
pub struct ProductFacets {
    pub brands: Vec<FacetValue>,
    pub categories: Vec<FacetValue>,
    pub platforms: Vec<FacetValue>,
    pub min_price_base: Option<f64>,
    pub max_price_base: Option<f64>,
}

/// The values of the product list's filters, with counts.
#[utoipa::path(
    get, path = "/api/v1/products/facets",
    responses((status = 200, body = ProductFacets), (status = 401, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn facets(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ProductFacets>, ApiError> {
    caller.require(Role::Viewer, "/api/v1/products/facets")?;
    let index = state.index();
    let summaries = || index.products.iter().map(|p| &p.summary);
    let count = |values: Vec<&str>| {
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        for v in values {
            *counts.entry(v).or_default() += 1;
        }
        let mut out: Vec<FacetValue> = counts
            .into_iter()
            .map(|(value, products)| FacetValue {
                value: value.to_string(),
                products,
            })
            .collect();
        out.sort_by(|a, b| b.products.cmp(&a.products).then(a.value.cmp(&b.value)));
        out
    };
    let prices = summaries().filter_map(|p| p.price_base);
    Ok(Json(ProductFacets {
        brands: count(summaries().filter_map(|p| p.brand.as_deref()).collect()),
        categories: count(summaries().filter_map(|p| p.category.as_deref()).collect()),
        platforms: count(
            summaries()
                .flat_map(|p| p.platforms.iter().map(String::as_str))
                .collect(),
        ),
        min_price_base: prices.clone().reduce(f64::min),
        max_price_base: prices.reduce(f64::max),
    }))
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
    let limit = page_limit(q.limit)?;
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
) -> Result<Json<Shared<ProductDetail>>, ApiError> {
    caller.require(Role::Viewer, "/api/v1/products/{golden_id}")?;
    let index = state.index();
    let p = index
        .product(&golden_id)
        .ok_or_else(|| ApiError::not_found(format!("no golden product {golden_id:?}")))?;
    Ok(Json(Shared(p.clone())))
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
) -> Result<Json<Shared<ProductDetail>>, ApiError> {
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
    Ok(Json(Shared(p.clone())))
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
) -> Result<Json<Shared<Customer>>, ApiError> {
    const ROUTE: &str = "/api/v1/customers/{customer_id}";
    caller.require(Role::Analyst, ROUTE)?;
    let index = state.index();
    let c = index
        .customer(&customer_id)
        .ok_or_else(|| ApiError::not_found(format!("no customer {customer_id:?}")))?;
    audit(&state, &caller, ROUTE, &c.customer_id)?;
    Ok(Json(Shared(c.clone())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
    /// Exact segment ("champions", "at risk" …).
    pub segment: Option<String>,
    /// Has an account on this platform.
    pub platform: Option<String>,
    /// Fused accounts at least.
    pub min_accounts: Option<usize>,
    /// 1–500 (default 50).
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// One line of the customer list.
#[derive(Serialize, ToSchema)]
pub struct CustomerSummary {
    pub customer_id: String,
    pub platforms: Vec<String>,
    pub accounts: usize,
    pub orders: i64,
    pub monetary_base: f64,
    pub segment: String,
    pub city: Option<String>,
    pub last_seen: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CustomerPage {
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub items: Vec<CustomerSummary>,
}

/// Unified customers, filtered and paged, highest spend first. The read is audited as one
/// line (customer id `*`, the filters as its detail).
#[utoipa::path(
    get, path = "/api/v1/customers", params(CustomerQuery),
    responses((status = 200, body = CustomerPage), (status = 400, body = ErrorBody),
              (status = 403, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn list_customers(
    State(state): State<AppState>,
    caller: Caller,
    parsed: Result<Query<CustomerQuery>, QueryRejection>,
) -> Result<Json<CustomerPage>, ApiError> {
    const ROUTE: &str = "/api/v1/customers";
    caller.require(Role::Analyst, ROUTE)?;
    let q = query(parsed)?;
    let limit = page_limit(q.limit)?;
    let offset = q.offset.unwrap_or(0);
    let index = state.index();
    let mut matching: Vec<&Arc<Customer>> = index
        .customers()
        .filter(|c| q.segment.as_ref().is_none_or(|s| &c.segment == s))
        .filter(|c| q.platform.as_ref().is_none_or(|p| c.platforms.contains(p)))
        .filter(|c| c.accounts.len() >= q.min_accounts.unwrap_or(0))
        .collect();
    matching.sort_by(|a, b| {
        b.monetary_base
            .total_cmp(&a.monetary_base)
            .then_with(|| a.customer_id.cmp(&b.customer_id))
    });
    let detail = format!(
        "segment={:?} platform={:?} min_accounts={:?} offset={offset} limit={limit}",
        q.segment, q.platform, q.min_accounts
    );
    audit_with(&state, &caller, ROUTE, "*", Some(detail))?;
    Ok(Json(CustomerPage {
        total: matching.len(),
        offset,
        limit,
        items: matching
            .into_iter()
            .skip(offset)
            .take(limit)
            .map(|c| CustomerSummary {
                customer_id: c.customer_id.clone(),
                platforms: c.platforms.clone(),
                accounts: c.accounts.len(),
                orders: c.orders,
                monetary_base: c.monetary_base,
                segment: c.segment.clone(),
                city: c.city.clone(),
                last_seen: c.last_seen.clone(),
            })
            .collect(),
    }))
}

/// Erases a customer: their rows leave every table and the event log, their accounts are
/// tombstoned against re-ingest, and the version without them is served at once.
#[utoipa::path(
    delete, path = "/api/v1/customers/{customer_id}",
    params(("customer_id" = String, Path, description = "Unified customer id (CU…)")),
    responses((status = 200, body = crate::Erasure), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn erase_customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(customer_id): Path<String>,
) -> Result<Json<crate::Erasure>, ApiError> {
    const ROUTE: &str = "DELETE /api/v1/customers/{customer_id}";
    caller.require(Role::Admin, ROUTE)?;
    if state.index().customer(&customer_id).is_none() {
        return Err(ApiError::not_found(format!("no customer {customer_id:?}")));
    }
    audit(&state, &caller, ROUTE, &customer_id)?;
    let id = customer_id.clone();
    let erased = tokio::task::spawn_blocking(move || state.erase(&id))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "erase_failed",
                e.to_string(),
            )
        })?
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "erase_failed",
                format!("{e}: {}", error_chain(&e)),
            )
        })?;
    erased
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no customer {customer_id:?}")))
}

/// The causes of an error, joined.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push(c.to_string());
        cause = c.source();
    }
    out.join(": ")
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
) -> Result<Json<Shared<Customer>>, ApiError> {
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
    Ok(Json(Shared(c.clone())))
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
    let excluded = events::id_set(q.exclude.as_deref());
    // The overlay before the index (see `AppState::live`), held while the list is scored.
    let live = state.live();
    let index = state.index();
    let c = index
        .customer(&customer_id)
        .ok_or_else(|| ApiError::not_found(format!("no customer {customer_id:?}")))?;
    let items = recommend_with_live(&index, c, &live, k, &excluded);
    drop(live);
    audit(&state, &caller, ROUTE, &customer_id)?;
    Ok(Json(RecommendationList { customer_id, items }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SimilarQuery {
    /// How many, 1–100 (default 10).
    pub k: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct SimilarProduct {
    #[serde(flatten)]
    pub product: ProductSummary,
    /// 0–1; the most similar product is 1.
    pub similarity: f64,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct SimilarList {
    pub golden_id: String,
    pub items: Vec<SimilarProduct>,
}

/// Products shoppers interact with together with this one (item-kNN over the committed
/// interactions, cosine); filled up with the same category's nearest prices.
#[utoipa::path(
    get, path = "/api/v1/products/{golden_id}/similar",
    params(("golden_id" = String, Path, description = "Golden product id (GP…)"), SimilarQuery),
    responses((status = 200, body = SimilarList), (status = 400, body = ErrorBody),
              (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
async fn similar(
    State(state): State<AppState>,
    caller: Caller,
    Path(golden_id): Path<String>,
    parsed: Result<Query<SimilarQuery>, QueryRejection>,
) -> Result<Json<SimilarList>, ApiError> {
    caller.require(Role::Viewer, "/api/v1/products/{golden_id}/similar")?;
    let k = query(parsed)?.k.unwrap_or(10);
    if !(1..=100).contains(&k) {
        return Err(ApiError::bad_request(format!("k must be 1–100 (is {k})")));
    }
    let index = state.index();
    let item = index
        .item_of(&golden_id)
        .ok_or_else(|| ApiError::not_found(format!("no golden product {golden_id:?}")))?;
    Ok(Json(SimilarList {
        items: crate::live::similar_products(&index, item, k),
        golden_id,
    }))
}

/// The OpenAPI 3 document, generated from the handlers and their types.
#[derive(OpenApi)]
#[openapi(
    info(title = "shopfuse", description = "The fused multi-platform catalogue and customer view."),
    paths(health, ready, whoami, list_products, facets, product, sales::product_prices,
          sales::sales, sales::forecasts, timeline::timeline, list_customers, reports::quarantine_rows, product_by_listing, similar, customer,
          erase_customer,
          customer_by_account, recommendations, events::interactions, events::post_events,
          sql::query, propensity::customer_propensity, propensity::audiences, review::pairs, review::decisions, reports::quality,
          reports::quarantine, reports::segments, reports::evaluations, keys::list,
          keys::create, keys::revoke, metrics, search::search, search::ask,
          sentiment::product_sentiment, sentiment::alerts, risk::top, risk::ring),
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
