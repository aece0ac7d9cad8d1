use shopfuse_core::table::TableDef;
use shopfuse_core::{Progress, Project, Transaction};
use shopfuse_risk::tables::{risk_accounts, risk_listings, risk_orders, risk_reviews, risk_rings};

use crate::{PipelineError, Stage, StageContext, StageSummary};

/// Clean orders and reviews, the customers identity built, the offers and the sentiment
/// stage's rating–text mismatches → rings (dense blocks over shared devices, IPs and
/// addresses) and a score with reasons for every order, account, review and listing.
pub struct RiskStage;

impl Stage for RiskStage {
    fn name(&self) -> &'static str {
        "risk"
    }
    fn about(&self) -> &'static str {
        "fraud and risk: brushing rings as dense customer×key blocks (FRAUDAR), takeovers and fake reviews from behavioural evidence, scores with reasons"
    }
    fn reads(&self) -> Vec<String> {
        shopfuse_risk::tables::READS
            .iter()
            .map(|t| t.to_string())
            .collect()
    }
    fn writes(&self) -> Vec<TableDef> {
        vec![
            risk_orders::TABLE,
            risk_accounts::TABLE,
            risk_rings::TABLE,
            risk_reviews::TABLE,
            risk_listings::TABLE,
        ]
    }
    /// The settings and the labels file's content (new decisions refit the combiner).
    fn settings(&self, project: &Project) -> serde_json::Value {
        let config = &project.config.risk;
        let labels = config.labels.as_ref().map(|p| {
            let path = project.root.join(p);
            std::fs::read(&path).map_or_else(
                |_| "unreadable".to_string(),
                |bytes| {
                    use sha2::Digest;
                    hex::encode(sha2::Sha256::digest(&bytes))
                },
            )
        });
        serde_json::json!({ "risk": config, "labels_sha256": labels, "version": shopfuse_risk::tables::OUTPUT_VERSION })
    }
    fn run(
        &self,
        ctx: &StageContext<'_>,
        tx: &mut Transaction<'_>,
        _: &dyn Progress,
    ) -> Result<StageSummary, PipelineError> {
        let summary = shopfuse_risk::run_risk(tx, &ctx.project.config.risk, &ctx.project.root)?;
        Ok(StageSummary::Risk(summary))
    }
}
