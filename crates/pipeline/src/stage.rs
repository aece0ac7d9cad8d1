//! The [`Stage`] contract.

use serde::Serialize;
use shopfuse_core::table::TableDef;
use shopfuse_core::{Progress, Project, Transaction};

use crate::{PipelineError, StageContext};

/// Tables a stage may read that no stage writes: people write them with a command.
pub const EXTERNAL_INPUTS: &[(&TableDef, &str)] = &[(
    &shopfuse_resolve::catalogue::review_labels::TABLE,
    "shopfuse review import",
)];

/// One step of the pipeline.
///
/// Contract:
/// - [`Stage::reads`] names every table whose content can change what the stage writes; the
///   runner fingerprints them and skips the stage when neither they nor
///   [`Stage::settings`] changed since it last ran. A table missing from the project counts
///   as absent, not as an error (a project without events has no `clean_events`).
/// - [`Stage::writes`] names every table the stage replaces or appends to, and only those.
/// - [`Stage::caches`] names tables the stage both reads and writes to save work (the
///   embedding cache); their content never changes a result, so they are not fingerprinted.
/// - [`Stage::run`] works inside the caller's transaction: nothing it writes is visible
///   until the whole run commits, and a failure leaves the project as it was.
pub trait Stage: Send + Sync {
    /// The name `--only`, `--from` and the manifest use.
    fn name(&self) -> &'static str;
    /// One line for `shopfuse stages`.
    fn about(&self) -> &'static str;
    fn reads(&self) -> Vec<String>;
    /// The declarations of the tables it writes.
    fn writes(&self) -> Vec<TableDef>;
    fn caches(&self) -> Vec<TableDef> {
        Vec::new()
    }
    /// The project settings that change this stage's result, as JSON: part of the fingerprint.
    fn settings(&self, project: &Project) -> serde_json::Value;
    /// The version of what the stage computes: raised by a change to its code that changes
    /// its output, so that the first run after an upgrade redoes it instead of skipping it.
    fn version(&self) -> u32 {
        1
    }
    /// True for a stage that decides for itself what is new (ingest compares file hashes):
    /// the runner always runs it.
    fn self_incremental(&self) -> bool {
        false
    }
    fn run(
        &self,
        ctx: &StageContext<'_>,
        tx: &mut Transaction<'_>,
        progress: &dyn Progress,
    ) -> Result<StageSummary, PipelineError>;
}

/// What a stage reports after it ran: each stage's own typed summary.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageSummary {
    Ingest(shopfuse_ingest::IngestSummary),
    Clean(shopfuse_clean::CleanSummary),
    Resolve(shopfuse_resolve::ResolveSummary),
    Identity(shopfuse_identity::IdentitySummary),
    Profiles(shopfuse_identity::ProfileSummary),
    Recs(shopfuse_learn::recs::RecsSummary),
    Propensity(shopfuse_propensity::PropensitySummary),
    Forecast(shopfuse_forecast::ForecastSummary),
    Search(shopfuse_search::SyncReport),
    Sentiment(shopfuse_sentiment::SentimentSummary),
    Risk(shopfuse_risk::RiskSummary),
}

/// A stage as `shopfuse stages` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct StageInfo {
    pub name: &'static str,
    pub about: &'static str,
    pub reads: Vec<String>,
    pub writes: Vec<String>,
    pub caches: Vec<String>,
}

impl StageInfo {
    pub fn of(stage: &dyn Stage) -> Self {
        Self {
            name: stage.name(),
            about: stage.about(),
            reads: stage.reads(),
            writes: names(stage.writes()),
            caches: names(stage.caches()),
        }
    }
}

fn names(tables: Vec<TableDef>) -> Vec<String> {
    tables.into_iter().map(|t| t.name.into_owned()).collect()
}
