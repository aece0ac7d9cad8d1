//! Behavioural evidence per order and per review: what each feature measures, its value, and
//! the sentence a reason shows.
//!
//! Every feature is oriented so that a larger value is more suspicious, and is "no
//! evidence" (NaN) where it cannot be judged — a first order has no history to be new
//! against. History is the entity's: in the fused view a customer's orders on every
//! platform, so an account taken over on JD is judged against the devices and addresses the
//! person uses on Taobao too.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::order_book::{OrderBook, Review};
use crate::rings::{Incidences, Ring};

const DAY_US: i64 = 86_400_000_000;
const HOUR_US: i64 = 3_600_000_000;
/// An entity younger than this is new (days).
const NEW_ENTITY_DAYS: f64 = 7.0;

/// One feature of the order evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderFeature {
    NewDevice,
    NewAddress,
    NewCity,
    ValueJump,
    QuietDays,
    NightHour,
    Newness,
    SharedDevice,
    SharedIp,
    SharedAddress,
    RepeatListing,
    ListingBurst,
    Ring,
    Outlier,
}

impl OrderFeature {
    pub const ALL: [OrderFeature; 14] = [
        OrderFeature::NewDevice,
        OrderFeature::NewAddress,
        OrderFeature::NewCity,
        OrderFeature::ValueJump,
        OrderFeature::QuietDays,
        OrderFeature::NightHour,
        OrderFeature::Newness,
        OrderFeature::SharedDevice,
        OrderFeature::SharedIp,
        OrderFeature::SharedAddress,
        OrderFeature::RepeatListing,
        OrderFeature::ListingBurst,
        OrderFeature::Ring,
        OrderFeature::Outlier,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OrderFeature::NewDevice => "new_device",
            OrderFeature::NewAddress => "new_address",
            OrderFeature::NewCity => "new_city",
            OrderFeature::ValueJump => "value_jump",
            OrderFeature::QuietDays => "quiet_days",
            OrderFeature::NightHour => "night",
            OrderFeature::Newness => "new_account",
            OrderFeature::SharedDevice => "shared_device",
            OrderFeature::SharedIp => "shared_ip",
            OrderFeature::SharedAddress => "shared_address",
            OrderFeature::RepeatListing => "repeat_listing",
            OrderFeature::ListingBurst => "listing_burst",
            OrderFeature::Ring => "ring",
            OrderFeature::Outlier => "outlier",
        }
    }

    /// The reason's sentence for the raw value.
    pub fn reason(self, raw: f64) -> String {
        match self {
            OrderFeature::NewDevice => "a device the customer never used".into(),
            OrderFeature::NewAddress => "ships to an address the customer never used".into(),
            OrderFeature::NewCity => "ships to a city the customer never ordered to".into(),
            OrderFeature::ValueJump => format!("value {raw:.1}× the customer's usual"),
            OrderFeature::QuietDays => format!("first order after {raw:.0} quiet days"),
            OrderFeature::NightHour => format!("placed at {raw:02.0}:00 Beijing time"),
            OrderFeature::Newness => format!("customer {raw:.0} days old"),
            OrderFeature::SharedDevice => format!("device shared by {raw:.0} customers"),
            OrderFeature::SharedIp => format!("IP shared by {raw:.0} customers"),
            OrderFeature::SharedAddress => format!("address shared by {raw:.0} customers"),
            OrderFeature::RepeatListing => format!("bought this listing {raw:.0} times"),
            OrderFeature::ListingBurst => {
                format!("{raw:.0} new customers bought this listing within a day")
            }
            OrderFeature::Ring => format!("in a ring (density {raw:.2})"),
            OrderFeature::Outlier => "amount flagged as an outlier by clean".into(),
        }
    }

    /// The value the score reads: larger is more suspicious; NaN is no evidence.
    pub fn suspicion(self, raw: f64) -> f64 {
        match self {
            OrderFeature::ValueJump => raw.ln(),
            OrderFeature::QuietDays => raw.ln_1p(),
            OrderFeature::NightHour => {
                if raw.is_nan() {
                    raw
                } else {
                    (1.0..6.0).contains(&raw) as u8 as f64
                }
            }
            OrderFeature::Newness => -raw,
            OrderFeature::SharedDevice
            | OrderFeature::SharedIp
            | OrderFeature::SharedAddress
            | OrderFeature::RepeatListing
            | OrderFeature::ListingBurst => raw.ln(),
            _ => raw,
        }
    }
}

/// Raw feature values, one row of [`OrderFeature::ALL`] per order.
pub type OrderRow = [f64; 14];

/// An order's suspicion values, in [`OrderFeature::ALL`] order.
pub fn order_suspicion(raw: &OrderRow) -> Vec<f64> {
    OrderFeature::ALL
        .iter()
        .zip(raw)
        .map(|(f, &x)| f.suspicion(x))
        .collect()
}

/// Per entity: when it began (its earliest account registration, else its first order).
fn entity_birth(book: &OrderBook) -> Vec<Option<i64>> {
    let mut birth: Vec<Option<i64>> = vec![None; book.entities.len()];
    let mut earliest = |e: u32, t: i64| {
        let slot = &mut birth[e as usize];
        *slot = Some(slot.map_or(t, |b| b.min(t)));
    };
    for a in &book.accounts {
        if let Some(t) = a.registered_at {
            earliest(a.entity, t);
        }
    }
    let mut first_order: Vec<Option<i64>> = vec![None; book.entities.len()];
    for o in &book.orders {
        let slot = &mut first_order[book.entity_of(o.account) as usize];
        *slot = Some(slot.map_or(o.at, |b: i64| b.min(o.at)));
    }
    birth
        .into_iter()
        .zip(first_order)
        .map(|(b, f)| b.or(f))
        .collect()
}

/// What the order features need besides the book.
pub struct OrderContext<'a> {
    pub book: &'a OrderBook,
    pub birth: Vec<Option<i64>>,
    /// The entity × (key, listing) graph: how many entities share each key.
    pub graph: &'a Incidences,
    /// Entity → the density of the ring it is in.
    pub ring_density: Vec<Option<f64>>,
}

impl<'a> OrderContext<'a> {
    pub fn new(book: &'a OrderBook, graph: &'a Incidences, rings: &[Ring]) -> Self {
        let mut ring_density = vec![None; book.entities.len()];
        for (e, r) in crate::rings::ring_of_entity(rings, book.entities.len())
            .into_iter()
            .enumerate()
        {
            ring_density[e] = r.map(|(_, d)| d);
        }
        Self {
            book,
            birth: entity_birth(book),
            graph,
            ring_density,
        }
    }

    fn age_days(&self, entity: u32, at: i64) -> f64 {
        self.birth[entity as usize].map_or(f64::NAN, |b| ((at - b) as f64 / DAY_US as f64).max(0.0))
    }
}

/// The raw order features of every order, in book order.
pub fn order_features(ctx: &OrderContext<'_>) -> Vec<OrderRow> {
    let book = ctx.book;
    let mut rows = vec![[f64::NAN; 14]; book.orders.len()];
    let history = history_features(ctx);
    let bursts = listing_bursts(ctx);
    let mut repeats: HashMap<(u32, u32), u32> = HashMap::new();
    for o in &book.orders {
        *repeats
            .entry((book.entity_of(o.account), o.listing))
            .or_default() += 1;
    }
    rows.par_iter_mut().enumerate().for_each(|(i, row)| {
        let o = &book.orders[i];
        let e = book.entity_of(o.account);
        row[..5].copy_from_slice(&history[i]);
        row[5] = (((o.at + 8 * HOUR_US).rem_euclid(DAY_US)) / HOUR_US) as f64;
        row[6] = ctx.age_days(e, o.at);
        for (slot, key) in [7, 8, 9].into_iter().zip(o.keys) {
            row[slot] = key.map_or(f64::NAN, |k| ctx.graph.key_sharing(k) as f64);
        }
        row[10] = repeats[&(e, o.listing)] as f64;
        row[11] = bursts[i];
        row[12] = ctx.ring_density[e as usize].unwrap_or(0.0);
        row[13] = o.outlier as u8 as f64;
    });
    rows
}

/// New device, new address, new city, value jump and quiet days: each order against the
/// entity's earlier orders.
fn history_features(ctx: &OrderContext<'_>) -> Vec<[f64; 5]> {
    let book = ctx.book;
    let mut by_entity: Vec<u32> = (0..book.orders.len() as u32).collect();
    by_entity.par_sort_unstable_by_key(|&i| {
        let o = &book.orders[i as usize];
        (book.entity_of(o.account), o.at, i)
    });
    let mut out = vec![[f64::NAN; 5]; book.orders.len()];
    let mut start = 0;
    while start < by_entity.len() {
        let entity = book.entity_of(book.orders[by_entity[start] as usize].account);
        let mut end = start;
        while end < by_entity.len()
            && book.entity_of(book.orders[by_entity[end] as usize].account) == entity
        {
            end += 1;
        }
        entity_history(book, &by_entity[start..end], &mut out);
        start = end;
    }
    out
}

fn entity_history(book: &OrderBook, orders: &[u32], out: &mut [[f64; 5]]) {
    let (mut devices, mut addresses, mut cities) = (Vec::new(), Vec::new(), Vec::new());
    let (mut log_sum, mut n, mut last) = (0.0f64, 0usize, None::<i64>);
    let new = |seen: &Vec<u32>, key: Option<u32>| match key {
        Some(k) if !seen.is_empty() => (!seen.contains(&k)) as u8 as f64,
        _ => f64::NAN,
    };
    for &i in orders {
        let o = &book.orders[i as usize];
        let row = &mut out[i as usize];
        row[0] = new(&devices, o.keys[0]);
        row[1] = new(&addresses, o.keys[2]);
        row[2] = new(&cities, o.city);
        row[3] = if n > 0 && o.amount > 0.0 {
            (o.amount.ln() - log_sum / n as f64).exp()
        } else {
            f64::NAN
        };
        row[4] = last.map_or(f64::NAN, |t| ((o.at - t) as f64 / DAY_US as f64).max(0.0));
        for (seen, key) in [
            (&mut devices, o.keys[0]),
            (&mut addresses, o.keys[2]),
            (&mut cities, o.city),
        ] {
            if let Some(k) = key {
                if !seen.contains(&k) {
                    seen.push(k);
                }
            }
        }
        if o.amount > 0.0 {
            log_sum += o.amount.ln();
            n += 1;
        }
        last = Some(o.at);
    }
}

/// Per order: distinct new entities (younger than a week) that bought the same listing
/// within a day of it, the order's own entity included when new.
fn listing_bursts(ctx: &OrderContext<'_>) -> Vec<f64> {
    let book = ctx.book;
    let mut new_orders: Vec<(u32, i64, u32)> = book
        .orders
        .iter()
        .filter_map(|o| {
            let e = book.entity_of(o.account);
            (ctx.age_days(e, o.at) < NEW_ENTITY_DAYS).then_some((o.listing, o.at, e))
        })
        .collect();
    new_orders.par_sort_unstable();
    let mut by_listing: HashMap<u32, (usize, usize)> = HashMap::new();
    let mut i = 0;
    while i < new_orders.len() {
        let mut j = i;
        while j < new_orders.len() && new_orders[j].0 == new_orders[i].0 {
            j += 1;
        }
        by_listing.insert(new_orders[i].0, (i, j));
        i = j;
    }
    book.orders
        .par_iter()
        .map(|o| {
            let Some(&(from, to)) = by_listing.get(&o.listing) else {
                return 0.0;
            };
            let span = &new_orders[from..to];
            let lo = span.partition_point(|x| x.1 < o.at - DAY_US);
            let hi = span.partition_point(|x| x.1 <= o.at + DAY_US);
            let mut entities: Vec<u32> = span[lo..hi].iter().map(|x| x.2).collect();
            entities.sort_unstable();
            entities.dedup();
            entities.len() as f64
        })
        .collect()
}

/// One feature of the review evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewFeature {
    Ring,
    RatingMismatch,
    DuplicateText,
    ReviewBurst,
    Newness,
    OrderRisk,
}

impl ReviewFeature {
    pub const ALL: [ReviewFeature; 6] = [
        ReviewFeature::Ring,
        ReviewFeature::RatingMismatch,
        ReviewFeature::DuplicateText,
        ReviewFeature::ReviewBurst,
        ReviewFeature::Newness,
        ReviewFeature::OrderRisk,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReviewFeature::Ring => "ring",
            ReviewFeature::RatingMismatch => "rating_mismatch",
            ReviewFeature::DuplicateText => "duplicate_text",
            ReviewFeature::ReviewBurst => "review_burst",
            ReviewFeature::Newness => "new_reviewer",
            ReviewFeature::OrderRisk => "order_risk",
        }
    }

    pub fn reason(self, raw: f64) -> String {
        match self {
            ReviewFeature::Ring => format!("reviewer in a ring (density {raw:.2})"),
            ReviewFeature::RatingMismatch => "stars and text disagree".into(),
            ReviewFeature::DuplicateText => {
                format!("same text as {raw:.0} other reviews of this listing within a week")
            }
            ReviewFeature::ReviewBurst => {
                format!("{raw:.0} new customers reviewed this listing within two days")
            }
            ReviewFeature::Newness => format!("reviewer {raw:.0} days old"),
            ReviewFeature::OrderRisk => format!("the reviewer's order here scores {raw:.1}"),
        }
    }

    pub fn suspicion(self, raw: f64) -> f64 {
        match self {
            ReviewFeature::Newness => -raw,
            ReviewFeature::DuplicateText | ReviewFeature::ReviewBurst => raw.ln_1p(),
            _ => raw,
        }
    }
}

pub type ReviewRow = [f64; 6];

/// The raw review features; `order_scores` are the order scores, in book order.
pub fn review_features(ctx: &OrderContext<'_>, order_scores: &[f64]) -> Vec<ReviewRow> {
    let book = ctx.book;
    let mut order_risk: HashMap<(u32, u32), f64> = HashMap::new();
    for (o, &s) in book.orders.iter().zip(order_scores) {
        let slot = order_risk
            .entry((book.entity_of(o.account), o.listing))
            .or_insert(f64::MIN);
        *slot = slot.max(s);
    }
    let duplicates = review_windows(
        book,
        7 * DAY_US,
        WindowCount::SameTag,
        |r| Some(r.text_hash),
        |_| true,
    );
    let bursts = review_windows(
        book,
        2 * DAY_US,
        WindowCount::DistinctTags,
        |r| r.account.map(|a| book.entity_of(a) as u64),
        |r| {
            let (Some(a), Some(at)) = (r.account, r.at) else {
                return false;
            };
            ctx.age_days(book.entity_of(a), at) < NEW_ENTITY_DAYS
        },
    );
    book.reviews
        .par_iter()
        .enumerate()
        .map(|(i, r)| {
            let entity = r.account.map(|a| book.entity_of(a));
            [
                entity.map_or(0.0, |e| ctx.ring_density[e as usize].unwrap_or(0.0)),
                r.rating_mismatch as u8 as f64,
                duplicates[i].saturating_sub(1) as f64,
                bursts[i] as f64,
                match (entity, r.at) {
                    (Some(e), Some(at)) => ctx.age_days(e, at),
                    _ => f64::NAN,
                },
                entity
                    .and_then(|e| order_risk.get(&(e, r.listing)).copied())
                    .unwrap_or(f64::NAN),
            ]
        })
        .collect()
}

/// What [`review_windows`] counts among the reviews of the same listing in the window.
#[derive(Clone, Copy, PartialEq)]
enum WindowCount {
    /// Reviews whose tag equals the review's own (copies of its text).
    SameTag,
    /// Distinct tags (distinct reviewers).
    DistinctTags,
}

/// Per review: what `count` says among the reviews of its listing within `window` of it
/// that pass `keep`.
fn review_windows(
    book: &OrderBook,
    window: i64,
    count: WindowCount,
    tag: impl Fn(&Review) -> Option<u64> + Sync,
    keep: impl Fn(&Review) -> bool + Sync,
) -> Vec<usize> {
    let mut timed: Vec<(u32, i64, u64)> = book
        .reviews
        .iter()
        .filter(|r| keep(r))
        .filter_map(|r| Some((r.listing, r.at?, tag(r)?)))
        .collect();
    timed.par_sort_unstable();
    book.reviews
        .par_iter()
        .map(|r| {
            let (Some(at), Some(own)) = (r.at, tag(r)) else {
                return 0;
            };
            let lo = timed.partition_point(|x| (x.0, x.1) < (r.listing, at - window));
            let hi = timed.partition_point(|x| (x.0, x.1) <= (r.listing, at + window));
            let span = &timed[lo..hi];
            if count == WindowCount::SameTag {
                span.iter().filter(|x| x.2 == own).count()
            } else {
                let mut tags: Vec<u64> = span.iter().map(|x| x.2).collect();
                tags.sort_unstable();
                tags.dedup();
                tags.len()
            }
        })
        .collect()
}
