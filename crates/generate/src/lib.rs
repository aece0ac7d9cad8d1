//! `shopfuse generate`: a realistic multi-platform data set with ground truth.
//!
//! The same real products are listed on a Taobao-like (GBK CSV, Chinese), a JD-like (JSON
//! lines, Chinese), an Amazon-like (CSV/TSV, English, US dollars) platform and an own shop
//! (Parquet); shoppers hold accounts on several of them. The files are messy on purpose —
//! malformed rows, missing values, a duplicate export, outliers, repeated events — and every
//! mess is listed in `truth/` so tests can check that each one is caught, and so are the price
//! moves planted for price monitoring ([`price_moves`]).

pub mod activity;
pub mod assistant_truth;
pub mod catalog;
pub mod people;
pub mod price_moves;
pub mod review_text;
pub mod stock;
mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use shopfuse_core::EntityKind;

use crate::activity::{Activity, Calendar, Listing, Order};
use crate::catalog::{build_catalogue, category_names, Product};
use crate::people::{build_people, Person};
use crate::write::{FileWriter, Line, Rec};

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A file of the data set could not be written.
    #[error("{path}: cannot write it")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A Parquet file of the own shop could not be encoded.
    #[error("{path}: cannot encode it as Parquet")]
    Parquet {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Text outside GBK was put into a GBK file (a generator bug).
    #[error("{path}: text has characters outside GBK; the generator must only put GBK-safe text in GBK files")]
    NotGbk { path: PathBuf },
    /// The options cannot make a data set (the message says which and why).
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub seed: u64,
    pub products: usize,
    pub customers: usize,
    pub orders: usize,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            seed: 42,
            products: 300,
            customers: 4000,
            orders: 24_000,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GenerateSummary {
    pub products: usize,
    pub listings: usize,
    pub people: usize,
    pub accounts: usize,
    pub orders: usize,
    pub fraud_orders: usize,
    pub events: usize,
    pub reviews: usize,
    /// Listings whose price was moved (`truth/price_moves.csv`).
    pub price_moves: usize,
    /// Rows written per data file (relative path), malformed ones included.
    pub files: BTreeMap<String, usize>,
    /// Rows that ingest must quarantine, by expected reason.
    pub malformed_by_reason: BTreeMap<String, usize>,
    pub malformed: usize,
}

/// 2024-01-01 00:00 in Beijing, as UTC microseconds.
fn period_start() -> i64 {
    Utc.with_ymd_and_hms(2023, 12, 31, 16, 0, 0)
        .single()
        .expect("valid date")
        .timestamp_micros()
}
const PERIOD_DAYS: usize = 547; // to 2025-06-30
/// Share of listings planted with a price move.
const PRICE_MOVE_SHARE: f64 = 0.03;

pub fn generate(out: &Path, options: &GenerateOptions) -> Result<GenerateSummary, GenerateError> {
    if options.products < 10 || options.customers < 20 || options.orders < 100 {
        return Err(GenerateError::Invalid(
            "a data set needs at least 10 products, 20 customers and 100 orders".into(),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let start = period_start();
    let products = build_catalogue(options.products, &mut rng);
    let mut listings = activity::build_listings(&products, start, &mut rng);
    let mut people = build_people(options.customers, category_names().len(), start, &mut rng);
    // Their own stream, so shared keys do not reshuffle the rest of the data set.
    people::share_household_keys(
        &mut people,
        &mut ChaCha8Rng::seed_from_u64(options.seed ^ 0x5eed_f00d),
    );
    let calendar = Calendar::new(start, PERIOD_DAYS);
    let mut activity = activity::simulate(
        &products,
        &listings,
        &mut people,
        options.orders,
        &calendar,
        &mut rng,
    );
    // Their own stream too: planting moves must not change any other draw.
    let price_moves = price_moves::plant_price_moves(
        &mut listings,
        &mut activity.orders,
        PRICE_MOVE_SHARE,
        &mut ChaCha8Rng::seed_from_u64(options.seed ^ 0x9e1c_e5ee),
    );
    // Their own stream: composing review texts changes no other draw.
    let (review_truth, defects) = review_text::compose(
        &mut activity,
        &listings,
        &mut ChaCha8Rng::seed_from_u64(options.seed ^ 0x5e47_1e57),
    );
    stock::set_stock_from_sales(
        &mut listings,
        &activity.orders,
        start + PERIOD_DAYS as i64 * 86_400_000_000,
        &mut ChaCha8Rng::seed_from_u64(options.seed ^ 0x0570_c4ed),
    );

    let mut w = FileWriter::new(out);
    let ctx = Ctx {
        products: &products,
        listings: &listings,
        people: &people,
        act: &activity,
    };
    write_taobao(&ctx, &mut w, &mut rng)?;
    write_jd(&ctx, &mut w, &mut rng)?;
    write_amazon(&ctx, &mut w, &mut rng)?;
    write_own_shop(&ctx, &mut w)?;
    write_truth(&ctx, &mut w)?;
    write_sentiment_truth(&ctx, &review_truth, &defects, &mut w)?;
    w.write_text(
        "truth/price_moves.csv",
        &price_moves::truth_csv(&price_moves, &listings),
    )?;
    // Their own streams, so the query and question sets do not shift the data set.
    w.write_text(
        "truth/search_queries.csv",
        &assistant_truth::search_queries(
            &products,
            &listings,
            &mut ChaCha8Rng::seed_from_u64(options.seed ^ 0x5ea7_c400),
        ),
    )?;
    w.write_text(
        "truth/questions.csv",
        &assistant_truth::questions(
            &products,
            &listings,
            &people,
            &activity,
            &mut ChaCha8Rng::seed_from_u64(options.seed ^ 0xa5c0_0001),
        ),
    )?;
    for (path, text) in assistant_truth::policy_files() {
        w.write_text(&path, &text)?;
    }
    w.write_text("shopfuse.toml", &config_toml())?;

    let mut summary = GenerateSummary {
        products: products.len(),
        listings: listings.len(),
        people: people.len(),
        accounts: people.iter().map(|p| p.accounts.len()).sum(),
        orders: activity.orders.len(),
        fraud_orders: activity.orders.iter().filter(|o| o.fraud.is_some()).count(),
        events: activity.events.len(),
        reviews: activity.reviews.len(),
        price_moves: price_moves.len(),
        files: w.rows_per_file.clone(),
        ..Default::default()
    };
    for m in &w.malformed {
        *summary
            .malformed_by_reason
            .entry(m.reason.to_string())
            .or_insert(0) += 1;
    }
    summary.malformed = w.malformed.len();
    w.write_malformed_truth()?;
    w.write_text(
        "truth/summary.json",
        &serde_json::to_string_pretty(&summary).expect("summary serialises"),
    )?;
    Ok(summary)
}

struct Ctx<'a> {
    products: &'a [Product],
    listings: &'a [Listing],
    people: &'a [Person],
    act: &'a Activity,
}

impl Ctx<'_> {
    fn listings_on(&self, platform: &'static str) -> impl Iterator<Item = &Listing> {
        self.listings.iter().filter(move |l| l.platform == platform)
    }
    fn orders_on(&self, platform: &'static str) -> impl Iterator<Item = (usize, &Order)> {
        self.act
            .orders
            .iter()
            .enumerate()
            .filter(move |(_, o)| o.platform == platform)
    }
    fn events_on(&self, platform: &'static str) -> impl Iterator<Item = &activity::Event> {
        self.act
            .events
            .iter()
            .filter(move |e| self.account(e.person, e.account).platform == platform)
    }
    fn reviews_on(&self, platform: &'static str) -> impl Iterator<Item = &activity::Review> {
        self.act
            .reviews
            .iter()
            .filter(move |r| self.act.orders[r.order].platform == platform)
    }
    fn account(&self, person: usize, account: usize) -> &people::Account {
        &self.people[person].accounts[account]
    }

    /// An order's ids and shipping fields, exported alike by every platform, plus the fields
    /// each platform formats its own way.
    fn order_rec(&self, o: &Order, formatted: Vec<(&'static str, String)>) -> Rec {
        let acc = self.account(o.person, o.account);
        let mut fields = vec![
            ("order_id", o.order_id.clone()),
            ("account_id", acc.account_id.clone()),
            ("listing_id", self.listings[o.listing].listing_id.clone()),
            ("phone", acc.phone.clone().unwrap_or_default()),
            ("address", o.address.clone()),
            ("city", people::CITIES[o.city].1.to_string()),
            ("ip", o.ip.clone()),
            ("device_id", o.device.clone()),
            ("payment_method", o.payment.to_string()),
        ];
        fields.extend(formatted);
        rec(fields)
    }

    fn event_rec(&self, e: &activity::Event, formatted: Vec<(&'static str, String)>) -> Rec {
        let mut fields = vec![
            (
                "account_id",
                self.account(e.person, e.account).account_id.clone(),
            ),
            ("listing_id", self.listings[e.listing].listing_id.clone()),
            ("session_id", e.session.clone()),
        ];
        fields.extend(formatted);
        rec(fields)
    }

    fn review_rec(&self, r: &activity::Review, formatted: Vec<(&'static str, String)>) -> Rec {
        let o = &self.act.orders[r.order];
        let mut fields = vec![
            ("review_id", r.review_id.clone()),
            ("listing_id", self.listings[o.listing].listing_id.clone()),
            (
                "account_id",
                self.account(o.person, o.account).account_id.clone(),
            ),
        ];
        fields.extend(formatted);
        rec(fields)
    }
}

/// Beijing local time text, the way Chinese platforms export it.
fn beijing(us: i64, fmt: &str) -> String {
    Utc.timestamp_micros(us + 8 * 3_600_000_000)
        .single()
        .expect("in range")
        .naive_utc()
        .format(fmt)
        .to_string()
}

fn utc(us: i64, fmt: &str) -> String {
    Utc.timestamp_micros(us)
        .single()
        .expect("in range")
        .format(fmt)
        .to_string()
}

fn rec(pairs: Vec<(&'static str, String)>) -> Rec {
    pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect()
}

fn product_rec(ctx: &Ctx, l: &Listing, rng: &mut ChaCha8Rng, zh: bool, price_text: String) -> Rec {
    let p = &ctx.products[l.product];
    let keep = |rng: &mut ChaCha8Rng, share: f64, v: String| {
        if rng.random_bool(share) {
            v
        } else {
            String::new()
        }
    };
    rec(vec![
        ("listing_id", l.listing_id.clone()),
        ("title", l.title.clone()),
        (
            "brand",
            keep(
                rng,
                0.9,
                if zh {
                    p.brand_zh.to_string()
                } else {
                    p.brand_en.to_string()
                },
            ),
        ),
        (
            "category",
            if zh {
                p.category_zh().to_string()
            } else {
                p.category_en().to_string()
            },
        ),
        ("price", price_text),
        (
            "model_code",
            keep(rng, if zh { 0.5 } else { 0.8 }, p.model_code.clone()),
        ),
        (
            "gtin",
            keep(rng, if zh { 0.4 } else { 0.8 }, p.gtin.clone()),
        ),
        (
            "color",
            p.colour
                .map(|(en, c)| if zh { c.to_string() } else { en.to_string() })
                .unwrap_or_default(),
        ),
        (
            "capacity",
            p.capacity.map(str::to_string).unwrap_or_default(),
        ),
        (
            "url",
            format!("https://{}.example/item/{}", l.platform, l.listing_id),
        ),
        ("stock", l.stock.to_string()),
    ])
}

fn write_taobao(ctx: &Ctx, w: &mut FileWriter, rng: &mut ChaCha8Rng) -> Result<(), GenerateError> {
    taobao_products(ctx, w, rng)?;
    taobao_orders(ctx, w, rng)?;
    taobao_events(ctx, w, rng)?;
    taobao_reviews(ctx, w, rng)?;
    let lines = customer_lines(ctx, "taobao", |t| beijing(t, "%Y年%-m月%-d日"));
    w.csv(
        "data/taobao/customers.csv",
        "taobao",
        EntityKind::Customers,
        b',',
        true,
        lines,
    )?;
    Ok(())
}

/// Taobao listings as CSV, with prices like `￥1,299` and a few typed with two extra zeros.
fn taobao_products(
    ctx: &Ctx,
    w: &mut FileWriter,
    rng: &mut ChaCha8Rng,
) -> Result<(), GenerateError> {
    let mut lines: Vec<Line> = Vec::new();
    for l in ctx.listings_on("taobao") {
        // A few prices typed with two extra zeros: outliers the clean stage must flag.
        let factor = if rng.random_bool(0.01) { 100.0 } else { 1.0 };
        if factor > 1.0 {
            w.outlier("taobao", &l.listing_id, "price");
        }
        let price = format!("￥{}", thousands(l.price * factor));
        let mut r = product_rec(ctx, l, rng, true, price);
        r.push(("listed_at", beijing(l.listed_at, "%Y-%m-%d %H:%M:%S")));
        lines.push(Line::Good(r));
    }
    w.csv(
        "data/taobao/products.csv",
        "taobao",
        EntityKind::Products,
        b',',
        true,
        lines,
    )?;
    Ok(())
}

/// Taobao orders split by year; 2024 exported twice, overlapping, with status changes between.
fn taobao_orders(ctx: &Ctx, w: &mut FileWriter, rng: &mut ChaCha8Rng) -> Result<(), GenerateError> {
    let mut by_year: BTreeMap<bool, Vec<Line>> = BTreeMap::new();
    for (_, o) in ctx.orders_on("taobao") {
        let outlier = o.fraud.is_none() && rng.random_bool(0.003);
        if outlier {
            w.outlier("taobao", &o.order_id, "unit_price");
        }
        let r = ctx.order_rec(
            o,
            vec![
                ("quantity", o.quantity.to_string()),
                (
                    "unit_price",
                    format!("{:.2}", o.unit_price * if outlier { 100.0 } else { 1.0 }),
                ),
                ("ordered_at", beijing(o.ordered_at, "%Y-%m-%d %H:%M:%S")),
                ("status", zh_status(o.status).to_string()),
            ],
        );
        by_year
            .entry(beijing(o.ordered_at, "%Y") == "2024")
            .or_default()
            .push(Line::Good(r));
    }
    let y2024 = by_year.remove(&true).unwrap_or_default();
    let y2025 = by_year.remove(&false).unwrap_or_default();
    // The 2024 file was exported twice; the second export overlaps the last stretch of the
    // first, and some orders changed status in between.
    let overlap_from = y2024.len() - y2024.len() / 12;
    let reexport: Vec<Line> = y2024[overlap_from..]
        .iter()
        .map(|l| match l {
            Line::Good(r) if rng.random_bool(0.2) => {
                let mut r = r.clone();
                for (k, v) in r.iter_mut() {
                    if *k == "status" {
                        *v = "退款成功".into();
                    }
                }
                Line::Good(r)
            }
            other => other.clone(),
        })
        .collect();
    let bad = bad_rows(
        &y2024,
        &[
            ("unit_price", "价格待定"),
            ("ordered_at", "2024-13-45 25:61:00"),
        ],
        "order_id",
        rng,
    );
    w.csv(
        "data/taobao/orders-2024.csv",
        "taobao",
        EntityKind::Orders,
        b',',
        true,
        with_bad(y2024, bad, rng),
    )?;
    w.csv(
        "data/taobao/orders-2024-reexport.csv",
        "taobao",
        EntityKind::Orders,
        b',',
        true,
        reexport,
    )?;
    w.csv(
        "data/taobao/orders-2025.csv",
        "taobao",
        EntityKind::Orders,
        b',',
        true,
        y2025,
    )?;
    Ok(())
}

/// Taobao behaviour events with Chinese event names and some double-sent by app retries.
fn taobao_events(ctx: &Ctx, w: &mut FileWriter, rng: &mut ChaCha8Rng) -> Result<(), GenerateError> {
    let zh_event = |t: &str| match t {
        "view" => "浏览",
        "cart" => "加购",
        "purchase" => "购买",
        _ => "收藏",
    };
    let mut lines = Vec::new();
    for e in ctx.events_on("taobao") {
        let r = ctx.event_rec(
            e,
            vec![
                ("event_type", zh_event(e.event_type).to_string()),
                ("occurred_at", beijing(e.at, "%Y-%m-%d %H:%M:%S")),
            ],
        );
        // Double-sent events: the app retried.
        if rng.random_bool(0.01) {
            lines.push(Line::Good(r.clone()));
        }
        lines.push(Line::Good(r));
    }
    let bad = bad_rows(
        &lines,
        &[("event_type", "分享"), ("occurred_at", "昨天")],
        "account_id",
        rng,
    );
    w.csv(
        "data/taobao/events.csv",
        "taobao",
        EntityKind::Events,
        b',',
        true,
        with_bad(lines, bad, rng),
    )?;
    Ok(())
}

/// Taobao reviews rated as `5星` or `★★★★★`, a few with the text missing.
fn taobao_reviews(
    ctx: &Ctx,
    w: &mut FileWriter,
    rng: &mut ChaCha8Rng,
) -> Result<(), GenerateError> {
    let mut lines = Vec::new();
    for r in ctx.reviews_on("taobao") {
        let rating = if rng.random_bool(0.5) {
            format!("{}星", r.rating)
        } else {
            "★".repeat(r.rating as usize)
        };
        lines.push(Line::Good(ctx.review_rec(
            r,
            vec![
                ("rating", rating),
                (
                    "text",
                    if rng.random_bool(0.05) {
                        String::new()
                    } else {
                        r.text.clone()
                    },
                ),
                ("reviewed_at", beijing(r.at, "%Y-%m-%d %H:%M")),
            ],
        )));
    }
    w.csv(
        "data/taobao/reviews.csv",
        "taobao",
        EntityKind::Reviews,
        b',',
        true,
        lines,
    )?;
    Ok(())
}

fn write_jd(ctx: &Ctx, w: &mut FileWriter, rng: &mut ChaCha8Rng) -> Result<(), GenerateError> {
    jd_products(ctx, w, rng)?;
    jd_orders(ctx, w, rng)?;
    jd_events(ctx, w)?;
    jd_reviews(ctx, w)?;
    let lines = customer_lines(ctx, "jd", |t| beijing(t, "%Y/%m/%d %H:%M:%S"));
    w.jsonl(
        "data/jd/customers.jsonl",
        "jd",
        EntityKind::Customers,
        lines,
        &[],
    )?;
    Ok(())
}

/// JD listings as JSON lines.
fn jd_products(ctx: &Ctx, w: &mut FileWriter, rng: &mut ChaCha8Rng) -> Result<(), GenerateError> {
    let mut lines = Vec::new();
    for l in ctx.listings_on("jd") {
        let mut r = product_rec(ctx, l, rng, true, format!("{:.2}", l.price));
        r.push(("listed_at", beijing(l.listed_at, "%Y/%m/%d %H:%M:%S")));
        lines.push(Line::Good(r));
    }
    w.jsonl(
        "data/jd/products.jsonl",
        "jd",
        EntityKind::Products,
        lines,
        &[],
    )?;
    Ok(())
}

/// JD orders as JSON lines, a few without a quantity.
fn jd_orders(ctx: &Ctx, w: &mut FileWriter, rng: &mut ChaCha8Rng) -> Result<(), GenerateError> {
    let mut lines = Vec::new();
    for (_, o) in ctx.orders_on("jd") {
        let quantity = if rng.random_bool(0.03) {
            String::new()
        } else {
            o.quantity.to_string()
        };
        lines.push(Line::Good(ctx.order_rec(
            o,
            vec![
                ("quantity", quantity),
                ("unit_price", format!("{:.2}", o.unit_price)),
                ("ordered_at", beijing(o.ordered_at, "%Y-%m-%d %H:%M:%S")),
                ("status", o.status.to_string()),
            ],
        )));
    }
    let bad = bad_rows(
        &lines,
        &[
            ("unit_price", "面议"),
            ("ordered_at", "0000-00-00 00:00:00"),
        ],
        "order_id",
        rng,
    );
    w.jsonl(
        "data/jd/orders.jsonl",
        "jd",
        EntityKind::Orders,
        with_bad(lines, bad, rng),
        &["quantity"],
    )?;
    Ok(())
}

/// JD events with JD's own event names and epoch-millisecond times.
fn jd_events(ctx: &Ctx, w: &mut FileWriter) -> Result<(), GenerateError> {
    let mut lines = Vec::new();
    for e in ctx.events_on("jd") {
        let r = ctx.event_rec(
            e,
            vec![
                (
                    "event_type",
                    match e.event_type {
                        "view" => "click",
                        "cart" => "cart",
                        "purchase" => "order",
                        _ => "fav",
                    }
                    .to_string(),
                ),
                ("occurred_at", (e.at / 1000).to_string()),
            ],
        );
        lines.push(Line::Good(r));
    }
    w.jsonl(
        "data/jd/events.jsonl",
        "jd",
        EntityKind::Events,
        lines,
        &["occurred_at"],
    )?;
    Ok(())
}

/// JD reviews as one JSON array.
fn jd_reviews(ctx: &Ctx, w: &mut FileWriter) -> Result<(), GenerateError> {
    let mut lines = Vec::new();
    for r in ctx.reviews_on("jd") {
        lines.push(Line::Good(ctx.review_rec(
            r,
            vec![
                ("rating", r.rating.to_string()),
                ("text", r.text.clone()),
                ("reviewed_at", beijing(r.at, "%Y-%m-%d %H:%M:%S")),
            ],
        )));
    }
    w.json_array(
        "data/jd/reviews.json",
        "jd",
        EntityKind::Reviews,
        lines,
        &["rating"],
    )?;
    Ok(())
}

fn write_amazon(ctx: &Ctx, w: &mut FileWriter, rng: &mut ChaCha8Rng) -> Result<(), GenerateError> {
    amazon_products(ctx, w, rng)?;
    amazon_orders(ctx, w, rng)?;
    amazon_events(ctx, w)?;
    amazon_reviews(ctx, w, rng)?;
    let lines = customer_lines(ctx, "amazon", |t| utc(t, "%Y-%m-%d"));
    w.csv(
        "data/amazon/customers.csv",
        "amazon",
        EntityKind::Customers,
        b',',
        false,
        lines,
    )?;
    Ok(())
}

/// Amazon listings as TSV without a header, prices in US$.
fn amazon_products(
    ctx: &Ctx,
    w: &mut FileWriter,
    rng: &mut ChaCha8Rng,
) -> Result<(), GenerateError> {
    let mut lines = Vec::new();
    for l in ctx.listings_on("amazon") {
        let mut r = product_rec(ctx, l, rng, false, format!("US${:.2}", l.price));
        r.push(("listed_at", utc(l.listed_at, "%Y-%m-%dT%H:%M:%S%:z")));
        lines.push(Line::Good(r));
    }
    w.csv(
        "data/amazon/products.tsv",
        "amazon",
        EntityKind::Products,
        b'\t',
        false,
        lines,
    )?;
    Ok(())
}

/// Amazon orders in UTC with a few bulk quantities (outliers).
fn amazon_orders(ctx: &Ctx, w: &mut FileWriter, rng: &mut ChaCha8Rng) -> Result<(), GenerateError> {
    let mut lines = Vec::new();
    for (_, o) in ctx.orders_on("amazon") {
        let bulk = o.fraud.is_none() && rng.random_bool(0.002);
        if bulk {
            w.outlier("amazon", &o.order_id, "quantity");
        }
        lines.push(Line::Good(ctx.order_rec(
            o,
            vec![
                (
                    "quantity",
                    if bulk {
                        rng.random_range(150..400).to_string()
                    } else {
                        o.quantity.to_string()
                    },
                ),
                ("unit_price", format!("{:.2}", o.unit_price)),
                ("currency", "USD".into()),
                // Amazon reports in the marketplace's zone with an explicit offset.
                ("ordered_at", utc(o.ordered_at, "%Y-%m-%dT%H:%M:%S+00:00")),
                ("status", o.status.to_string()),
            ],
        )));
    }
    let bad = bad_rows(
        &lines,
        &[("unit_price", "US$-19.99"), ("currency", "dollars")],
        "order_id",
        rng,
    );
    w.csv(
        "data/amazon/orders.csv",
        "amazon",
        EntityKind::Orders,
        b',',
        false,
        with_bad(lines, bad, rng),
    )?;
    Ok(())
}

/// Amazon events with Amazon's event names.
fn amazon_events(ctx: &Ctx, w: &mut FileWriter) -> Result<(), GenerateError> {
    let mut lines = Vec::new();
    for e in ctx.events_on("amazon") {
        lines.push(Line::Good(ctx.event_rec(
            e,
            vec![
            (
                "event_type",
                match e.event_type {
                    "view" => "detail_view",
                    "cart" => "add_to_cart",
                    "purchase" => "purchase",
                    _ => "wishlist",
                }
                .to_string(),
            ),
            ("occurred_at", utc(e.at, "%Y-%m-%dT%H:%M:%SZ")),
        ],
        )));
    }
    w.csv(
        "data/amazon/events.csv",
        "amazon",
        EntityKind::Events,
        b',',
        false,
        lines,
    )?;
    Ok(())
}

/// Amazon reviews rated as `5.0 out of 5 stars`.
fn amazon_reviews(
    ctx: &Ctx,
    w: &mut FileWriter,
    rng: &mut ChaCha8Rng,
) -> Result<(), GenerateError> {
    let mut lines = Vec::new();
    for r in ctx.reviews_on("amazon") {
        lines.push(Line::Good(ctx.review_rec(
            r,
            vec![
                ("rating", format!("{}.0 out of 5 stars", r.rating)),
                ("text", r.text.clone()),
                ("reviewed_at", utc(r.at, "%Y-%m-%d")),
            ],
        )));
    }
    let bad = bad_rows(
        &lines,
        &[("rating", "6.0 out of 5 stars")],
        "review_id",
        rng,
    );
    w.csv(
        "data/amazon/reviews.csv",
        "amazon",
        EntityKind::Reviews,
        b',',
        false,
        with_bad(lines, bad, rng),
    )?;
    Ok(())
}

/// The own shop's listings as Parquet: clean English fields, every identifier present.
fn own_shop_products(ctx: &Ctx, w: &mut FileWriter) -> Result<(), GenerateError> {
    let rfc = |us: i64| utc(us, "%Y-%m-%dT%H:%M:%SZ");
    let products: Vec<Rec> = ctx
        .listings_on("own_shop")
        .map(|l| {
            let p = &ctx.products[l.product];
            rec(vec![
                ("listing_id", l.listing_id.clone()),
                ("title", l.title.clone()),
                ("brand", p.brand_en.to_string()),
                ("category", p.category_en().to_string()),
                ("price", format!("{:.2}", l.price)),
                ("currency", "CNY".into()),
                ("model_code", p.model_code.clone()),
                ("gtin", p.gtin.clone()),
                (
                    "color",
                    p.colour.map(|c| c.0.to_string()).unwrap_or_default(),
                ),
                (
                    "capacity",
                    p.capacity.map(str::to_string).unwrap_or_default(),
                ),
                ("url", format!("https://shop.example/p/{}", l.listing_id)),
                ("stock", l.stock.to_string()),
                ("listed_at", rfc(l.listed_at)),
            ])
        })
        .collect();
    w.parquet(
        "data/own_shop/products.parquet",
        EntityKind::Products,
        &products,
    )?;
    Ok(())
}

fn write_own_shop(ctx: &Ctx, w: &mut FileWriter) -> Result<(), GenerateError> {
    own_shop_products(ctx, w)?;
    let rfc = |us: i64| utc(us, "%Y-%m-%dT%H:%M:%SZ");
    let orders: Vec<Rec> = ctx
        .orders_on("own_shop")
        .map(|(_, o)| {
            ctx.order_rec(
                o,
                vec![
                    ("quantity", o.quantity.to_string()),
                    ("unit_price", format!("{:.2}", o.unit_price)),
                    ("currency", "CNY".into()),
                    ("ordered_at", rfc(o.ordered_at)),
                    ("status", o.status.to_string()),
                ],
            )
        })
        .collect();
    w.parquet("data/own_shop/orders.parquet", EntityKind::Orders, &orders)?;
    let events: Vec<Rec> = ctx
        .events_on("own_shop")
        .map(|e| {
            ctx.event_rec(
                e,
                vec![
                    ("event_type", e.event_type.to_string()),
                    ("occurred_at", rfc(e.at)),
                ],
            )
        })
        .collect();
    w.parquet("data/own_shop/events.parquet", EntityKind::Events, &events)?;
    let reviews: Vec<Rec> = ctx
        .reviews_on("own_shop")
        .map(|r| {
            ctx.review_rec(
                r,
                vec![
                    ("rating", r.rating.to_string()),
                    ("text", r.text.clone()),
                    ("reviewed_at", rfc(r.at)),
                ],
            )
        })
        .collect();
    w.parquet(
        "data/own_shop/reviews.parquet",
        EntityKind::Reviews,
        &reviews,
    )?;
    let customers: Vec<Rec> = ctx
        .people
        .iter()
        .flat_map(|p| {
            p.accounts
                .iter()
                .filter(|a| a.platform == "own_shop")
                .map(move |a| (p, a))
        })
        .map(|(p, a)| customer_rec(p, a, rfc(a.registered_at)))
        .collect();
    w.parquet(
        "data/own_shop/customers.parquet",
        EntityKind::Customers,
        &customers,
    )?;
    Ok(())
}

fn customer_rec(p: &Person, a: &people::Account, registered: String) -> Rec {
    rec(vec![
        ("account_id", a.account_id.clone()),
        ("name", a.name.clone()),
        ("phone", a.phone.clone().unwrap_or_default()),
        ("email", a.email.clone().unwrap_or_default()),
        ("address", a.address.clone()),
        ("city", people::CITIES[p.city].1.to_string()),
        ("registered_at", registered),
    ])
}

fn customer_lines(ctx: &Ctx, platform: &str, time: impl Fn(i64) -> String) -> Vec<Line> {
    let mut lines: Vec<Line> = ctx
        .people
        .iter()
        .flat_map(|p| {
            p.accounts
                .iter()
                .filter(|a| a.platform == platform)
                .map(move |a| (p, a))
        })
        .map(|(p, a)| Line::Good(customer_rec(p, a, time(a.registered_at))))
        .collect();
    // Exports are sorted by the platform's own key, not by person.
    lines.sort_by_key(|l| match l {
        Line::Good(r) => r
            .iter()
            .find(|(k, _)| *k == "account_id")
            .map(|(_, v)| v.clone()),
        _ => None,
    });
    lines
}

fn write_truth(ctx: &Ctx, w: &mut FileWriter) -> Result<(), GenerateError> {
    let mut text = String::from("platform,listing_id,product_id,family_id\n");
    for l in ctx.listings {
        let p = &ctx.products[l.product];
        text.push_str(&format!(
            "{},{},{},{}\n",
            l.platform, l.listing_id, p.product_id, p.family_id
        ));
    }
    w.write_text("truth/product_clusters.csv", &text)?;
    let mut text = String::from("platform,account_id,person_id,overlap\n");
    for p in ctx.people {
        for a in &p.accounts {
            text.push_str(&format!(
                "{},{},{},{}\n",
                a.platform,
                a.account_id,
                p.person_id,
                p.overlap.as_str()
            ));
        }
    }
    w.write_text("truth/customer_clusters.csv", &text)?;
    let mut text = String::from("platform,order_id,is_fraud,pattern\n");
    for o in &ctx.act.orders {
        text.push_str(&format!(
            "{},{},{},{}\n",
            o.platform,
            o.order_id,
            o.fraud.is_some() as u8,
            o.fraud.unwrap_or("")
        ));
    }
    w.write_text("truth/fraud_labels.csv", &text)?;
    w.write_outlier_truth()
}

/// `truth/review_sentiment.csv` (what each review's text says, its aspects, and whether it
/// contradicts its stars) and `truth/sentiment_defects.csv` (the planted defect batches with
/// every listing of the product).
fn write_sentiment_truth(
    ctx: &Ctx,
    truth: &[review_text::ReviewTruth],
    defects: &[review_text::DefectBatch],
    w: &mut FileWriter,
) -> Result<(), GenerateError> {
    let mut text = String::from("platform,review_id,rating,sentiment,mismatch,defect,aspects\n");
    for (r, t) in ctx.act.reviews.iter().zip(truth) {
        text.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            ctx.act.orders[r.order].platform,
            r.review_id,
            r.rating,
            t.sentiment,
            t.mismatch as u8,
            t.defect.map(|d| format!("D{}", d + 1)).unwrap_or_default(),
            t.aspects
        ));
    }
    w.write_text("truth/review_sentiment.csv", &text)?;
    let mut text = String::from("defect,aspect,start,end,reviews,listings\n");
    for (i, d) in defects.iter().enumerate() {
        let listings: Vec<String> = ctx
            .listings
            .iter()
            .filter(|l| l.product == d.product)
            .map(|l| format!("{}:{}", l.platform, l.listing_id))
            .collect();
        let day = |us: i64| {
            chrono::DateTime::from_timestamp_micros(us)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default()
        };
        text.push_str(&format!(
            "D{},{},{},{},{},{}\n",
            i + 1,
            d.aspect,
            day(d.start),
            day(d.end),
            d.reviews,
            listings.join(";")
        ));
    }
    w.write_text("truth/sentiment_defects.csv", &text)
}

fn zh_status(s: &str) -> &'static str {
    match s {
        "completed" => "交易成功",
        "shipped" => "卖家已发货",
        "refunded" => "退款成功",
        _ => "等待付款",
    }
}

/// "5999.00" → "5,999.00".
fn thousands(v: f64) -> String {
    let s = format!("{v:.2}");
    let (int, frac) = s.split_once('.').expect("two decimals");
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{out}.{frac}")
}

/// Malformed rows modelled on real breakage: a good row with one field corrupted per
/// (field, bad value), one with its key blanked, and one that is cut short. The count scales
/// with the file so a large export has proportionally more bad rows.
fn bad_rows(
    good: &[Line],
    corruptions: &[(&'static str, &str)],
    key: &'static str,
    rng: &mut ChaCha8Rng,
) -> Vec<(Line, &'static str, String)> {
    let per_kind = (good.len() / 2500).clamp(1, 12);
    let mut out = Vec::new();
    let goods: Vec<&Rec> = good
        .iter()
        .filter_map(|l| if let Line::Good(r) = l { Some(r) } else { None })
        .collect();
    let Some(_) = goods.first() else { return out };
    for _ in 0..per_kind {
        for (field, bad) in corruptions {
            let mut r = (*goods.choose(rng).expect("non-empty")).clone();
            set(&mut r, field, bad);
            set(
                &mut r,
                key,
                &format!("BAD{}", rng.random_range(100_000..999_999)),
            );
            out.push((Line::Good(r), "invalid_value", format!("{field} = {bad:?}")));
        }
        let mut r = (*goods.choose(rng).expect("non-empty")).clone();
        set(&mut r, key, "");
        out.push((Line::Good(r), "missing_required", format!("{key} empty")));
        let r = (*goods.choose(rng).expect("non-empty")).clone();
        out.push((Line::Truncated(r), "malformed_row", "row cut short".into()));
    }
    out
}

fn set(r: &mut Rec, field: &'static str, value: &str) {
    match r.iter_mut().find(|(k, _)| *k == field) {
        Some((_, v)) => *v = value.to_string(),
        None => r.push((field, value.to_string())),
    }
}

/// Inserts the bad rows at random places among the good ones.
fn with_bad(
    mut lines: Vec<Line>,
    bad: Vec<(Line, &'static str, String)>,
    rng: &mut ChaCha8Rng,
) -> Vec<Line> {
    for (line, reason, detail) in bad {
        let at = rng.random_range(0..=lines.len());
        lines.insert(at, Line::Bad(Box::new(line), reason, detail));
    }
    lines
}

fn config_toml() -> String {
    let mut s = String::from(
        r#"# Written by `shopfuse generate`. Every source maps a platform export onto the canonical
# schema; the presets know each platform's column names, so only odd cases need [sources.fields].

[project]
name = "shopfuse-demo"
base_currency = "CNY"

[currency.rates]
# Units of CNY per unit of each currency.
USD = 7.2
EUR = 7.8
HKD = 0.92

[clean]
duplicate_event_window_secs = 2

[clean.missing]
"orders.quantity" = "constant:1"
"products.stock" = "median"

[clean.outliers]
method = "iqr"
iqr_k = 3.0
isolation_forest = true
isolation_forest_threshold = 0.7
"#,
    );
    // (name, platform, kind, path, timezone, default currency)
    type SourceDecl = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
    );
    let sources: &[SourceDecl] = &[
        (
            "taobao_products",
            "taobao",
            "products",
            "data/taobao/products.csv",
            "Asia/Shanghai",
            Some("CNY"),
        ),
        (
            "taobao_orders",
            "taobao",
            "orders",
            "data/taobao/orders-*.csv",
            "Asia/Shanghai",
            Some("CNY"),
        ),
        (
            "taobao_events",
            "taobao",
            "events",
            "data/taobao/events.csv",
            "Asia/Shanghai",
            None,
        ),
        (
            "taobao_reviews",
            "taobao",
            "reviews",
            "data/taobao/reviews.csv",
            "Asia/Shanghai",
            None,
        ),
        (
            "taobao_customers",
            "taobao",
            "customers",
            "data/taobao/customers.csv",
            "Asia/Shanghai",
            None,
        ),
        (
            "jd_products",
            "jd",
            "products",
            "data/jd/products.jsonl",
            "Asia/Shanghai",
            Some("CNY"),
        ),
        (
            "jd_orders",
            "jd",
            "orders",
            "data/jd/orders.jsonl",
            "Asia/Shanghai",
            Some("CNY"),
        ),
        (
            "jd_events",
            "jd",
            "events",
            "data/jd/events.jsonl",
            "Asia/Shanghai",
            None,
        ),
        (
            "jd_reviews",
            "jd",
            "reviews",
            "data/jd/reviews.json",
            "Asia/Shanghai",
            None,
        ),
        (
            "jd_customers",
            "jd",
            "customers",
            "data/jd/customers.jsonl",
            "Asia/Shanghai",
            None,
        ),
        (
            "amazon_products",
            "amazon",
            "products",
            "data/amazon/products.tsv",
            "UTC",
            Some("USD"),
        ),
        (
            "amazon_orders",
            "amazon",
            "orders",
            "data/amazon/orders.csv",
            "UTC",
            Some("USD"),
        ),
        (
            "amazon_events",
            "amazon",
            "events",
            "data/amazon/events.csv",
            "UTC",
            None,
        ),
        (
            "amazon_reviews",
            "amazon",
            "reviews",
            "data/amazon/reviews.csv",
            "UTC",
            None,
        ),
        (
            "amazon_customers",
            "amazon",
            "customers",
            "data/amazon/customers.csv",
            "UTC",
            None,
        ),
        (
            "own_shop_products",
            "own_shop",
            "products",
            "data/own_shop/products.parquet",
            "Asia/Shanghai",
            Some("CNY"),
        ),
        (
            "own_shop_orders",
            "own_shop",
            "orders",
            "data/own_shop/orders.parquet",
            "Asia/Shanghai",
            Some("CNY"),
        ),
        (
            "own_shop_events",
            "own_shop",
            "events",
            "data/own_shop/events.parquet",
            "Asia/Shanghai",
            None,
        ),
        (
            "own_shop_reviews",
            "own_shop",
            "reviews",
            "data/own_shop/reviews.parquet",
            "Asia/Shanghai",
            None,
        ),
        (
            "own_shop_customers",
            "own_shop",
            "customers",
            "data/own_shop/customers.parquet",
            "Asia/Shanghai",
            None,
        ),
    ];
    for (name, platform, kind, path, tz, currency) in sources {
        let preset = if *platform == "own_shop" {
            "canonical"
        } else {
            platform
        };
        s.push_str(&format!(
            "\n[[sources]]\nname = \"{name}\"\nplatform = \"{platform}\"\nkind = \"{kind}\"\npath = \"{path}\"\npreset = \"{preset}\"\ntimezone = \"{tz}\"\n"
        ));
        if let Some(c) = currency {
            s.push_str(&format!("currency = \"{c}\"\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(5999.0), "5,999.00");
        assert_eq!(thousands(1234567.5), "1,234,567.50");
        assert_eq!(thousands(99.9), "99.90");
    }

    #[test]
    fn config_parses_and_names_every_file() {
        let config =
            shopfuse_core::ProjectConfig::parse(&config_toml(), Path::new("shopfuse.toml"))
                .unwrap();
        assert_eq!(config.sources.len(), 20);
    }

    #[test]
    fn same_seed_same_files() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let opts = GenerateOptions {
            seed: 3,
            products: 40,
            customers: 100,
            orders: 600,
        };
        let sa = generate(a.path(), &opts).unwrap();
        generate(b.path(), &opts).unwrap();
        assert!(sa.malformed > 0 && sa.orders >= 600);
        for f in sa.files.keys() {
            assert_eq!(
                std::fs::read(a.path().join(f)).unwrap(),
                std::fs::read(b.path().join(f)).unwrap(),
                "{f}"
            );
        }
    }
}
