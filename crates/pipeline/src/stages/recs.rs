use crate::{PipelineError, Stage, StageContext, StageSummary};
use shopfuse_core::table::TableDef;
use shopfuse_core::{Embeddings, Encoder, EntityKind, Progress, Project, Transaction};
use shopfuse_embed::cache::embedding_cache;
use shopfuse_embed::EmbeddingCache;
use shopfuse_identity::customer_accounts;
use shopfuse_learn::recs::serve::{self, interactions, recommendations};
use shopfuse_learn::recs::InteractionLog;
use shopfuse_resolve::catalogue::{golden_products, offers, product_clusters};

/// Behaviour and orders on unified customers × golden products → each customer's top list.
pub struct RecsStage;

impl Stage for RecsStage {
    fn name(&self) -> &'static str {
        "recs"
    }
    fn about(&self) -> &'static str {
        "recommendations: interaction log, popularity/item-kNN/EASE/iALS/content, hybrid, top list with reasons"
    }
    fn reads(&self) -> Vec<String> {
        vec![
            customer_accounts::NAME.to_string(),
            golden_products::NAME.to_string(),
            product_clusters::NAME.to_string(),
            offers::NAME.to_string(),
            EntityKind::Orders.clean_table(),
            EntityKind::Events.clean_table(),
        ]
    }
    fn writes(&self) -> Vec<TableDef> {
        vec![interactions::TABLE, recommendations::TABLE]
    }
    fn caches(&self) -> Vec<TableDef> {
        vec![embedding_cache::TABLE]
    }
    fn settings(&self, project: &Project) -> serde_json::Value {
        serde_json::json!({ "recs": project.config.recs, "encoder": shopfuse_embed::usem3::MODEL_ID })
    }
    fn run(
        &self,
        ctx: &StageContext<'_>,
        tx: &mut Transaction<'_>,
        progress: &dyn Progress,
    ) -> Result<StageSummary, PipelineError> {
        let encoder = ctx.bulk_encoder()?;
        let mut cache = EmbeddingCache::load_in(tx, encoder)?;
        let log = {
            let read = |t: &str| tx.read_rows(t);
            project_log(&read, &mut cache, encoder, progress)?
        };
        cache.save(tx)?;
        let summary = shopfuse_learn::recs::train_recs(tx, &log, &ctx.project.config.recs)?;
        Ok(StageSummary::Recs(summary))
    }
}

/// The project's interaction log with title vectors for the content model: each golden
/// product's offer titles (Chinese and English) encoded through the embedding cache and
/// averaged; the caller keeps the cache's new vectors (or not).
pub fn project_log(
    read: shopfuse_learn::recs::data::ReadTable<'_>,
    cache: &mut EmbeddingCache,
    encoder: &dyn Encoder,
    progress: &dyn Progress,
) -> Result<InteractionLog, PipelineError> {
    let mut log = InteractionLog::from_project(read)?;
    let titles = serve::offer_titles(read, &log)?;
    let flat: Vec<&str> = titles.iter().flatten().map(String::as_str).collect();
    let (vectors, _) = cache.embed(encoder, &flat, progress)?;
    let mut items = Embeddings::zeros(titles.len(), vectors.dim());
    let mut at = 0;
    for (i, t) in titles.iter().enumerate() {
        let row = items.row_mut(i);
        for k in 0..t.len() {
            for (r, v) in row.iter_mut().zip(vectors.row(at + k)) {
                *r += v / t.len() as f32;
            }
        }
        at += t.len();
    }
    log.item_vectors = Some(items);
    Ok(log)
}
