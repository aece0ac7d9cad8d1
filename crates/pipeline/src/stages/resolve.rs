use shopfuse_core::table::TableDef;
use shopfuse_core::{Encoder, EntityKind, Progress, Project, Transaction};
use shopfuse_embed::cache::embedding_cache;
use shopfuse_resolve::catalogue::{
    golden_products, golden_provenance, offers, product_clusters, resolve_aliases,
    resolve_candidates, review_labels,
};

use crate::{PipelineError, Stage, StageContext, StageSummary};

/// `clean_products` (+ reviewed labels) → golden products with offers and provenance.
pub struct ResolveStage;

impl Stage for ResolveStage {
    fn name(&self) -> &'static str {
        "resolve"
    }
    fn about(&self) -> &'static str {
        "product resolution: candidate pairs, match probabilities, clusters, golden products, offers"
    }
    fn reads(&self) -> Vec<String> {
        vec![
            EntityKind::Products.clean_table(),
            review_labels::NAME.to_string(),
        ]
    }
    fn writes(&self) -> Vec<TableDef> {
        vec![
            resolve_candidates::TABLE,
            product_clusters::TABLE,
            golden_products::TABLE,
            golden_provenance::TABLE,
            offers::TABLE,
            resolve_aliases::TABLE,
        ]
    }
    fn caches(&self) -> Vec<TableDef> {
        vec![embedding_cache::TABLE]
    }
    fn settings(&self, project: &Project) -> serde_json::Value {
        serde_json::json!({
            "resolve": project.config.resolve,
            "base_currency": project.config.project.base_currency,
            "encoder": shopfuse_embed::usem3::MODEL_ID,
        })
    }
    fn run(
        &self,
        ctx: &StageContext<'_>,
        tx: &mut Transaction<'_>,
        progress: &dyn Progress,
    ) -> Result<StageSummary, PipelineError> {
        let encoder = ctx.encoder()?;
        debug_assert_eq!(encoder.model_id(), shopfuse_embed::usem3::MODEL_ID);
        let config = &ctx.project.config;
        Ok(StageSummary::Resolve(shopfuse_resolve::resolve_products(
            tx,
            &config.resolve,
            &config.project.base_currency,
            encoder,
            progress,
        )?))
    }
}
