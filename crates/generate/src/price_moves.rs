//! Planted price moves, the ground truth for price monitoring: on a few listings the price
//! changes for good from one day on — an **undercut** (the platform drops below every other
//! platform's price of the same product by 15–30 %) or a **sharp move** (the price jumps
//! 30–60 % up or down). Every order on the listing from that day pays the new price, and the
//! listing's export shows it (an export is a snapshot of today).
//!
//! Moves go only where the listing has orders on both sides of the day (three before, four
//! after), so that a monitor reading transaction prices can see the move at all, and at most
//! one per product, so that truth is never ambiguous about which move an alert belongs to.

use std::collections::HashSet;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::activity::{Listing, Order, USD_RATE};
use crate::catalog::round2;

const DAY_US: i64 = 86_400_000_000;
/// Beijing is UTC+8 all year.
const BEIJING_US: i64 = 8 * 3_600_000_000;

/// One planted move, as written to `truth/price_moves.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceMove {
    /// Index into the listings.
    pub listing: usize,
    /// `undercut` or `sharp_move`.
    pub kind: &'static str,
    /// The first Beijing day at the new price, as UTC microseconds of its midnight.
    pub from: i64,
    /// In the listing's currency.
    pub old_price: f64,
    pub new_price: f64,
}

impl PriceMove {
    /// The Beijing calendar day the move starts on.
    pub fn day(&self) -> chrono::NaiveDate {
        chrono::DateTime::from_timestamp_micros(self.from + BEIJING_US)
            .expect("in range")
            .date_naive()
    }
}

/// Plants about `share` of the listings with a move each (at least two of each kind when
/// the data allows), rewriting their later orders' prices and their export price.
pub fn plant_price_moves(
    listings: &mut [Listing],
    orders: &mut [Order],
    share: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<PriceMove> {
    let mut times: Vec<Vec<i64>> = vec![Vec::new(); listings.len()];
    for o in orders.iter() {
        times[o.listing].push(o.ordered_at);
    }
    let mut candidates: Vec<usize> = (0..listings.len())
        .filter(|&l| times[l].len() >= 7)
        .collect();
    candidates.shuffle(rng);
    let wanted = ((listings.len() as f64 * share).round() as usize).max(4);
    let mut products = HashSet::new();
    let mut moves = Vec::new();
    for l in candidates {
        if moves.len() == wanted {
            break;
        }
        if !products.insert(listings[l].product) {
            continue;
        }
        let kind = if moves.len() % 2 == 0 {
            "undercut"
        } else {
            "sharp_move"
        };
        let Some(factor) = factor(kind, l, listings, rng) else {
            continue;
        };
        let mut at = times[l].clone();
        at.sort_unstable();
        let first_new = at[rng.random_range(3..at.len() - 3)];
        let from = (first_new + BEIJING_US).div_euclid(DAY_US) * DAY_US - BEIJING_US;
        // Orders earlier that same day would straddle the move: start after the last one
        // before it instead.
        if at.iter().filter(|&&t| t < from).count() < 3 {
            continue;
        }
        let old_price = listings[l].price;
        listings[l].price = round2(old_price * factor);
        for o in orders.iter_mut() {
            if o.listing == l && o.ordered_at >= from {
                o.unit_price = round2(o.unit_price * factor);
            }
        }
        moves.push(PriceMove {
            listing: l,
            kind,
            from,
            old_price,
            new_price: listings[l].price,
        });
    }
    moves.sort_by_key(|m| (m.from, m.listing));
    moves
}

/// The price factor of a move: an undercut goes to 70–85 % of the cheapest other platform's
/// price (in yuan); a sharp move goes ×0.5–0.7 or ×1.3–1.6.
fn factor(kind: &str, l: usize, listings: &[Listing], rng: &mut ChaCha8Rng) -> Option<f64> {
    let yuan = |x: &Listing| {
        if x.currency == "USD" {
            x.price * USD_RATE
        } else {
            x.price
        }
    };
    if kind == "sharp_move" {
        return Some(if rng.random_bool(0.5) {
            rng.random_range(0.5..0.7)
        } else {
            rng.random_range(1.3..1.6)
        });
    }
    let own = &listings[l];
    let cheapest_other = listings
        .iter()
        .filter(|x| x.product == own.product && x.platform != own.platform)
        .map(yuan)
        .min_by(f64::total_cmp)?;
    Some(cheapest_other * rng.random_range(0.70..0.85) / yuan(own))
}

/// `truth/price_moves.csv`.
pub fn truth_csv(moves: &[PriceMove], listings: &[Listing]) -> String {
    let mut text = String::from("platform,listing_id,kind,day,old_price,new_price,currency\n");
    for m in moves {
        let l = &listings[m.listing];
        text.push_str(&format!(
            "{},{},{},{},{:.2},{:.2},{}\n",
            l.platform,
            l.listing_id,
            m.kind,
            m.day(),
            m.old_price,
            m.new_price,
            l.currency
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn listing(
        platform: &'static str,
        product: usize,
        price: f64,
        currency: &'static str,
    ) -> Listing {
        Listing {
            platform,
            listing_id: format!("{platform}-{product}"),
            product,
            title: String::new(),
            price,
            currency,
            stock: 10,
            listed_at: 0,
        }
    }

    fn order(listing: usize, day: i64, price: f64) -> Order {
        Order::fixture(listing, day * DAY_US + 12 * 3_600_000_000, price)
    }

    #[test]
    fn later_orders_pay_the_new_price_and_earlier_ones_keep_the_old() {
        let mut listings = vec![
            listing("taobao", 0, 100.0, "CNY"),
            listing("amazon", 0, 14.0, "USD"),
            listing("jd", 1, 50.0, "CNY"),
            listing("taobao", 1, 52.0, "CNY"),
        ];
        let mut orders: Vec<Order> = (0..4)
            .flat_map(|l| (0..10).map(move |d| order(l, d * 10, [100.0, 14.0, 50.0, 52.0][l])))
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let moves = plant_price_moves(&mut listings, &mut orders, 0.5, &mut rng);
        assert_eq!(moves.len(), 2, "{moves:?}");
        let products: HashSet<usize> = moves.iter().map(|m| listings[m.listing].product).collect();
        assert_eq!(products.len(), 2, "one move per product");
        for m in &moves {
            let l = m.listing;
            assert_eq!(listings[l].price, m.new_price);
            let (before, after): (Vec<&Order>, Vec<&Order>) = orders
                .iter()
                .filter(|o| o.listing == l)
                .partition(|o| o.ordered_at < m.from);
            assert!(before.len() >= 3 && after.len() >= 3, "{m:?}");
            assert!(before.iter().all(|o| o.unit_price == m.old_price));
            assert!(after
                .iter()
                .all(|o| (o.unit_price - m.new_price).abs() < 0.011));
            if m.kind == "undercut" {
                let yuan = |x: &Listing| x.price * if x.currency == "USD" { USD_RATE } else { 1.0 };
                let own = yuan(&listings[l]);
                for other in listings.iter().filter(|x| x.product == listings[l].product) {
                    if other.platform != listings[l].platform {
                        assert!(own <= 0.85 * yuan(other) + 0.01, "{own} vs {}", yuan(other));
                    }
                }
            } else {
                let ratio = m.new_price / m.old_price;
                assert!(!(0.7..=1.3).contains(&ratio), "{ratio}");
            }
        }
        assert!(truth_csv(&moves, &listings).lines().count() == 3);
    }
}
