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

/// The `k` best candidates of `scores` (highest first, ties by index), skipping `excluded`.
pub fn top_k(scores: &[f32], k: usize, excluded: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len())
        .filter(|&i| !excluded(i) && scores[i].is_finite())
        .collect();
    let by_score = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
    if idx.len() > k {
        idx.select_nth_unstable_by(k, by_score);
        idx.truncate(k);
    }
    idx.sort_by(by_score);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_by_score_and_skips_exclusions() {
        let s = [0.1, 0.9, 0.5, 0.9, f32::NAN, 0.7];
        assert_eq!(top_k(&s, 3, |_| false), vec![1, 3, 5]);
        assert_eq!(top_k(&s, 3, |i| i == 1), vec![3, 5, 2]);
        assert_eq!(top_k(&s, 10, |_| false), vec![1, 3, 5, 2, 0]);
        assert!(top_k(&s, 0, |_| false).is_empty());
    }
}
