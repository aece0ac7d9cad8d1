//! The forecasting models and the one trait they share.
//!
//! A [`Forecaster`] turns one series' history into point forecasts for the next `horizon`
//! steps. Local models ([`local_models`]) look at one series at a time; the global model
//! ([`boosted::GlobalBoosted`]) is trained on every series first and then forecasts each —
//! it is the one that learns what a promotion does to sales, because one series holds two
//! Double 11s at most while the catalogue holds hundreds.
//!
//! Local models work on the seasonally adjusted series the way the M4 benchmarks do
//! ([`seasonality`]): a series whose autocorrelation at the seasonal lag passes the 90 % test
//! is divided by (or, when it has zeros, has subtracted) its classical-decomposition indices,
//! forecast, and reseasonalised.

pub mod boosted;
pub mod intermittent;
pub mod naive;
pub mod seasonality;
pub mod smoothing;
pub mod theta;

use chrono::NaiveDate;

use crate::calendar::Promotions;
use crate::ForecastError;

/// One series as a model sees it.
#[derive(Debug, Clone, Copy)]
pub struct History<'a> {
    /// Observations, oldest first, gaps already zero-filled.
    pub values: &'a [f64],
    /// The seasonal period in steps (7 for daily data, 52 for weekly, 1 for none).
    pub period: usize,
    /// The dates of the steps, where the series has them (M4's do not).
    pub calendar: Option<StepCalendar<'a>>,
}

/// Where a series' steps lie in time, for calendar and promotion features.
#[derive(Debug, Clone, Copy)]
pub struct StepCalendar<'a> {
    /// The date of `values[0]` (the Monday of its week for weekly series).
    pub start: NaiveDate,
    /// Days per step: 1 or 7.
    pub step_days: i64,
    pub promotions: &'a Promotions,
}

impl StepCalendar<'_> {
    /// The date step `index` of the series begins on.
    pub fn date_of(&self, index: usize) -> NaiveDate {
        self.start + chrono::Duration::days(self.step_days * index as i64)
    }

    /// The share of the step's days inside a promotion (0 or 1 for daily steps).
    pub fn promotion_share(&self, index: usize) -> f64 {
        let first = self.date_of(index);
        let inside = (0..self.step_days)
            .filter(|&d| {
                self.promotions
                    .is_promotion(first + chrono::Duration::days(d))
            })
            .count();
        inside as f64 / self.step_days as f64
    }
}

impl<'a> History<'a> {
    /// A series without dates.
    pub fn plain(values: &'a [f64], period: usize) -> Self {
        History {
            values,
            period,
            calendar: None,
        }
    }

    /// The same series cut after its first `len` steps (a backtest origin).
    pub fn truncated(&self, len: usize) -> History<'a> {
        History {
            values: &self.values[..len.min(self.values.len())],
            ..*self
        }
    }
}

/// A model that forecasts one series.
///
/// Contract: `forecast` returns exactly `horizon` finite values for any history of at least
/// one step, or an error saying why it cannot; it never looks past `history.values` (a
/// backtest relies on that to be honest). Models of sales may return negative values; the
/// caller clips them where a negative makes no sense.
pub trait Forecaster: Send + Sync {
    /// The model's name in reports and tables ("ets", "theta", …).
    fn name(&self) -> &'static str;
    fn forecast(&self, history: &History<'_>, horizon: usize) -> Result<Vec<f64>, ForecastError>;
}

/// The local models, cheapest first: the candidates a series' model is chosen from by
/// backtest, the baselines first.
pub fn local_models() -> Vec<Box<dyn Forecaster>> {
    vec![
        Box::new(naive::Naive),
        Box::new(naive::SeasonalNaive),
        Box::new(naive::Naive2),
        Box::new(smoothing::Smoothing::Ses),
        Box::new(smoothing::Smoothing::Holt),
        Box::new(smoothing::Smoothing::Damped),
        Box::new(smoothing::Comb),
        Box::new(smoothing::AutoEts),
        Box::new(theta::Theta),
        Box::new(intermittent::Croston),
        Box::new(smoothing::Mstl),
    ]
}

/// Replaces non-finite forecasts (a diverging fit) by the last observation, so one bad
/// series never poisons an aggregate.
pub(crate) fn finite_or_last(mut forecast: Vec<f64>, history: &[f64]) -> Vec<f64> {
    let last = history.last().copied().unwrap_or(0.0);
    for value in &mut forecast {
        if !value.is_finite() {
            *value = last;
        }
    }
    forecast
}

pub(crate) fn require_history(history: &History<'_>) -> Result<(), ForecastError> {
    if history.values.is_empty() {
        Err(ForecastError::NoData("a series with no observations"))
    } else {
        Ok(())
    }
}
