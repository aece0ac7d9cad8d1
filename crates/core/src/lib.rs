//! Shared types of the shopfuse pipeline.
//!
//! Every stage (ingest → clean → resolve → fuse → learn → serve) depends on this crate and on
//! the stages before it only. It holds what they must agree on: the canonical schema, the
//! project configuration, row values and the transactional Parquet table store.

pub mod config;
pub mod encoder;
pub mod error;
pub mod progress;
pub mod project;
pub mod schema;
pub mod store;
pub mod value;

pub use config::ProjectConfig;
pub use encoder::{cosine, Embeddings, Encoder, EncoderError};
pub use error::{CoreError, IoContext, Result};
pub use progress::{NoProgress, Progress};
pub use project::Project;
pub use schema::{CanonicalField, EntityKind, FieldType, PiiFeature, PiiKind};
pub use store::{Manifest, TableStore, Transaction};
pub use value::Value;
