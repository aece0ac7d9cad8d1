//! The unified customer table: one row per customer id of `customer_accounts`, with every
//! platform's orders and behaviour events summed up.
//!
//! - RFM: recency (days since the last order), frequency (orders) and monetary value (in the
//!   base currency), all across platforms, refunds and cancellations left out; each scored
//!   1–5 by its quintile among the customers who ordered.
//! - Category interests: behaviour events weighted by type (view 1, favourite 2, cart 3,
//!   purchase 5) and by age (half-life 90 days), on the golden product's category so a JD
//!   "手机" and an Amazon "Mobile Phones" count as one interest.
//! - Segment: the common RFM rules (champion, loyal, new, promising, needs attention, at
//!   risk, hibernating; browser or registered for customers without orders).
//!
//! Times are measured from the latest order or event in the data, not the wall clock, so a
//! re-run on the same data gives the same table.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use shopfuse_core::value::{rows_to_batch, NamedRows};
use shopfuse_core::{EntityKind, Transaction, Value};
use shopfuse_resolve::catalogue::{golden_products, product_clusters};

use crate::{customer_accounts, IdentityError};

const DAY_US: f64 = 86_400_000_000.0;
const INTEREST_HALF_LIFE_DAYS: f64 = 90.0;

/// Segments in the order reports list them; the list is fixed (public), which the
/// differentially private report relies on.
pub const SEGMENTS: [&str; 9] = [
    "champion",
    "loyal",
    "new",
    "promising",
    "needs attention",
    "at risk",
    "hibernating",
    "browser",
    "registered",
];

fn event_weight(event_type: &str) -> f64 {
    match event_type {
        "purchase" => 5.0,
        "cart" => 3.0,
        "favorite" => 2.0,
        _ => 1.0,
    }
}

/// Orders that did not stay sold, in the statuses platforms export (English and Chinese).
pub fn is_cancelled(status: &str) -> bool {
    let s = status.to_lowercase();
    CANCELLED_STATUS_WORDS.iter().any(|w| s.contains(w))
}

/// Words of a lower-cased order status that mean the sale did not stand (what
/// [`is_cancelled`] looks for; SQL readers build their filter from the same list).
pub const CANCELLED_STATUS_WORDS: [&str; 8] = [
    "refund", "cancel", "return", "closed", "退款", "取消", "关闭", "退货",
];

#[derive(Debug, Clone, Default)]
struct Profile {
    accounts: usize,
    platforms: BTreeSet<String>,
    cities: BTreeMap<String, usize>,
    first_seen: Option<i64>,
    last_seen: Option<i64>,
    orders: usize,
    monetary: f64,
    last_order: Option<i64>,
    events: usize,
    interests: BTreeMap<String, f64>,
}

impl Profile {
    fn seen(&mut self, at: Option<i64>) {
        if let Some(t) = at {
            self.first_seen = Some(self.first_seen.map_or(t, |f| f.min(t)));
            self.last_seen = Some(self.last_seen.map_or(t, |l| l.max(t)));
        }
    }
}

/// RFM scores and the segment they put a customer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfm {
    pub recency: u8,
    pub frequency: u8,
    pub monetary: u8,
}

pub fn segment(rfm: Option<Rfm>, has_events: bool) -> &'static str {
    let Some(Rfm {
        recency: r,
        frequency: f,
        ..
    }) = rfm
    else {
        return if has_events { "browser" } else { "registered" };
    };
    match (r, f) {
        (4.., 4..) => "champion",
        (2.., 4..) => "loyal",
        (4.., ..=1) => "new",
        (3.., 2..) => "promising",
        (3.., _) => "needs attention",
        (_, 3..) => "at risk",
        _ => "hibernating",
    }
}

/// 1–5 by quintile: the share of the other values that this one beats (ties share a score).
fn quintile_scores(values: &[f64], higher_is_better: bool) -> Vec<u8> {
    let mut sorted: Vec<f64> = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len().max(1) as f64;
    values
        .iter()
        .map(|v| {
            let below = sorted.partition_point(|x| x < v) as f64;
            let above = (sorted.len() - sorted.partition_point(|x| x <= v)) as f64;
            let beaten = if higher_is_better { below } else { above };
            (1.0 + (5.0 * beaten / n).floor()).min(5.0) as u8
        })
        .collect()
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProfileSummary {
    pub customers: usize,
    pub customers_with_orders: usize,
    pub orders: usize,
    pub orders_without_customer: usize,
    pub events: usize,
    pub segments: BTreeMap<String, usize>,
}

/// Category of each (platform, listing): the golden product's where resolved, else the
/// listing's own.
fn listing_categories(
    tx: &Transaction<'_>,
) -> Result<HashMap<(String, String), String>, IdentityError> {
    let mut out = HashMap::new();
    if let Some(p) = tx.read_rows(&EntityKind::Products.clean_table())? {
        for row in &p.rows {
            if let (Some(platform), Some(id), Some(cat)) = (
                p.text(row, "_platform"),
                p.text(row, "listing_id"),
                p.text(row, "category"),
            ) {
                out.insert((platform, id), cat.to_lowercase());
            }
        }
    }
    let (Some(clusters), Some(golden)) = (
        tx.read_rows(product_clusters::NAME)?,
        tx.read_rows(golden_products::NAME)?,
    ) else {
        return Ok(out);
    };
    let golden_category: HashMap<String, String> = golden
        .rows
        .iter()
        .filter_map(|r| {
            Some((
                golden.text(r, golden_products::golden_id)?,
                golden.text(r, golden_products::category)?,
            ))
        })
        .collect();
    for row in &clusters.rows {
        if let (Some(platform), Some(id), Some(g)) = (
            clusters.text(row, product_clusters::platform),
            clusters.text(row, product_clusters::listing_id),
            clusters.text(row, product_clusters::golden_id),
        ) {
            if let Some(cat) = golden_category.get(&g) {
                out.insert((platform, id), cat.to_lowercase());
            }
        }
    }
    Ok(out)
}

fn account_key(t: &NamedRows, row: &[Value]) -> Option<(String, String)> {
    Some((t.text(row, "_platform")?, t.text(row, "account_id")?))
}

shopfuse_core::table! {
    /// One row per unified customer: every platform's orders and behaviour summed up.
    pub mod customers("customers") {
        /// Unified customer id (CU…, as in customer_accounts).
        customer_id: Text;
        /// Platform accounts of the customer.
        accounts: Int;
        /// Platforms the customer has accounts on, comma-separated.
        platforms: Text;
        /// The most frequent city of the customer's accounts.
        city: Text null;
        /// First registration, order or event.
        first_seen: Timestamp null;
        /// Last registration, order or event.
        last_seen: Timestamp null;
        /// Orders across platforms, refunds and cancellations left out.
        orders: Int;
        /// Spend of those orders in the base currency.
        monetary_base: Float;
        /// Days from the last order to the latest order or event in the data.
        recency_days: Float null;
        /// Recency score 1–5 (quintile among customers who ordered; 5 = most recent).
        r_score: Int null;
        /// Frequency score 1–5.
        f_score: Int null;
        /// Monetary score 1–5.
        m_score: Int null;
        /// champion, loyal, new, promising, needs attention, at risk, hibernating, browser,
        /// registered.
        segment: Text;
        /// Behaviour events across platforms.
        events: Int;
        /// Up to three golden categories with their share of the time-decayed interest
        /// ("手机 0.61; earphones 0.22").
        top_categories: Text null;
        /// The latest order or event in the data: what recency is measured from.
        as_of: Timestamp null;
    }
}

/// The unified customers of `customer_accounts`, in the order they first appear, and which
/// customer each (platform, account id) is: how every per-customer feature maps a platform's
/// rows onto the fused customer.
#[derive(Debug, Clone, Default)]
pub struct CustomerIndex {
    /// Customer ids (CU…), by position.
    pub ids: Vec<String>,
    /// (platform, account id) → position in `ids`.
    pub customer_of: HashMap<(String, String), usize>,
    /// Platforms in the order their first account appears.
    pub platforms: Vec<String>,
}

impl CustomerIndex {
    pub fn from_accounts(accounts: &NamedRows) -> Self {
        use customer_accounts as ca;
        let mut index = CustomerIndex::default();
        let mut position: HashMap<String, usize> = HashMap::new();
        for row in &accounts.rows {
            let (Some(id), Some(platform), Some(account)) = (
                accounts.text(row, ca::customer_id),
                accounts.text(row, ca::platform),
                accounts.text(row, ca::account_id),
            ) else {
                continue;
            };
            if !index.platforms.contains(&platform) {
                index.platforms.push(platform.clone());
            }
            let c = *position.entry(id.clone()).or_insert_with(|| {
                index.ids.push(id);
                index.ids.len() - 1
            });
            index.customer_of.insert((platform, account), c);
        }
        index
    }

    /// The customer of a row that carries `_platform` and `account_id`.
    pub fn customer_of_row(&self, t: &NamedRows, row: &[Value]) -> Option<usize> {
        account_key(t, row).and_then(|k| self.customer_of.get(&k).copied())
    }
}

/// Builds the `customers` table from `customer_accounts`, `clean_orders`, `clean_events`
/// and the product clusters.
pub fn build_profiles(tx: &mut Transaction<'_>) -> Result<ProfileSummary, IdentityError> {
    let accounts = tx
        .read_rows(customer_accounts::NAME)?
        .ok_or(IdentityError::MissingTable {
            table: customer_accounts::NAME,
            fix: "run identity resolution first (`shopfuse run`)",
        })?;
    let (index, mut profiles) = account_pass(&accounts);
    let mut summary = ProfileSummary::default();
    let orders = tx.read_rows(&EntityKind::Orders.clean_table())?;
    let events = tx.read_rows(&EntityKind::Events.clean_table())?;
    let mut as_of = None;
    if let Some(o) = &orders {
        as_of = order_pass(o, &index, &mut profiles, &mut summary);
    }
    as_of = as_of.max(latest_event(events.as_ref()));
    if let Some(e) = &events {
        let categories = listing_categories(tx)?;
        event_pass(e, &index, &categories, as_of, &mut profiles, &mut summary);
    }
    let rfm = rfm_scores(&profiles, as_of);
    summary.customers = profiles.len();
    summary.customers_with_orders = rfm.iter().flatten().count();
    let rows = customer_rows(&index, &profiles, &rfm, as_of, &mut summary);
    let schema = customers::TABLE.schema();
    tx.replace(customers::NAME, &schema, &[rows_to_batch(&schema, &rows)?])?;
    Ok(summary)
}

/// One profile per customer, with its accounts, platforms, cities and registrations.
fn account_pass(accounts: &NamedRows) -> (CustomerIndex, Vec<Profile>) {
    use customer_accounts as ca;
    let index = CustomerIndex::from_accounts(accounts);
    let mut profiles = vec![Profile::default(); index.ids.len()];
    for row in &accounts.rows {
        let (Some(c), Some(platform)) = (
            accounts
                .text(row, ca::platform)
                .zip(accounts.text(row, ca::account_id))
                .and_then(|k| index.customer_of.get(&k).copied()),
            accounts.text(row, ca::platform),
        ) else {
            continue;
        };
        let p = &mut profiles[c];
        p.accounts += 1;
        p.platforms.insert(platform);
        if let Some(city) = accounts.text(row, ca::city) {
            *p.cities.entry(city).or_default() += 1;
        }
        p.seen(accounts.i64(row, ca::registered_at));
    }
    (index, profiles)
}

/// The latest event. With the latest order of a known customer it is "now" for recency and
/// interest decay, so a re-run on the same data gives the same table.
fn latest_event(events: Option<&NamedRows>) -> Option<i64> {
    events
        .into_iter()
        .flat_map(|e| e.rows.iter().map(move |row| e.i64(row, "occurred_at")))
        .max()
        .flatten()
}

/// Orders, spend and last order per customer; refunds and cancellations count as activity
/// only. Returns the latest order of a known customer.
fn order_pass(
    o: &NamedRows,
    index: &CustomerIndex,
    profiles: &mut [Profile],
    summary: &mut ProfileSummary,
) -> Option<i64> {
    let mut latest = None;
    for row in &o.rows {
        summary.orders += 1;
        let Some(c) = index.customer_of_row(o, row) else {
            summary.orders_without_customer += 1;
            continue;
        };
        let at = o.i64(row, "ordered_at");
        latest = latest.max(at);
        let p = &mut profiles[c];
        p.seen(at);
        if o.text(row, "status").is_some_and(|s| is_cancelled(&s)) {
            continue;
        }
        let amount = o.f64(row, "amount_base").or_else(|| {
            Some(o.f64(row, "unit_price_base")? * o.f64(row, "quantity").unwrap_or(1.0))
        });
        p.orders += 1;
        p.monetary += amount.unwrap_or(0.0);
        p.last_order = p.last_order.max(at);
    }
    latest
}

/// Events per customer and the time-decayed interest in each golden category.
fn event_pass(
    e: &NamedRows,
    index: &CustomerIndex,
    categories: &HashMap<(String, String), String>,
    as_of: Option<i64>,
    profiles: &mut [Profile],
    summary: &mut ProfileSummary,
) {
    for row in &e.rows {
        summary.events += 1;
        let Some(c) = index.customer_of_row(e, row) else {
            continue;
        };
        let at = e.i64(row, "occurred_at");
        let p = &mut profiles[c];
        p.seen(at);
        p.events += 1;
        let (Some(platform), Some(listing)) = (e.text(row, "_platform"), e.text(row, "listing_id"))
        else {
            continue;
        };
        let Some(category) = categories.get(&(platform, listing)) else {
            continue;
        };
        let age_days = match (as_of, at) {
            (Some(now), Some(t)) => ((now - t) as f64 / DAY_US).max(0.0),
            _ => 0.0,
        };
        let weight = event_weight(&e.text(row, "event_type").unwrap_or_default())
            * 0.5f64.powf(age_days / INTEREST_HALF_LIFE_DAYS);
        *p.interests.entry(category.clone()).or_default() += weight;
    }
}

fn recency_days(p: &Profile, as_of: Option<i64>) -> Option<f64> {
    match (as_of, p.last_order) {
        (Some(now), Some(t)) => Some((now - t) as f64 / DAY_US),
        _ => None,
    }
}

/// RFM scores among the customers who ordered; `None` for the others.
fn rfm_scores(profiles: &[Profile], as_of: Option<i64>) -> Vec<Option<Rfm>> {
    let buyers: Vec<usize> = (0..profiles.len())
        .filter(|&c| profiles[c].orders > 0)
        .collect();
    let of = |value: &dyn Fn(&Profile) -> f64, higher_is_better| {
        quintile_scores(
            &buyers
                .iter()
                .map(|&c| value(&profiles[c]))
                .collect::<Vec<_>>(),
            higher_is_better,
        )
    };
    let r = of(&|p| recency_days(p, as_of).unwrap_or(f64::MAX), false);
    let f = of(&|p| p.orders as f64, true);
    let m = of(&|p| p.monetary, true);
    let mut rfm: Vec<Option<Rfm>> = vec![None; profiles.len()];
    for (k, &c) in buyers.iter().enumerate() {
        rfm[c] = Some(Rfm {
            recency: r[k],
            frequency: f[k],
            monetary: m[k],
        });
    }
    rfm
}

/// The `customers` rows, in the declared column order; counts the segments.
fn customer_rows(
    index: &CustomerIndex,
    profiles: &[Profile],
    rfm: &[Option<Rfm>],
    as_of: Option<i64>,
    summary: &mut ProfileSummary,
) -> Vec<Vec<Value>> {
    let mut rows = Vec::with_capacity(profiles.len());
    for (c, p) in profiles.iter().enumerate() {
        let seg = segment(rfm[c], p.events > 0);
        *summary.segments.entry(seg.to_string()).or_default() += 1;
        let score = |s: Option<u8>| s.map_or(Value::Null, |v| Value::Int(v as i64));
        let top = top_categories(p);
        rows.push(vec![
            Value::Text(index.ids[c].clone()),
            Value::Int(p.accounts as i64),
            Value::Text(p.platforms.iter().cloned().collect::<Vec<_>>().join(",")),
            main_city(p).map_or(Value::Null, Value::Text),
            p.first_seen.map_or(Value::Null, Value::Timestamp),
            p.last_seen.map_or(Value::Null, Value::Timestamp),
            Value::Int(p.orders as i64),
            Value::Float((p.monetary * 100.0).round() / 100.0),
            recency_days(p, as_of)
                .filter(|_| p.orders > 0)
                .map_or(Value::Null, Value::Float),
            score(rfm[c].map(|x| x.recency)),
            score(rfm[c].map(|x| x.frequency)),
            score(rfm[c].map(|x| x.monetary)),
            Value::Text(seg.to_string()),
            Value::Int(p.events as i64),
            if top.is_empty() {
                Value::Null
            } else {
                Value::Text(top)
            },
            as_of.map_or(Value::Null, Value::Timestamp),
        ]);
    }
    rows
}

/// Up to three categories with their share of the customer's interest.
fn top_categories(p: &Profile) -> String {
    let total: f64 = p.interests.values().sum();
    let mut interests: Vec<(&String, &f64)> = p.interests.iter().collect();
    interests.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
    interests
        .iter()
        .take(3)
        .map(|(cat, w)| format!("{cat} {:.2}", *w / total))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The city most of the customer's accounts name (ties: the alphabetically first).
fn main_city(p: &Profile) -> Option<String> {
    p.cities
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(c, _)| c.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quintiles_reward_the_better_end_and_share_ties() {
        let s = quintile_scores(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], true);
        assert_eq!(s, vec![1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
        let days = quintile_scores(&[1.0, 100.0, 300.0, 300.0, 50.0], false);
        assert_eq!(days, vec![5, 3, 1, 1, 4]);
        assert_eq!(quintile_scores(&[1.0, 1.0, 1.0], true), vec![1, 1, 1]);
    }

    #[test]
    fn segments_follow_the_rfm_rules() {
        let rfm = |r, f| {
            Some(Rfm {
                recency: r,
                frequency: f,
                monetary: 3,
            })
        };
        assert_eq!(segment(rfm(5, 5), true), "champion");
        assert_eq!(segment(rfm(2, 5), true), "loyal");
        assert_eq!(segment(rfm(5, 1), true), "new");
        assert_eq!(segment(rfm(3, 2), true), "promising");
        assert_eq!(segment(rfm(3, 1), true), "needs attention");
        assert_eq!(segment(rfm(1, 3), true), "at risk");
        assert_eq!(segment(rfm(1, 1), false), "hibernating");
        assert_eq!(segment(None, true), "browser");
        assert_eq!(segment(None, false), "registered");
        for s in ["champion", "browser", "hibernating"] {
            assert!(SEGMENTS.contains(&s));
        }
    }

    #[test]
    fn refunds_in_either_language_are_cancelled() {
        for s in ["refunded", "退款成功", "交易关闭", "Cancelled"] {
            assert!(is_cancelled(s), "{s}");
        }
        for s in ["completed", "交易成功", "卖家已发货", "shipped"] {
            assert!(!is_cancelled(s), "{s}");
        }
    }
}
