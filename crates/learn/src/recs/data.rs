//! The interaction log: who did what to which golden product, on which platform, when.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Serialize;
use shopfuse_core::config::RecsConfig;
use shopfuse_core::value::NamedRows;
use shopfuse_core::{CoreError, Embeddings, Value};

use crate::LearnError;
use shopfuse_core::EntityKind;
use shopfuse_identity::{customer_accounts, is_cancelled, CustomerIndex};
use shopfuse_resolve::catalogue::{golden_products, product_clusters};

/// Kinds of behaviour, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Action {
    View,
    Favorite,
    Cart,
    Purchase,
}

impl Action {
    pub fn parse(event_type: &str) -> Option<Action> {
        match event_type.trim().to_lowercase().as_str() {
            "view" | "pv" | "click" | "浏览" => Some(Action::View),
            "favorite" | "favourite" | "fav" | "wishlist" | "收藏" => Some(Action::Favorite),
            "cart" | "add_to_cart" | "加购" => Some(Action::Cart),
            "purchase" | "buy" | "order" | "购买" => Some(Action::Purchase),
            _ => None,
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Action::View => "viewed",
            Action::Favorite => "saved",
            Action::Cart => "added to cart",
            Action::Purchase => "bought",
        }
    }

    pub fn weight(self, config: &RecsConfig) -> f64 {
        match self {
            Action::View => config.view_weight,
            Action::Favorite => config.favorite_weight,
            Action::Cart => config.cart_weight,
            Action::Purchase => config.purchase_weight,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interaction {
    pub user: u32,
    pub item: u32,
    pub platform: u16,
    pub action: Action,
    /// Microseconds since the epoch.
    pub at: i64,
}

/// The items recommendations choose from.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub ids: Vec<String>,
    pub titles: Vec<String>,
    /// Items with one family id are colour/capacity variants of one product.
    pub family: Vec<u32>,
    /// Bit `p` set: the item has an offer on platform `p` of the log.
    pub offered_on: Vec<u64>,
}

impl Catalog {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn offered(&self, item: usize, platform: u16) -> bool {
        self.offered_on[item] & (1u64 << platform) != 0
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LogSummary {
    pub interactions: usize,
    pub users: usize,
    pub items: usize,
    pub from_orders: usize,
    pub from_events: usize,
    /// Rows whose account is not in `customer_accounts` or whose listing is not in a
    /// product cluster (or, for a ratings file, below the rating threshold).
    pub skipped: usize,
    /// Purchase events of platforms whose orders are in the project (the order is the
    /// record of the purchase, with its refund status).
    pub purchase_events_replaced_by_orders: usize,
    pub cancelled_orders: usize,
}

pub struct InteractionLog {
    pub users: Vec<String>,
    pub platforms: Vec<String>,
    pub catalog: Catalog,
    pub interactions: Vec<Interaction>,
    /// Unit-length title vectors per item, when an encoder was available.
    pub item_vectors: Option<Embeddings>,
    pub summary: LogSummary,
}

impl InteractionLog {
    pub fn platform_index(&self, name: &str) -> Option<u16> {
        self.platforms
            .iter()
            .position(|p| p == name)
            .map(|p| p as u16)
    }

    /// The latest interaction time (the "now" of the data, so re-runs give the same result).
    pub fn as_of(&self) -> i64 {
        self.interactions.iter().map(|i| i.at).max().unwrap_or(0)
    }
}

/// Variant family of a golden product: its title with the colour and capacity values and
/// the words for them taken out, with the brand; two colours of one phone share it.
pub fn variant_family_key(
    brand: Option<&str>,
    title: &str,
    color: Option<&str>,
    capacity: Option<&str>,
) -> String {
    let mut t = title.to_lowercase();
    for v in [color, capacity].into_iter().flatten() {
        let v = v.trim().to_lowercase();
        if !v.is_empty() {
            t = t.replace(&v, " ");
        }
    }
    // Capacity spelled differently from the golden value (128G vs 128GB, 1TB).
    let words: Vec<&str> = t
        .split(|c: char| c.is_whitespace() || ",，/|()（）【】[]-".contains(c))
        .filter(|w| !w.is_empty())
        .filter(|w| {
            let digits = w.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let unit = &w[digits.len()..];
            !(digits.chars().all(|c| c.is_ascii_digit())
                && !digits.is_empty()
                && ["g", "gb", "t", "tb", "ml", "l", "kg"].contains(&unit))
        })
        .collect();
    format!(
        "{}|{}",
        brand.unwrap_or("").trim().to_lowercase(),
        words.join(" ")
    )
}

fn platform_id(platforms: &mut Vec<String>, name: &str) -> u16 {
    match platforms.iter().position(|p| p == name) {
        Some(p) => p as u16,
        None => {
            platforms.push(name.to_string());
            (platforms.len() - 1) as u16
        }
    }
}

/// Reads a table of the project (a store's committed state or an open transaction's).
pub type ReadTable<'a> = &'a dyn Fn(&str) -> Result<Option<NamedRows>, CoreError>;

/// Maps a project row's (platform, account) to its user and (platform, listing) to its item.
struct RowKeys {
    account_user: HashMap<(String, String), u32>,
    listing_item: HashMap<(String, String), u32>,
}

impl RowKeys {
    /// (platform, user, item) of an order or event row, if both are known.
    fn lookup(&self, t: &NamedRows, row: &[Value]) -> Option<(String, u32, u32)> {
        let platform = t.text(row, "_platform")?;
        let user = *self
            .account_user
            .get(&(platform.clone(), t.text(row, "account_id")?))?;
        let item = *self
            .listing_item
            .get(&(platform.clone(), t.text(row, "listing_id")?))?;
        Some((platform, user, item))
    }
}

/// The golden products as items (with their variant families and the platforms offering
/// them), and the item of each (platform, listing).
fn project_catalog(
    golden: &NamedRows,
    clusters: &NamedRows,
    platforms: &mut Vec<String>,
) -> (Catalog, HashMap<(String, String), u32>) {
    use golden_products as gp;
    let mut catalog = Catalog::default();
    let mut item_index: HashMap<String, u32> = HashMap::new();
    let mut families: HashMap<String, u32> = HashMap::new();
    for row in &golden.rows {
        let Some(id) = golden.text(row, gp::golden_id) else {
            continue;
        };
        let title = golden.text(row, gp::title).unwrap_or_default();
        let key = variant_family_key(
            golden.text(row, gp::brand).as_deref(),
            &title,
            golden.text(row, gp::color).as_deref(),
            golden.text(row, gp::capacity).as_deref(),
        );
        let next = families.len() as u32;
        catalog.family.push(*families.entry(key).or_insert(next));
        item_index.insert(id.clone(), catalog.ids.len() as u32);
        catalog.ids.push(id);
        catalog.titles.push(title);
        catalog.offered_on.push(0);
    }
    let mut listing_item: HashMap<(String, String), u32> = HashMap::new();
    for row in &clusters.rows {
        let (Some(g), Some(platform), Some(listing)) = (
            clusters.text(row, product_clusters::golden_id),
            clusters.text(row, product_clusters::platform),
            clusters.text(row, product_clusters::listing_id),
        ) else {
            continue;
        };
        let Some(&item) = item_index.get(&g) else {
            continue;
        };
        let p = platform_id(platforms, &platform);
        if p < 64 {
            catalog.offered_on[item as usize] |= 1u64 << p;
        }
        listing_item.insert((platform, listing), item);
    }
    (catalog, listing_item)
}

/// Purchases from the orders (refunds and cancellations left out); returns the platforms that
/// have orders, whose purchase events are then left out so a purchase counts once.
fn order_interactions(
    orders: &NamedRows,
    keys: &RowKeys,
    platforms: &mut Vec<String>,
    interactions: &mut Vec<Interaction>,
    summary: &mut LogSummary,
) -> HashSet<String> {
    let mut platforms_with_orders = HashSet::new();
    for row in &orders.rows {
        if let Some(p) = orders.text(row, "_platform") {
            platforms_with_orders.insert(p);
        }
        if orders.text(row, "status").is_some_and(|s| is_cancelled(&s)) {
            summary.cancelled_orders += 1;
            continue;
        }
        let (Some((platform, user, item)), Some(at)) =
            (keys.lookup(orders, row), orders.i64(row, "ordered_at"))
        else {
            summary.skipped += 1;
            continue;
        };
        interactions.push(Interaction {
            user,
            item,
            platform: platform_id(platforms, &platform),
            action: Action::Purchase,
            at,
        });
        summary.from_orders += 1;
    }
    platforms_with_orders
}

/// Views, favourites, carts and (on platforms without orders) purchases from the events.
fn event_interactions(
    events: &NamedRows,
    keys: &RowKeys,
    platforms_with_orders: &HashSet<String>,
    platforms: &mut Vec<String>,
    (interactions, summary): (&mut Vec<Interaction>, &mut LogSummary),
) {
    for row in &events.rows {
        let Some(action) = events
            .text(row, "event_type")
            .and_then(|e| Action::parse(&e))
        else {
            summary.skipped += 1;
            continue;
        };
        let (Some((platform, user, item)), Some(at)) =
            (keys.lookup(events, row), events.i64(row, "occurred_at"))
        else {
            summary.skipped += 1;
            continue;
        };
        if action == Action::Purchase && platforms_with_orders.contains(&platform) {
            summary.purchase_events_replaced_by_orders += 1;
            continue;
        }
        interactions.push(Interaction {
            user,
            item,
            platform: platform_id(platforms, &platform),
            action,
            at,
        });
        summary.from_events += 1;
    }
}

fn required(read: ReadTable<'_>, table: &str) -> Result<NamedRows, LearnError> {
    read(table)?.ok_or_else(|| LearnError::Missing {
        table: table.to_string(),
        run: "shopfuse run",
    })
}

impl InteractionLog {
    /// Reads `customer_accounts`, `golden_products`, `product_clusters`, `clean_orders` and
    /// `clean_events` of the transaction's project.
    pub fn from_project(read: ReadTable<'_>) -> Result<InteractionLog, LearnError> {
        let accounts = required(read, customer_accounts::NAME)?;
        let golden = required(read, golden_products::NAME)?;
        let clusters = required(read, product_clusters::NAME)?;

        let index = CustomerIndex::from_accounts(&accounts);
        let mut platforms = index.platforms.clone();
        let (catalog, listing_item) = project_catalog(&golden, &clusters, &mut platforms);
        let keys = RowKeys {
            account_user: index
                .customer_of
                .into_iter()
                .map(|(account, c)| (account, c as u32))
                .collect(),
            listing_item,
        };
        let users = index.ids;
        let mut summary = LogSummary::default();
        let mut interactions = Vec::new();
        let mut platforms_with_orders: HashSet<String> = HashSet::new();
        if let Some(orders) = read(&EntityKind::Orders.clean_table())? {
            platforms_with_orders = order_interactions(
                &orders,
                &keys,
                &mut platforms,
                &mut interactions,
                &mut summary,
            );
        }
        if let Some(events) = read(&EntityKind::Events.clean_table())? {
            let sink = (&mut interactions, &mut summary);
            event_interactions(&events, &keys, &platforms_with_orders, &mut platforms, sink);
        }
        interactions.sort_by_key(|i| (i.at, i.user, i.item, i.platform, i.action));
        summary.interactions = interactions.len();
        summary.users = users.len();
        summary.items = catalog.len();
        Ok(InteractionLog {
            users,
            platforms,
            catalog,
            interactions,
            item_vectors: None,
            summary,
        })
    }

    /// A public data set in the `user,item,rating,timestamp` form (comma, tab or MovieLens
    /// `::` separated, header optional). Ratings at or above `min_rating` become purchases
    /// (the usual way to turn explicit ratings into implicit feedback); the rest are counted
    /// as skipped. A missing timestamp keeps file order.
    pub fn from_ratings_file(path: &Path, min_rating: f64) -> Result<InteractionLog, LearnError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            LearnError::Invalid(format!("cannot read ratings file {}: {e}", path.display()))
        })?;
        Self::from_ratings_text(&text, &path.display().to_string(), min_rating)
    }

    pub fn from_ratings_text(
        text: &str,
        source: &str,
        min_rating: f64,
    ) -> Result<InteractionLog, LearnError> {
        let mut users: Vec<String> = Vec::new();
        let mut user_index: HashMap<String, u32> = HashMap::new();
        let mut catalog = Catalog::default();
        let mut item_index: HashMap<String, u32> = HashMap::new();
        let mut interactions = Vec::new();
        let mut summary = LogSummary::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let Some((user, item, rating, at)) = parse_rating_line(line, n, source)? else {
                continue; // a header line
            };
            if rating < min_rating {
                summary.skipped += 1;
                continue;
            }
            let u = *user_index.entry(user.to_string()).or_insert_with(|| {
                users.push(user.to_string());
                (users.len() - 1) as u32
            });
            let i = *item_index.entry(item.to_string()).or_insert_with(|| {
                catalog.family.push(catalog.ids.len() as u32);
                catalog.ids.push(item.to_string());
                catalog.titles.push(item.to_string());
                catalog.offered_on.push(1);
                (catalog.ids.len() - 1) as u32
            });
            interactions.push(Interaction {
                user: u,
                item: i,
                platform: 0,
                action: Action::Purchase,
                at,
            });
        }
        if interactions.is_empty() {
            return Err(LearnError::Invalid(format!(
                "{source}: no rating at or above {min_rating}; nothing to learn from"
            )));
        }
        interactions.sort_by_key(|i| (i.at, i.user, i.item));
        summary.interactions = interactions.len();
        summary.from_events = interactions.len();
        summary.users = users.len();
        summary.items = catalog.len();
        Ok(InteractionLog {
            users,
            platforms: vec!["ratings".into()],
            catalog,
            interactions,
            item_vectors: None,
            summary,
        })
    }
}

/// One line of a ratings file (`::`, tab or comma separated: user, item, rating and an
/// optional timestamp in seconds); `None` for a header line. Without a timestamp, the line
/// number orders the interactions.
fn parse_rating_line<'a>(
    line: &'a str,
    n: usize,
    source: &str,
) -> Result<Option<(&'a str, &'a str, f64, i64)>, LearnError> {
    let fields: Vec<&str> = if line.contains("::") {
        line.split("::").collect()
    } else if line.contains('\t') {
        line.split('\t').collect()
    } else {
        line.split(',').collect()
    };
    let bad = |field: &str, why: String| {
        LearnError::Invalid(format!(
            "{source}, line {}, field {field}: {why} (expected user,item,rating[,timestamp])",
            n + 1
        ))
    };
    if fields.len() < 3 {
        return Err(bad("rating", format!("only {} field(s)", fields.len())));
    }
    let rating = match fields[2].trim().parse::<f64>() {
        Ok(r) if r.is_finite() => r,
        _ if n == 0 => return Ok(None),
        _ => return Err(bad("rating", format!("{:?} is not a number", fields[2]))),
    };
    let at = match fields.get(3).map(|t| t.trim()) {
        None | Some("") => n as i64,
        Some(t) => t
            .parse::<f64>()
            .map(|s| (s * 1e6) as i64)
            .map_err(|_| bad("timestamp", format!("{t:?} is not a number")))?,
    };
    let (user, item) = (fields[0].trim(), fields[1].trim());
    if user.is_empty() || item.is_empty() {
        return Err(bad("user/item", "empty id".into()));
    }
    Ok(Some((user, item, rating, at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_share_a_family_and_other_products_do_not() {
        let a = variant_family_key(
            Some("Apple"),
            "Apple iPhone 14 128GB 蓝色",
            Some("蓝色"),
            Some("128GB"),
        );
        let b = variant_family_key(
            Some("apple"),
            "Apple iPhone 14 256G 红色",
            Some("红色"),
            Some("256GB"),
        );
        let c = variant_family_key(Some("Apple"), "Apple iPhone 15 128GB", None, None);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn ratings_in_movielens_and_csv_forms() {
        let dat = "1::10::5::978300760\n1::20::3::978302109\n2::10::4::978301968\n";
        let log = InteractionLog::from_ratings_text(dat, "ratings.dat", 4.0).unwrap();
        assert_eq!(log.interactions.len(), 2);
        assert_eq!(log.summary.skipped, 1);
        assert_eq!(log.users, vec!["1", "2"]);
        assert_eq!(log.catalog.ids, vec!["10"]);

        let csv = "userId,movieId,rating,timestamp\nu1,i1,4.5,10\nu2,i2,1,11\n";
        let log = InteractionLog::from_ratings_text(csv, "r.csv", 0.0).unwrap();
        assert_eq!(log.interactions.len(), 2);
        assert_eq!(log.interactions[1].at, 11_000_000);
    }

    #[test]
    fn bad_ratings_name_the_line_and_field() {
        let err = InteractionLog::from_ratings_text("u,i,5,1\nu,j,high,2\n", "r.csv", 0.0)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("r.csv, line 2, field rating"), "{err}");
        let err = InteractionLog::from_ratings_text("u,i\n", "r.csv", 0.0)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn actions_parse_in_both_languages_and_order_by_strength() {
        assert_eq!(Action::parse("收藏"), Some(Action::Favorite));
        assert_eq!(Action::parse(" Cart "), Some(Action::Cart));
        assert_eq!(Action::parse("share"), None);
        assert!(Action::Purchase > Action::Cart && Action::Cart > Action::View);
    }
}
