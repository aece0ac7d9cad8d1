//! Learn: models and aggregates on the fused data.
//!
//! `profile` builds the unified customer table (one row per person across platforms: RFM,
//! category interests, segment); `privacy` releases aggregates of it with differential
//! privacy for sharing outside the company; `recs` learns recommendations from every
//! platform's behaviour joined on customer and golden product.

pub mod privacy;
pub mod profile;
pub mod recs;

pub use privacy::{customer_report, DpReport, ReportGrouping};
pub use profile::{build_profiles, ProfileSummary, CUSTOMERS_TABLE};

#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error(transparent)]
    Core(#[from] shopfuse_core::CoreError),
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Invalid(String),
}
