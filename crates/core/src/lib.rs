//! Shared types of the shopfuse pipeline.
//!
//! Every stage (ingest → clean → resolve → identity → profiles → recs) depends on this crate and
//! on the stages before it only. It holds what they must agree on: the canonical schema, the
//! project configuration, row values, the transactional Parquet table store, and the few
//! algorithms two stages share (the bookkeeping of agglomerative clustering in `linkage`, the
//! accuracy metrics in `metrics`).

pub mod config;
pub mod encoder;
pub mod error;
pub mod event_log;
pub mod linkage;
pub mod metrics;
pub mod progress;
pub mod project;
pub mod schema;
pub mod store;
pub mod table;
pub mod text;
pub mod tombstone;
pub mod value;
pub mod vector;

pub use config::ProjectConfig;
pub use encoder::{cosine, Embeddings, Encoder, EncoderCause, EncoderError};
pub use error::{CoreError, IoContext, Result};
pub use progress::{NoProgress, Progress};
pub use project::Project;
pub use schema::{CanonicalField, EntityKind, FieldType, PiiFeature, PiiKind};
pub use store::{Manifest, ObjectArea, StageRecord, TableStore, Transaction};
pub use value::Value;
