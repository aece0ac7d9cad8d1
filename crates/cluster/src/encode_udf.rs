//! `shopfuse_encode_use(text)`: the USE multilingual encoder as a DataFusion scalar function,
//! so encoding texts is a plan node that DataFusion runs in-process and Ballista runs on its
//! executors.
//!
//! The function is registered under its name on the client, the scheduler and every executor;
//! Ballista's codec ships only that name, and each process resolves it in its own registry.
//! The model is loaded the first time a batch reaches the function in that process, so the
//! scheduler (which plans with it but never runs it) needs no model files.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayRef, FixedSizeListArray, Float32Array, StringArray};
use arrow::datatypes::{DataType, Field};
use datafusion::common::{exec_err, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use shopfuse_core::encoder::Encoder;
use shopfuse_embed::UseM3;

use crate::model_share;

/// The function's name in SQL and in serialised plans.
pub const ENCODE_USE: &str = "shopfuse_encode_use";

/// The vector type the function returns: the encoder's 512 floats per text.
pub fn vector_type() -> DataType {
    DataType::FixedSizeList(
        Arc::new(Field::new("item", DataType::Float32, false)),
        shopfuse_embed::usem3::DIM as i32,
    )
}

/// Where a process finds the encoder's files: a directory it was given, or the usual search
/// (`$SHOPFUSE_MODELS/usem3`, `models/usem3` under the working directory or the source tree);
/// and where it keeps the published models it fetches (see [`crate::model_share`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ModelFiles {
    pub usem3_dir: Option<PathBuf>,
    /// The model cache (default: [`model_share::model_cache`]'s search).
    pub cache: Option<PathBuf>,
}

impl ModelFiles {
    /// The model of this process's model directory (`published` is `None`), or the published
    /// model at that URL, fetched into the model cache unless it is there already.
    fn open_usem3(&self, published: Option<&str>) -> Result<Arc<UseM3>, String> {
        let dir = match (published, &self.usem3_dir) {
            (Some(url), _) => {
                fetch_blocking(url, &model_share::model_cache(self.cache.as_deref()))?
            }
            (None, Some(dir)) => dir.clone(),
            (None, None) => {
                let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                shopfuse_embed::find_usem3_dir(&[&cwd]).map_err(|e| e.to_string())?
            }
        };
        let encoder = UseM3::open(&dir).map_err(|e| format!("{e}"))?;
        // The executor's log line that says this process took encoding work.
        match published {
            Some(url) => eprintln!(
                "{ENCODE_USE}: encoder loaded from {} (published at {url})",
                dir.display()
            ),
            None => eprintln!("{ENCODE_USE}: encoder loaded from {}", dir.display()),
        }
        Ok(Arc::new(encoder))
    }
}

/// [`model_share::fetch`] from synchronous code that may run on a runtime's worker (a
/// DataFusion task): on a thread of its own with a runtime of its own.
fn fetch_blocking(url: &str, cache: &std::path::Path) -> Result<PathBuf, String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start a runtime to fetch the model: {e}"))?;
            runtime
                .block_on(model_share::fetch(url, cache))
                .map_err(|e| with_causes(&e))
        })
        .join()
        .expect("fetching a model does not panic")
    })
}

/// `error: cause: cause …`, so a message carried as text keeps what the object store said.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        message.push_str(&format!(": {c}"));
        cause = c.source();
    }
    message
}

/// Loaded models by where they came from (`None`: this process's model directory; a URL: a
/// published model), or why one could not be loaded.
type LoadedModels = HashMap<Option<String>, std::result::Result<Arc<UseM3>, String>>;

/// The scalar function; see the module docs.
pub struct EncodeUse {
    signature: Signature,
    files: ModelFiles,
    /// Kept so that every batch reports the same cause instead of retrying a missing file,
    /// and locked while a model loads so that the tasks of one executor fetch it once.
    loaded: Arc<Mutex<LoadedModels>>,
}

impl EncodeUse {
    pub fn new(files: ModelFiles) -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Utf8]),
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Utf8]),
                ],
                Volatility::Immutable,
            ),
            files,
            loaded: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The function around an encoder this process has already loaded (the in-process engine
    /// reuses the stage's encoder instead of loading a second copy).
    pub fn with_encoder(encoder: Arc<UseM3>) -> Self {
        let function = Self::new(ModelFiles::default());
        function
            .loaded
            .lock()
            .expect("model lock")
            .insert(None, Ok(encoder));
        function
    }

    pub fn udf(self) -> ScalarUDF {
        ScalarUDF::new_from_impl(self)
    }

    fn encoder(&self, published: Option<&str>) -> Result<Arc<UseM3>> {
        let mut loaded = self.loaded.lock().map_err(|_| {
            DataFusionError::Execution(format!("{ENCODE_USE}: model lock poisoned"))
        })?;
        let entry = loaded
            .entry(published.map(str::to_string))
            .or_insert_with(|| self.files.open_usem3(published));
        match entry {
            Ok(encoder) => Ok(encoder.clone()),
            Err(message) => Err(DataFusionError::Execution(match published {
                Some(_) => format!(
                    "{ENCODE_USE}: cannot fetch the published encoder on this process ({message})"
                ),
                None => format!(
                    "{ENCODE_USE}: cannot load the encoder on this process ({message}); give the \
                     executor `--models DIR` or set SHOPFUSE_MODELS"
                ),
            })),
        }
    }
}

impl std::fmt::Debug for EncodeUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodeUse")
            .field("files", &self.files)
            .field(
                "loaded",
                &self.loaded.lock().map(|l| l.len()).unwrap_or_default(),
            )
            .finish()
    }
}

impl PartialEq for EncodeUse {
    fn eq(&self, other: &Self) -> bool {
        self.files == other.files
    }
}

impl Eq for EncodeUse {}

impl Hash for EncodeUse {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.files.hash(state);
    }
}

impl ScalarUDFImpl for EncodeUse {
    fn name(&self) -> &str {
        ENCODE_USE
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(vector_type())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (text, published) = match args.args.as_slice() {
            [text] => (text, None),
            [text, ColumnarValue::Scalar(ScalarValue::Utf8(Some(url)))] => {
                (text, Some(url.as_str()))
            }
            _ => {
                return exec_err!(
                "{ENCODE_USE} takes the text, and optionally a published model's URL as a literal"
            )
            }
        };
        let texts = text.to_array(args.number_rows)?;
        let Some(texts) = texts.as_any().downcast_ref::<StringArray>() else {
            return exec_err!("{ENCODE_USE} reads Utf8 text, got {}", texts.data_type());
        };
        let encoder = self.encoder(published)?;
        Ok(ColumnarValue::Array(encode_column(&encoder, texts)?))
    }
}

/// One vector per row; a null text gets a null vector.
fn encode_column(encoder: &UseM3, texts: &StringArray) -> Result<ArrayRef> {
    let present: Vec<&str> = texts.iter().flatten().collect();
    let vectors = encoder
        .encode(&present)
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let dim = encoder.dim();
    let mut values = Vec::with_capacity(texts.len() * dim);
    let mut rows = vectors.rows();
    for i in 0..texts.len() {
        match texts.is_valid(i) {
            true => values.extend_from_slice(rows.next().expect("one vector per present text")),
            false => values.extend(std::iter::repeat_n(0.0, dim)),
        }
    }
    let field = Arc::new(Field::new("item", DataType::Float32, false));
    let list = FixedSizeListArray::try_new(
        field,
        dim as i32,
        Arc::new(Float32Array::from(values)),
        texts.nulls().cloned(),
    )?;
    Ok(Arc::new(list))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn a_process_without_the_model_names_the_fix() {
        let ctx = SessionContext::new();
        let missing = ModelFiles {
            usem3_dir: Some(PathBuf::from("/nonexistent/usem3")),
            ..Default::default()
        };
        ctx.register_udf(EncodeUse::new(missing).udf());
        let frame = ctx
            .sql(&format!("SELECT {ENCODE_USE}('phone')"))
            .await
            .unwrap();
        let err = frame.collect().await.unwrap_err().to_string();
        assert!(err.contains("/nonexistent/usem3"), "{err}");
        assert!(err.contains("--models DIR"), "{err}");
    }

    #[tokio::test]
    async fn null_texts_get_null_vectors() {
        let dir = shopfuse_embed::find_usem3_dir(&[]).unwrap_or_else(|e| panic!("{e}"));
        let ctx = SessionContext::new();
        ctx.register_udf(EncodeUse::with_encoder(Arc::new(UseM3::open(&dir).unwrap())).udf());
        let sql = format!(
            "SELECT {ENCODE_USE}(t) AS v FROM (VALUES ('phone'), (NULL), ('手机')) AS x(t)"
        );
        let list = vector_column(&ctx, &sql).await;
        assert_eq!(list.len(), 3);
        assert_eq!(
            (list.is_null(0), list.is_null(1), list.is_null(2)),
            (false, true, false)
        );
        assert_eq!(list.value_length(), 512);
    }

    /// The first column of `sql`'s one batch, a vector per row.
    async fn vector_column(ctx: &SessionContext, sql: &str) -> FixedSizeListArray {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .unwrap()
            .clone()
    }

    /// The vectors `call` gives two texts, each as its 512 floats.
    async fn vectors(ctx: &SessionContext, call: &str) -> Vec<Vec<f32>> {
        let sql = format!("SELECT {call} AS v FROM (VALUES ('phone 128GB'), ('手机')) AS x(t)");
        let list = vector_column(ctx, &sql).await;
        (0..list.len())
            .map(|i| {
                let v = list.value(i);
                v.as_any()
                    .downcast_ref::<Float32Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[tokio::test]
    async fn a_published_model_is_fetched_into_the_cache_and_encodes_the_same() {
        let dir = shopfuse_embed::find_usem3_dir(&[]).unwrap_or_else(|e| panic!("{e}"));
        let (store, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let area = shopfuse_core::TableStore::at_url(&format!("file://{}", store.path().display()))
            .unwrap()
            .object_area("models")
            .unwrap();
        let url = model_share::publish(
            &area,
            shopfuse_embed::usem3::MODEL_ID,
            &dir,
            &shopfuse_embed::usem3::FILES,
        )
        .await
        .unwrap();

        let local = SessionContext::new();
        local.register_udf(EncodeUse::with_encoder(Arc::new(UseM3::open(&dir).unwrap())).udf());
        let expected = vectors(&local, &format!("{ENCODE_USE}(t)")).await;

        // A process whose own model directory does not exist: it uses the published copy.
        let remote = SessionContext::new();
        let files = ModelFiles {
            usem3_dir: Some(PathBuf::from("/nonexistent/usem3")),
            cache: Some(cache.path().to_path_buf()),
        };
        remote.register_udf(EncodeUse::new(files).udf());
        let fetched = vectors(&remote, &format!("{ENCODE_USE}(t, '{url}')")).await;
        assert_eq!(fetched, expected);
        let cached = cache.path().join(shopfuse_embed::usem3::MODEL_ID);
        assert_eq!(std::fs::read_dir(&cached).unwrap().count(), 1);

        let missing = format!("{url}-gone");
        let sql = format!("SELECT {ENCODE_USE}('phone', '{missing}')");
        let err = remote
            .sql(&sql)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot fetch the published encoder") && err.contains(&missing),
            "{err}"
        );
    }
}
