//! End-to-end: the pipeline with its bulk encoding on a Ballista cluster — a scheduler and two
//! executors started as separate `shopfuse` processes on localhost — and its tables on an
//! object store (`[store] url`, object_store's local backend) gives the same golden products,
//! customers and evaluation figures as the run in one process with the tables in the project.

use std::path::Path;
use std::time::{Duration, Instant};

mod common;
use common::{
    assert_executors_fetched_the_published_model, copy_dir, free_port, generate, json, outcome,
    run_crashing_before_commit, shopfuse, sql, stages_that_ran, start_cluster, store_tables_in,
    Killed,
};

/// Every product's search vector, by golden id.
fn search_vectors(project: &Path) -> Vec<(String, Vec<f64>)> {
    sql(
        project,
        "select golden_id, vector from search_documents order by golden_id",
    )
    .iter()
    .map(|row| {
        // `shopfuse sql` prints a vector as its text, "[0.1, -0.2, …]".
        let text = row["vector"].as_str().unwrap();
        let inner = text.trim_start_matches('[').trim_end_matches(']');
        let values = inner
            .split(", ")
            .map(|x| x.parse::<f64>().unwrap())
            .collect();
        (row["golden_id"].as_str().unwrap().to_string(), values)
    })
    .collect()
}

fn assert_vectors_agree(a: &Path, b: &Path) {
    let (a, b) = (search_vectors(a), search_vectors(b));
    assert_eq!(a.len(), b.len());
    for ((ga, va), (gb, vb)) in a.iter().zip(&b) {
        assert_eq!(ga, gb);
        let worst = va
            .iter()
            .zip(vb)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-5, "{ga}: vectors differ by {worst}");
    }
}

/// The committed version of the store at `root` (a project directory or a bucket).
fn manifest_version(root: &Path) -> u64 {
    let text = std::fs::read_to_string(root.join(".shopfuse").join("manifest.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["version"]
        .as_u64()
        .unwrap()
}

/// Kills `victim` as soon as a plan's staging table appears in the store at `root`: the
/// executor is lost while the cluster holds the stage's encoding work.
fn kill_during_a_plan(root: &Path, victim: &mut Killed) {
    let staging = root.join(".shopfuse").join("cluster");
    let started = Instant::now();
    loop {
        let busy = std::fs::read_dir(&staging).is_ok_and(|mut d| d.next().is_some());
        if busy {
            victim.0.kill().unwrap();
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no plan started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_pipeline_on_a_ballista_cluster_gives_the_local_result() {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local");
    generate(&local, 17, 60, 80, 200);
    // One generated project copied, so every run shares the pseudonymisation secret.
    let on_cluster = dir.path().join("cluster");
    let executor_lost = dir.path().join("executor-lost");
    copy_dir(&local, &on_cluster);
    copy_dir(&local, &executor_lost);
    let (bucket, lost_bucket) = (dir.path().join("bucket/a"), dir.path().join("bucket/b"));
    store_tables_in(&on_cluster, &format!("file://{}", bucket.display()));
    store_tables_in(&executor_lost, &format!("file://{}", lost_bucket.display()));

    let (url, mut running, executor_logs) = start_cluster(dir.path());
    shopfuse(&local).arg("run").assert().success();
    let expected = outcome(&local);
    let report = json(shopfuse(&on_cluster).args(["run", "--cluster", &url]));
    assert!(report["stages"].as_array().unwrap().len() >= 10, "{report}");
    assert_eq!(report["cluster"], url.as_str());

    // The encoding ran in the executors: each fetched the model the client published beside
    // the tables and loaded it to run its tasks.
    let bucket_url = format!("file://{}", bucket.display());
    assert_executors_fetched_the_published_model(&executor_logs, &bucket_url);
    // The plans staged their texts beside the tables, in the object store, and removed them.
    assert!(!on_cluster.join(".shopfuse/cluster").exists());
    let staging = bucket.join(".shopfuse").join("cluster");
    let left = std::fs::read_dir(&staging).map_or(0, |d| d.count());
    assert_eq!(left, 0, "{}", staging.display());
    assert_eq!(outcome(&on_cluster), expected);
    assert_vectors_agree(&on_cluster, &local);
    // The tables went to the object store, none to the project.
    assert!(!on_cluster.join("tables").exists());
    assert!(bucket.join("tables/golden_products").is_dir());
    assert_eq!(manifest_version(&bucket), manifest_version(&local));

    // An executor killed while the cluster holds a stage's work: Ballista runs its tasks on
    // the other one, the run commits once, and the result is the same.
    let mut run = shopfuse(&executor_lost);
    let run = std::thread::scope(|s| {
        let handle = s.spawn(|| run.args(["run", "--cluster", &url]).output().unwrap());
        kill_during_a_plan(&lost_bucket, &mut running[1]);
        handle.join().unwrap()
    });
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(manifest_version(&lost_bucket), manifest_version(&local));
    assert_eq!(outcome(&executor_lost), expected);
    assert_vectors_agree(&executor_lost, &local);
    // A re-run on the surviving executor has nothing to do.
    let rerun = json(shopfuse(&executor_lost).args(["run", "--cluster", &url]));
    let ran = stages_that_ran(&rerun);
    assert!(ran.is_empty(), "{rerun}");
}

#[test]
fn a_cluster_that_is_not_there_is_named_and_the_run_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("p");
    generate(&project, 5, 30, 30, 100);
    let bucket = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    store_tables_in(&project, &format!("file://{}", bucket.display()));
    let url = format!("df://127.0.0.1:{}", free_port());
    let out = shopfuse(&project)
        .args(["run", "--cluster", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&url[5..]), "{stderr}");
    // Nothing was committed: the project has no golden products.
    let tables = json(shopfuse(&project).arg("tables"));
    assert!(!tables.to_string().contains("golden_products"), "{tables}");

    let bad = shopfuse(&project)
        .args(["run", "--cluster", "http://x:1"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("df://HOST:PORT"));

    // A run that dies before its commit leaves its lease on the object store and nothing
    // else visible; the next run takes the dead run's lease over and commits.
    run_crashing_before_commit(&project);
    assert!(bucket.join(".shopfuse/lock").exists());
    let tables = json(shopfuse(&project).arg("tables"));
    assert!(!tables.to_string().contains("golden_products"), "{tables}");
    let run = json(shopfuse(&project).arg("run"));
    assert_eq!(run["balanced"], true, "{run}");
    assert!(!bucket.join(".shopfuse/lock").exists(), "released");
    let tables = json(shopfuse(&project).arg("tables"));
    assert!(tables["golden_products"].as_u64().unwrap() > 0, "{tables}");
}
