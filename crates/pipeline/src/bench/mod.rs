//! Benches that run pipeline stages on generated data and measure them against a peer or
//! across sizes. They return typed reports; the CLI prints them.

pub mod embed;
mod identity;
mod ingest;
mod resolve;
mod search;

pub use identity::{bench_identity, IdentityBenchRow, SplinkPeer, SplinkRow};
pub use ingest::{bench_ingest, IngestBench};
pub use resolve::{bench_resolve, growth_exponents, ResolveBenchRow};
pub use search::bench_search_sizes;

use crate::PipelineError;

pub(crate) fn bench_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PipelineError {
    let what = what.into();
    move |e| PipelineError::Bench {
        what,
        source: Some(Box::new(e)),
    }
}

/// Worker threads available to rayon (what the figures were measured with).
pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
