//! How evidence becomes one score with reasons.
//!
//! **Unsupervised** (a project without labels): each feature's value is replaced by its
//! **surprise**, `-ln P(X ≥ x)` over the project's own rows when `x` is above the feature's
//! median and 0 otherwise, and the score is the sum of the surprises. It is ECOD's idea
//! (Li et al. 2022: sum of the negative log empirical tail probabilities) with the tail
//! chosen by meaning rather than by skewness — a young account is suspicious, an old one is
//! not, however the project's accounts are distributed — so rare evidence weighs more than
//! common evidence, in nats, with no parameter fitted. The reasons are the largest terms.
//!
//! **Supervised** (labels from review decisions or chargebacks, `[risk] labels`): a logistic
//! regression over the same surprises, fitted to the labelled rows; the score is its log-odds,
//! the probability its output, and the reasons the largest `weight × surprise` terms.

use serde::{Deserialize, Serialize};
use shopfuse_sentiment::logistic::{sigmoid, Logistic};

use crate::RiskError;

/// The empirical tail of each feature.
#[derive(Debug, Clone)]
pub struct TailScorer {
    /// Per feature: the non-missing suspicion values, sorted.
    sorted: Vec<Vec<f64>>,
    medians: Vec<f64>,
    rows: usize,
}

impl TailScorer {
    /// Fits the tails on `rows` of suspicion values (NaN = no evidence).
    pub fn fit(rows: &[Vec<f64>], width: usize) -> Self {
        Self::fit_columns(rows.len(), width, |j| rows.iter().map(|r| r[j]).collect())
    }

    /// Fits the tails on `rows` rows whose column `j` is `column(j)`, one column at a time,
    /// so that no row-wise copy of a large table is ever held.
    pub fn fit_columns(rows: usize, width: usize, column: impl Fn(usize) -> Vec<f64>) -> Self {
        let mut sorted: Vec<Vec<f64>> = (0..width)
            .map(|j| {
                let mut col = column(j);
                col.retain(|v| !v.is_nan());
                col
            })
            .collect();
        for col in &mut sorted {
            col.sort_unstable_by(f64::total_cmp);
        }
        let medians = sorted
            .iter()
            .map(|c| c.get(c.len() / 2).copied().unwrap_or(f64::INFINITY))
            .collect();
        Self {
            sorted,
            medians,
            rows: rows.max(1),
        }
    }

    /// Each feature's surprise for one row.
    pub fn surprises(&self, row: &[f64]) -> Vec<f64> {
        row.iter()
            .enumerate()
            .map(|(j, &x)| {
                if x.is_nan() || x <= self.medians[j] {
                    return 0.0;
                }
                let col = &self.sorted[j];
                let at_least = col.len() - col.partition_point(|&v| v < x);
                let p = at_least.max(1) as f64 / self.rows as f64;
                -p.ln()
            })
            .collect()
    }
}

/// How surprises are combined.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Combiner {
    /// The sum of surprises.
    Sum,
    /// A logistic regression fitted to labels.
    Learned(Logistic),
}

/// A row's combined score, probability (learned only) and each feature's part in it.
#[derive(Debug, Clone)]
pub struct Scored {
    pub score: f64,
    pub probability: Option<f64>,
    pub parts: Vec<f64>,
}

impl Combiner {
    /// Fits a logistic regression when both classes have at least `min_per_class` rows;
    /// `None` otherwise (the caller keeps the sum and says so).
    pub fn learn(
        surprises: &[Vec<f64>],
        labels: &[bool],
        min_per_class: usize,
    ) -> Result<Option<Combiner>, RiskError> {
        let positives = labels.iter().filter(|&&l| l).count();
        if positives < min_per_class || labels.len() - positives < min_per_class {
            return Ok(None);
        }
        let width = surprises.first().map_or(0, Vec::len);
        let rows: Vec<Vec<(u32, f32)>> = surprises
            .iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .map(|(j, &v)| (j as u32, v as f32))
                    .collect()
            })
            .collect();
        let model = Logistic::fit(&rows, labels, width, 1e-3, 200)
            .map_err(|e| RiskError::Training(e.to_string()))?;
        Ok(Some(Combiner::Learned(model)))
    }

    pub fn score(&self, surprises: Vec<f64>) -> Scored {
        match self {
            Combiner::Sum => Scored {
                score: surprises.iter().sum(),
                probability: None,
                parts: surprises,
            },
            Combiner::Learned(m) => {
                let parts: Vec<f64> = surprises
                    .iter()
                    .zip(&m.weights)
                    .map(|(s, w)| s * *w as f64)
                    .collect();
                let z = parts.iter().sum::<f64>() + m.bias as f64;
                Scored {
                    score: z,
                    probability: Some(sigmoid(z)),
                    parts,
                }
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Combiner::Sum => "unsupervised",
            Combiner::Learned(_) => "supervised",
        }
    }
}

/// The indices of the `n` largest positive parts, largest first.
pub fn top_parts(parts: &[f64], n: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..parts.len()).filter(|&j| parts[j] > 0.05).collect();
    idx.sort_by(|&a, &b| parts[b].total_cmp(&parts[a]).then(a.cmp(&b)));
    idx.truncate(n);
    idx
}

/// Each score's rank among all, as a share in [0, 1] (ties share the highest rank).
pub fn percentiles(scores: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let n = scores.len().max(1) as f64;
    let mut out = vec![0.0; scores.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        for &k in &order[i..=j] {
            out[k] = (j + 1) as f64 / n;
        }
        i = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rare_evidence_is_more_surprising_than_common() {
        // Feature 0 is 1 in half the rows, feature 1 in one row of a hundred.
        let rows: Vec<Vec<f64>> = (0..100)
            .map(|i| vec![(i % 2) as f64, (i == 7) as u8 as f64])
            .collect();
        let tails = TailScorer::fit(&rows, 2);
        let s = tails.surprises(&[1.0, 1.0]);
        assert_eq!(s[0], 0.0, "a value at the median is no evidence");
        assert!((s[1] - 100f64.ln()).abs() < 1e-9);
        assert_eq!(tails.surprises(&[f64::NAN, 0.0]), vec![0.0, 0.0]);
    }

    #[test]
    fn percentiles_rank_and_share_ties() {
        assert_eq!(
            percentiles(&[3.0, 1.0, 3.0, 2.0]),
            vec![1.0, 0.25, 1.0, 0.5]
        );
    }

    #[test]
    fn a_learned_combiner_needs_both_classes() {
        let rows = vec![vec![1.0], vec![0.0]];
        assert!(Combiner::learn(&rows, &[true, false], 5).unwrap().is_none());
    }
}
