//! The one error type of the cluster crate.

use std::path::{Path, PathBuf};

use datafusion::error::DataFusionError;

/// What can stop a plan, a scheduler or an executor.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// `--cluster` or `--scheduler` is not an address.
    #[error("{given:?} is not a scheduler address ({why}); write it as df://HOST:PORT")]
    SchedulerUrl { given: String, why: String },
    /// The scheduler could not be reached or refused the session.
    #[error("cannot reach the Ballista scheduler at {scheduler}: is `shopfuse scheduler` running there?")]
    Connect {
        scheduler: String,
        #[source]
        source: DataFusionError,
    },
    /// A plan failed while it was built or run (on a cluster: after Ballista's retries).
    #[error("the plan failed while {step}")]
    Plan {
        step: &'static str,
        #[source]
        source: DataFusionError,
    },
    /// An executor could not read the plan's input: the directory is not on a path the
    /// executors share with the client.
    #[error("the executors cannot read {dir}: run them where the project directory is shared at the same path")]
    StagingNotShared {
        dir: PathBuf,
        #[source]
        source: DataFusionError,
    },
    /// Ballista's scheduler or executor stopped with an error.
    #[error("Ballista failed {step}")]
    Ballista {
        step: &'static str,
        #[source]
        source: ballista_core::error::BallistaError,
    },
    /// A plan's result did not have the shape it was built to have.
    #[error("the plan's result is malformed: {0}")]
    Result(String),
    #[error("{path}: cannot write or remove the staging table")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The object store the staging tables or a published model are on refused or failed an
    /// operation.
    #[error("{location}: the object store failed")]
    ObjectStore {
        location: String,
        #[source]
        source: object_store::Error,
    },
    /// A model file could not be read to publish it, or written into the model cache.
    #[error("{path}: cannot read or write the model file")]
    ModelIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A published model is missing, unreadable or damaged (the message names the file).
    #[error("{0}")]
    ModelShare(String),
    #[error("{path}: cannot write Parquet")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("{step}")]
    Arrow {
        step: &'static str,
        #[source]
        source: arrow::error::ArrowError,
    },
    #[error("cannot start the async runtime")]
    Runtime {
        #[source]
        source: std::io::Error,
    },
}

impl ClusterError {
    pub(crate) fn plan(step: &'static str) -> impl FnOnce(DataFusionError) -> Self {
        move |source| ClusterError::Plan { step, source }
    }

    pub(crate) fn ballista(
        step: &'static str,
    ) -> impl FnOnce(ballista_core::error::BallistaError) -> Self {
        move |source| ClusterError::Ballista { step, source }
    }

    pub(crate) fn arrow(step: &'static str) -> impl FnOnce(arrow::error::ArrowError) -> Self {
        move |source| ClusterError::Arrow { step, source }
    }

    pub(crate) fn parquet(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> Self {
        let path = path.to_path_buf();
        move |source| ClusterError::Parquet { path, source }
    }
}
