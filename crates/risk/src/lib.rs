//! Fraud and risk across platforms: brushing rings (刷单), fake reviews and account takeovers,
//! each score with its reasons.
//!
//! Vocabulary:
//! - **Entity**: what a score is about — the unified customer in the fused view (so the
//!   history an order is judged against spans every platform the person uses), or the
//!   platform account in a single-platform view ([`order_book`]).
//! - **Key**: a device, IP or pseudonymised address an order was placed with. A key shared by
//!   several entities links them; a **ring** is a dense block of entities × keys and
//!   listings ([`rings`], found by FRAUDAR's camouflage-resistant peeling, [`fraudar`]).
//! - **Evidence**: oriented features per order and per review ([`evidence`]); its
//!   **surprise** is `-ln` of its empirical tail; a score is the sum of surprises, or a
//!   logistic regression over them when the project has labels ([`tail_score`]).
//!
//! Design decisions: ring search runs inside components of shared keys, not on the whole
//! account × listing graph, so its cost follows the suspicious part of the data (a
//! brushing ring must share devices or addresses to be cheap to run; rings that share
//! nothing but listings are left to the behavioural evidence — bursts of new accounts on one
//! listing, repeat purchases). Scores are unsupervised by default because a new project has
//! no labels; a project that records review decisions or chargebacks gets a learned combiner
//! over the same evidence, and the reasons stay the same sentences either way.

pub mod assessment;
pub mod bench;
pub mod eval;
pub mod evidence;
pub mod fraudar;
pub mod metrics;
pub mod order_book;
pub mod peers;
pub mod report;
pub mod rings;
pub mod tables;
pub mod tail_score;
pub mod yelp;

pub use assessment::{assess, Assessment};
pub use order_book::OrderBook;
pub use tables::{run_risk, RiskSummary};

use std::path::PathBuf;

/// What can stop the risk stage, its evaluation or its bench.
#[derive(Debug, thiserror::Error)]
pub enum RiskError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A labels, truth or data file is malformed; names the file and row.
    #[error("{path}{}: {message}", row.map(|r| format!(", row {r}")).unwrap_or_default())]
    Data {
        path: PathBuf,
        row: Option<usize>,
        message: String,
    },
    /// The project has no risk tables yet.
    #[error("{path}: no {table} table: run `shopfuse run` first")]
    NotRun { path: PathBuf, table: &'static str },
    /// An id asked for does not exist.
    #[error("no {what} {id:?}; `shopfuse risk --top 20` lists them")]
    Unknown { what: &'static str, id: String },
    /// The learned combiner could not be fitted.
    #[error("risk model: {0}")]
    Training(String),
    /// A peer (PyOD, UGFraud) failed.
    #[error("peer {peer}: {message}")]
    Peer { peer: &'static str, message: String },
    /// A table could not be read or written.
    #[error(transparent)]
    Core(#[from] shopfuse_core::CoreError),
}

impl RiskError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RiskError::Io {
            path: path.into(),
            source,
        }
    }
}
