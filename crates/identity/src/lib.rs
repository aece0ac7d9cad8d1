//! Customer identity: `clean_customers` (and the phones and devices of
//! `clean_orders`) → an identity graph of linked platform accounts → one customer id per
//! person.
//!
//! Only pseudonyms reach this stage: keyed hashes of the normalised phone, e-mail, name and
//! address, plus the fragments ingest derived from them (name parts, phone tail, mailbox,
//! district/street/house of the address). The stage
//! 1. finds the keys several people hold — a phone, e-mail or device on more accounts than
//!    `[identity] max_key_accounts`, on two accounts of one platform (a family phone), or on a
//!    burst of new accounts under different names (a brushing ring's device), and drop-point
//!    addresses (a parcel station: more accounts than that, nearly every one under a
//!    different name): they are no evidence either way. A home
//!    address stays evidence however many accounts share it, weighted by how many do (term
//!    frequency), so a family's or a building's house still links a person's accounts when
//!    their names agree;
//! 2. links accounts deterministically on a personal phone or e-mail, unless the names
//!    clearly differ (then the pair is only scored);
//! 3. proposes candidate pairs from blocking keys (name, house, phone, e-mail, mailbox,
//!    device, street and name part, phone tail and city, name and city; in a name + city
//!    block too large to compare whole, the accounts without address evidence against all
//!    the others) and scores them with a Fellegi–Sunter model estimated from the data
//!    (`model`);
//! 4. clusters with constrained average linkage: two groups of accounts merge only when the
//!    average match probability over *all* their cross pairs reaches the threshold and no two
//!    of their accounts are on one platform, so a shared phone cannot chain two households.

//!
//! The crate also builds on that graph the unified customer table (`profile`: RFM across
//! platforms, category interests on golden categories, segments) — the second stage of the
//! customer view, `profiles`, kept beside identity because it is the one place that turns
//! accounts into customers.
//!
//! Why a crate of its own: the identity graph is the correctness base of every per-customer
//! feature (recommendations, risk, propensity); it shares nothing with product matching but
//! the bookkeeping of average linkage and the accuracy metrics, both in `shopfuse-core`.

pub mod evaluate;
pub mod keys;
pub mod model;
pub mod profile;
pub mod tables;

pub use profile::{
    build_profiles, customers, is_cancelled, CustomerIndex, ProfileSummary, CANCELLED_STATUS_WORDS,
    SEGMENTS,
};

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use arrow::array::RecordBatch;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use shopfuse_core::config::IdentityConfig;
use shopfuse_core::value::{IntColumn, TextColumn};
use shopfuse_core::{EntityKind, Progress, Transaction};

pub use keys::{KeyId, KeyKind, KeyStats, KeyTable};
pub use model::{Comparison, FellegiSunter, Gamma, COMPARISONS};
use shopfuse_core::linkage::{Clustering, Merges};
use shopfuse_core::CoreError;

/// What can stop the identity and profile stages.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing a table failed; the source names the file.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A table this stage reads has not been written yet.
    #[error("no {table} table yet: {fix}")]
    MissingTable {
        table: &'static str,
        /// What to run first.
        fix: &'static str,
    },
}

pub use tables::{customer_accounts, identity_links, identity_parameters};

/// Blocks larger than this propose no pairs: such a key (a placeholder phone, a very common
/// name) would cost quadratic work and say little.
const MAX_BLOCK: usize = 60;
const RANDOM_PAIRS: usize = 200_000;

/// One platform account, its pseudonyms and derived fragments interned as [`KeyId`]s.
#[derive(Debug, Clone, Default)]
pub struct Account {
    pub platform: String,
    pub account_id: String,
    pub name: Option<KeyId>,
    pub name_tokens: Vec<KeyId>,
    /// The account's phone and the phones of its orders.
    pub phones: Vec<KeyId>,
    pub phone_tails: Vec<KeyId>,
    pub email: Option<KeyId>,
    pub email_user: Option<KeyId>,
    pub area: Option<KeyId>,
    pub street: Option<KeyId>,
    pub house: Option<KeyId>,
    /// Lower-cased, as `customer_accounts` shows it.
    pub city: Option<String>,
    pub city_key: Option<KeyId>,
    /// Devices its orders were placed from.
    pub devices: Vec<KeyId>,
    pub registered_at: Option<i64>,
    pub file: String,
    pub row: i64,
}

impl Account {
    pub fn key(&self) -> String {
        format!("{}:{}", self.platform, self.account_id)
    }
}

/// The columns of `clean_customers` the stage reads (Parquet decodes no other).
const CUSTOMER_COLUMNS: &[&str] = &[
    "_platform",
    "account_id",
    "name",
    "name_tokens",
    "phone",
    "phone_tail",
    "email",
    "email_user",
    "address_area",
    "address_street",
    "address_house",
    "city",
    "registered_at",
    "_file",
    "_row",
];

/// The columns of `clean_orders` the stage reads.
const ORDER_COLUMNS: &[&str] = &["_platform", "account_id", "phone", "device_id"];

/// The accounts of `clean_customers`, with their orders' phones and devices, and the table
/// of the key values they hold.
pub fn read_accounts(tx: &Transaction<'_>) -> Result<(Vec<Account>, KeyTable), IdentityError> {
    let mut keys = KeyTable::default();
    let Some(batches) =
        tx.read_column_batches(&EntityKind::Customers.clean_table(), CUSTOMER_COLUMNS)?
    else {
        return Ok((Vec::new(), keys));
    };
    let mut accounts: Vec<Account> = Vec::new();
    let mut position = AccountPositions::default();
    for batch in &batches {
        let c = CustomerColumns::of(batch);
        for row in 0..batch.num_rows() {
            let platform = c.platform.get(row).unwrap_or_default();
            let Some(account_id) = c.account_id.get(row) else {
                continue;
            };
            if position.insert(platform, account_id, accounts.len()) {
                accounts.push(c.account(row, &mut keys));
            } // else one account exported by two sources of a platform
        }
    }
    drop(batches);
    add_order_keys(tx, &mut accounts, &position, &mut keys)?;
    keys.seal();
    Ok((accounts, keys))
}

/// Where each (platform, account id) is in the account list. Looked up once per order row
/// (millions), with borrowed strings: a map per platform, as there are only a few.
#[derive(Default)]
struct AccountPositions {
    platforms: Vec<(String, HashMap<String, usize, foldhash::fast::RandomState>)>,
}

impl AccountPositions {
    /// Records `position` unless the account is known; returns whether it was new.
    fn insert(&mut self, platform: &str, account_id: &str, position: usize) -> bool {
        let k = match self.platforms.iter().position(|(p, _)| p == platform) {
            Some(k) => k,
            None => {
                self.platforms
                    .push((platform.to_string(), HashMap::default()));
                self.platforms.len() - 1
            }
        };
        let ids = &mut self.platforms[k].1;
        if ids.contains_key(account_id) {
            return false;
        }
        ids.insert(account_id.to_string(), position);
        true
    }

    fn get(&self, platform: &str, account_id: &str) -> Option<usize> {
        let (_, ids) = self.platforms.iter().find(|(p, _)| p == platform)?;
        ids.get(account_id).copied()
    }
}

/// The columns of one batch of `clean_customers`, read in place.
struct CustomerColumns<'b> {
    platform: TextColumn<'b>,
    account_id: TextColumn<'b>,
    name: TextColumn<'b>,
    name_tokens: TextColumn<'b>,
    phone: TextColumn<'b>,
    phone_tail: TextColumn<'b>,
    email: TextColumn<'b>,
    email_user: TextColumn<'b>,
    area: TextColumn<'b>,
    street: TextColumn<'b>,
    house: TextColumn<'b>,
    city: TextColumn<'b>,
    registered_at: IntColumn<'b>,
    file: TextColumn<'b>,
    row: IntColumn<'b>,
}

impl<'b> CustomerColumns<'b> {
    fn of(batch: &'b RecordBatch) -> Self {
        let text = |name: &str| TextColumn::of(batch, name);
        Self {
            platform: text("_platform"),
            account_id: text("account_id"),
            name: text("name"),
            name_tokens: text("name_tokens"),
            phone: text("phone"),
            phone_tail: text("phone_tail"),
            email: text("email"),
            email_user: text("email_user"),
            area: text("address_area"),
            street: text("address_street"),
            house: text("address_house"),
            city: text("city"),
            registered_at: IntColumn::of(batch, "registered_at"),
            file: text("_file"),
            row: IntColumn::of(batch, "_row"),
        }
    }

    fn account(&self, row: usize, keys: &mut KeyTable) -> Account {
        let mut one = |column: &TextColumn<'_>| column.get(row).map(|t| keys.intern(t));
        let (name, phone, email, email_user) = (
            one(&self.name),
            one(&self.phone),
            one(&self.email),
            one(&self.email_user),
        );
        let (area, street, house) = (one(&self.area), one(&self.street), one(&self.house));
        let city = self.city.get(row).map(str::to_lowercase);
        let mut fragments = |column: &TextColumn<'_>| -> Vec<KeyId> {
            column
                .get(row)
                .map(|s| s.split_whitespace().map(|t| keys.intern(t)).collect())
                .unwrap_or_default()
        };
        let (name_tokens, phone_tails) =
            (fragments(&self.name_tokens), fragments(&self.phone_tail));
        Account {
            platform: self.platform.get(row).unwrap_or_default().to_string(),
            account_id: self.account_id.get(row).unwrap_or_default().to_string(),
            name,
            name_tokens,
            phones: phone.into_iter().collect(),
            phone_tails,
            email,
            email_user,
            area,
            street,
            house,
            city_key: city.as_deref().map(|t| keys.intern(t)),
            city,
            devices: Vec::new(),
            registered_at: self.registered_at.get(row),
            file: self.file.get(row).unwrap_or_default().to_string(),
            row: self.row.get(row).unwrap_or(0),
        }
    }
}

/// Adds the phones and devices of each account's orders.
fn add_order_keys(
    tx: &Transaction<'_>,
    accounts: &mut [Account],
    position: &AccountPositions,
    keys: &mut KeyTable,
) -> Result<(), IdentityError> {
    let batches = tx
        .read_column_batches(&EntityKind::Orders.clean_table(), ORDER_COLUMNS)?
        .unwrap_or_default();
    for batch in &batches {
        let text = |name: &str| TextColumn::of(batch, name);
        let (platform, account_id) = (text("_platform"), text("account_id"));
        let (phone, device) = (text("phone"), text("device_id"));
        for row in 0..batch.num_rows() {
            let (Some(p), Some(id)) = (platform.get(row), account_id.get(row)) else {
                continue;
            };
            let Some(i) = position.get(p, id) else {
                continue;
            };
            let a = &mut accounts[i];
            if let Some(phone) = phone.get(row).map(|t| keys.intern(t)) {
                if !a.phones.contains(&phone) {
                    a.phones.push(phone);
                }
            }
            if let Some(device) = device.get(row).map(|t| keys.intern(t)) {
                if !a.devices.contains(&device) {
                    a.devices.push(device);
                }
            }
        }
    }
    for a in accounts {
        a.phones.sort_unstable();
        a.devices.sort_unstable();
    }
    Ok(())
}

/// Level of a multi-valued key comparison: `Some(Ok(tf))` on agreement over a personal key,
/// `Some(Err(()))` on agreement only over shared keys (no evidence), `None` otherwise.
fn agree(a: &[KeyId], b: &[KeyId], stats: &KeyStats) -> Option<Result<f64, ()>> {
    let mut common = a.iter().filter(|k| b.contains(k)).peekable();
    common.peek()?;
    common
        .filter(|&&k| !stats.is_shared(k))
        .map(|&k| stats.frequency(k))
        .min_by(f64::total_cmp)
        .map_or(Some(Err(())), |tf| Some(Ok(tf)))
}

fn shares(a: &[KeyId], b: &[KeyId]) -> bool {
    a.iter().any(|x| b.contains(x))
}

/// The comparison vector of two accounts.
pub fn compare(a: &Account, b: &Account, stats: &KeyStats) -> Gamma {
    let mut g = Gamma::default();
    let set = |g: &mut Gamma, c: Comparison, level: u8, tf: Option<f64>| {
        let i = COMPARISONS
            .iter()
            .position(|x| *x == c)
            .expect("comparison");
        g.level[i] = Some(level);
        g.term_frequency[i] = tf;
    };
    if let (Some(x), Some(y)) = (a.name, b.name) {
        if x == y {
            set(&mut g, Comparison::Name, 0, Some(stats.frequency(x)));
        } else if shares(&a.name_tokens, &b.name_tokens) {
            set(&mut g, Comparison::Name, 1, None);
        } else {
            set(&mut g, Comparison::Name, 2, None);
        }
    }
    let key_level =
        |g: &mut Gamma, c: Comparison, full: (&[KeyId], &[KeyId]), part: (&[KeyId], &[KeyId])| {
            match agree(full.0, full.1, stats) {
                Some(Ok(tf)) => set(g, c, 0, Some(tf)),
                Some(Err(())) => {}
                None if !part.0.is_empty() && !part.1.is_empty() => {
                    set(g, c, if shares(part.0, part.1) { 1 } else { 2 }, None)
                }
                None if !full.0.is_empty() && !full.1.is_empty() => set(g, c, 2, None),
                None => {}
            }
        };
    key_level(
        &mut g,
        Comparison::Phone,
        (&a.phones, &b.phones),
        (&a.phone_tails, &b.phone_tails),
    );
    key_level(
        &mut g,
        Comparison::Email,
        (a.email.as_slice(), b.email.as_slice()),
        (a.email_user.as_slice(), b.email_user.as_slice()),
    );
    let any_address = |x: &Account| x.house.is_some() || x.street.is_some() || x.area.is_some();
    if any_address(a) && any_address(b) {
        match (a.house, b.house) {
            (Some(x), Some(y)) if x == y => {
                if !stats.is_shared(x) {
                    set(&mut g, Comparison::Address, 0, Some(stats.frequency(x)));
                }
            }
            _ if a.street.is_some() && a.street == b.street => {
                set(&mut g, Comparison::Address, 1, None)
            }
            _ if a.area.is_some() && a.area == b.area => set(&mut g, Comparison::Address, 2, None),
            _ => set(&mut g, Comparison::Address, 3, None),
        }
    }
    if let (Some(x), Some(y)) = (a.city_key, b.city_key) {
        set(&mut g, Comparison::City, u8::from(x != y), None);
    }
    if !a.devices.is_empty() && !b.devices.is_empty() {
        match agree(&a.devices, &b.devices, stats) {
            Some(Ok(tf)) => set(&mut g, Comparison::Device, 0, Some(tf)),
            Some(Err(())) => {}
            None => set(&mut g, Comparison::Device, 1, None),
        }
    }
    g
}

fn level_of(g: &Gamma, c: Comparison) -> Option<u8> {
    g.level[COMPARISONS
        .iter()
        .position(|x| *x == c)
        .expect("comparison")]
}

/// Why two accounts are linked without scoring, if they are: a personal phone or e-mail in
/// common, and names that do not clearly differ.
fn deterministic_reason(g: &Gamma) -> Option<&'static str> {
    if level_of(g, Comparison::Name) == Some(2) {
        return None;
    }
    match (
        level_of(g, Comparison::Phone) == Some(0),
        level_of(g, Comparison::Email) == Some(0),
    ) {
        (true, true) => Some("same phone and e-mail"),
        (true, false) => Some("same phone"),
        (false, true) => Some("same e-mail"),
        (false, false) => None,
    }
}

/// Candidate pairs: accounts that share a blocking key (and, by default, are on different
/// platforms), in ascending order.
fn candidate_pairs(
    accounts: &[Account],
    stats: &KeyStats,
    config: &IdentityConfig,
) -> Vec<(usize, usize)> {
    let entries = blocking_entries(accounts);
    // An account whose address is no evidence (none, or a parcel station's) shares nothing
    // but its name and city with its owner's other accounts when their phones differ. In a
    // name + city block too large to compare whole, such accounts are still compared with
    // every namesake of their city — work linear in the block per such account, instead of
    // the block's square.
    let addressless: Vec<bool> = accounts
        .iter()
        .map(|a| a.house.is_none_or(|h| stats.is_shared(h)))
        .collect();
    let comparable = |i: u32, j: u32| {
        let (i, j) = (i as usize, j as usize);
        (i != j
            && !(config.one_account_per_platform && accounts[i].platform == accounts[j].platform))
            .then_some((i.min(j), i.max(j)))
    };
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for block in entries.chunk_by(|x, y| x.0 == y.0) {
        if block.len() <= MAX_BLOCK {
            for (k, &(_, i)) in block.iter().enumerate() {
                pairs.extend(block[k + 1..].iter().filter_map(|&(_, j)| comparable(i, j)));
            }
        } else if block[0].0 >> 62 == NAME_CITY && block.len() <= MAX_NAME_CITY_BLOCK {
            for &(_, i) in block.iter().filter(|&&(_, i)| addressless[i as usize]) {
                pairs.extend(block.iter().filter_map(|&(_, j)| comparable(i, j)));
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

/// Tag of the name + city blocking key.
const NAME_CITY: u64 = 3;
/// A name + city block larger than this (a placeholder name) proposes no pairs at all.
const MAX_NAME_CITY_BLOCK: usize = 5_000;

/// One (block key, account) entry per key an account holds (a key listed twice on one
/// account is listed twice, as it counts twice towards MAX_BLOCK), sorted, so that each
/// block's members are together without a hash map of blocks.
fn blocking_entries(accounts: &[Account]) -> Vec<(u64, u32)> {
    let mut entries: Vec<(u64, u32)> = Vec::new();
    for (i, a) in accounts.iter().enumerate() {
        let i = i as u32;
        let single = |k: KeyId| (u64::from(k), i);
        entries.extend(a.name.map(single));
        entries.extend(a.house.map(single));
        entries.extend(a.phones.iter().copied().map(single));
        entries.extend(a.email.map(single));
        entries.extend(a.email_user.map(single));
        entries.extend(a.devices.iter().copied().map(single));
        if let Some(street) = a.street {
            entries.extend(a.name_tokens.iter().map(|&t| (pair_key(1, street, t), i)));
        }
        if let Some(city) = a.city_key {
            entries.extend(a.phone_tails.iter().map(|&t| (pair_key(2, t, city), i)));
            // A common name's block is over MAX_BLOCK in a large project; within one city it
            // is not, and a person who ships to a parcel station shares nothing else.
            entries.extend(a.name.map(|n| (pair_key(NAME_CITY, n, city), i)));
        }
    }
    entries.sort_unstable();
    entries
}

/// A blocking key made of two key values (street + name part, phone tail + city), tagged so
/// that it never equals a single key's id.
fn pair_key(tag: u64, a: KeyId, b: KeyId) -> u64 {
    (tag << 62) | (u64::from(a) << 31) | u64::from(b)
}

fn random_pairs(accounts: &[Account], config: &IdentityConfig) -> Vec<(usize, usize)> {
    let n = accounts.len();
    if n < 2 {
        return Vec::new();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0x1d_e7_17);
    let wanted = RANDOM_PAIRS.min(n * (n - 1) / 2);
    let mut out = Vec::with_capacity(wanted);
    let mut tries = 0;
    while out.len() < wanted && tries < wanted * 4 {
        tries += 1;
        let (i, j) = (rng.random_range(0..n), rng.random_range(0..n));
        if i == j
            || (config.one_account_per_platform && accounts[i].platform == accounts[j].platform)
        {
            continue;
        }
        out.push((i.min(j), i.max(j)));
    }
    out
}

/// One scored candidate pair.
#[derive(Debug, Clone)]
pub struct Link {
    pub left: usize,
    pub right: usize,
    pub gamma: Gamma,
    pub match_weight: f64,
    /// 1 for a deterministic link, else the model's probability.
    pub match_probability: f64,
    pub deterministic: Option<&'static str>,
}

impl Link {
    /// "same phone", or the comparisons that drove the score, strongest first.
    pub fn reason(&self, model: &FellegiSunter) -> String {
        let mut out = String::new();
        self.write_reason(model, &mut Vec::new(), &mut out);
        out
    }

    /// [`Self::reason`] into `out`, with `parts` as scratch space: the writer of
    /// `identity_links` calls it millions of times with the same buffers.
    pub fn write_reason(
        &self,
        model: &FellegiSunter,
        parts: &mut Vec<model::Contribution>,
        out: &mut String,
    ) {
        out.clear();
        if let Some(why) = self.deterministic {
            out.push_str(why);
            return;
        }
        model.contributions_into(&self.gamma, parts);
        parts.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
        for (k, c) in parts.iter().enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            out.push_str(c.level);
            out.push(' ');
            push_tenths(out, c.weight);
        }
    }
}

/// `weight` as `{:+.1}` writes it (ties may round the other way), without the float
/// formatter: `identity_links` holds a reason per candidate pair, millions at 400 k accounts.
fn push_tenths(out: &mut String, weight: f64) {
    let tenths = (weight.abs() * 10.0).round() as u64;
    out.push(if weight.is_sign_negative() { '-' } else { '+' });
    let mut digits = itoa::Buffer::new();
    out.push_str(digits.format(tenths / 10));
    out.push('.');
    out.push(char::from(b'0' + (tenths % 10) as u8));
}

fn cluster(
    accounts: &[Account],
    links: &[Link],
    model: &FellegiSunter,
    stats: &KeyStats,
    config: &IdentityConfig,
) -> Clustering {
    // Computed again rather than looked up: with interned keys a comparison costs less than
    // a map of every candidate pair would, and gives the same value as the pair's link.
    let probability = |x: usize, y: usize| -> f64 {
        let g = compare(&accounts[x.min(y)], &accounts[x.max(y)], stats);
        if deterministic_reason(&g).is_some() {
            1.0
        } else {
            model.match_probability(&g)
        }
    };
    let mut edges: Vec<&Link> = links
        .iter()
        .filter(|l| l.match_probability >= config.threshold)
        .collect();
    edges.sort_by(|a, b| {
        b.match_probability
            .total_cmp(&a.match_probability)
            .then(b.match_weight.total_cmp(&a.match_weight))
            .then((a.left, a.right).cmp(&(b.left, b.right)))
    });
    let mut groups = Merges::singletons(accounts.len());
    for link in edges {
        let (ci, cj) = (groups.group_of(link.left), groups.group_of(link.right));
        if ci == cj {
            continue;
        }
        let (a, b) = (groups.members(ci), groups.members(cj));
        let same_platform = a.iter().any(|&x| {
            b.iter()
                .any(|&y| accounts[x].platform == accounts[y].platform)
        });
        if config.one_account_per_platform && same_platform {
            groups.refuse("same platform");
            continue;
        }
        let cross: Vec<f64> = a
            .iter()
            .flat_map(|&x| b.iter().map(move |&y| (x, y)))
            .map(|(x, y)| probability(x, y))
            .collect();
        let average = cross.iter().sum::<f64>() / cross.len() as f64;
        if average < config.threshold {
            groups.refuse("weak average link");
            continue;
        }
        let how = match link.deterministic {
            Some(why) => why.to_string(),
            None => format!("p={:.3}", link.match_probability),
        };
        let step = format!(
            "{} ~ {}: {how}{}",
            accounts[link.left].key(),
            accounts[link.right].key(),
            if cross.len() > 1 {
                format!(", average link {average:.2} over {} pairs", cross.len())
            } else {
                String::new()
            }
        );
        groups.merge(ci.min(cj), ci.max(cj), step);
    }
    groups.finish(|x, y| Some(probability(x, y)))
}

/// A customer's id: stable while its first account (in platform:account order) stays in it.
pub fn customer_id(accounts: &[Account], members: &[usize]) -> String {
    let first = members
        .iter()
        .map(|&i| accounts[i].key())
        .min()
        .unwrap_or_default();
    format!("CU{}", &hex::encode(Sha256::digest(first.as_bytes()))[..12])
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SharedKeys {
    pub phones: usize,
    pub emails: usize,
    pub houses: usize,
    pub devices: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct IdentitySummary {
    pub accounts: usize,
    pub customers: usize,
    pub multi_platform_customers: usize,
    pub candidate_pairs: usize,
    pub deterministic_links: usize,
    pub probabilistic_links: usize,
    /// Links at or above the threshold that clustering refused, by reason.
    pub refused_merges: BTreeMap<String, usize>,
    pub shared_keys: SharedKeys,
    /// Prior that two random accounts are one person, and the share of candidates that are.
    pub match_prior: f64,
    pub candidate_match_share: f64,
    pub em_iterations: usize,
    pub seconds: f64,
    /// Where those seconds went.
    pub phase_seconds: IdentityPhases,
    /// The process's peak resident memory when the stage ended (MiB; Linux only).
    pub peak_memory_mib: Option<f64>,
}

/// Seconds of each phase of [`resolve_customers`].
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct IdentityPhases {
    /// Reading accounts and orders, interning keys, counting key holders.
    pub read: f64,
    /// Blocking and comparing the candidate pairs.
    pub compare: f64,
    /// EM and scoring.
    pub estimate: f64,
    pub cluster: f64,
    /// Writing the three tables.
    pub write: f64,
}

/// Runs identity resolution on the transaction's clean tables and writes the identity graph
/// (`identity_links`), the account → customer map (`customer_accounts`) and the estimated
/// model (`identity_parameters`).
pub fn resolve_customers(
    tx: &mut Transaction<'_>,
    config: &IdentityConfig,
    progress: &dyn Progress,
) -> Result<IdentitySummary, IdentityError> {
    let started = Instant::now();
    let mut phases = IdentityPhases::default();
    let mut lap = Instant::now();
    let mut time = |phase: &mut f64| {
        *phase = lap.elapsed().as_secs_f64();
        lap = Instant::now();
    };
    progress.start("identity", 4);
    let (accounts, keys) = read_accounts(tx)?;
    let stats = KeyStats::new(&accounts, &keys, config);
    drop(keys);
    time(&mut phases.read);
    progress.advance(1);

    let pairs = candidate_pairs(&accounts, &stats, config);
    let gammas: Vec<Gamma> = pairs
        .par_iter()
        .map(|&(i, j)| compare(&accounts[i], &accounts[j], &stats))
        .collect();
    let random: Vec<Gamma> = random_pairs(&accounts, config)
        .iter()
        .map(|&(i, j)| compare(&accounts[i], &accounts[j], &stats))
        .collect();
    time(&mut phases.compare);
    let seeds: Vec<Gamma> = gammas
        .iter()
        .filter(|g| deterministic_reason(g).is_some())
        .copied()
        .collect();
    let all_pairs = comparable_pairs(&accounts, config);
    let model = FellegiSunter::estimate(&random, &gammas, &seeds, all_pairs);
    progress.advance(1);

    drop(random);
    let links = scored_links(pairs, gammas, &model);
    time(&mut phases.estimate);
    let customers = cluster(&accounts, &links, &model, &stats, config);
    time(&mut phases.cluster);
    progress.advance(1);
    tables::write_tables(tx, &accounts, &links, &customers, &model, config)?;
    time(&mut phases.write);
    progress.advance(1);
    progress.finish();

    Ok(IdentitySummary {
        accounts: accounts.len(),
        customers: customers.members.len(),
        multi_platform_customers: customers.members.iter().filter(|m| m.len() > 1).count(),
        candidate_pairs: links.len(),
        deterministic_links: links.iter().filter(|l| l.deterministic.is_some()).count(),
        probabilistic_links: links
            .iter()
            .filter(|l| l.deterministic.is_none() && l.match_probability >= config.threshold)
            .count(),
        refused_merges: customers.refused.clone(),
        shared_keys: SharedKeys {
            phones: stats.shared_count(KeyKind::Phone),
            emails: stats.shared_count(KeyKind::Email),
            houses: stats.shared_count(KeyKind::House),
            devices: stats.shared_count(KeyKind::Other),
        },
        match_prior: model.prior,
        candidate_match_share: model.candidate_prior,
        em_iterations: model.iterations,
        seconds: started.elapsed().as_secs_f64(),
        phase_seconds: phases,
        peak_memory_mib: shopfuse_core::progress::peak_memory_mib(),
    })
}

/// How many account pairs could be the same person at all: every pair, or only pairs on
/// different platforms when a person holds one account per platform. EM's prior needs it.
fn comparable_pairs(accounts: &[Account], config: &IdentityConfig) -> f64 {
    let n = accounts.len() as f64;
    let mut per_platform: HashMap<&str, f64> = HashMap::new();
    for a in accounts {
        *per_platform.entry(a.platform.as_str()).or_default() += 1.0;
    }
    if config.one_account_per_platform {
        (n * n - per_platform.values().map(|k| k * k).sum::<f64>()) / 2.0
    } else {
        n * (n - 1.0) / 2.0
    }
}

/// Each candidate pair with its comparison vector, match weight and probability (1 for a
/// deterministic link).
/// Takes the pairs and their comparison vectors, which the links replace (at 400 k accounts
/// there are millions of each).
fn scored_links(
    pairs: Vec<(usize, usize)>,
    gammas: Vec<Gamma>,
    model: &FellegiSunter,
) -> Vec<Link> {
    pairs
        .into_iter()
        .zip(gammas)
        .map(|((left, right), g)| {
            let deterministic = deterministic_reason(&g);
            let match_weight = model.match_weight(&g);
            Link {
                left,
                right,
                gamma: g,
                match_weight,
                match_probability: if deterministic.is_some() {
                    1.0
                } else {
                    model::probability(match_weight)
                },
                deterministic,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One key table for every test (tests run on several threads; ids only grow).
    static KEYS: std::sync::LazyLock<std::sync::Mutex<KeyTable>> =
        std::sync::LazyLock::new(Default::default);

    fn key(text: &str) -> KeyId {
        KEYS.lock().unwrap().intern(text)
    }

    fn stats_of(accounts: &[Account], config: &IdentityConfig) -> KeyStats {
        KeyStats::new(accounts, &KEYS.lock().unwrap(), config)
    }

    fn account(platform: &str, id: &str, name: &str, phone: &str, house: &str) -> Account {
        Account {
            platform: platform.into(),
            account_id: id.into(),
            name: Some(key(&format!("name:{name}"))),
            name_tokens: vec![key(&format!("nametok:{name}"))],
            phones: (!phone.is_empty())
                .then(|| key(&format!("phone:{phone}")))
                .into_iter()
                .collect(),
            house: Some(key(&format!("house:{house}"))),
            street: Some(key(&format!("street:{house}"))),
            area: Some(key("area:x")),
            city: Some("beijing".into()),
            city_key: Some(key("beijing")),
            ..Default::default()
        }
    }

    #[test]
    fn a_family_phone_does_not_chain_two_people() {
        // Wang holds phone 1 on taobao and jd; Li's amazon account lists the same phone.
        let accounts = vec![
            account("taobao", "a", "wang", "1", "h1"),
            account("jd", "b", "wang", "1", "h1"),
            account("amazon", "c", "li", "1", "h2"),
        ];
        let config = IdentityConfig::default();
        let stats = stats_of(&accounts, &config);
        let same = compare(&accounts[0], &accounts[1], &stats);
        assert_eq!(deterministic_reason(&same), Some("same phone"));
        let family = compare(&accounts[0], &accounts[2], &stats);
        assert_eq!(deterministic_reason(&family), None);
    }

    #[test]
    fn a_phone_on_two_accounts_of_one_platform_is_shared() {
        let accounts = vec![
            account("taobao", "a", "wang", "9", "h1"),
            account("taobao", "b", "li", "9", "h2"),
            account("jd", "c", "wang", "9", "h3"),
        ];
        let stats = stats_of(&accounts, &IdentityConfig::default());
        assert!(stats.is_shared(key("phone:9")));
        // A shared phone is no evidence: the phone comparison is left out.
        let g = compare(&accounts[0], &accounts[2], &stats);
        assert_eq!(level_of(&g, Comparison::Phone), None);
        assert_eq!(deterministic_reason(&g), None);
    }

    #[test]
    fn a_home_stays_evidence_weighted_by_frequency_and_a_drop_point_does_not() {
        let config = IdentityConfig::default();
        // A home: three people's eight accounts, two of them on one platform.
        let mut accounts: Vec<Account> = ["wang", "wang", "wang", "li", "li", "li", "zhao", "zhao"]
            .iter()
            .zip([
                "taobao", "jd", "amazon", "taobao", "jd", "amazon", "taobao", "jd",
            ])
            .enumerate()
            .map(|(i, (name, platform))| account(platform, &format!("h{i}"), name, "", "home"))
            .collect();
        // A parcel station: eight accounts, eight names.
        accounts.extend((0..8).map(|i| {
            let platform = ["taobao", "jd"][i % 2];
            account(platform, &format!("s{i}"), &format!("n{i}"), "", "station")
        }));
        // A house only two accounts hold.
        accounts.push(account("taobao", "q1", "qian", "", "quiet"));
        accounts.push(account("jd", "q2", "qian", "", "quiet"));
        let stats = stats_of(&accounts, &config);
        assert!(!stats.is_shared(key("house:home")));
        assert!(stats.is_shared(key("house:station")));
        let model = FellegiSunter::estimate(&[], &[], &[], 1.0);
        let address_weight = |i: usize, j: usize| {
            let g = compare(&accounts[i], &accounts[j], &stats);
            assert_eq!(level_of(&g, Comparison::Address), Some(0));
            model
                .contributions(&g)
                .into_iter()
                .find(|c| c.comparison == Comparison::Address)
                .map(|c| c.weight)
                .expect("address compared")
        };
        // Same house counts at the home, less than at a house two accounts hold.
        let (home, quiet) = (address_weight(0, 1), address_weight(16, 17));
        assert!(home > 0.0 && home < quiet, "home {home}, quiet {quiet}");
        let g = compare(&accounts[8], &accounts[9], &stats);
        assert_eq!(level_of(&g, Comparison::Address), None);
    }

    #[test]
    fn a_brushing_device_is_shared_by_its_burst_of_new_accounts_not_by_a_count() {
        // Platforms where people keep several accounts: two on one platform prove nothing.
        let config = IdentityConfig {
            one_account_per_platform: false,
            ..IdentityConfig::default()
        };
        let day = 24 * 3600 * 1_000_000i64;
        let with_device = |mut a: Account, device: &str, registered_day: i64| {
            a.devices = vec![key(device)];
            a.registered_at = Some(registered_day * day);
            a
        };
        let accounts = vec![
            // A ring: four fresh accounts, four names, registered within five days.
            with_device(account("taobao", "r1", "s1", "", "r1"), "device:ring", 100),
            with_device(account("taobao", "r2", "s2", "", "r2"), "device:ring", 101),
            with_device(account("taobao", "r3", "s3", "", "r3"), "device:ring", 103),
            with_device(account("taobao", "r4", "s4", "", "r4"), "device:ring", 105),
            // A person's laptop: four accounts a year apart, one name.
            with_device(account("taobao", "p1", "zhou", "", "p"), "device:laptop", 0),
            with_device(
                account("taobao", "p2", "zhou", "", "p"),
                "device:laptop",
                365,
            ),
            with_device(account("jd", "p3", "zhou", "", "p"), "device:laptop", 366),
            with_device(
                account("amazon", "p4", "zhou", "", "p"),
                "device:laptop",
                367,
            ),
        ];
        let stats = stats_of(&accounts, &config);
        assert!(stats.is_shared(key("device:ring")));
        assert!(!stats.is_shared(key("device:laptop")));
    }

    #[test]
    fn average_linkage_refuses_a_group_that_only_one_pair_joins() {
        let accounts = vec![
            account("taobao", "a", "wang", "1", "h1"),
            account("jd", "b", "wang", "1", "h1"),
            account("amazon", "c", "li", "", "h9"),
        ];
        let config = IdentityConfig::default();
        let stats = stats_of(&accounts, &config);
        let model = FellegiSunter::estimate(&[], &[], &[], 1.0);
        // b ~ c scored high by mistake; a ~ c is what the model says (different people).
        let links = vec![
            Link {
                left: 0,
                right: 1,
                gamma: Gamma::default(),
                match_weight: 20.0,
                match_probability: 1.0,
                deterministic: Some("same phone"),
            },
            Link {
                left: 1,
                right: 2,
                gamma: Gamma::default(),
                match_weight: 10.0,
                match_probability: 0.95,
                deterministic: None,
            },
            Link {
                left: 0,
                right: 2,
                gamma: Gamma::default(),
                match_weight: -10.0,
                match_probability: 0.01,
                deterministic: None,
            },
        ];
        let customers = cluster(&accounts, &links, &model, &stats, &config);
        assert_eq!(customers.members.len(), 2);
        assert_eq!(customers.refused.get("weak average link"), Some(&1));
        assert_eq!(customers.cluster_of[0], customers.cluster_of[1]);
    }
}
