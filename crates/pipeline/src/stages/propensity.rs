use shopfuse_core::table::TableDef;
use shopfuse_core::{EntityKind, Progress, Project, Transaction};
use shopfuse_identity::customer_accounts;
use shopfuse_propensity::{propensity, propensity_platforms};

use crate::{PipelineError, Stage, StageContext, StageSummary};

/// Every platform's orders and events on unified customers → each customer's purchase,
/// churn and value scores as of the latest activity.
pub struct PropensityStage;

impl Stage for PropensityStage {
    fn name(&self) -> &'static str {
        "propensity"
    }
    fn about(&self) -> &'static str {
        "purchase propensity (30 days, anywhere and per platform), churn (90 days), BG/NBD + Gamma-Gamma value, drivers"
    }
    fn reads(&self) -> Vec<String> {
        vec![
            customer_accounts::NAME.to_string(),
            EntityKind::Orders.clean_table(),
            EntityKind::Events.clean_table(),
        ]
    }
    fn writes(&self) -> Vec<TableDef> {
        vec![propensity::TABLE, propensity_platforms::TABLE]
    }
    fn settings(&self, project: &Project) -> serde_json::Value {
        serde_json::json!({ "propensity": project.config.propensity })
    }
    fn run(
        &self,
        ctx: &StageContext<'_>,
        tx: &mut Transaction<'_>,
        _: &dyn Progress,
    ) -> Result<StageSummary, PipelineError> {
        let summary = shopfuse_propensity::run_propensity(tx, &ctx.project.config.propensity)?;
        Ok(StageSummary::Propensity(summary))
    }
}
