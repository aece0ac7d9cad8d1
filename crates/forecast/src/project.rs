//! Forecasting every series of a project as of one day: the backtest chooses each series'
//! model, the chosen models forecast, the WLS reconciliation makes the hierarchy add up, and
//! each level's pooled backtest errors give the P10/P50/P90 bands.

use chrono::NaiveDate;
use rayon::prelude::*;

use crate::backtest::{backtest, min_history, series_scale, Backtest, Criterion};
use crate::calendar::Promotions;
use crate::models::boosted::{BoostedSettings, GlobalBoosted};
use crate::models::{local_models, Forecaster, History, StepCalendar};
use crate::reconcile::reconcile_wls;
use crate::sales::{Level, Sales};
use crate::ForecastError;

/// Daily series: the season is the week.
pub const DAILY_PERIOD: usize = 7;
/// Weekly series: the season is the year.
pub const WEEKLY_PERIOD: usize = 52;

/// The season of a series stepping `step_days` at a time.
pub fn period_of(step_days: i64) -> usize {
    if step_days == 7 {
        WEEKLY_PERIOD
    } else {
        DAILY_PERIOD
    }
}

/// How a project is forecast.
#[derive(Debug, Clone)]
pub struct ForecastSettings {
    pub horizon: usize,
    pub backtest_windows: usize,
    pub boosted: BoostedSettings,
}

/// One series' forecast.
#[derive(Debug, Clone)]
pub struct SeriesForecast {
    /// Index into [`Sales::series`].
    pub series: usize,
    /// The model the backtest chose (None when the series has no history yet).
    pub model: Option<&'static str>,
    /// The chosen model's own forecast.
    pub base: Vec<f64>,
    /// Coherent across the hierarchy.
    pub reconciled: Vec<f64>,
    /// P10, P50, P90 per step.
    pub quantiles: Vec<[f64; 3]>,
}

/// Every series' forecast from one origin.
#[derive(Debug, Clone)]
pub struct ProjectForecast {
    /// The first forecast step, as an index into the sales' steps.
    pub origin: usize,
    pub first_date: NaiveDate,
    /// Days per step (1 or 7).
    pub step_days: i64,
    pub horizon: usize,
    pub forecasts: Vec<SeriesForecast>,
    pub backtest: Backtest,
    /// Per series, every candidate's forecast (for the evaluation; empty unless asked).
    pub all_models: Vec<Vec<Option<Vec<f64>>>>,
}

/// A series' chosen model, its forecast, and (when kept) every candidate's.
type ChosenForecast = (Option<&'static str>, Vec<f64>, Vec<Option<Vec<f64>>>);

/// Forecasts the `horizon` steps (days, or weeks for [`Sales::weekly`]) from `origin` (a
/// step index: steps before it are history) for every series of `sales`.
pub fn forecast_sales(
    sales: &Sales,
    promotions: &Promotions,
    settings: &ForecastSettings,
    origin: usize,
    keep_all_models: bool,
) -> Result<ProjectForecast, ForecastError> {
    let first_day = sales
        .first_day
        .ok_or(ForecastError::NoData("the project has no sales"))?;
    let histories = histories_at(sales, promotions, first_day, origin);
    let boosted = GlobalBoosted {
        settings: settings.boosted,
    };
    let candidates = |cut: &[History<'_>]| candidates(&boosted, cut);
    let period = period_of(sales.step_days);
    // Daily series have seasons to spare; weekly ones a year and a half at most.
    let seasons = if period == WEEKLY_PERIOD { 1.25 } else { 2.0 };
    let bt = backtest(
        &histories,
        (
            settings.horizon,
            settings.backtest_windows,
            min_history(period, seasons),
        ),
        Criterion::SquaredError,
        &candidates,
    )?;
    let models = candidates(&histories)?;
    let horizon = settings.horizon;
    let forecasts: Vec<ChosenForecast> = histories
        .par_iter()
        .enumerate()
        .map(|(s, history)| {
            if history.values.is_empty() {
                return (None, vec![0.0; horizon], vec![None; models.len()]);
            }
            let all: Vec<Option<Vec<f64>>> = if keep_all_models {
                models
                    .iter()
                    .map(|m| m.forecast(history, horizon).ok())
                    .collect()
            } else {
                Vec::new()
            };
            let chosen = bt.chosen[s];
            let own = all
                .get(chosen)
                .cloned()
                .flatten()
                .or_else(|| models[chosen].forecast(history, horizon).ok());
            match own {
                Some(f) => (Some(models[chosen].name()), f, all),
                // The chosen model fails on the full history: fall back to the first that works.
                None => models
                    .iter()
                    .find_map(|m| {
                        Some((
                            Some(m.name()),
                            m.forecast(history, horizon).ok()?,
                            all.clone(),
                        ))
                    })
                    .unwrap_or((None, vec![0.0; horizon], all)),
            }
        })
        .collect();
    let mut all_models = Vec::with_capacity(forecasts.len());
    let mut out: Vec<SeriesForecast> = forecasts
        .into_iter()
        .enumerate()
        .map(|(series, (model, base, all))| {
            all_models.push(all);
            SeriesForecast {
                series,
                model,
                reconciled: base.clone(),
                base,
                quantiles: Vec::new(),
            }
        })
        .collect();
    reconcile(sales, &bt, &mut out, horizon);
    add_bands(sales, &histories, &bt, &mut out);
    Ok(ProjectForecast {
        origin,
        first_date: sales.date_of(origin).unwrap_or(first_day),
        step_days: sales.step_days.max(1),
        horizon,
        forecasts: out,
        backtest: bt,
        all_models,
    })
}

/// Each series' steps before `origin` as a history.
pub fn histories_at<'a>(
    sales: &'a Sales,
    promotions: &'a Promotions,
    first_day: NaiveDate,
    origin: usize,
) -> Vec<History<'a>> {
    sales
        .series
        .iter()
        .map(|s| {
            let len = origin.saturating_sub(s.start).min(s.units.len());
            History {
                values: &s.units[..len],
                period: period_of(sales.step_days),
                calendar: Some(StepCalendar {
                    start: first_day
                        + chrono::Duration::days(sales.step_days.max(1) * s.start as i64),
                    step_days: sales.step_days.max(1),
                    promotions,
                }),
            }
        })
        .collect()
}

fn candidates(
    boosted: &GlobalBoosted,
    cut: &[History<'_>],
) -> Result<Vec<Box<dyn Forecaster>>, ForecastError> {
    let mut models = local_models();
    let trainable: Vec<History<'_>> = cut.iter().filter(|h| h.values.len() > 1).copied().collect();
    if trainable.is_empty() {
        models.push(Box::new(crate::models::boosted::Untrained));
    } else {
        match boosted.fit(&trainable) {
            Ok(model) => models.push(Box::new(model)),
            // Too little data for trees: the candidate stays, failing every forecast.
            Err(ForecastError::NoData(_)) => {
                models.push(Box::new(crate::models::boosted::Untrained))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(models)
}

/// Makes every step coherent, weighting each series by its chosen model's backtest error.
fn reconcile(sales: &Sales, bt: &Backtest, out: &mut [SeriesForecast], horizon: usize) {
    let bottom = sales.bottom().count();
    if bottom == 0 || sales.members.is_empty() {
        return;
    }
    let aggregate_ids: Vec<usize> = (bottom..sales.series.len()).collect();
    let aggregates: Vec<&[usize]> = aggregate_ids
        .iter()
        .map(|a| sales.members[a].as_slice())
        .collect();
    let variance: Vec<f64> = (0..sales.series.len())
        .map(|s| match bt.errors[s][bt.chosen[s]] {
            Some(e) => e.mse + 1e-6,
            // No backtest: trust it little.
            None => 1e6,
        })
        .collect();
    let steps: Vec<Vec<f64>> = (0..horizon)
        .into_par_iter()
        .map(|h| {
            let base: Vec<f64> = out.iter().map(|f| f.base[h]).collect();
            reconcile_wls(bottom, &aggregates, &base, &variance)
                .into_iter()
                .map(|v| v.max(0.0))
                .collect()
        })
        .collect();
    for (h, bottom_values) in steps.iter().enumerate() {
        for (i, &v) in bottom_values.iter().enumerate() {
            out[i].reconciled[h] = v;
        }
        for (&a, members) in aggregate_ids.iter().zip(&aggregates) {
            out[a].reconciled[h] = members.iter().map(|&m| bottom_values[m]).sum();
        }
    }
}

/// Bands per level: the level's pooled backtest errors around the reconciled forecast.
fn add_bands(sales: &Sales, histories: &[History<'_>], bt: &Backtest, out: &mut [SeriesForecast]) {
    for level in Level::ALL {
        let members: Vec<usize> = (0..sales.series.len())
            .filter(|&s| sales.series[s].key.level == level)
            .collect();
        if members.is_empty() {
            continue;
        }
        let bands = bt.bands(&members, None);
        for &s in &members {
            let scale = series_scale(histories[s].values, period_of(sales.step_days));
            out[s].quantiles = bands.apply(&out[s].reconciled, scale, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sales::{build, ProductFacts};
    use std::collections::{BTreeMap, HashMap};

    /// Two products on two platforms, 120 days with a weekly rhythm.
    fn sales() -> Sales {
        let start = NaiveDate::from_ymd_opt(2025, 1, 6).unwrap();
        let mut daily = BTreeMap::new();
        let mut products = BTreeMap::new();
        for (p, product) in ["GP1", "GP2"].iter().enumerate() {
            products.insert(
                product.to_string(),
                ProductFacts {
                    category: Some(format!("c{p}")),
                    stock: Some(10),
                },
            );
            for (q, platform) in ["jd", "taobao"].iter().enumerate() {
                let by_day: BTreeMap<NaiveDate, f64> = (0..120usize)
                    .map(|d| {
                        let weekend = if d % 7 >= 5 { 3.0 } else { 1.0 };
                        let units = weekend * (1 + p + q) as f64 + ((d * 3 + p) % 2) as f64;
                        (start + chrono::Duration::days(d as i64), units)
                    })
                    .collect();
                daily.insert((product.to_string(), platform.to_string()), by_day);
            }
        }
        build(daily, &HashMap::new(), products)
    }

    #[test]
    fn every_aggregate_is_the_sum_of_its_members_and_bands_hold_the_forecast() {
        let sales = sales();
        let settings = ForecastSettings {
            horizon: 7,
            backtest_windows: 2,
            boosted: BoostedSettings {
                iterations: 30,
                ..BoostedSettings::default()
            },
        };
        let f = forecast_sales(&sales, &Promotions::default(), &settings, 100, false).unwrap();
        assert_eq!(f.first_date, NaiveDate::from_ymd_opt(2025, 4, 16).unwrap());
        for (&aggregate, members) in &sales.members {
            for h in 0..7 {
                let sum: f64 = members.iter().map(|&m| f.forecasts[m].reconciled[h]).sum();
                assert!((f.forecasts[aggregate].reconciled[h] - sum).abs() < 1e-6);
            }
        }
        for s in &f.forecasts {
            assert!(s.model.is_some());
            for q in &s.quantiles {
                assert!(q[0] <= q[1] && q[1] <= q[2] && q[0] >= 0.0, "{q:?}");
            }
        }
        // The weekly rhythm is forecast: the total's weekend days (Sat 04-19, Sun 04-20)
        // above its weekdays.
        let total = &f.forecasts.last().unwrap().reconciled;
        assert!(total[3] > 1.5 * total[0], "{total:?}");
    }

    #[test]
    fn sales_after_the_origin_change_no_forecast() {
        let mut sales = sales();
        let settings = ForecastSettings {
            horizon: 7,
            backtest_windows: 1,
            boosted: BoostedSettings {
                iterations: 20,
                ..BoostedSettings::default()
            },
        };
        let before = forecast_sales(&sales, &Promotions::default(), &settings, 90, false).unwrap();
        for s in &mut sales.series {
            for v in &mut s.units[90 - s.start..] {
                *v *= 10.0;
            }
        }
        let after = forecast_sales(&sales, &Promotions::default(), &settings, 90, false).unwrap();
        for (a, b) in before.forecasts.iter().zip(&after.forecasts) {
            assert_eq!(a.reconciled, b.reconciled);
        }
    }
}
