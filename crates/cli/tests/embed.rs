//! `shopfuse embed` end to end: vectors out, project cache filled once and reused.
mod common;
use common::{json, shopfuse};
use serde_json::Value;

#[test]
fn embed_writes_unit_vectors_and_a_rerun_comes_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    shopfuse(project).arg("init").assert().success();
    let input = project.join("titles.txt");
    std::fs::write(
        &input,
        "Apple iPhone 14 128GB 蓝色\nApple iPhone 14 128GB Blue\n\nＡｐｐｌｅ　iPhone 14 128GB Blue\n戴森 V15 无绳吸尘器\n",
    )
    .unwrap();
    let out = project.join("vectors.jsonl");
    let first = json(
        shopfuse(project)
            .args(["embed", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&out),
    );
    assert_eq!(first["texts"], 5);
    // The full-width line normalises to the same text as line 2: encoded once.
    assert_eq!(first["encoded"], 4, "{first}");

    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[2]["text"], "");
    let vec = |i: usize| -> Vec<f32> {
        lines[i]["vector"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect()
    };
    assert_eq!(vec(0).len(), 512);
    let norm: f32 = vec(0).iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    assert_eq!(vec(1), vec(3));
    let zh_en = shopfuse_core::cosine(&vec(0), &vec(1));
    let zh_other = shopfuse_core::cosine(&vec(0), &vec(4));
    assert!(zh_en > zh_other, "{zh_en} vs {zh_other}");

    let second = json(
        shopfuse(project)
            .args(["embed", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&out),
    );
    assert_eq!(second["encoded"], 0, "{second}");
    assert_eq!(second["from_cache"], 5);
    let cached = json(shopfuse(project).args([
        "sql",
        "select model, count(*) as n from embedding_cache group by model",
    ]));
    assert_eq!(cached[0]["n"], 4, "{cached}");

    // Parquet out, stdin in, no cache.
    let pq = project.join("v.parquet");
    shopfuse(project)
        .args(["embed", "--no-cache", "--output"])
        .arg(&pq)
        .write_stdin("one\ntwo\n")
        .assert()
        .success();
    assert!(pq.is_file());
}

#[test]
fn embed_names_the_missing_model_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = shopfuse(dir.path())
        .args(["embed", "--no-cache", "--model-dir"])
        .arg(dir.path().join("nowhere"))
        .write_stdin("x\n")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sp.model") && err.contains("fetch-models.sh"),
        "{err}"
    );
}
