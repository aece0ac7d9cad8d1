//! Stock on hand at the export, set from each listing's own sales: each product has a cover
//! of two days to four months of its last quarter's rate (log-uniform, the same on every
//! platform it sells on, as one warehouse buys for all), so that some products need
//! reordering and most do not — as a shop's stock is, and unlike a uniform draw that would
//! leave every slow seller with years of cover. A few listings are sold out.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::activity::{Listing, Order};

const DAY_US: i64 = 86_400_000_000;
/// The sales window the rate is taken over.
const RATE_DAYS: i64 = 90;

/// Rewrites every listing's stock as of `end` (UTC microseconds).
pub fn set_stock_from_sales(
    listings: &mut [Listing],
    orders: &[Order],
    end: i64,
    rng: &mut ChaCha8Rng,
) {
    let mut sold = vec![0i64; listings.len()];
    for o in orders {
        if o.fraud.is_none() && o.ordered_at >= end - RATE_DAYS * DAY_US && o.ordered_at < end {
            sold[o.listing] += o.quantity;
        }
    }
    let products = listings.iter().map(|l| l.product + 1).max().unwrap_or(0);
    let cover_days: Vec<f64> = (0..products)
        .map(|_| (rng.random_range(2f64.ln()..120f64.ln())).exp())
        .collect();
    for (l, listing) in listings.iter_mut().enumerate() {
        listing.stock = if rng.random_bool(0.05) {
            0
        } else if sold[l] == 0 {
            rng.random_range(0..30)
        } else {
            let daily = sold[l] as f64 / RATE_DAYS as f64;
            (daily * cover_days[listing.product]).ceil() as i64
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn stock_follows_the_rate() {
        let listing = |n: usize| Listing {
            platform: "jd",
            listing_id: format!("L{n}"),
            product: n,
            title: String::new(),
            price: 1.0,
            currency: "CNY",
            stock: 0,
            listed_at: 0,
        };
        let mut listings: Vec<Listing> = (0..200).map(listing).collect();
        let end = 200 * DAY_US;
        // Listing 0 sells 9 a day for the last 90 days; the others nothing.
        let orders: Vec<Order> = (0..810)
            .map(|i| Order::fixture(0, end - 1 - (i as i64 % 90) * DAY_US, 1.0))
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        set_stock_from_sales(&mut listings, &orders, end, &mut rng);
        let s = listings[0].stock;
        assert!(s == 0 || (18..=1080).contains(&s), "{s}");
        assert!(listings[1..].iter().all(|l| l.stock < 30));
        assert!(listings.iter().any(|l| l.stock == 0));
    }
}
