//! The purchase classifier on fused features: gradient-boosted trees (forust, as the product
//! matcher uses) on what each customer did before a cut-off — orders, spend, recency, and their
//! views, favourites and carts — trained on one cut-off and scored on the next, so that
//! every label lies after every feature.
//!
//! For a target platform P the features come in two views of the same customers: what P sees
//! (P's orders and behaviour only) and the fused customer (P's columns plus the same columns
//! over every platform and P's share). The gap between the two is what fusion adds.

use forust_ml::gradientbooster::GradientBooster;
use forust_ml::objective::ObjectiveType;
use forust_ml::Matrix;

use crate::project_eval::{Order, Scores};
use crate::PropensityError;

const DAY_US: i64 = 86_400_000_000;

/// A behaviour event of a fused customer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Event {
    pub customer: u32,
    pub platform: u16,
    pub at: i64,
    /// 0 view, 1 favourite, 2 cart, 3 purchase.
    pub kind: u8,
}

/// Order and behaviour columns over the activity `keep` admits, as of `cutoff`.
fn activity_columns(
    orders: &[&Order],
    events: &[&Event],
    cutoff: i64,
    keep_order: impl Fn(&Order) -> bool,
    keep_event: impl Fn(&Event) -> bool,
) -> [f64; 10] {
    let days_ago = |at: i64| (cutoff - at) as f64 / DAY_US as f64;
    let mut order_days: Vec<i64> = Vec::new();
    let (mut spend, mut last30, mut last90) = (0.0, 0.0, 0.0);
    for o in orders.iter().filter(|o| o.at < cutoff && keep_order(o)) {
        order_days.push(o.at.div_euclid(DAY_US));
        spend += o.amount;
        let ago = days_ago(o.at);
        last30 += f64::from(u8::from(ago <= 30.0));
        last90 += f64::from(u8::from(ago <= 90.0));
    }
    order_days.sort_unstable();
    order_days.dedup();
    let since = |day: Option<&i64>| day.map_or(9_999.0, |d| days_ago(d * DAY_US));
    let mut recent = [0.0f64; 3];
    let mut last_event: Option<i64> = None;
    for e in events.iter().filter(|e| e.at < cutoff && keep_event(e)) {
        if days_ago(e.at) <= 30.0 && e.kind < 3 {
            recent[e.kind as usize] += 1.0;
        }
        last_event = Some(last_event.map_or(e.at, |l| l.max(e.at)));
    }
    [
        order_days.len() as f64,
        since(order_days.last()),
        since(order_days.first()),
        last30,
        last90,
        spend,
        recent[0],
        recent[1],
        recent[2],
        last_event.map_or(9_999.0, days_ago),
    ]
}

/// One customer's feature row for target `platform`: P's columns, and with `fused` the same
/// over every platform plus P's share of the orders.
fn features(
    orders: &[&Order],
    events: &[&Event],
    cutoff: i64,
    platform: u16,
    fused: bool,
) -> Vec<f64> {
    let mut row = activity_columns(
        orders,
        events,
        cutoff,
        |o| o.platform == platform,
        |e| e.platform == platform,
    )
    .to_vec();
    if fused {
        let all = activity_columns(orders, events, cutoff, |_| true, |_| true);
        row.extend(all);
        row.push(row[0] / all[0].max(1.0));
    }
    row
}

/// Customers' orders and events, by customer number.
pub struct Histories<'a> {
    orders: Vec<Vec<&'a Order>>,
    events: Vec<Vec<&'a Event>>,
}

impl<'a> Histories<'a> {
    pub fn new(orders: &'a [Order], events: &'a [Event]) -> Self {
        let n = orders
            .iter()
            .map(|o| o.customer)
            .chain(events.iter().map(|e| e.customer))
            .max()
            .map_or(0, |m| m as usize + 1);
        let mut by_order = vec![Vec::new(); n];
        for o in orders {
            by_order[o.customer as usize].push(o);
        }
        let mut by_event = vec![Vec::new(); n];
        for e in events {
            by_event[e.customer as usize].push(e);
        }
        Histories {
            orders: by_order,
            events: by_event,
        }
    }

    /// Customers with an order on `platform` before `cutoff`, and whether each buys there in
    /// the 30 days from it.
    fn population(&self, platform: u16, cutoff: i64) -> (Vec<usize>, Vec<bool>) {
        let mut who = Vec::new();
        let mut label = Vec::new();
        for (c, orders) in self.orders.iter().enumerate() {
            if orders
                .iter()
                .any(|o| o.platform == platform && o.at < cutoff)
            {
                who.push(c);
                label.push(orders.iter().any(|o| {
                    o.platform == platform && o.at >= cutoff && o.at < cutoff + 30 * DAY_US
                }));
            }
        }
        (who, label)
    }

    fn rows(&self, who: &[usize], cutoff: i64, platform: u16, fused: bool) -> Vec<Vec<f64>> {
        who.iter()
            .map(|&c| features(&self.orders[c], &self.events[c], cutoff, platform, fused))
            .collect()
    }
}

/// Trains at `cutoff − 30 days` and scores at `cutoff` the purchases on `platform` within 30
/// days, with P's own view and with the fused one: (alone, fused).
pub fn platform_scores(
    histories: &Histories<'_>,
    platform: u16,
    cutoff: i64,
) -> Result<Option<(Scores, Scores)>, PropensityError> {
    let train_cut = cutoff - 30 * DAY_US;
    let (train_who, train_y) = histories.population(platform, train_cut);
    let (test_who, test_y) = histories.population(platform, cutoff);
    let has_both = |y: &[bool]| y.iter().any(|&v| v) && !y.iter().all(|&v| v);
    if train_who.len() < 50 || !has_both(&train_y) || !has_both(&test_y) {
        return Ok(None);
    }
    let mut out = Vec::new();
    for fused in [false, true] {
        let model = fit(
            &histories.rows(&train_who, train_cut, platform, fused),
            &train_y,
        )?;
        let p = predict(&model, &histories.rows(&test_who, cutoff, platform, fused));
        out.push(Scores::of(&p, &test_y));
    }
    Ok(Some((out[0], out[1])))
}

fn column_major(rows: &[Vec<f64>]) -> (Vec<f64>, usize, usize) {
    let (n, cols) = (rows.len(), rows.first().map_or(0, Vec::len));
    let mut data = vec![0.0; n * cols];
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            data[c * n + r] = *v;
        }
    }
    (data, n, cols)
}

fn fit(rows: &[Vec<f64>], labels: &[bool]) -> Result<GradientBooster, PropensityError> {
    let (data, n, cols) = column_major(rows);
    let matrix = Matrix::new(&data, n, cols);
    let y: Vec<f64> = labels.iter().map(|&b| f64::from(u8::from(b))).collect();
    let mut booster = GradientBooster::default()
        .set_objective_type(ObjectiveType::LogLoss)
        .set_iterations(150)
        .set_learning_rate(0.05)
        .set_max_depth(4)
        .set_l2(1.0)
        .set_subsample(0.8)
        .set_seed(11)
        .set_parallel(false);
    booster
        .fit_unweighted(&matrix, &y, None)
        .map_err(|e| PropensityError::Fit(e.to_string()))?;
    Ok(booster)
}

fn predict(model: &GradientBooster, rows: &[Vec<f64>]) -> Vec<f64> {
    let (data, n, cols) = column_major(rows);
    let matrix = Matrix::new(&data, n, cols);
    model
        .predict(&matrix, false)
        .into_iter()
        .map(|log_odds| 1.0 / (1.0 + (-log_odds).exp()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_see_nothing_after_the_cutoff() {
        let day = |d: i64| d * DAY_US;
        let o = |platform, at, amount| Order {
            customer: 0,
            platform,
            at,
            amount,
        };
        let mut orders = vec![o(0, day(10), 5.0), o(1, day(50), 7.0)];
        let events = [Event {
            customer: 0,
            platform: 0,
            at: day(95),
            kind: 2,
        }];
        let row = |orders: &[Order]| {
            let refs: Vec<&Order> = orders.iter().collect();
            let ev: Vec<&Event> = events.iter().collect();
            features(&refs, &ev, day(100), 0, true)
        };
        let before = row(&orders);
        orders.push(o(0, day(101), 100.0));
        assert_eq!(row(&orders), before);
        assert_eq!(before[0], 1.0); // one order day on platform 0
        assert_eq!(before[8], 1.0); // a cart in the last 30 days
        assert_eq!(before[10], 2.0); // two order days on all platforms
    }
}
