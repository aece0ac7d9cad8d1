//! The Theta method (Assimakopoulos & Nikolopoulos 2000) in the form the M4 benchmarks use
//! (Hyndman & Billah's equivalence, R's `forecast::thetaf`): simple exponential smoothing
//! plus half the slope of a linear trend, `ŷ_{n+h} = SES + b/2 · (h − 1 + (1 − (1 − α)^n)/α)`,
//! on the seasonally adjusted series.
//!
//! Written here rather than taken from `augurs-ets` because Theta needs the fitted smoothing
//! parameter α, which augurs does not expose, and SES fits in a few lines: for a fixed α the
//! squared one-step error is quadratic in the initial level, so the level has a closed form
//! and only α needs a one-dimensional search.

use super::seasonality::Seasonality;
use super::{finite_or_last, require_history, Forecaster, History};
use crate::ForecastError;

pub struct Theta;

impl Forecaster for Theta {
    fn name(&self) -> &'static str {
        "theta"
    }
    fn forecast(&self, history: &History<'_>, horizon: usize) -> Result<Vec<f64>, ForecastError> {
        require_history(history)?;
        let seasonality = Seasonality::detect(history.values, history.period);
        let y = seasonality.adjust(history.values);
        let n = y.len();
        let ses = SimpleSmoothing::fit(&y);
        let drift = least_squares_slope(&y) / 2.0;
        let alpha = ses.alpha.max(1e-10);
        let carry = (1.0 - (1.0 - alpha).powi(n as i32)) / alpha;
        let forecast = (0..horizon)
            .map(|h| ses.level + drift * (h as f64 + carry))
            .collect();
        Ok(finite_or_last(
            seasonality.reseasonalise(forecast, n),
            history.values,
        ))
    }
}

/// Simple exponential smoothing fitted by least squares on α and the initial level.
#[derive(Debug, Clone, Copy)]
pub struct SimpleSmoothing {
    pub alpha: f64,
    /// The level after the last observation: every step's forecast.
    pub level: f64,
}

impl SimpleSmoothing {
    pub fn fit(y: &[f64]) -> Self {
        if y.len() < 2 {
            return SimpleSmoothing {
                alpha: 0.5,
                level: y.first().copied().unwrap_or(0.0),
            };
        }
        // Golden-section search on α ∈ [1e-4, 0.9999]; the SSE is unimodal in practice.
        let ratio = (5f64.sqrt() - 1.0) / 2.0;
        let (mut lo, mut hi) = (1e-4, 0.9999);
        let mut a = hi - ratio * (hi - lo);
        let mut b = lo + ratio * (hi - lo);
        let (mut fa, mut fb) = (sse_at(y, a).0, sse_at(y, b).0);
        for _ in 0..40 {
            if fa < fb {
                hi = b;
                b = a;
                fb = fa;
                a = hi - ratio * (hi - lo);
                fa = sse_at(y, a).0;
            } else {
                lo = a;
                a = b;
                fa = fb;
                b = lo + ratio * (hi - lo);
                fb = sse_at(y, b).0;
            }
        }
        let alpha = (lo + hi) / 2.0;
        let (_, level) = sse_at(y, alpha);
        SimpleSmoothing { alpha, level }
    }

    /// SES with a fixed α and the first observation as the initial level (Croston's parts).
    pub fn with_alpha(y: &[f64], alpha: f64) -> f64 {
        let mut level = y.first().copied().unwrap_or(0.0);
        for &v in &y[1.min(y.len())..] {
            level += alpha * (v - level);
        }
        level
    }
}

/// The SSE of one-step forecasts for `alpha` at its best initial level, and the final level.
///
/// The level after step t is `a_t + d^{t+1} · ℓ₀` (d = 1 − α), so each one-step error
/// `y_t − a_{t−1} − d^t ℓ₀` is affine in ℓ₀ and the best ℓ₀ is a ratio of two sums.
fn sse_at(y: &[f64], alpha: f64) -> (f64, f64) {
    let d = 1.0 - alpha;
    // Pass 1: with ℓ₀ = 0, the errors' constant parts and their ℓ₀ coefficients.
    let (mut a, mut weight) = (0.0, 1.0);
    let (mut cross, mut square) = (0.0, 0.0);
    for &v in y {
        let constant = v - a;
        cross += constant * weight;
        square += weight * weight;
        a = alpha * v + d * a;
        weight *= d;
    }
    let initial = if square > 0.0 { cross / square } else { y[0] };
    // Pass 2: the SSE and final level at the best ℓ₀.
    let mut level = initial;
    let mut sse = 0.0;
    for &v in y {
        let error = v - level;
        sse += error * error;
        level += alpha * error;
    }
    (sse, level)
}

/// The slope of the least-squares line through `(t, y_t)`.
pub fn least_squares_slope(y: &[f64]) -> f64 {
    let n = y.len() as f64;
    if y.len() < 2 {
        return 0.0;
    }
    let mean_t = (n - 1.0) / 2.0;
    let mean_y = y.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (t, &v) in y.iter().enumerate() {
        let dt = t as f64 - mean_t;
        num += dt * (v - mean_y);
        den += dt * dt;
    }
    num / den
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ses_recovers_a_level_and_theta_adds_half_the_trend() {
        let flat: Vec<f64> = (0..50)
            .map(|t| 20.0 + if t % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let ses = SimpleSmoothing::fit(&flat);
        assert!((ses.level - 20.0).abs() < 1.0, "{ses:?}");
        assert!(ses.alpha < 0.3, "{ses:?}");

        let trend: Vec<f64> = (0..50).map(|t| 2.0 * t as f64).collect();
        assert!((least_squares_slope(&trend) - 2.0).abs() < 1e-9);
        let f = Theta.forecast(&History::plain(&trend, 1), 3).unwrap();
        // SES on a clean line tracks it (α → 1, level = 98); half the slope per step is added.
        assert!((f[0] - 99.0).abs() < 1.5, "{f:?}");
        assert!((f[2] - f[0] - 2.0).abs() < 1e-6, "{f:?}");
    }
}
