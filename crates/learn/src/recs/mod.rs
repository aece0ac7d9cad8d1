//! Recommendations on the fused data: one interaction log keyed by unified customer ×
//! golden product, built from every platform's behaviour events and orders, and the models
//! that learn from it.
//!
//! What a single platform cannot do and we can: a shopper's Taobao views and JD orders land
//! on the same customer and the same golden product, so each platform's recommendations use
//! the behaviour of all of them (`eval recs` prints that lift).
//!
//! - `data`: the interaction log, from a project's tables or a public ratings file.
//! - `models`: popularity, item-kNN, EASE, iALS, content (title embeddings) and the hybrid.
//! - `evaluate`: temporal split, Recall/NDCG/HitRate/coverage, the cross-platform lift.
//! - `serve`: training on all data, exclusions, reasons, the `recommendations` table.
//! - `bench`: training time and recommendations/s on synthetic interactions.

pub mod bench;
pub mod data;
pub mod evaluate;
pub mod models;
pub mod serve;

pub use data::{Action, Catalog, Interaction, InteractionLog};
pub use evaluate::{evaluate_log, RecsEvaluation, SplitKind};
pub use models::{Recommender, TrainMatrix};
pub use serve::{read_recommendations, train_recs, RecsSummary, RECOMMENDATIONS_TABLE};

pub use shopfuse_core::vector::top_k;
