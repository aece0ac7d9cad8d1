//! The baselines every other model must beat: naive, seasonal naive and M4's Naive2 (naive
//! on the seasonally adjusted series).

use super::seasonality::Seasonality;
use super::{require_history, Forecaster, History};
use crate::ForecastError;

/// The last observation, repeated.
pub struct Naive;

impl Forecaster for Naive {
    fn name(&self) -> &'static str {
        "naive"
    }
    fn forecast(&self, history: &History<'_>, horizon: usize) -> Result<Vec<f64>, ForecastError> {
        require_history(history)?;
        let last = *history.values.last().expect("checked non-empty");
        Ok(vec![last; horizon])
    }
}

/// The observation one season earlier (naive when the history is shorter than a season).
pub struct SeasonalNaive;

impl Forecaster for SeasonalNaive {
    fn name(&self) -> &'static str {
        "seasonal_naive"
    }
    fn forecast(&self, history: &History<'_>, horizon: usize) -> Result<Vec<f64>, ForecastError> {
        require_history(history)?;
        let values = history.values;
        let m = history.period.max(1);
        if values.len() < m {
            return Naive.forecast(history, horizon);
        }
        let last_season = &values[values.len() - m..];
        Ok((0..horizon).map(|h| last_season[h % m]).collect())
    }
}

/// Naive on the seasonally adjusted series, reseasonalised (the M4 benchmark's Naive2).
pub struct Naive2;

impl Forecaster for Naive2 {
    fn name(&self) -> &'static str {
        "naive2"
    }
    fn forecast(&self, history: &History<'_>, horizon: usize) -> Result<Vec<f64>, ForecastError> {
        require_history(history)?;
        let seasonality = Seasonality::detect(history.values, history.period);
        let adjusted = seasonality.adjust(history.values);
        let last = *adjusted.last().expect("checked non-empty");
        Ok(seasonality.reseasonalise(vec![last; horizon], history.values.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seasonal_naive_repeats_the_last_season() {
        let values = [1.0, 2.0, 3.0, 10.0, 20.0, 30.0];
        let f = SeasonalNaive
            .forecast(&History::plain(&values, 3), 4)
            .unwrap();
        assert_eq!(f, vec![10.0, 20.0, 30.0, 10.0]);
        let f = Naive.forecast(&History::plain(&values, 3), 2).unwrap();
        assert_eq!(f, vec![30.0, 30.0]);
    }
}
