//! Rolling-origin backtests, model selection and the quantile bands built from them.
//!
//! A backtest cuts every series at `windows` origins, one horizon apart, ending one horizon
//! before its last observation, and forecasts each window with every candidate. A series'
//! model is the candidate with the lowest mean absolute error over its windows (the MASE
//! ranking, since the scale is the series' own). The global model is retrained at each
//! origin on the cut series only, so no window sees its own future.
//!
//! Bands are conformal: the errors of the chosen models in the backtest windows, in units of
//! each series' MASE scale, pooled per horizon step, give the 10th, 50th and 90th percentile
//! offsets that every forecast of that step is shifted by. Selection and bands use the same
//! windows, which makes the bands slightly optimistic; `eval forecast` measures their
//! coverage on later data.

use rayon::prelude::*;

use crate::metrics::{mase_scale, mean_absolute_error, smape};
use crate::models::{Forecaster, History};
use crate::ForecastError;

/// Builds the candidates for one origin from the series cut at that origin (the global
/// model trains on them; local models ignore them).
pub type Candidates<'f> =
    &'f (dyn Fn(&[History<'_>]) -> Result<Vec<Box<dyn Forecaster>>, ForecastError> + Sync);

/// One candidate's errors on one series, averaged over the windows it could forecast.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowErrors {
    pub mae: f64,
    /// Mean squared error: the ranking of RMSSE, M5's measure.
    pub mse: f64,
    pub smape: f64,
    pub windows: usize,
}

/// Every candidate's errors on every series, and what selection chose.
#[derive(Debug, Clone)]
pub struct Backtest {
    pub horizon: usize,
    pub models: Vec<&'static str>,
    /// `errors[series][model]`, None where the model failed or the series was too short.
    pub errors: Vec<Vec<Option<WindowErrors>>>,
    /// The index into `models` each series' forecasts use.
    pub chosen: Vec<usize>,
    /// `scaled_errors[series][model]`: (actual − forecast) / scale, `horizon` values per
    /// window the model forecast (f32: at 100 000 series these are the largest thing held).
    scaled_errors: Vec<Vec<Vec<f32>>>,
}

/// Fewer backtest errors than this at one step and a level's bands pool every step.
const MIN_ERRORS_PER_STEP: usize = 50;

/// Quantile offsets per horizon step, in units of a series' scale.
#[derive(Debug, Clone)]
pub struct Bands {
    /// `(p10, p50, p90)` per step.
    pub offsets: Vec<(f64, f64, f64)>,
}

impl Bands {
    /// A band around `forecast` for a series of scale `scale`; clipped at zero when
    /// `nonnegative`.
    pub fn apply(&self, forecast: &[f64], scale: f64, nonnegative: bool) -> Vec<[f64; 3]> {
        let clip = |v: f64| if nonnegative { v.max(0.0) } else { v };
        forecast
            .iter()
            .enumerate()
            .map(|(h, &f)| {
                let (p10, p50, p90) = self.offsets[h.min(self.offsets.len() - 1)];
                [
                    clip(f + scale * p10),
                    clip(f + scale * p50),
                    clip(f + scale * p90),
                ]
            })
            .collect()
    }
}

/// The scale a series' errors are measured in: MASE's, else its mean, else 1.
pub fn series_scale(values: &[f64], period: usize) -> f64 {
    mase_scale(values, period)
        .or_else(|| mase_scale(values, 1))
        .or_else(|| {
            let mean = values.iter().map(|v| v.abs()).sum::<f64>() / values.len().max(1) as f64;
            (mean > 0.0).then_some(mean)
        })
        .unwrap_or(1.0)
}

/// What selection minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criterion {
    /// Mean absolute error: the median's loss, for accuracy measured by MASE and sMAPE (M4).
    AbsoluteError,
    /// Mean squared error: the mean's loss. For sales it is the right one — on a product that
    /// sells on one day in five, the absolute error is smallest for a forecast of zero, which
    /// would order nothing (M5 scored by RMSSE for this reason).
    SquaredError,
}

/// The history an origin needs before it is worth scoring: two seasons, as the M4 protocol
/// assumes (`seasons` 2.0), or less where series are short — a weekly sales series of a
/// year and a half has one season and a quarter (`seasons` 1.25); never under eight steps.
pub fn min_history(period: usize, seasons: f64) -> usize {
    ((period as f64 * seasons).ceil() as usize).max(8)
}

/// Runs the backtest over `series` with `windows` origins of `horizon` steps; an origin
/// with fewer than `min_history` steps before it is not scored.
pub fn backtest(
    series: &[History<'_>],
    (horizon, windows, min_history): (usize, usize, usize),
    criterion: Criterion,
    candidates: Candidates<'_>,
) -> Result<Backtest, ForecastError> {
    let names: Vec<&'static str> = candidates(&[])?.iter().map(|m| m.name()).collect();
    let mut sums = vec![vec![WindowErrors::default(); names.len()]; series.len()];
    let mut scaled_errors = vec![vec![Vec::new(); names.len()]; series.len()];
    for window in 0..windows {
        let back = horizon * (windows - window);
        let cut: Vec<History<'_>> = series
            .iter()
            .map(|h| h.truncated(h.values.len().saturating_sub(back)))
            .collect();
        let models = candidates(&cut)?;
        let results: Vec<Vec<Option<Scored>>> = series
            .par_iter()
            .zip(&cut)
            .map(|(full, history)| window_errors(full, history, (horizon, min_history), &models))
            .collect();
        for (s, per_model) in results.into_iter().enumerate() {
            for (m, result) in per_model.into_iter().enumerate() {
                let Some(Scored {
                    mae,
                    mse,
                    smape,
                    scaled,
                }) = result
                else {
                    continue;
                };
                let e = &mut sums[s][m];
                e.mae += mae;
                e.mse += mse;
                e.smape += smape;
                e.windows += 1;
                scaled_errors[s][m].extend(scaled.into_iter().map(|v| v as f32));
            }
        }
    }
    let errors: Vec<Vec<Option<WindowErrors>>> = sums
        .into_iter()
        .map(|per_model| {
            per_model
                .into_iter()
                .map(|e| {
                    (e.windows > 0).then(|| WindowErrors {
                        mae: e.mae / e.windows as f64,
                        mse: e.mse / e.windows as f64,
                        smape: e.smape / e.windows as f64,
                        windows: e.windows,
                    })
                })
                .collect()
        })
        .collect();
    let chosen = errors
        .iter()
        .map(|per_model| best_model(per_model, criterion))
        .collect();
    Ok(Backtest {
        horizon,
        models: names,
        errors,
        chosen,
        scaled_errors,
    })
}

/// One model's errors on one window.
#[derive(Debug, Clone)]
struct Scored {
    mae: f64,
    mse: f64,
    smape: f64,
    scaled: Vec<f64>,
}

/// One window of one series: each model's errors, or None where the window does not fit in
/// the series or the model failed.
fn window_errors(
    full: &History<'_>,
    history: &History<'_>,
    (horizon, enough): (usize, usize),
    models: &[Box<dyn Forecaster>],
) -> Vec<Option<Scored>> {
    let origin = history.values.len();
    if origin < enough || origin + horizon > full.values.len() {
        return vec![None; models.len()];
    }
    let actual = &full.values[origin..origin + horizon];
    let scale = series_scale(history.values, history.period);
    models
        .iter()
        .map(|model| {
            let forecast = model.forecast(history, horizon).ok()?;
            let scaled = actual
                .iter()
                .zip(&forecast)
                .map(|(y, f)| (y - f) / scale)
                .collect();
            let mse = actual
                .iter()
                .zip(&forecast)
                .map(|(y, f)| (y - f).powi(2))
                .sum::<f64>()
                / horizon as f64;
            Some(Scored {
                mae: mean_absolute_error(actual, &forecast),
                mse,
                smape: smape(actual, &forecast),
                scaled,
            })
        })
        .collect()
}

/// The lowest error by `criterion`; ties go to the earlier (simpler) model; model 0 when no
/// model could be scored.
fn best_model(per_model: &[Option<WindowErrors>], criterion: Criterion) -> usize {
    let mut best: Option<(usize, f64)> = None;
    for (m, e) in per_model.iter().enumerate() {
        if let Some(e) = e {
            let error = match criterion {
                Criterion::AbsoluteError => e.mae,
                Criterion::SquaredError => e.mse,
            };
            if best.is_none_or(|(_, b)| error < b) {
                best = Some((m, error));
            }
        }
    }
    best.map_or(0, |(m, _)| m)
}

impl Backtest {
    /// Conformal bands pooled over `series`: from each one's chosen model's errors, or from
    /// model `model`'s when given.
    pub fn bands(&self, series: &[usize], model: Option<usize>) -> Bands {
        let errors_at = |step: Option<usize>| -> Vec<f64> {
            series
                .iter()
                .flat_map(|&s| {
                    let m = model.unwrap_or(self.chosen[s]);
                    let errors = &self.scaled_errors[s][m];
                    let (skip, every) = step.map_or((0, 1), |step| (step, self.horizon));
                    errors
                        .iter()
                        .skip(skip)
                        .step_by(every)
                        .map(|&v| f64::from(v))
                })
                .collect()
        };
        // A level of a few series (the total) has a handful of errors per step: too few for
        // a 10th percentile, so its steps are pooled together.
        let per_step = errors_at(Some(0)).len() >= MIN_ERRORS_PER_STEP;
        let all_steps = if per_step {
            Vec::new()
        } else {
            errors_at(None)
        };
        let offsets = (0..self.horizon)
            .map(|step| {
                let mut pooled = if per_step {
                    errors_at(Some(step))
                } else {
                    all_steps.clone()
                };
                if pooled.is_empty() {
                    return (0.0, 0.0, 0.0);
                }
                pooled.sort_by(f64::total_cmp);
                (
                    quantile(&pooled, 0.1),
                    quantile(&pooled, 0.5),
                    quantile(&pooled, 0.9),
                )
            })
            .collect();
        Bands { offsets }
    }

    /// How many series chose each model.
    pub fn choice_counts(&self) -> Vec<(&'static str, usize)> {
        let mut counts = vec![0usize; self.models.len()];
        for &m in &self.chosen {
            counts[m] += 1;
        }
        self.models.iter().copied().zip(counts).collect()
    }
}

/// The `q` quantile of sorted values, linearly interpolated.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (position - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{naive, smoothing};

    fn candidates(_: &[History<'_>]) -> Result<Vec<Box<dyn Forecaster>>, ForecastError> {
        Ok(vec![
            Box::new(naive::Naive),
            Box::new(naive::SeasonalNaive),
            Box::new(smoothing::Smoothing::Ses),
        ])
    }

    #[test]
    fn selection_picks_seasonal_naive_for_a_clean_cycle_and_bands_cover_the_noise() {
        let cycle: Vec<f64> = (0..84)
            .map(|t| [1.0, 5.0, 9.0, 5.0, 1.0, 0.0, 3.0][t % 7])
            .collect();
        let noisy: Vec<f64> = (0..84)
            .map(|t| 10.0 + ((t * 37) % 11) as f64 - 5.0)
            .collect();
        let series = [History::plain(&cycle, 7), History::plain(&noisy, 7)];
        let bt = backtest(
            &series,
            (7, 3, min_history(7, 2.0)),
            Criterion::AbsoluteError,
            &candidates,
        )
        .unwrap();
        assert_eq!(bt.models, ["naive", "seasonal_naive", "ses"]);
        assert_eq!(bt.models[bt.chosen[0]], "seasonal_naive");
        assert_eq!(bt.errors[0][1].unwrap().mae, 0.0);
        assert_eq!(bt.errors[0][1].unwrap().windows, 3);
        let bands = bt.bands(&[0, 1], Some(2));
        assert_eq!(bt.bands(&[0], None).offsets[0], (0.0, 0.0, 0.0));
        for &(p10, p50, p90) in &bands.offsets {
            assert!(p10 <= p50 && p50 <= p90);
        }
        let band = bands.apply(&[10.0; 7], 2.0, true);
        assert!(band.iter().all(|b| b[0] >= 0.0 && b[0] <= b[2]));
    }

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(&[0.0, 10.0], 0.5), 5.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.0), 1.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 1.0), 3.0);
    }
}
