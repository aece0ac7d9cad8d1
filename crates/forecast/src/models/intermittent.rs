//! Croston's method with the Syntetos–Boylan bias correction (SBA) for intermittent demand —
//! a single golden product on one platform sells on a few days of the month, where smoothing
//! the zeros with the sales understates the size of a sale and overstates how regular it is.
//! Sizes and the intervals between sales are smoothed separately (α = 0.1, the textbook
//! constant statsforecast's `CrostonSBA` also uses) and the rate is size / interval · (1 − α/2).

use super::theta::SimpleSmoothing;
use super::{require_history, Forecaster, History};
use crate::ForecastError;

const ALPHA: f64 = 0.1;

pub struct Croston;

impl Forecaster for Croston {
    fn name(&self) -> &'static str {
        "croston_sba"
    }
    fn forecast(&self, history: &History<'_>, horizon: usize) -> Result<Vec<f64>, ForecastError> {
        require_history(history)?;
        let mut sizes = Vec::new();
        let mut intervals = Vec::new();
        let mut since = 0usize;
        for &v in history.values {
            since += 1;
            if v != 0.0 {
                sizes.push(v);
                intervals.push(since as f64);
                since = 0;
            }
        }
        if sizes.is_empty() {
            return Ok(vec![0.0; horizon]);
        }
        let size = SimpleSmoothing::with_alpha(&sizes, ALPHA);
        let interval = SimpleSmoothing::with_alpha(&intervals, ALPHA).max(1.0);
        Ok(vec![(1.0 - ALPHA / 2.0) * size / interval; horizon])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sale_of_three_every_third_day_is_a_rate_near_one() {
        let values: Vec<f64> = (0..60)
            .map(|t| if t % 3 == 2 { 3.0 } else { 0.0 })
            .collect();
        let f = Croston.forecast(&History::plain(&values, 1), 2).unwrap();
        assert!((f[0] - 0.95).abs() < 1e-9, "{f:?}");
        assert_eq!(f[0], f[1]);
        assert_eq!(
            Croston
                .forecast(&History::plain(&[0.0, 0.0], 1), 1)
                .unwrap(),
            vec![0.0]
        );
    }
}
