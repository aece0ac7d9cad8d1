//! The ranking figures `eval risk` prints: PR-AUC (average precision), ROC-AUC,
//! precision among the top 100, and recall at a 1 % false-positive rate.

use serde::Serialize;
use shopfuse_core::metrics::{average_precision, roc_auc};

/// How well one score ranks one class of positives.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ranking {
    pub rows: usize,
    pub positives: usize,
    pub pr_auc: f64,
    pub roc_auc: f64,
    pub precision_at_100: f64,
    pub recall_at_1pct_fpr: f64,
}

impl Ranking {
    pub fn of(scores: &[f64], labels: &[bool]) -> Ranking {
        Ranking {
            rows: scores.len(),
            positives: labels.iter().filter(|&&l| l).count(),
            pr_auc: average_precision(scores, labels),
            roc_auc: roc_auc(scores, labels),
            precision_at_100: precision_at(scores, labels, 100),
            recall_at_1pct_fpr: recall_at_fpr(scores, labels, 0.01),
        }
    }
}

/// Share of positives among the `k` best-scored rows (ties at the cut share it pro rata).
pub fn precision_at(scores: &[f64], labels: &[bool], k: usize) -> f64 {
    let k = k.min(scores.len());
    if k == 0 {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let cut = scores[idx[k - 1]];
    let above = idx.iter().take_while(|&&i| scores[i] > cut).count();
    let hits_above = idx[..above].iter().filter(|&&i| labels[i]).count() as f64;
    let tied: Vec<usize> = idx[above..]
        .iter()
        .copied()
        .take_while(|&i| scores[i] == cut)
        .collect();
    let tied_hits = tied.iter().filter(|&&i| labels[i]).count() as f64;
    let take = (k - above) as f64;
    (hits_above + tied_hits * take / tied.len() as f64) / k as f64
}

/// The largest recall whose threshold keeps the false-positive rate at or below `fpr`
/// (thresholds at distinct scores, so ties are taken whole or not at all).
pub fn recall_at_fpr(scores: &[f64], labels: &[bool], fpr: f64) -> f64 {
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp, mut best, mut i) = (0usize, 0usize, 0.0f64, 0);
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            if labels[k] {
                tp += 1;
            } else {
                fp += 1;
            }
        }
        if fp as f64 / negatives as f64 > fpr {
            break;
        }
        best = tp as f64 / positives as f64;
        i = j + 1;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_match_hand_counts() {
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5];
        let labels = [true, false, true, false, false];
        assert!((precision_at(&scores, &labels, 2) - 0.5).abs() < 1e-12);
        // One false positive of three is 33 % FPR: at ≤ 1 % only the first row is taken.
        assert!((recall_at_fpr(&scores, &labels, 0.01) - 0.5).abs() < 1e-12);
        assert!((recall_at_fpr(&scores, &labels, 0.34) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ties_at_the_cut_count_pro_rata() {
        let scores = [1.0, 0.0, 0.0, 0.0, 0.0];
        let labels = [true, true, false, false, false];
        assert!((precision_at(&scores, &labels, 3) - (1.0 + 2.0 * 0.25) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn average_precision_treats_ties_as_one_step() {
        let ap = shopfuse_core::metrics::average_precision(&[1.0, 1.0], &[true, false]);
        assert!((ap - 0.5).abs() < 1e-12);
    }
}
