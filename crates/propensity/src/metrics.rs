//! Figures of a probability against outcomes: ranking (ROC-AUC, PR-AUC, top-decile lift)
//! and calibration (Brier score).

use serde::Serialize;

/// Ranking and calibration figures of one probability against the outcomes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scores {
    pub customers: usize,
    pub positives: usize,
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub brier: f64,
    /// Positive rate among the top-scored tenth over the overall rate.
    pub top_decile_lift: f64,
    /// The lift chart: each tenth's positive rate over the overall rate, best-scored first.
    pub decile_lift: [f64; 10],
}

impl Scores {
    pub fn of(p: &[f64], y: &[bool]) -> Scores {
        let n = p.len();
        let positives = y.iter().filter(|&&v| v).count();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
        Scores {
            customers: n,
            positives,
            roc_auc: shopfuse_core::metrics::roc_auc(p, y),
            pr_auc: shopfuse_core::metrics::average_precision(p, y),
            brier: p
                .iter()
                .zip(y)
                .map(|(p, &y)| (p - if y { 1.0 } else { 0.0 }).powi(2))
                .sum::<f64>()
                / n.max(1) as f64,
            top_decile_lift: {
                let top = (n / 10).max(1).min(n);
                lift(&order[..top], y, positives, n)
            },
            decile_lift: std::array::from_fn(|d| {
                let (from, to) = (d * n / 10, (d + 1) * n / 10);
                lift(&order[from..to], y, positives, n)
            }),
        }
    }
}

/// The positive rate of `slice` over the overall rate.
fn lift(slice: &[usize], y: &[bool], positives: usize, n: usize) -> f64 {
    let base = positives as f64 / n.max(1) as f64;
    if slice.is_empty() || base == 0.0 {
        return 0.0;
    }
    slice.iter().filter(|&&i| y[i]).count() as f64 / slice.len() as f64 / base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_scores_match_hand_counts() {
        let p = [0.9, 0.8, 0.3, 0.2];
        let y = [true, false, true, false];
        let s = Scores::of(&p, &y);
        assert!((s.roc_auc - 0.75).abs() < 1e-12);
        assert!((s.pr_auc - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert!((s.brier - (0.01 + 0.64 + 0.49 + 0.04) / 4.0).abs() < 1e-12);
    }
}
