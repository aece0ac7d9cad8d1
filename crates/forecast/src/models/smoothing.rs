//! Exponential smoothing through `augurs-ets` (a Rust port of statsforecast's ETS): Holt's
//! linear and damped trend (simple smoothing is fitted in `theta`, see [`Smoothing::Ses`]) on the seasonally adjusted series as in the M4 benchmarks,
//! their combination (M4's "Comb"), the AICc-selected AutoETS, and MSTL — the multiple
//! seasonal decomposition (`augurs-mstl`, weekly and yearly cycles of daily data) with an
//! AutoETS trend.

use augurs_core::{Fit, Predict};
use augurs_ets::AutoETS;
use augurs_mstl::MSTLModel;

use super::seasonality::Seasonality;
use super::{finite_or_last, require_history, Forecaster, History};
use crate::ForecastError;

/// One fixed exponential smoothing form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Smoothing {
    /// Simple exponential smoothing: a level.
    Ses,
    /// Holt: level and trend.
    Holt,
    /// Holt with a damped trend.
    Damped,
}

impl Smoothing {
    fn model(self) -> AutoETS {
        let spec = match self {
            Smoothing::Ses => "ANN",
            Smoothing::Holt | Smoothing::Damped => "AAN",
        };
        let model = AutoETS::new(1, spec).expect("a valid ETS spec");
        match self {
            Smoothing::Ses => model,
            Smoothing::Holt => model.damped(false).expect("a trend model"),
            Smoothing::Damped => model.damped(true).expect("a trend model"),
        }
    }
}

impl Forecaster for Smoothing {
    fn name(&self) -> &'static str {
        match self {
            Smoothing::Ses => "ses",
            Smoothing::Holt => "holt",
            Smoothing::Damped => "damped",
        }
    }
    fn forecast(&self, history: &History<'_>, horizon: usize) -> Result<Vec<f64>, ForecastError> {
        if *self == Smoothing::Ses {
            // augurs' AutoETS refuses the level-only "ANN" form (no candidate fits); SES is the
            // least-squares level of `theta`, with the same seasonal adjustment.
            require_history(history)?;
            let seasonality = Seasonality::detect(history.values, history.period);
            let level =
                super::theta::SimpleSmoothing::fit(&seasonality.adjust(history.values)).level;
            return Ok(finite_or_last(
                seasonality.reseasonalise(vec![level; horizon], history.values.len()),
                history.values,
            ));
        }
        adjusted_ets(history, horizon, &self.model(), self.name())
    }
}

/// The mean of SES, Holt and damped trend (M4's "Comb" benchmark).
pub struct Comb;

impl Forecaster for Comb {
    fn name(&self) -> &'static str {
        "comb"
    }
    fn forecast(&self, history: &History<'_>, horizon: usize) -> Result<Vec<f64>, ForecastError> {
        let parts = [Smoothing::Ses, Smoothing::Holt, Smoothing::Damped]
            .iter()
            .map(|m| m.forecast(history, horizon))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((0..horizon)
            .map(|h| parts.iter().map(|p| p[h]).sum::<f64>() / parts.len() as f64)
            .collect())
    }
}

/// ETS with error, trend and damping chosen by AICc (statsforecast's AutoETS search), on the
/// seasonally adjusted series.
pub struct AutoEts;

impl Forecaster for AutoEts {
    fn name(&self) -> &'static str {
        "ets"
    }
    fn forecast(&self, history: &History<'_>, horizon: usize) -> Result<Vec<f64>, ForecastError> {
        adjusted_ets(history, horizon, &AutoETS::non_seasonal(), self.name())
    }
}

fn adjusted_ets(
    history: &History<'_>,
    horizon: usize,
    model: &AutoETS,
    name: &'static str,
) -> Result<Vec<f64>, ForecastError> {
    require_history(history)?;
    let seasonality = Seasonality::detect(history.values, history.period);
    let adjusted = seasonality.adjust(history.values);
    let forecast = ets_forecast(model, &adjusted, horizon, name)?;
    Ok(finite_or_last(
        seasonality.reseasonalise(forecast, history.values.len()),
        history.values,
    ))
}

fn ets_forecast(
    model: &AutoETS,
    values: &[f64],
    horizon: usize,
    name: &'static str,
) -> Result<Vec<f64>, ForecastError> {
    if values.iter().all(|&v| v == values[0]) {
        // A constant series has no error to fit; ETS's optimiser divides by its variance.
        return Ok(vec![values[0]; horizon]);
    }
    let fitted = model.fit(values).map_err(|e| ForecastError::Model {
        model: name,
        message: e.to_string(),
    })?;
    let forecast = fitted
        .predict(horizon, None)
        .map_err(|e| ForecastError::Model {
            model: name,
            message: e.to_string(),
        })?;
    Ok(forecast.point)
}

/// MSTL: the series' seasonal cycles (the period, and the year for daily data of at least
/// two years) taken out by repeated STL, the rest forecast by AutoETS.
pub struct Mstl;

impl Mstl {
    fn periods(history: &History<'_>) -> Vec<usize> {
        let n = history.values.len();
        let mut periods = Vec::new();
        if history.period > 1 && n >= 2 * history.period {
            periods.push(history.period);
        }
        if let Some(calendar) = history.calendar {
            let year = (365 / calendar.step_days) as usize;
            if year > history.period && n >= 2 * year {
                periods.push(year);
            }
        }
        periods
    }
}

impl Forecaster for Mstl {
    fn name(&self) -> &'static str {
        "mstl"
    }
    fn forecast(&self, history: &History<'_>, horizon: usize) -> Result<Vec<f64>, ForecastError> {
        require_history(history)?;
        let periods = Self::periods(history);
        if periods.is_empty() {
            return Err(ForecastError::Model {
                model: "mstl",
                message: "no seasonal cycle fits twice into the history".into(),
            });
        }
        if history.values.iter().all(|&v| v == history.values[0]) {
            return Ok(vec![history.values[0]; horizon]);
        }
        let model = MSTLModel::new(periods, AutoETS::non_seasonal().into_trend_model());
        let error = |e: &dyn std::fmt::Display| ForecastError::Model {
            model: "mstl",
            message: e.to_string(),
        };
        let fitted = model.fit(history.values).map_err(|e| error(&e))?;
        let forecast = fitted.predict(horizon, None).map_err(|e| error(&e))?;
        Ok(finite_or_last(forecast.point, history.values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holt_follows_a_trend_that_ses_does_not() {
        let values: Vec<f64> = (0..40)
            .map(|t| 10.0 + 2.0 * t as f64 + (t % 3) as f64)
            .collect();
        let history = History::plain(&values, 1);
        let ses = Smoothing::Ses.forecast(&history, 5).unwrap();
        let holt = Smoothing::Holt.forecast(&history, 5).unwrap();
        assert!(holt[4] > ses[4] + 5.0, "holt {holt:?} ses {ses:?}");
        assert!(
            (holt[4] - (10.0 + 2.0 * 44.0 + 1.0)).abs() < 6.0,
            "{holt:?}"
        );
        let comb = Comb.forecast(&history, 5).unwrap();
        assert!(comb[4] > ses[4] && comb[4] < holt[4] + 1e-9);
    }

    #[test]
    fn mstl_carries_the_weekly_cycle_forward() {
        let pattern = [5.0, 5.0, 5.0, 5.0, 8.0, 15.0, 12.0];
        let values: Vec<f64> = (0..70).map(|t| pattern[t % 7] + 0.01 * t as f64).collect();
        let f = Mstl.forecast(&History::plain(&values, 7), 7).unwrap();
        // Day 70 is a Monday-like day (position 0), day 75 the peak.
        assert!(f[5] > f[0] + 6.0, "{f:?}");
        assert!(Mstl.forecast(&History::plain(&values, 1), 7).is_err());
    }
}
