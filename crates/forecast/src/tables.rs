//! The stage's tables — `forecasts` (one row per series and day ahead) and
//! `forecast_backtests` (one row per series and candidate model) — and the run that fills
//! them: read the sales, forecast from the day after the last sale, write.

use serde::Serialize;
use shopfuse_core::config::ForecastConfig;
use shopfuse_core::value::rows_to_batch;
use shopfuse_core::{Transaction, Value};

use crate::calendar::Promotions;
use crate::models::boosted::BoostedSettings;
use crate::project::{forecast_sales, ForecastSettings, ProjectForecast};
use crate::sales::{read_sales, Sales, SeriesKey};
use crate::ForecastError;

shopfuse_core::table! {
    /// One row per series and day ahead: units sold forecast for each golden product on each
    /// platform and their roll-ups (product, category, platform, total), coherent across the
    /// hierarchy, with P10/P50/P90.
    pub mod forecasts("forecasts") {
        /// product_platform, product, category, platform or total.
        level: Text;
        /// The series in words ("GP12 @ taobao", "category 手机", "total").
        series: Text;
        /// Golden product id (product_platform and product levels).
        golden_id: Text null;
        /// Platform (product_platform and platform levels).
        platform: Text null;
        /// Golden category (product and category levels; product_platform rows carry it too).
        category: Text null;
        /// The calendar day (YYYY-MM-DD) in the `[forecast]` time zone.
        day: Text;
        /// Days ahead: 1 is the day after the last day of sales.
        step: Int;
        /// The model the backtest chose for the series.
        model: Text null;
        /// Expected units: reconciled, so each aggregate is the sum of its members.
        forecast: Float;
        /// The chosen model's own forecast before reconciliation.
        base_forecast: Float;
        /// 10th percentile of units, from the level's backtest errors (quantiles are per
        /// series, not summed across levels).
        p10: Float;
        /// Median of units.
        p50: Float;
        /// 90th percentile of units.
        p90: Float;
        /// The promotion running that day, if any (`[[forecast.promotions]]`).
        promotion: Text null;
    }
}

shopfuse_core::table! {
    /// One row per series and candidate model: its rolling-origin backtest errors, and whether
    /// it was chosen.
    pub mod forecast_backtests("forecast_backtests") {
        /// product_platform, product, category, platform or total.
        level: Text;
        /// The series in words.
        series: Text;
        /// Golden product id (product_platform and product levels).
        golden_id: Text null;
        /// Platform (product_platform and platform levels).
        platform: Text null;
        /// Golden category.
        category: Text null;
        /// The candidate (naive, seasonal_naive, ets, theta, croston_sba, mstl, boosted, …).
        model: Text;
        /// Backtest windows it forecast.
        windows: Int;
        /// Mean absolute error in units per day, over the windows.
        mae: Float;
        /// Root mean squared error in units per day (what selection minimises: the mean's
        /// loss, so a product selling one day in five is not forecast at zero).
        rmse: Float;
        /// Mean sMAPE (0–200) over the windows.
        smape: Float;
        /// MAE scaled by the series' in-sample weekly seasonal naive error (null when flat).
        mase: Float null;
        /// Whether it is the series' model.
        chosen: Bool;
    }
}

/// What the stage reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ForecastSummary {
    pub series: usize,
    pub bottom_series: usize,
    pub orders_used: usize,
    pub orders_left_out: usize,
    pub first_day: Option<String>,
    pub horizon_days: usize,
    /// How many series each model was chosen for, most first.
    pub chosen: Vec<(String, usize)>,
    /// The total's forecast over the horizon (units).
    pub total_units: Option<f64>,
    pub seconds: f64,
}

/// The settings the config gives.
pub fn settings(config: &ForecastConfig) -> ForecastSettings {
    ForecastSettings {
        horizon: config.horizon_days.max(1),
        backtest_windows: config.backtest_windows.max(1),
        boosted: BoostedSettings {
            iterations: config.iterations,
            learning_rate: config.learning_rate,
            max_depth: config.max_depth,
            ..BoostedSettings::default()
        },
    }
}

/// Parses the zone of `[forecast] timezone`.
pub fn zone(config: &ForecastConfig) -> Result<chrono_tz::Tz, ForecastError> {
    config.timezone.parse().map_err(|_| ForecastError::Config {
        entry: "[forecast] timezone".into(),
        message: format!(
            "{:?} is not an IANA time zone (e.g. \"Asia/Shanghai\")",
            config.timezone
        ),
    })
}

/// Forecasts from the day after the last sale and replaces both tables.
pub fn run_forecast(
    tx: &mut Transaction<'_>,
    config: &ForecastConfig,
) -> Result<ForecastSummary, ForecastError> {
    let started = std::time::Instant::now();
    let promotions = Promotions::from_config(&config.promotions)?;
    let sales = {
        let read = |t: &str, cols: &[&str]| tx.read_columns(t, cols);
        read_sales(&read, zone(config)?)?
    };
    let settings = settings(config);
    let mut summary = ForecastSummary {
        series: sales.series.len(),
        bottom_series: sales.bottom().count(),
        orders_used: sales.orders_used,
        orders_left_out: sales.orders_read - sales.orders_used,
        first_day: sales.first_day.map(|d| d.to_string()),
        horizon_days: settings.horizon,
        ..Default::default()
    };
    let forecast = if sales.series.is_empty() {
        None
    } else {
        Some(forecast_sales(
            &sales,
            &promotions,
            &settings,
            sales.days,
            false,
        )?)
    };
    if let Some(f) = &forecast {
        let mut chosen = f.backtest.choice_counts();
        chosen.retain(|c| c.1 > 0);
        chosen.sort_by_key(|c| std::cmp::Reverse(c.1));
        summary.chosen = chosen
            .into_iter()
            .map(|(n, c)| (n.to_string(), c))
            .collect();
        summary.total_units = f.forecasts.last().map(|t| t.reconciled.iter().sum::<f64>());
    }
    write_forecasts(tx, &sales, &promotions, forecast.as_ref())?;
    write_backtests(tx, &sales, forecast.as_ref())?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn key_values(key: &SeriesKey) -> [Value; 5] {
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Text);
    [
        Value::Text(key.level.name().into()),
        Value::Text(key.label()),
        text(&key.golden_id),
        text(&key.platform),
        text(&key.category),
    ]
}

fn rounded(v: f64) -> Value {
    Value::Float((v * 1e4).round() / 1e4)
}

fn write_forecasts(
    tx: &mut Transaction<'_>,
    sales: &Sales,
    promotions: &Promotions,
    forecast: Option<&ProjectForecast>,
) -> Result<(), ForecastError> {
    let mut rows = Vec::new();
    for f in forecast.map_or(&[][..], |f| &f.forecasts[..]) {
        let key = &sales.series[f.series].key;
        for h in 0..f.reconciled.len() {
            let date = forecast.expect("rows only with a forecast").first_date
                + chrono::Duration::days(h as i64);
            let [p10, p50, p90] = f.quantiles.get(h).copied().unwrap_or([f.reconciled[h]; 3]);
            let mut row: Vec<Value> = key_values(key).into();
            row.extend([
                Value::Text(date.to_string()),
                Value::Int(h as i64 + 1),
                f.model.map_or(Value::Null, |m| Value::Text(m.into())),
                rounded(f.reconciled[h]),
                rounded(f.base[h]),
                rounded(p10),
                rounded(p50),
                rounded(p90),
                promotions
                    .name_on(date)
                    .map_or(Value::Null, |n| Value::Text(n.into())),
            ]);
            rows.push(row);
        }
    }
    let schema = forecasts::TABLE.schema();
    let batch = rows_to_batch(&schema, &rows)?;
    tx.replace(forecasts::NAME, &schema, &[batch])?;
    Ok(())
}

fn write_backtests(
    tx: &mut Transaction<'_>,
    sales: &Sales,
    forecast: Option<&ProjectForecast>,
) -> Result<(), ForecastError> {
    let mut rows = Vec::new();
    if let Some(f) = forecast {
        let bt = &f.backtest;
        for (s, per_model) in bt.errors.iter().enumerate() {
            let key = &sales.series[s].key;
            let units = &sales.series[s].units;
            let scale = crate::metrics::mase_scale(&units[..units.len().min(f.origin)], 7);
            for (m, e) in per_model.iter().enumerate() {
                let Some(e) = e else { continue };
                let mut row: Vec<Value> = key_values(key).into();
                row.extend([
                    Value::Text(bt.models[m].into()),
                    Value::Int(e.windows as i64),
                    rounded(e.mae),
                    rounded(e.mse.sqrt()),
                    rounded(e.smape),
                    scale.map_or(Value::Null, |sc| rounded(e.mae / sc)),
                    Value::Bool(bt.chosen[s] == m),
                ]);
                rows.push(row);
            }
        }
    }
    let schema = forecast_backtests::TABLE.schema();
    let batch = rows_to_batch(&schema, &rows)?;
    tx.replace(forecast_backtests::NAME, &schema, &[batch])?;
    Ok(())
}
