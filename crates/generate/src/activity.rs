//! What shoppers do: listings on each platform, orders driven by each person's category
//! tastes and the calendar (618 and Double 11 peaks), behaviour events around purchases and
//! while browsing, reviews whose tone follows product quality, and injected fraud.

use rand::distr::weighted::WeightedIndex;
use rand::distr::Distribution;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::catalog::{round2, Product};
use crate::people::{Account, Overlap, Person, CITIES, PLATFORMS};

pub const USD_RATE: f64 = 7.2;
pub(crate) const DAY_US: i64 = 86_400_000_000;
const HOUR_US: i64 = 3_600_000_000;

#[derive(Debug, Clone)]
pub struct Listing {
    pub platform: &'static str,
    pub listing_id: String,
    pub product: usize,
    pub title: String,
    /// In the platform's currency.
    pub price: f64,
    pub currency: &'static str,
    pub stock: i64,
    pub listed_at: i64,
}

#[derive(Debug, Clone)]
pub struct Order {
    pub platform: &'static str,
    pub order_id: String,
    pub person: usize,
    pub account: usize,
    pub listing: usize,
    pub quantity: i64,
    pub unit_price: f64,
    pub ordered_at: i64,
    pub status: &'static str,
    pub address: String,
    pub city: usize,
    pub ip: String,
    pub device: String,
    pub payment: &'static str,
    pub fraud: Option<&'static str>,
}

impl Order {
    /// A completed order of one unit, for tests of what is done to orders after the
    /// simulation.
    #[cfg(test)]
    pub(crate) fn fixture(listing: usize, ordered_at: i64, unit_price: f64) -> Order {
        Order {
            platform: "taobao",
            order_id: format!("o{listing}-{ordered_at}"),
            person: 0,
            account: 0,
            listing,
            quantity: 1,
            unit_price,
            ordered_at,
            status: "completed",
            address: String::new(),
            city: 0,
            ip: String::new(),
            device: String::new(),
            payment: "支付宝",
            fraud: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Event {
    pub person: usize,
    pub account: usize,
    pub listing: usize,
    pub event_type: &'static str,
    pub at: i64,
    pub session: String,
}

#[derive(Debug, Clone)]
pub struct Review {
    pub review_id: String,
    pub order: usize,
    pub rating: u8,
    pub text: String,
    pub at: i64,
}

pub fn listing_id(platform: &str, n: usize, rng: &mut ChaCha8Rng) -> String {
    match platform {
        "taobao" => format!("6{:05}{:05}", rng.random_range(10_000..99_999), n),
        "jd" => format!("1000{:04}{:05}", rng.random_range(1000..9999), n),
        "amazon" => {
            let s: String = (0..4)
                .map(|_| b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"[rng.random_range(0..34)] as char)
                .collect();
            format!("B0{s}{n:04}")
        }
        _ => format!("SKU-{n:05}"),
    }
}

pub fn build_listings(products: &[Product], start: i64, rng: &mut ChaCha8Rng) -> Vec<Listing> {
    let mut listings = Vec::new();
    for (pi, p) in products.iter().enumerate() {
        let mut on: Vec<&'static str> = PLATFORMS
            .iter()
            .copied()
            .zip([0.9, 0.85, 0.75, 0.6])
            .filter(|_| true)
            .filter_map(|(pl, share)| rng.random_bool(share).then_some(pl))
            .collect();
        if on.len() < 2 {
            on = vec!["taobao", "jd"];
        }
        for platform in on {
            let n = listings.len() + 1;
            let (title, price, currency) = match platform {
                "taobao" => (
                    p.title_taobao(rng),
                    p.price_cny * rng.random_range(0.9..1.02),
                    "CNY",
                ),
                "jd" => (
                    p.title_jd(rng),
                    p.price_cny * rng.random_range(0.95..1.0),
                    "CNY",
                ),
                "amazon" => (
                    p.title_amazon(rng),
                    p.price_cny / USD_RATE * rng.random_range(1.0..1.12),
                    "USD",
                ),
                _ => (p.title_own(), p.price_cny, "CNY"),
            };
            listings.push(Listing {
                platform,
                listing_id: listing_id(platform, n, rng),
                product: pi,
                title,
                price: round2(price),
                currency,
                stock: rng.random_range(0..5000),
                listed_at: start - rng.random_range(1..400) * DAY_US,
            });
        }
    }
    listings
}

/// Day weights over the simulated period: weekly rhythm, a slow upward trend, and the big
/// Chinese shopping festivals (618 in June, Double 11 in November, Double 12).
fn day_weights(start: i64, days: usize) -> Vec<f64> {
    use chrono::{Datelike, TimeZone, Utc};
    (0..days)
        .map(|d| {
            let date = Utc
                .timestamp_micros(start + d as i64 * DAY_US + 8 * HOUR_US)
                .single()
                .expect("in range")
                .date_naive();
            let (m, day) = (date.month(), date.day());
            let mut w = 1.0 + 0.3 * d as f64 / days as f64;
            if date.weekday().number_from_monday() >= 6 {
                w *= 1.2;
            }
            if m == 11 && day <= 11 {
                w *= if day == 11 { 8.0 } else { 2.0 };
            }
            if m == 6 && day <= 18 {
                w *= if day == 18 { 5.0 } else { 1.6 };
            }
            if m == 12 && day == 12 {
                w *= 3.0;
            }
            if m == 2 && day <= 15 {
                w *= 0.6; // Spring Festival: couriers stop
            }
            w
        })
        .collect()
}

/// Evening-heavy shopping hours (local time).
const HOUR_WEIGHTS: [f64; 24] = [
    0.6, 0.3, 0.15, 0.1, 0.1, 0.15, 0.3, 0.6, 0.9, 1.0, 1.1, 1.2, 1.3, 1.1, 1.0, 1.0, 1.0, 1.1,
    1.2, 1.4, 1.7, 2.0, 2.0, 1.3,
];

pub struct Calendar {
    start: i64,
    days: WeightedIndex<f64>,
    /// Running sums of the day weights (`cumulative[d]` = weight of days before `d`), to draw
    /// a day within a shopper's active span and to weigh how much shopping fits in it.
    cumulative: Vec<f64>,
    hours: WeightedIndex<f64>,
}

impl Calendar {
    pub fn new(start: i64, days: usize) -> Self {
        let weights = day_weights(start, days);
        let mut cumulative = Vec::with_capacity(days + 1);
        let mut sum = 0.0;
        cumulative.push(sum);
        for w in &weights {
            sum += w;
            cumulative.push(sum);
        }
        Self {
            start,
            days: WeightedIndex::new(weights).expect("positive weights"),
            cumulative,
            hours: WeightedIndex::new(HOUR_WEIGHTS).expect("positive weights"),
        }
    }

    /// Days in the period.
    pub fn days(&self) -> usize {
        self.cumulative.len() - 1
    }

    /// The shopping weight of the days in `span` (their share of the calendar's draws).
    pub fn weight_of(&self, span: &std::ops::Range<usize>) -> f64 {
        self.cumulative[span.end] - self.cumulative[span.start]
    }

    /// Like [`Calendar::sample`], with the day drawn among the days of `span` only.
    pub fn sample_within(&self, span: &std::ops::Range<usize>, rng: &mut ChaCha8Rng) -> i64 {
        let (lo, hi) = (self.cumulative[span.start], self.cumulative[span.end]);
        let u = rng.random_range(lo..hi.max(lo + f64::MIN_POSITIVE));
        let day = self
            .cumulative
            .partition_point(|&c| c <= u)
            .saturating_sub(1);
        self.at(day.clamp(span.start, span.end - 1), rng)
    }

    fn at(&self, day: usize, rng: &mut ChaCha8Rng) -> i64 {
        let hour = self.hours.sample(rng) as i64;
        // `start` is local midnight in UTC terms already.
        self.start
            + day as i64 * DAY_US
            + hour * HOUR_US
            + rng.random_range(0..HOUR_US / 1_000_000) * 1_000_000
    }

    /// A UTC instant whose Beijing local time follows the day and hour weights.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> i64 {
        let day = self.days.sample(rng);
        self.at(day, rng)
    }
}

pub struct Activity {
    pub orders: Vec<Order>,
    pub events: Vec<Event>,
    pub reviews: Vec<Review>,
}

pub fn order_id(platform: &str, n: usize) -> String {
    match platform {
        "taobao" => format!("{}", 3_800_000_000_000_000u64 + n as u64 * 7919),
        "jd" => format!("{}", 280_000_000_000u64 + n as u64 * 13),
        "amazon" => format!("114-{:07}-{:07}", n * 37 % 10_000_000, n),
        _ => format!("SO{n:08}"),
    }
}

fn ip_in(city: usize, rng: &mut ChaCha8Rng) -> String {
    format!(
        "{}.{}.{}",
        CITIES[city].3,
        rng.random_range(0..256),
        rng.random_range(1..255)
    )
}

/// Listings by (platform, category), so a shopper picks from what their platform sells in the
/// category they feel like, weighted by the product's popularity.
struct Shelves<'a> {
    products: &'a [Product],
    listings: &'a [Listing],
    by_platform_category: Vec<Vec<Vec<usize>>>,
    /// The listing of each (product, platform), to research one product on another platform.
    by_product_platform: std::collections::HashMap<(usize, usize), usize>,
}

impl<'a> Shelves<'a> {
    fn new(products: &'a [Product], listings: &'a [Listing], n_categories: usize) -> Self {
        let mut by_platform_category = vec![vec![Vec::new(); n_categories]; PLATFORMS.len()];
        let mut by_product_platform = std::collections::HashMap::new();
        for (li, l) in listings.iter().enumerate() {
            let pi = PLATFORMS
                .iter()
                .position(|p| *p == l.platform)
                .expect("known platform");
            by_platform_category[pi][products[l.product].category].push(li);
            by_product_platform.entry((l.product, pi)).or_insert(li);
        }
        Self {
            products,
            listings,
            by_platform_category,
            by_product_platform,
        }
    }

    /// The listing of `listing`'s product on `platform`, or one of the same category there.
    fn counterpart(&self, listing: usize, platform: &str, rng: &mut ChaCha8Rng) -> Option<usize> {
        let pi = PLATFORMS.iter().position(|p| *p == platform)?;
        let product = self.listings[listing].product;
        self.by_product_platform
            .get(&(product, pi))
            .copied()
            .or_else(|| self.pick(platform, self.products[product].category, rng))
    }

    fn pick(&self, platform: &str, category: usize, rng: &mut ChaCha8Rng) -> Option<usize> {
        let pi = PLATFORMS.iter().position(|p| *p == platform)?;
        let shelf = &self.by_platform_category[pi][category];
        let weights: Vec<f64> = shelf
            .iter()
            .map(|&li| self.products[self.listings[li].product].popularity)
            .collect();
        let w = WeightedIndex::new(&weights).ok()?;
        Some(shelf[w.sample(rng)])
    }
}

/// Session numbers shared by purchase paths and browsing, so every session id is unique.
#[derive(Default)]
struct Sessions(usize);

impl Sessions {
    fn next(&mut self) -> String {
        self.0 += 1;
        format!("s{:08}", self.0)
    }
}

pub fn simulate(
    products: &[Product],
    listings: &[Listing],
    people: &mut Vec<Person>,
    n_orders: usize,
    calendar: &Calendar,
    rng: &mut ChaCha8Rng,
) -> Activity {
    let n_categories = people.first().map(|p| p.category_taste.len()).unwrap_or(0);
    let shelves = Shelves::new(products, listings, n_categories);
    let mut life_rng = ChaCha8Rng::seed_from_u64(rng.random::<u64>() ^ 0x11fe_7133);
    let lives = Lives::draw(people.len(), calendar.days(), &mut life_rng);
    // A person's share of the shopping is their rate times the calendar weight of the days
    // they are active, so a lapsed shopper buys at their own rate until they lapse.
    let person_pick = WeightedIndex::new(
        people
            .iter()
            .zip(&lives.spans)
            .map(|(p, span)| p.activity * calendar.weight_of(span)),
    )
    .expect("positive activity");
    let mut sessions = Sessions::default();
    let fraud_target = (n_orders as f64 * 0.02).round() as usize;
    let legit = n_orders.saturating_sub(fraud_target);
    let (mut orders, mut events) = purchases(
        &shelves,
        (people, &lives),
        &person_pick,
        legit,
        (calendar, &mut sessions),
        (rng, &mut life_rng),
    );
    // Browsing without buying, in the same tastes: the signal recommendations learn from.
    events.extend(browsing(
        &shelves,
        (people, &lives),
        &person_pick,
        n_orders * 2,
        (calendar, &mut sessions),
        rng,
    ));
    inject_fraud(
        listings,
        people,
        &mut orders,
        &mut events,
        fraud_target,
        calendar,
        rng,
    );
    let reviews = reviews(products, listings, &orders, rng);
    Activity {
        orders,
        events,
        reviews,
    }
}

/// When each person shops: from the start of the period until they lapse. Lifetimes are
/// exponential with a mean of 1.4 periods, so about half the shoppers lapse before its end —
/// the churn that propensity models must see coming (a quiet spell, browsing that stops).
struct Lives {
    /// Active days of each person, a range of day numbers in the period.
    spans: Vec<std::ops::Range<usize>>,
}

impl Lives {
    fn draw(people: usize, days: usize, rng: &mut ChaCha8Rng) -> Self {
        let mean = 1.4 * days as f64;
        let spans = (0..people)
            .map(|_| {
                let u: f64 = rng.random_range(f64::EPSILON..1.0);
                let life = (-u.ln() * mean).ceil() as usize;
                0..life.clamp(14, days)
            })
            .collect();
        Lives { spans }
    }
}

/// A shopper researches a purchase days before it in 45 % of orders: views, sometimes a
/// favourite or a cart, of the same product — on another of their platforms six times in ten
/// when they have one ("browse on Taobao, buy on JD"). Only the fused customer shows that a
/// browser on one platform is about to buy on another.
fn research(
    shelves: &Shelves,
    p: &Person,
    (person, account, listing): (usize, usize, usize),
    (at, earliest): (i64, i64),
    sessions: &mut Sessions,
    rng: &mut ChaCha8Rng,
) -> Vec<Event> {
    if !rng.random_bool(0.45) {
        return Vec::new();
    }
    let others: Vec<usize> = (0..p.accounts.len()).filter(|&a| a != account).collect();
    let (account, listing) = match others.choose(rng) {
        Some(&other) if rng.random_bool(0.6) => {
            match shelves.counterpart(listing, p.accounts[other].platform, rng) {
                Some(there) => (other, there),
                None => (account, listing),
            }
        }
        _ => (account, listing),
    };
    let first = at - rng.random_range(1..=12) * DAY_US - rng.random_range(0..DAY_US);
    if first < earliest {
        return Vec::new();
    }
    let session = sessions.next();
    let mut kinds: Vec<&'static str> = vec!["view"; rng.random_range(1..4)];
    if rng.random_bool(0.3) {
        kinds.push("favorite");
    }
    if rng.random_bool(0.25) {
        kinds.push("cart");
    }
    kinds
        .into_iter()
        .enumerate()
        .map(|(k, event_type)| Event {
            person,
            account,
            listing,
            event_type,
            at: first + k as i64 * rng.random_range(30..600) * 1_000_000,
            session: session.clone(),
        })
        .collect()
}

/// `count` legitimate orders, each with the path to it: views, maybe a cart, the purchase.
fn purchases(
    shelves: &Shelves,
    (people, lives): (&[Person], &Lives),
    person_pick: &WeightedIndex<f64>,
    count: usize,
    (calendar, sessions): (&Calendar, &mut Sessions),
    (rng, life_rng): (&mut ChaCha8Rng, &mut ChaCha8Rng),
) -> (Vec<Order>, Vec<Event>) {
    let mut orders = Vec::with_capacity(count);
    let mut events = Vec::new();
    let earliest = calendar.start;
    while orders.len() < count {
        let person = person_pick.sample(rng);
        let p = &people[person];
        let account = rng.random_range(0..p.accounts.len());
        let platform = p.accounts[account].platform;
        let taste = WeightedIndex::new(&p.category_taste).expect("taste");
        let Some(listing) = (0..5).find_map(|_| shelves.pick(platform, taste.sample(rng), rng))
        else {
            continue;
        };
        let at = calendar.sample_within(&lives.spans[person], rng);
        events.extend(research(
            shelves,
            p,
            (person, account, listing),
            (at, earliest),
            sessions,
            life_rng,
        ));
        let quantity = if rng.random_bool(0.85) {
            1
        } else {
            rng.random_range(2..4)
        };
        let session = sessions.next();
        let event = |event_type, at| Event {
            person,
            account,
            listing,
            event_type,
            at,
            session: session.clone(),
        };
        for k in 0..rng.random_range(1..4) {
            events.push(event(
                "view",
                at - (k + 1) * rng.random_range(60..1800) * 1_000_000,
            ));
        }
        if rng.random_bool(0.5) {
            events.push(event("cart", at - rng.random_range(10..600) * 1_000_000));
        }
        events.push(event("purchase", at));
        let n = orders.len() + 1;
        let price = shelves.listings[listing].price;
        orders.push(legit_order(
            p,
            (person, account, listing),
            (n, at),
            (quantity, price),
            rng,
        ));
    }
    (orders, events)
}

/// The order row of a legitimate purchase: the account's own address, a device the person
/// owns, an IP in their city, the platform's usual payment methods.
fn legit_order(
    p: &Person,
    (person, account, listing): (usize, usize, usize),
    (n, at): (usize, i64),
    (quantity, list_price): (i64, f64),
    rng: &mut ChaCha8Rng,
) -> Order {
    let platform = p.accounts[account].platform;
    Order {
        platform,
        order_id: order_id(platform, n),
        person,
        account,
        listing,
        quantity,
        unit_price: round2(list_price * rng.random_range(0.97..1.0)),
        ordered_at: at,
        status: ["completed", "completed", "completed", "shipped", "refunded"]
            [rng.random_range(0..5)],
        address: p.accounts[account].address.clone(),
        city: p.city,
        ip: ip_in(p.city, rng),
        device: p.devices.choose(rng).expect("device").clone(),
        payment: if platform == "amazon" {
            "credit_card"
        } else {
            ["支付宝", "微信支付", "花呗", "银行卡"]
                .choose(rng)
                .expect("payment")
        },
        fraud: None,
    }
}

/// `count` browsing attempts (views, carts, favourites without a purchase), while each
/// person is active.
fn browsing(
    shelves: &Shelves,
    (people, lives): (&[Person], &Lives),
    person_pick: &WeightedIndex<f64>,
    count: usize,
    (calendar, sessions): (&Calendar, &mut Sessions),
    rng: &mut ChaCha8Rng,
) -> Vec<Event> {
    let mut events = Vec::new();
    for _ in 0..count {
        let person = person_pick.sample(rng);
        let p = &people[person];
        let account = rng.random_range(0..p.accounts.len());
        let taste = WeightedIndex::new(&p.category_taste).expect("taste");
        let Some(listing) = shelves.pick(p.accounts[account].platform, taste.sample(rng), rng)
        else {
            continue;
        };
        let session = sessions.next();
        let at = calendar.sample_within(&lives.spans[person], rng);
        let kind = if rng.random_bool(0.08) {
            "favorite"
        } else if rng.random_bool(0.1) {
            "cart"
        } else {
            "view"
        };
        events.push(Event {
            person,
            account,
            listing,
            event_type: kind,
            at,
            session,
        });
    }
    events
}

/// A quarter of buyers leave a review whose rating follows product quality; every brushing
/// order leaves five stars.
fn reviews(
    products: &[Product],
    listings: &[Listing],
    orders: &[Order],
    rng: &mut ChaCha8Rng,
) -> Vec<Review> {
    let mut reviews = Vec::new();
    for (oi, o) in orders.iter().enumerate() {
        let brushing = o.fraud == Some("brushing");
        if !(brushing || rng.random_bool(0.25)) {
            continue;
        }
        let product = &products[listings[o.listing].product];
        let rating = if brushing {
            5
        } else {
            let noise: f64 = rng.random_range(-1.2..1.2);
            (1.0 + 4.0 * product.quality + noise)
                .round()
                .clamp(1.0, 5.0) as u8
        };
        let n = reviews.len() + 1;
        reviews.push(Review {
            review_id: format!("R{}{n:07}", &o.platform[..2].to_uppercase()),
            order: oi,
            rating,
            text: review_text(o.platform, rating, brushing, rng),
            at: o.ordered_at + rng.random_range(2..15) * DAY_US,
        });
    }
    reviews
}

/// Brushing rings (刷单: fresh accounts on one device buying one listing again and again,
/// each leaving five stars) and account takeovers (an existing account suddenly ordering
/// expensive goods at night from another city and a new device).
fn inject_fraud(
    listings: &[Listing],
    people: &mut Vec<Person>,
    orders: &mut Vec<Order>,
    events: &mut Vec<Event>,
    target: usize,
    calendar: &Calendar,
    rng: &mut ChaCha8Rng,
) {
    let mut made = 0;
    let brushing_target = target * 2 / 3;
    while made < brushing_target {
        let platform = if rng.random_bool(0.6) { "taobao" } else { "jd" };
        let candidates: Vec<usize> = (0..listings.len())
            .filter(|&i| listings[i].platform == platform)
            .collect();
        let Some(&listing) = candidates.choose(rng) else {
            return;
        };
        let device = format!("dev-{:08x}", rng.random::<u32>());
        let city = rng.random_range(0..CITIES.len());
        // Field initialisers run in the order written: the ring's IP, then its start.
        let ring = BrushingRing {
            platform,
            listing,
            device,
            city,
            ip: ip_in(city, rng),
            t0: calendar.sample(rng),
        };
        made += ring.run(listings, people, orders, events, rng);
    }
    let real_people = people.iter().filter(|p| p.activity > 0.0).count();
    while made < target && real_people > 0 {
        let person = rng.random_range(0..real_people);
        if let Some(order) = account_takeover(listings, people, person, orders.len(), calendar, rng)
        {
            orders.push(order);
            made += 1;
        }
    }
}

/// 刷单: four to seven fresh accounts on one device and IP, each buying one listing two to
/// four times within two days.
struct BrushingRing {
    platform: &'static str,
    listing: usize,
    device: String,
    city: usize,
    ip: String,
    t0: i64,
}

impl BrushingRing {
    /// Adds the ring's people, orders and events; returns the number of orders.
    fn run(
        &self,
        listings: &[Listing],
        people: &mut Vec<Person>,
        orders: &mut Vec<Order>,
        events: &mut Vec<Event>,
        rng: &mut ChaCha8Rng,
    ) -> usize {
        let mut made = 0;
        for _ in 0..rng.random_range(4..8) {
            let person = people.len();
            people.push(self.fresh_person(person, rng));
            for _ in 0..rng.random_range(2..5) {
                let at = self.t0 + rng.random_range(0..48 * 3600) * 1_000_000;
                events.push(Event {
                    person,
                    account: 0,
                    listing: self.listing,
                    event_type: "purchase",
                    at,
                    session: format!("b{}", orders.len()),
                });
                orders.push(Order {
                    platform: self.platform,
                    order_id: order_id(self.platform, orders.len() + 1),
                    person,
                    account: 0,
                    listing: self.listing,
                    quantity: 1,
                    unit_price: round2(listings[self.listing].price * rng.random_range(0.85..0.95)),
                    ordered_at: at,
                    status: "completed",
                    address: people[person].accounts[0].address.clone(),
                    city: self.city,
                    ip: self.ip.clone(),
                    device: self.device.clone(),
                    payment: "银行卡",
                    fraud: Some("brushing"),
                });
                made += 1;
            }
        }
        made
    }

    /// A throwaway person with one account registered a few days before the ring starts.
    fn fresh_person(&self, person: usize, rng: &mut ChaCha8Rng) -> Person {
        let (platform, city) = (self.platform, self.city);
        let serial = 900_000 + person;
        let name = format!("刷{}", serial % 1000);
        Person {
            person_id: format!("U{:06}", person + 1),
            name: name.clone(),
            phone: format!("170{:08}", serial),
            email: format!("z{serial}@163.com"),
            city,
            address: format!("{}{}", CITIES[city].0, CITIES[city].2[0]),
            overlap: Overlap::Single,
            category_taste: vec![],
            activity: 0.0,
            devices: vec![self.device.clone()],
            accounts: vec![Account {
                platform,
                account_id: format!(
                    "{}_{serial}",
                    if platform == "taobao" { "tbx" } else { "jdx" }
                ),
                name,
                phone: Some(format!("170{:08}", serial)),
                email: None,
                address: format!(
                    "{}{}{}号",
                    CITIES[city].0,
                    CITIES[city].2[0],
                    rng.random_range(1..99)
                ),
                registered_at: self.t0 - rng.random_range(1..5) * DAY_US,
            }],
        }
    }
}

/// An existing account suddenly ordering one of its platform's ten dearest listings at night,
/// shipped to another city from a new device. `None` when the platform sells nothing.
fn account_takeover(
    listings: &[Listing],
    people: &[Person],
    person: usize,
    orders_so_far: usize,
    calendar: &Calendar,
    rng: &mut ChaCha8Rng,
) -> Option<Order> {
    let account = rng.random_range(0..people[person].accounts.len());
    let platform = people[person].accounts[account].platform;
    let mut on_platform: Vec<usize> = (0..listings.len())
        .filter(|&i| listings[i].platform == platform)
        .collect();
    on_platform.sort_by(|a, b| listings[*b].price.total_cmp(&listings[*a].price));
    let &listing = on_platform
        .iter()
        .take(10)
        .collect::<Vec<_>>()
        .choose(rng)
        .copied()?;
    let other_city = (people[person].city + rng.random_range(1..CITIES.len())) % CITIES.len();
    let at = calendar.sample(rng) / DAY_US * DAY_US + rng.random_range(18..21) * HOUR_US; // 02:00–05:00 Beijing
    Some(Order {
        platform,
        order_id: order_id(platform, orders_so_far + 1),
        person,
        account,
        listing,
        quantity: rng.random_range(2..5),
        unit_price: listings[listing].price,
        ordered_at: at,
        status: "completed",
        address: format!(
            "{}{}{}号",
            CITIES[other_city].0,
            CITIES[other_city].2[0],
            rng.random_range(1..99)
        ),
        city: other_city,
        ip: ip_in(other_city, rng),
        device: format!("dev-{:08x}", rng.random::<u32>()),
        payment: if platform == "amazon" {
            "credit_card"
        } else {
            "银行卡"
        },
        fraud: Some("account_takeover"),
    })
}

fn review_text(platform: &str, rating: u8, brushing: bool, rng: &mut ChaCha8Rng) -> String {
    const ZH_POS: &[&str] = &[
        "质量很好，物流很快，非常满意",
        "正品，包装完好，好评",
        "用了一周，体验超出预期",
        "性价比很高，推荐购买",
        "客服态度好，发货迅速",
    ];
    const ZH_MID: &[&str] = &[
        "一般般，和描述差不多",
        "还行吧，价格有点贵",
        "东西可以，物流有点慢",
    ];
    const ZH_NEG: &[&str] = &[
        "质量太差了，用两天就坏了",
        "和图片不符，很失望",
        "发错货，客服不理人，差评",
        "有划痕，怀疑不是新品",
    ];
    const EN_POS: &[&str] = &[
        "Works great, fast shipping. Very happy!",
        "Exactly as described, excellent quality",
        "Love it, would buy again 👍",
        "Great value for the price",
    ];
    const EN_MID: &[&str] = &[
        "It's okay, nothing special",
        "Decent but overpriced",
        "Does the job, packaging was damaged",
    ];
    const EN_NEG: &[&str] = &[
        "Stopped working after a week. Returning it.",
        "Not as described, very disappointed 😞",
        "Poor quality, looks used",
    ];
    if brushing {
        return ["好评！", "非常好非常好", "五星好评，赞"][rng.random_range(0..3)].to_string();
    }
    let english = platform == "amazon" || (platform == "own_shop" && rng.random_bool(0.3));
    let pool = match (english, rating) {
        (false, 4..=5) => ZH_POS,
        (false, 3) => ZH_MID,
        (false, _) => ZH_NEG,
        (true, 4..=5) => EN_POS,
        (true, 3) => EN_MID,
        (true, _) => EN_NEG,
    };
    pool.choose(rng).expect("text").to_string()
}
