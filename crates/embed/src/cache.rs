pub struct EmbeddingCache;
