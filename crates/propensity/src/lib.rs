//! Propensity on the fused customer: how likely each customer is to buy again, to churn, and
//! what they are worth over the next months.
//!
//! - `btyd`: the buy-till-you-die models — BG/NBD for purchase counts and activity,
//!   Gamma-Gamma for spend — fitted by maximum likelihood.
//! - `project_eval`: BG/NBD on a project's fused orders, on a temporal split, and what fusion
//!   adds over one platform's orders alone.
//! - `cdnow`: the CDNOW benchmark (Fader, Hardie & Lee 2005): its calibration summary and
//!   holdout purchases, to check the fits against the published parameters.
//!
//! - `classifier`: gradient-boosted trees on features as of a cut-off, one platform's view
//!   vs the fused customer's.
//!
//! What is not here yet (issue 26): calibration of the classifier, churn and CLV outputs, the
//! `propensity` stage and table, audiences, and the 1 M-customer bench.

pub mod btyd;
pub mod cdnow;
pub mod classifier;
pub mod project_eval;

pub use btyd::{BgNbd, GammaGamma, Rfm};

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
    /// A committed table cannot be read.
    #[error("reading the project's tables: {0}")]
    Table(String),
    /// A data file has a line that does not parse.
    #[error("{path}, line {line}: {message}")]
    Parse {
        path: std::path::PathBuf,
        line: usize,
        message: String,
    },
}
