//! What the risk tables say: the riskiest orders, reviews and rings (`shopfuse risk --top`),
//! one ring with its members and orders (`shopfuse risk --ring`), and the facts a ring's
//! evidence sentence is made of. Read by the CLI and the API alike.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use serde_json::{Map, Value as Json};
use shopfuse_core::value::NamedRows;
use shopfuse_core::{TableStore, Value};

use crate::order_book::{EntityIndex, KeyKind, OrderBook};
use crate::rings::Ring;
use crate::tables::{risk_accounts, risk_orders, risk_reviews, risk_rings};
use crate::RiskError;

/// What a ring is made of, counted from the book.
#[derive(Debug, Clone)]
pub struct RingFacts {
    pub platforms: BTreeSet<String>,
    pub accounts: usize,
    pub keys: [usize; 3],
    pub listings: Vec<String>,
    pub golden_ids: BTreeSet<String>,
    pub orders: usize,
    pub first: Option<i64>,
    pub last: Option<i64>,
    pub five_star_share: Option<f64>,
    /// Median age in days of the members' accounts at their ring orders (since the earliest
    /// registration of the member's accounts): fresh accounts are the mark of brushing,
    /// years-old ones of honest neighbours sharing a building or a network.
    pub median_member_age_days: Option<f64>,
}

impl RingFacts {
    /// The facts of one ring; `index` is the book's [`EntityIndex`], built once for all rings.
    pub fn of(book: &OrderBook, index: &EntityIndex, ring: &Ring) -> RingFacts {
        let listings: BTreeSet<u32> = ring.listings.iter().copied().collect();
        let mut facts = RingFacts {
            platforms: BTreeSet::new(),
            accounts: 0,
            keys: [0; 3],
            listings: ring
                .listings
                .iter()
                .map(|&l| {
                    let l = &book.listings[l as usize];
                    format!("{}:{}", book.platform_name(l.platform), l.listing_id)
                })
                .collect(),
            golden_ids: ring
                .listings
                .iter()
                .filter_map(|&l| book.listings[l as usize].golden_id.clone())
                .collect(),
            orders: 0,
            first: None,
            last: None,
            five_star_share: None,
            median_member_age_days: None,
        };
        for &k in &ring.keys {
            let slot = KeyKind::ALL
                .iter()
                .position(|&kind| kind == book.key_kinds[k as usize])
                .unwrap_or(0);
            facts.keys[slot] += 1;
        }
        let accounts = || {
            ring.entities
                .iter()
                .flat_map(|&e| &index.accounts[e as usize])
        };
        let mut born: HashMap<u32, i64> = HashMap::new();
        for &a in accounts() {
            let a = &book.accounts[a as usize];
            facts.accounts += 1;
            facts
                .platforms
                .insert(book.platform_name(a.platform).to_string());
            if let Some(t) = a.registered_at {
                let slot = born.entry(a.entity).or_insert(t);
                *slot = (*slot).min(t);
            }
        }
        let mut ages: Vec<f64> = Vec::new();
        for &e in &ring.entities {
            for &o in &index.orders[e as usize] {
                let o = &book.orders[o as usize];
                if !listings.contains(&o.listing) {
                    continue;
                }
                if let Some(b) = born.get(&e) {
                    ages.push((o.at - b) as f64 / 86_400e6);
                }
                facts.orders += 1;
                facts.first = Some(facts.first.map_or(o.at, |t| t.min(o.at)));
                facts.last = Some(facts.last.map_or(o.at, |t| t.max(o.at)));
            }
        }
        if !ages.is_empty() {
            ages.sort_by(f64::total_cmp);
            facts.median_member_age_days = Some(ages[ages.len() / 2]);
        }
        let ratings: Vec<f64> = ring
            .entities
            .iter()
            .flat_map(|&e| &index.reviews[e as usize])
            .map(|&r| &book.reviews[r as usize])
            .filter(|r| listings.contains(&r.listing))
            .filter_map(|r| r.rating)
            .collect();
        if !ratings.is_empty() {
            let five = ratings.iter().filter(|&&r| r >= 5.0).count();
            facts.five_star_share = Some(five as f64 / ratings.len() as f64);
        }
        facts
    }

    pub fn kind(&self) -> &'static str {
        if self.platforms.len() > 1 {
            "cross-platform"
        } else {
            "single-platform"
        }
    }

    /// "ring of 14 accounts (12 customers) on 3 devices and 2 IPs: 38 orders of 1 listing
    /// within 41 hours, 92 % five-star, across jd+taobao".
    pub fn evidence(&self, members: usize) -> String {
        let mut s = format!(
            "ring of {} accounts ({members} customers) on {} devices, {} IPs and {} addresses: {} orders of {} listing(s)",
            self.accounts, self.keys[0], self.keys[1], self.keys[2], self.orders, self.listings.len()
        );
        if let (Some(a), Some(b)) = (self.first, self.last) {
            let hours = (b - a) as f64 / 3.6e9;
            if hours < 72.0 {
                s.push_str(&format!(" within {hours:.0} hours"));
            } else {
                s.push_str(&format!(" over {:.0} days", hours / 24.0));
            }
        }
        if let Some(d) = self.median_member_age_days {
            s.push_str(&format!(
                ", accounts {d:.0} days old at the orders (median)"
            ));
        }
        if let Some(f) = self.five_star_share {
            s.push_str(&format!(", {:.0} % of their reviews five-star", f * 100.0));
        }
        if self.platforms.len() > 1 {
            let p: Vec<&str> = self.platforms.iter().map(String::as_str).collect();
            s.push_str(&format!(", across {}", p.join("+")));
        }
        s
    }

    /// The `risk_rings` row.
    pub fn row(&self, ring: &Ring) -> Vec<Value> {
        let join =
            |it: &mut dyn Iterator<Item = &String>| it.cloned().collect::<Vec<_>>().join(";");
        vec![
            Value::text(&ring.ring_id),
            Value::text(self.kind()),
            Value::text(&join(&mut self.platforms.iter())),
            Value::Int(ring.entities.len() as i64),
            Value::Int(self.accounts as i64),
            Value::Int(self.keys[0] as i64),
            Value::Int(self.keys[1] as i64),
            Value::Int(self.keys[2] as i64),
            Value::text(&self.listings.join(";")),
            Value::text(&join(&mut self.golden_ids.iter())),
            Value::Int(self.orders as i64),
            self.first.map_or(Value::Null, Value::Timestamp),
            self.last.map_or(Value::Null, Value::Timestamp),
            Value::Float((ring.density * 10_000.0).round() / 10_000.0),
            self.five_star_share.map_or(Value::Null, Value::Float),
            self.median_member_age_days
                .map_or(Value::Null, |d| Value::Float((d * 10.0).round() / 10.0)),
            Value::text(&self.evidence(ring.entities.len())),
        ]
    }
}

/// The riskiest rows of the project.
#[derive(Debug, Clone, Serialize)]
pub struct RiskTop {
    pub orders: Vec<Map<String, Json>>,
    pub reviews: Vec<Map<String, Json>>,
    pub rings: Vec<Map<String, Json>>,
}

/// One ring, its member accounts and their orders.
#[derive(Debug, Clone, Serialize)]
pub struct RingView {
    pub ring: Map<String, Json>,
    pub accounts: Vec<Map<String, Json>>,
    pub orders: Vec<Map<String, Json>>,
}

fn read(store: &TableStore, table: &'static str) -> Result<NamedRows, RiskError> {
    store.read_rows(table)?.ok_or_else(|| RiskError::NotRun {
        path: store.tables_dir().to_path_buf(),
        table,
    })
}

/// Column names in table order.
fn names(rows: &NamedRows) -> Vec<&str> {
    let mut cols: Vec<(&str, usize)> = rows.columns.iter().map(|(k, &v)| (k.as_str(), v)).collect();
    cols.sort_by_key(|c| c.1);
    cols.into_iter().map(|c| c.0).collect()
}

/// The `n` riskiest rows of `table` by `column`, descending.
fn top_rows(rows: &NamedRows, column: &str, n: usize) -> Vec<Map<String, Json>> {
    let mut idx: Vec<usize> = (0..rows.rows.len()).collect();
    idx.sort_by(|&a, &b| {
        let (x, y) = (
            rows.f64(&rows.rows[a], column),
            rows.f64(&rows.rows[b], column),
        );
        y.unwrap_or(f64::MIN)
            .total_cmp(&x.unwrap_or(f64::MIN))
            .then(a.cmp(&b))
    });
    let cols = names(rows);
    idx.into_iter()
        .take(n)
        .map(|i| rows.row_json(&rows.rows[i], &cols))
        .collect()
}

/// The `n` riskiest orders and reviews, and the `n` densest rings.
pub fn top(store: &TableStore, n: usize) -> Result<RiskTop, RiskError> {
    Ok(RiskTop {
        orders: top_rows(&read(store, risk_orders::NAME)?, risk_orders::score, n),
        reviews: top_rows(&read(store, risk_reviews::NAME)?, risk_reviews::score, n),
        rings: top_rows(&read(store, risk_rings::NAME)?, risk_rings::density, n),
    })
}

/// One ring by id.
pub fn ring(store: &TableStore, ring_id: &str) -> Result<RingView, RiskError> {
    let rings = read(store, risk_rings::NAME)?;
    let row = rings
        .rows
        .iter()
        .find(|r| rings.str(r, risk_rings::ring_id) == Some(ring_id))
        .ok_or_else(|| RiskError::Unknown {
            what: "ring",
            id: ring_id.to_string(),
        })?;
    let members = |rows: NamedRows, column: &str, score: &str| {
        let cols = names(&rows);
        let mut out: Vec<Map<String, Json>> = rows
            .rows
            .iter()
            .filter(|r| rows.str(r, column) == Some(ring_id))
            .map(|r| rows.row_json(r, &cols))
            .collect();
        out.sort_by(|a, b| {
            let f = |m: &Map<String, Json>| m.get(score).and_then(Json::as_f64).unwrap_or(0.0);
            f(b).total_cmp(&f(a))
        });
        out
    };
    Ok(RingView {
        ring: rings.row_json(row, &names(&rings)),
        accounts: members(
            read(store, risk_accounts::NAME)?,
            risk_accounts::ring_id,
            risk_accounts::score,
        ),
        orders: members(
            read(store, risk_orders::NAME)?,
            risk_orders::ring_id,
            risk_orders::score,
        ),
    })
}
