//! `shopfuse bench search`: index build speed, and each search mode's queries/s and p50/p99
//! latency, next to a plain tantivy BM25 query and an exact vector scan on the same data.

use std::time::Instant;

use serde::Serialize;
use shopfuse_core::encoder::Embeddings;

use crate::dense::exact_nearest;
use crate::document::{LearnedAliases, ProductDocument};
use crate::index::SearchIndex;
use crate::query::{Mode, SearchRequest};
use crate::SearchError;

/// Latency figures of one way of answering the query set (one thread).
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub name: String,
    pub queries_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn latency(
    name: &str,
    mut run: impl FnMut(usize) -> Result<(), SearchError>,
    n: usize,
) -> Result<Latency, SearchError> {
    let mut times = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        run(i)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let total = start.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        times
            .get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    Ok(Latency {
        name: name.to_string(),
        queries_per_second: n as f64 / total.max(1e-9),
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
    })
}

/// The figures at one catalogue size.
#[derive(Debug, Clone, Serialize)]
pub struct SearchBench {
    pub products: usize,
    pub queries: usize,
    /// Lexical index and vector graph built from nothing.
    pub build_seconds: f64,
    pub build_docs_per_second: f64,
    /// Whether the dense side scanned exactly (small catalogues) or walked the HNSW graph.
    pub dense_exact: bool,
    /// Share of the exact scan's top 10 the dense side returned (1.0 when exact).
    pub dense_recall_at_10: f64,
    pub modes: Vec<Latency>,
    pub peers: Vec<Latency>,
}

/// Builds the index of `docs` and times `queries` (with their vectors) in every mode and
/// with both peers.
pub fn bench_search(
    docs: Vec<ProductDocument>,
    queries: &[String],
    query_vectors: &Embeddings,
) -> Result<SearchBench, SearchError> {
    let products = docs.len();
    let start = Instant::now();
    let index = SearchIndex::in_memory(docs, LearnedAliases::default())?;
    let build_seconds = start.elapsed().as_secs_f64();
    let n = queries.len();
    let mut modes = Vec::new();
    for mode in [Mode::Lexical, Mode::Dense, Mode::Hybrid] {
        let name = format!("{mode:?}").to_lowercase();
        modes.push(latency(
            &name,
            |i| {
                let mut r = SearchRequest::new(queries[i].clone());
                r.mode = mode;
                index.search(&r, Some(query_vectors.row(i))).map(|_| ())
            },
            n,
        )?);
    }
    let vectors = index.vectors();
    let peers = vec![
        latency(
            "plain tantivy BM25",
            |i| index.plain_bm25(&queries[i], 10).map(|_| ()),
            n,
        )?,
        latency(
            "exact vector scan",
            |i| {
                exact_nearest(vectors, query_vectors.row(i), 10, None);
                Ok(())
            },
            n,
        )?,
    ];
    let mut recall = 0.0;
    let sample = n.min(200);
    for (i, query) in queries.iter().enumerate().take(sample) {
        let mut r = SearchRequest::new(query.clone());
        r.mode = Mode::Dense;
        r.attributes = false;
        let got: Vec<String> = index
            .search(&r, Some(query_vectors.row(i)))?
            .hits
            .into_iter()
            .map(|h| h.golden_id)
            .collect();
        let exact = exact_nearest(vectors, query_vectors.row(i), 10, None);
        let hit = exact
            .iter()
            .filter(|(d, _)| got.contains(&index.documents()[*d].golden_id))
            .count();
        recall += hit as f64 / exact.len().max(1) as f64;
    }
    Ok(SearchBench {
        products,
        queries: n,
        build_seconds,
        build_docs_per_second: products as f64 / build_seconds.max(1e-9),
        dense_exact: index.dense_is_exact(),
        dense_recall_at_10: recall / sample.max(1) as f64,
        modes,
        peers,
    })
}
