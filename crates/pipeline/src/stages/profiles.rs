use shopfuse_core::table::TableDef;
use shopfuse_core::{EntityKind, Progress, Project, Transaction};
use shopfuse_identity::{customer_accounts, customers};
use shopfuse_resolve::catalogue::{golden_products, product_clusters};

use crate::{PipelineError, Stage, StageContext, StageSummary};

/// Customers × every platform's orders and events → the unified `customers` table.
pub struct ProfilesStage;

impl Stage for ProfilesStage {
    fn name(&self) -> &'static str {
        "profiles"
    }
    fn about(&self) -> &'static str {
        "unified customer profiles: RFM across platforms, interests on golden categories, segments"
    }
    fn reads(&self) -> Vec<String> {
        vec![
            customer_accounts::NAME.to_string(),
            EntityKind::Orders.clean_table(),
            EntityKind::Events.clean_table(),
            EntityKind::Products.clean_table(),
            product_clusters::NAME.to_string(),
            golden_products::NAME.to_string(),
        ]
    }
    fn writes(&self) -> Vec<TableDef> {
        vec![customers::TABLE]
    }
    fn settings(&self, _: &Project) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn run(
        &self,
        _: &StageContext<'_>,
        tx: &mut Transaction<'_>,
        _: &dyn Progress,
    ) -> Result<StageSummary, PipelineError> {
        Ok(StageSummary::Profiles(shopfuse_identity::build_profiles(
            tx,
        )?))
    }
}
