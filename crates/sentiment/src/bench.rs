//! `shopfuse bench sentiment`: training time and inference speed of the default model (NB-SVM
//! stacked with the encoder head) and of the n-gram model alone on ChnSentiCorp, and in the
//! same run SnowNLP — the usual Python library for Chinese sentiment — on the same test set:
//! its accuracy and speed side by side with ours.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use shopfuse_core::Encoder;

use crate::corpus::{PublicCorpus, PublicSet};
use crate::model::{ModelSettings, SentimentModel, TrainingText};
use crate::SentimentError;

/// One model's figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchModel {
    pub model: String,
    pub train_seconds: Option<f64>,
    pub test_accuracy: f64,
    /// Texts classified per second over the timed set (the test texts repeated).
    pub texts_per_second: f64,
    pub timed_texts: usize,
}

/// What the bench prints.
#[derive(Debug, Clone, Serialize)]
pub struct SentimentBench {
    pub data: String,
    pub train_rows: usize,
    pub test_rows: usize,
    pub mean_test_chars: f64,
    pub threads: usize,
    pub models: Vec<BenchModel>,
    /// Why the peer did not run, when it did not.
    pub peer_note: Option<String>,
}

/// The SnowNLP side: reads the texts as JSON lines on stdin, prints `{"p": [...],
/// "seconds": S}` with the time of classification alone (its model loaded first).
const SNOWNLP_SCRIPT: &str = r#"
import json, sys, time
from snownlp import SnowNLP
texts = [json.loads(l) for l in sys.stdin if l.strip()]
SnowNLP("预热").sentiments
t = time.perf_counter()
p = [SnowNLP(x).sentiments for x in texts]
print(json.dumps({"p": p, "seconds": time.perf_counter() - t}))
"#;

#[derive(Deserialize)]
struct PeerOutput {
    p: Vec<f64>,
    seconds: f64,
}

/// Runs the bench on ChnSentiCorp in `dir`; `timed_texts` texts are classified for the speed
/// figures; the peer runs when `snownlp_python` is given.
pub fn bench_sentiment(
    dir: &Path,
    encoder: Option<&dyn Encoder>,
    snownlp_python: Option<&PathBuf>,
    timed_texts: usize,
) -> Result<SentimentBench, SentimentError> {
    let corpus = PublicCorpus::read(dir)?;
    if corpus.set != PublicSet::ChnSentiCorp {
        return Err(SentimentError::Data {
            path: dir.to_path_buf(),
            row: None,
            message: "the bench needs ChnSentiCorp (train.tsv, dev.tsv, test.tsv)".into(),
        });
    }
    let to_training = |rows: &[crate::corpus::LabelledText]| -> Vec<TrainingText> {
        rows.iter()
            .map(crate::corpus::LabelledText::training)
            .collect()
    };
    let (train, dev) = (to_training(&corpus.train), to_training(&corpus.dev));
    let test: Vec<&str> = corpus.test.iter().map(|t| t.text.as_str()).collect();
    let truth: Vec<bool> = corpus.test.iter().map(|t| t.positive).collect();
    let timed: Vec<&str> = test
        .iter()
        .copied()
        .cycle()
        .take(timed_texts.max(test.len()))
        .collect();
    let mut models = Vec::new();
    let mut variants = vec![("nbsvm", None)];
    if let Some(e) = encoder {
        variants.push(("nbsvm + encoder head (default)", Some(e)));
    }
    for (name, encoder) in variants {
        let settings = ModelSettings {
            head: encoder.and(ModelSettings::default().head),
            ..Default::default()
        };
        let started = Instant::now();
        let model = SentimentModel::train(&train, Some(&dev), encoder, &settings)?;
        let train_seconds = started.elapsed().as_secs_f64();
        let p = model.predict(&test, encoder)?;
        let right = p
            .iter()
            .zip(&truth)
            .filter(|(p, &y)| (p.p_positive >= 0.5) == y)
            .count();
        let started = Instant::now();
        model.predict(&timed, encoder)?;
        let seconds = started.elapsed().as_secs_f64();
        models.push(BenchModel {
            model: name.to_string(),
            train_seconds: Some(train_seconds),
            test_accuracy: right as f64 / truth.len() as f64,
            texts_per_second: timed.len() as f64 / seconds.max(1e-9),
            timed_texts: timed.len(),
        });
    }
    let mut peer_note = None;
    match snownlp_python {
        Some(python) => match run_snownlp(python, &test) {
            Ok(out) => {
                let right = out
                    .p
                    .iter()
                    .zip(&truth)
                    .filter(|(p, &y)| (**p >= 0.5) == y)
                    .count();
                models.push(BenchModel {
                    model: "SnowNLP 0.12.3 (its bundled shopping-review model)".into(),
                    train_seconds: None,
                    test_accuracy: right as f64 / truth.len() as f64,
                    texts_per_second: test.len() as f64 / out.seconds.max(1e-9),
                    timed_texts: test.len(),
                });
            }
            Err(e) => peer_note = Some(e),
        },
        None => peer_note = Some("no --snownlp-python given: the peer was not run".into()),
    }
    Ok(SentimentBench {
        data: dir.display().to_string(),
        train_rows: train.len(),
        test_rows: test.len(),
        mean_test_chars: test.iter().map(|t| t.chars().count()).sum::<usize>() as f64
            / test.len().max(1) as f64,
        threads: rayon::current_num_threads(),
        models,
        peer_note,
    })
}

fn run_snownlp(python: &Path, texts: &[&str]) -> Result<PeerOutput, String> {
    use std::io::Write;
    let mut child = Command::new(python)
        .args(["-c", SNOWNLP_SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
    let mut input = String::new();
    for t in texts {
        input.push_str(&serde_json::to_string(t).unwrap_or_default());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    // Written from a thread: the peer's output could fill its pipe before it reads all input.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| format!("SnowNLP failed: {e}"))?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(format!(
            "SnowNLP failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("SnowNLP's output: {e}"))
}
