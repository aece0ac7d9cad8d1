//! The stage's tables — `forecasts` (one row per series and day ahead) and
//! `forecast_backtests` (one row per series and candidate model) — and the run that fills
//! them: read the sales, forecast from the day after the last sale, write.

use serde::Serialize;
use shopfuse_core::config::ForecastConfig;
use shopfuse_core::value::rows_to_batch;
use shopfuse_core::{Transaction, Value};

use crate::calendar::Promotions;
use crate::models::boosted::BoostedSettings;
use crate::prices::{read_prices, AlertKind, PriceMonitor};
use crate::project::{forecast_sales, ForecastSettings, ProjectForecast};
use crate::replenishment::{daily_sd, plan, policy_for, Plan};
use crate::sales::{read_sales, Level, Sales, SeriesKey};
use crate::ForecastError;

shopfuse_core::table! {
    /// One row per series and day ahead: units sold forecast for each golden product on each
    /// platform and their roll-ups (product, category, platform, total), coherent across the
    /// hierarchy, with P10/P50/P90.
    pub mod forecasts("forecasts") {
        /// daily or weekly (weeks Monday to Sunday; `day` is the Monday, `step` counts weeks).
        frequency: Text;
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
        /// Steps ahead: 1 is the day (week) after the last day (whole week) of sales.
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
        /// The promotion running that day (in that week), if any (`[[forecast.promotions]]`).
        promotion: Text null;
    }
}

shopfuse_core::table! {
    /// One row per series and candidate model: its rolling-origin backtest errors, and whether
    /// it was chosen.
    pub mod forecast_backtests("forecast_backtests") {
        /// daily or weekly.
        frequency: Text;
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
        /// Mean absolute error in units per step, over the windows.
        mae: Float;
        /// Root mean squared error in units per step (what selection minimises: the mean's
        /// loss, so a product selling one day in five is not forecast at zero).
        rmse: Float;
        /// Mean sMAPE (0–200) over the windows.
        smape: Float;
        /// MAE scaled by the series' in-sample seasonal naive error (weekly season for daily
        /// series, yearly for weekly; naive when shorter; null when flat).
        mase: Float null;
        /// Whether it is the series' model.
        chosen: Bool;
    }
}

shopfuse_core::table! {
    /// One row per golden product with a forecast: what to reorder, when and how much
    /// (`[forecast.replenishment]`; see the `replenishment` module for the policy).
    pub mod replenishment("replenishment") {
        /// Golden product id.
        golden_id: Text;
        /// Golden category.
        category: Text null;
        /// Units in stock summed over its offers on every platform (null when none says).
        stock: Int null;
        /// The rule it was planned with (default, golden_id …, category …).
        rule: Text;
        /// Days from ordering to sellable stock.
        lead_time_days: Int;
        /// Days between two orders.
        review_days: Int;
        /// Chance that demand over the lead time is covered.
        service_level: Float;
        /// Expected units sold over the lead time.
        demand_lead_time: Float;
        /// Standard deviation of those units.
        sd_lead_time: Float;
        /// Units kept beyond the expected demand for the service level.
        safety_stock: Float;
        /// At or below this stock, order.
        reorder_point: Float;
        /// An order brings the stock up to this.
        order_up_to: Float;
        /// Whole units to order now (0 above the reorder point; null without stock).
        order_quantity: Int null;
        /// Days the stock lasts at the forecast rate (null without stock or demand).
        days_of_cover: Float null;
        /// The days `stockout_risk` looks ahead.
        risk_days: Int;
        /// Chance of selling out within `risk_days` (null without stock).
        stockout_risk: Float null;
    }
}

shopfuse_core::table! {
    /// One row per golden product, platform and week it has a current price: the price
    /// level orders paid at the week's end and its gap to the cheapest platform.
    pub mod price_history("price_history") {
        /// Golden product id.
        golden_id: Text;
        /// The platform.
        platform: Text;
        /// The week's Monday (YYYY-MM-DD, `[forecast] timezone`).
        week: Text;
        /// Orders in the week (0: the price carries over from an earlier sale).
        orders: Int;
        /// Price level in the base currency.
        price_base: Float;
        /// Price level in the platform's currency.
        price: Float;
        /// The platform's currency.
        currency: Text null;
        /// The platform with the lowest current price that week.
        cheapest_platform: Text;
        /// Its price level, base currency.
        cheapest_price_base: Float;
        /// How much dearer than the cheapest (0.12 = 12 %; 0 for the cheapest).
        gap_to_cheapest: Float;
    }
}

shopfuse_core::table! {
    /// One row per price alert: a platform undercutting every other, or a sharp move.
    pub mod price_alerts("price_alerts") {
        /// Golden product id.
        golden_id: Text;
        /// The platform whose price it is.
        platform: Text;
        /// undercut or sharp_move.
        kind: Text;
        /// The day it could be seen (YYYY-MM-DD).
        day: Text;
        /// The first day sold at the new price.
        since: Text;
        /// The platform's price level, base currency.
        price_base: Float;
        /// Undercut: the next cheapest platform's price; sharp move: the level before.
        reference_price_base: Float;
        /// Undercut: the next cheapest platform.
        reference_platform: Text null;
        /// Undercut: the share below the reference; sharp move: the change (+0.4 = 40 % up).
        change: Float;
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
    /// Weekly series forecast, weeks ahead, and the total over them.
    pub weekly_series: usize,
    pub horizon_weeks: usize,
    pub weekly_total_units: Option<f64>,
    /// Golden products planned, and those at or below their reorder point.
    pub planned_products: usize,
    pub reorder_now: usize,
    /// Price series (golden product × platform) watched, and alerts by kind.
    pub price_series: usize,
    pub undercuts: usize,
    pub sharp_moves: usize,
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
    let forecast = forecast_at_end(&sales, &promotions, &settings)?;
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
    let weekly = sales.weekly();
    let weekly_settings = ForecastSettings {
        horizon: settings.horizon.div_ceil(7),
        ..settings.clone()
    };
    let weekly_forecast = forecast_at_end(&weekly, &promotions, &weekly_settings)?;
    summary.weekly_series = weekly.series.len();
    summary.horizon_weeks = weekly_settings.horizon;
    summary.weekly_total_units = weekly_forecast
        .as_ref()
        .and_then(|f| f.forecasts.last())
        .map(|t| t.reconciled.iter().sum::<f64>());
    let runs = [
        ("daily", &sales, forecast.as_ref()),
        ("weekly", &weekly, weekly_forecast.as_ref()),
    ];
    write_forecasts(tx, &runs, &promotions)?;
    write_backtests(tx, &runs)?;
    let plans = plan_replenishment(&sales, forecast.as_ref(), &config.replenishment);
    summary.planned_products = plans.len();
    summary.reorder_now = plans
        .iter()
        .filter(|p| p.plan.order_quantity.is_some_and(|q| q > 0))
        .count();
    write_replenishment(tx, &plans)?;
    let series = {
        let read = |t: &str, cols: &[&str]| tx.read_columns(t, cols);
        read_prices(&read, zone(config)?)?
    };
    let monitor = crate::prices::monitor(series, &config.prices);
    summary.price_series = monitor.series.len();
    summary.undercuts = monitor
        .alerts
        .iter()
        .filter(|a| a.kind == AlertKind::Undercut)
        .count();
    summary.sharp_moves = monitor.alerts.len() - summary.undercuts;
    write_prices(tx, &monitor)?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The forecast from the step after the last, or none without sales (or whole weeks).
fn forecast_at_end(
    sales: &Sales,
    promotions: &Promotions,
    settings: &ForecastSettings,
) -> Result<Option<ProjectForecast>, ForecastError> {
    if sales.series.is_empty() || sales.days == 0 {
        return Ok(None);
    }
    forecast_sales(sales, promotions, settings, sales.days, false).map(Some)
}

/// One frequency's sales and forecast, for the writers.
type Run<'a> = (&'static str, &'a Sales, Option<&'a ProjectForecast>);

fn key_values(frequency: &str, key: &SeriesKey) -> [Value; 6] {
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Text);
    [
        Value::Text(frequency.into()),
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
    runs: &[Run<'_>],
    promotions: &Promotions,
) -> Result<(), ForecastError> {
    let mut rows = Vec::new();
    for &(frequency, sales, forecast) in runs {
        let Some(forecast) = forecast else { continue };
        for f in &forecast.forecasts {
            let key = &sales.series[f.series].key;
            for h in 0..f.reconciled.len() {
                let date =
                    forecast.first_date + chrono::Duration::days(forecast.step_days * h as i64);
                let [p10, p50, p90] = f.quantiles.get(h).copied().unwrap_or([f.reconciled[h]; 3]);
                let promotion = (0..forecast.step_days)
                    .find_map(|d| promotions.name_on(date + chrono::Duration::days(d)));
                let mut row: Vec<Value> = key_values(frequency, key).into();
                row.extend([
                    Value::Text(date.to_string()),
                    Value::Int(h as i64 + 1),
                    f.model.map_or(Value::Null, |m| Value::Text(m.into())),
                    rounded(f.reconciled[h]),
                    rounded(f.base[h]),
                    rounded(p10),
                    rounded(p50),
                    rounded(p90),
                    promotion.map_or(Value::Null, |n| Value::Text(n.into())),
                ]);
                rows.push(row);
            }
        }
    }
    let schema = forecasts::TABLE.schema();
    let batch = rows_to_batch(&schema, &rows)?;
    tx.replace(forecasts::NAME, &schema, &[batch])?;
    Ok(())
}

fn write_backtests(tx: &mut Transaction<'_>, runs: &[Run<'_>]) -> Result<(), ForecastError> {
    let mut rows = Vec::new();
    for &(frequency, sales, forecast) in runs {
        let Some(f) = forecast else { continue };
        let bt = &f.backtest;
        let period = crate::project::period_of(sales.step_days);
        for (s, per_model) in bt.errors.iter().enumerate() {
            let key = &sales.series[s].key;
            let units = &sales.series[s].units;
            let history = &units[..units.len().min(f.origin)];
            let scale = crate::metrics::mase_scale(history, period)
                .or_else(|| crate::metrics::mase_scale(history, 1));
            for (m, e) in per_model.iter().enumerate() {
                let Some(e) = e else { continue };
                let mut row: Vec<Value> = key_values(frequency, key).into();
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

/// One product's replenishment plan and what it was planned with.
#[derive(Debug, Clone)]
pub struct ProductPlan {
    pub golden_id: String,
    pub category: Option<String>,
    pub stock: Option<i64>,
    pub rule: String,
    pub policy: crate::replenishment::Policy,
    pub plan: Plan,
}

/// A plan for every golden product with a product-level forecast.
pub fn plan_replenishment(
    sales: &Sales,
    forecast: Option<&ProjectForecast>,
    config: &shopfuse_core::config::ReplenishmentConfig,
) -> Vec<ProductPlan> {
    let Some(forecast) = forecast else {
        return Vec::new();
    };
    forecast
        .forecasts
        .iter()
        .filter_map(|f| {
            let key = &sales.series[f.series].key;
            let golden_id = key
                .golden_id
                .clone()
                .filter(|_| key.level == Level::Product)?;
            let facts = sales.products.get(&golden_id).cloned().unwrap_or_default();
            let (policy, rule) = policy_for(config, &golden_id, facts.category.as_deref());
            let sd: Vec<f64> = f.quantiles.iter().map(|q| daily_sd(q[1], q[2])).collect();
            let sd = if sd.len() == f.reconciled.len() {
                sd
            } else {
                vec![0.0; f.reconciled.len()]
            };
            let plan = plan(&f.reconciled, &sd, facts.stock.map(|s| s as f64), &policy);
            Some(ProductPlan {
                golden_id,
                category: facts.category,
                stock: facts.stock,
                rule,
                policy,
                plan,
            })
        })
        .collect()
}

fn write_replenishment(
    tx: &mut Transaction<'_>,
    plans: &[ProductPlan],
) -> Result<(), ForecastError> {
    let rows: Vec<Vec<Value>> = plans
        .iter()
        .map(|p| {
            let opt_f = |v: Option<f64>| v.map_or(Value::Null, rounded);
            vec![
                Value::Text(p.golden_id.clone()),
                Value::opt_text(&p.category),
                p.stock.map_or(Value::Null, Value::Int),
                Value::Text(p.rule.clone()),
                Value::Int(p.policy.lead_time_days as i64),
                Value::Int(p.policy.review_days as i64),
                Value::Float(p.policy.service_level),
                rounded(p.plan.demand_lead_time),
                rounded(p.plan.sd_lead_time),
                rounded(p.plan.safety_stock),
                rounded(p.plan.reorder_point),
                rounded(p.plan.order_up_to),
                p.plan.order_quantity.map_or(Value::Null, Value::Int),
                opt_f(p.plan.days_of_cover),
                Value::Int(p.policy.risk_days as i64),
                opt_f(p.plan.stockout_risk),
            ]
        })
        .collect();
    let schema = replenishment::TABLE.schema();
    let batch = rows_to_batch(&schema, &rows)?;
    tx.replace(replenishment::NAME, &schema, &[batch])?;
    Ok(())
}

fn write_prices(tx: &mut Transaction<'_>, monitor: &PriceMonitor) -> Result<(), ForecastError> {
    let rows: Vec<Vec<Value>> = monitor
        .weekly
        .iter()
        .map(|w| {
            vec![
                Value::Text(w.golden_id.clone()),
                Value::Text(w.platform.clone()),
                Value::Text(w.week.to_string()),
                Value::Int(w.orders as i64),
                rounded(w.price_base),
                rounded(w.price),
                Value::opt_text(&w.currency),
                Value::Text(w.cheapest_platform.clone()),
                rounded(w.cheapest_price_base),
                rounded(w.gap_to_cheapest),
            ]
        })
        .collect();
    let schema = price_history::TABLE.schema();
    let batch = rows_to_batch(&schema, &rows)?;
    tx.replace(price_history::NAME, &schema, &[batch])?;
    let rows: Vec<Vec<Value>> = monitor
        .alerts
        .iter()
        .map(|a| {
            vec![
                Value::Text(a.golden_id.clone()),
                Value::Text(a.platform.clone()),
                Value::Text(a.kind.name().into()),
                Value::Text(a.day.to_string()),
                Value::Text(a.since.to_string()),
                rounded(a.price_base),
                rounded(a.reference_price_base),
                Value::opt_text(&a.reference_platform),
                rounded(a.change),
            ]
        })
        .collect();
    let schema = price_alerts::TABLE.schema();
    let batch = rows_to_batch(&schema, &rows)?;
    tx.replace(price_alerts::NAME, &schema, &[batch])?;
    Ok(())
}
