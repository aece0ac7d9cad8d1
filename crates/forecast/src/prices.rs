//! Cross-platform price monitoring: what each golden product sold for on each platform over
//! time, the gap to the cheapest platform, and alerts when a platform undercuts every other
//! or its price moves sharply.
//!
//! Prices are what orders paid (`clean_orders.unit_price_base`, outliers left out), not what
//! a listing says today: that is the only price the exports carry with a date. Vocabulary:
//! - **daily price**: the median an order paid on one day, in the base currency.
//! - **price level**: the median of the last three daily prices. One order at a coupon or a
//!   brushing discount does not move it; a change that holds does, at its second day.
//! - **current price** on a day: the level at the platform's last sale on or before it, if that
//!   was at most `[forecast.prices] stale_days` ago.
//! - **undercut**: the cheapest platform's current price is `undercut_share` or more below the
//!   next cheapest; one alert when it starts, not one per day it lasts.
//! - **sharp move**: a platform's level changes by `sharp_move_share` or more from one day it
//!   sold to the next.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use chrono_tz::Tz;
use serde::Serialize;
use shopfuse_core::config::PriceMonitorConfig;

use crate::sales::{local_day, read_listings, ReadTable};
use crate::ForecastError;

/// Daily prices a level is the median of.
const LEVEL_DAYS: usize = 3;
/// How far back an undercut's gap is compared (see [`undercuts`]).
pub const GAP_MEMORY_DAYS: i64 = 28;

/// One day a golden product sold on a platform.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyPrice {
    pub day: NaiveDate,
    pub orders: usize,
    /// Median paid, base currency and the platform's currency.
    pub price_base: f64,
    pub price: f64,
    /// The price level after this day (see the module docs).
    pub level_base: f64,
    pub level: f64,
}

/// A golden product's prices on one platform, by day.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceSeries {
    pub golden_id: String,
    pub platform: String,
    pub currency: Option<String>,
    pub days: Vec<DailyPrice>,
}

impl PriceSeries {
    /// The index of the last day sold on or before `day`, if within `stale_days`.
    fn current_at(&self, day: NaiveDate, stale_days: usize) -> Option<usize> {
        let i = self.days.partition_point(|d| d.day <= day).checked_sub(1)?;
        ((day - self.days[i].day).num_days() <= stale_days as i64).then_some(i)
    }
}

/// An undercut or a sharp move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Undercut,
    SharpMove,
}

impl AlertKind {
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Undercut => "undercut",
            AlertKind::SharpMove => "sharp_move",
        }
    }
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PriceAlert {
    pub golden_id: String,
    pub platform: String,
    pub kind: AlertKind,
    /// The day the monitor could see it (the level's second day at the new price).
    pub day: NaiveDate,
    /// The first day sold at the new price.
    pub since: NaiveDate,
    /// The platform's price level, base currency.
    pub price_base: f64,
    /// Undercut: the next cheapest platform's price; sharp move: the level before.
    pub reference_price_base: f64,
    /// Undercut: the next cheapest platform.
    pub reference_platform: Option<String>,
    /// Undercut: the share below the reference (0.2 = 20 % cheaper); sharp move: the change
    /// (+0.4 = 40 % dearer).
    pub change: f64,
}

/// A golden product's price on a platform at the end of one week.
#[derive(Debug, Clone, PartialEq)]
pub struct WeeklyPrice {
    pub golden_id: String,
    pub platform: String,
    /// Its Monday.
    pub week: NaiveDate,
    /// Orders in the week (0: the price carries over from an earlier week).
    pub orders: usize,
    pub price_base: f64,
    pub price: f64,
    pub currency: Option<String>,
    pub cheapest_platform: String,
    pub cheapest_price_base: f64,
    /// How much dearer than the cheapest platform (0 for the cheapest).
    pub gap_to_cheapest: f64,
}

/// Everything the monitor found in a project.
#[derive(Debug, Clone, Default)]
pub struct PriceMonitor {
    pub series: Vec<PriceSeries>,
    pub weekly: Vec<WeeklyPrice>,
    pub alerts: Vec<PriceAlert>,
}

/// Reads the prices orders paid into one series per golden product × platform.
pub fn read_prices(read: ReadTable<'_>, zone: Tz) -> Result<Vec<PriceSeries>, ForecastError> {
    let listings = read_listings(read, zone)?;
    let Some(orders) = read(
        "clean_orders",
        &[
            "_platform",
            "listing_id",
            "ordered_at",
            "unit_price",
            "unit_price_base",
            "currency",
            "_outlier",
        ],
    )?
    else {
        return Ok(Vec::new());
    };
    let mut paid: PaidPrices = BTreeMap::new();
    for r in &orders.rows {
        if orders.bool(r, "_outlier") == Some(true) {
            continue;
        }
        let platform = orders.text(r, "_platform").unwrap_or_default();
        let listing = orders.text(r, "listing_id").unwrap_or_default();
        let (Some(l), Some(day), Some(base)) = (
            listings.get(&(platform.clone(), listing)),
            orders
                .i64(r, "ordered_at")
                .and_then(|at| local_day(at, zone)),
            orders.f64(r, "unit_price_base").filter(|p| *p > 0.0),
        ) else {
            continue;
        };
        let own = orders.f64(r, "unit_price").unwrap_or(base);
        let entry = paid.entry((l.golden.clone(), platform)).or_default();
        entry.0 = entry.0.take().or_else(|| orders.text(r, "currency"));
        entry.1.entry(day).or_default().push((base, own));
    }
    Ok(build_series(paid))
}

/// (golden, platform) → (currency, day → (base, own) prices paid).
pub type PaidPrices =
    BTreeMap<(String, String), (Option<String>, BTreeMap<NaiveDate, Vec<(f64, f64)>>)>;

/// Daily medians and levels from the prices paid.
pub fn build_series(paid: PaidPrices) -> Vec<PriceSeries> {
    paid.into_iter()
        .map(|((golden_id, platform), (currency, by_day))| {
            let mut days: Vec<DailyPrice> = Vec::with_capacity(by_day.len());
            for (day, prices) in by_day {
                let price_base = median(prices.iter().map(|p| p.0).collect());
                let price = median(prices.iter().map(|p| p.1).collect());
                let from = days.len().saturating_sub(LEVEL_DAYS - 1);
                let recent = &days[from..];
                let level_base = median(
                    recent
                        .iter()
                        .map(|d| d.price_base)
                        .chain([price_base])
                        .collect(),
                );
                let level = median(recent.iter().map(|d| d.price).chain([price]).collect());
                days.push(DailyPrice {
                    day,
                    orders: prices.len(),
                    price_base,
                    price,
                    level_base,
                    level,
                });
            }
            PriceSeries {
                golden_id,
                platform,
                currency,
                days,
            }
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Weekly prices and alerts for every product.
pub fn monitor(series: Vec<PriceSeries>, config: &PriceMonitorConfig) -> PriceMonitor {
    let mut weekly = Vec::new();
    let mut alerts = Vec::new();
    let mut start = 0;
    while start < series.len() {
        let end = start
            + series[start..]
                .iter()
                .take_while(|s| s.golden_id == series[start].golden_id)
                .count();
        let product: Vec<&PriceSeries> = series[start..end].iter().collect();
        for s in &product {
            alerts.extend(sharp_moves(s, config.sharp_move_share));
        }
        alerts.extend(undercuts(&product, config));
        weekly.extend(weekly_prices(&product, config.stale_days));
        start = end;
    }
    alerts.sort_by(|a, b| {
        (a.day, &a.golden_id, &a.platform, a.kind).cmp(&(b.day, &b.golden_id, &b.platform, b.kind))
    });
    PriceMonitor {
        series,
        weekly,
        alerts,
    }
}

/// The first day of the run of days, ending at `i`, whose own price is near the level at `i`.
fn level_since(s: &PriceSeries, i: usize, tolerance: f64) -> NaiveDate {
    let level = s.days[i].level_base;
    let mut j = i;
    while j > 0 && (s.days[j - 1].price_base / level - 1.0).abs() <= tolerance {
        j -= 1;
    }
    if (s.days[j].price_base / level - 1.0).abs() > tolerance {
        j += 1;
    }
    s.days[j.min(i)].day
}

/// Every day a platform's level moves by `share` or more.
pub fn sharp_moves(s: &PriceSeries, share: f64) -> Vec<PriceAlert> {
    (1..s.days.len())
        .filter_map(|i| {
            let before = s.days[i - 1].level_base;
            let now = s.days[i].level_base;
            let change = now / before - 1.0;
            (change.abs() >= share).then(|| PriceAlert {
                golden_id: s.golden_id.clone(),
                platform: s.platform.clone(),
                kind: AlertKind::SharpMove,
                day: s.days[i].day,
                since: level_since(s, i, share / 2.0),
                price_base: now,
                reference_price_base: before,
                reference_platform: None,
                change,
            })
        })
        .collect()
}

/// Every day one platform starts to undercut the next cheapest.
///
/// An undercut already there when two platforms are first comparable — or when a platform
/// starts or stops having a current price — is the product's standing price gap, not a
/// price move: it shows in `price_history`, and no alert is raised until it has ended. Only
/// a change of price level starts an undercut alert: the gap must also have grown by half
/// the threshold over its smallest in the last [`GAP_MEMORY_DAYS`], so that a standing gap
/// of 9–11 % crossing 10 % with the daily noise of orders is not news. An undercut ends when
/// the gap falls below half the threshold or another platform becomes the cheapest — the
/// hysteresis keeps a gap hovering at the threshold from alerting every week.
pub fn undercuts(product: &[&PriceSeries], config: &PriceMonitorConfig) -> Vec<PriceAlert> {
    let mut days: Vec<NaiveDate> = product
        .iter()
        .flat_map(|s| s.days.iter().map(|d| d.day))
        .collect();
    days.sort_unstable();
    days.dedup();
    let share = config.undercut_share;
    let mut alerts = Vec::new();
    // The platform undercutting, while an undercut lasts; None outside one.
    let mut undercutting: Option<usize> = None;
    // The platforms with a current price the day before.
    let mut compared: Vec<usize> = Vec::new();
    // The gaps of the last days with the same platforms compared.
    let mut recent: Vec<(NaiveDate, f64)> = Vec::new();
    for day in days {
        let ranked = ranked_at(product, day, config.stale_days);
        let mut members: Vec<usize> = ranked.iter().map(|r| r.0).collect();
        members.sort_unstable();
        if members != compared {
            recent.clear();
        }
        compared = members;
        let [(c, cheapest, ci), (n, next, _), ..] = ranked[..] else {
            undercutting = None;
            continue;
        };
        let gap = 1.0 - cheapest / next;
        // The last gap stays even when older than the memory.
        let keep_from = recent.len().saturating_sub(1);
        let mut k = 0;
        recent.retain(|(d, _)| {
            k += 1;
            k > keep_from || (day - *d).num_days() <= GAP_MEMORY_DAYS
        });
        let grown = recent
            .iter()
            .map(|r| r.1)
            .min_by(f64::total_cmp)
            .is_some_and(|smallest| gap - smallest >= share / 2.0);
        recent.push((day, gap));
        let lasting = undercutting == Some(c) && gap >= share / 2.0;
        let starting = !lasting && gap >= share;
        if starting && grown {
            let s = product[c];
            alerts.push(PriceAlert {
                golden_id: s.golden_id.clone(),
                platform: s.platform.clone(),
                kind: AlertKind::Undercut,
                day,
                since: level_since(s, ci, share / 2.0),
                price_base: cheapest,
                reference_price_base: next,
                reference_platform: Some(product[n].platform.clone()),
                change: gap,
            });
        }
        undercutting = (lasting || starting).then_some(c);
    }
    alerts
}

/// The platforms with a current price on `day`, cheapest first: (series, level, day index).
fn ranked_at(
    product: &[&PriceSeries],
    day: NaiveDate,
    stale_days: usize,
) -> Vec<(usize, f64, usize)> {
    let mut ranked: Vec<(usize, f64, usize)> = product
        .iter()
        .enumerate()
        .filter_map(|(k, s)| {
            let i = s.current_at(day, stale_days)?;
            Some((k, s.days[i].level_base, i))
        })
        .collect();
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    ranked
}

/// Each platform's price at the end of every week it has a current price.
pub fn weekly_prices(product: &[&PriceSeries], stale_days: usize) -> Vec<WeeklyPrice> {
    let (Some(first), Some(last)) = (
        product
            .iter()
            .filter_map(|s| s.days.first())
            .map(|d| d.day)
            .min(),
        product
            .iter()
            .filter_map(|s| s.days.last())
            .map(|d| d.day)
            .max(),
    ) else {
        return Vec::new();
    };
    let mut week = first - Duration::days(first.weekday().num_days_from_monday() as i64);
    let mut rows = Vec::new();
    while week <= last {
        let sunday = week + Duration::days(6);
        let ranked = ranked_at(product, sunday, stale_days);
        if let Some(&(c, cheapest, _)) = ranked.first() {
            for &(k, level_base, i) in &ranked {
                let s = product[k];
                rows.push(WeeklyPrice {
                    golden_id: s.golden_id.clone(),
                    platform: s.platform.clone(),
                    week,
                    orders: s
                        .days
                        .iter()
                        .filter(|d| d.day >= week && d.day <= sunday)
                        .map(|d| d.orders)
                        .sum(),
                    price_base: level_base,
                    price: s.days[i].level,
                    currency: s.currency.clone(),
                    cheapest_platform: product[c].platform.clone(),
                    cheapest_price_base: cheapest,
                    gap_to_cheapest: level_base / cheapest - 1.0,
                });
            }
        }
        week += Duration::days(7);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 3, 3).unwrap() + Duration::days(d)
    }

    /// One product on two platforms: jd at 100 throughout, taobao at 98 until day 30, then
    /// 70 (an undercut of 30 %, and a sharp move of −29 %); one coupon order at 80 on jd.
    fn paid() -> PaidPrices {
        let mut paid = PaidPrices::new();
        let mut jd = BTreeMap::new();
        let mut taobao = BTreeMap::new();
        for d in (0..60).step_by(5) {
            let coupon = if d == 20 { 80.0 } else { 100.0 };
            jd.insert(day(d), vec![(coupon, coupon)]);
            let t = if d >= 30 { 70.0 } else { 98.0 };
            taobao.insert(day(d + 1), vec![(t, t), (t, t)]);
        }
        paid.insert(("GP1".into(), "jd".into()), (Some("CNY".into()), jd));
        paid.insert(
            ("GP1".into(), "taobao".into()),
            (Some("CNY".into()), taobao),
        );
        paid
    }

    #[test]
    fn a_price_cut_that_holds_raises_one_undercut_and_one_sharp_move() {
        let m = monitor(build_series(paid()), &PriceMonitorConfig::default());
        let kinds: Vec<(&str, AlertKind, NaiveDate, NaiveDate)> = m
            .alerts
            .iter()
            .map(|a| (a.platform.as_str(), a.kind, a.day, a.since))
            .collect();
        // Taobao's level turns at its second day at 70 (day 36); the move began on day 31.
        assert_eq!(
            kinds,
            vec![
                ("taobao", AlertKind::Undercut, day(36), day(31)),
                ("taobao", AlertKind::SharpMove, day(36), day(31)),
            ],
            "{:#?}",
            m.alerts
        );
        let undercut = &m.alerts[0];
        assert_eq!(undercut.reference_platform.as_deref(), Some("jd"));
        assert!((undercut.change - 0.30).abs() < 1e-9);
        let sharp = &m.alerts[1];
        assert!((sharp.change - (70.0 / 98.0 - 1.0)).abs() < 1e-9);
    }

    #[test]
    fn one_coupon_order_moves_no_level_and_weeks_show_the_gap() {
        let m = monitor(build_series(paid()), &PriceMonitorConfig::default());
        let jd = &m.series[0];
        assert!(jd.days.iter().all(|d| d.level_base == 100.0), "{jd:?}");
        let week_of = |d: i64, platform: &str| {
            m.weekly
                .iter()
                .find(|w| {
                    w.platform == platform
                        && w.week <= day(d)
                        && day(d) < w.week + Duration::days(7)
                })
                .unwrap()
                .clone()
        };
        let early = week_of(10, "jd");
        assert_eq!(early.cheapest_platform, "taobao");
        assert!((early.gap_to_cheapest - (100.0 / 98.0 - 1.0)).abs() < 1e-9);
        let late = week_of(50, "jd");
        assert!((late.gap_to_cheapest - (100.0 / 70.0 - 1.0)).abs() < 1e-9);
        assert_eq!(week_of(50, "taobao").gap_to_cheapest, 0.0);
        assert_eq!(early.orders + week_of(10, "taobao").orders, 3);
    }

    #[test]
    fn a_standing_gap_is_no_alert_and_a_gap_at_the_threshold_alerts_once() {
        let mut paid = PaidPrices::new();
        let mut jd = BTreeMap::new();
        let mut amazon = BTreeMap::new();
        let mut taobao = BTreeMap::new();
        for d in (0..200).step_by(4) {
            // Amazon 20 % dearer than jd from the start: standing.
            jd.insert(day(d), vec![(100.0, 100.0)]);
            amazon.insert(day(d + 1), vec![(120.0, 16.6)]);
            // Taobao joins at 103, then hovers around 10 % below jd from day 100.
            let t = if d < 100 {
                103.0
            } else if (d / 4) % 2 == 0 {
                89.5
            } else {
                90.5
            };
            if d >= 40 {
                taobao.insert(day(d + 2), vec![(t, t)]);
            }
        }
        paid.insert(
            ("GP1".into(), "amazon".into()),
            (Some("USD".into()), amazon),
        );
        paid.insert(("GP1".into(), "jd".into()), (Some("CNY".into()), jd));
        paid.insert(
            ("GP1".into(), "taobao".into()),
            (Some("CNY".into()), taobao),
        );
        let m = monitor(build_series(paid), &PriceMonitorConfig::default());
        let undercuts: Vec<&PriceAlert> = m
            .alerts
            .iter()
            .filter(|a| a.kind == AlertKind::Undercut)
            .collect();
        assert_eq!(undercuts.len(), 1, "{undercuts:#?}");
        assert_eq!(undercuts[0].platform, "taobao");
        assert_eq!(undercuts[0].reference_platform.as_deref(), Some("jd"));
        assert!(undercuts[0].day > day(100));
    }

    #[test]
    fn a_standing_gap_crossing_the_threshold_with_noise_is_no_alert() {
        let mut paid = PaidPrices::new();
        let mut jd = BTreeMap::new();
        let mut taobao = BTreeMap::new();
        for d in (0..200).step_by(4) {
            jd.insert(day(d), vec![(100.0, 100.0)]);
            let t = if (d / 4) % 3 == 0 { 89.5 } else { 90.5 };
            taobao.insert(day(d + 1), vec![(t, t)]);
        }
        paid.insert(("GP1".into(), "jd".into()), (Some("CNY".into()), jd));
        paid.insert(
            ("GP1".into(), "taobao".into()),
            (Some("CNY".into()), taobao),
        );
        let m = monitor(build_series(paid), &PriceMonitorConfig::default());
        assert!(m.alerts.is_empty(), "{:#?}", m.alerts);
    }

    #[test]
    fn a_stale_price_is_not_undercut() {
        let mut paid = paid();
        // jd stops selling after day 5; by day 100 its price is too old to compare.
        let jd = &mut paid
            .get_mut(&("GP1".to_string(), "jd".to_string()))
            .unwrap()
            .1;
        jd.retain(|d, _| *d <= day(5));
        let config = PriceMonitorConfig {
            stale_days: 20,
            ..PriceMonitorConfig::default()
        };
        let m = monitor(build_series(paid), &config);
        assert!(
            m.alerts.iter().all(|a| a.kind == AlertKind::SharpMove),
            "{:?}",
            m.alerts
        );
    }
}
