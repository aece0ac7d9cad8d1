//! Ingest throughput next to DataFusion reading the same files.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use shopfuse_core::{NoProgress, Project, TableStore};
use shopfuse_generate::GenerateOptions;

use super::bench_error;
use crate::PipelineError;

#[derive(Debug, Clone, Serialize)]
pub struct IngestBench {
    pub rows_generated: u64,
    /// Files both shopfuse and the peer could read: the comparison runs on these.
    pub files_compared: Vec<String>,
    /// Files the peer could not read at all (a malformed row stops its CSV/JSON readers).
    pub peer_failed: Vec<(String, String)>,
    pub rows: u64,
    pub bytes: u64,
    pub shopfuse_seconds: f64,
    pub shopfuse_rows_per_second: f64,
    pub peer_seconds: f64,
    pub peer_rows_per_second: f64,
    /// shopfuse time / peer time on the same files.
    pub time_ratio: f64,
    pub full_ingest_rows: u64,
    pub full_ingest_seconds: f64,
    pub full_ingest_rows_per_second: f64,
}

/// What the peer read of the project's files.
struct PeerRun {
    compared: Vec<String>,
    failed: Vec<(String, String)>,
    /// Sources all of whose files the peer could read.
    kept_sources: Vec<String>,
    seconds: f64,
    rows: u64,
    bytes: u64,
}

/// Generates a data set, then times (1) DataFusion reading each file, (2) shopfuse ingesting
/// exactly the files the peer could read, (3) shopfuse ingesting everything, GBK and
/// malformed files included. Nothing is committed.
pub fn bench_ingest(orders: usize, seed: u64) -> Result<IngestBench, PipelineError> {
    let dir = tempfile::tempdir().map_err(bench_error("cannot make a temporary directory"))?;
    let options = GenerateOptions {
        seed,
        products: (orders / 100).max(300),
        customers: (orders / 6).max(100),
        orders,
    };
    eprintln!("generating {orders} orders into {} …", dir.path().display());
    let generated =
        shopfuse_generate::generate(dir.path(), &options).map_err(|e| PipelineError::Bench {
            what: "cannot generate the data set".into(),
            source: Some(Box::new(e)),
        })?;
    let rows_generated: u64 = generated.files.values().map(|n| *n as u64).sum();
    let full = Project::open(dir.path())?;
    let peer = peer_read(&full)?;

    let mut subset = Project::open(dir.path())?;
    subset
        .config
        .sources
        .retain(|s| peer.kept_sources.contains(&s.name));
    let store = TableStore::open(&subset)?;
    let started = Instant::now();
    let mut tx = store.begin()?;
    let ours = shopfuse_ingest::ingest(&subset, &mut tx, &NoProgress)?;
    drop(tx); // not committed: the full run below starts from the same empty state
    let shopfuse_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut tx = store.begin()?;
    let all = shopfuse_ingest::ingest(&full, &mut tx, &NoProgress)?;
    drop(tx);
    let full_seconds = started.elapsed().as_secs_f64();

    if peer.rows != ours.rows_read() {
        return Err(PipelineError::Bench {
            what: format!(
                "the peer read {} rows but shopfuse read {} from the same files",
                peer.rows,
                ours.rows_read()
            ),
            source: None,
        });
    }
    Ok(IngestBench {
        rows_generated,
        files_compared: peer.compared,
        peer_failed: peer.failed,
        rows: ours.rows_read(),
        bytes: peer.bytes,
        shopfuse_seconds,
        shopfuse_rows_per_second: ours.rows_read() as f64 / shopfuse_seconds,
        peer_seconds: peer.seconds,
        peer_rows_per_second: peer.rows as f64 / peer.seconds,
        time_ratio: shopfuse_seconds / peer.seconds,
        full_ingest_rows: all.rows_read(),
        full_ingest_seconds: full_seconds,
        full_ingest_rows_per_second: all.rows_read() as f64 / full_seconds,
    })
}

/// DataFusion's plain read of every source's files; a source counts only when the peer can
/// read all of its files.
fn peer_read(project: &Project) -> Result<PeerRun, PipelineError> {
    let peer = shopfuse_query::PeerReader::new().map_err(|e| PipelineError::Bench {
        what: "cannot start DataFusion".into(),
        source: Some(Box::new(e)),
    })?;
    let relative = |f: &Path| {
        f.strip_prefix(&project.root)
            .unwrap_or(f)
            .display()
            .to_string()
    };
    let mut run = PeerRun {
        compared: Vec::new(),
        failed: Vec::new(),
        kept_sources: Vec::new(),
        seconds: 0.0,
        rows: 0,
        bytes: 0,
    };
    for source in &project.config.sources {
        let files = shopfuse_ingest::matching_files(&project.root, source)?;
        let results: Vec<_> = files
            .iter()
            .map(|f| {
                let started = Instant::now();
                let outcome = peer.read(f);
                (f, outcome, started.elapsed().as_secs_f64())
            })
            .collect();
        if results.iter().all(|(_, r, _)| r.is_ok()) {
            for (f, r, secs) in results {
                run.seconds += secs;
                run.rows += r.unwrap_or(0);
                run.bytes += std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
                run.compared.push(relative(f));
            }
            run.kept_sources.push(source.name.clone());
            continue;
        }
        for (f, r, _) in results {
            if let Err(e) = r {
                let message = e
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                run.failed
                    .push((relative(f), message.chars().take(200).collect()));
            }
        }
    }
    Ok(run)
}
