//! End-to-end: `shopfuse keys create` and `shopfuse serve` as a user runs them, called over
//! real HTTP on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command as Process, Stdio};

use serde_json::Value;

mod common;
use common::{generate, shopfuse};

/// Kills the server when the test ends, passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

    let mut child = Process::new(assert_cmd::cargo::cargo_bin("shopfuse"))
        .arg("-C")
        .arg(&project)
        .args(["--json", "serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let _server = Server(child);
    let ready: Value = serde_json::from_str(&first_line).unwrap();
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
