use shopfuse_core::table::TableDef;
use shopfuse_core::{EntityKind, Progress, Project, Transaction};
use shopfuse_embed::cache::embedding_cache;
use shopfuse_embed::cross_encoder::{file_sha256, MANIFEST_FILE};
use shopfuse_resolve::catalogue::{
    golden_products, golden_provenance, offers, product_clusters, resolve_aliases,
    resolve_candidates, review_labels, CrossEncoderFiles,
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
        // A given cross-encoder retrained in place changes the stage's output under the same
        // path: its manifest's checksum (which covers the weights' checksum) is a setting too.
        let cross_encoder_manifest =
            given_cross_encoder(project).and_then(|dir| file_sha256(&dir.join(MANIFEST_FILE)).ok());
        serde_json::json!({
            "resolve": project.config.resolve,
            "base_currency": project.config.project.base_currency,
            "encoder": shopfuse_embed::usem3::MODEL_ID,
            "cross_encoder_manifest": cross_encoder_manifest,
        })
    }
    fn run(
        &self,
        ctx: &StageContext<'_>,
        tx: &mut Transaction<'_>,
        progress: &dyn Progress,
    ) -> Result<StageSummary, PipelineError> {
        let encoder = ctx.bulk_encoder()?;
        debug_assert_eq!(encoder.model_id(), shopfuse_embed::usem3::MODEL_ID);
        let config = &ctx.project.config;
        let cross_encoder = match config.resolve.cross_encoder.enabled {
            true => Some(CrossEncoderFiles {
                base_dir: crate::minilm_dir(None, &ctx.project.root)?,
                given: given_cross_encoder(ctx.project),
                trained_dir: ctx.project.state_dir().join("models").join("cross-encoder"),
            }),
            false => None,
        };
        Ok(StageSummary::Resolve(shopfuse_resolve::resolve_products(
            tx,
            &config.resolve,
            &config.project.base_currency,
            encoder,
            cross_encoder.as_ref(),
            progress,
        )?))
    }
}

/// The fine-tuned cross-encoder named in `[resolve.cross_encoder] model`, relative to the
/// project, when the cross-encoder is on; without one the stage trains the project's own.
fn given_cross_encoder(project: &Project) -> Option<std::path::PathBuf> {
    let config = &project.config.resolve.cross_encoder;
    let model = config.model.as_ref().filter(|_| config.enabled)?;
    Some(project.root.join(model))
}
