//! Learn: models and aggregates on the fused data.
//!
//! `privacy` releases aggregates of the unified customer table (built by `shopfuse-identity`)
//! with differential privacy for sharing outside the company; `recs` learns recommendations
//! from every platform's behaviour joined on customer and golden product.

pub mod privacy;
pub mod recs;

pub use privacy::{customer_report, DpReport, ReportGrouping};

/// What can stop training, evaluation or a report.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    /// Reading or writing a table failed; the source names the file.
    #[error(transparent)]
    Core(#[from] shopfuse_core::CoreError),
    /// A table the model needs is not there yet; `run` is the command that writes it.
    #[error("no {table} table yet: run `{run}` first")]
    Missing { table: String, run: &'static str },
    /// A setting, a ratings file row or an argument is out of range; the message names it
    /// and the fix.
    #[error("{0}")]
    Invalid(String),
}
