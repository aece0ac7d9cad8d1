//! `shopfuse eval pairs` and `eval blocking` end to end on small synthetic pair files.

use std::fmt::Write as _;
use std::path::Path;

mod common;
use common::{json, shopfuse};

const BRANDS: [&str; 6] = ["Sony", "Canon", "Nikon", "Apple", "Dell", "Lenovo"];
const KINDS: [&str; 5] = ["camera", "laptop", "monitor", "phone", "tablet"];

/// Product `i`: a title on the "left" platform, a reworded one on the "right" platform.
fn titles(i: usize) -> (String, String) {
    let (brand, kind) = (BRANDS[i % BRANDS.len()], KINDS[i % KINDS.len()]);
    let code = format!("X{}{}", i * 7 + 100, ["A", "B", "C"][i % 3]);
    (
        format!("{brand} {kind} {code} {}GB", 16 << (i % 4)),
        format!(
            "{code} {} {kind} {}gb new",
            brand.to_lowercase(),
            16 << (i % 4)
        ),
    )
}

fn record(title: &str, price: f64) -> String {
    format!("COL title VAL {title} COL price VAL {price:.2}")
}

/// Pairs of products `range`: each product with its own reworded twin (a match) and with
/// the next product's twin (a non-match).
fn write_split(path: &Path, range: std::ops::Range<usize>) {
    let mut text = String::new();
    for i in range {
        let (l, r) = titles(i);
        let (_, other) = titles(i + 1);
        let price = 100.0 + i as f64 * 13.0;
        writeln!(
            text,
            "{}\t{}\t1",
            record(&l, price),
            record(&r, price * 1.05)
        )
        .unwrap();
        writeln!(
            text,
            "{}\t{}\t0",
            record(&l, price),
            record(&other, price + 13.0)
        )
        .unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// Train (products 0–59), valid (60–89) and test (90–119) files in `d`.
fn write_splits(d: &Path) {
    write_split(&d.join("train.txt"), 0..60);
    write_split(&d.join("valid.txt"), 60..90);
    write_split(&d.join("test.txt"), 90..120);
}

/// `--train`, `--valid` and `--test` naming the files [`write_splits`] wrote.
fn split_args(cmd: &mut assert_cmd::Command, d: &Path) {
    for split in ["train", "valid", "test"] {
        cmd.arg(format!("--{split}"))
            .arg(d.join(format!("{split}.txt")));
    }
}

#[test]
fn eval_pairs_and_blocking_report_standard_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_splits(d);
    let files = |cmd: &mut assert_cmd::Command| split_args(cmd, d);
    // `eval pairs --trees 50` on the three files with `options`, its JSON report.
    let eval_pairs = |options: &[&str]| {
        let mut cmd = shopfuse(d);
        cmd.args(["eval", "pairs", "--trees", "50"]).args(options);
        files(&mut cmd);
        json(&mut cmd)
    };

    let errors = d.join("errors.jsonl");
    let report = eval_pairs(&["--errors", errors.to_str().unwrap()]);
    let written = std::fs::read_to_string(&errors).unwrap();
    let listed = report["valid_errors"].as_array().unwrap();
    assert_eq!(written.lines().count(), listed.len());
    for e in listed {
        assert!(!e["drivers"].as_array().unwrap().is_empty(), "{e}");
    }
    assert_eq!(report["test_pairs"], 60);
    assert_eq!(report["candidates"], "all_files");
    let f1 = report["test"]["f1"].as_f64().unwrap();
    assert!(f1 > 0.9, "test F1 {f1} on an easy synthetic task: {report}");

    // Margins within each file only: same features, another candidate context.
    let each_file = eval_pairs(&["--candidate-scope", "each-file"]);
    assert_eq!(each_file["candidates"], "each_file");
    assert_eq!(each_file["features"], report["features"]);
    let f1 = each_file["test"]["f1"].as_f64().unwrap();
    assert!(f1 > 0.9, "test F1 {f1} with margins per file: {each_file}");

    // With the English MiniLM encoder as a second one: its two cosines and its learned model
    // join the features.
    let with_second = eval_pairs(&["--second-encoder", "minilm"]);
    assert_eq!(
        with_second["encoders"].as_array().unwrap().len(),
        2,
        "{with_second}"
    );
    assert_eq!(
        with_second["features"].as_u64().unwrap(),
        report["features"].as_u64().unwrap() + 3
    );
    let f1 = with_second["test"]["f1"].as_f64().unwrap();
    assert!(
        f1 > 0.9,
        "test F1 {f1} with the second encoder: {with_second}"
    );

    // Without labels: pseudo-labels from mutual best candidates.
    let report = eval_pairs(&["--self-supervised"]);
    assert_eq!(report["supervision"], "self_supervised");
    let f1 = report["test"]["f1"].as_f64().unwrap();
    assert!(f1 > 0.8, "self-supervised test F1 {f1}: {report}");

    let mut cmd = shopfuse(d);
    cmd.args(["eval", "blocking"]);
    files(&mut cmd);
    let q = json(&mut cmd);
    assert_eq!(q["true_matches"], 120);
    assert_eq!(q["left_records"], 120);
    let pc = q["pair_completeness"].as_f64().unwrap();
    let rr = q["reduction_ratio"].as_f64().unwrap();
    assert!(pc > 0.99, "pair completeness {pc}: {q}");
    assert!(rr > 0.5, "reduction ratio {rr}: {q}");
}

#[test]
fn eval_pairs_names_the_bad_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_split(&d.join("train.txt"), 0..10);
    std::fs::write(
        d.join("valid.txt"),
        "COL title VAL a\tCOL title VAL b\tmaybe\n",
    )
    .unwrap();
    write_split(&d.join("test.txt"), 10..20);
    let out = shopfuse(d)
        .args(["eval", "pairs", "--train"])
        .arg(d.join("train.txt"))
        .arg("--valid")
        .arg(d.join("valid.txt"))
        .arg("--test")
        .arg(d.join("test.txt"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("valid.txt") && err.contains('1'), "{err}");
}

/// `train cross-encoder` (with augmented copies) writes an artefact whose manifest names its
/// data by checksum, and `eval pairs --cross-encoder` scores it alone and stacked with the
/// trees; a tampered weights file is refused by name.
#[test]
fn a_cross_encoder_is_fine_tuned_saved_and_stacked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_splits(d);
    let out = d.join("cross");
    let mut cmd = shopfuse(d);
    cmd.args([
        "train",
        "cross-encoder",
        "--epochs",
        "3",
        "--tuned-layers",
        "2",
    ])
    .args([
        "--max-tokens",
        "48",
        "--batch",
        "8",
        "--learning-rate",
        "3e-4",
        "--augment",
        "1",
    ])
    .arg("--train")
    .arg(d.join("train.txt"))
    .arg("--valid")
    .arg(d.join("valid.txt"))
    .arg("--out")
    .arg(&out);
    let manifest = json(&mut cmd);
    assert_eq!(manifest["base_model"], "all-minilm-l6-v2");
    // The two files by checksum, and how the training set was augmented.
    let data = manifest["data"].as_array().unwrap();
    assert_eq!(data.len(), 3, "{manifest}");
    assert_eq!(data[2][0], "augmentation");
    // 120 pairs and one altered copy of each.
    assert_eq!(manifest["report"]["train_pairs"], 240);
    let valid_f1 = manifest["report"]["best_valid_f1"].as_f64().unwrap();
    // Predicting every pair a match scores 66.7 on these balanced pairs.
    assert!(valid_f1 > 80.0, "validation F1 {valid_f1}: {manifest}");
    assert!(out.join("cross_encoder.safetensors").is_file());

    let eval = |cross: &Path| {
        let mut cmd = shopfuse(d);
        cmd.args(["eval", "pairs", "--trees", "50", "--cross-encoder"])
            .arg(cross);
        split_args(&mut cmd, d);
        cmd
    };
    let report = json(&mut eval(&out));
    let cross = &report["cross_encoder"];
    let alone = cross["alone_test"]["f1"].as_f64().unwrap();
    assert!(
        alone > 0.8,
        "cross-encoder alone, test F1 {alone}: {report}"
    );
    let stacked = cross["stacked_test"]["f1"].as_f64().unwrap();
    assert!(stacked > 0.9, "stacked test F1 {stacked}: {report}");
    let weight = cross["weight"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&weight));
    // Bands of the pairs the trees are least sure of, growing with their target share.
    let bands = cross["bands"].as_array().unwrap();
    assert_eq!(bands.len(), 4, "{cross}");
    let shares: Vec<f64> = bands
        .iter()
        .map(|b| b["valid_share"].as_f64().unwrap())
        .collect();
    assert!(shares.windows(2).all(|w| w[0] <= w[1]), "{shares:?}");
    assert!(shares.iter().all(|&s| s > 0.0 && s <= 1.0), "{shares:?}");

    let weights = out.join("cross_encoder.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&weights, bytes).unwrap();
    let failed = eval(&out).output().unwrap();
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains("cross_encoder.safetensors") && err.contains("checksum"),
        "{err}"
    );
}
