//! End-to-end: recommendations on a generated project (trained by `shopfuse run`), scored
//! by `eval recs`, served by `recommend`; and a public-style ratings file.

use std::collections::HashSet;
use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

mod common;
use common::{generate, json, shopfuse, sql};

fn generated_project(dir: &Path) {
    generate(dir, 11, 200, 1200, 8000);
    shopfuse(dir).arg("run").assert().success();
}

fn ndcg(models: &[Value], name: &str) -> f64 {
    models
        .iter()
        .find(|m| m["model"] == name)
        .unwrap_or_else(|| panic!("no {name} in {models:?}"))["ndcg_10"]
        .as_f64()
        .unwrap()
}

#[test]
fn recommendations_beat_popularity_and_gain_from_other_platforms() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    generated_project(project);

    let eval = json(shopfuse(project).args(["eval", "recs"]));
    let models = eval["models"].as_array().unwrap();
    let popularity = ndcg(models, "popularity");
    for m in ["item-knn", "ease", "ials", "hybrid"] {
        assert!(
            ndcg(models, m) > popularity,
            "{m} NDCG@10 {} ≤ popularity {popularity}",
            ndcg(models, m)
        );
    }
    assert!(eval["test_users"].as_u64().unwrap() > 100, "{eval}");
    // Over the platforms' held-out buyers together, the hybrid trained on all platforms
    // beats the one trained on each platform alone (per platform the samples are small).
    let lift = eval["lift"].as_array().unwrap();
    assert!(lift.len() >= 3, "{eval}");
    let (mut all, mut single) = (0.0, 0.0);
    for p in lift {
        let users = p["users"].as_f64().unwrap();
        let hybrid = p["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["model"] == "hybrid")
            .unwrap();
        all += users * hybrid["ndcg_10_all"].as_f64().unwrap();
        single += users * hybrid["ndcg_10_single"].as_f64().unwrap();
    }
    assert!(
        all > single,
        "pooled NDCG@10 all {all} ≤ single {single}: {lift:?}"
    );

    // Stored top lists: every customer has one, without what they bought.
    let customers = sql(project, "select count(*) as n from customers")[0]["n"]
        .as_i64()
        .unwrap();
    let stored = sql(
        project,
        "select count(distinct customer_id) as n, max(rank) as k from recommendations",
    );
    assert_eq!(stored[0]["n"].as_i64().unwrap(), customers);
    let buyer = sql(
        project,
        "select customer_id, count(*) as items from interactions where purchases > 0 group by customer_id order by items desc, customer_id limit 1",
    )[0]["customer_id"]
        .as_str()
        .unwrap()
        .to_string();
    let recs = json(shopfuse(project).args(["recommend", "--customer", &buyer, "-k", "5"]));
    let recs = recs.as_array().unwrap();
    assert_eq!(recs.len(), 5);
    let bought: HashSet<String> = sql(
        project,
        &format!(
            "select golden_id from interactions where customer_id = '{buyer}' and purchases > 0"
        ),
    )
    .iter()
    .map(|r| r["golden_id"].as_str().unwrap().to_string())
    .collect();
    for (k, r) in recs.iter().enumerate() {
        assert_eq!(r["rank"].as_i64().unwrap(), k as i64 + 1);
        assert!(!bought.contains(r["golden_id"].as_str().unwrap()), "{r}");
        let reason = r["reason"].as_str().unwrap();
        assert!(
            ["bought", "viewed", "saved", "added to cart", "popular"]
                .iter()
                .any(|v| reason.starts_with(v)),
            "{reason}"
        );
    }
    // A history-based reason names a platform.
    assert!(recs.iter().any(|r| {
        let reason = r["reason"].as_str().unwrap();
        ["Taobao", "JD", "Amazon", "our shop"]
            .iter()
            .any(|p| reason.ends_with(p))
    }));

    // Training again on the same data gives the same lists.
    let before = sql(
        project,
        "select customer_id, rank, golden_id from recommendations order by customer_id, rank limit 500",
    );
    shopfuse(project).args(["train", "recs"]).assert().success();
    let after = sql(
        project,
        "select customer_id, rank, golden_id from recommendations order by customer_id, rank limit 500",
    );
    assert_eq!(before, after);

    // Unknown customers and oversized k are errors that say what to do.
    let out = shopfuse(project)
        .args(["recommend", "--customer", "CUnobody"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("customer ids look like"));
    let out = shopfuse(project)
        .args(["recommend", "--customer", &buyer, "-k", "1000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("store_k"));
}

#[test]
fn public_ratings_files_are_evaluated_with_leave_last_out() {
    let dir = tempfile::tempdir().unwrap();
    // Two taste groups of ten items, forty users, MovieLens `::` layout.
    let mut lines = Vec::new();
    for u in 0..40 {
        let base = if u % 2 == 0 { 0 } else { 10 };
        for (t, k) in (0..6).enumerate() {
            let item = base + (u * 3 + k * 7) % 10;
            lines.push(format!("{u}::{item}::{}::{}", 4 + (k % 2), 1000 + t));
        }
        lines.push(format!("{u}::99::1::2000"));
    }
    let file = dir.path().join("ratings.dat");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let eval = json(
        Command::cargo_bin("shopfuse")
            .unwrap()
            .current_dir(dir.path())
            .args(["--quiet", "eval", "recs", "--split", "last", "--ratings"])
            .arg(&file),
    );
    assert_eq!(eval["users"], 40);
    assert_eq!(
        eval["items"], 20,
        "the 1-star ratings are not positive feedback"
    );
    let models = eval["models"].as_array().unwrap();
    assert!(ndcg(models, "ease") > ndcg(models, "popularity"), "{eval}");
    assert!(eval["lift"].as_array().unwrap().is_empty());

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "u,i,5,1\nu,j,five,2\n").unwrap();
    let out = Command::cargo_bin("shopfuse")
        .unwrap()
        .current_dir(dir.path())
        .args(["eval", "recs", "--ratings"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2, field rating"));
}
