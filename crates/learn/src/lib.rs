//! Learn: models and aggregates on the fused data.
//!
//! `profile` builds the unified customer table (one row per person across platforms: RFM,
//! category interests, segment); `privacy` releases aggregates of it with differential
//! privacy for sharing outside the company.

pub mod privacy;
pub mod profile;

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
