//! `shopfuse_encode_use(text)`: the USE multilingual encoder as a DataFusion scalar function,
//! so encoding texts is a plan node that DataFusion runs in-process and Ballista runs on its
//! executors.
//!
//! The function is registered under its name on the client, the scheduler and every executor;
//! Ballista's codec ships only that name, and each process resolves it in its own registry.
//! The model is loaded the first time a batch reaches the function in that process, so the
//! scheduler (which plans with it but never runs it) needs no model files.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use arrow::array::{Array, ArrayRef, FixedSizeListArray, Float32Array, StringArray};
use arrow::datatypes::{DataType, Field};
use datafusion::common::{exec_err, DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use shopfuse_core::encoder::Encoder;
use shopfuse_embed::UseM3;

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
/// (`$SHOPFUSE_MODELS/usem3`, `models/usem3` under the working directory or the source tree).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ModelFiles {
    pub usem3_dir: Option<PathBuf>,
}

impl ModelFiles {
    fn open_usem3(&self) -> Result<Arc<UseM3>, String> {
        let dir = match &self.usem3_dir {
            Some(dir) => dir.clone(),
            None => {
                let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
                shopfuse_embed::find_usem3_dir(&[&cwd]).map_err(|e| e.to_string())?
            }
        };
        let encoder = UseM3::open(&dir).map_err(|e| format!("{e}"))?;
        // The executor's log line that says this process took encoding work.
        eprintln!("{ENCODE_USE}: encoder loaded from {}", dir.display());
        Ok(Arc::new(encoder))
    }
}

/// The scalar function; see the module docs.
pub struct EncodeUse {
    signature: Signature,
    files: ModelFiles,
    /// The loaded model, or why it could not be loaded (kept so every batch reports the same
    /// cause instead of retrying a missing file).
    encoder: Arc<OnceLock<std::result::Result<Arc<UseM3>, String>>>,
}

impl EncodeUse {
    pub fn new(files: ModelFiles) -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
            files,
            encoder: Arc::new(OnceLock::new()),
        }
    }

    /// The function around an encoder this process has already loaded (the in-process engine
    /// reuses the stage's encoder instead of loading a second copy).
    pub fn with_encoder(encoder: Arc<UseM3>) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(Ok(encoder));
        Self {
            encoder: Arc::new(cell),
            ..Self::new(ModelFiles::default())
        }
    }

    pub fn udf(self) -> ScalarUDF {
        ScalarUDF::new_from_impl(self)
    }

    fn encoder(&self) -> Result<&UseM3> {
        match self.encoder.get_or_init(|| self.files.open_usem3()) {
            Ok(encoder) => Ok(encoder),
            Err(message) => Err(DataFusionError::Execution(format!(
                "{ENCODE_USE}: cannot load the encoder on this process ({message}); give the \
                 executor `--models DIR` or set SHOPFUSE_MODELS"
            ))),
        }
    }
}

impl std::fmt::Debug for EncodeUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodeUse")
            .field("files", &self.files)
            .field("loaded", &matches!(self.encoder.get(), Some(Ok(_))))
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
        let [text] = args.args.as_slice() else {
            return exec_err!("{ENCODE_USE} takes one argument, the text");
        };
        let texts = text.to_array(args.number_rows)?;
        let Some(texts) = texts.as_any().downcast_ref::<StringArray>() else {
            return exec_err!("{ENCODE_USE} reads Utf8 text, got {}", texts.data_type());
        };
        Ok(ColumnarValue::Array(encode_column(self.encoder()?, texts)?))
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
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let list = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<FixedSizeListArray>()
            .unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(
            (list.is_null(0), list.is_null(1), list.is_null(2)),
            (false, true, false)
        );
        assert_eq!(list.value_length(), 512);
    }
}
