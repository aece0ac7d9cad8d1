//! Helpers shared by the end-to-end tests: run the built `shopfuse` on a project.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::Child;

use assert_cmd::Command;
use serde_json::Value;

/// `shopfuse -C project --quiet`, with the crash-injection switch cleared.
pub fn shopfuse(project: &Path) -> Command {
    let mut cmd = Command::cargo_bin("shopfuse").unwrap();
    cmd.arg("-C")
        .arg(project)
        .arg("--quiet")
        .env_remove("SHOPFUSE_CRASH_BEFORE_COMMIT");
    cmd
}

/// Runs `cmd --json`, asserts success and parses stdout.
pub fn json(cmd: &mut Command) -> Value {
    let out = cmd.arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `shopfuse sql QUERY --json` rows.
pub fn sql(project: &Path, query: &str) -> Vec<Value> {
    json(shopfuse(project).args(["sql", query]))
        .as_array()
        .unwrap()
        .clone()
}

/// `shopfuse generate` of a project with the given seed and sizes into `dir` (quiet).
pub fn generate(dir: &Path, seed: u64, products: usize, customers: usize, orders: usize) {
    Command::cargo_bin("shopfuse")
        .unwrap()
        .arg("--quiet")
        .arg("generate")
        .args(["--seed", &seed.to_string()])
        .args(["--products", &products.to_string()])
        .args(["--customers", &customers.to_string()])
        .args(["--orders", &orders.to_string()])
        .arg("--out")
        .arg(dir)
        .assert()
        .success();
}

/// Kills a child process when the test ends, passed or not.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port free at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `cp -a from to`.
pub fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

/// What a run produces that the comparison covers.
pub fn outcome(project: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for query in [
        "select * from golden_products order by golden_id",
        "select platform, listing_id, golden_id from product_clusters order by platform, listing_id",
        "select * from customers order by customer_id",
        "select platform, account_id, customer_id from customer_accounts order by platform, account_id",
        // The vectors agree to float rounding (the encoder's sums are blocked by the batch's
        // shape), so they are compared apart, to a tolerance.
        "select * except (vector) from search_documents order by golden_id",
    ] {
        out.push(serde_json::Value::Array(sql(project, query)));
    }
    out.push(json(shopfuse(project).args(["eval", "match"])));
    out.push(json(shopfuse(project).args(["eval", "identity"])));
    out
}

/// Puts `project`'s tables on the object store `url` names (`[store] url`).
pub fn store_tables_in(project: &Path, url: &str) {
    use std::io::Write;
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(project.join("shopfuse.toml"))
        .unwrap();
    writeln!(config, "\n[store]\nurl = \"{url}\"").unwrap();
}
