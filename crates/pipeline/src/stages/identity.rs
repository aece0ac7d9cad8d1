use shopfuse_core::table::TableDef;
use shopfuse_core::{EntityKind, Progress, Project, Transaction};
use shopfuse_identity::{customer_accounts, identity_links, identity_parameters};

use crate::{PipelineError, Stage, StageContext, StageSummary};

/// Platform accounts (`clean_customers`, the phones and devices of `clean_orders`) → one
/// customer id per person.
pub struct IdentityStage;

impl Stage for IdentityStage {
    fn name(&self) -> &'static str {
        "identity"
    }
    fn about(&self) -> &'static str {
        "customer identity: shared keys, deterministic and Fellegi–Sunter links, constrained average linkage"
    }
    fn reads(&self) -> Vec<String> {
        vec![
            EntityKind::Customers.clean_table(),
            EntityKind::Orders.clean_table(),
        ]
    }
    fn writes(&self) -> Vec<TableDef> {
        vec![
            identity_links::TABLE,
            customer_accounts::TABLE,
            identity_parameters::TABLE,
        ]
    }
    fn settings(&self, project: &Project) -> serde_json::Value {
        serde_json::json!({ "identity": project.config.identity })
    }
    /// 2: a house is evidence weighted by its frequency unless it is a drop point (issue 30);
    /// 3: a burst of new accounts makes a device shared, and an account without address
    /// evidence is compared with its namesakes of its city however many there are.
    fn version(&self) -> u32 {
        3
    }
    fn run(
        &self,
        ctx: &StageContext<'_>,
        tx: &mut Transaction<'_>,
        progress: &dyn Progress,
    ) -> Result<StageSummary, PipelineError> {
        let summary =
            shopfuse_identity::resolve_customers(tx, &ctx.project.config.identity, progress)?;
        Ok(StageSummary::Identity(summary))
    }
}
