//! Embedding arbitrary texts with a project's encoder cache, for `shopfuse embed` and any
//! caller (a server, a notebook) that wants vectors consistent with the pipeline's.

use shopfuse_core::{Progress, Project, TableStore};
use shopfuse_embed::cache::CacheStats;
use shopfuse_embed::{EmbeddingCache, Embeddings, Encoder};

use crate::{now_rfc3339, PipelineError};

/// One L2-normalised vector per text. With a project, texts the project's cache has seen
/// are not encoded again and new ones are added to it (committed as one transaction); without
/// one, every text is encoded.
pub fn embed_texts(
    project: Option<&Project>,
    encoder: &dyn Encoder,
    texts: &[&str],
    progress: &dyn Progress,
) -> Result<(Embeddings, CacheStats), PipelineError> {
    let Some(project) = project else {
        return Ok(EmbeddingCache::new(encoder).embed(encoder, texts, progress)?);
    };
    let store = TableStore::open(project)?;
    let mut cache = EmbeddingCache::load(&store, encoder)?;
    let (vectors, stats) = cache.embed(encoder, texts, progress)?;
    if cache.new_entries() > 0 {
        let mut tx = store.begin()?;
        cache.save(&mut tx)?;
        tx.commit(now_rfc3339())?;
    }
    Ok((vectors, stats))
}
