//! End-to-end: product resolution on a generated project, scored against the generator's
//! truth, and the review loop.

use std::path::Path;

mod common;
use common::{generate, json, shopfuse, sql};

fn generated_project(dir: &Path) {
    generate(dir, 11, 90, 100, 300);
    shopfuse(dir).arg("run").assert().success();
}

#[test]
fn resolve_clusters_match_the_truth_and_reviews_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    generated_project(project);

    let eval = json(shopfuse(project).args(["eval", "match"]));
    let f1 = eval["pairwise"]["f1"].as_f64().unwrap();
    assert!(f1 >= 0.95, "pairwise F1 {f1}: {eval}");
    assert!(
        eval["cross_language_recall"].as_f64().unwrap() >= 0.95,
        "{eval}"
    );
    assert!(eval["variants_apart"].as_f64().unwrap() >= 0.99, "{eval}");
    assert_eq!(eval["truth_listings_not_in_project"], 0, "{eval}");
    let blocking = &eval["blocking"];
    assert!(
        blocking["pair_completeness"].as_f64().unwrap() >= 0.95,
        "{blocking}"
    );
    assert!(
        blocking["reduction_ratio"].as_f64().unwrap() > 0.8,
        "{blocking}"
    );

    // Every listing is one offer of one golden product; every golden field value has a source.
    let count = |q: &str| sql(project, q)[0]["n"].as_i64().unwrap();
    let listings = count("select count(*) as n from clean_products");
    assert_eq!(count("select count(*) as n from offers"), listings);
    assert_eq!(
        count("select count(distinct golden_id) as n from product_clusters"),
        count("select count(*) as n from golden_products")
    );
    assert_eq!(
        count(
            "select count(*) as n from golden_provenance p left join offers o \
             on o.platform = p.platform and o.listing_id = p.listing_id where o.listing_id is null"
        ),
        0
    );
    assert!(count("select count(*) as n from golden_provenance where field = 'price_base' and rule = 'median'") > 0);
    assert!(count("select count(*) as n from resolve_aliases where field = 'color'") > 0);

    // Re-running gives the same golden products.
    let golden = |p: &Path| sql(p, "select * from golden_products order by golden_id");
    let before = golden(project);
    shopfuse(project).arg("resolve").assert().success();
    assert_eq!(golden(project), before);

    // Review loop: export the uncertain pairs, label two, import, re-resolve.
    let csv_path = project.join("review.csv");
    let exported = json(
        shopfuse(project)
            .args(["review", "export", "--limit", "5", "--out"])
            .arg(&csv_path),
    );
    assert_eq!(exported["pairs"], 5, "{exported}");
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    assert!(lines[0].ends_with(",label"), "{}", lines[0]);
    // First pair: "different"; second: "same"; the rest left empty.
    lines[1].push('0');
    lines[2].push('1');
    std::fs::write(&csv_path, lines.join("\n") + "\n").unwrap();
    let imported = json(shopfuse(project).args(["review", "import"]).arg(&csv_path));
    assert_eq!(
        (
            imported["labels"].as_i64(),
            imported["skipped_empty"].as_i64()
        ),
        (Some(2), Some(3))
    );
    shopfuse(project).arg("resolve").assert().success();
    let reviewed = sql(
        project,
        "select c.same_cluster, r.is_match from resolve_candidates c join review_labels r \
         on r.left_platform = c.left_platform and r.left_listing_id = c.left_listing_id \
         and r.right_platform = c.right_platform and r.right_listing_id = c.right_listing_id \
         where c.label_source = 'review'",
    );
    assert_eq!(reviewed.len(), 2, "{reviewed:?}");
    for r in &reviewed {
        // A reviewed non-match is never clustered; a reviewed match is, unless another
        // constraint (e.g. two listings of one platform) forbids it.
        if r["is_match"] == false {
            assert_eq!(r["same_cluster"], false, "{r}");
        }
    }

    // A label that is not a label: the error names the file, the line and the field.
    std::fs::write(
        &csv_path,
        text.lines()
            .take(2)
            .map(|l| format!("{l}maybe\n"))
            .collect::<String>()
            .replacen("labelmaybe", "label", 1),
    )
    .unwrap();
    let out = shopfuse(project)
        .args(["review", "import"])
        .arg(&csv_path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("review.csv: line 2, field label") && err.contains("\"maybe\""),
        "{err}"
    );
}

/// `[resolve.cross_encoder]` with the given extra lines, appended to the generated settings.
fn with_cross_encoder(project: &Path, base: &str, lines: &str) {
    let text = format!("{base}\n[resolve.cross_encoder]\n{lines}\n");
    std::fs::write(project.join("shopfuse.toml"), text).unwrap();
}

#[test]
fn the_cross_encoder_rereads_the_uncertain_pairs_and_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    generate(project, 11, 60, 20, 100);
    let base = std::fs::read_to_string(project.join("shopfuse.toml")).unwrap();
    // A wide band capped at 60 pairs, and a tiny training run: the mechanics, not accuracy.
    let training = "enabled = true\nmax_train_pairs = 40\nepochs = 1\nband_log_odds = 30.0";
    with_cross_encoder(project, &base, &format!("{training}\nmax_pairs = 60"));
    shopfuse(project)
        .args(["run", "--only", "ingest,clean"])
        .assert()
        .success();
    let reread = |p: &Path| {
        sql(
            p,
            "select count(*) as n from resolve_candidates where drivers like 'cross_encoder=%'",
        )[0]["n"]
            .as_u64()
            .unwrap()
    };

    let first = json(shopfuse(project).arg("resolve"))["resolve"]["cross_encoder"].clone();
    assert_eq!(first["origin"], "trained", "{first}");
    let trained_on = first["train_pairs"].as_u64().unwrap();
    assert!((1..=40).contains(&trained_on), "{first}");
    assert_eq!(
        (first["band_pairs"].as_u64(), first["band_capped"].as_bool()),
        (Some(60), Some(true))
    );
    let weight = first["weight"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&weight), "{first}");
    // The generated JD and Taobao titles are Chinese: the English base misses some of them.
    let unknown = first["unknown_token_share"].as_f64().unwrap();
    assert!(unknown > 0.0 && unknown < 1.0, "{first}");
    assert_eq!(reread(project), 60);
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(project.join(".shopfuse/models/cross-encoder/manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["data"][0][0], "project labelled candidate pairs",
        "{manifest}"
    );
    assert_eq!(manifest["report"]["train_pairs"].as_u64(), Some(trained_on));

    // Another band over the same labelled pairs: the project's cross-encoder is reused.
    with_cross_encoder(project, &base, &format!("{training}\nmax_pairs = 30"));
    let second = json(shopfuse(project).arg("resolve"))["resolve"]["cross_encoder"].clone();
    assert_eq!(second["origin"], "reused", "{second}");
    assert_eq!(
        (
            second["band_pairs"].as_u64(),
            second["train_pairs"].as_u64()
        ),
        (Some(30), Some(0))
    );
    assert_eq!(reread(project), 30);

    // A model that is not a cross-encoder is refused by name.
    with_cross_encoder(
        project,
        &base,
        &format!("{training}\nmodel = \"no-such-model\""),
    );
    let out = shopfuse(project).arg("resolve").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[resolve.cross_encoder]") && err.contains("no-such-model"),
        "{err}"
    );

    // Off: the trees alone decide, and nothing mentions the cross-encoder.
    std::fs::write(project.join("shopfuse.toml"), &base).unwrap();
    let off = json(shopfuse(project).arg("resolve"));
    assert!(off["resolve"]["cross_encoder"].is_null(), "{off}");
    assert_eq!(reread(project), 0);
}
