//! `shopfuse bench risk`: ring search and scoring speed, and peak memory, on synthetic order
//! books of a given size — shoppers with accounts on three platforms, one or two devices and a
//! home IP each (a tenth of orders from mobile addresses), Zipf-popular listings, night-time
//! orders to a new device and address, and brushing rings of five fresh accounts on one device
//! and IP (0.5 % of orders).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use shopfuse_core::config::RiskConfig;

use crate::assessment::assess;
use crate::order_book::{OrderBook, OrderInput};
use crate::RiskError;

const DAY_US: i64 = 86_400_000_000;
const PLATFORMS: [&str; 3] = ["taobao", "jd", "amazon"];

/// Figures at one size.
#[derive(Debug, Clone, Serialize)]
pub struct RiskBench {
    pub orders: usize,
    pub accounts: usize,
    pub build_seconds: f64,
    pub ring_seconds: f64,
    pub rings: usize,
    /// Orders per second through the ring search.
    pub ring_orders_per_s: f64,
    pub score_seconds: f64,
    /// Orders per second through evidence and scoring (rings excluded).
    pub score_orders_per_s: f64,
    pub review_seconds: f64,
    /// Peak resident memory of the process so far, MiB.
    pub peak_memory_mib: Option<f64>,
}

/// A synthetic book of about `orders` orders.
pub fn synthetic_book(orders: usize, seed: u64) -> OrderBook {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut book = OrderBook::default();
    let people = (orders / 6).max(10);
    let listings = (orders / 50).max(20);
    let start = 1_700_000_000_000_000i64;
    // Each person: one to three accounts on distinct platforms, one customer.
    let mut accounts: Vec<Vec<(usize, String)>> = Vec::with_capacity(people);
    for p in 0..people {
        let n = rng.random_range(1..=3);
        let first = rng.random_range(0..3);
        let acc: Vec<(usize, String)> = (0..n)
            .map(|k| {
                let platform = (first + k) % 3;
                let id = format!("{}{p}", &PLATFORMS[platform][..1]);
                book.add_account(
                    PLATFORMS[platform],
                    &id,
                    Some(&format!("CU{p}")),
                    Some(start - rng.random_range(30..900) * DAY_US),
                );
                (platform, id)
            })
            .collect();
        accounts.push(acc);
    }
    let listing_ids: Vec<String> = (0..listings).map(|l| format!("L{l}")).collect();
    let zipf = |rng: &mut ChaCha8Rng| -> usize {
        let u: f64 = rng.random_range(1e-9..1.0);
        ((listings as f64).powf(u) as usize)
            .saturating_sub(1)
            .min(listings - 1)
    };
    let mut made = 0;
    let mut order_no = 0usize;
    let target_rings = orders / 200;
    while made < orders.saturating_sub(target_rings) {
        let p = rng.random_range(0..people);
        let (platform, account) = &accounts[p][rng.random_range(0..accounts[p].len())];
        let device = format!("d{p}-{}", rng.random_range(0..2));
        let address = format!("a{p}");
        // Home broadband most of the time, else a mobile address from a /8 shared by everyone.
        let ip = if rng.random_bool(0.9) {
            format!("10.{}.{}.{}", (p >> 16) & 255, (p >> 8) & 255, p & 255)
        } else {
            let m: u32 = rng.random_range(0..1 << 24);
            format!("100.{}.{}.{}", m >> 16, (m >> 8) & 255, m & 255)
        };
        let night = rng.random_bool(0.002);
        order_no += 1;
        book.add_order(&OrderInput {
            platform: PLATFORMS[*platform],
            order_id: &format!("O{order_no}"),
            account_id: account,
            listing_id: &listing_ids[zipf(&mut rng)],
            at: start + rng.random_range(0..365 * DAY_US),
            amount: rng.random_range(10.0..500.0) * if night { 20.0 } else { 1.0 },
            device: Some(&if night {
                format!("new-{order_no}")
            } else {
                device
            }),
            ip: Some(&ip),
            address: Some(&if night {
                format!("far-{order_no}")
            } else {
                address
            }),
            city: Some(if night { "far" } else { "home" }),
            outlier: false,
        });
        made += 1;
    }
    let mut ring = 0;
    while made < orders {
        ring += 1;
        let platform = PLATFORMS[rng.random_range(0..2)];
        let listing = &listing_ids[rng.random_range(0..listings)];
        let t0 = start + rng.random_range(0..360 * DAY_US);
        for m in 0..5 {
            let account = format!("ring{ring}-{m}");
            book.add_account(platform, &account, None, Some(t0 - 2 * DAY_US));
            for _ in 0..3 {
                order_no += 1;
                book.add_order(&OrderInput {
                    platform,
                    order_id: &format!("O{order_no}"),
                    account_id: &account,
                    listing_id: listing,
                    at: t0 + rng.random_range(0..2 * DAY_US),
                    amount: 50.0,
                    device: Some(&format!("ringdev{ring}")),
                    ip: Some(&format!("ringip{ring}")),
                    address: Some(&format!("ringaddr{ring}-{m}")),
                    city: Some("home"),
                    outlier: false,
                });
                made += 1;
            }
        }
    }
    book
}

/// Builds and scores a synthetic book of each size.
pub fn bench_risk(sizes: &[usize], config: &RiskConfig) -> Result<Vec<RiskBench>, RiskError> {
    let mut out = Vec::new();
    for &n in sizes {
        let t = std::time::Instant::now();
        let book = synthetic_book(n, 42);
        let build_seconds = t.elapsed().as_secs_f64();
        let a = assess(&book, config, None)?;
        let score_seconds = a.seconds.order_features + a.seconds.order_scores;
        out.push(RiskBench {
            orders: book.orders.len(),
            accounts: book.accounts.len(),
            build_seconds,
            ring_seconds: a.seconds.rings,
            rings: a.rings.len(),
            ring_orders_per_s: book.orders.len() as f64 / a.seconds.rings.max(1e-9),
            score_seconds,
            score_orders_per_s: book.orders.len() as f64 / score_seconds.max(1e-9),
            review_seconds: a.seconds.reviews,
            peak_memory_mib: shopfuse_core::progress::peak_memory_mib(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_planted_rings_are_found_in_a_small_book() {
        let book = synthetic_book(20_000, 1);
        let a = assess(&book, &RiskConfig::default(), None).unwrap();
        let planted = book
            .entities
            .names
            .iter()
            .filter(|n| n.contains(":ring"))
            .count()
            / 5;
        assert!(planted > 0);
        let found: usize = a
            .rings
            .iter()
            .filter(|r| {
                r.entities
                    .iter()
                    .all(|&e| book.entities.names[e as usize].contains(":ring"))
            })
            .count();
        assert_eq!(found, planted, "{} rings found", a.rings.len());
    }
}
