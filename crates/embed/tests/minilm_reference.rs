//! The Rust MiniLM encoder (candle's BERT) against an independent numpy forward pass of the
//! same weights (fixture made by scripts/make-minilm-fixture.py): cosine ≥ 0.999 on every
//! sentence of the USEm3 fixture (English, Chinese, mixed, emoji, empty, very long).

mod common;

use std::path::Path;
use std::sync::OnceLock;

use ndarray::Array2;
use shopfuse_embed::{cosine, Encoder, MiniLm};

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

fn model() -> &'static MiniLm {
    static MODEL: OnceLock<MiniLm> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = shopfuse_embed::minilm::find_dir(&[]).unwrap_or_else(|e| panic!("{e}"));
        MiniLm::load(&dir).unwrap_or_else(|e| panic!("{e}"))
    })
}

#[test]
fn vectors_match_the_numpy_reference() {
    let text = std::fs::read_to_string(fixtures().join("usem3_sentences.json")).unwrap();
    let sentences: Vec<String> = serde_json::from_str(&text).unwrap();
    let reference: Array2<f32> =
        ndarray_npy::read_npy(fixtures().join("minilm_reference.npy")).unwrap();
    assert_eq!(reference.nrows(), sentences.len());
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    assert_eq!(model().dim(), 384);
    common::assert_matches_reference(model(), &texts, &reference);
}

#[test]
fn same_product_is_nearest_and_the_cache_key_is_safe() {
    let m = model();
    let query = "Apple iPhone 14 128GB Blue";
    let others = [
        "apple iphone 14 (128 gb) - blue",
        "Samsung Galaxy S23 256GB Black",
        "Sony WH-1000XM5 wireless headphones",
        "Adobe Photoshop Elements 2023 for Mac",
    ];
    let mut texts = vec![query];
    texts.extend(others);
    let v = m.encode(&texts).unwrap();
    let sims: Vec<f32> = (1..texts.len())
        .map(|i| cosine(v.row(0), v.row(i)))
        .collect();
    assert!(sims[1..].iter().all(|&s| s < sims[0]), "{sims:?}");
    // Texts with one normal form (the embedding-cache key) get one vector.
    let a = "  APPLE iPhone\t14 ";
    let b = "apple iphone 14";
    assert_eq!(m.normalise(a), m.normalise(b));
    let v = m.encode(&[a, b]).unwrap();
    assert!(cosine(v.row(0), v.row(1)) > 0.9999);
}
