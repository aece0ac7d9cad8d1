//! End-to-end runs of the `shopfuse` binary on a small generated project.

use std::collections::BTreeSet;
use std::path::Path;

use assert_cmd::Command;

mod common;
use common::{json, run_crashing_before_commit, shopfuse, sql};
use serde_json::Value;

fn generate(dir: &Path) -> Value {
    json(
        Command::cargo_bin("shopfuse")
            .unwrap()
            .args([
                "generate",
                "--seed",
                "7",
                "--products",
                "40",
                "--customers",
                "150",
                "--orders",
                "1200",
                "--out",
            ])
            .arg(dir),
    )
}

#[test]
fn generate_run_query_rerun_crash_and_resume() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    let generated = generate(project);
    let malformed = generated["malformed"].as_u64().unwrap();
    assert!(
        malformed >= 10,
        "the generator plants malformed rows: {generated}"
    );

    // First run: every source balances, and the quarantine holds exactly the planted rows.
    let run = json(shopfuse(project).arg("run"));
    assert_eq!(run["balanced"], true);
    let sources = run["ingest"]["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 20);
    for s in sources {
        let (read, acc, quar) = (
            s["rows_read"].as_u64().unwrap(),
            s["rows_accepted"].as_u64().unwrap(),
            s["rows_quarantined"].as_u64().unwrap(),
        );
        assert_eq!(read, acc + quar, "{}", s["source"]);
        assert!(read > 0, "{} read nothing", s["source"]);
    }
    let n = sql(project, "select count(*) as n from quarantine")[0]["n"]
        .as_u64()
        .unwrap();
    assert_eq!(n, malformed);
    let quarantined: BTreeSet<(String, u64, String)> =
        sql(project, "select file, row, reason from quarantine")
            .iter()
            .map(|r| {
                (
                    r["file"].as_str().unwrap().to_string(),
                    r["row"].as_u64().unwrap(),
                    r["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect();
    let truth: BTreeSet<(String, u64, String)> =
        csv::Reader::from_path(project.join("truth/malformed.csv"))
            .unwrap()
            .records()
            .map(|r| {
                let r = r.unwrap();
                (r[0].to_string(), r[1].parse().unwrap(), r[2].to_string())
            })
            .collect();
    assert_eq!(quarantined, truth, "quarantine must hold exactly the planted rows, at their file and row, with the planted reason");
    assert!(sql(project, "select message from quarantine")
        .iter()
        .all(|r| !r["message"].as_str().unwrap().is_empty()));

    // The GBK file's Chinese reads back exactly as written.
    let bytes = std::fs::read(project.join("data/taobao/products.csv")).unwrap();
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the Taobao export is GBK, not UTF-8"
    );
    let (text, _, bad) = encoding_rs::GBK.decode(&bytes);
    assert!(!bad);
    let written: BTreeSet<String> = csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap()[1].to_string())
        .collect();
    let read: BTreeSet<String> = sql(
        project,
        "select title from raw_products where _source = 'taobao_products'",
    )
    .iter()
    .map(|r| r["title"].as_str().unwrap().to_string())
    .collect();
    assert_eq!(read, written);
    assert!(read
        .iter()
        .any(|t| t.contains('苹') || t.contains('华') || t.contains('小')));

    // Prices end up in the base currency, and the duplicate export is removed with a record.
    let usd = sql(project, "select price, price_base from clean_products where _source = 'amazon_products' and price is not null limit 1");
    let (p, b) = (
        usd[0]["price"].as_f64().unwrap(),
        usd[0]["price_base"].as_f64().unwrap(),
    );
    assert!((b - p * 7.2).abs() < 0.01, "{p} USD -> {b} CNY");
    let removed = sql(project, "select count(*) as n from clean_removed where reason in ('exact_duplicate', 'same_key') and source = 'taobao_orders'");
    assert!(removed[0]["n"].as_u64().unwrap() > 0);

    // Every table the run wrote is declared, and stored as declared.
    let store = shopfuse_core::TableStore::at(project);
    let dictionary = shopfuse_pipeline::Pipeline::standard().dictionary();
    for table in store.manifest().unwrap().tables.keys() {
        let (_, declared) = dictionary
            .iter()
            .find(|(_, d)| d.name == *table)
            .unwrap_or_else(|| panic!("the run wrote {table}, which no stage declares"));
        let (schema, _) = store.read_table(table).unwrap().unwrap();
        declared.check(&schema).unwrap();
    }

    // Re-running changes no table.
    let before = json(shopfuse(project).arg("tables"));
    let rerun = json(shopfuse(project).arg("run"));
    assert!(rerun["ingest"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["files_ingested"] == 0));
    assert_eq!(json(shopfuse(project).arg("tables")), before);
    assert_eq!(
        statuses(&rerun),
        [
            ("ingest", "ran"),
            ("clean", "skipped"),
            ("resolve", "skipped"),
            ("identity", "skipped"),
            ("profiles", "skipped"),
            ("recs", "skipped"),
            ("propensity", "skipped"),
            ("forecast", "skipped"),
            ("search", "skipped"),
            ("sentiment", "skipped"),
            ("risk", "skipped")
        ],
        "an unchanged project does no stage work"
    );

    // A new file in a glob, then a crash before commit: the committed state stays as it was.
    let raw = std::fs::read(project.join("data/taobao/orders-2025.csv")).unwrap();
    let (text, _, _) = encoding_rs::GBK.decode(&raw);
    let mut lines = text.lines();
    let mut new_file = format!("{}\n", lines.next().unwrap());
    for (i, line) in lines.take(3).enumerate() {
        let (_, rest) = line.split_once(',').unwrap();
        new_file.push_str(&format!("NEW{i},{rest}\n"));
    }
    std::fs::write(project.join("data/taobao/orders-2026.csv"), new_file).unwrap();
    run_crashing_before_commit(project);
    assert_eq!(
        json(shopfuse(project).arg("tables")),
        before,
        "a crashed run must leave the last commit intact"
    );

    // The next run picks up only the new file.
    let resumed = json(shopfuse(project).arg("run"));
    let taobao = resumed["ingest"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "taobao_orders")
        .unwrap()
        .clone();
    assert_eq!(
        (
            taobao["files_ingested"].as_u64(),
            taobao["rows_read"].as_u64()
        ),
        (Some(1), Some(3))
    );
    let after = json(shopfuse(project).arg("tables"));
    assert_eq!(
        after["raw_orders"].as_u64().unwrap(),
        before["raw_orders"].as_u64().unwrap() + 3
    );
    assert_eq!(after["quarantine"], before["quarantine"]);
    // Only what depends on the orders ran again: clean rewrote clean_products with the same
    // rows, so product resolution was skipped.
    assert_eq!(
        statuses(&resumed),
        [
            ("ingest", "ran"),
            ("clean", "ran"),
            ("resolve", "skipped"),
            ("identity", "ran"),
            ("profiles", "ran"),
            ("recs", "ran"),
            ("propensity", "ran"),
            ("forecast", "ran"),
            ("search", "skipped"),
            ("sentiment", "skipped"),
            ("risk", "ran")
        ]
    );
    // The incremental result is the full run's result, table by table, byte for byte.
    let incremental = table_contents(project);
    let forced = json(shopfuse(project).args(["run", "--force"]));
    assert!(statuses(&forced).iter().all(|(_, s)| *s == "ran"));
    assert_eq!(table_contents(project), incremental);
    let stages = json(shopfuse(project).arg("stages"));
    assert_eq!(stages.as_array().unwrap().len(), 11);
    let only = json(shopfuse(project).args(["run", "--only", "profiles,identity"]));
    assert_eq!(
        statuses(&only),
        [("identity", "skipped"), ("profiles", "skipped")]
    );
    let unknown = shopfuse(project)
        .args(["run", "--from", "fuse"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no stage named \"fuse\""));

    // The tables folder deleted behind shopfuse's back: a clear error naming the way back,
    // and `run --rebuild` gives every table its rows again.
    let counts = json(shopfuse(project).arg("tables"));
    std::fs::remove_dir_all(project.join("tables")).unwrap();
    let damaged = shopfuse(project).arg("run").output().unwrap();
    assert!(!damaged.status.success());
    let stderr = String::from_utf8_lossy(&damaged.stderr);
    assert!(
        stderr.contains("are missing") && stderr.contains("shopfuse run --rebuild"),
        "{stderr}"
    );
    let rebuilt = json(shopfuse(project).args(["run", "--rebuild"]));
    assert!(statuses(&rebuilt).iter().all(|(_, s)| *s == "ran"));
    assert!(!rebuilt["forgotten"].as_array().unwrap().is_empty());
    assert_eq!(json(shopfuse(project).arg("tables")), counts);

    // The quality report, as JSON and as text.
    let quality = json(shopfuse(project).args(["report", "quality"]));
    let q_sources = quality["sources"].as_array().unwrap();
    assert_eq!(q_sources.len(), 20);
    let q_total: u64 = q_sources
        .iter()
        .map(|s| s["rows_quarantined"].as_u64().unwrap())
        .sum();
    assert_eq!(q_total, malformed);
    let text = shopfuse(project)
        .args(["report", "quality"])
        .output()
        .unwrap();
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("source taobao_orders (taobao orders)") && !text.contains("UNBALANCED"));
}

/// (stage, status) of each stage of a run's JSON report.
fn statuses(run: &Value) -> Vec<(&str, &str)> {
    run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stage"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect()
}

/// Each table's file content hashes, from the committed manifest (the embedding cache, a
/// cache, left out).
fn table_contents(project: &Path) -> Vec<(String, Vec<String>)> {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(project.join(".shopfuse/manifest.json")).unwrap())
            .unwrap();
    manifest["tables"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(table, _)| *table != "embedding_cache")
        .map(|(table, files)| {
            let hashes = files
                .as_array()
                .unwrap()
                .iter()
                .map(|f| manifest["file_sha256"][f.as_str().unwrap()].to_string())
                .collect();
            (table.clone(), hashes)
        })
        .collect()
}

#[test]
fn quality_report_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    shopfuse(dir.path()).arg("run").assert().success();
    let out = shopfuse(dir.path())
        .args(["report", "quality"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // Only the order sources: enough to pin the layout and the figures without a huge file.
    let orders: String = text
        .split("source ")
        .filter(|block| block.contains(" orders)"))
        .map(|block| format!("source {block}"))
        .collect();
    insta::assert_snapshot!(orders);
}

#[test]
fn errors_name_the_problem_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = shopfuse(dir.path()).arg("run").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shopfuse.toml") && err.contains("shopfuse init"),
        "{err}"
    );

    shopfuse(dir.path()).arg("init").assert().success();
    let out = shopfuse(dir.path())
        .args(["sql", "select * from no_such_table"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_table"));

    std::fs::write(
        dir.path().join("shopfuse.toml"),
        "[[sources]]\nname = \"x\"\nplatform = \"p\"\nkind = \"carts\"\npath = \"a.csv\"\n",
    )
    .unwrap();
    let out = shopfuse(dir.path()).arg("run").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shopfuse.toml") && err.contains("carts"),
        "{err}"
    );
}

#[test]
fn every_subcommand_has_help() {
    for sub in [
        &["init"][..],
        &["generate"],
        &["run"],
        &["ingest"],
        &["clean"],
        &["report", "quality"],
        &["sql"],
        &["tables"],
        &["bench", "ingest"],
        &["bench", "resolve"],
        &["resolve"],
        &["review", "export"],
        &["review", "import"],
        &["eval", "match"],
        &["eval", "identity"],
        &["identity"],
        &["report", "customers"],
        &["propensity"],
        &["audience"],
        &["eval", "propensity"],
        &["bench", "propensity"],
        &["forecast"],
        &["eval", "forecast"],
        &["bench", "forecast"],
        &["replenish"],
        &["prices"],
        &["eval", "prices"],
        &["search"],
        &["ask"],
        &["eval", "search"],
        &["eval", "ask"],
        &["bench", "search"],
        &["sentiment"],
        &["eval", "sentiment"],
        &["bench", "sentiment"],
        &["risk"],
        &["eval", "risk"],
        &["bench", "risk"],
    ] {
        Command::cargo_bin("shopfuse")
            .unwrap()
            .args(sub)
            .arg("--help")
            .assert()
            .success();
    }
}

#[test]
fn readme_config_examples_are_valid() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 2, "the project example and the [store] one");
    let configs: Vec<shopfuse_core::ProjectConfig> = blocks
        .iter()
        .map(|block| shopfuse_core::ProjectConfig::parse(block, Path::new("README.md")).unwrap())
        .collect();
    let full = configs.iter().find(|c| !c.sources.is_empty()).unwrap();
    assert_eq!(full.sources[0].preset.as_deref(), Some("taobao"));
    let on_s3 = |c: &&shopfuse_core::ProjectConfig| {
        c.store
            .url
            .as_deref()
            .is_some_and(|u| u.starts_with("s3://"))
    };
    assert_eq!(configs.iter().filter(on_s3).count(), 2, "both show [store]");
}

#[test]
fn ingest_bench_compares_on_the_same_files() {
    let report = json(
        Command::cargo_bin("shopfuse")
            .unwrap()
            .args(["bench", "ingest", "--orders", "600"]),
    );
    let compared = report["files_compared"].as_array().unwrap();
    assert!(compared.len() >= 5, "{report}");
    // The GBK export is among the files the peer cannot read; shopfuse reads it.
    let failed: Vec<&str> = report["peer_failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[0].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"data/taobao/products.csv"), "{failed:?}");
    assert!(report["rows"].as_u64().unwrap() > 0);
    assert!(report["full_ingest_rows"].as_u64().unwrap() > report["rows"].as_u64().unwrap());
    assert!(report["time_ratio"].as_f64().unwrap() > 0.0);
}
