//! Outlier detection. Outliers are flagged, never deleted: a 100× price may be a typo or a
//! real luxury item, and fraud detection later wants to see both.

use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shopfuse_core::config::{OutlierConfig, OutlierMethod};

/// Indices of values outside the fences. Prices and quantities are heavy-tailed, so the test
/// runs on log1p of the value; with IQR = 0 (a column of mostly equal values) Tukey fences
/// flag everything that differs, so the z-score test is used instead.
pub fn univariate_outliers(values: &[Option<f64>], config: &OutlierConfig) -> Vec<usize> {
    let logged: Vec<(usize, f64)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.filter(|v| v.is_finite() && *v >= 0.0)
                .map(|v| (i, v.ln_1p()))
        })
        .collect();
    if logged.len() < 8 {
        return Vec::new();
    }
    let mut sorted: Vec<f64> = logged.iter().map(|(_, v)| *v).collect();
    sorted.sort_by(f64::total_cmp);
    let (q1, q3) = (quantile(&sorted, 0.25), quantile(&sorted, 0.75));
    let iqr = q3 - q1;
    let use_iqr = config.method == OutlierMethod::Iqr && iqr > 1e-12;
    if use_iqr {
        let (lo, hi) = (q1 - config.iqr_k * iqr, q3 + config.iqr_k * iqr);
        logged
            .iter()
            .filter(|(_, v)| *v < lo || *v > hi)
            .map(|(i, _)| *i)
            .collect()
    } else {
        let n = sorted.len() as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let sd = (sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        if sd < 1e-12 {
            return Vec::new();
        }
        logged
            .iter()
            .filter(|(_, v)| ((v - mean) / sd).abs() > config.z_threshold)
            .map(|(i, _)| *i)
            .collect()
    }
}

/// Linear-interpolated quantile of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Isolation forest (Liu, Ting & Zhou 2008) over numeric feature rows.
///
/// Written here rather than taken from `extended-isolation-forest` because that crate draws
/// from the thread RNG, which would make two runs over the same data flag different rows; the
/// clean stage must be idempotent, so trees are grown from a fixed seed.
pub struct IsolationForest {
    trees: Vec<Node>,
    sample_size: usize,
}

enum Node {
    Leaf {
        size: usize,
    },
    Split {
        feature: usize,
        threshold: f64,
        left: Box<Node>,
        right: Box<Node>,
    },
}

impl IsolationForest {
    pub fn fit(rows: &[Vec<f64>], n_trees: usize, sample_size: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let sample_size = sample_size.min(rows.len()).max(1);
        let max_depth = (sample_size as f64).log2().ceil() as usize;
        let trees = (0..n_trees)
            .map(|_| {
                let idx: Vec<usize> = if rows.is_empty() {
                    Vec::new()
                } else {
                    sample(&mut rng, rows.len(), sample_size).into_vec()
                };
                grow(rows, idx, 0, max_depth, &mut rng)
            })
            .collect();
        Self { trees, sample_size }
    }

    /// Anomaly score in (0, 1): about 0.5 for ordinary points, near 1 for isolated ones.
    pub fn score(&self, row: &[f64]) -> f64 {
        if self.trees.is_empty() {
            return 0.5;
        }
        let mean_path: f64 = self
            .trees
            .iter()
            .map(|t| path_length(t, row, 0))
            .sum::<f64>()
            / self.trees.len() as f64;
        2f64.powf(-mean_path / average_path(self.sample_size))
    }
}

fn grow(
    rows: &[Vec<f64>],
    idx: Vec<usize>,
    depth: usize,
    max_depth: usize,
    rng: &mut ChaCha8Rng,
) -> Node {
    if idx.len() <= 1 || depth >= max_depth {
        return Node::Leaf { size: idx.len() };
    }
    let dims = rows[idx[0]].len();
    // Features that are constant within this node cannot split it.
    let splittable: Vec<(usize, f64, f64)> = (0..dims)
        .filter_map(|f| {
            let (lo, hi) = idx
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &i| {
                    (lo.min(rows[i][f]), hi.max(rows[i][f]))
                });
            (hi > lo).then_some((f, lo, hi))
        })
        .collect();
    if splittable.is_empty() {
        return Node::Leaf { size: idx.len() };
    }
    let (feature, lo, hi) = splittable[rng.random_range(0..splittable.len())];
    let threshold = rng.random_range(lo..hi);
    let (l, r): (Vec<usize>, Vec<usize>) =
        idx.into_iter().partition(|&i| rows[i][feature] < threshold);
    Node::Split {
        feature,
        threshold,
        left: Box::new(grow(rows, l, depth + 1, max_depth, rng)),
        right: Box::new(grow(rows, r, depth + 1, max_depth, rng)),
    }
}

fn path_length(node: &Node, row: &[f64], depth: usize) -> f64 {
    match node {
        Node::Leaf { size } => depth as f64 + average_path(*size),
        Node::Split {
            feature,
            threshold,
            left,
            right,
        } => {
            if row[*feature] < *threshold {
                path_length(left, row, depth + 1)
            } else {
                path_length(right, row, depth + 1)
            }
        }
    }
}

/// Average path length of an unsuccessful binary-search-tree lookup among n points, c(n).
fn average_path(n: usize) -> f64 {
    match n {
        0 | 1 => 0.0,
        2 => 1.0,
        n => {
            let n = n as f64;
            2.0 * ((n - 1.0).ln() + 0.577_215_664_9) - 2.0 * (n - 1.0) / n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iqr_flags_the_hundredfold_price_only() {
        let mut values: Vec<Option<f64>> =
            (0..200).map(|i| Some(100.0 + (i % 17) as f64)).collect();
        values.push(Some(12_000.0));
        values.push(None);
        let flagged = univariate_outliers(&values, &OutlierConfig::default());
        assert_eq!(flagged, vec![200]);
    }

    #[test]
    fn zero_iqr_falls_back_to_z_score() {
        let mut values: Vec<Option<f64>> = vec![Some(1.0); 300];
        values[10] = Some(2.0);
        values[20] = Some(500.0);
        let flagged = univariate_outliers(&values, &OutlierConfig::default());
        assert_eq!(flagged, vec![20]);
    }

    #[test]
    fn isolation_forest_scores_isolated_point_highest_and_is_deterministic() {
        let mut rows: Vec<Vec<f64>> = (0..500)
            .map(|i| vec![(i % 23) as f64, (i % 7) as f64 * 2.0])
            .collect();
        rows.push(vec![200.0, -90.0]);
        let forest = IsolationForest::fit(&rows, 100, 256, 7);
        let scores: Vec<f64> = rows.iter().map(|r| forest.score(r)).collect();
        let best = scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(best, 500);
        assert!(scores[500] > 0.7, "score {}", scores[500]);
        assert!(scores[3] < 0.6);
        let again = IsolationForest::fit(&rows, 100, 256, 7);
        assert_eq!(again.score(&rows[500]), scores[500]);
    }
}
