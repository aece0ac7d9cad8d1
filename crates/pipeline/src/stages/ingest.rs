use shopfuse_core::schema::raw_table_def;
use shopfuse_core::table::TableDef;
use shopfuse_core::{Progress, Project, Transaction};
use shopfuse_ingest::{ingest_files, quarantine};

use super::per_kind;
use crate::{PipelineError, Stage, StageContext, StageSummary};

/// Source files → `raw_<kind>` and `quarantine`; only new and changed files are read.
pub struct IngestStage;

impl Stage for IngestStage {
    fn name(&self) -> &'static str {
        "ingest"
    }
    fn about(&self) -> &'static str {
        "read new and changed source files, map them onto the canonical schema, pseudonymise personal data, quarantine bad rows"
    }
    fn reads(&self) -> Vec<String> {
        Vec::new()
    }
    fn writes(&self) -> Vec<TableDef> {
        let mut tables = per_kind(raw_table_def);
        tables.extend([quarantine::TABLE, ingest_files::TABLE]);
        tables
    }
    fn settings(&self, project: &Project) -> serde_json::Value {
        serde_json::json!({ "sources": project.config.sources.iter().map(|s| s.fingerprint()).collect::<Vec<_>>() })
    }
    fn self_incremental(&self) -> bool {
        true
    }
    fn run(
        &self,
        ctx: &StageContext<'_>,
        tx: &mut Transaction<'_>,
        progress: &dyn Progress,
    ) -> Result<StageSummary, PipelineError> {
        Ok(StageSummary::Ingest(shopfuse_ingest::ingest(
            ctx.project,
            tx,
            progress,
        )?))
    }
}
