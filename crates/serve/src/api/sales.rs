//! Aggregates the dashboard's sales page reads: orders, units and revenue per period and
//! platform or category (`GET /api/v1/reports/sales`), the forecast of one series with its
//! bands (`GET /api/v1/forecasts`), and one golden product's prices over time with its alerts
//! (`GET /api/v1/products/{golden_id}/prices`). All are aggregates: viewer role.
//!
//! Sales are counted as the forecast stage counts them, so the chart's history and the
//! forecast beside it are the same quantity: refunded, cancelled and outlier orders out, days
//! (weeks, months) in the `[forecast] timezone` — Double 11 is one day in Beijing, not two
//! halves of UTC days.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use shopfuse_query::sql_literal;
use utoipa::{IntoParams, ToSchema};

use super::reports::blocking;
use super::{query, Caller};
use crate::error::ErrorBody;
use crate::{ApiError, AppState, Role};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SalesQuery {
    /// `day`, `week` (Monday to Sunday) or `month` (default `day`).
    pub grain: Option<String>,
    /// `platform` (default), `category` or `total`.
    pub by: Option<String>,
    /// First day counted, `YYYY-MM-DD` (default: all).
    pub from: Option<String>,
    /// Last day counted, `YYYY-MM-DD` (default: all).
    pub to: Option<String>,
}

/// Sales of one period in one group.
#[derive(Debug, Serialize, ToSchema)]
pub struct SalesPoint {
    /// The period's first day, `YYYY-MM-DD`.
    pub period: String,
    /// The platform, the golden category (`null` for listings in no golden product), or
    /// `total`.
    pub key: Option<String>,
    pub orders: i64,
    pub units: i64,
    /// Revenue in the base currency.
    pub revenue_base: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SalesReport {
    pub grain: String,
    pub by: String,
    /// The time zone periods are cut in.
    pub timezone: String,
    pub base_currency: String,
    pub points: Vec<SalesPoint>,
}

/// Orders, units and revenue per day, week or month, per platform or category.
#[utoipa::path(
    get, path = "/api/v1/reports/sales", params(SalesQuery),
    responses((status = 200, body = SalesReport), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn sales(
    State(state): State<AppState>,
    caller: Caller,
    parsed: Result<Query<SalesQuery>, QueryRejection>,
) -> Result<Json<SalesReport>, ApiError> {
    caller.require(Role::Viewer, "/api/v1/reports/sales")?;
    let q = query(parsed)?;
    let grain = one_of("grain", q.grain.as_deref(), &["day", "week", "month"])?;
    let by = one_of("by", q.by.as_deref(), &["platform", "category", "total"])?;
    let from = q.from.as_deref().map(|d| day("from", d)).transpose()?;
    let to = q.to.as_deref().map(|d| day("to", d)).transpose()?;
    let config = &state.project().config;
    let timezone = config.forecast.timezone.clone();
    let base_currency = config.project.base_currency.clone();
    let sql = sales_sql(grain, by, &timezone, from, to);
    let points = blocking(move || {
        let engine = state.sql_engine().map_err(|e| e.to_string())?;
        if !engine.tables().iter().any(|t| t == "clean_orders") {
            return Ok(Vec::new());
        }
        let rows = engine
            .sql(&sql)
            .and_then(|r| r.to_json_rows())
            .map_err(|e| e.to_string())?;
        Ok(rows.into_iter().map(sales_point).collect())
    })
    .await?;
    Ok(Json(SalesReport {
        grain: grain.to_string(),
        by: by.to_string(),
        timezone,
        base_currency,
        points,
    }))
}

/// The query behind [`sales`]: every argument is checked or a literal by then.
fn sales_sql(
    grain: &str,
    by: &str,
    timezone: &str,
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
) -> String {
    let local = format!("o.ordered_at AT TIME ZONE {}", sql_literal(timezone));
    let period = format!("to_char(date_trunc('{grain}', {local}), '%Y-%m-%d')");
    let stood = shopfuse_identity::CANCELLED_STATUS_WORDS
        .iter()
        .map(|w| {
            format!(
                "lower(o.status) not like {}",
                sql_literal(&format!("%{w}%"))
            )
        })
        .collect::<Vec<_>>()
        .join(" and ");
    let mut filter = format!("not o._outlier and (o.status is null or ({stood}))");
    if let Some(from) = from {
        filter += &format!(" and to_char({local}, '%Y-%m-%d') >= '{from}'");
    }
    if let Some(to) = to {
        filter += &format!(" and to_char({local}, '%Y-%m-%d') <= '{to}'");
    }
    let (key, join) = match by {
        "category" => (
            "g.category",
            "left join product_clusters c on c.platform = o._platform and c.listing_id = o.listing_id \
             left join golden_products g on g.golden_id = c.golden_id",
        ),
        "total" => ("'total'", ""),
        _ => ("o._platform", ""),
    };
    format!(
        "select {period} as period, {key} as key, count(*) as orders, \
         coalesce(sum(o.quantity), 0) as units, coalesce(sum(o.amount_base), 0.0) as revenue_base \
         from clean_orders o {join} where {filter} group by 1, 2 order by 1, 2"
    )
}

fn sales_point(row: serde_json::Map<String, serde_json::Value>) -> SalesPoint {
    let text = |k: &str| row.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let int = |k: &str| row.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
    SalesPoint {
        period: text("period").unwrap_or_default(),
        key: text("key"),
        orders: int("orders"),
        units: int("units"),
        revenue_base: row
            .get("revenue_base")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0),
    }
}

/// `value` if it is one of `allowed` (the first when absent), else a `400` naming the
/// parameter and the choices.
pub(super) fn one_of<'a>(
    name: &str,
    value: Option<&str>,
    allowed: &[&'a str],
) -> Result<&'a str, ApiError> {
    match value {
        None => Ok(allowed[0]),
        Some(v) => allowed.iter().copied().find(|a| *a == v).ok_or_else(|| {
            ApiError::bad_request(format!(
                "{name} must be one of {} (is {v:?})",
                allowed.join(", ")
            ))
        }),
    }
}

fn day(name: &str, text: &str) -> Result<chrono::NaiveDate, ApiError> {
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        ApiError::bad_request(format!("{name} must be a day as YYYY-MM-DD (is {text:?})"))
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ForecastQuery {
    /// `total` (default), `platform`, `category`, `product` or `product_platform`.
    pub level: Option<String>,
    /// The platform, category or golden id the level needs (none for `total`).
    pub key: Option<String>,
    /// With `product_platform`: the platform.
    pub platform: Option<String>,
    /// `daily` (default) or `weekly`.
    pub frequency: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastPoint {
    pub day: String,
    pub step: i64,
    pub forecast: f64,
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
    pub model: Option<String>,
    pub promotion: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastSeries {
    pub level: String,
    pub frequency: String,
    /// The series in words ("total", "category 手机").
    pub series: Option<String>,
    pub points: Vec<ForecastPoint>,
}

/// One series' forecast, step by step, with its P10/P50/P90 band.
#[utoipa::path(
    get, path = "/api/v1/forecasts", params(ForecastQuery),
    responses((status = 200, body = ForecastSeries), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn forecasts(
    State(state): State<AppState>,
    caller: Caller,
    parsed: Result<Query<ForecastQuery>, QueryRejection>,
) -> Result<Json<ForecastSeries>, ApiError> {
    caller.require(Role::Viewer, "/api/v1/forecasts")?;
    let q = query(parsed)?;
    let level = one_of(
        "level",
        q.level.as_deref(),
        &[
            "total",
            "platform",
            "category",
            "product",
            "product_platform",
        ],
    )?;
    let frequency = one_of("frequency", q.frequency.as_deref(), &["daily", "weekly"])?;
    let mut filter = format!("level = '{level}' and frequency = '{frequency}'");
    let key = |what: &str| {
        q.key
            .as_deref()
            .map(sql_literal)
            .ok_or_else(|| ApiError::bad_request(format!("level {level} needs key= (the {what})")))
    };
    match level {
        "platform" => filter += &format!(" and platform = {}", key("platform")?),
        "category" => filter += &format!(" and category = {}", key("category")?),
        "product" => filter += &format!(" and golden_id = {}", key("golden id")?),
        "product_platform" => {
            let platform = q.platform.as_deref().map(sql_literal).ok_or_else(|| {
                ApiError::bad_request("level product_platform needs platform=".to_string())
            })?;
            filter += &format!(
                " and golden_id = {} and platform = {platform}",
                key("golden id")?
            );
        }
        _ => {}
    }
    let sql = format!(
        "select series, day, step, forecast, p10, p50, p90, model, promotion from forecasts \
         where {filter} order by step"
    );
    let rows = blocking(move || {
        let engine = state.sql_engine().map_err(|e| e.to_string())?;
        if !engine.tables().iter().any(|t| t == "forecasts") {
            return Ok(Vec::new());
        }
        engine
            .sql(&sql)
            .and_then(|r| r.to_json_rows())
            .map_err(|e| e.to_string())
    })
    .await?;
    if rows.is_empty() {
        return Err(ApiError::not_found(format!(
            "no {frequency} forecast at level {level}{}: run `shopfuse run` (the forecast stage), or check the key",
            q.key.as_deref().map(|k| format!(" for {k:?}")).unwrap_or_default()
        )));
    }
    let series = rows[0]
        .get("series")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let points = rows.into_iter().map(forecast_point).collect();
    Ok(Json(ForecastSeries {
        level: level.to_string(),
        frequency: frequency.to_string(),
        series,
        points,
    }))
}

fn forecast_point(row: serde_json::Map<String, serde_json::Value>) -> ForecastPoint {
    let text = |k: &str| row.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let num = |k: &str| row.get(k).and_then(|v| v.as_f64()).unwrap_or(0.0);
    ForecastPoint {
        day: text("day").unwrap_or_default(),
        step: row.get("step").and_then(|v| v.as_i64()).unwrap_or(0),
        forecast: num("forecast"),
        p10: num("p10"),
        p50: num("p50"),
        p90: num("p90"),
        model: text("model"),
        promotion: text("promotion"),
    }
}

/// A golden product's price per platform and week, and its price alerts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPrices {
    pub golden_id: String,
    /// Rows of `price_history` (week, platform, price_base, price, currency, gap_to_cheapest …),
    /// oldest first.
    pub history: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Rows of `price_alerts`, newest first.
    pub alerts: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// One golden product's prices on every platform over time, with its undercut and sharp-move
/// alerts.
#[utoipa::path(
    get, path = "/api/v1/products/{golden_id}/prices",
    params(("golden_id" = String, Path, description = "Golden product id (GP…)")),
    responses((status = 200, body = ProductPrices), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub(super) async fn product_prices(
    State(state): State<AppState>,
    caller: Caller,
    Path(golden_id): Path<String>,
) -> Result<Json<ProductPrices>, ApiError> {
    caller.require(Role::Viewer, "/api/v1/products/{golden_id}/prices")?;
    if state.index().product(&golden_id).is_none() {
        return Err(ApiError::not_found(format!(
            "no golden product {golden_id:?}"
        )));
    }
    let id = sql_literal(&golden_id);
    let (history, alerts) = blocking(move || {
        let engine = state.sql_engine().map_err(|e| e.to_string())?;
        let read = |table: &str, order: &str| {
            if !engine.tables().iter().any(|t| t == table) {
                return Ok(Vec::new());
            }
            engine
                .sql(&format!(
                    "select * from {table} where golden_id = {id} order by {order}"
                ))
                .and_then(|r| r.to_json_rows())
                .map_err(|e| e.to_string())
        };
        Ok((
            read("price_history", "week, platform")?,
            read("price_alerts", "day desc, platform")?,
        ))
    })
    .await?;
    Ok(Json(ProductPrices {
        golden_id,
        history,
        alerts,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sales_sql_quotes_the_time_zone_and_keeps_refunds_out() {
        let sql = sales_sql("week", "category", "Asia/Shanghai'--", None, None);
        assert!(sql.contains("AT TIME ZONE 'Asia/Shanghai''--'"), "{sql}");
        assert!(sql.contains("not like '%refund%'"), "{sql}");
        assert!(sql.contains("not like '%退款%'"), "{sql}");
        assert!(sql.contains("date_trunc('week'"), "{sql}");
        assert!(sql.contains("join golden_products"), "{sql}");
    }

    #[test]
    fn a_parameter_outside_its_choices_is_named() {
        let e = one_of("grain", Some("hour"), &["day", "week"]).unwrap_err();
        assert!(
            e.message.contains("grain must be one of day, week"),
            "{}",
            e.message
        );
        assert_eq!(one_of("grain", None, &["day", "week"]).unwrap(), "day");
        assert!(day("from", "2025-13-01").is_err());
    }
}
