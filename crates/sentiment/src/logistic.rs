//! L2-regularised binary logistic regression over sparse rows, fitted by full-batch L-BFGS
//! (argmin): NB-SVM's over its scaled n-gram indicators, the stacks and the cascade's
//! calibration over a part's log-odds.
//!
//! Full batch rather than SGD: the training sets are small (thousands to tens of thousands
//! of reviews), and a deterministic optimum means a retrained model is the same model.

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::SentimentError;

/// One training row: (feature index, value) pairs.
pub type SparseRow = Vec<(u32, f32)>;

/// A fitted linear model: `P(positive) = σ(w·x + b)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Logistic {
    pub weights: Vec<f32>,
    pub bias: f32,
}

impl Logistic {
    /// The log-odds of positive for a sparse row.
    pub fn logit(&self, row: &[(u32, f32)]) -> f64 {
        let mut z = self.bias as f64;
        for &(j, v) in row {
            z += self.weights[j as usize] as f64 * v as f64;
        }
        z
    }

    /// The log-odds for a dense row.
    pub fn logit_dense(&self, row: &[f32]) -> f64 {
        let z: f32 = row.iter().zip(&self.weights).map(|(x, w)| x * w).sum();
        (z + self.bias) as f64
    }

    /// Fits `rows` (over `dim` features) to `labels` (true = positive) with penalty
    /// `l2 · ||w||² / 2` on the mean log-loss scale.
    pub fn fit(
        rows: &[SparseRow],
        labels: &[bool],
        dim: usize,
        l2: f64,
        max_iters: u64,
    ) -> Result<Logistic, SentimentError> {
        if rows.is_empty() || rows.len() != labels.len() {
            return Err(SentimentError::Training(format!(
                "need labelled rows to fit a classifier (got {} rows and {} labels)",
                rows.len(),
                labels.len()
            )));
        }
        let problem = Problem {
            rows,
            labels,
            dim,
            l2,
        };
        let line = MoreThuenteLineSearch::new();
        let solver = LBFGS::new(line, 10)
            .with_tolerance_grad(1e-6)
            .map_err(|e| SentimentError::Training(e.to_string()))?;
        let result = Executor::new(problem, solver)
            .configure(|s| s.param(vec![0.0; dim + 1]).max_iters(max_iters))
            .run()
            .map_err(|e| SentimentError::Training(format!("L-BFGS failed: {e}")))?;
        let best = result
            .state()
            .get_best_param()
            .cloned()
            .ok_or_else(|| SentimentError::Training("L-BFGS returned no parameters".into()))?;
        Ok(Logistic {
            weights: best[..dim].iter().map(|&w| w as f32).collect(),
            bias: best[dim] as f32,
        })
    }
}

/// P = σ(z).
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

struct Problem<'a> {
    rows: &'a [SparseRow],
    labels: &'a [bool],
    dim: usize,
    l2: f64,
}

impl Problem<'_> {
    fn margin(&self, p: &[f64], row: &[(u32, f32)]) -> f64 {
        let mut z = p[self.dim];
        for &(j, v) in row {
            z += p[j as usize] * v as f64;
        }
        z
    }
}

/// log(1 + e^x) without overflow.
fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// The rows are summed in this many contiguous blocks, in parallel, and the blocks' sums are
/// added in order: a fixed split, so the loss and gradient — and so the fitted model — are
/// the same bit for bit on any number of threads (rayon's own `sum` splits by work
/// stealing, and floating-point addition is not associative).
const BLOCKS: usize = 8;

impl Problem<'_> {
    fn block_len(&self) -> usize {
        self.rows.len().div_ceil(BLOCKS).max(1)
    }
}

impl CostFunction for Problem<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, p: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        let n = self.rows.len() as f64;
        let blocks: Vec<f64> = self
            .rows
            .par_chunks(self.block_len())
            .zip(self.labels.par_chunks(self.block_len()))
            .map(|(rows, labels)| {
                rows.iter()
                    .zip(labels)
                    .map(|(row, &y)| {
                        let z = self.margin(p, row);
                        softplus(if y { -z } else { z })
                    })
                    .sum::<f64>()
            })
            .collect();
        let loss: f64 = blocks.iter().sum();
        let norm: f64 = p[..self.dim].iter().map(|w| w * w).sum();
        Ok(loss / n + 0.5 * self.l2 * norm)
    }
}

impl Gradient for Problem<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, p: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        let n = self.rows.len() as f64;
        let blocks: Vec<Vec<f64>> = self
            .rows
            .par_chunks(self.block_len())
            .zip(self.labels.par_chunks(self.block_len()))
            .map(|(rows, labels)| {
                let mut g = vec![0.0; self.dim + 1];
                for (row, &y) in rows.iter().zip(labels) {
                    let residual = sigmoid(self.margin(p, row)) - if y { 1.0 } else { 0.0 };
                    for &(j, v) in row {
                        g[j as usize] += residual * v as f64;
                    }
                    g[self.dim] += residual;
                }
                g
            })
            .collect();
        let mut grad = vec![0.0; self.dim + 1];
        for b in &blocks {
            grad.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        }
        for (j, g) in grad.iter_mut().enumerate() {
            *g /= n;
            if j < self.dim {
                *g += self.l2 * p[j];
            }
        }
        Ok(grad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_a_linearly_separable_set() {
        let rows: Vec<SparseRow> = vec![
            vec![(0, 1.0)],
            vec![(0, 1.0), (2, 1.0)],
            vec![(1, 1.0)],
            vec![(1, 1.0), (2, 1.0)],
        ];
        let labels = [true, true, false, false];
        let model = Logistic::fit(&rows, &labels, 3, 1e-3, 200).unwrap();
        assert!(model.logit(&[(0, 1.0)]) > 1.0);
        assert!(model.logit(&[(1, 1.0)]) < -1.0);
        // Feature 2 appears once in each class: no weight worth speaking of.
        assert!(model.weights[2].abs() < 0.5);
    }

    #[test]
    fn refuses_an_empty_training_set() {
        assert!(Logistic::fit(&[], &[], 3, 1e-3, 10).is_err());
    }
}
