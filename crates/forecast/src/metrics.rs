//! The accuracy measures of the M4 competition and of probabilistic forecasting.
//!
//! - **sMAPE**: symmetric mean absolute percentage error, `200/h · Σ |y − ŷ| / (|y| + |ŷ|)`.
//!   A step where both the actual and the forecast are zero is a perfect forecast (0), not a
//!   division by zero — sales series have many such days.
//! - **MASE**: mean absolute error scaled by the in-sample mean absolute error of the
//!   seasonal naive forecast at period `m`; undefined (None) for a flat history.
//! - **OWA**: the M4 overall weighted average, the mean of sMAPE and MASE each relative to
//!   Naive2's.
//! - **weighted quantile loss**: `2 · Σ pinball_q(y, q̂) / Σ |y|`, averaged over the quantile
//!   levels (the scaled CRPS approximation of the M5 and GluonTS papers).

/// Symmetric MAPE in percent (0–200).
pub fn smape(actual: &[f64], forecast: &[f64]) -> f64 {
    let h = actual.len().min(forecast.len());
    if h == 0 {
        return 0.0;
    }
    let total: f64 = actual
        .iter()
        .zip(forecast)
        .map(|(&y, &f)| {
            let denominator = y.abs() + f.abs();
            if denominator == 0.0 {
                0.0
            } else {
                (y - f).abs() / denominator
            }
        })
        .sum();
    200.0 * total / h as f64
}

/// The in-sample mean absolute error of the seasonal naive forecast at period `m`, the
/// denominator of MASE; None when the history is too short or flat.
pub fn mase_scale(history: &[f64], m: usize) -> Option<f64> {
    let m = m.max(1);
    if history.len() <= m {
        return None;
    }
    let n = history.len() - m;
    let total: f64 = (m..history.len())
        .map(|t| (history[t] - history[t - m]).abs())
        .sum();
    let scale = total / n as f64;
    (scale > 0.0).then_some(scale)
}

/// Mean absolute scaled error against a precomputed [`mase_scale`].
pub fn mase(actual: &[f64], forecast: &[f64], scale: f64) -> f64 {
    mean_absolute_error(actual, forecast) / scale
}

pub fn mean_absolute_error(actual: &[f64], forecast: &[f64]) -> f64 {
    let h = actual.len().min(forecast.len());
    if h == 0 {
        return 0.0;
    }
    actual
        .iter()
        .zip(forecast)
        .map(|(y, f)| (y - f).abs())
        .sum::<f64>()
        / h as f64
}

/// M4's overall weighted average of a method against Naive2 on the same series.
pub fn owa(smape: f64, mase: f64, naive2_smape: f64, naive2_mase: f64) -> f64 {
    0.5 * (smape / naive2_smape + mase / naive2_mase)
}

/// The pinball loss of quantile forecast `q_hat` at level `q` (0–1).
pub fn pinball(actual: f64, q_hat: f64, q: f64) -> f64 {
    let diff = actual - q_hat;
    if diff >= 0.0 {
        q * diff
    } else {
        (q - 1.0) * diff
    }
}

/// Accumulates the weighted quantile loss over many series and steps.
#[derive(Debug, Clone, Default)]
pub struct QuantileLoss {
    pinball_sum: f64,
    absolute_actual: f64,
    levels: usize,
}

impl QuantileLoss {
    /// Adds one step: the actual and its forecasts at each `(level, value)`.
    pub fn add(&mut self, actual: f64, quantiles: &[(f64, f64)]) {
        for &(level, value) in quantiles {
            self.pinball_sum += pinball(actual, value, level);
        }
        self.levels = self.levels.max(quantiles.len());
        self.absolute_actual += actual.abs();
    }

    /// The weighted quantile loss, averaged over the levels; None before any non-zero actual.
    pub fn value(&self) -> Option<f64> {
        (self.absolute_actual > 0.0 && self.levels > 0)
            .then(|| 2.0 * self.pinball_sum / self.absolute_actual / self.levels as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smape_matches_the_m4_definition_and_tolerates_zero_days() {
        // |100−110| / 210 and |100−90| / 190, times 200/2.
        let expected = 100.0 * (10.0 / 210.0 + 10.0 / 190.0);
        assert!((smape(&[100.0, 100.0], &[110.0, 90.0]) - expected).abs() < 1e-12);
        assert_eq!(smape(&[0.0, 0.0], &[0.0, 0.0]), 0.0);
        assert_eq!(smape(&[0.0], &[5.0]), 200.0);
    }

    #[test]
    fn mase_scales_by_the_in_sample_naive_error() {
        let history = [1.0, 3.0, 2.0, 4.0];
        // |3−1| + |2−3| + |4−2| = 5 over 3 steps.
        let scale = mase_scale(&history, 1).unwrap();
        assert!((scale - 5.0 / 3.0).abs() < 1e-12);
        assert!((mase(&[5.0], &[4.0], scale) - 0.6).abs() < 1e-12);
        assert_eq!(mase_scale(&[2.0, 2.0, 2.0], 1), None);
        assert_eq!(mase_scale(&[2.0], 1), None);
    }

    #[test]
    fn quantile_loss_is_zero_for_exact_quantiles_and_penalises_misses_asymmetrically() {
        let mut exact = QuantileLoss::default();
        exact.add(10.0, &[(0.1, 10.0), (0.5, 10.0), (0.9, 10.0)]);
        assert_eq!(exact.value(), Some(0.0));
        // Under-forecasting the 0.9 quantile costs nine times what over-forecasting does.
        assert!((pinball(10.0, 9.0, 0.9) - 0.9).abs() < 1e-12);
        assert!((pinball(10.0, 11.0, 0.9) - 0.1).abs() < 1e-12);
        assert_eq!(QuantileLoss::default().value(), None);
    }
}
