//! Features of a customer as of a cut-off: recency, frequency and spend of their orders, and
//! the views, favourites and carts that come before a purchase — over every platform (the
//! fused customer) or over one platform (what that platform sees of them).
//!
//! Everything is computed from activity strictly before the cut-off; a unit test plants
//! activity after it and checks that no feature moves.

use crate::activity::{EventKind, Histories, DAY_US};

/// Whose activity a block of columns counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every platform: the fused customer.
    All,
    /// One platform, by number.
    Platform(u16),
}

impl Scope {
    fn admits(self, platform: u16) -> bool {
        match self {
            Scope::All => true,
            Scope::Platform(p) => p == platform,
        }
    }
}

/// The columns of one scope's block, in order.
pub const BLOCK: [&str; 13] = [
    "order_days",
    "days_since_last_order",
    "days_since_first_order",
    "orders_30d",
    "orders_90d",
    "spend",
    "avg_order_value",
    "views_7d",
    "views_30d",
    "favorites_30d",
    "carts_30d",
    "favorites_carts_7d",
    "days_since_last_event",
];

/// "Never" for the days-since columns: far beyond any history, so trees split it off.
const NEVER: f64 = 9_999.0;

/// Which model a feature row is for: the columns differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Purchase or churn anywhere: the fused block and the platform mix.
    Overall,
    /// Purchase on one platform seen by that platform alone: its block.
    PlatformAlone(u16),
    /// Purchase on one platform seen by the fused customer: its block, the fused block, its
    /// share of the orders and the platform mix.
    PlatformFused(u16),
}

impl View {
    /// Column names, `block_column[scope]`, for drivers and the model's record.
    pub fn names(self, platforms: &[String]) -> Vec<String> {
        let block = |scope: &str| -> std::vec::IntoIter<String> {
            let names: Vec<String> = BLOCK.iter().map(|c| format!("{c}[{scope}]")).collect();
            names.into_iter()
        };
        let name = |p: u16| platforms.get(p as usize).cloned().unwrap_or_default();
        let mix = [
            "platforms_ordered".to_string(),
            "platforms_active_30d".to_string(),
        ];
        match self {
            View::Overall => block("all").chain(mix).collect(),
            View::PlatformAlone(p) => block(&name(p)).collect(),
            View::PlatformFused(p) => block(&name(p))
                .chain(block("all"))
                .chain([format!("share_of_orders[{}]", name(p))])
                .chain(mix)
                .collect(),
        }
    }

    pub fn row(self, histories: &Histories<'_>, customer: usize, cutoff: i64) -> Vec<f64> {
        let block = |scope| block(histories, customer, cutoff, scope);
        match self {
            View::Overall => {
                let mut row = block(Scope::All).to_vec();
                row.extend(platform_mix(histories, customer, cutoff));
                row
            }
            View::PlatformAlone(p) => block(Scope::Platform(p)).to_vec(),
            View::PlatformFused(p) => {
                let mine = block(Scope::Platform(p));
                let all = block(Scope::All);
                let mut row = mine.to_vec();
                row.extend(all);
                row.push(mine[0] / all[0].max(1.0));
                row.extend(platform_mix(histories, customer, cutoff));
                row
            }
        }
    }
}

fn block(histories: &Histories<'_>, customer: usize, cutoff: i64, scope: Scope) -> [f64; 13] {
    let days_ago = |at: i64| (cutoff - at) as f64 / DAY_US as f64;
    let mut order_days: Vec<i64> = Vec::new();
    let (mut spend, mut orders, mut last30, mut last90) = (0.0, 0.0, 0.0, 0.0);
    for o in histories.orders[customer]
        .iter()
        .filter(|o| o.at < cutoff && scope.admits(o.platform))
    {
        order_days.push(o.at.div_euclid(DAY_US));
        spend += o.amount;
        orders += 1.0;
        let ago = days_ago(o.at);
        last30 += f64::from(u8::from(ago <= 30.0));
        last90 += f64::from(u8::from(ago <= 90.0));
    }
    order_days.sort_unstable();
    order_days.dedup();
    let since = |day: Option<&i64>| day.map_or(NEVER, |d| days_ago(d * DAY_US).max(0.0));
    let (mut views7, mut views30, mut fav30, mut carts30, mut intent7) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut last_event: Option<i64> = None;
    for e in histories.events[customer]
        .iter()
        .filter(|e| e.at < cutoff && scope.admits(e.platform))
    {
        let ago = days_ago(e.at);
        let (week, month) = (
            f64::from(u8::from(ago <= 7.0)),
            f64::from(u8::from(ago <= 30.0)),
        );
        match e.kind {
            EventKind::View => {
                views7 += week;
                views30 += month;
            }
            EventKind::Favorite => {
                fav30 += month;
                intent7 += week;
            }
            EventKind::Cart => {
                carts30 += month;
                intent7 += week;
            }
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
        if orders > 0.0 { spend / orders } else { 0.0 },
        views7,
        views30,
        fav30,
        carts30,
        intent7,
        last_event.map_or(NEVER, days_ago),
    ]
}

/// Platforms ordered on, and platforms with any activity in the last 30 days.
fn platform_mix(histories: &Histories<'_>, customer: usize, cutoff: i64) -> [f64; 2] {
    let mut ordered: Vec<u16> = histories.orders[customer]
        .iter()
        .filter(|o| o.at < cutoff)
        .map(|o| o.platform)
        .collect();
    ordered.sort_unstable();
    ordered.dedup();
    let recent = |at: i64| at < cutoff && cutoff - at <= 30 * DAY_US;
    let mut active: Vec<u16> = histories.orders[customer]
        .iter()
        .filter(|o| recent(o.at))
        .map(|o| o.platform)
        .chain(
            histories.events[customer]
                .iter()
                .filter(|e| recent(e.at))
                .map(|e| e.platform),
        )
        .collect();
    active.sort_unstable();
    active.dedup();
    [ordered.len() as f64, active.len() as f64]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::{Activity, Event, Order};

    #[test]
    fn features_see_nothing_after_the_cutoff() {
        let day = |d: i64| d * DAY_US;
        let o = |platform, at, amount| Order {
            customer: 0,
            platform,
            at,
            amount,
        };
        let mut activity = Activity {
            orders: vec![o(0, day(10), 5.0), o(1, day(50), 7.0)],
            events: vec![Event {
                customer: 0,
                platform: 1,
                at: day(95),
                kind: EventKind::Cart,
            }],
            platforms: vec!["taobao".into(), "jd".into()],
            customer_ids: vec!["CU1".into()],
            accounts: vec![(0, 0), (0, 1)],
        };
        let rows = |activity: &Activity| {
            let h = Histories::new(activity);
            [
                View::Overall,
                View::PlatformAlone(0),
                View::PlatformFused(0),
            ]
            .map(|v| v.row(&h, 0, day(100)))
        };
        let before = rows(&activity);
        activity.orders.push(o(0, day(101), 100.0));
        activity.orders.push(o(1, day(100), 100.0));
        activity.events.push(Event {
            customer: 0,
            platform: 0,
            at: day(100),
            kind: EventKind::View,
        });
        assert_eq!(rows(&activity), before);
        let [overall, alone, fused] = before;
        assert_eq!(overall[0], 2.0); // two order days on all platforms
        assert_eq!(overall[10], 1.0); // the JD cart in the last 30 days
        assert_eq!(overall[11], 1.0); // … and in the last 7
        assert_eq!(alone[0], 1.0); // one order day on Taobao
        assert_eq!(alone[10], 0.0); // Taobao does not see the JD cart
        assert_eq!(fused[13 + 10], 1.0); // the fused view does
        assert_eq!(fused[26], 0.5); // Taobao's share of the order days
        let names = View::PlatformFused(0).names(&activity.platforms);
        assert_eq!(names.len(), fused.len());
        assert_eq!(names[10], "carts_30d[taobao]");
    }
}
