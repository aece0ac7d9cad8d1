//! End-to-end: `shopfuse keys create` and `shopfuse serve` as a user runs them, called over
//! real HTTP on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command as Process, Stdio};

use serde_json::Value;

mod common;
use common::{generate, shopfuse, sql};

/// Kills the server when the test ends, passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `shopfuse serve` on a free port; the server and its first line (`addr`, counts).
fn start_server(project: &std::path::Path) -> (Server, Value) {
    let mut child = Process::new(assert_cmd::cargo::cargo_bin("shopfuse"))
        .arg("-C")
        .arg(project)
        .args(["--json", "serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    (Server(child), serde_json::from_str(&first_line).unwrap())
}

/// One HTTP/1.1 POST of a JSON body; the status code and the body, or `None` when the
/// connection failed (the server is gone).
fn post(addr: &str, path: &str, key: &str, body: &str) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

/// The event ids in the project's event log, as many times as they appear.
fn logged_event_ids(project: &std::path::Path) -> Vec<String> {
    let mut ids = Vec::new();
    let dir = project.join(".shopfuse/events");
    for platform in std::fs::read_dir(dir).unwrap().flatten() {
        for segment in std::fs::read_dir(platform.path()).unwrap().flatten() {
            let text = std::fs::read_to_string(segment.path()).unwrap();
            for line in text.lines() {
                let event: Value = serde_json::from_str(line).unwrap();
                ids.push(event["event_id"].as_str().unwrap().to_string());
            }
        }
    }
    ids
}

#[test]
fn events_acknowledged_before_a_kill_9_are_stored_once_and_folded_once() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    generate(&project, 12, 20, 100, 500);
    shopfuse(&project).arg("run").assert().success();
    let created = shopfuse(&project)
        .args(["keys", "create", "--role", "admin"])
        .output()
        .unwrap();
    let key = String::from_utf8(created.stdout)
        .unwrap()
        .trim()
        .to_string();
    let account = &sql(&project, "select account_id from customer_accounts where platform = 'jd' order by account_id limit 1")[0]["account_id"];
    let listings: Vec<String> = sql(
        &project,
        "select listing_id from offers where platform = 'jd' order by listing_id limit 20",
    )
    .iter()
    .map(|r| r["listing_id"].as_str().unwrap().to_string())
    .collect();
    let (mut server, ready) = start_server(&project);
    let addr = ready["addr"].as_str().unwrap().to_string();

    // Four clients post batches of 100 until the server dies under them.
    const CLIENTS: usize = 4;
    const BATCH: usize = 100;
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addr, key, account, listings, acknowledged) = (addr.clone(), key.clone(), account.clone(), listings.clone(), acknowledged.clone());
            std::thread::spawn(move || {
                for n in 0.. {
                    let ids: Vec<String> = (0..BATCH).map(|i| format!("c{c}-b{n}-e{i}")).collect();
                    let events: Vec<Value> = ids.iter().enumerate().map(|(i, id)| serde_json::json!({
                        "event_id": id, "platform": "jd", "account_id": account,
                        "listing_id": listings[i % listings.len()], "type": "view",
                        "at": format!("2026-11-30T{:02}:{:02}:{:02}Z", (n / 60) % 24, n % 60, i % 60),
                    })).collect();
                    let body = serde_json::json!({ "events": events }).to_string();
                    match post(&addr, "/api/v1/events", &key, &body) {
                        // A receipt cut short by the kill is no acknowledgement.
                        Some((202, receipt)) if receipt["accepted"].as_u64().is_none() => return,
                        Some((202, receipt)) => {
                            assert_eq!(receipt["accepted"].as_u64(), Some(BATCH as u64), "{receipt}");
                            acknowledged.lock().unwrap().extend(ids);
                        }
                        Some((status, body)) => panic!("{status}: {body}"),
                        None => return,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.0.kill().unwrap(); // SIGKILL: no shutdown, no flush.
    server.0.wait().unwrap();
    for c in clients {
        c.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 10 * BATCH,
        "the load ran: {} events",
        acknowledged.len()
    );

    // A restart recovers the log: every acknowledged event once; at most the batches in
    // flight at the kill more (written, their 202 never sent).
    let (_server, _) = start_server(&project);
    let stored = logged_event_ids(&project);
    let unique: std::collections::HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "no event twice");
    assert!(
        acknowledged.iter().all(|id| unique.contains(id)),
        "every acknowledged event stored"
    );
    assert!(stored.len() - acknowledged.len() <= CLIENTS * BATCH);
    drop(_server);

    // The next run folds the log in, once; a second run changes nothing.
    for _ in 0..2 {
        shopfuse(&project).arg("run").assert().success();
        let n = &sql(
            &project,
            "select count(*) as n from raw_events where _source = 'api_events_jd'",
        )[0]["n"];
        assert_eq!(n.as_u64(), Some(stored.len() as u64));
    }
}

#[test]
fn erase_removes_a_customer_offline_and_refuses_while_a_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    generate(&project, 13, 20, 100, 500);
    shopfuse(&project).arg("run").assert().success();
    let customer = sql(
        &project,
        "select customer_id from customers order by customer_id limit 1",
    )[0]["customer_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (server, _) = start_server(&project);
    let refused = shopfuse(&project)
        .args(["erase", "--customer", &customer])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("DELETE /api/v1/customers"));
    drop(server);
    let erased = shopfuse(&project)
        .args(["--json", "erase", "--customer", &customer])
        .output()
        .unwrap();
    assert!(
        erased.status.success(),
        "{}",
        String::from_utf8_lossy(&erased.stderr)
    );
    let report: Value = serde_json::from_slice(&erased.stdout).unwrap();
    assert_eq!(report["rows_removed"]["customers"].as_u64(), Some(1));
    let left = &sql(
        &project,
        &format!("select count(*) as n from customer_accounts where customer_id = '{customer}'"),
    )[0]["n"];
    assert_eq!(left.as_u64(), Some(0));
    let unknown = shopfuse(&project)
        .args(["erase", "--customer", "CU-none"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    // The next run keeps every row accounted for.
    shopfuse(&project).arg("run").assert().success();
}

/// One HTTP/1.1 GET; the status code and the body.
fn get(addr: &str, path: &str, key: Option<&str>) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn serve_answers_over_http_with_a_key_from_keys_create() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    generate(&project, 11, 20, 100, 500);
    shopfuse(&project).arg("run").assert().success();
    let created = shopfuse(&project)
        .args(["keys", "create", "--role", "viewer", "--name", "front"])
        .output()
        .unwrap();
    assert!(created.status.success());
    let key = String::from_utf8(created.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert!(key.starts_with("sfk_"));

    let (_server, ready) = start_server(&project);
    let addr = ready["addr"].as_str().unwrap().to_string();
    assert!(ready["products"].as_u64().unwrap() > 0);

    assert_eq!(get(&addr, "/api/v1/health", None).0, 200);
    assert_eq!(get(&addr, "/api/v1/products", None).0, 401);
    let (status, page) = get(&addr, "/api/v1/products?limit=3", Some(&key));
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let (status, body) = get(&addr, "/api/v1/customers/CU0", Some(&key));
    assert_eq!(status, 403, "a viewer key sees no customer: {body}");
    let (status, body) = get(&addr, "/api/v1/products?limit=many", Some(&key));
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("limit"));

    // A revoked key is refused by the running server within a poll.
    shopfuse(&project)
        .args(["keys", "revoke", "front"])
        .assert()
        .success();
    let refused = (0..40).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        get(&addr, "/api/v1/products", Some(&key)).0 == 401
    });
    assert!(refused, "the revoked key still works after 4 s");
}
