use shopfuse_core::table::TableDef;
use shopfuse_core::{EntityKind, Progress, Project, Transaction};
use shopfuse_forecast::{
    forecast_backtests, forecasts, price_alerts, price_history, replenishment_table,
};
use shopfuse_resolve::catalogue::{golden_products, offers, product_clusters};

use crate::{PipelineError, Stage, StageContext, StageSummary};

/// Clean orders on golden products → a daily sales forecast per golden product × platform
/// and every roll-up, coherent, with bands and the backtests that chose each model; from
/// it, each product's replenishment plan; and from the prices orders paid, each product's
/// price per platform by week with undercut and sharp-move alerts.
pub struct ForecastStage;

impl Stage for ForecastStage {
    fn name(&self) -> &'static str {
        "forecast"
    }
    fn about(&self) -> &'static str {
        "daily units per golden product × platform and roll-ups (model chosen by backtest, reconciled, P10/P50/P90), replenishment, cross-platform prices and alerts"
    }
    fn reads(&self) -> Vec<String> {
        vec![
            EntityKind::Orders.clean_table(),
            product_clusters::NAME.to_string(),
            golden_products::NAME.to_string(),
            offers::NAME.to_string(),
        ]
    }
    fn writes(&self) -> Vec<TableDef> {
        vec![
            forecasts::TABLE,
            forecast_backtests::TABLE,
            replenishment_table::TABLE,
            price_history::TABLE,
            price_alerts::TABLE,
        ]
    }
    fn settings(&self, project: &Project) -> serde_json::Value {
        serde_json::json!({ "forecast": project.config.forecast })
    }
    fn run(
        &self,
        ctx: &StageContext<'_>,
        tx: &mut Transaction<'_>,
        _: &dyn Progress,
    ) -> Result<StageSummary, PipelineError> {
        let summary = shopfuse_forecast::run_forecast(tx, &ctx.project.config.forecast)?;
        Ok(StageSummary::Forecast(summary))
    }
}
