use shopfuse_clean::clean_removed;
use shopfuse_clean::quality::{quality_fields, quality_sources};
use shopfuse_core::table::TableDef;
use shopfuse_core::{EntityKind, Progress, Project, Transaction};
use shopfuse_ingest::{ingest_files, quarantine};

use super::per_kind;
use crate::{PipelineError, Stage, StageContext, StageSummary};

/// `raw_<kind>` → `clean_<kind>`, the removed duplicates and the quality report.
pub struct CleanStage;

impl Stage for CleanStage {
    fn name(&self) -> &'static str {
        "clean"
    }
    fn about(&self) -> &'static str {
        "normalise text, currency and units, fill missing values, remove duplicates, flag outliers, report quality"
    }
    fn reads(&self) -> Vec<String> {
        let mut tables = per_kind(EntityKind::raw_table);
        tables.extend([quarantine::NAME.into(), ingest_files::NAME.into()]);
        tables
    }
    fn writes(&self) -> Vec<TableDef> {
        let mut tables = per_kind(shopfuse_clean::clean_table_def);
        tables.extend([
            clean_removed::TABLE,
            quality_sources::TABLE,
            quality_fields::TABLE,
        ]);
        tables
    }
    fn settings(&self, project: &Project) -> serde_json::Value {
        let c = &project.config;
        serde_json::json!({
            "clean": c.clean,
            "base_currency": c.project.base_currency,
            "currency": c.currency,
            "sources": c.sources.iter().map(|s| s.fingerprint()).collect::<Vec<_>>(),
        })
    }
    fn run(
        &self,
        ctx: &StageContext<'_>,
        tx: &mut Transaction<'_>,
        progress: &dyn Progress,
    ) -> Result<StageSummary, PipelineError> {
        Ok(StageSummary::Clean(shopfuse_clean::clean(
            ctx.project,
            tx,
            progress,
        )?))
    }
}
