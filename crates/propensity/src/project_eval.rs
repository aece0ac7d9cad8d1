//! Propensity on a project's fused customers, evaluated on a temporal split: BG/NBD fitted on
//! every order before a cut-off predicts who buys in the next 30 days and how often in the
//! next 90, scored against what they did.
//!
//! The fusion lift: for each platform, the customers that platform knows (an order there
//! before the cut-off) and whether they buy *on that platform* in the next 30 days, predicted
//! once from that platform's orders alone (what the platform sees of its customer) and once
//! from the fused history (the probability of buying anywhere, times the platform's share of
//! the customer's orders). The same model, fed one platform's data vs all of it.
//!
//! Nothing after the cut-off reaches a prediction: histories are cut before the models are
//! fitted (a unit test plants a future order and checks it changes nothing).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::btyd::{BgNbd, Rfm};
use crate::PropensityError;

const DAY_US: i64 = 86_400_000_000;
const WEEK_US: f64 = 7.0 * 86_400_000_000.0;

/// One order of a fused customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Order {
    pub customer: u32,
    pub platform: u16,
    /// Microseconds since the epoch, UTC.
    pub at: i64,
    /// In the base currency.
    pub amount: f64,
}

/// Ranking and calibration figures of one probability against the outcomes.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Scores {
    pub customers: usize,
    pub positives: usize,
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub brier: f64,
    /// Positive rate among the top-scored tenth over the overall rate.
    pub top_decile_lift: f64,
}

impl Scores {
    pub fn of(p: &[f64], y: &[bool]) -> Scores {
        let n = p.len();
        let positives = y.iter().filter(|&&v| v).count();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
        Scores {
            customers: n,
            positives,
            roc_auc: roc_auc(p, y),
            pr_auc: average_precision(&order, y, positives),
            brier: p
                .iter()
                .zip(y)
                .map(|(p, &y)| (p - if y { 1.0 } else { 0.0 }).powi(2))
                .sum::<f64>()
                / n.max(1) as f64,
            top_decile_lift: {
                let top = (n / 10).max(1).min(n);
                let hit = order[..top].iter().filter(|&&i| y[i]).count() as f64 / top as f64;
                let base = positives as f64 / n.max(1) as f64;
                if base > 0.0 {
                    hit / base
                } else {
                    0.0
                }
            },
        }
    }
}

/// Mann–Whitney: the chance a random positive outranks a random negative (ties count half).
fn roc_auc(p: &[f64], y: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..p.len()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && p[idx[j + 1]] == p[idx[i]] {
            j += 1;
        }
        let mid_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += idx[i..=j].iter().filter(|&&k| y[k]).count() as f64 * mid_rank;
        i = j + 1;
    }
    let pos = y.iter().filter(|&&v| v).count() as f64;
    let neg = y.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

fn average_precision(order: &[usize], y: &[bool], positives: usize) -> f64 {
    if positives == 0 {
        return f64::NAN;
    }
    let (mut hits, mut sum) = (0.0, 0.0);
    for (rank, &i) in order.iter().enumerate() {
        if y[i] {
            hits += 1.0;
            sum += hits / (rank + 1) as f64;
        }
    }
    sum / positives as f64
}

/// Each customer's summary at `cutoff` from the orders `keep` admits: frequency and recency
/// in days with an order (several on one day are one purchase), in weeks.
pub fn rfm_at(orders: &[Order], cutoff: i64, keep: impl Fn(&Order) -> bool) -> BTreeMap<u32, Rfm> {
    let mut days: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for o in orders.iter().filter(|o| o.at < cutoff && keep(o)) {
        days.entry(o.customer)
            .or_default()
            .push(o.at.div_euclid(DAY_US));
    }
    days.into_iter()
        .map(|(customer, mut d)| {
            d.sort_unstable();
            d.dedup();
            let first = d[0] as f64 * DAY_US as f64;
            let last = *d.last().expect("non-empty") as f64 * DAY_US as f64;
            let rfm = Rfm {
                frequency: (d.len() - 1) as f64,
                recency: (last - first) / WEEK_US,
                age: (cutoff as f64 - first) / WEEK_US,
                monetary: 0.0,
            };
            (customer, rfm)
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct PlatformLift {
    pub platform: String,
    /// BG/NBD on that platform's orders only.
    pub alone: Scores,
    /// BG/NBD on the fused history (times the platform's share of the orders).
    pub fused: Scores,
    /// The classifier on that platform's orders and behaviour only, and on the fused
    /// customer (`None` when a split has no buyers).
    pub classifier_alone: Option<Scores>,
    pub classifier_fused: Option<Scores>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectEvaluation {
    pub cutoff: String,
    pub model: BgNbd,
    /// P(purchase anywhere in the next 30 days), customers with an order before the cut-off.
    pub buy_30d: Scores,
    /// Expected vs actual purchase days in the next 90 days.
    pub purchases_90d_mae: f64,
    pub purchases_90d_actual: f64,
    pub purchases_90d_forecast: f64,
    pub per_platform: Vec<PlatformLift>,
}

/// The temporal evaluation: cut-off 90 days before the last order.
pub fn evaluate_orders(
    orders: &[Order],
    events: &[crate::classifier::Event],
    platforms: &[String],
) -> Result<ProjectEvaluation, PropensityError> {
    let last = orders
        .iter()
        .map(|o| o.at)
        .max()
        .ok_or(PropensityError::NoData("the project has no orders"))?;
    let cutoff = last - 90 * DAY_US;
    let (month, quarter) = (cutoff + 30 * DAY_US, cutoff + 90 * DAY_US);
    let fused = rfm_at(orders, cutoff, |_| true);
    let customers: Vec<(u32, Rfm)> = fused.iter().map(|(c, r)| (*c, *r)).collect();
    let rfms: Vec<Rfm> = customers.iter().map(|(_, r)| *r).collect();
    let model = BgNbd::fit(&rfms)?;
    let by_customer = group_by_customer(orders);
    let future = |customer: u32, until: i64, platform: Option<u16>| {
        by_customer
            .get(&customer)
            .map_or(0, |mine| future_days_of(mine, cutoff, until, platform))
    };
    let p30: Vec<f64> = rfms
        .iter()
        .map(|r| model.probability_of_purchase(r, 30.0 / 7.0))
        .collect();
    let y30: Vec<bool> = customers
        .iter()
        .map(|(c, _)| future(*c, month, None) > 0)
        .collect();
    let expected: Vec<f64> = rfms
        .iter()
        .map(|r| model.expected_purchases(r, 90.0 / 7.0))
        .collect();
    let actual: Vec<f64> = customers
        .iter()
        .map(|(c, _)| future(*c, quarter, None) as f64)
        .collect();
    let histories = crate::classifier::Histories::new(orders, events);
    let mut per_platform = Vec::new();
    for (p, name) in platforms.iter().enumerate() {
        let lift = platform_lift(orders, cutoff, p as u16, name, &model, &fused, |c| {
            future(c, month, Some(p as u16)) > 0
        })?;
        if let Some(mut lift) = lift {
            if let Some((alone, fused)) =
                crate::classifier::platform_scores(&histories, p as u16, cutoff)?
            {
                lift.classifier_alone = Some(alone);
                lift.classifier_fused = Some(fused);
            }
            per_platform.push(lift);
        }
    }
    Ok(ProjectEvaluation {
        cutoff: chrono::DateTime::from_timestamp_micros(cutoff)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
        model,
        buy_30d: Scores::of(&p30, &y30),
        purchases_90d_mae: expected
            .iter()
            .zip(&actual)
            .map(|(e, a)| (e - a).abs())
            .sum::<f64>()
            / expected.len().max(1) as f64,
        purchases_90d_actual: actual.iter().sum(),
        purchases_90d_forecast: expected.iter().sum(),
        per_platform,
    })
}

/// The fused customers' orders of a project's committed tables (`clean_orders` mapped through
/// `customer_accounts`; refunds and cancellations left out), and the platform names.
pub fn orders_of_project(
    store: &shopfuse_core::TableStore,
) -> Result<ProjectActivity, PropensityError> {
    use shopfuse_identity::customer_accounts as ca;
    let read = |table: &'static str| {
        store
            .read_rows(table)
            .map_err(|e| PropensityError::Table(e.to_string()))?
            .ok_or(PropensityError::NoData(
                "the project has no committed clean_orders / customer_accounts: run `shopfuse run` first",
            ))
    };
    let accounts = read(ca::NAME)?;
    let mut customer_of: HashMap<(String, String), u32> = HashMap::new();
    let mut numbers: HashMap<String, u32> = HashMap::new();
    for r in &accounts.rows {
        let id = accounts.text(r, ca::customer_id).unwrap_or_default();
        let next = numbers.len() as u32;
        let n = *numbers.entry(id).or_insert(next);
        customer_of.insert(
            (
                accounts.text(r, ca::platform).unwrap_or_default(),
                accounts.text(r, ca::account_id).unwrap_or_default(),
            ),
            n,
        );
    }
    let rows = read("clean_orders")?;
    let mut platforms: Vec<String> = Vec::new();
    let mut orders = Vec::with_capacity(rows.rows.len());
    for r in &rows.rows {
        let cancelled = rows
            .text(r, "status")
            .is_some_and(|s| shopfuse_identity::profile::is_cancelled(&s));
        let platform = rows.text(r, "_platform").unwrap_or_default();
        let account = rows.text(r, "account_id").unwrap_or_default();
        let (Some(&customer), Some(at)) = (
            customer_of.get(&(platform.clone(), account)),
            rows.i64(r, "ordered_at"),
        ) else {
            continue;
        };
        if cancelled {
            continue;
        }
        let p = match platforms.iter().position(|x| *x == platform) {
            Some(p) => p,
            None => {
                platforms.push(platform);
                platforms.len() - 1
            }
        };
        orders.push(Order {
            customer,
            platform: p as u16,
            at,
            amount: rows.f64(r, "amount_base").unwrap_or(0.0),
        });
    }
    let rows = read("clean_events")?;
    let mut events = Vec::with_capacity(rows.rows.len());
    for r in &rows.rows {
        let platform = rows.text(r, "_platform").unwrap_or_default();
        let account = rows.text(r, "account_id").unwrap_or_default();
        let kind = match rows.text(r, "event_type").as_deref() {
            Some("view") => 0,
            Some("favorite") => 1,
            Some("cart") => 2,
            Some("purchase") => 3,
            _ => continue,
        };
        let Some(p) = platforms.iter().position(|x| *x == platform) else {
            continue;
        };
        if let (Some(&customer), Some(at)) = (
            customer_of.get(&(platform, account)),
            rows.i64(r, "occurred_at"),
        ) {
            events.push(crate::classifier::Event {
                customer,
                platform: p as u16,
                at,
                kind,
            });
        }
    }
    Ok(ProjectActivity {
        orders,
        events,
        platforms,
    })
}

/// A project's fused activity: orders and behaviour events by customer number, platforms by
/// index.
pub struct ProjectActivity {
    pub orders: Vec<Order>,
    pub events: Vec<crate::classifier::Event>,
    pub platforms: Vec<String>,
}

fn group_by_customer(orders: &[Order]) -> HashMap<u32, Vec<Order>> {
    let mut out: HashMap<u32, Vec<Order>> = HashMap::new();
    for o in orders {
        out.entry(o.customer).or_default().push(*o);
    }
    out
}

fn future_days_of(mine: &[Order], from: i64, until: i64, platform: Option<u16>) -> usize {
    let mut d: Vec<i64> = mine
        .iter()
        .filter(|o| o.at >= from && o.at < until && platform.is_none_or(|p| o.platform == p))
        .map(|o| o.at.div_euclid(DAY_US))
        .collect();
    d.sort_unstable();
    d.dedup();
    d.len()
}

/// The platform's customers scored from its own orders and from the fused history.
fn platform_lift(
    orders: &[Order],
    cutoff: i64,
    platform: u16,
    name: &str,
    fused_model: &BgNbd,
    fused: &BTreeMap<u32, Rfm>,
    bought_there: impl Fn(u32) -> bool,
) -> Result<Option<PlatformLift>, PropensityError> {
    let alone = rfm_at(orders, cutoff, |o| o.platform == platform);
    if alone.len() < 20 {
        return Ok(None);
    }
    let alone_rfms: Vec<Rfm> = alone.values().copied().collect();
    let alone_model = BgNbd::fit(&alone_rfms)?;
    let mut share: HashMap<u32, (f64, f64)> = HashMap::new();
    for o in orders.iter().filter(|o| o.at < cutoff) {
        let s = share.entry(o.customer).or_default();
        s.1 += 1.0;
        if o.platform == platform {
            s.0 += 1.0;
        }
    }
    let labels: Vec<bool> = alone.keys().map(|&c| bought_there(c)).collect();
    let p_alone: Vec<f64> = alone
        .values()
        .map(|r| alone_model.probability_of_purchase(r, 30.0 / 7.0))
        .collect();
    let p_fused: Vec<f64> = alone
        .keys()
        .map(|c| {
            let (mine, all) = share.get(c).copied().unwrap_or((0.0, 1.0));
            fused_model.probability_of_purchase(&fused[c], 30.0 / 7.0) * mine / all.max(1.0)
        })
        .collect();
    Ok(Some(PlatformLift {
        platform: name.to_string(),
        alone: Scores::of(&p_alone, &labels),
        fused: Scores::of(&p_fused, &labels),
        classifier_alone: None,
        classifier_fused: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_scores_match_hand_counts() {
        let p = [0.9, 0.8, 0.3, 0.2];
        let y = [true, false, true, false];
        let s = Scores::of(&p, &y);
        assert!((s.roc_auc - 0.75).abs() < 1e-12);
        assert!((s.pr_auc - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert!((s.brier - (0.01 + 0.64 + 0.49 + 0.04) / 4.0).abs() < 1e-12);
    }

    #[test]
    fn an_order_after_the_cutoff_changes_no_summary() {
        let day = |d: i64| d * DAY_US;
        let mut orders = vec![
            Order {
                customer: 1,
                platform: 0,
                at: day(10),
                amount: 1.0,
            },
            Order {
                customer: 1,
                platform: 1,
                at: day(40),
                amount: 1.0,
            },
            Order {
                customer: 2,
                platform: 0,
                at: day(20),
                amount: 1.0,
            },
        ];
        let before = rfm_at(&orders, day(100), |_| true);
        orders.push(Order {
            customer: 1,
            platform: 0,
            at: day(150),
            amount: 1.0,
        });
        orders.push(Order {
            customer: 3,
            platform: 1,
            at: day(120),
            amount: 1.0,
        });
        assert_eq!(rfm_at(&orders, day(100), |_| true), before);
        assert_eq!(before[&1].frequency, 1.0);
        assert!((before[&1].recency - 30.0 / 7.0).abs() < 1e-9);
    }
}
