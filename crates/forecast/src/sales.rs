//! The sales series of a project: units sold per calendar day (in the `[forecast]` zone) of
//! each golden product on each platform, from clean orders mapped to golden products through
//! `product_clusters` — refunds, cancellations and orders clean flags as outliers left out —
//! and their roll-ups to product, category, platform and total: a grouped hierarchy whose
//! every aggregate is a sum of bottom series.
//!
//! A bottom series starts on the day its listing went up (or its first sale, if earlier —
//! listing dates are sometimes missing or late), so a product launched last month is not a
//! year of zeros; aggregates start with their earliest member.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, NaiveDate};
use chrono_tz::Tz;

use crate::ForecastError;

/// Reads some columns of a table (see [`shopfuse_core::value::ReadColumns`]).
pub type ReadTable<'a> = shopfuse_core::value::ReadColumns<'a>;

/// A level of the hierarchy, bottom first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    ProductPlatform,
    Product,
    Category,
    Platform,
    Total,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::ProductPlatform,
        Level::Product,
        Level::Category,
        Level::Platform,
        Level::Total,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Level::ProductPlatform => "product_platform",
            Level::Product => "product",
            Level::Category => "category",
            Level::Platform => "platform",
            Level::Total => "total",
        }
    }
}

/// Which series: the level and the members that name it (absent ones are "all").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    pub level: Level,
    pub golden_id: Option<String>,
    pub platform: Option<String>,
    pub category: Option<String>,
}

impl SeriesKey {
    /// "GP12 @ taobao", "category 手机", "total" — for reports.
    pub fn label(&self) -> String {
        match self.level {
            Level::ProductPlatform => format!(
                "{} @ {}",
                self.golden_id.as_deref().unwrap_or("?"),
                self.platform.as_deref().unwrap_or("?")
            ),
            Level::Product => self.golden_id.clone().unwrap_or_default(),
            Level::Category => format!("category {}", self.category.as_deref().unwrap_or("-")),
            Level::Platform => format!("platform {}", self.platform.as_deref().unwrap_or("?")),
            Level::Total => "total".into(),
        }
    }
}

/// One series over the project's days.
#[derive(Debug, Clone)]
pub struct SalesSeries {
    pub key: SeriesKey,
    /// Index of its first day in [`Sales::days`].
    pub start: usize,
    /// Units per day from `start` to the last day.
    pub units: Vec<f64>,
}

/// What is known of a golden product.
#[derive(Debug, Clone, Default)]
pub struct ProductFacts {
    pub category: Option<String>,
    /// Units in stock summed over its offers on every platform (None when no offer says).
    pub stock: Option<i64>,
}

/// Every series of a project.
#[derive(Debug, Clone, Default)]
pub struct Sales {
    /// The first day with a sale (daily), or the first whole week's Monday (weekly).
    pub first_day: Option<NaiveDate>,
    /// Steps from the first to the last: days with a sale (daily), or whole weeks.
    pub days: usize,
    /// Days per step: 1 (daily) or 7 (weekly, [`Sales::weekly`]).
    pub step_days: i64,
    pub products: BTreeMap<String, ProductFacts>,
    /// Bottom series first, then every aggregate level in [`Level::ALL`] order.
    pub series: Vec<SalesSeries>,
    /// For each aggregate (index into `series`), the bottom series it sums.
    pub members: HashMap<usize, Vec<usize>>,
    /// Orders read, and those left out (cancelled/refunded, outliers, listing not in any
    /// golden product, no timestamp).
    pub orders_read: usize,
    pub orders_used: usize,
}

impl Sales {
    /// The date of step `step` (a week's Monday for weekly sales).
    pub fn date_of(&self, step: usize) -> Option<NaiveDate> {
        self.first_day
            .map(|d| d + Duration::days(self.step_days.max(1) * step as i64))
    }

    /// The same sales by whole week, Monday to Sunday: the days before the first Monday and
    /// after the last whole week are left out, a series starts with its first whole week,
    /// and the aggregates are summed again from the weekly bottom series so that they stay
    /// coherent (a member's partial first week is in neither).
    pub fn weekly(&self) -> Sales {
        use chrono::Datelike;
        let Some(first) = self.first_day.filter(|_| self.step_days == 1) else {
            return Sales {
                step_days: 7,
                ..Sales::default()
            };
        };
        let skip = (7 - first.weekday().num_days_from_monday() as usize) % 7;
        let weeks = self.days.saturating_sub(skip) / 7;
        let series = self
            .bottom()
            .filter_map(|(_, s)| {
                let start = (s.start.saturating_sub(skip)).div_ceil(7);
                (start < weeks).then(|| SalesSeries {
                    key: s.key.clone(),
                    start,
                    units: (start..weeks)
                        .map(|w| {
                            let from = skip + 7 * w - s.start;
                            s.units[from..from + 7].iter().sum()
                        })
                        .collect(),
                })
            })
            .collect();
        let mut weekly = Sales {
            first_day: Some(first + Duration::days(skip as i64)),
            days: weeks,
            step_days: 7,
            products: self.products.clone(),
            series,
            members: HashMap::new(),
            orders_read: self.orders_read,
            orders_used: self.orders_used,
        };
        add_aggregates(&mut weekly);
        weekly
    }

    pub fn bottom(&self) -> impl Iterator<Item = (usize, &SalesSeries)> {
        self.series
            .iter()
            .enumerate()
            .filter(|(_, s)| s.key.level == Level::ProductPlatform)
    }
}

/// A listing's golden product and listing day.
pub(crate) struct Listing {
    pub(crate) golden: String,
    pub(crate) listed_day: Option<NaiveDate>,
}

/// Reads the project's orders into series.
pub fn read_sales(read: ReadTable<'_>, zone: Tz) -> Result<Sales, ForecastError> {
    let listings = read_listings(read, zone)?;
    let products = read_products(read)?;
    let Some(orders) = read(
        "clean_orders",
        &[
            "_platform",
            "listing_id",
            "ordered_at",
            "quantity",
            "status",
            "_outlier",
        ],
    )?
    else {
        return Ok(Sales::default());
    };
    // (golden, platform) → (day → units)
    let mut daily: BTreeMap<(String, String), BTreeMap<NaiveDate, f64>> = BTreeMap::new();
    let mut used = 0;
    for r in &orders.rows {
        if orders
            .str(r, "status")
            .is_some_and(shopfuse_identity::is_cancelled)
            || orders.bool(r, "_outlier") == Some(true)
        {
            continue;
        }
        let platform = orders.text(r, "_platform").unwrap_or_default();
        let listing = orders.text(r, "listing_id").unwrap_or_default();
        let (Some(l), Some(at)) = (
            listings.get(&(platform.clone(), listing)),
            orders.i64(r, "ordered_at"),
        ) else {
            continue;
        };
        let Some(day) = local_day(at, zone) else {
            continue;
        };
        let quantity = orders.i64(r, "quantity").unwrap_or(1).max(1) as f64;
        *daily
            .entry((l.golden.clone(), platform))
            .or_default()
            .entry(day)
            .or_default() += quantity;
        used += 1;
    }
    let listed: HashMap<(String, String), NaiveDate> = listings
        .iter()
        .filter_map(|((platform, _), l)| {
            Some(((l.golden.clone(), platform.clone()), l.listed_day?))
        })
        .fold(HashMap::new(), |mut m, (k, d)| {
            m.entry(k)
                .and_modify(|e: &mut NaiveDate| *e = (*e).min(d))
                .or_insert(d);
            m
        });
    let mut sales = build(daily, &listed, products);
    sales.orders_read = orders.rows.len();
    sales.orders_used = used;
    Ok(sales)
}

pub(crate) fn local_day(us: i64, zone: Tz) -> Option<NaiveDate> {
    DateTime::from_timestamp_micros(us).map(|t| t.with_timezone(&zone).date_naive())
}

/// Every clustered listing by (platform, listing id).
pub(crate) fn read_listings(
    read: ReadTable<'_>,
    zone: Tz,
) -> Result<HashMap<(String, String), Listing>, ForecastError> {
    use shopfuse_resolve::catalogue::{offers, product_clusters as pc};
    let mut listings = HashMap::new();
    let Some(clusters) = read(pc::NAME, &[pc::golden_id, pc::platform, pc::listing_id])? else {
        return Ok(listings);
    };
    for r in &clusters.rows {
        let key = (
            clusters.text(r, pc::platform).unwrap_or_default(),
            clusters.text(r, pc::listing_id).unwrap_or_default(),
        );
        let golden = clusters.text(r, pc::golden_id).unwrap_or_default();
        listings.insert(
            key,
            Listing {
                golden,
                listed_day: None,
            },
        );
    }
    if let Some(rows) = read(
        offers::NAME,
        &[offers::platform, offers::listing_id, offers::listed_at],
    )? {
        for r in &rows.rows {
            let key = (
                rows.text(r, offers::platform).unwrap_or_default(),
                rows.text(r, offers::listing_id).unwrap_or_default(),
            );
            if let (Some(l), Some(at)) = (listings.get_mut(&key), rows.i64(r, offers::listed_at)) {
                l.listed_day = local_day(at, zone);
            }
        }
    }
    Ok(listings)
}

fn read_products(read: ReadTable<'_>) -> Result<BTreeMap<String, ProductFacts>, ForecastError> {
    use shopfuse_resolve::catalogue::{golden_products as gp, offers};
    let mut products: BTreeMap<String, ProductFacts> = BTreeMap::new();
    if let Some(rows) = read(gp::NAME, &[gp::golden_id, gp::category])? {
        for r in &rows.rows {
            products.insert(
                rows.text(r, gp::golden_id).unwrap_or_default(),
                ProductFacts {
                    category: rows.text(r, gp::category),
                    stock: None,
                },
            );
        }
    }
    if let Some(rows) = read(offers::NAME, &[offers::golden_id, offers::stock])? {
        for r in &rows.rows {
            let id = rows.text(r, offers::golden_id).unwrap_or_default();
            if let (Some(p), Some(stock)) = (products.get_mut(&id), rows.i64(r, offers::stock)) {
                *p.stock.get_or_insert(0) += stock.max(0);
            }
        }
    }
    Ok(products)
}

/// Lays the daily sales out as series over one day range and adds every aggregate.
pub(crate) fn build(
    daily: BTreeMap<(String, String), BTreeMap<NaiveDate, f64>>,
    listed: &HashMap<(String, String), NaiveDate>,
    products: BTreeMap<String, ProductFacts>,
) -> Sales {
    let first = daily
        .values()
        .filter_map(|d| d.keys().next())
        .min()
        .copied();
    let last = daily
        .values()
        .filter_map(|d| d.keys().next_back())
        .max()
        .copied();
    let (Some(first), Some(last)) = (first, last) else {
        return Sales {
            products,
            step_days: 1,
            ..Sales::default()
        };
    };
    let days = (last - first).num_days() as usize + 1;
    let mut series = Vec::new();
    for ((golden, platform), by_day) in &daily {
        let first_sale = *by_day.keys().next().expect("a series has a sale");
        let listed_day = listed.get(&(golden.clone(), platform.clone())).copied();
        let start_day = listed_day
            .map_or(first_sale, |d| d.min(first_sale))
            .max(first);
        let start = (start_day - first).num_days() as usize;
        let mut units = vec![0.0; days - start];
        for (day, &u) in by_day {
            units[(*day - first).num_days() as usize - start] += u;
        }
        let category = products.get(golden).and_then(|p| p.category.clone());
        series.push(SalesSeries {
            key: SeriesKey {
                level: Level::ProductPlatform,
                golden_id: Some(golden.clone()),
                platform: Some(platform.clone()),
                category,
            },
            start,
            units,
        });
    }
    let mut sales = Sales {
        first_day: Some(first),
        days,
        step_days: 1,
        products,
        series,
        members: HashMap::new(),
        orders_read: 0,
        orders_used: 0,
    };
    add_aggregates(&mut sales);
    sales
}

fn add_aggregates(sales: &mut Sales) {
    let bottom = sales.series.len();
    for level in &Level::ALL[1..] {
        let mut groups: BTreeMap<SeriesKey, Vec<usize>> = BTreeMap::new();
        for (i, s) in sales.series[..bottom].iter().enumerate() {
            let k = &s.key;
            let key = SeriesKey {
                level: *level,
                golden_id: (*level == Level::Product)
                    .then(|| k.golden_id.clone())
                    .flatten(),
                platform: (*level == Level::Platform)
                    .then(|| k.platform.clone())
                    .flatten(),
                category: matches!(level, Level::Product | Level::Category)
                    .then(|| k.category.clone())
                    .flatten(),
            };
            groups.entry(key).or_default().push(i);
        }
        for (key, members) in groups {
            let start = members
                .iter()
                .map(|&m| sales.series[m].start)
                .min()
                .unwrap_or(0);
            let mut units = vec![0.0; sales.days - start];
            for &m in &members {
                let s = &sales.series[m];
                for (t, &u) in s.units.iter().enumerate() {
                    units[s.start + t - start] += u;
                }
            }
            sales.members.insert(sales.series.len(), members);
            sales.series.push(SalesSeries { key, start, units });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn series_start_at_listing_and_aggregates_sum_their_members() {
        let mut daily = BTreeMap::new();
        let mut a = BTreeMap::new();
        a.insert(day("2025-01-01"), 2.0);
        a.insert(day("2025-01-05"), 1.0);
        daily.insert(("GP1".to_string(), "jd".to_string()), a);
        let mut b = BTreeMap::new();
        b.insert(day("2025-01-04"), 3.0);
        daily.insert(("GP1".to_string(), "taobao".to_string()), b);
        let mut listed = HashMap::new();
        listed.insert(("GP1".to_string(), "taobao".to_string()), day("2025-01-03"));
        let mut products = BTreeMap::new();
        products.insert(
            "GP1".to_string(),
            ProductFacts {
                category: Some("手机".into()),
                stock: Some(4),
            },
        );
        let sales = build(daily, &listed, products);
        assert_eq!(sales.days, 5);
        let jd = &sales.series[0];
        assert_eq!(
            (jd.start, jd.units.clone()),
            (0, vec![2.0, 0.0, 0.0, 0.0, 1.0])
        );
        let taobao = &sales.series[1];
        assert_eq!(
            (taobao.start, taobao.units.clone()),
            (2, vec![0.0, 3.0, 0.0])
        );
        let product = sales
            .series
            .iter()
            .find(|s| s.key.level == Level::Product)
            .unwrap();
        assert_eq!(product.units, vec![2.0, 0.0, 0.0, 3.0, 1.0]);
        assert_eq!(product.key.label(), "GP1");
        let platforms: Vec<_> = sales
            .series
            .iter()
            .filter(|s| s.key.level == Level::Platform)
            .collect();
        assert_eq!(platforms.len(), 2);
        let total = sales.series.last().unwrap();
        assert_eq!(total.key.level, Level::Total);
        assert_eq!(total.units.iter().sum::<f64>(), 6.0);
        assert_eq!(sales.members[&(sales.series.len() - 1)], vec![0, 1]);
    }

    #[test]
    fn weeks_are_whole_mondays_to_sundays_and_stay_coherent() {
        // 2025-01-01 is a Wednesday: the first Monday is 01-06. jd sells 1 a day from
        // 01-01 to 01-20; taobao from its listing on 01-08 (mid-week) 2 a day.
        let mut daily = BTreeMap::new();
        let jd: BTreeMap<NaiveDate, f64> = (0..20)
            .map(|d| (day("2025-01-01") + Duration::days(d), 1.0))
            .collect();
        daily.insert(("GP1".to_string(), "jd".to_string()), jd);
        let taobao: BTreeMap<NaiveDate, f64> = (7..20)
            .map(|d| (day("2025-01-01") + Duration::days(d), 2.0))
            .collect();
        daily.insert(("GP1".to_string(), "taobao".to_string()), taobao);
        let sales = build(daily, &HashMap::new(), BTreeMap::new());
        let weekly = sales.weekly();
        assert_eq!(weekly.first_day, Some(day("2025-01-06")));
        assert_eq!((weekly.days, weekly.step_days), (2, 7));
        assert_eq!(weekly.date_of(1), Some(day("2025-01-13")));
        assert_eq!(weekly.series[0].units, vec![7.0, 7.0]);
        // Taobao's first whole week is the second.
        assert_eq!(
            (weekly.series[1].start, weekly.series[1].units.clone()),
            (1, vec![14.0])
        );
        let total = weekly.series.last().unwrap();
        assert_eq!(total.units, vec![7.0, 21.0]);
    }
}
