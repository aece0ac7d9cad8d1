use shopfuse_core::table::TableDef;
use shopfuse_core::{Progress, Project, Transaction};
use shopfuse_embed::cache::embedding_cache;
use shopfuse_embed::EmbeddingCache;
use shopfuse_resolve::catalogue::{golden_products, offers, resolve_aliases};
use shopfuse_search::document::{attach_vectors, build_documents, write_documents};
use shopfuse_search::{search_documents, SearchError};

use crate::{PipelineError, Stage, StageContext, StageSummary};

/// Golden products and their offers → one search document per product (every title, the
/// filter attributes, the product vector), and the project's search index under
/// `.shopfuse/search/` brought to it incrementally.
pub struct SearchStage;

impl Stage for SearchStage {
    fn name(&self) -> &'static str {
        "search"
    }
    fn about(&self) -> &'static str {
        "search documents per golden product and the hybrid index (tantivy BM25 with jieba + encoder vectors), updated incrementally"
    }
    fn reads(&self) -> Vec<String> {
        vec![
            golden_products::NAME.to_string(),
            offers::NAME.to_string(),
            resolve_aliases::NAME.to_string(),
        ]
    }
    fn writes(&self) -> Vec<TableDef> {
        vec![search_documents::TABLE]
    }
    fn caches(&self) -> Vec<TableDef> {
        vec![embedding_cache::TABLE]
    }
    fn settings(&self, _: &Project) -> serde_json::Value {
        serde_json::json!({ "encoder": shopfuse_embed::usem3::MODEL_ID })
    }
    fn run(
        &self,
        ctx: &StageContext<'_>,
        tx: &mut Transaction<'_>,
        progress: &dyn Progress,
    ) -> Result<StageSummary, PipelineError> {
        let encoder = ctx.bulk_encoder()?;
        let mut docs = {
            let read = |t: &str, cols: &[&str]| tx.read_columns(t, cols);
            build_documents(&read)?
        };
        let mut cache = EmbeddingCache::load_in(tx, encoder)?;
        attach_vectors(&mut docs, &mut |texts| {
            cache
                .embed(encoder, texts, progress)
                .map(|(vectors, _)| vectors)
                .map_err(|e| SearchError::Vectors(format!("cannot embed the titles: {e}")))
        })?;
        if cache.new_entries() > 0 {
            cache.save(tx)?;
        }
        write_documents(tx, &docs)?;
        let aliases = {
            let read = |t: &str, cols: &[&str]| tx.read_columns(t, cols);
            shopfuse_search::document::read_aliases(&read)?
        };
        let (_, report) = shopfuse_search::SearchIndex::open(
            &shopfuse_search::index_dir(ctx.project),
            docs,
            aliases,
        )?;
        Ok(StageSummary::Search(report))
    }
}
