//! The dashboard in a real browser: `shopfuse serve` as a user starts it, Debian's headless
//! Chromium driven over WebDriver (chromedriver) on loopback. Every page loads with no console
//! error and no failed request, every chart's canvas has pixels drawn, the language toggle
//! changes the labels and is remembered, a viewer key cannot open a customer page, and a pair
//! accepted in the review queue with the keyboard is a label `shopfuse review labels` shows.
//! Screenshots of every page go to `screenshots/` (or `SHOPFUSE_SCREENSHOTS`).
//!
//! `SHOPFUSE_DASHBOARD_PROJECT=demo` runs it on an existing project (`./run screenshots` does,
//! on the demo project) instead of a small generated one.
//! Needs `chromium` and `chromium-driver` (`scripts/install-browser.sh`; `./run test` calls it).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

mod common;
use common::{free_port, generate, json as run_json, shopfuse, sql, Killed};

fn chromedriver() -> PathBuf {
    let path = std::env::var_os("SHOPFUSE_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromedriver"));
    assert!(
        path.exists(),
        "{} is missing: the dashboard's browser test needs Debian's chromium and chromium-driver; run scripts/install-browser.sh (./run test does)",
        path.display()
    );
    path
}

/// chromedriver on a free port, once it answers.
fn start_chromedriver() -> (Killed, String) {
    let port = free_port();
    let child = Process::new(chromedriver())
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "chromedriver did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (Killed(child), url)
}

fn start_server(project: &Path) -> (Killed, String) {
    let mut child = Process::new(assert_cmd::cargo::cargo_bin("shopfuse"))
        .arg("-C")
        .arg(project)
        .args(["--json", "serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let ready: Value = serde_json::from_str(&first).expect("serve prints its address");
    let addr = ready["addr"].as_str().unwrap().to_string();
    (Killed(child), format!("http://{addr}"))
}

fn create_key(project: &Path, name: &str, role: &str) -> String {
    let created =
        run_json(shopfuse(project).args(["keys", "create", "--name", name, "--role", role]));
    created["key"]
        .as_str()
        .expect("keys create --json has the key")
        .to_string()
}

/// chromedriver's browser log (`goog:loggingPrefs`): the console messages and failed loads
/// since the last call.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

struct Browser {
    client: Client,
    base: String,
    shots: PathBuf,
}

impl Browser {
    async fn open(driver: &str, base: &str, shots: PathBuf) -> Self {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": std::env::var("SHOPFUSE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1440,1000", "--lang=en-US", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update"],
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(driver)
            .await
            .expect("a WebDriver session on chromium");
        Self {
            client,
            base: base.to_string(),
            shots,
        }
    }

    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// The render counter the app sets on `<body data-ready>` when a page is drawn.
    async fn ready_seq(&self) -> i64 {
        self.js("return Number(document.body.dataset.ready || -1)")
            .await
            .as_i64()
            .unwrap_or(-1)
    }

    /// Waits until a render newer than `after` has finished showing `page`.
    async fn wait_page(&self, page: &str, after: i64) {
        let started = Instant::now();
        loop {
            let state = self
                .js("return [Number(document.body.dataset.ready || -1), document.body.dataset.page || '']")
                .await;
            if state[0].as_i64().unwrap_or(-1) > after && state[1] == page {
                // Paged tables load after the page; let their requests finish.
                self.wait_idle().await;
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "page {page} did not finish rendering after render {after} (state {state})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Until no `.loading` placeholder is left.
    async fn wait_idle(&self) {
        let started = Instant::now();
        while self
            .js("return document.querySelectorAll('.loading').length")
            .await
            .as_i64()
            != Some(0)
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "a table never loaded"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn visit(&self, hash: &str, page: &str) {
        let before = self.ready_seq().await;
        // Following a link changes the hash; the page already shown is drawn again.
        self.client
            .execute(
                "const h = arguments[0];
                 if (location.hash === h) window.dispatchEvent(new HashChangeEvent('hashchange'));
                 else location.hash = h;",
                vec![json!(format!("#/{hash}"))],
            )
            .await
            .unwrap();
        self.wait_page(page, before).await;
    }

    async fn sign_in(&self, key: &str) {
        self.client
            .goto(&format!("{}/#/overview", self.base))
            .await
            .unwrap();
        let before = self.ready_seq().await;
        if self.js("return document.body.dataset.page").await != "login" {
            self.click("#signout").await;
        }
        let field = self
            .client
            .wait()
            .for_element(Locator::Css("#api-key"))
            .await
            .unwrap();
        field.send_keys(key).await.unwrap();
        self.click("#sign-in").await;
        self.wait_page("overview", before).await;
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .text()
            .await
            .unwrap()
    }

    /// Every chart's canvas has drawn pixels (not one blank), and no error box is shown.
    async fn assert_drawn(&self, page: &str) {
        let charts = self
            .js(
                "return [...document.querySelectorAll('[data-chart]')].map(el => {
                   const c = el.querySelector('canvas');
                   if (!c || !c.width || !c.height) return 0;
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let drawn = 0;
                   for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) drawn++;
                   return drawn;
                 })",
            )
            .await;
        for (i, drawn) in charts.as_array().unwrap().iter().enumerate() {
            assert!(
                drawn.as_i64().unwrap_or(0) > 500,
                "{page}: chart {i} is blank ({drawn} pixels drawn)"
            );
        }
        let errors = self
            .js("return [...document.querySelectorAll('.error')].map(e => e.textContent)")
            .await;
        assert_eq!(errors, json!([]), "{page} shows an error");
    }

    /// Requests with a status of 400 or more since the page was loaded (Resource Timing).
    async fn failed_requests(&self) -> Value {
        self.js("return performance.getEntriesByType('resource')
               .filter(e => e.responseStatus >= 400).map(e => `${e.responseStatus} ${e.name}`)")
            .await
    }

    async fn requested(&self, fragment: &str) -> bool {
        self.client
            .execute(
                "return performance.getEntriesByType('resource').some(e => e.name.includes(arguments[0]))",
                vec![json!(fragment)],
            )
            .await
            .unwrap()
            .as_bool()
            .unwrap()
    }

    /// Console errors and failed loads chromium logged since the last call.
    async fn console_errors(&self) -> Vec<String> {
        let log = self.client.issue_cmd(BrowserLog).await.unwrap();
        log.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }
}

/// The project the test runs on: `SHOPFUSE_DASHBOARD_PROJECT`, or a small generated one.
fn project(tmp: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("SHOPFUSE_DASHBOARD_PROJECT") {
        return PathBuf::from(dir);
    }
    let dir = tmp.join("shop");
    generate(&dir, 7, 30, 200, 1200);
    shopfuse(&dir).arg("run").assert().success();
    dir
}

fn first_id(project: &Path, query: &str, column: &str) -> String {
    sql(project, query)
        .first()
        .and_then(|r| r[column].as_str())
        .unwrap_or_else(|| panic!("no row for {query}"))
        .to_string()
}

#[test]
fn every_page_in_a_real_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let project = project(tmp.path());
    let stamp = std::process::id();
    let admin = create_key(&project, &format!("dash-admin-{stamp}"), "admin");
    let viewer = create_key(&project, &format!("dash-viewer-{stamp}"), "viewer");
    let product = first_id(
        &project,
        "select golden_id from golden_products where listings >= 3 order by listings desc, golden_id limit 1",
        "golden_id",
    );
    let customer = first_id(
        &project,
        "select customer_id from customers where accounts >= 2 and orders > 0 order by orders desc, customer_id limit 1",
        "customer_id",
    );
    let source = first_id(
        &project,
        "select source from quarantine group by source order by count(*) desc, source limit 1",
        "source",
    );
    let shots = std::env::var_os("SHOPFUSE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../screenshots"));
    std::fs::create_dir_all(&shots).unwrap();
    let (_server, base) = start_server(&project);
    let (_driver, driver) = start_chromedriver();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let b = Browser::open(&driver, &base, shots.clone()).await;
        let outcome = browse(&b, &project, &admin, &viewer, &product, &customer, &source).await;
        b.client.close().await.unwrap();
        outcome
    });
    eprintln!("screenshots in {}", shots.display());
}

#[allow(clippy::too_many_arguments)]
async fn browse(
    b: &Browser,
    project: &Path,
    admin: &str,
    viewer: &str,
    product: &str,
    customer: &str,
    source: &str,
) {
    // A fresh load, timed by the browser itself.
    b.client.goto(&format!("{}/", b.base)).await.unwrap();
    b.js("localStorage.setItem('shopfuse.lang', 'en')").await;
    b.client.refresh().await.unwrap();
    b.wait_page("login", -1).await;
    let paint = b
        .js("return (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null")
        .await;
    eprintln!("first contentful paint of the sign-in page: {paint} ms");
    b.screenshot("login").await;
    b.sign_in(admin).await;

    let pages: Vec<(String, &str)> = vec![
        ("overview".into(), "overview"),
        ("sales".into(), "sales"),
        ("sales?grain=month&by=category".into(), "sales"),
        ("catalogue".into(), "catalogue"),
        (format!("product/{product}"), "product"),
        ("customers".into(), "customers"),
        (format!("customer/{customer}"), "customer"),
        (format!("quarantine?source={source}"), "quarantine"),
        ("risk".into(), "risk"),
        ("review".into(), "review"),
    ];
    for lang in ["en", "zh"] {
        for (hash, page) in &pages {
            b.visit(hash, page).await;
            b.assert_drawn(hash).await;
            if *page == "product" {
                // The review sentiment card: its summary line and the per-month chart.
                let sentiment = b.text("#product-sentiment").await;
                assert!(sentiment.contains('★'), "{sentiment}");
            }
            if *page == "risk" {
                // The densest ring's evidence, and its own page from the link.
                let rings = b.text("#risk-rings").await;
                assert!(rings.contains("ring of"), "{rings}");
                let id = b
                    .js("return document.querySelector('#risk-rings a').textContent")
                    .await;
                let id = id.as_str().unwrap().to_string();
                b.visit(&format!("ring/{id}"), "ring").await;
                b.assert_drawn("ring").await;
                assert!(b.text("#ring-evidence").await.contains("ring of"));
                b.screenshot(&format!("{lang}-ring")).await;
                b.visit("risk", "risk").await;
            }
            let name = hash.split(['?', '/']).next().unwrap().to_string();
            let name = if hash.contains("grain=month") {
                "sales-monthly".into()
            } else {
                name
            };
            b.screenshot(&format!("{lang}-{name}")).await;
        }
        if lang == "en" {
            let before = b.ready_seq().await;
            assert_eq!(b.text("#nav-overview").await, "Overview");
            b.click("#lang").await;
            b.wait_page("review", before).await;
            assert_eq!(
                b.text("#nav-overview").await,
                "概览",
                "the toggle changes the labels"
            );
            assert_eq!(b.text("#lang").await, "English");
        }
    }
    // The language is remembered across loads.
    b.client.refresh().await.unwrap();
    b.wait_page("review", -1).await;
    assert_eq!(b.text("#nav-sales").await, "销售");
    assert_eq!(b.failed_requests().await, json!([]), "failed requests");
    let console = b.console_errors().await;
    assert!(console.is_empty(), "console errors: {console:#?}");

    // Back to English for the rest.
    let before = b.ready_seq().await;
    b.click("#lang").await;
    b.wait_page("review", before).await;
    accept_a_pair(b, project).await;

    // A viewer sees aggregates, never a customer.
    b.sign_in(viewer).await;
    let nav = b
        .js("return [...document.querySelectorAll('#nav a')].map(a => a.id)")
        .await;
    assert!(
        !nav.as_array().unwrap().contains(&json!("nav-review")),
        "{nav}"
    );
    b.visit("customers", "customers").await;
    b.assert_drawn("customers (viewer)").await;
    assert!(
        b.text("#dp-note").await.contains("ε"),
        "viewer counts are noisy"
    );
    assert!(
        !b.requested("/api/v1/customers?").await,
        "a viewer's page asked for the customer list"
    );
    b.screenshot("viewer-customers").await;
    b.visit(&format!("customer/{customer}"), "customer").await;
    assert!(b.text("#forbidden").await.contains("viewer"));
    assert!(!b.requested(&format!("/api/v1/customers/{customer}")).await);
    b.screenshot("viewer-customer-refused").await;
    assert_eq!(
        b.failed_requests().await,
        json!([]),
        "failed requests as viewer"
    );
    let console = b.console_errors().await;
    assert!(console.is_empty(), "console errors as viewer: {console:#?}");
}

/// Accepts the first pair of the review queue with the `A` key; the label is stored.
async fn accept_a_pair(b: &Browser, project: &Path) {
    b.visit("review", "review").await;
    let left = b.client.find(Locator::Css("#review-pair")).await.unwrap();
    let (l, r) = (
        left.attr("data-left")
            .await
            .unwrap()
            .expect("a pair to review"),
        left.attr("data-right").await.unwrap().unwrap(),
    );
    b.client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("a")
        .await
        .unwrap();
    let started = Instant::now();
    while b
        .js("return document.querySelector('#review-status').dataset.saved || null")
        .await
        .is_null()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the decision was not saved"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.screenshot("en-review-saved").await;
    let labels = run_json(shopfuse(project).args(["review", "labels"]));
    let stored = labels.as_array().unwrap().iter().any(|x| {
        let side =
            |p: &str, i: &str| format!("{}:{}", x[p].as_str().unwrap(), x[i].as_str().unwrap());
        let pair = [
            side("left_platform", "left_listing_id"),
            side("right_platform", "right_listing_id"),
        ];
        pair.contains(&l) && pair.contains(&r) && x["is_match"] == true
    });
    assert!(
        stored,
        "shopfuse review labels does not show {l} ~ {r}: {labels:#}"
    );
}
