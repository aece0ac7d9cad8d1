//! `shopfuse bench serve`: the server's throughput and latency over real HTTP on loopback,
//! each figure next to the same client against a trivial endpoint of the same server.
//!
//! The server runs in this process on a copy of the project (the bench writes events and
//! keys, which must not land in the real one). Each client task holds one HTTP/1.1
//! keep-alive connection (hyper's client) and sends its next request when the answer is in,
//! so concurrency is the number of requests in flight. The trivial endpoint is
//! `/api/v1/health`: it passes the same router and metrics middleware but does no lookup,
//! no key check and no audit, so its rate is what axum and hyper reach on this machine with
//! this client — the ceiling each case is a fraction of. Client and server share the cores.
//!
//! The events case posts batches of 1,000 fresh events; afterwards the server is stopped and
//! the event log read back, so "nothing lost" is a count, not a belief.

use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use shopfuse_core::Project;

use crate::{router, AppState, KeyStore, Role, ServeError, ServeOptions};

const TRIVIAL: &str = "trivial (health)";

/// Events per posted batch.
pub const EVENT_BATCH: usize = 1_000;

#[derive(Debug, Clone)]
pub struct ServeBenchOptions {
    pub concurrency: Vec<usize>,
    /// How long each case runs at each concurrency.
    pub seconds: f64,
}

impl Default for ServeBenchOptions {
    fn default() -> Self {
        Self {
            concurrency: vec![1, 16, 64],
            seconds: 3.0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ServeBenchRow {
    pub case: String,
    pub concurrency: usize,
    pub requests: usize,
    /// Answers that were not the expected status.
    pub errors: usize,
    pub seconds: f64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// This case's requests/s over the trivial endpoint's at the same concurrency.
    pub ratio_to_ceiling: f64,
    /// Events accepted per second (the events case only).
    pub events_per_second: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServeBenchReport {
    pub products: usize,
    pub customers: usize,
    pub rows: Vec<ServeBenchRow>,
    /// Events the server acknowledged with 202 (summed `accepted`).
    pub events_acknowledged: usize,
    /// Events in the event log after the server stopped.
    pub events_in_log: usize,
    /// Events in the live overlay during the last case (not yet folded by a run): what the
    /// "recommendations, live events" case scores on top of each customer's history.
    pub live_events: usize,
}

/// One kind of request: a name, the status it should get, and the request for call `n`.
struct Case {
    name: &'static str,
    expect: u16,
    make: Box<dyn Fn(usize) -> Option<Request<Full<Bytes>>> + Send + Sync>,
}

/// Runs every case at every concurrency on a copy of `project` and returns the figures.
pub async fn bench_serve(
    project: &Project,
    options: &ServeBenchOptions,
) -> Result<ServeBenchReport, ServeError> {
    let copy = tempfile::tempdir().map_err(|source| ServeError::File {
        path: std::env::temp_dir(),
        source,
    })?;
    copy_project(&project.root, copy.path())?;
    let project = Project::open(copy.path())?;
    let key = KeyStore::create(&KeyStore::path(&project), "bench", Role::Admin, "bench")?;
    let state = AppState::with_options(
        &project,
        &ServeOptions {
            requests_per_second_per_key: u32::MAX / 4,
        },
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| ServeError::Bind {
            addr: "127.0.0.1:0".parse().expect("an address"),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::File {
        path: PathBuf::from("127.0.0.1:0"),
        source,
    })?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, router(state.clone()))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .into_future(),
    );
    let cases = cases(&state, &key);
    let (products, customers) = (state.index().products.len(), state.index().customer_count());
    let mut rows = Vec::new();
    let mut acknowledged = 0;
    let mut ceiling = std::collections::HashMap::new();
    // Case by case, so that the recommendations without live events are measured before any
    // event is posted and those with live events after.
    for case in &cases {
        for &c in &options.concurrency {
            let (mut row, accepted) = run_case(addr, case, c, options.seconds).await;
            if case.name == TRIVIAL {
                ceiling.insert(c, row.requests_per_second);
            }
            row.ratio_to_ceiling =
                row.requests_per_second / ceiling.get(&c).copied().unwrap_or(f64::NAN);
            if case.expect == 202 {
                acknowledged += accepted;
                row.events_per_second = Some(accepted as f64 / row.seconds.max(1e-9));
            }
            rows.push(row);
        }
    }
    let live_events = state.live().len();
    let _ = stop.send(());
    let _ = server.await;
    drop(state);
    let events_in_log = count_logged_events(copy.path());
    Ok(ServeBenchReport {
        products,
        customers,
        rows,
        events_acknowledged: acknowledged,
        events_in_log,
        live_events,
    })
}

fn get(uri: String, key: &str) -> Request<Full<Bytes>> {
    let mut request = Request::get(uri).header("host", "bench");
    if !key.is_empty() {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    request
        .body(Full::new(Bytes::new()))
        .expect("a valid request")
}

fn cases(state: &AppState, key: &str) -> Vec<Case> {
    let index = state.index();
    let products: Arc<Vec<String>> = Arc::new(
        index
            .products
            .iter()
            .map(|p| format!("/api/v1/products/{}", p.summary.golden_id))
            .collect(),
    );
    let mut accounts = Vec::new();
    let mut customers = Vec::new();
    for c in index.customers() {
        customers.push(format!(
            "/api/v1/customers/{}/recommendations?k=10",
            c.customer_id
        ));
        for a in &c.accounts {
            accounts.push((a.platform.clone(), a.account_id.clone()));
        }
    }
    accounts.sort();
    customers.sort();
    let listings: Vec<(String, String)> = index
        .products
        .iter()
        .flat_map(|p| {
            p.offers
                .iter()
                .map(|o| (o.platform.clone(), o.listing_id.clone()))
        })
        .collect();
    let lookups: Arc<Vec<String>> = Arc::new(
        accounts
            .iter()
            .map(|(p, a)| format!("/api/v1/accounts/{p}/{a}"))
            .collect(),
    );
    let customers = Arc::new(customers);
    let customers_again = customers.clone();
    let k5: Arc<str> = key.into();
    let batches = Arc::new(EventBodies::new(&accounts, &listings));
    let k = |s: &str| -> Arc<str> { s.into() };
    let (k1, k2, k3, k4) = (k(key), k(key), k(key), k(key));
    vec![
        Case {
            name: TRIVIAL,
            expect: 200,
            make: Box::new(|_| Some(get("/api/v1/health".into(), ""))),
        },
        Case {
            name: "product lookup",
            expect: 200,
            make: Box::new(move |n| Some(get(products[n % products.len()].clone(), &k1))),
        },
        Case {
            name: "customer by platform account",
            expect: 200,
            make: Box::new(move |n| Some(get(lookups[n % lookups.len()].clone(), &k2))),
        },
        Case {
            name: "recommendations (k=10)",
            expect: 200,
            make: Box::new(move |n| Some(get(customers[n % customers.len()].clone(), &k3))),
        },
        Case {
            name: "events (batches of 1,000)",
            expect: 202,
            make: Box::new(move |_| {
                let body = batches.next()?;
                Some(
                    Request::post("/api/v1/events")
                        .header("authorization", format!("Bearer {k4}"))
                        .header("content-type", "application/json")
                        .header("host", "bench")
                        .body(Full::new(body))
                        .expect("a valid request"),
                )
            }),
        },
        Case {
            name: "recommendations, live events",
            expect: 200,
            make: Box::new(move |n| {
                Some(get(customers_again[n % customers_again.len()].clone(), &k5))
            }),
        },
    ]
}

/// Event batches made before the clock starts (the client must not spend the shared cores
/// on JSON while the server is measured), each event with a fresh id.
struct EventBodies {
    accounts: Vec<(String, String)>,
    listings_by_platform: std::collections::HashMap<String, Vec<String>>,
    next: AtomicUsize,
}

impl EventBodies {
    fn new(accounts: &[(String, String)], listings: &[(String, String)]) -> Self {
        let mut listings_by_platform: std::collections::HashMap<String, Vec<String>> =
            Default::default();
        for (p, l) in listings {
            listings_by_platform
                .entry(p.clone())
                .or_default()
                .push(l.clone());
        }
        let accounts = accounts
            .iter()
            .filter(|(p, _)| listings_by_platform.contains_key(p))
            .cloned()
            .collect();
        Self {
            accounts,
            listings_by_platform,
            next: AtomicUsize::new(0),
        }
    }

    /// The body of batch number `n`.
    fn body(&self, n: usize) -> Bytes {
        let mut out = String::with_capacity(EVENT_BATCH * 160);
        out.push_str("{\"events\":[");
        for i in 0..EVENT_BATCH {
            let e = n * EVENT_BATCH + i;
            let (platform, account) = &self.accounts[e % self.accounts.len()];
            let listings = &self.listings_by_platform[platform];
            let listing = &listings[(e / 7) % listings.len()];
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!(
                "{{\"event_id\":\"bench-{e}\",\"platform\":\"{platform}\",\"account_id\":\"{account}\",\"listing_id\":\"{listing}\",\"type\":\"view\",\"at\":\"2026-11-30T10:00:00Z\"}}"
            ));
        }
        out.push_str("]}");
        Bytes::from(out)
    }

    fn next(&self) -> Option<Bytes> {
        (!self.accounts.is_empty()).then(|| self.body(self.next.fetch_add(1, Ordering::Relaxed)))
    }
}

/// `concurrency` connections sending `case` for `seconds`; returns the row and the events
/// acknowledged.
async fn run_case(
    addr: std::net::SocketAddr,
    case: &Case,
    concurrency: usize,
    seconds: f64,
) -> (ServeBenchRow, usize) {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let counter = AtomicUsize::new(0);
    let started = Instant::now();
    let results =
        futures::future::join_all((0..concurrency).map(|_| client(addr, case, &counter, deadline)))
            .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies: Vec<f64> = Vec::new();
    let (mut errors, mut accepted) = (0, 0);
    for r in results {
        latencies.extend(r.latencies);
        errors += r.errors;
        accepted += r.accepted;
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let row = ServeBenchRow {
        case: case.name.into(),
        concurrency,
        requests: latencies.len(),
        errors,
        seconds: elapsed,
        requests_per_second: latencies.len() as f64 / elapsed,
        p50_ms: pct(0.5) * 1e3,
        p99_ms: pct(0.99) * 1e3,
        ratio_to_ceiling: 0.0,
        events_per_second: None,
    };
    (row, accepted)
}

#[derive(Default)]
struct ClientResult {
    latencies: Vec<f64>,
    errors: usize,
    accepted: usize,
}

#[derive(serde::Deserialize)]
struct Receipt {
    accepted: usize,
}

/// One keep-alive connection sending requests until the deadline.
async fn client(
    addr: std::net::SocketAddr,
    case: &Case,
    counter: &AtomicUsize,
    deadline: Instant,
) -> ClientResult {
    let mut result = ClientResult::default();
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        result.errors += 1;
        return result;
    };
    let _ = stream.set_nodelay(true);
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        result.errors += 1;
        return result;
    };
    let driver = tokio::spawn(connection);
    while Instant::now() < deadline {
        let Some(request) = (case.make)(counter.fetch_add(1, Ordering::Relaxed)) else {
            break;
        };
        if sender.ready().await.is_err() {
            result.errors += 1;
            break;
        }
        let sent = Instant::now();
        let Ok(response) = sender.send_request(request).await else {
            result.errors += 1;
            break;
        };
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map(|b| b.to_bytes());
        result.latencies.push(sent.elapsed().as_secs_f64());
        match body {
            Ok(bytes) if status == case.expect => {
                if status == 202 {
                    result.accepted +=
                        serde_json::from_slice::<Receipt>(&bytes).map_or(0, |r| r.accepted);
                }
            }
            _ => result.errors += 1,
        }
    }
    drop(sender);
    driver.abort();
    result
}

/// Lines in every segment of the event log under `root`.
fn count_logged_events(root: &Path) -> usize {
    let dir = shopfuse_core::event_log::event_log_dir(root);
    let mut n = 0;
    for platform in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        for segment in std::fs::read_dir(platform.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(bytes) = std::fs::read(segment.path()) {
                n += bytes.iter().filter(|&&b| b == b'\n').count();
            }
        }
    }
    n
}

/// The project's configuration, tables and state, without its keys, audit log and event
/// log (the bench makes its own).
fn copy_project(from: &Path, to: &Path) -> Result<(), ServeError> {
    let skip = [
        "keys.json",
        crate::audit::AUDIT_FILE,
        shopfuse_core::event_log::EVENT_LOG_DIR,
        "serve.pid",
    ];
    copy_tree(from, to, &|rel: &Path| {
        rel.starts_with(shopfuse_core::project::STATE_DIR)
            && rel
                .components()
                .nth(1)
                .is_some_and(|c| skip.contains(&c.as_os_str().to_string_lossy().as_ref()))
    })
}

fn copy_tree(from: &Path, to: &Path, skip: &dyn Fn(&Path) -> bool) -> Result<(), ServeError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ServeError::File { path, source }
    };
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = from.join(&rel);
        std::fs::create_dir_all(to.join(&rel)).map_err(io(&to.join(&rel)))?;
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let child = rel.join(entry.file_name());
            if skip(&child) {
                continue;
            }
            if entry.file_type().map_err(io(&entry.path()))?.is_dir() {
                stack.push(child);
            } else {
                std::fs::copy(entry.path(), to.join(&child)).map_err(io(&entry.path()))?;
            }
        }
    }
    Ok(())
}
