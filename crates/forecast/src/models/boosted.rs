//! The global model: one gradient-boosted tree ensemble (forust, as the matcher and the
//! propensity classifiers use) trained on every series at once, forecasting recursively.
//!
//! Each training row is one step of one series, described in units of that series' recent
//! level — so a phone that sells 300 a week and a case that sells 3 teach the trees the same
//! shapes: lags, the last season, the mean of the last weeks, the position in the week and
//! year, and which promotion the step falls in. The trees learn "Double 11 triples a week"
//! from every product's Double 11 at once, which no single series can.
//!
//! The level is the mean of the last `window` steps before the row's step (the whole history
//! before it when those are all zero), so a row uses only what was known one step earlier
//! and forecasting can rebuild every feature from the history alone.

use chrono::Datelike;
use forust_ml::gradientbooster::GradientBooster;
use forust_ml::objective::ObjectiveType;
use forust_ml::Matrix;

use super::{finite_or_last, require_history, Forecaster, History};
use crate::ForecastError;

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct BoostedSettings {
    pub iterations: usize,
    pub learning_rate: f32,
    pub max_depth: usize,
    /// At most this many training rows (every k-th row beyond it, newest kept).
    pub max_rows: usize,
    pub parallel: bool,
}

impl Default for BoostedSettings {
    fn default() -> Self {
        BoostedSettings {
            iterations: 200,
            learning_rate: 0.05,
            max_depth: 5,
            max_rows: 400_000,
            parallel: true,
        }
    }
}

/// The feature layout shared by training and forecasting: which lags, and how many
/// promotion columns.
#[derive(Debug, Clone)]
struct Layout {
    lags: Vec<usize>,
    window: usize,
    period: usize,
    promotions: usize,
}

impl Layout {
    fn for_history(history: &History<'_>) -> Self {
        let period = history.period.max(1);
        let daily = history.calendar.is_some_and(|c| c.step_days == 1);
        let mut lags: Vec<usize> = if daily {
            (1..=14).chain([21, 28]).collect()
        } else {
            (1..=8).collect()
        };
        for seasonal in [period, 52] {
            if seasonal > 1 && !lags.contains(&seasonal) && (!daily || seasonal == period) {
                lags.push(seasonal);
            }
        }
        let window = if daily { 28 } else { 8 };
        Layout {
            lags,
            window,
            period,
            promotions: history.calendar.map_or(0, |c| c.promotions.len()),
        }
    }

    fn columns(&self) -> usize {
        // lags, two rolling means, log level, season position, month, week of year,
        // day of week, then one column per promotion.
        self.lags.len() + 2 + 1 + 4 + self.promotions
    }

    /// The features of step `t` from `values[..t]` (the step itself unseen), or None when
    /// nothing before it is known; also returns the level the row is scaled by.
    fn row(
        &self,
        history: &History<'_>,
        values: &[f64],
        t: usize,
        out: &mut Vec<f64>,
    ) -> Option<f64> {
        let level = level_before(values, t, self.window)?;
        for &lag in &self.lags {
            out.push(if t >= lag {
                values[t - lag] / level
            } else {
                f64::NAN
            });
        }
        let short = self.window.min(t).clamp(1, 4);
        out.push(values[t - short..t].iter().sum::<f64>() / short as f64 / level);
        let season = self.period.max(2).min(t);
        out.push(values[t - season..t].iter().sum::<f64>() / season as f64 / level);
        out.push(level.ln());
        out.push((t % self.period) as f64);
        match history.calendar {
            Some(calendar) => {
                let date = calendar.date_of(t);
                out.push(f64::from(date.month()));
                out.push(f64::from(date.iso_week().week()));
                out.push(f64::from(date.weekday().num_days_from_monday()));
                let first = date;
                for (i, _) in calendar.promotions.names().enumerate() {
                    let inside = (0..calendar.step_days)
                        .filter(|&d| {
                            let day = first + chrono::Duration::days(d);
                            calendar.promotions.active_on(day).nth(i).unwrap_or(false)
                        })
                        .count();
                    out.push(inside as f64 / calendar.step_days as f64);
                }
            }
            None => out.extend([f64::NAN; 3]),
        }
        Some(level)
    }
}

fn level_before(values: &[f64], t: usize, window: usize) -> Option<f64> {
    if t == 0 {
        return None;
    }
    let recent = &values[t.saturating_sub(window)..t];
    let mean = recent.iter().sum::<f64>() / recent.len() as f64;
    if mean > 0.0 {
        return Some(mean);
    }
    let all = values[..t].iter().sum::<f64>() / t as f64;
    (all > 0.0).then_some(all)
}

/// Untrained: what the global model will be trained with.
pub struct GlobalBoosted {
    pub settings: BoostedSettings,
}

/// The trained global model.
pub struct FittedBoosted {
    booster: GradientBooster,
    layout: Layout,
}

/// The global model's place among the candidates when there is nothing to train it on:
/// every forecast fails, so selection passes over it.
pub struct Untrained;

impl Forecaster for Untrained {
    fn name(&self) -> &'static str {
        "boosted"
    }
    fn forecast(&self, _: &History<'_>, _: usize) -> Result<Vec<f64>, ForecastError> {
        Err(ForecastError::NoData(
            "the global model had too little data to train on",
        ))
    }
}

/// Targets beyond this many times the recent level are capped: a one-off bulk order should
/// not teach the trees that a quiet product explodes.
const MAX_RATIO: f64 = 30.0;

impl GlobalBoosted {
    /// Trains on every step of every series (all share one period and step length).
    pub fn fit(&self, histories: &[History<'_>]) -> Result<FittedBoosted, ForecastError> {
        let first = histories.first().ok_or(ForecastError::NoData(
            "no series to train the global model on",
        ))?;
        let layout = Layout::for_history(first);
        let (data, targets) = training_rows(&layout, histories, self.settings.max_rows);
        if targets.len() < 50 {
            return Err(ForecastError::NoData(
                "fewer than 50 steps to train the global model on",
            ));
        }
        let columns = layout.columns();
        let column_major = to_column_major(&data, targets.len(), columns);
        let matrix = Matrix::new(&column_major, targets.len(), columns);
        let mut booster = GradientBooster::default()
            .set_objective_type(ObjectiveType::SquaredLoss)
            .set_iterations(self.settings.iterations)
            .set_learning_rate(self.settings.learning_rate)
            .set_max_depth(self.settings.max_depth)
            .set_l2(1.0)
            .set_subsample(0.8)
            .set_seed(7)
            .set_parallel(self.settings.parallel);
        booster
            .fit_unweighted(&matrix, &targets, None)
            .map_err(|e| ForecastError::Model {
                model: "boosted",
                message: e.to_string(),
            })?;
        Ok(FittedBoosted { booster, layout })
    }
}

fn training_rows(
    layout: &Layout,
    histories: &[History<'_>],
    max_rows: usize,
) -> (Vec<f64>, Vec<f64>) {
    let total: usize = histories.iter().map(|h| h.values.len()).sum();
    let stride = total.div_ceil(max_rows.max(1)).max(1);
    let columns = layout.columns();
    let mut data = Vec::with_capacity(total / stride * columns + columns);
    let mut targets = Vec::with_capacity(total / stride + 1);
    for history in histories {
        let n = history.values.len();
        // Newest steps first in the stride so the most recent behaviour is always kept.
        for t in (1..n).rev().step_by(stride) {
            let start = data.len();
            match layout.row(history, history.values, t, &mut data) {
                Some(level) => targets.push((history.values[t] / level).min(MAX_RATIO)),
                None => data.truncate(start),
            }
        }
    }
    (data, targets)
}

fn to_column_major(rows: &[f64], n: usize, columns: usize) -> Vec<f64> {
    let mut out = vec![0.0; rows.len()];
    for r in 0..n {
        for c in 0..columns {
            out[c * n + r] = rows[r * columns + c];
        }
    }
    out
}

impl Forecaster for FittedBoosted {
    fn name(&self) -> &'static str {
        "boosted"
    }

    /// Recursive: each step's forecast becomes the next step's lag.
    fn forecast(&self, history: &History<'_>, horizon: usize) -> Result<Vec<f64>, ForecastError> {
        require_history(history)?;
        let n = history.values.len();
        let mut values = history.values.to_vec();
        let extended = History {
            values: &[],
            ..*history
        };
        let nonnegative = history.values.iter().all(|&v| v >= 0.0);
        let mut row = Vec::with_capacity(self.layout.columns());
        for t in n..n + horizon {
            row.clear();
            let value = match self.layout.row(&extended, &values, t, &mut row) {
                Some(level) => {
                    let matrix = Matrix::new(&row, 1, row.len());
                    level * self.booster.predict(&matrix, false)[0]
                }
                None => 0.0,
            };
            values.push(if nonnegative { value.max(0.0) } else { value });
        }
        Ok(finite_or_last(values.split_off(n), history.values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Promotions;
    use crate::models::StepCalendar;
    use chrono::NaiveDate;
    use shopfuse_core::config::PromotionWindow;

    /// Daily sales at different scales with a weekly rhythm and a promotion that triples
    /// sales; the global model should carry both into a forecast over a promotion.
    #[test]
    fn the_global_model_learns_a_promotion_from_many_series() {
        let promotions = Promotions::from_config(&[PromotionWindow {
            name: "sale".into(),
            from: "03-10".into(),
            to: "03-12".into(),
        }])
        .unwrap();
        let start = NaiveDate::from_ymd_opt(2022, 1, 3).unwrap();
        let calendar = StepCalendar {
            start,
            step_days: 1,
            promotions: &promotions,
        };
        let days = 365 + 60; // ends 2023-03-03, a week before the next sale
        let series: Vec<Vec<f64>> = (1..=30)
            .map(|k| {
                (0..days)
                    .map(|t| {
                        let date = calendar.date_of(t);
                        let weekly = if date.weekday().num_days_from_monday() >= 5 {
                            1.5
                        } else {
                            1.0
                        };
                        let promo = if promotions.is_promotion(date) {
                            3.0
                        } else {
                            1.0
                        };
                        let wiggle = 1.0 + 0.1 * (((t * 7 + k * 13) % 11) as f64 / 10.0 - 0.5);
                        k as f64 * weekly * promo * wiggle
                    })
                    .collect()
            })
            .collect();
        let histories: Vec<History<'_>> = series
            .iter()
            .map(|v| History {
                values: v,
                period: 7,
                calendar: Some(calendar),
            })
            .collect();
        let model = GlobalBoosted {
            settings: BoostedSettings {
                iterations: 120,
                ..BoostedSettings::default()
            },
        }
        .fit(&histories)
        .unwrap();
        let f = model.forecast(&histories[9], 12).unwrap();
        // Steps 0..=11 are 03-04 … 03-15; the sale covers 03-10 … 03-12 (steps 6, 7, 8).
        let ordinary = (f[0] + f[1] + f[2] + f[3]) / 4.0;
        let sale = (f[6] + f[7] + f[8]) / 3.0;
        assert!(sale > 1.8 * ordinary, "{f:?}");
        assert!((ordinary - 10.0 * 1.15).abs() < 4.0, "{f:?}");
    }
}
