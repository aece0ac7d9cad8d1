//! Resolve: decide which listings are the same real product.
//!
//! `blocking` proposes the candidate pairs (identifier keys, rare tokens, HNSW neighbours),
//! `pairs` reads labelled benchmark pairs, `features` computes attribute-agnostic pair
//! similarities (embedding, TF-IDF, BM25, token sets, codes, numbers, candidate margins),
//! `matcher` learns the match probability with gradient-boosted trees and evaluates it,
//! `cross` stacks a fine-tuned cross-encoder (both records read as one sequence) with the trees
//! and augments its training pairs; `catalogue` is the stage, which applies that stack only to
//! the band of candidate pairs the trees are least sure of, so the transformer's cost is set by
//! the band's cap rather than by the catalogue's size.

pub mod blocking;
pub mod catalogue;
pub mod cross;
pub mod evaluate;
pub mod features;
pub mod learned;
pub mod matcher;
pub mod pairs;
pub mod review;
pub mod scoring_forest;
pub mod token_index;

pub use blocking::{BlockingConfig, BlockingQuality, CandidatePair};
pub use catalogue::{resolve_products, ResolveError, ResolveSummary};
pub use matcher::{
    eval_blocking, eval_pairs, CandidateScope, PairEvalReport, PairEvalSettings, PairModel, Scores,
    Supervision,
};
pub use pairs::{LabelledPair, Record};
