//! Seasonal adjustment as the M4 benchmarks do it (`Benchmarks and Evaluation.R`): a series
//! is seasonal when its autocorrelation at the period beats the 90 % limit
//! `1.645 / √n · √(1 + 2 Σ_{k<m} acf_k²)`, and its seasonal indices come from a classical
//! decomposition (centred moving average). Multiplicative when every observation is
//! positive; additive otherwise, because sales series have zero days a ratio cannot adjust.

/// A series' seasonal indices, or none.
#[derive(Debug, Clone, PartialEq)]
pub struct Seasonality {
    /// One index per position in the season (`t % m`); empty when not seasonal.
    indices: Vec<f64>,
    multiplicative: bool,
}

impl Seasonality {
    pub fn none() -> Self {
        Seasonality {
            indices: Vec::new(),
            multiplicative: true,
        }
    }

    /// Tests `values` for seasonality at `period` and, when seasonal, decomposes it.
    pub fn detect(values: &[f64], period: usize) -> Self {
        if period <= 1 || values.len() < 3 * period || !is_seasonal(values, period) {
            return Seasonality::none();
        }
        let multiplicative = values.iter().all(|&v| v > 0.0);
        match classical_indices(values, period, multiplicative) {
            Some(indices) => Seasonality {
                indices,
                multiplicative,
            },
            None => Seasonality::none(),
        }
    }

    pub fn is_seasonal(&self) -> bool {
        !self.indices.is_empty()
    }

    /// The series with its seasonal pattern taken out.
    pub fn adjust(&self, values: &[f64]) -> Vec<f64> {
        values
            .iter()
            .enumerate()
            .map(|(t, &v)| self.remove(v, t))
            .collect()
    }

    /// Puts the pattern back into forecasts of the steps after a history of `history_len`.
    pub fn reseasonalise(&self, forecast: Vec<f64>, history_len: usize) -> Vec<f64> {
        forecast
            .into_iter()
            .enumerate()
            .map(|(h, v)| self.restore(v, history_len + h))
            .collect()
    }

    fn remove(&self, value: f64, t: usize) -> f64 {
        match self.index(t) {
            None => value,
            Some(i) if self.multiplicative => value / i,
            Some(i) => value - i,
        }
    }

    fn restore(&self, value: f64, t: usize) -> f64 {
        match self.index(t) {
            None => value,
            Some(i) if self.multiplicative => value * i,
            Some(i) => value + i,
        }
    }

    fn index(&self, t: usize) -> Option<f64> {
        (!self.indices.is_empty()).then(|| self.indices[t % self.indices.len()])
    }
}

/// Autocorrelations at lags 1..=max_lag.
pub fn autocorrelations(values: &[f64], max_lag: usize) -> Vec<f64> {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let variance: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
    (1..=max_lag)
        .map(|lag| {
            if variance == 0.0 || lag >= n {
                return 0.0;
            }
            let covariance: f64 = (lag..n)
                .map(|t| (values[t] - mean) * (values[t - lag] - mean))
                .sum();
            covariance / variance
        })
        .collect()
}

fn is_seasonal(values: &[f64], period: usize) -> bool {
    let acf = autocorrelations(values, period);
    let squares: f64 = acf[..period - 1].iter().map(|a| a * a).sum();
    let limit = 1.645 / (values.len() as f64).sqrt() * (1.0 + 2.0 * squares).sqrt();
    acf[period - 1].abs() > limit
}

/// The classical decomposition's seasonal figure: the mean detrended value per season
/// position, the trend a centred moving average of order `period` (2×m for an even m).
fn classical_indices(values: &[f64], period: usize, multiplicative: bool) -> Option<Vec<f64>> {
    let trend = centred_moving_average(values, period);
    let mut sums = vec![0.0; period];
    let mut counts = vec![0usize; period];
    for (t, (&v, tr)) in values.iter().zip(&trend).enumerate() {
        let Some(tr) = *tr else { continue };
        let detrended = if multiplicative {
            if tr <= 0.0 {
                continue;
            }
            v / tr
        } else {
            v - tr
        };
        sums[t % period] += detrended;
        counts[t % period] += 1;
    }
    if counts.contains(&0) {
        return None;
    }
    let mut figure: Vec<f64> = sums
        .iter()
        .zip(&counts)
        .map(|(s, &c)| s / c as f64)
        .collect();
    let mean = figure.iter().sum::<f64>() / period as f64;
    for value in &mut figure {
        if multiplicative {
            *value /= mean;
        } else {
            *value -= mean;
        }
    }
    if multiplicative && figure.iter().any(|&f| f <= 0.0 || !f.is_finite()) {
        return None;
    }
    Some(figure)
}

fn centred_moving_average(values: &[f64], period: usize) -> Vec<Option<f64>> {
    let n = values.len();
    let half = period / 2;
    (0..n)
        .map(|t| {
            if t < half || t + half >= n {
                return None;
            }
            if period % 2 == 1 {
                let window = &values[t - half..=t + half];
                Some(window.iter().sum::<f64>() / period as f64)
            } else {
                // A 2×m moving average: the end points count half.
                let inner: f64 = values[t - half + 1..t + half].iter().sum();
                let ends = 0.5 * (values[t - half] + values[t + half]);
                Some((inner + ends) / period as f64)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seasonal_series(cycles: usize) -> Vec<f64> {
        let pattern = [1.5, 1.0, 0.5, 1.0];
        (0..cycles * 4)
            .map(|t| (100.0 + t as f64) * pattern[t % 4])
            .collect()
    }

    #[test]
    fn a_strongly_seasonal_series_is_detected_and_adjusted_flat() {
        let values = seasonal_series(8);
        let seasonality = Seasonality::detect(&values, 4);
        assert!(seasonality.is_seasonal());
        let adjusted = seasonality.adjust(&values);
        // The pattern is gone: adjacent adjusted values differ by about the trend's 1/step.
        for pair in adjusted.windows(2).skip(2).take(20) {
            assert!((pair[1] - pair[0] - 1.0).abs() < 6.0, "{pair:?}");
        }
        let back = seasonality.reseasonalise(vec![adjusted[3]], 3);
        assert!((back[0] - values[3]).abs() < 1e-9);
    }

    #[test]
    fn noise_and_short_series_are_not_seasonal() {
        let trend: Vec<f64> = (0..40).map(|t| t as f64).collect();
        assert!(!Seasonality::detect(&trend[..10], 4).is_seasonal());
        assert!(!Seasonality::detect(&trend, 1).is_seasonal());
        let flat = vec![5.0; 40];
        assert!(!Seasonality::detect(&flat, 4).is_seasonal());
    }
}
