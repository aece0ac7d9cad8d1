//! Isotonic calibration: a non-decreasing step function from a model's raw probability to
//! the observed rate, fitted by pool-adjacent-violators on held-out customers.
//!
//! Written here because it is a dozen lines and no maintained crate offers it on plain
//! slices; it keeps the trees' ranking (ROC-AUC is unchanged up to ties) and fixes their
//! level, which drifts when the training window's season differs from the scored one.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isotonic {
    /// Upper raw score of each block, increasing.
    upper: Vec<f64>,
    /// Calibrated probability of each block, non-decreasing.
    value: Vec<f64>,
}

impl Isotonic {
    /// Fits on `(raw, outcome)` pairs. With no pairs, the identity.
    pub fn fit(raw: &[f64], outcome: &[bool]) -> Isotonic {
        let mut pairs: Vec<(f64, f64)> = raw
            .iter()
            .zip(outcome)
            .map(|(&r, &y)| (r, f64::from(u8::from(y))))
            .collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Blocks of (upper raw score, sum of outcomes, count); a block whose mean is below
        // its predecessor's merges into it until the means are in order.
        let mut blocks: Vec<(f64, f64, f64)> = Vec::new();
        for (r, y) in pairs {
            blocks.push((r, y, 1.0));
            while blocks.len() > 1 {
                let (u, s, n) = blocks[blocks.len() - 1];
                let (_, ps, pn) = blocks[blocks.len() - 2];
                if ps / pn < s / n {
                    break;
                }
                blocks.pop();
                let last = blocks.last_mut().expect("two blocks");
                *last = (u, ps + s, pn + n);
            }
        }
        Isotonic {
            upper: blocks.iter().map(|b| b.0).collect(),
            value: blocks.iter().map(|b| b.1 / b.2).collect(),
        }
    }

    /// The calibrated probability of a raw score: its block's rate, kept off 0 and 1 so a
    /// log-loss stays finite.
    pub fn apply(&self, raw: f64) -> f64 {
        if self.upper.is_empty() {
            return raw;
        }
        let i = self
            .upper
            .partition_point(|&u| u < raw)
            .min(self.value.len() - 1);
        self.value[i].clamp(1e-4, 1.0 - 1e-4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_violators_and_stays_monotone() {
        let raw = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
        let y = [false, true, false, false, true, true];
        let iso = Isotonic::fit(&raw, &y);
        // 0.1 alone (0), then 0.2–0.4 pooled (1/3), then 0.5–0.6 (1).
        assert!((iso.apply(0.1) - 1e-4).abs() < 1e-12);
        assert!((iso.apply(0.25) - 1.0 / 3.0).abs() < 1e-12);
        assert!((iso.apply(0.45) - (1.0 - 1e-4)).abs() < 1e-12);
        let mut last = 0.0;
        for k in 0..=100 {
            let v = iso.apply(k as f64 / 100.0);
            assert!(v >= last);
            last = v;
        }
    }
}
