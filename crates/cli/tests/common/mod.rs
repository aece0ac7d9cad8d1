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

/// Waits until something listens on `port`; fails with `log` after a minute.
pub fn wait_for_port(port: u16, what: &str, log: &Path) {
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "{what} did not listen on {port}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `shopfuse ARGS` in the background, its output in `log`; killed when dropped.
pub fn spawn(args: &[&str], log: &Path) -> Killed {
    let out = std::fs::File::create(log).unwrap();
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("shopfuse"))
        .args(args)
        .stdout(std::process::Stdio::from(out.try_clone().unwrap()))
        .stderr(std::process::Stdio::from(out))
        .spawn()
        .unwrap();
    Killed(child)
}

/// A scheduler and two one-slot executors; returns the scheduler's URL, the processes and
/// the executors' logs. The executors have no model directory (`--models` names none that
/// exists) and a model cache each, so they can encode only with the model the client
/// publishes on the project's object store.
pub fn start_cluster(work: &Path) -> (String, Vec<Killed>, Vec<std::path::PathBuf>) {
    let port = free_port();
    let scheduler_log = work.join("scheduler.log");
    let bind = format!("127.0.0.1:{port}");
    let mut running = vec![spawn(&["scheduler", "--bind", &bind], &scheduler_log)];
    wait_for_port(port, "the scheduler", &scheduler_log);
    let url = format!("df://127.0.0.1:{port}");
    let mut logs = Vec::new();
    for k in 0..2 {
        let (flight, grpc) = (free_port(), free_port());
        let dir = work.join(format!("executor-{k}"));
        std::fs::create_dir_all(&dir).unwrap();
        let log = work.join(format!("executor-{k}.log"));
        let cache = dir.join("model-cache");
        running.push(spawn(
            &[
                "executor",
                "--scheduler",
                &url,
                "--port",
                &flight.to_string(),
                "--grpc-port",
                &grpc.to_string(),
                "--concurrent-tasks",
                "1",
                "--work-dir",
                dir.to_str().unwrap(),
                "--heartbeat",
                "2",
                "--models",
                "/nonexistent/models/usem3",
                "--model-cache",
                cache.to_str().unwrap(),
            ],
            &log,
        ));
        wait_for_port(flight, "an executor", &log);
        logs.push(log);
    }
    (url, running, logs)
}

/// The stages of a run report that did work, ingest (which always looks for new files) aside.
pub fn stages_that_ran(report: &Value) -> Vec<&Value> {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["stage"] != "ingest" && s["status"] != "skipped")
        .collect()
}

/// `shopfuse run` on `project` that aborts right before its commit; asserts it failed.
pub fn run_crashing_before_commit(project: &Path) {
    let crashed = shopfuse(project)
        .arg("run")
        .env("SHOPFUSE_CRASH_BEFORE_COMMIT", "1")
        .output()
        .unwrap();
    assert!(!crashed.status.success());
}

/// Asserts that each executor loaded the encoder the client published on the object store at
/// `store_url`, from its own model cache.
pub fn assert_executors_fetched_the_published_model(logs: &[std::path::PathBuf], store_url: &str) {
    let published = format!("(published at {store_url}/.shopfuse/models/usem3-");
    for log in logs {
        let text = std::fs::read_to_string(log).unwrap();
        let loaded = text
            .lines()
            .find(|l| l.contains("encoder loaded from"))
            .unwrap_or_else(|| panic!("{}: no encoder loaded: {text}", log.display()));
        assert!(loaded.contains(&published), "{}: {loaded}", log.display());
        let cache = log.with_extension("").join("model-cache");
        assert!(
            loaded.contains(cache.to_str().unwrap()),
            "{}: {loaded}",
            log.display()
        );
    }
}
