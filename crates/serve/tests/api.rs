//! The API end to end on a small generated project run through the real pipeline: keys and
//! roles on every route, lookups by any platform id, the audit log, reload on commit, and no
//! 5xx for any query string.

use std::path::PathBuf;
use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use shopfuse_core::{NoProgress, Project, TableStore};
use shopfuse_generate::GenerateOptions;
use shopfuse_pipeline::{Pipeline, RunOptions, Selection};
use shopfuse_serve::audit::{AuditLog, AUDIT_FILE};
use shopfuse_serve::{router, AppState, KeyStore, Role, ServeOptions};
use tower::ServiceExt;

/// One project for the whole file: generating and running it is the slow part.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    viewer: String,
    analyst: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("p");
    let options = GenerateOptions {
        seed: 7,
        products: 20,
        customers: 120,
        orders: 600,
    };
    shopfuse_generate::generate(&root, &options).unwrap();
    let project = Project::open(&root).unwrap();
    Pipeline::standard()
        .run(&project, &RunOptions::default(), &NoProgress)
        .unwrap();
    let keys = KeyStore::path(&project);
    let viewer = KeyStore::create(&keys, "shop-front", Role::Viewer, "t").unwrap();
    let analyst = KeyStore::create(&keys, "crm", Role::Analyst, "t").unwrap();
    Fixture {
        _dir: dir,
        root,
        viewer,
        analyst,
    }
});

fn state() -> AppState {
    AppState::open(&Project::open(&FIXTURE.root).unwrap()).unwrap()
}

async fn get(state: &AppState, uri: &str, key: Option<&str>) -> (StatusCode, Value) {
    let (status, _, text) = get_text(state, uri, key).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn get_text(
    state: &AppState,
    uri: &str,
    key: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut request = Request::builder().uri(uri);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = router(state.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// A customer with accounts on several platforms, and one of its accounts.
fn multi_platform_customer(state: &AppState) -> (String, String, String) {
    let index = state.index();
    let store = TableStore::at(&FIXTURE.root);
    let rows = store
        .read_rows(shopfuse_identity::customer_accounts::NAME)
        .unwrap()
        .unwrap();
    for r in &rows.rows {
        let id = rows.text(r, "customer_id").unwrap();
        if index.customer(&id).is_some_and(|c| c.accounts.len() > 1) {
            return (
                id,
                rows.text(r, "platform").unwrap(),
                rows.text(r, "account_id").unwrap(),
            );
        }
    }
    panic!("the fixture has a customer on several platforms");
}

#[tokio::test]
async fn every_route_needs_a_key_and_customer_routes_need_the_analyst_role() {
    let state = state();
    let (customer, platform, account) = multi_platform_customer(&state);
    let customer_routes = [
        format!("/api/v1/customers/{customer}"),
        format!("/api/v1/accounts/{platform}/{account}"),
        format!("/api/v1/customers/{customer}/recommendations"),
    ];
    let product_routes = ["/api/v1/products".to_string()];
    for route in customer_routes.iter().chain(&product_routes) {
        let (status, body) = get(&state, route, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{route}");
        assert_eq!(body["error"]["code"], "unauthorized");
        let (status, _) = get(&state, route, Some("sfk_not-a-key")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{route}");
    }
    for route in &customer_routes {
        let (status, body) = get(&state, route, Some(&FIXTURE.viewer)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{route}");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("analyst"));
        let (status, _) = get(&state, route, Some(&FIXTURE.analyst)).await;
        assert_eq!(status, StatusCode::OK, "{route}");
    }
    let (status, _) = get(&state, "/api/v1/products", Some(&FIXTURE.viewer)).await;
    assert_eq!(status, StatusCode::OK);
    // Health and readiness are for load balancers: no key.
    assert_eq!(get(&state, "/api/v1/health", None).await.0, StatusCode::OK);
    assert_eq!(get(&state, "/api/v1/ready", None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_product_is_found_by_its_id_and_by_any_of_its_listings() {
    let state = state();
    let key = Some(FIXTURE.viewer.as_str());
    let (status, page) = get(&state, "/api/v1/products?limit=500", key).await;
    assert_eq!(status, StatusCode::OK);
    let products = page["items"].as_array().unwrap();
    assert_eq!(page["total"].as_u64().unwrap() as usize, products.len());
    let multi = products
        .iter()
        .find(|p| p["platforms"].as_array().unwrap().len() > 1)
        .expect("a product on several platforms");
    let id = multi["golden_id"].as_str().unwrap();
    let (status, product) = get(&state, &format!("/api/v1/products/{id}"), key).await;
    assert_eq!(status, StatusCode::OK);
    let offers = product["offers"].as_array().unwrap();
    assert!(offers.len() > 1);
    assert!(!product["provenance"].as_array().unwrap().is_empty());
    for offer in offers {
        let (p, l) = (
            offer["platform"].as_str().unwrap(),
            offer["listing_id"].as_str().unwrap(),
        );
        let (status, by_listing) = get(&state, &format!("/api/v1/listings/{p}/{l}"), key).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(by_listing["golden_id"], id);
    }
    let (status, body) = get(&state, "/api/v1/products/GP-none", key).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let delete = Request::delete(format!("/api/v1/products/{id}"))
        .body(Body::empty())
        .unwrap();
    let response = router(state.clone()).oneshot(delete).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    // Filters: every product of a page matches them.
    let brand = multi["brand"].as_str().unwrap();
    let (_, page) = get(
        &state,
        &format!("/api/v1/products?brand={brand}&limit=5"),
        key,
    )
    .await;
    let items = page["items"].as_array().unwrap();
    assert!(!items.is_empty() && items.iter().all(|p| p["brand"] == brand));
}

#[tokio::test]
async fn a_customer_by_id_or_by_any_account_is_one_and_every_read_is_audited() {
    let state = state();
    let (customer, _, _) = multi_platform_customer(&state);
    let key = Some(FIXTURE.analyst.as_str());
    let (status, by_id) = get(&state, &format!("/api/v1/customers/{customer}"), key).await;
    assert_eq!(status, StatusCode::OK);
    let accounts = by_id["accounts"].as_array().unwrap().clone();
    assert!(accounts.len() > 1);
    assert!(
        !by_id["links"].as_array().unwrap().is_empty(),
        "the links' reasons"
    );
    for a in &accounts {
        let (p, id) = (
            a["platform"].as_str().unwrap(),
            a["account_id"].as_str().unwrap(),
        );
        let (status, by_account) = get(&state, &format!("/api/v1/accounts/{p}/{id}"), key).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(by_account["customer_id"], customer.as_str());
    }
    let log = AuditLog::read(&FIXTURE.root.join(".shopfuse").join(AUDIT_FILE)).unwrap();
    let mine: Vec<_> = log
        .iter()
        .filter(|e| e.customer_id == customer && e.key == "crm")
        .collect();
    assert!(mine.len() > accounts.len(), "one line per read: {mine:?}");
    assert!(mine
        .iter()
        .any(|e| e.route == "/api/v1/accounts/{platform}/{account_id}"));
}

#[tokio::test]
async fn recommendations_honour_k_and_exclusions_and_refuse_bad_parameters() {
    let state = state();
    let (customer, _, _) = multi_platform_customer(&state);
    let key = Some(FIXTURE.analyst.as_str());
    let route = format!("/api/v1/customers/{customer}/recommendations");
    let (status, all) = get(&state, &route, key).await;
    assert_eq!(status, StatusCode::OK);
    let items = all["items"].as_array().unwrap();
    assert!(items.len() >= 3, "{all}");
    assert!(items
        .iter()
        .all(|r| !r["reason"].as_str().unwrap().is_empty()));
    let first = items[0]["golden_id"].as_str().unwrap();
    let (_, fewer) = get(&state, &format!("{route}?k=2&exclude={first}"), key).await;
    let fewer = fewer["items"].as_array().unwrap();
    assert_eq!(fewer.len(), 2);
    assert!(fewer.iter().all(|r| r["golden_id"] != first));
    assert_eq!(fewer[0]["golden_id"], items[1]["golden_id"]);
    for bad in ["k=0", "k=101", "k=ten", "colour=red"] {
        let (status, body) = get(&state, &format!("{route}?{bad}"), key).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["error"]["code"], "bad_request", "{bad}");
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let state = state();
    let (status, doc) = get(&state, "/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for route in [
        "/api/v1/products",
        "/api/v1/products/{golden_id}",
        "/api/v1/listings/{platform}/{listing_id}",
        "/api/v1/customers/{customer_id}",
        "/api/v1/accounts/{platform}/{account_id}",
        "/api/v1/customers/{customer_id}/recommendations",
        "/api/v1/metrics",
    ] {
        assert!(paths.contains_key(route), "{route} missing");
    }
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
}

#[tokio::test]
async fn a_new_commit_is_served_without_a_restart() {
    // A copy: the commit below drops files the other tests' states may be reading.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&FIXTURE.root, copy.path());
    let project = Project::open(copy.path()).unwrap();
    let state = AppState::open(&project).unwrap();
    let before = state.index().version;
    assert!(!state.reload_if_committed().unwrap(), "nothing new yet");
    let options = RunOptions {
        selection: Selection::Only(vec!["profiles".into()]),
        force: true,
        rebuild: false,
    };
    Pipeline::standard()
        .run(&project, &options, &NoProgress)
        .unwrap();
    assert!(state.reload_if_committed().unwrap());
    let (_, ready) = get(&state, "/api/v1/ready", None).await;
    assert!(ready["version"].as_u64().unwrap() > before);
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_and_metrics_count_by_declared_route() {
    let project = Project::open(&FIXTURE.root).unwrap();
    let options = ServeOptions {
        requests_per_second_per_key: 1,
    };
    let state = AppState::with_options(&project, &options).unwrap();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (status, headers, _) =
            get_text(&state, "/api/v1/products/GP-x", Some(&FIXTURE.viewer)).await;
        statuses.push((status, headers.get("retry-after").cloned()));
    }
    // A burst of two seconds' worth, then 429 with Retry-After (a slow machine may refill a
    // token between requests, so only "some" of the rest).
    assert!(
        statuses[..2]
            .iter()
            .all(|(s, _)| *s == StatusCode::NOT_FOUND),
        "{statuses:?}"
    );
    let refused: Vec<_> = statuses
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(!refused.is_empty(), "{statuses:?}");
    assert!(refused.iter().all(|(_, retry)| retry.is_some()));
    let answered = statuses.len() - refused.len();
    // Another key has its own bucket.
    let (status, _, text) = get_text(&state, "/api/v1/metrics", Some(&FIXTURE.analyst)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("shopfuse_table_version"), "{text}");
    let series = r#"route="/api/v1/products/{golden_id}",status="404""#;
    let counted = text
        .lines()
        .find(|l| l.starts_with("shopfuse_http_requests_total") && l.contains(series))
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"));
    assert!(counted.ends_with(&format!(" {answered}")), "{counted}");
    assert!(!text.contains("GP-x"), "raw paths never become labels");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    static SHARED: LazyLock<(AppState, String)> = LazyLock::new(|| {
        let state = state();
        let (customer, _, _) = multi_platform_customer(&state);
        (state, customer)
    });

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Whatever the query string, the answer is 200 or a 4xx, never a 5xx.
        #[test]
        fn no_query_string_gets_a_server_error(query in "[a-z_=&%0-9,.-]{0,40}", which in 0usize..3) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (state, customer) = &*SHARED;
            let route = match which {
                0 => format!("/api/v1/products?{query}"),
                1 => format!("/api/v1/customers/{customer}/recommendations?{query}"),
                _ => format!("/api/v1/products/{query}"),
            };
            let (status, _) = runtime.block_on(get(state, &route, Some(&FIXTURE.analyst)));
            prop_assert!(!status.is_server_error(), "{route}: {status}");
        }
    }
}
