//! The stages of the standard pipeline, one file each. Each declares what it reads and writes
//! and calls its crate's library function; none holds pipeline logic of its own.

mod clean;
mod forecast;
mod identity;
mod ingest;
mod profiles;
mod propensity;
mod recs;
mod resolve;
mod risk;
mod search;
mod sentiment;

pub use clean::CleanStage;
pub use forecast::ForecastStage;
pub use identity::IdentityStage;
pub use ingest::IngestStage;
pub use profiles::ProfilesStage;
pub use propensity::PropensityStage;
pub use recs::{project_log, RecsStage};
pub use resolve::ResolveStage;
pub use risk::RiskStage;
pub use search::SearchStage;
pub use sentiment::SentimentStage;

use shopfuse_core::EntityKind;

/// `raw_<kind>` or `clean_<kind>` of every entity kind.
fn per_kind<T>(table: fn(EntityKind) -> T) -> Vec<T> {
    EntityKind::ALL.into_iter().map(table).collect()
}
