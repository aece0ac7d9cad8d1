//! The shopfuse pipeline as a library: what `shopfuse run` does, callable from the CLI, a
//! server, tests and benches alike.
//!
//! Vocabulary:
//! - A **stage** ([`Stage`]) is one step of the pipeline. It declares the tables it reads and
//!   the tables it writes, and runs inside the caller's [`Transaction`] so that a whole run
//!   commits at once or not at all.
//! - The **pipeline** ([`Pipeline`]) is the ordered list of stages: ingest → clean → resolve →
//!   identity → profiles → recs → propensity. A stage reads only what ingest or an earlier stage writes
//!   (a unit test checks the declarations), plus the few [`EXTERNAL_INPUTS`] people write by
//!   hand (reviewed match labels).
//! - A stage's **fingerprint** hashes its settings and the *content* of every table it
//!   reads (the table store records a SHA-256 per file as it writes it). A run skips a stage
//!   whose fingerprint equals the one recorded when it last ran, so a re-run of an unchanged
//!   project does no stage work, and a changed source re-runs only what depends on it. A
//!   stage that rewrites a table with the same rows leaves the fingerprints after it
//!   unchanged, so the skip propagates.
//!
//! Design decisions: stages are trait objects rather than an enum so that the next stages
//! (search, forecasting, risk) plug in without touching the runner; the runner, not the
//! stages, owns skipping, so no stage can forget it; ingest is the one stage that decides for
//! itself what is new (it compares each source file's bytes with what it ingested before).
//!
//! [`Transaction`]: shopfuse_core::Transaction

pub mod audience;
pub mod bench;
mod context;
mod csv_columns;
mod embed;
pub mod erase;
mod error;
mod pipeline;
pub mod review;
mod stage;
pub mod stages;

pub use context::{minilm_dir, minilm_encoder, project_encoder, usem3_encoder, StageContext};
pub use csv_columns::{read_csv_columns, CsvRow};
pub use embed::embed_texts;
pub use erase::{erase_customer, ErasedIds, ErasureReport};
pub use error::PipelineError;
pub use pipeline::{Pipeline, RunOptions, RunReport, Selection, StageOutcome, StageStatus};
pub use stage::{Stage, StageInfo, StageSummary, EXTERNAL_INPUTS};

/// The current time as the manifest records it.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
