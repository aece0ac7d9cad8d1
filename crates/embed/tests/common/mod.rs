//! Shared by the encoders' reference tests.

use ndarray::Array2;
use shopfuse_embed::{cosine, Encoder};

/// Encodes `texts` in one batch and one at a time (grouping into batches must not matter):
/// every vector has unit length and cosine ≥ 0.999 to its row of `reference`.
pub fn assert_matches_reference(encoder: &dyn Encoder, texts: &[&str], reference: &Array2<f32>) {
    assert_eq!(reference.nrows(), texts.len());
    let batched = encoder.encode(texts).unwrap();
    let mut worst = (f32::INFINITY, String::new());
    for (i, text) in texts.iter().enumerate() {
        let single = encoder.encode(&[text]).unwrap();
        for v in [batched.row(i), single.row(0)] {
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "{text:?}: norm {norm}");
            let c = cosine(v, reference.row(i).as_slice().unwrap());
            if c < worst.0 {
                worst = (c, text.to_string());
            }
        }
    }
    eprintln!(
        "lowest cosine to the reference: {} ({:?})",
        worst.0, worst.1
    );
    assert!(worst.0 >= 0.999, "cosine {} for {:?}", worst.0, worst.1);
}
