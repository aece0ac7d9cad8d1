//! The risk stage's view of a project: every order and review with its account, the unified
//! customer of that account, and the keys (device, IP, address) it was placed with, interned
//! to integers so that graph building and feature passes never touch strings.
//!
//! An **entity** is what a score is about: the unified customer in the fused view, the
//! platform account in a single-platform view ([`OrderBook::platform_only`], the baseline
//! `eval risk` compares fusion with).

use std::collections::HashMap;

/// A string ↔ dense id table.
#[derive(Debug, Clone, Default)]
pub struct Interner {
    pub names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Interner {
    pub fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.index.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), id);
        id
    }
    pub fn get(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }
    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// What a key is; keys of different kinds never collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    Device,
    Ip,
    Address,
}

impl KeyKind {
    pub const ALL: [KeyKind; 3] = [KeyKind::Device, KeyKind::Ip, KeyKind::Address];
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Device => "device",
            KeyKind::Ip => "ip",
            KeyKind::Address => "address",
        }
    }
}

/// One platform account.
#[derive(Debug, Clone)]
pub struct Account {
    pub platform: u16,
    pub account_id: String,
    /// The entity the account belongs to.
    pub entity: u32,
    pub registered_at: Option<i64>,
}

/// One listing on one platform.
#[derive(Debug, Clone)]
pub struct Listing {
    pub platform: u16,
    pub listing_id: String,
    pub golden_id: Option<String>,
}

/// One order.
#[derive(Debug, Clone)]
pub struct Order {
    pub order_id: String,
    pub account: u32,
    pub listing: u32,
    /// Microseconds since the epoch, UTC.
    pub at: i64,
    /// Value in the project's base currency.
    pub amount: f64,
    /// Device, IP, address keys (in [`KeyKind::ALL`] order), interned in `keys`.
    pub keys: [Option<u32>; 3],
    pub city: Option<u32>,
    /// Clean flagged the row as an outlier.
    pub outlier: bool,
}

/// One review.
#[derive(Debug, Clone)]
pub struct Review {
    pub review_id: String,
    pub platform: u16,
    pub account: Option<u32>,
    pub listing: u32,
    pub at: Option<i64>,
    pub rating: Option<f64>,
    /// A hash of the text with spaces and punctuation removed: equal for copied texts.
    pub text_hash: u64,
    /// The sentiment stage found the stars and the text at odds.
    pub rating_mismatch: bool,
}

/// An order as read from a table or made by a generator.
#[derive(Debug, Clone, Default)]
pub struct OrderInput<'a> {
    pub platform: &'a str,
    pub order_id: &'a str,
    pub account_id: &'a str,
    pub listing_id: &'a str,
    pub at: i64,
    pub amount: f64,
    pub device: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub address: Option<&'a str>,
    pub city: Option<&'a str>,
    pub outlier: bool,
}

/// A review as read from a table.
#[derive(Debug, Clone, Default)]
pub struct ReviewInput<'a> {
    pub platform: &'a str,
    pub review_id: &'a str,
    pub account_id: Option<&'a str>,
    pub listing_id: &'a str,
    pub at: Option<i64>,
    pub rating: Option<f64>,
    pub text: &'a str,
    pub rating_mismatch: bool,
}

/// Orders, reviews, accounts and their entities.
#[derive(Debug, Clone, Default)]
pub struct OrderBook {
    pub platforms: Interner,
    pub accounts: Vec<Account>,
    account_index: HashMap<(u16, String), u32>,
    /// Entity names: customer ids, or `platform:account` for an account no customer holds.
    pub entities: Interner,
    pub listings: Vec<Listing>,
    listing_index: HashMap<(u16, String), u32>,
    /// Keys as `kind:value`.
    pub keys: Interner,
    pub key_kinds: Vec<KeyKind>,
    pub cities: Interner,
    pub orders: Vec<Order>,
    pub reviews: Vec<Review>,
}

impl OrderBook {
    /// Records an account and its unified customer (`None`: the account is its own entity).
    pub fn add_account(
        &mut self,
        platform: &str,
        account_id: &str,
        customer_id: Option<&str>,
        registered_at: Option<i64>,
    ) -> u32 {
        let p = self.platforms.id(platform) as u16;
        if let Some(&a) = self.account_index.get(&(p, account_id.to_string())) {
            return a;
        }
        let entity = match customer_id {
            Some(c) => self.entities.id(c),
            None => self.entities.id(&format!("{platform}:{account_id}")),
        };
        let id = self.accounts.len() as u32;
        self.accounts.push(Account {
            platform: p,
            account_id: account_id.to_string(),
            entity,
            registered_at,
        });
        self.account_index.insert((p, account_id.to_string()), id);
        id
    }

    /// Records a listing and its golden product.
    pub fn add_listing(
        &mut self,
        platform: &str,
        listing_id: &str,
        golden_id: Option<&str>,
    ) -> u32 {
        let p = self.platforms.id(platform) as u16;
        if let Some(&l) = self.listing_index.get(&(p, listing_id.to_string())) {
            if let (Some(g), None) = (golden_id, &self.listings[l as usize].golden_id) {
                self.listings[l as usize].golden_id = Some(g.to_string());
            }
            return l;
        }
        let id = self.listings.len() as u32;
        self.listings.push(Listing {
            platform: p,
            listing_id: listing_id.to_string(),
            golden_id: golden_id.map(str::to_string),
        });
        self.listing_index.insert((p, listing_id.to_string()), id);
        id
    }

    fn key(&mut self, kind: KeyKind, value: Option<&str>) -> Option<u32> {
        let v = value.map(str::trim).filter(|v| !v.is_empty())?;
        let before = self.keys.len();
        let id = self.keys.id(&format!("{}:{v}", kind.as_str()));
        if self.keys.len() > before {
            self.key_kinds.push(kind);
        }
        Some(id)
    }

    pub fn add_order(&mut self, o: &OrderInput<'_>) {
        let account = self.add_account(o.platform, o.account_id, None, None);
        let listing = self.add_listing(o.platform, o.listing_id, None);
        let keys = [
            self.key(KeyKind::Device, o.device),
            self.key(KeyKind::Ip, o.ip),
            self.key(KeyKind::Address, o.address),
        ];
        let city = o.city.filter(|c| !c.is_empty()).map(|c| self.cities.id(c));
        self.orders.push(Order {
            order_id: o.order_id.to_string(),
            account,
            listing,
            at: o.at,
            amount: o.amount,
            keys,
            city,
            outlier: o.outlier,
        });
    }

    pub fn add_review(&mut self, r: &ReviewInput<'_>) {
        let account = r
            .account_id
            .filter(|a| !a.is_empty())
            .map(|a| self.add_account(r.platform, a, None, None));
        let listing = self.add_listing(r.platform, r.listing_id, None);
        let platform = self.platforms.id(r.platform) as u16;
        self.reviews.push(Review {
            review_id: r.review_id.to_string(),
            platform,
            account,
            listing,
            at: r.at,
            rating: r.rating,
            text_hash: text_hash(r.text),
            rating_mismatch: r.rating_mismatch,
        });
    }

    pub fn entity_of(&self, account: u32) -> u32 {
        self.accounts[account as usize].entity
    }

    pub fn platform_name(&self, platform: u16) -> &str {
        &self.platforms.names[platform as usize]
    }

    /// The same book seen by one platform alone: its orders and reviews, each account its
    /// own entity (no fused identity), keys and listings of other platforms unseen.
    pub fn platform_only(&self, platform: u16) -> OrderBook {
        let mut book = OrderBook::default();
        let name = self.platform_name(platform).to_string();
        for o in &self.orders {
            let a = &self.accounts[o.account as usize];
            if a.platform != platform {
                continue;
            }
            let l = &self.listings[o.listing as usize];
            book.add_account(&name, &a.account_id, None, a.registered_at);
            book.add_listing(&name, &l.listing_id, l.golden_id.as_deref());
            let key = |k: Option<u32>| {
                k.map(|k| {
                    self.keys.names[k as usize]
                        .split_once(':')
                        .map_or("", |(_, v)| v)
                })
            };
            book.add_order(&OrderInput {
                platform: &name,
                order_id: &o.order_id,
                account_id: &a.account_id,
                listing_id: &l.listing_id,
                at: o.at,
                amount: o.amount,
                device: key(o.keys[0]),
                ip: key(o.keys[1]),
                address: key(o.keys[2]),
                city: o.city.map(|c| self.cities.names[c as usize].as_str()),
                outlier: o.outlier,
            });
        }
        for r in self.reviews.iter().filter(|r| r.platform == platform) {
            let l = &self.listings[r.listing as usize];
            let account = r.account.map(|a| {
                let a = &self.accounts[a as usize];
                book.add_account(&name, &a.account_id, None, a.registered_at)
            });
            let listing = book.add_listing(&name, &l.listing_id, l.golden_id.as_deref());
            book.reviews.push(Review {
                platform: 0,
                account,
                listing,
                ..r.clone()
            });
        }
        book
    }
}

/// Each entity's accounts, orders and reviews (indices into the book), for reports that
/// look at a few entities at a time without scanning every order for each.
#[derive(Debug, Clone)]
pub struct EntityIndex {
    pub accounts: Vec<Vec<u32>>,
    pub orders: Vec<Vec<u32>>,
    pub reviews: Vec<Vec<u32>>,
}

impl EntityIndex {
    pub fn of(book: &OrderBook) -> Self {
        let n = book.entities.len();
        let mut index = Self {
            accounts: vec![Vec::new(); n],
            orders: vec![Vec::new(); n],
            reviews: vec![Vec::new(); n],
        };
        for (i, a) in book.accounts.iter().enumerate() {
            index.accounts[a.entity as usize].push(i as u32);
        }
        for (i, o) in book.orders.iter().enumerate() {
            index.orders[book.entity_of(o.account) as usize].push(i as u32);
        }
        for (i, r) in book.reviews.iter().enumerate() {
            if let Some(a) = r.account {
                index.reviews[book.entity_of(a) as usize].push(i as u32);
            }
        }
        index
    }
}

/// FNV-1a over the text's letters and digits, lower-cased: copies that differ only in
/// punctuation, spacing or case hash alike.
pub fn text_hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in text.chars().filter(|c| c.is_alphanumeric()) {
        for l in c.to_lowercase() {
            let mut buf = [0u8; 4];
            for b in l.encode_utf8(&mut buf).bytes() {
                h ^= b as u64;
                h = h.wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copied_texts_hash_alike() {
        assert_eq!(text_hash("好评！好评"), text_hash("好评 好评。"));
        assert_eq!(text_hash("Great, value"), text_hash("great value!"));
        assert_ne!(text_hash("好评"), text_hash("差评"));
    }

    #[test]
    fn a_platform_alone_sees_its_accounts_as_entities() {
        let mut book = OrderBook::default();
        book.add_account("taobao", "t1", Some("CU1"), None);
        book.add_account("jd", "j1", Some("CU1"), None);
        for (p, a) in [("taobao", "t1"), ("jd", "j1")] {
            book.add_order(&OrderInput {
                platform: p,
                order_id: "o",
                account_id: a,
                listing_id: "l",
                device: Some("d1"),
                ..Default::default()
            });
        }
        assert_eq!(book.entity_of(0), book.entity_of(1));
        let jd = book.platform_only(book.platforms.get("jd").unwrap() as u16);
        assert_eq!(jd.orders.len(), 1);
        assert_eq!(jd.entities.names, vec!["jd:j1".to_string()]);
        assert_eq!(jd.keys.names, vec!["device:d1".to_string()]);
    }
}
