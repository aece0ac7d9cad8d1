//! Propensity on the fused customer: how likely each customer is to buy in the next month
//! (anywhere, and on each platform), to lapse over the next quarter, and what they are worth
//! over it — the `propensity` stage, its evaluation and its benchmark.
//!
//! Vocabulary:
//! - **cut-off**: the instant the scores are as of. Features see only activity before it;
//!   outcomes are what happens in the horizon after it. The stage's cut-off is the latest
//!   activity in the data; the evaluation's is 90 days earlier, so the outcomes are known.
//! - **view**: whose activity a feature row counts — the fused customer (every platform) or
//!   one platform alone ([`features::View`]). The same model fed the two views measures what
//!   fusion adds ("browses on Taobao, buys on JD" is invisible to JD alone).
//!
//! Modules, in the order data flows:
//! - `activity`: the fused orders and events of a project, by customer number.
//! - `features`: a customer's feature row as of a cut-off, per view.
//! - `btyd`: the buy-till-you-die models — BG/NBD for purchase counts and activity,
//!   Gamma-Gamma for spend — fitted by maximum likelihood.
//! - `classifier` (with `calibration`): gradient-boosted trees trained on earlier cut-offs,
//!   isotonic-calibrated on held-out customers, with per-customer drivers.
//! - `model`: every model of one cut-off and the scores they give each customer.
//! - `tables`: the `propensity` and `propensity_platforms` tables and the stage's run.
//! - `project_eval`: the temporal evaluation on a project (fused vs one platform, BG/NBD vs
//!   the classifier); `cdnow`: the CDNOW benchmark against the published parameters and the
//!   `lifetimes` package; `bench`: fit and scoring throughput at a million customers.
//! - `metrics`: ROC-AUC, PR-AUC, Brier score and the lift chart.

pub mod activity;
pub mod bench;
pub mod btyd;
pub mod calibration;
pub mod cdnow;
pub mod classifier;
pub mod features;
pub mod metrics;
pub mod model;
pub mod project_eval;
pub mod tables;

pub use activity::Activity;
pub use btyd::{BgNbd, GammaGamma, Rfm};
pub use tables::{propensity, propensity_platforms, run_propensity, PropensitySummary};

/// What can stop a fit or an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum PropensityError {
    /// There is nothing to fit on.
    #[error("{0}")]
    NoData(&'static str),
    /// The optimiser failed.
    #[error("the maximum-likelihood fit failed: {0}")]
    Fit(String),
    /// A data file cannot be read.
    #[error("{path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The peer (the `lifetimes` package) could not be run or answered something unexpected.
    #[error("lifetimes peer: {0}")]
    Peer(String),
    /// A project table cannot be read or written.
    #[error("the project's tables: {0}")]
    Table(#[from] shopfuse_core::CoreError),
    /// A data file has a line that does not parse.
    #[error("{path}, line {line}: {message}")]
    Parse {
        path: std::path::PathBuf,
        line: usize,
        message: String,
    },
}
