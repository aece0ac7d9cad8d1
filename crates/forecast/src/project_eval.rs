//! `eval forecast` on a project: a rolling-origin evaluation over the last `windows` horizons
//! of its sales. At each origin everything — selection backtest, global model, bands — is
//! refitted on the days before it, and the horizon after it is scored per hierarchy level and
//! per method: every candidate model, the backtest selection, and the reconciled forecast
//! with its bands. Promotion days are scored apart, so a model that misses the 618 peak
//! shows even when it is good on ordinary days.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::calendar::Promotions;
use crate::metrics::{mase_scale, smape, QuantileLoss};
use crate::project::{forecast_sales, ForecastSettings, DAILY_PERIOD};
use crate::sales::{Level, Sales};
use crate::ForecastError;

/// One method's scores on one level, over every series and origin.
#[derive(Debug, Clone, Serialize)]
pub struct MethodScore {
    pub level: Level,
    pub method: String,
    /// Series × origins scored.
    pub forecasts: usize,
    pub mase: f64,
    pub smape: f64,
    /// MASE over promotion days and over the other days (None when the horizon has none).
    pub mase_promotion_days: Option<f64>,
    pub mase_other_days: Option<f64>,
    /// Weighted quantile loss of P10/P50/P90 and the share of actuals inside P10–P90
    /// (the reconciled forecast only: the other methods have no bands).
    pub wql: Option<f64>,
    pub coverage_80: Option<f64>,
}

/// The evaluation's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectEval {
    pub origins: Vec<String>,
    pub horizon: usize,
    pub promotion_days: usize,
    pub scores: Vec<MethodScore>,
    pub seconds: f64,
}

#[derive(Default)]
struct Accumulator {
    forecasts: usize,
    mase: f64,
    smape: f64,
    promo: (f64, usize),
    other: (f64, usize),
    quantiles: Option<QuantileLoss>,
    inside: (usize, usize),
}

impl Accumulator {
    fn add(&mut self, actual: &[f64], forecast: &[f64], scale: f64, promotion: &[bool]) {
        self.forecasts += 1;
        let errors: Vec<f64> = actual
            .iter()
            .zip(forecast)
            .map(|(y, f)| (y - f).abs() / scale)
            .collect();
        self.mase += errors.iter().sum::<f64>() / errors.len() as f64;
        self.smape += smape(actual, forecast);
        for (e, &p) in errors.iter().zip(promotion) {
            let slot = if p { &mut self.promo } else { &mut self.other };
            slot.0 += e;
            slot.1 += 1;
        }
    }

    fn add_bands(&mut self, actual: &[f64], bands: &[[f64; 3]]) {
        let loss = self.quantiles.get_or_insert_with(QuantileLoss::default);
        for (y, b) in actual.iter().zip(bands) {
            loss.add(*y, &[(0.1, b[0]), (0.5, b[1]), (0.9, b[2])]);
            self.inside.1 += 1;
            if b[0] <= *y && *y <= b[2] {
                self.inside.0 += 1;
            }
        }
    }

    fn score(self, level: Level, method: String) -> MethodScore {
        let n = self.forecasts.max(1) as f64;
        let mean = |(sum, count): (f64, usize)| (count > 0).then(|| sum / count as f64);
        MethodScore {
            level,
            method,
            forecasts: self.forecasts,
            mase: self.mase / n,
            smape: self.smape / n,
            mase_promotion_days: mean(self.promo),
            mase_other_days: mean(self.other),
            wql: self.quantiles.and_then(|q| q.value()),
            coverage_80: (self.inside.1 > 0).then(|| self.inside.0 as f64 / self.inside.1 as f64),
        }
    }
}

/// Scores `windows` consecutive horizons ending at the last day of sales.
pub fn evaluate_project(
    sales: &Sales,
    promotions: &Promotions,
    settings: &ForecastSettings,
    windows: usize,
) -> Result<ProjectEval, ForecastError> {
    let started = std::time::Instant::now();
    let h = settings.horizon;
    if sales.days < h * (windows + settings.backtest_windows) + 2 * DAILY_PERIOD {
        return Err(ForecastError::NoData(
            "too few days of sales for the evaluation's windows (lower --windows or the horizon)",
        ));
    }
    let mut acc: BTreeMap<(Level, usize, String), Accumulator> = BTreeMap::new();
    let mut origins = Vec::new();
    let mut promotion_days = 0;
    for k in 0..windows {
        let origin = sales.days - h * (windows - k);
        let pf = forecast_sales(sales, promotions, settings, origin, true)?;
        origins.push(pf.first_date.to_string());
        let promotion: Vec<bool> = (0..h)
            .map(|d| promotions.is_promotion(pf.first_date + chrono::Duration::days(d as i64)))
            .collect();
        promotion_days += promotion.iter().filter(|&&p| p).count();
        for f in &pf.forecasts {
            let s = &sales.series[f.series];
            if origin < s.start + 2 * DAILY_PERIOD {
                continue; // too new to judge a model on
            }
            let history = &s.units[..origin - s.start];
            let actual = &s.units[origin - s.start..origin - s.start + h];
            let scale = mase_scale(history, DAILY_PERIOD)
                .or_else(|| mase_scale(history, 1))
                .unwrap_or(1.0);
            let level = s.key.level;
            let mut add = |rank: usize, method: &str, forecast: &[f64]| {
                acc.entry((level, rank, method.to_string()))
                    .or_default()
                    .add(actual, forecast, scale, &promotion);
            };
            for (m, forecast) in pf.all_models[f.series].iter().enumerate() {
                if let Some(forecast) = forecast {
                    add(m, pf.backtest.models[m], forecast);
                }
            }
            add(100, "selection (backtest)", &f.base);
            add(101, "selection, reconciled", &f.reconciled);
            acc.get_mut(&(level, 101, "selection, reconciled".to_string()))
                .expect("just added")
                .add_bands(actual, &f.quantiles);
        }
    }
    let scores = acc
        .into_iter()
        .map(|((level, _, method), a)| a.score(level, method))
        .collect();
    Ok(ProjectEval {
        origins,
        horizon: h,
        promotion_days,
        scores,
        seconds: started.elapsed().as_secs_f64(),
    })
}
