//! The API end to end on a small generated project run through the real pipeline: keys and
//! roles on every route, lookups by any platform id, the audit log, reload on commit, and no
//! 5xx for any query string.

use std::path::PathBuf;
use std::sync::LazyLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
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
    admin: String,
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
    let admin = KeyStore::create(&keys, "ops", Role::Admin, "t").unwrap();
    Fixture {
        _dir: dir,
        root,
        viewer,
        analyst,
        admin,
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

async fn send(
    state: &AppState,
    method: &str,
    uri: &str,
    key: &str,
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
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
        format!("/api/v1/customers/{customer}/interactions"),
    ];
    let product_routes = [
        "/api/v1/products".to_string(),
        "/api/v1/metrics".to_string(),
    ];
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
    // The routes that write or read across customers: who may call each (the body is
    // valid for none of them, so an allowed key gets past the role check to a 400/404).
    let writes = [
        ("POST", "/api/v1/events".to_string(), "admin"),
        ("POST", "/api/v1/sql".to_string(), "analyst"),
        ("DELETE", "/api/v1/customers/CU-none".to_string(), "admin"),
    ];
    for (method, route, needed) in &writes {
        let request = |key: Option<&str>| {
            let mut r = Request::builder().method(*method).uri(route.as_str());
            if let Some(key) = key {
                r = r.header("authorization", format!("Bearer {key}"));
            }
            r.header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap()
        };
        let status = |key: Option<&str>| {
            let request = request(key);
            let state = state.clone();
            async move { router(state).oneshot(request).await.unwrap().status() }
        };
        assert_eq!(
            status(None).await,
            StatusCode::UNAUTHORIZED,
            "{method} {route}"
        );
        for (key, role) in [
            (&FIXTURE.viewer, "viewer"),
            (&FIXTURE.analyst, "analyst"),
            (&FIXTURE.admin, "admin"),
        ] {
            let got = status(Some(key)).await;
            let allowed = role == *needed || role == "admin";
            assert_eq!(
                got == StatusCode::FORBIDDEN,
                !allowed,
                "{method} {route} as {role}: {got}"
            );
            assert!(!got.is_server_error());
        }
    }
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
        "/api/v1/customers/{customer_id}/interactions",
        "/api/v1/products/{golden_id}/similar",
        "/api/v1/events",
        "/api/v1/sql",
        "/api/v1/review/pairs",
        "/api/v1/review/decisions",
        "/api/v1/reports/quality",
        "/api/v1/reports/quarantine",
        "/api/v1/reports/segments",
        "/api/v1/reports/evaluations",
        "/api/v1/keys",
        "/api/v1/keys/{name}",
        "/api/v1/metrics",
        "/api/v1/whoami",
        "/api/v1/products/facets",
        "/api/v1/products/{golden_id}/prices",
        "/api/v1/reports/sales",
        "/api/v1/reports/quarantine/rows",
        "/api/v1/forecasts",
        "/api/v1/customers",
        "/api/v1/customers/{customer_id}/timeline",
        "/api/v1/search",
        "/api/v1/ask",
        "/api/v1/products/{golden_id}/sentiment",
        "/api/v1/reports/sentiment",
        "/api/v1/risk",
        "/api/v1/risk/rings/{ring_id}",
    ] {
        assert!(paths.contains_key(route), "{route} missing");
    }
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
}

#[tokio::test]
async fn a_new_commit_is_served_without_a_restart() {
    // A copy: the commit below drops files the other tests' states may be reading.
    let (copy, state) = copied_state();
    let project = Project::open(copy.path()).unwrap();
    let before = state.index().version;
    assert!(!state.reload_if_committed().unwrap(), "nothing new yet");
    let options = RunOptions {
        selection: Selection::Only(vec!["profiles".into()]),
        force: true,
        rebuild: false,
        cluster: None,
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

/// A listing on `platform` whose golden product has item-kNN neighbours, so that an event on
/// it moves recommendations.
fn listing_with_neighbours(state: &AppState, platform: &str) -> (String, String) {
    let index = state.index();
    for p in &index.products {
        let item = index.item_of(&p.summary.golden_id).unwrap();
        let similar = shopfuse_serve::live::similar_products(&index, item, 3);
        let Some(offer) = p.offers.iter().find(|o| o.platform == platform) else {
            continue;
        };
        if similar.iter().any(|s| s.similarity > 0.0) {
            return (offer.listing_id.clone(), p.summary.golden_id.clone());
        }
    }
    panic!("no listing on {platform} with neighbours");
}

fn event(id: &str, platform: &str, account: &str, listing: &str, kind: &str) -> Value {
    serde_json::json!({
        "event_id": id, "platform": platform, "account_id": account, "listing_id": listing,
        "type": kind, "at": "2026-11-30T09:30:00+08:00"
    })
}

#[tokio::test]
async fn posted_events_are_seen_at_once_and_folded_by_the_next_run_exactly_once() {
    let (copy, state) = copied_state();
    let (customer, platform, account) = multi_platform_customer(&state);
    let (listing, golden) = listing_with_neighbours(&state, &platform);
    let views_before = state
        .index()
        .interactions(&customer)
        .iter()
        .find(|i| i.golden_id == golden)
        .map_or(0, |i| i.views);
    let batch = serde_json::json!({ "events": [
        event("e-1", &platform, &account, &listing, "view"),
        event("e-2", &platform, &account, &listing, "cart"),
        event("e-3", &platform, "no-such-account", &listing, "view"),
        event("e-4", &platform, &account, &listing, "teleport"),
        event("e-1", &platform, &account, &listing, "view"),
    ]});
    let (status, receipt) = send(
        &state,
        "POST",
        "/api/v1/events",
        &FIXTURE.admin,
        batch.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{receipt}");
    assert_eq!(
        (receipt["accepted"].as_u64(), receipt["duplicates"].as_u64()),
        (Some(2), Some(1))
    );
    let reasons: Vec<(u64, &str)> = receipt["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(reasons, [(2, "unknown_account"), (3, "bad_type")]);

    // Visible at once: in the interactions and in the recommendations' reasons.
    let uri = format!("/api/v1/customers/{customer}/interactions");
    let (_, seen) = get(&state, &uri, Some(&FIXTURE.analyst)).await;
    let live: Vec<&str> = seen["live"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(live, ["e-1", "e-2"]);
    assert_eq!(seen["live"][0]["golden_id"], golden.as_str());
    let uri = format!("/api/v1/customers/{customer}/recommendations?k=20");
    let (_, recs) = get(&state, &uri, Some(&FIXTURE.analyst)).await;
    let items = recs["items"].as_array().unwrap();
    assert!(items.iter().all(|r| r["model"] == "hybrid+live"), "{recs}");
    assert!(
        items
            .iter()
            .any(|r| r["reason"].as_str().unwrap().contains("just now")),
        "{recs}"
    );

    // The same batch again stores nothing.
    let (_, again) = send(
        &state,
        "POST",
        "/api/v1/events",
        &FIXTURE.admin,
        batch.to_string(),
    )
    .await;
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(3))
    );

    // The next run folds the log in once; a second run and a restart change nothing. (The
    // project is opened again, as `shopfuse run` does: the log's sources are found at open.)
    let project = Project::open(copy.path()).unwrap();
    for _ in 0..2 {
        Pipeline::standard()
            .run(&project, &RunOptions::default(), &NoProgress)
            .unwrap();
    }
    assert!(state.reload_if_committed().unwrap());
    let restarted = AppState::open(&project).unwrap();
    for s in [&state, &restarted] {
        assert!(s.live().is_empty());
        let views = s
            .index()
            .interactions(&customer)
            .iter()
            .find(|i| i.golden_id == golden)
            .map_or(0, |i| i.views);
        assert_eq!(views, views_before + 1);
    }
    let raw = TableStore::at(copy.path())
        .read_rows("raw_events")
        .unwrap()
        .unwrap();
    let from_api = raw
        .rows
        .iter()
        .filter(|r| {
            raw.text(r, "_source")
                .is_some_and(|s| s.starts_with("api_events_"))
        })
        .count();
    assert_eq!(from_api, 2);
}

#[tokio::test]
async fn a_body_that_is_not_a_batch_is_a_400_naming_the_field() {
    let state = state();
    let post = |body: String, key: &'static str| {
        let state = state.clone();
        async move { send(&state, "POST", "/api/v1/events", key, body).await }
    };
    let admin: &'static str = Box::leak(FIXTURE.admin.clone().into_boxed_str());
    let analyst: &'static str = Box::leak(FIXTURE.analyst.clone().into_boxed_str());
    let (status, body) = post(r#"{"evnets": []}"#.into(), admin).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("evnets"),
        "{body}"
    );
    let missing = r#"{"events": [{"event_id": "x", "platform": "jd", "account_id": "a", "listing_id": "l", "type": "view"}]}"#;
    let (status, body) = post(missing.into(), admin).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("`at`"),
        "{body}"
    );
    let (status, _) = post("{not json".into(), admin).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post(r#"{"events": []}"#.into(), admin).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = post(r#"{"events": []}"#.into(), analyst).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let huge = format!(r#"{{"events": ["{}"]}}"#, "x".repeat(5 << 20));
    let (status, _) = post(huge, admin).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_sql_endpoint_answers_one_select_to_analysts_and_refuses_everything_else() {
    let state = state();
    let sql = |q: &str| serde_json::json!({ "sql": q }).to_string();
    let (status, body) = send(
        &state,
        "POST",
        "/api/v1/sql",
        &FIXTURE.analyst,
        sql("select count(*) as n from customers"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["rows"][0]["n"].as_i64().unwrap() > 0, "{body}");
    assert_eq!(body["columns"][0]["name"], "n");
    let limited =
        serde_json::json!({ "sql": "select golden_id from golden_products", "max_rows": 2 });
    let (_, body) = send(
        &state,
        "POST",
        "/api/v1/sql",
        &FIXTURE.analyst,
        limited.to_string(),
    )
    .await;
    assert_eq!(
        (
            body["rows"].as_array().unwrap().len(),
            body["truncated"].as_bool()
        ),
        (2, Some(true))
    );
    let (status, _) = send(
        &state,
        "POST",
        "/api/v1/sql",
        &FIXTURE.viewer,
        sql("select 1"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for refused in [
        "create table x as select 1",
        "drop table customers",
        "insert into customers select * from customers",
        "copy (select 1 as a) to '/tmp/shopfuse-sql-escape.csv'",
        "create external table t stored as csv location '/etc/passwd'",
        "select * from '/etc/passwd'",
        "set datafusion.execution.batch_size = 1",
        "select 1; drop table customers",
        "selec 1",
    ] {
        let (status, body) =
            send(&state, "POST", "/api/v1/sql", &FIXTURE.admin, sql(refused)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}: {body}");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    assert!(!std::path::Path::new("/tmp/shopfuse-sql-escape.csv").exists());
    let audit = AuditLog::read(&FIXTURE.root.join(".shopfuse").join(AUDIT_FILE)).unwrap();
    assert!(audit.iter().any(|e| e.route == "/api/v1/sql"
        && e.detail.as_deref() == Some("select count(*) as n from customers")));
}

#[tokio::test]
async fn propensity_is_for_analysts_and_audiences_follow_the_role() {
    let state = state();
    let (customer, _, _) = multi_platform_customer(&state);
    let uri = format!("/api/v1/customers/{customer}/propensity");
    let (status, _) = get(&state, &uri, Some(&FIXTURE.viewer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = get(&state, &uri, Some(&FIXTURE.analyst)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["customer_id"], customer.as_str());
    assert!(body["as_of"].is_string(), "{body}");
    let (status, _) = get(
        &state,
        "/api/v1/customers/CU-nobody/propensity",
        Some(&FIXTURE.analyst),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let audit = AuditLog::read(&FIXTURE.root.join(".shopfuse").join(AUDIT_FILE)).unwrap();
    assert!(audit
        .iter()
        .any(|e| e.route == "/api/v1/customers/{customer_id}/propensity"
            && e.customer_id == customer));

    let audience = |key: &str, body: Value| {
        let state = state.clone();
        let key = key.to_string();
        async move { send(&state, "POST", "/api/v1/audiences", &key, body.to_string()).await }
    };
    let everyone = serde_json::json!({ "where": "orders >= 0", "platform": "jd" });
    // A viewer gets a noisy count and no accounts.
    let (status, body) = audience(&FIXTURE.viewer, everyone.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["epsilon"], 1.0);
    assert!(body["accounts"].as_array().unwrap().is_empty());
    // An analyst gets pseudonyms of JD accounts, never the platform's ids.
    let (status, body) = audience(&FIXTURE.analyst, everyone.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let accounts = body["accounts"].as_array().unwrap();
    assert!(!accounts.is_empty(), "{body}");
    assert!(accounts.iter().all(|a| a["platform"] == "jd"
        && a["account_id"].is_null()
        && a["pseudonymous_id"].as_str().unwrap().starts_with("aud:")));
    let mut with_ids = everyone.clone();
    with_ids["ids"] = "platform".into();
    let (status, _) = audience(&FIXTURE.analyst, with_ids.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = audience(&FIXTURE.admin, with_ids).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["account_id"].is_string()));
    // Bad conditions and settings are the caller's: 400 naming the problem.
    for bad in [
        serde_json::json!({ "where": "orders >= 0) union select account_id from customer_accounts --" }),
        serde_json::json!({ "where": "no_such_column > 1" }),
        serde_json::json!({ "where": "orders >= 0", "dp_epsilon": 0 }),
        serde_json::json!({ "where": "orders >= 0", "limit": 0 }),
        serde_json::json!({ "condition": "orders >= 0" }),
    ] {
        let (status, body) = audience(&FIXTURE.analyst, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn the_review_queue_lists_uncertain_pairs_and_decisions_become_labels() {
    let (copy, state) = copied_state();
    let (status, _) = get(&state, "/api/v1/review/pairs", Some(&FIXTURE.viewer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, queue) = get(
        &state,
        "/api/v1/review/pairs?limit=5",
        Some(&FIXTURE.analyst),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    let pairs = queue["pairs"].as_array().unwrap().clone();
    assert!(!pairs.is_empty() && pairs.len() <= 5, "{queue}");
    let first = &pairs[0];
    let decision = |same: bool| {
        serde_json::json!({ "decisions": [{
            "left_platform": first["left_platform"], "left_listing_id": first["left_listing_id"],
            "right_platform": first["right_platform"], "right_listing_id": first["right_listing_id"],
            "same_product": same }] })
        .to_string()
    };
    let (status, _) = send(
        &state,
        "POST",
        "/api/v1/review/decisions",
        &FIXTURE.analyst,
        decision(true),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, receipt) = send(
        &state,
        "POST",
        "/api/v1/review/decisions",
        &FIXTURE.admin,
        decision(true),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(
        (
            receipt["labels"].as_u64(),
            receipt["total_reviewed"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let (_, queue) = get(
        &state,
        "/api/v1/review/pairs?limit=5",
        Some(&FIXTURE.analyst),
    )
    .await;
    assert_ne!(queue["pairs"][0], *first, "a decided pair leaves the queue");
    let labels = TableStore::at(copy.path())
        .read_rows("review_labels")
        .unwrap()
        .unwrap();
    assert_eq!(labels.rows.len(), 1);
    assert_eq!(
        labels.text(&labels.rows[0], "source_file").as_deref(),
        Some("api:ops")
    );
    let unknown = r#"{"decisions": [{"left_platform": "jd", "left_listing_id": "nope", "right_platform": "taobao", "right_listing_id": "nope", "same_product": false}]}"#;
    let (status, body) = send(
        &state,
        "POST",
        "/api/v1/review/decisions",
        &FIXTURE.admin,
        unknown,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("decisions[0]"),
        "{body}"
    );
}

#[tokio::test]
async fn admins_create_and_revoke_keys_over_the_api() {
    let (_copy, state) = copied_state();
    let new = r#"{"role": "viewer", "name": "kiosk"}"#;
    let (status, _) = send(&state, "POST", "/api/v1/keys", &FIXTURE.analyst, new).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) = send(&state, "POST", "/api/v1/keys", &FIXTURE.admin, new).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    assert_eq!(
        get(&state, "/api/v1/products?limit=1", Some(&key)).await.0,
        StatusCode::OK
    );
    let (status, _) = send(&state, "POST", "/api/v1/keys", &FIXTURE.admin, new).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = send(
        &state,
        "POST",
        "/api/v1/keys",
        &FIXTURE.admin,
        r#"{"role": "root"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, listed) = get(&state, "/api/v1/keys", Some(&FIXTURE.admin)).await;
    let names: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"kiosk") && !listed.to_string().contains(&key));
    let (status, revoked) = send(&state, "DELETE", "/api/v1/keys/kiosk", &FIXTURE.admin, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(
        get(&state, "/api/v1/products?limit=1", Some(&key)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, _) = send(&state, "DELETE", "/api/v1/keys/nobody", &FIXTURE.admin, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn reports_give_viewers_noisy_segment_counts_and_analysts_exact_ones() {
    let state = state();
    let (status, quality) = get(&state, "/api/v1/reports/quality", Some(&FIXTURE.viewer)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!quality["sources"].as_array().unwrap().is_empty());
    let (status, quarantine) =
        get(&state, "/api/v1/reports/quarantine", Some(&FIXTURE.viewer)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(quarantine["groups"].is_array());
    let (_, noisy) = get(&state, "/api/v1/reports/segments", Some(&FIXTURE.viewer)).await;
    assert_eq!(noisy["epsilon"].as_f64(), Some(1.0), "{noisy}");
    let (_, exact) = get(&state, "/api/v1/reports/segments", Some(&FIXTURE.analyst)).await;
    assert!(exact["epsilon"].is_null());
    let counted: f64 = exact["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["customers"].as_f64().unwrap())
        .sum();
    assert_eq!(counted as usize, state.index().customer_count());
    let (status, _) = get(
        &state,
        "/api/v1/reports/segments?epsilon=100",
        Some(&FIXTURE.viewer),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(
        &state,
        "/api/v1/reports/segments?by=city",
        Some(&FIXTURE.viewer),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, evaluations) = get(&state, "/api/v1/reports/evaluations", Some(&FIXTURE.viewer)).await;
    for stage in ["resolve", "identity", "recs"] {
        assert!(
            evaluations["stages"][stage]["summary"].is_object(),
            "{stage}: {evaluations}"
        );
    }
}

/// Every text value of every committed table, with its table and column.
fn every_text_value(root: &std::path::Path) -> Vec<(String, String, String)> {
    let store = TableStore::at(root);
    let mut out = Vec::new();
    for table in store.table_names().unwrap() {
        let (schema, batches) = store.read_table(&table).unwrap().unwrap();
        for batch in &batches {
            for field in schema.fields() {
                let column = shopfuse_core::value::TextColumn::of(batch, field.name());
                for row in 0..batch.num_rows() {
                    if let Some(v) = column.get(row) {
                        out.push((table.clone(), field.name().clone(), v.to_string()));
                    }
                }
            }
        }
    }
    out
}

#[tokio::test]
async fn an_erased_customer_leaves_no_trace_in_any_table_or_the_event_log() {
    let (copy, state) = copied_state();
    let (customer, platform, account) = multi_platform_customer(&state);
    let (listing, _) = listing_with_neighbours(&state, &platform);
    let batch =
        serde_json::json!({ "events": [event("x-1", &platform, &account, &listing, "view")] });
    let (status, _) = send(
        &state,
        "POST",
        "/api/v1/events",
        &FIXTURE.admin,
        batch.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // Every id and personal-data hash the customer had (the hashes no one else shares).
    let accounts: Vec<(String, String)> = state
        .index()
        .customer(&customer)
        .unwrap()
        .accounts
        .iter()
        .map(|a| (a.platform.clone(), a.account_id.clone()))
        .collect();
    let raw = TableStore::at(copy.path())
        .read_rows("raw_customers")
        .unwrap()
        .unwrap();
    let mut theirs = std::collections::HashSet::new();
    let mut others = std::collections::HashSet::new();
    for r in &raw.rows {
        let key = (
            raw.text(r, "_platform").unwrap(),
            raw.text(r, "account_id").unwrap(),
        );
        for column in ["name", "phone", "email", "address"] {
            if let Some(hash) = raw.text(r, column) {
                if accounts.contains(&key) {
                    theirs.insert(hash)
                } else {
                    others.insert(hash)
                };
            }
        }
    }
    let hashes: Vec<String> = theirs.difference(&others).cloned().collect();
    assert!(!hashes.is_empty());
    let mut needles: Vec<String> = accounts.iter().map(|(_, a)| a.clone()).collect();
    needles.push(customer.clone());
    needles.extend(hashes);
    let found = |root: &std::path::Path| -> Vec<(String, String)> {
        every_text_value(root)
            .into_iter()
            .filter(|(_, _, v)| {
                needles.iter().any(|n| {
                    v == n
                        || v.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .any(|w| w == n)
                })
            })
            .map(|(t, c, _)| (t, c))
            .collect()
    };
    assert!(
        !found(copy.path()).is_empty(),
        "the search finds the customer before"
    );

    let uri = format!("/api/v1/customers/{customer}");
    let (status, _) = send(&state, "DELETE", &uri, &FIXTURE.analyst, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, erased) = send(&state, "DELETE", &uri, &FIXTURE.admin, "").await;
    assert_eq!(status, StatusCode::OK, "{erased}");
    assert_eq!(erased["accounts"].as_u64(), Some(accounts.len() as u64));
    assert_eq!(erased["events_removed"].as_u64(), Some(1));
    assert!(
        erased["rows_removed"]["customers"].as_u64() == Some(1),
        "{erased}"
    );
    let (status, _) = get(&state, &uri, Some(&FIXTURE.analyst)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(
        &state,
        &format!("/api/v1/accounts/{platform}/{account}"),
        Some(&FIXTURE.analyst),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(found(copy.path()), Vec::<(String, String)>::new());
    let log_dir = copy.path().join(".shopfuse/events");
    for entry in walk(&log_dir) {
        let text = std::fs::read_to_string(entry).unwrap();
        assert!(accounts.iter().all(|(_, a)| !text.contains(a.as_str())));
    }
    let audit = AuditLog::read(&copy.path().join(".shopfuse").join(AUDIT_FILE)).unwrap();
    assert!(audit
        .iter()
        .any(|e| e.route.starts_with("DELETE") && e.customer_id == customer));

    // Ingesting every export again does not bring them back, and every row is accounted for.
    let project = Project::open(copy.path()).unwrap();
    let rebuild = RunOptions {
        rebuild: true,
        ..RunOptions::default()
    };
    let report = Pipeline::standard()
        .run(&project, &rebuild, &NoProgress)
        .unwrap();
    assert!(
        report.balanced,
        "rows in = accepted + quarantined after the re-ingest"
    );
    assert_eq!(found(copy.path()), Vec::<(String, String)>::new());
    let quarantine = TableStore::at(copy.path())
        .read_rows("quarantine")
        .unwrap()
        .unwrap();
    assert!(quarantine
        .rows
        .iter()
        .any(|r| quarantine.text(r, "reason").as_deref() == Some("erased")));
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk(&entry.path()));
        } else {
            out.push(entry.path());
        }
    }
    out
}

/// A state on a copy of the fixture, for tests that write (events, erasure, labels, keys).
fn copied_state() -> (tempfile::TempDir, AppState) {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&FIXTURE.root, copy.path());
    let state = AppState::open(&Project::open(copy.path()).unwrap()).unwrap();
    (copy, state)
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

#[tokio::test]
async fn the_dashboard_routes_answer_its_pages_by_role() {
    let state = state();
    let (customer, _, _) = multi_platform_customer(&state);
    // The page and its assets need no key (they hold no data).
    let (status, headers, page) = get_text(&state, "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.contains("/assets/echarts-6.1.0.min.js"));
    let (status, headers, _) = get_text(&state, "/assets/echarts-6.1.0.min.js", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));

    let (status, me) = get(&state, "/api/v1/whoami", Some(&FIXTURE.viewer)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("shop-front"), Some("viewer"))
    );
    assert_eq!(me["base_currency"], "CNY");
    assert!(me["platforms"].as_array().unwrap().len() >= 3);
    assert_eq!(
        get(&state, "/api/v1/whoami", None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Sales: per platform they add up to the total, per day as per month.
    let sum = |body: &Value, field: &str| -> f64 {
        body["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[field].as_f64().unwrap())
            .sum()
    };
    let (status, by_platform) = get(
        &state,
        "/api/v1/reports/sales?grain=day&by=platform",
        Some(&FIXTURE.viewer),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{by_platform}");
    let (_, total) = get(
        &state,
        "/api/v1/reports/sales?grain=month&by=total",
        Some(&FIXTURE.viewer),
    )
    .await;
    let (_, by_category) = get(
        &state,
        "/api/v1/reports/sales?grain=week&by=category",
        Some(&FIXTURE.viewer),
    )
    .await;
    assert!(sum(&total, "orders") > 0.0);
    assert_eq!(sum(&by_platform, "orders"), sum(&total, "orders"));
    assert_eq!(sum(&by_category, "units"), sum(&total, "units"));
    assert!((sum(&by_platform, "revenue_base") - sum(&total, "revenue_base")).abs() < 1e-3);
    assert_eq!(total["timezone"], "Asia/Shanghai");
    let first = &total["points"][0]["period"];
    assert!(
        first.as_str().unwrap().ends_with("-01"),
        "a month starts on its first day: {first}"
    );
    // A window keeps only its days.
    let (_, window) = get(
        &state,
        "/api/v1/reports/sales?grain=day&by=total&from=2024-11-11&to=2024-11-11",
        Some(&FIXTURE.viewer),
    )
    .await;
    assert!(window["points"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["period"] == "2024-11-11"));
    for bad in [
        "grain=hour",
        "by=brand",
        "from=2024-13-01",
        "to=tomorrow",
        "x=1",
    ] {
        let (status, body) = get(
            &state,
            &format!("/api/v1/reports/sales?{bad}"),
            Some(&FIXTURE.viewer),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    // Forecasts: the total's band holds its median; a level needs its key.
    let (status, fc) = get(
        &state,
        "/api/v1/forecasts?level=total",
        Some(&FIXTURE.viewer),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fc}");
    let points = fc["points"].as_array().unwrap();
    assert!(!points.is_empty());
    for p in points {
        let (p10, p50, p90) = (
            p["p10"].as_f64().unwrap(),
            p["p50"].as_f64().unwrap(),
            p["p90"].as_f64().unwrap(),
        );
        assert!(p10 <= p50 && p50 <= p90, "{p}");
    }
    let platform = me["platforms"][0].as_str().unwrap();
    let (status, _) = get(
        &state,
        &format!("/api/v1/forecasts?level=platform&key={platform}"),
        Some(&FIXTURE.viewer),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        get(
            &state,
            "/api/v1/forecasts?level=platform",
            Some(&FIXTURE.viewer)
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(
            &state,
            "/api/v1/forecasts?level=platform&key=nowhere'",
            Some(&FIXTURE.viewer)
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    // Facets count every product once per value.
    let (_, facets) = get(&state, "/api/v1/products/facets", Some(&FIXTURE.viewer)).await;
    let (_, all) = get(&state, "/api/v1/products?limit=1", Some(&FIXTURE.viewer)).await;
    let counted: u64 = facets["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["products"].as_u64().unwrap())
        .sum();
    assert!(counted <= all["total"].as_u64().unwrap() && counted > 0);

    // Prices of a product; an unknown one is a 404.
    let golden = all["items"][0]["golden_id"].as_str().unwrap();
    let (status, prices) = get(
        &state,
        &format!("/api/v1/products/{golden}/prices"),
        Some(&FIXTURE.viewer),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(prices["history"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["golden_id"] == golden));
    assert_eq!(
        get(
            &state,
            "/api/v1/products/GP-none/prices",
            Some(&FIXTURE.viewer)
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    // Per-customer and raw rows: analysts only, audited.
    for route in [
        "/api/v1/customers".to_string(),
        format!("/api/v1/customers/{customer}/timeline"),
        "/api/v1/reports/quarantine/rows".to_string(),
    ] {
        assert_eq!(
            get(&state, &route, Some(&FIXTURE.viewer)).await.0,
            StatusCode::FORBIDDEN,
            "{route}"
        );
        let (status, body) = get(&state, &route, Some(&FIXTURE.analyst)).await;
        assert_eq!(status, StatusCode::OK, "{route}: {body}");
    }
    let (_, page) = get(
        &state,
        "/api/v1/customers?limit=3&offset=1",
        Some(&FIXTURE.analyst),
    )
    .await;
    let spend: Vec<f64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["monetary_base"].as_f64().unwrap())
        .collect();
    assert_eq!(spend.len(), 3);
    assert!(
        spend.windows(2).all(|w| w[0] >= w[1]),
        "highest spend first: {spend:?}"
    );
    let (_, timeline) = get(
        &state,
        &format!("/api/v1/customers/{customer}/timeline?limit=5"),
        Some(&FIXTURE.analyst),
    )
    .await;
    let items = timeline["items"].as_array().unwrap();
    assert!(timeline["total"].as_i64().unwrap() >= items.len() as i64 && !items.is_empty());
    let at: Vec<&str> = items.iter().map(|i| i["at"].as_str().unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] >= w[1]), "newest first: {at:?}");
    let (_, rows) = get(
        &state,
        "/api/v1/reports/quarantine/rows?limit=2&reason=missing_required",
        Some(&FIXTURE.analyst),
    )
    .await;
    assert!(rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["reason"] == "missing_required"));
    assert!(rows["rows"].as_array().unwrap().len() <= 2);
    let audit = AuditLog::read(&FIXTURE.root.join(".shopfuse").join(AUDIT_FILE)).unwrap();
    let audited = audit
        .iter()
        .any(|e| e.route.ends_with("/timeline") && e.customer_id == customer);
    assert!(audited, "the timeline read is audited");
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
        /// Whatever the body, posting it as events is answered with a 4xx (or a 202), never
        /// a 5xx.
        #[test]
        fn no_event_body_gets_a_server_error(body in r#"\{("events"|"x"): ?\[?(\{"[a-z_]{1,10}": ?("[a-z0-9:-]{0,12}"|[0-9]{1,3}|null)\}|,){0,4}\]?\}?"#) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (state, _) = &*SHARED;
            let (status, _) = runtime.block_on(send(state, "POST", "/api/v1/events", &FIXTURE.admin, body.clone()));
            prop_assert!(!status.is_server_error(), "{body}: {status}");
        }

        /// Whatever the SQL text, the answer is 200 or a 400, never a 5xx.
        #[test]
        fn no_sql_text_gets_a_server_error(text in "(select|with|insert|copy|drop|set|from|where|customers|\\*|1|'x'|;|\\(|\\)| ){0,8}") {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (state, _) = &*SHARED;
            let body = serde_json::json!({ "sql": text }).to_string();
            let (status, _) = runtime.block_on(send(state, "POST", "/api/v1/sql", &FIXTURE.analyst, body));
            prop_assert!(!status.is_server_error(), "{text}: {status}");
        }

        /// Whatever the audience condition, the answer is 200 or a 400, never a 5xx.
        #[test]
        fn no_audience_condition_gets_a_server_error(text in "(p_buy_30d|segment|orders|>|<|=|0.5|'x'|and|or|not|\\(|\\)|;|select| ){0,8}") {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (state, _) = &*SHARED;
            let body = serde_json::json!({ "where": text }).to_string();
            let (status, _) = runtime.block_on(send(state, "POST", "/api/v1/audiences", &FIXTURE.analyst, body));
            prop_assert!(!status.is_server_error(), "{text}: {status}");
        }

        /// Whatever the query string, the answer is 200 or a 4xx, never a 5xx.
        #[test]
        fn no_query_string_gets_a_server_error(query in "[a-z_=&%0-9,.'-]{0,40}", which in 0usize..8) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (state, customer) = &*SHARED;
            let route = match which {
                0 => format!("/api/v1/products?{query}"),
                1 => format!("/api/v1/customers/{customer}/recommendations?{query}"),
                2 => format!("/api/v1/reports/sales?{query}"),
                3 => format!("/api/v1/forecasts?{query}"),
                4 => format!("/api/v1/reports/quarantine/rows?{query}"),
                5 => format!("/api/v1/customers?{query}"),
                6 => format!("/api/v1/customers/{customer}/timeline?{query}"),
                _ => format!("/api/v1/products/{query}"),
            };
            let (status, _) = runtime.block_on(get(state, &route, Some(&FIXTURE.analyst)));
            prop_assert!(!status.is_server_error(), "{route}: {status}");
        }
    }
}

#[tokio::test]
async fn search_finds_a_product_by_its_title_and_refuses_bad_parameters() {
    let state = state();
    let product = state.index().products[0].clone();
    let title = product.summary.title.clone().expect("a titled product");
    let uri = format!("/api/v1/search?q={}&limit=5", url_encode(&title));
    let (status, body) = get(&state, &uri, Some(&FIXTURE.viewer)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hits = body["hits"].as_array().unwrap();
    assert!(
        hits.iter()
            .take(3)
            .any(|h| h["golden_id"] == product.summary.golden_id.as_str()),
        "{title}: {body}"
    );
    assert!(hits[0]["best_offers"]
        .as_array()
        .is_some_and(|o| !o.is_empty()));
    assert!(body["facets"]["platform"].is_object());
    for bad in [
        "/api/v1/search?q=",
        "/api/v1/search?q=phone&limit=0",
        "/api/v1/search?q=phone&mode=psychic",
        "/api/v1/search?q=phone&min_price=9&max_price=1",
        "/api/v1/search?q=phone&min_price=abc",
        "/api/v1/search?q=phone&min_price=-1",
        "/api/v1/search?q=phone&unknown=1",
    ] {
        let (status, body) = get(&state, bad, Some(&FIXTURE.viewer)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    assert_eq!(
        get(&state, "/api/v1/search?q=x", None).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// The file of the committed manifest's latest version (what a test edits to stand for
/// another committed state).
fn latest_manifest(project: &std::path::Path) -> std::path::PathBuf {
    let versions = project.join(".shopfuse/manifests");
    let mut files: Vec<_> = std::fs::read_dir(&versions)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.pop().expect("a committed version")
}

#[tokio::test]
async fn search_and_ask_before_the_search_stage_ran_say_so_with_409() {
    let (copy, _) = copied_state();
    // The committed state of a project whose runs stopped before the search stage.
    let manifest = latest_manifest(copy.path());
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    m["tables"]
        .as_object_mut()
        .unwrap()
        .remove("search_documents");
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    let state = AppState::open(&Project::open(copy.path()).unwrap()).unwrap();
    let (status, body) = get(&state, "/api/v1/search?q=phone", Some(&FIXTURE.viewer)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("shopfuse run"), "{body}");
    let ask = json!({"question": "how do I return this?"}).to_string();
    let (status, body) = send(&state, "POST", "/api/v1/ask", &FIXTURE.viewer, ask).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn review_sentiment_per_product_and_its_alerts_for_viewers() {
    let state = state();
    let (status, alerts) = get(&state, "/api/v1/reports/sentiment", Some(&FIXTURE.viewer)).await;
    assert_eq!(status, StatusCode::OK, "{alerts}");
    assert!(alerts["total"].as_u64().unwrap() >= alerts["alerts"].as_array().unwrap().len() as u64);
    assert_eq!(
        get(&state, "/api/v1/reports/sentiment", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = get(
        &state,
        "/api/v1/reports/sentiment?limit=0",
        Some(&FIXTURE.viewer),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The product with the most reviews: its totals add up over platforms.
    let reviewed = TableStore::at(&FIXTURE.root)
        .read_columns("review_sentiment", &["golden_id"])
        .unwrap()
        .unwrap();
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    for r in &reviewed.rows {
        if let Some(g) = reviewed.text(r, "golden_id") {
            *counts.entry(g).or_default() += 1;
        }
    }
    let (golden, n) = counts.iter().max_by_key(|(_, n)| **n).unwrap();
    let (status, report) = get(
        &state,
        &format!("/api/v1/products/{golden}/sentiment?examples=2"),
        Some(&FIXTURE.viewer),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["overall"]["total"].as_u64(), Some(*n), "{report}");
    let per_platform: u64 = report["platforms"]
        .as_object()
        .unwrap()
        .values()
        .map(|t| t["total"].as_u64().unwrap())
        .sum();
    assert_eq!(per_platform, *n);
    assert!(report["most_negative"].as_array().unwrap().len() <= 2);
    let (status, _) = get(
        &state,
        "/api/v1/products/GP-none/sentiment",
        Some(&FIXTURE.viewer),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(
        &state,
        &format!("/api/v1/products/{golden}/sentiment?examples=x"),
        Some(&FIXTURE.viewer),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sentiment_before_the_sentiment_stage_ran_says_so_with_409() {
    let (copy, _) = copied_state();
    let manifest = latest_manifest(copy.path());
    let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let tables = m["tables"].as_object_mut().unwrap();
    for t in ["review_sentiment", "review_aspects", "sentiment_alerts"] {
        tables.remove(t);
    }
    std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    let state = AppState::open(&Project::open(copy.path()).unwrap()).unwrap();
    let (status, body) = get(&state, "/api/v1/reports/sentiment", Some(&FIXTURE.viewer)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("shopfuse run"), "{body}");
    let (_, all) = get(&state, "/api/v1/products?limit=1", Some(&FIXTURE.viewer)).await;
    let golden = all["items"][0]["golden_id"].as_str().unwrap();
    let (status, body) = get(
        &state,
        &format!("/api/v1/products/{golden}/sentiment"),
        Some(&FIXTURE.viewer),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn ask_answers_from_cited_facts_and_audits_customer_questions() {
    let state = state();
    let (customer, _, _) = multi_platform_customer(&state);
    let ask = |body: serde_json::Value, key: &'static str| {
        let state = state.clone();
        async move { send(&state, "POST", "/api/v1/ask", key, body.to_string()).await }
    };
    let (status, body) = ask(json!({"question": "退款多久能到账？"}), &FIXTURE.viewer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["intent"], "returns_policy", "{body}");
    assert_eq!(body["language"], "zh");
    assert!(
        body["citations"][0]["source"]
            .as_str()
            .unwrap()
            .starts_with("policies/"),
        "{body}"
    );

    let order = json!({"question": "Where is my order?", "customer_id": customer});
    let (status, _) = ask(order.clone(), &FIXTURE.viewer).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = ask(order, &FIXTURE.analyst).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["intent"], "order_status", "{body}");
    assert_eq!(body["found"], true, "{body}");
    assert_eq!(body["citations"][0]["source"], "clean_orders", "{body}");
    let audit = AuditLog::read(&FIXTURE.root.join(".shopfuse").join(AUDIT_FILE)).unwrap();
    assert!(audit
        .iter()
        .any(|e| e.route == "/api/v1/ask" && e.customer_id == customer));

    let (status, body) = ask(json!({"question": "Where is my order?"}), &FIXTURE.viewer).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["found"], false, "no customer, no answer: {body}");
    for bad in [
        json!({"question": ""}),
        json!({"question": 3}),
        json!({"q": "x"}),
    ] {
        let (status, _) = ask(bad.clone(), &FIXTURE.viewer).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, _) = ask(
        json!({"question": "x", "customer_id": "CU-none"}),
        &FIXTURE.analyst,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn risk_is_for_analysts_and_each_customer_named_is_audited() {
    let state = state();
    let (status, _) = get(&state, "/api/v1/risk", Some(&FIXTURE.viewer)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, top) = get(&state, "/api/v1/risk?top=5", Some(&FIXTURE.analyst)).await;
    assert_eq!(status, StatusCode::OK, "{top}");
    let orders = top["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 5, "{top}");
    assert!(orders[0]["score"].as_f64() >= orders[4]["score"].as_f64());
    let (status, body) = get(&state, "/api/v1/risk?top=0", Some(&FIXTURE.analyst)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = get(&state, "/api/v1/risk?tpo=5", Some(&FIXTURE.analyst)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = get(&state, "/api/v1/risk/rings/RGnope", Some(&FIXTURE.analyst)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    if let Some(ring) = top["rings"][0]["ring_id"].as_str() {
        let uri = format!("/api/v1/risk/rings/{ring}");
        let (status, view) = get(&state, &uri, Some(&FIXTURE.analyst)).await;
        assert_eq!(status, StatusCode::OK, "{view}");
        assert!(!view["accounts"].as_array().unwrap().is_empty(), "{view}");
    }
    let named: Vec<&str> = orders
        .iter()
        .filter_map(|o| o["customer_id"].as_str())
        .collect();
    let audit = AuditLog::read(&FIXTURE.root.join(".shopfuse").join(AUDIT_FILE)).unwrap();
    for c in named {
        assert!(
            audit
                .iter()
                .any(|e| e.route == "/api/v1/risk" && e.customer_id == c),
            "{c} not audited"
        );
    }
}
