use std::path::PathBuf;

/// What the shared layer can fail on: files, the project file, table schemas and the store.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Reading or writing `path` failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `shopfuse.toml` at `path` is invalid; the message names the setting and the fix.
    #[error("{path}: invalid configuration: {message}")]
    Config { path: PathBuf, message: String },
    /// Rows or batches do not fit a table's declared schema (a missing column, a wrong type).
    #[error("schema mismatch: {0}")]
    Schema(String),
    /// The manifest, lock or a table's files are not in a state the store can use.
    #[error("table store: {0}")]
    Store(String),
    /// Files the committed manifest lists are gone (the tables folder was changed outside
    /// shopfuse); nothing can be read or written safely until the tables are rebuilt.
    #[error("{count} table file(s) listed in {manifest} are missing (first: {first}): the tables folder was changed outside shopfuse; run `shopfuse run --rebuild` to rebuild every table from the sources")]
    MissingFiles {
        manifest: PathBuf,
        count: usize,
        first: PathBuf,
    },
    /// An object store (`[store] url`) refused or failed an operation on `location`.
    #[error("{location}: {source}")]
    ObjectStore {
        location: String,
        source: Box<object_store::Error>,
    },
    /// Arrow rejected a batch.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
    /// A Parquet file could not be written or read.
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    /// The manifest or a JSON file could not be (de)serialised.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// Attaches the path to an I/O error so every message says which file failed.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| CoreError::Io {
            path: path.into(),
            source,
        })
    }
}
