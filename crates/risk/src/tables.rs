//! The stage's tables — `risk_orders`, `risk_accounts`, `risk_rings`, `risk_reviews`,
//! `risk_listings` — and the run that fills them from the clean orders and reviews, the
//! identity graph's customers, the catalogue's offers and the sentiment stage's
//! rating–text mismatches.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;
use shopfuse_core::config::RiskConfig;
use shopfuse_core::value::{rows_to_batch, NamedRows};
use shopfuse_core::{Transaction, Value};
use shopfuse_identity::customer_accounts;
use shopfuse_resolve::catalogue::offers;
use shopfuse_sentiment::tables::review_sentiment;

use crate::assessment::{assess, Assessment};
use crate::order_book::{OrderBook, OrderInput, ReviewInput};
use crate::rings::ring_of_entity;
use crate::RiskError;

shopfuse_core::table! {
    /// One row per order: its risk score and the evidence behind it.
    pub mod risk_orders("risk_orders") {
        /// The order's id on its platform.
        order_id: Text;
        /// The platform.
        platform: Text;
        /// The buyer's account (pseudonymous; what erasure finds the row by).
        account_id: Text;
        /// The buyer's unified customer (null when identity has not placed the account).
        customer_id: Text null;
        /// The listing bought.
        listing_id: Text;
        /// The listing's golden product.
        golden_id: Text null;
        /// When the order was placed.
        ordered_at: Timestamp;
        /// Combined evidence: nats of surprise (unsupervised) or log-odds (supervised).
        score: Float;
        /// The score's rank among the project's orders, 0–1.
        percentile: Float;
        /// P(fraud) from the learned combiner; null when the project has no labels.
        probability: Float null;
        /// The ring the buyer is in.
        ring_id: Text null;
        /// The largest parts of the score, `; `-joined.
        reasons: Text;
    }
}

shopfuse_core::table! {
    /// One row per platform account that placed an order.
    pub mod risk_accounts("risk_accounts") {
        /// The platform.
        platform: Text;
        /// The account (what erasure finds the row by).
        account_id: Text;
        /// Its unified customer.
        customer_id: Text null;
        /// Orders the account placed.
        orders: Int;
        /// Its riskiest order's score.
        score: Float;
        /// That score's rank among the accounts, 0–1.
        percentile: Float;
        /// The riskiest score over every account of the same customer.
        customer_score: Float;
        /// The ring the account's customer is in.
        ring_id: Text null;
        /// The reasons of its riskiest order.
        reasons: Text;
    }
}

shopfuse_core::table! {
    /// One row per ring: a dense block of customers × shared keys and listings.
    pub mod risk_rings("risk_rings") {
        /// `RG` + a hash of the member accounts: stable across runs.
        ring_id: Text;
        /// `cross-platform` when its accounts are on more than one platform, else `single-platform`.
        kind: Text;
        /// Platforms of its accounts, `;`-joined.
        platforms: Text;
        /// Distinct customers (or accounts, where identity did not merge them).
        members: Int;
        /// Platform accounts of the members.
        accounts: Int;
        /// Devices in the block.
        devices: Int;
        /// IPs in the block.
        ips: Int;
        /// Addresses (pseudonymised) in the block.
        addresses: Int;
        /// Listings in the block, `platform:listing_id` joined by `;`.
        listings: Text;
        /// Their golden products, `;`-joined.
        golden_ids: Text;
        /// Orders of the members on those listings.
        orders: Int;
        /// The first of those orders.
        first_order: Timestamp null;
        /// The last of those orders.
        last_order: Timestamp null;
        /// FRAUDAR density of the block.
        density: Float;
        /// Share of the members' reviews of those listings that give five stars.
        five_star_share: Float null;
        /// Median age in days of the members' accounts at those orders.
        median_member_age_days: Float null;
        /// One sentence: who, on what, how fast.
        evidence: Text;
    }
}

shopfuse_core::table! {
    /// One row per review: how likely it is fake, and why.
    pub mod risk_reviews("risk_reviews") {
        /// The review's id on its platform.
        review_id: Text;
        /// The platform.
        platform: Text;
        /// The reviewer's account (what erasure finds the row by).
        account_id: Text null;
        /// The listing reviewed.
        listing_id: Text;
        /// Its golden product.
        golden_id: Text null;
        /// When the review was written.
        reviewed_at: Timestamp null;
        /// Sum of the evidence's surprises (nats).
        score: Float;
        /// The score's rank among the project's reviews, 0–1.
        percentile: Float;
        /// The reviewer's ring.
        ring_id: Text null;
        /// The largest parts of the score.
        reasons: Text;
    }
}

shopfuse_core::table! {
    /// One row per listing that was ordered or reviewed.
    pub mod risk_listings("risk_listings") {
        /// The platform.
        platform: Text;
        /// The listing.
        listing_id: Text;
        /// Its golden product.
        golden_id: Text null;
        /// Orders of the listing.
        orders: Int;
        /// Of them, orders by ring members.
        ring_orders: Int;
        /// Reviews in the project's top 1 % by review score.
        suspicious_reviews: Int;
        /// (ring orders + suspicious reviews) / (orders + reviews).
        score: Float;
        /// The rings buying it, `;`-joined.
        rings: Text;
    }
}

/// What the stage reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RiskSummary {
    pub orders: usize,
    pub reviews: usize,
    pub accounts: usize,
    pub rings: usize,
    pub cross_platform_rings: usize,
    /// Orders in the top 1 % by score.
    pub flagged_orders: usize,
    /// `unsupervised`, or `supervised` when the labels sufficed.
    pub method: String,
    pub labelled_orders: usize,
    pub seconds: f64,
}

/// Reads the book, scores it and replaces the five tables.
pub fn run_risk(
    tx: &mut Transaction<'_>,
    config: &RiskConfig,
    project_root: &Path,
) -> Result<RiskSummary, RiskError> {
    let started = std::time::Instant::now();
    let book = read_book(&|table, columns| tx.read_columns(table, columns))?;
    let labels = match &config.labels {
        Some(path) => {
            let path = if path.is_absolute() {
                path.clone()
            } else {
                project_root.join(path)
            };
            Some(order_labels(&book, &read_labels(&path)?))
        }
        None => None,
    };
    let assessment = assess(&book, config, labels.as_deref())?;
    let mut summary = RiskSummary {
        orders: book.orders.len(),
        reviews: book.reviews.len(),
        accounts: book.accounts.len(),
        rings: assessment.rings.len(),
        method: assessment.method.to_string(),
        labelled_orders: assessment.labelled_orders,
        ..Default::default()
    };
    let writer = Writer {
        book: &book,
        a: &assessment,
        config,
        ring_of: ring_of_entity(&assessment.rings, book.entities.len()),
    };
    summary.flagged_orders = writer.write_orders(tx)?;
    writer.write_accounts(tx)?;
    summary.cross_platform_rings = writer.write_rings(tx)?;
    let suspicious = writer.write_reviews(tx)?;
    writer.write_listings(tx, &suspicious)?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Changes when what the stage writes changes for the same inputs (a new column, a new rule),
/// so that a project's next run rewrites its tables.
pub const OUTPUT_VERSION: u32 = 2;

/// The tables the stage reads, for its declaration.
pub const READS: [&str; 5] = [
    "clean_orders",
    "clean_reviews",
    customer_accounts::NAME,
    offers::NAME,
    review_sentiment::NAME,
];

/// Reads some columns of a table (a transaction's view, or the committed store's).
pub type ReadColumns<'a> =
    dyn Fn(&str, &[&str]) -> Result<Option<NamedRows>, shopfuse_core::CoreError> + 'a;

/// Builds the fused book from the tables `tx` reads.
pub fn read_book(tx: &ReadColumns<'_>) -> Result<OrderBook, RiskError> {
    let mut book = OrderBook::default();
    if let Some(rows) = tx(
        customer_accounts::NAME,
        &[
            customer_accounts::customer_id,
            customer_accounts::platform,
            customer_accounts::account_id,
            customer_accounts::registered_at,
        ],
    )? {
        for r in &rows.rows {
            let (Some(p), Some(a)) = (
                rows.str(r, customer_accounts::platform),
                rows.str(r, customer_accounts::account_id),
            ) else {
                continue;
            };
            book.add_account(
                p,
                a,
                rows.str(r, customer_accounts::customer_id),
                rows.i64(r, customer_accounts::registered_at),
            );
        }
    }
    if let Some(rows) = tx(
        offers::NAME,
        &[offers::platform, offers::listing_id, offers::golden_id],
    )? {
        for r in &rows.rows {
            if let (Some(p), Some(l)) = (
                rows.str(r, offers::platform),
                rows.str(r, offers::listing_id),
            ) {
                book.add_listing(p, l, rows.str(r, offers::golden_id));
            }
        }
    }
    read_orders(tx, &mut book)?;
    read_reviews(tx, &mut book)?;
    Ok(book)
}

fn read_orders(tx: &ReadColumns<'_>, book: &mut OrderBook) -> Result<(), RiskError> {
    let Some(rows) = tx(
        "clean_orders",
        &[
            "order_id",
            "account_id",
            "listing_id",
            "amount_base",
            "ordered_at",
            "address",
            "city",
            "ip",
            "device_id",
            "_outlier",
            "_platform",
        ],
    )?
    else {
        return Ok(());
    };
    for r in &rows.rows {
        let (Some(platform), Some(order_id), Some(account_id), Some(listing_id), Some(at)) = (
            rows.str(r, "_platform"),
            rows.str(r, "order_id"),
            rows.str(r, "account_id"),
            rows.str(r, "listing_id"),
            rows.i64(r, "ordered_at"),
        ) else {
            continue;
        };
        book.add_order(&OrderInput {
            platform,
            order_id,
            account_id,
            listing_id,
            at,
            amount: rows.f64(r, "amount_base").unwrap_or(0.0),
            device: rows.str(r, "device_id"),
            ip: rows.str(r, "ip"),
            address: rows.str(r, "address"),
            city: rows.str(r, "city"),
            outlier: rows.bool(r, "_outlier").unwrap_or(false),
        });
    }
    Ok(())
}

fn read_reviews(tx: &ReadColumns<'_>, book: &mut OrderBook) -> Result<(), RiskError> {
    let mut mismatch: HashMap<(String, String), bool> = HashMap::new();
    if let Some(rows) = tx(
        review_sentiment::NAME,
        &[
            review_sentiment::platform,
            review_sentiment::review_id,
            review_sentiment::rating_mismatch,
        ],
    )? {
        for r in &rows.rows {
            if let (Some(p), Some(id)) = (
                rows.text(r, review_sentiment::platform),
                rows.text(r, review_sentiment::review_id),
            ) {
                mismatch.insert(
                    (p, id),
                    rows.bool(r, review_sentiment::rating_mismatch)
                        .unwrap_or(false),
                );
            }
        }
    }
    let Some(rows) = tx(
        "clean_reviews",
        shopfuse_sentiment::tables::CLEAN_REVIEW_COLUMNS,
    )?
    else {
        return Ok(());
    };
    for r in &rows.rows {
        let (Some(platform), Some(review_id), Some(listing_id)) = (
            rows.str(r, "_platform"),
            rows.str(r, "review_id"),
            rows.str(r, "listing_id"),
        ) else {
            continue;
        };
        book.add_review(&ReviewInput {
            platform,
            review_id,
            account_id: rows.str(r, "account_id"),
            listing_id,
            at: rows.i64(r, "reviewed_at"),
            rating: rows.f64(r, "rating"),
            text: rows.str(r, "text").unwrap_or_default(),
            rating_mismatch: mismatch
                .get(&(platform.to_string(), review_id.to_string()))
                .copied()
                .unwrap_or(false),
        });
    }
    Ok(())
}

/// `(platform, order_id) → is_fraud` from a CSV with those three columns (`1`/`0`,
/// `true`/`false`); other columns are ignored.
pub fn read_labels(path: &Path) -> Result<HashMap<(String, String), bool>, RiskError> {
    let data_error = |row: Option<usize>, message: String| RiskError::Data {
        path: PathBuf::from(path),
        row,
        message,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| data_error(None, e.to_string()))?;
    let headers = reader
        .headers()
        .map_err(|e| data_error(Some(1), e.to_string()))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            data_error(
                Some(1),
                format!("no `{name}` column; the header needs platform,order_id,is_fraud"),
            )
        })
    };
    let (p, o, f) = (
        column("platform")?,
        column("order_id")?,
        column("is_fraud")?,
    );
    let mut out = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let row = i + 2;
        let record = record.map_err(|e| data_error(Some(row), e.to_string()))?;
        let flag = match record.get(f).unwrap_or("").trim() {
            "1" | "true" | "TRUE" | "yes" => true,
            "0" | "false" | "FALSE" | "no" => false,
            other => {
                return Err(data_error(
                    Some(row),
                    format!("is_fraud is {other:?}; write 1 or 0"),
                ))
            }
        };
        out.insert(
            (
                record.get(p).unwrap_or("").to_string(),
                record.get(o).unwrap_or("").to_string(),
            ),
            flag,
        );
    }
    Ok(out)
}

/// The label of each order of the book, where the labels have one.
pub fn order_labels(
    book: &OrderBook,
    labels: &HashMap<(String, String), bool>,
) -> Vec<Option<bool>> {
    book.orders
        .iter()
        .map(|o| {
            let platform = book.platform_name(book.accounts[o.account as usize].platform);
            labels
                .get(&(platform.to_string(), o.order_id.clone()))
                .copied()
        })
        .collect()
}

struct Writer<'a> {
    book: &'a OrderBook,
    a: &'a Assessment,
    config: &'a RiskConfig,
    ring_of: Vec<Option<(usize, f64)>>,
}

fn rounded(x: f64) -> Value {
    Value::Float((x * 10_000.0).round() / 10_000.0)
}

impl Writer<'_> {
    fn ring_id(&self, entity: u32) -> Value {
        self.ring_of[entity as usize]
            .map_or(Value::Null, |(r, _)| Value::text(&self.a.rings[r].ring_id))
    }

    fn customer(&self, account: u32) -> Value {
        let entity = self.book.entity_of(account);
        let name = &self.book.entities.names[entity as usize];
        // Accounts no customer holds are their own entity, named `platform:account`.
        if name.contains(':') {
            Value::Null
        } else {
            Value::text(name)
        }
    }

    fn write_orders(&self, tx: &mut Transaction<'_>) -> Result<usize, RiskError> {
        let (book, a) = (self.book, self.a);
        let scores: Vec<f64> = a.orders.iter().map(|s| s.score).collect();
        let pct = crate::tail_score::percentiles(&scores);
        let rows: Vec<Vec<Value>> = book
            .orders
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let account = &book.accounts[o.account as usize];
                let listing = &book.listings[o.listing as usize];
                vec![
                    Value::text(&o.order_id),
                    Value::text(book.platform_name(account.platform)),
                    Value::text(&account.account_id),
                    self.customer(o.account),
                    Value::text(&listing.listing_id),
                    Value::opt_text(&listing.golden_id),
                    Value::Timestamp(o.at),
                    rounded(a.orders[i].score),
                    rounded(pct[i]),
                    a.orders[i].probability.map_or(Value::Null, rounded),
                    self.ring_id(account.entity),
                    Value::text(&a.order_reasons(i, self.config.reasons)),
                ]
            })
            .collect();
        let schema = risk_orders::TABLE.schema();
        tx.replace(
            risk_orders::NAME,
            &schema,
            &[rows_to_batch(&schema, &rows)?],
        )?;
        Ok(pct.iter().filter(|&&p| p > 0.99).count())
    }

    fn write_accounts(&self, tx: &mut Transaction<'_>) -> Result<(), RiskError> {
        let (book, a) = (self.book, self.a);
        let mut best: Vec<Option<usize>> = vec![None; book.accounts.len()];
        let mut orders = vec![0i64; book.accounts.len()];
        for (i, o) in book.orders.iter().enumerate() {
            orders[o.account as usize] += 1;
            let slot = &mut best[o.account as usize];
            if slot.is_none_or(|b| a.orders[b].score < a.orders[i].score) {
                *slot = Some(i);
            }
        }
        let placed: Vec<usize> = (0..book.accounts.len())
            .filter(|&i| best[i].is_some())
            .collect();
        let scores: Vec<f64> = placed
            .iter()
            .map(|&i| a.orders[best[i].unwrap_or(0)].score)
            .collect();
        let pct = crate::tail_score::percentiles(&scores);
        let mut customer_score: HashMap<u32, f64> = HashMap::new();
        for (k, &i) in placed.iter().enumerate() {
            let e = book.accounts[i].entity;
            let slot = customer_score.entry(e).or_insert(f64::MIN);
            *slot = slot.max(scores[k]);
        }
        let rows: Vec<Vec<Value>> = placed
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let account = &book.accounts[i];
                let order = best[i].unwrap_or(0);
                vec![
                    Value::text(book.platform_name(account.platform)),
                    Value::text(&account.account_id),
                    self.customer(i as u32),
                    Value::Int(orders[i]),
                    rounded(scores[k]),
                    rounded(pct[k]),
                    rounded(customer_score[&account.entity]),
                    self.ring_id(account.entity),
                    Value::text(&a.order_reasons(order, self.config.reasons)),
                ]
            })
            .collect();
        let schema = risk_accounts::TABLE.schema();
        tx.replace(
            risk_accounts::NAME,
            &schema,
            &[rows_to_batch(&schema, &rows)?],
        )?;
        Ok(())
    }

    /// Writes the rings; returns how many span platforms.
    fn write_rings(&self, tx: &mut Transaction<'_>) -> Result<usize, RiskError> {
        let index = crate::order_book::EntityIndex::of(self.book);
        let rows: Vec<Vec<Value>> = self
            .a
            .rings
            .iter()
            .map(|ring| crate::report::RingFacts::of(self.book, &index, ring).row(ring))
            .collect();
        let cross = rows
            .iter()
            .filter(|r| r[1].as_str() == Some("cross-platform"))
            .count();
        let schema = risk_rings::TABLE.schema();
        tx.replace(risk_rings::NAME, &schema, &[rows_to_batch(&schema, &rows)?])?;
        Ok(cross)
    }

    /// Writes the reviews; returns which are in the top 1 %.
    fn write_reviews(&self, tx: &mut Transaction<'_>) -> Result<Vec<bool>, RiskError> {
        let (book, a) = (self.book, self.a);
        let scores: Vec<f64> = a.reviews.iter().map(|s| s.score).collect();
        let pct = crate::tail_score::percentiles(&scores);
        let rows: Vec<Vec<Value>> = book
            .reviews
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let listing = &book.listings[r.listing as usize];
                vec![
                    Value::text(&r.review_id),
                    Value::text(book.platform_name(r.platform)),
                    r.account.map_or(Value::Null, |acc| {
                        Value::text(&book.accounts[acc as usize].account_id)
                    }),
                    Value::text(&listing.listing_id),
                    Value::opt_text(&listing.golden_id),
                    r.at.map_or(Value::Null, Value::Timestamp),
                    rounded(scores[i]),
                    rounded(pct[i]),
                    r.account
                        .map_or(Value::Null, |acc| self.ring_id(book.entity_of(acc))),
                    Value::text(&a.review_reasons(i, self.config.reasons)),
                ]
            })
            .collect();
        let schema = risk_reviews::TABLE.schema();
        tx.replace(
            risk_reviews::NAME,
            &schema,
            &[rows_to_batch(&schema, &rows)?],
        )?;
        Ok(pct
            .iter()
            .zip(&scores)
            .map(|(&p, &s)| p > 0.99 && s > 0.0)
            .collect())
    }

    fn write_listings(
        &self,
        tx: &mut Transaction<'_>,
        suspicious: &[bool],
    ) -> Result<(), RiskError> {
        let book = self.book;
        let n = book.listings.len();
        let (mut orders, mut ring_orders, mut reviews, mut flagged) =
            (vec![0i64; n], vec![0i64; n], vec![0i64; n], vec![0i64; n]);
        let mut rings: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); n];
        for o in &book.orders {
            let l = o.listing as usize;
            orders[l] += 1;
            if let Some((r, _)) = self.ring_of[book.entity_of(o.account) as usize] {
                if self.a.rings[r].listings.contains(&o.listing) {
                    ring_orders[l] += 1;
                    rings[l].insert(&self.a.rings[r].ring_id);
                }
            }
        }
        for (r, &s) in book.reviews.iter().zip(suspicious) {
            reviews[r.listing as usize] += 1;
            flagged[r.listing as usize] += s as i64;
        }
        let rows: Vec<Vec<Value>> = (0..n)
            .filter(|&l| orders[l] + reviews[l] > 0)
            .map(|l| {
                let listing = &book.listings[l];
                let score = (ring_orders[l] + flagged[l]) as f64 / (orders[l] + reviews[l]) as f64;
                vec![
                    Value::text(book.platform_name(listing.platform)),
                    Value::text(&listing.listing_id),
                    Value::opt_text(&listing.golden_id),
                    Value::Int(orders[l]),
                    Value::Int(ring_orders[l]),
                    Value::Int(flagged[l]),
                    rounded(score),
                    Value::text(&rings[l].iter().copied().collect::<Vec<_>>().join(";")),
                ]
            })
            .collect();
        let schema = risk_listings::TABLE.schema();
        tx.replace(
            risk_listings::NAME,
            &schema,
            &[rows_to_batch(&schema, &rows)?],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels_of(text: &str) -> Result<HashMap<(String, String), bool>, RiskError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.csv");
        std::fs::write(&path, text).unwrap();
        read_labels(&path)
    }

    #[test]
    fn labels_are_read_and_a_bad_row_is_named() {
        let ok = labels_of("platform,order_id,is_fraud,note\njd,1,1,x\ntaobao,2,false,\n").unwrap();
        assert!(ok[&("jd".into(), "1".into())]);
        assert!(!ok[&("taobao".into(), "2".into())]);
        let bad = labels_of("platform,order_id,is_fraud\njd,1,1\njd,2,maybe\n").unwrap_err();
        assert!(bad.to_string().contains("decisions.csv, row 3"), "{bad}");
        let no_column = labels_of("platform,order\njd,1\n").unwrap_err();
        assert!(no_column.to_string().contains("is_fraud"), "{no_column}");
    }

    proptest! {
        /// Any file is either read or refused with its name; never a panic.
        #[test]
        fn any_labels_file_reads_or_is_refused_by_name(text in "(platform,order_id,is_fraud\n)?[a-z0-9,\"\n ]{0,200}") {
            match labels_of(&text) {
                Ok(labels) => prop_assert!(labels.values().count() <= text.lines().count()),
                Err(e) => prop_assert!(e.to_string().contains("decisions.csv"), "{}", e),
            }
        }
    }
}
