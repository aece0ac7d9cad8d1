//! Accuracy metrics shared by every evaluation: precision/recall/F1 of binary decisions, and
//! the pairwise and exact-cluster scores of a clustering against a ground truth (product
//! clusters, customer clusters). One home, so `eval match` and `eval identity` count the same
//! way.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// Precision, recall and F1 of a set of binary decisions.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Scores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
}

impl Scores {
    pub fn from_counts(tp: usize, fp: usize, fn_: usize) -> Self {
        let precision = if tp + fp == 0 {
            0.0
        } else {
            tp as f64 / (tp + fp) as f64
        };
        let recall = if tp + fn_ == 0 {
            0.0
        } else {
            tp as f64 / (tp + fn_) as f64
        };
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Scores {
            precision,
            recall,
            f1,
            true_positives: tp,
            false_positives: fp,
            false_negatives: fn_,
        }
    }

    pub fn of(probabilities: &[f64], labels: &[bool], threshold: f64) -> Self {
        let (mut tp, mut fp, mut fn_) = (0, 0, 0);
        for (&p, &y) in probabilities.iter().zip(labels) {
            match (p >= threshold, y) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                (false, false) => {}
            }
        }
        Scores::from_counts(tp, fp, fn_)
    }
}

impl std::fmt::Display for Scores {
    /// Percentages, as benchmark tables print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "F1 {:.1}  precision {:.1}  recall {:.1}  (tp {} fp {} fn {})",
            100.0 * self.f1,
            100.0 * self.precision,
            100.0 * self.recall,
            self.true_positives,
            self.false_positives,
            self.false_negatives
        )
    }
}

/// Mann–Whitney ROC-AUC: the chance a random positive outscores a random negative (ties
/// count half). NaN without both classes.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let mid_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += idx[i..=j].iter().filter(|&&k| labels[k]).count() as f64 * mid_rank;
        i = j + 1;
    }
    let pos = labels.iter().filter(|&&v| v).count() as f64;
    let neg = labels.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Average precision (the area under the precision–recall curve as scikit-learn's
/// `average_precision_score` sums it): `Σ (R_k − R_{k−1}) · P_k` over the distinct score
/// thresholds, so tied scores are one step and their order does not matter. NaN without
/// positives.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> f64 {
    let positives = labels.iter().filter(|&&v| v).count();
    if positives == 0 {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut hits, mut sum, mut i) = (0usize, 0.0, 0);
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let new_hits = idx[i..=j].iter().filter(|&&k| labels[k]).count();
        hits += new_hits;
        sum += new_hits as f64 / positives as f64 * hits as f64 / (j + 1) as f64;
        i = j + 1;
    }
    sum
}

/// Item positions grouped by a key: `groups[key] = positions with that key`, in position order.
pub fn group_by<K: Ord>(n: usize, key: impl Fn(usize) -> K) -> BTreeMap<K, Vec<usize>> {
    let mut groups: BTreeMap<K, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        groups.entry(key(i)).or_default().push(i);
    }
    groups
}

/// Every unordered pair `(a, b)`, `a < b`, of positions that share a group.
pub fn pairs_within<K>(groups: &BTreeMap<K, Vec<usize>>) -> BTreeSet<(usize, usize)> {
    let mut out = BTreeSet::new();
    for members in groups.values() {
        for (k, &a) in members.iter().enumerate() {
            for &b in &members[k + 1..] {
                out.insert((a.min(b), a.max(b)));
            }
        }
    }
    out
}

/// Pairwise scores: a predicted pair is right when the truth pairs it too.
pub fn pair_scores(
    true_pairs: &BTreeSet<(usize, usize)>,
    predicted_pairs: &BTreeSet<(usize, usize)>,
) -> Scores {
    let tp = true_pairs.intersection(predicted_pairs).count();
    Scores::from_counts(tp, predicted_pairs.len() - tp, true_pairs.len() - tp)
}

/// Exact-cluster scores: a predicted cluster counts when its members are exactly one true
/// cluster's members.
pub fn exact_cluster_scores<K, L>(
    truth: &BTreeMap<K, Vec<usize>>,
    predicted: &BTreeMap<L, Vec<usize>>,
) -> Scores {
    let true_sets: BTreeSet<&Vec<usize>> = truth.values().collect();
    let exact = predicted.values().filter(|m| true_sets.contains(m)).count();
    Scores::from_counts(exact, predicted.len() - exact, truth.len() - exact)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_and_exact_cluster_scores() {
        // truth {0,1,2} {3}; predicted {0,1} {2,3}
        let truth = group_by(4, |i| if i < 3 { "a" } else { "b" });
        let predicted = group_by(4, |i| i / 2);
        let p = pair_scores(&pairs_within(&truth), &pairs_within(&predicted));
        assert_eq!(
            (p.true_positives, p.false_positives, p.false_negatives),
            (1, 1, 2)
        );
        let c = exact_cluster_scores(&truth, &predicted);
        assert_eq!(
            (c.true_positives, c.false_positives, c.false_negatives),
            (0, 2, 2)
        );
        assert_eq!(Scores::from_counts(0, 0, 0).f1, 0.0);
    }
}
