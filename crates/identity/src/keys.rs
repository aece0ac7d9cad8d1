//! Key values as numbers. Every pseudonym and fragment an account carries (`name:…`,
//! `phone:…`, `house:…`, a device id, …) is interned once into a [`KeyId`], so that comparing
//! two accounts, counting a key's holders and blocking compare integers instead of 38-byte
//! strings: at 400 k accounts and 7 M candidate pairs that is most of the stage's time.

use std::collections::HashMap;

use shopfuse_core::config::IdentityConfig;

use crate::Account;

/// Index of a key value in the run's [`KeyTable`].
pub type KeyId = u32;

/// What a key value is, read off its pseudonym's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Name,
    Phone,
    Email,
    House,
    /// Devices, fragments and anything else.
    Other,
}

impl KeyKind {
    fn of(text: &str) -> Self {
        match text.split_once(':').map(|(prefix, _)| prefix) {
            Some("name") => KeyKind::Name,
            Some("phone") => KeyKind::Phone,
            Some("email") => KeyKind::Email,
            Some("house") => KeyKind::House,
            _ => KeyKind::Other,
        }
    }
}

/// The distinct key values of one run, each with its kind.
#[derive(Debug, Default)]
pub struct KeyTable {
    /// Hashed with foldhash (seeded per process) rather than SipHash: interning is one lookup
    /// per value read, millions per run.
    ids: HashMap<String, KeyId, foldhash::fast::RandomState>,
    kinds: Vec<KeyKind>,
}

impl KeyTable {
    pub fn intern(&mut self, text: &str) -> KeyId {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        // Blocking packs two ids and a tag into 64 bits, hence 31 bits per id.
        assert!(self.kinds.len() < 1 << 31, "fewer than 2^31 key values");
        let id = self.kinds.len() as KeyId;
        self.ids.insert(text.to_string(), id);
        self.kinds.push(KeyKind::of(text));
        id
    }

    pub fn len(&self) -> usize {
        self.kinds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    pub fn kind(&self, id: KeyId) -> KeyKind {
        self.kinds[id as usize]
    }

    /// Frees the text → id map once every account is read; kinds stay.
    pub fn seal(&mut self) {
        self.ids = HashMap::default();
    }
}

/// How many accounts hold each key value, and which values several people hold.
pub struct KeyStats {
    holders: Vec<u32>,
    shared: Vec<bool>,
    kinds: Vec<KeyKind>,
    accounts: usize,
}

impl KeyStats {
    pub fn new(accounts: &[Account], keys: &KeyTable, config: &IdentityConfig) -> Self {
        let holdings = Holding::all(accounts);
        let mut holders = vec![0u32; keys.len()];
        let mut shared = vec![false; keys.len()];
        for run in holdings.chunk_by(|x, y| x.key == y.key) {
            let key = run[0].key;
            holders[key as usize] = run.len() as u32;
            shared[key as usize] = match keys.kind(key) {
                // Names are compared with their frequency, never treated as shared keys.
                KeyKind::Name => false,
                KeyKind::House => is_drop_point(run.len(), distinct_names(run), config),
                _ => is_shared_identifier(run, config),
            };
        }
        Self {
            holders,
            shared,
            kinds: keys.kinds.clone(),
            accounts: accounts.len().max(1),
        }
    }

    pub fn is_shared(&self, key: KeyId) -> bool {
        self.shared[key as usize]
    }

    /// Shared values of one kind.
    pub fn shared_count(&self, kind: KeyKind) -> usize {
        self.shared
            .iter()
            .zip(&self.kinds)
            .filter(|(shared, k)| **shared && **k == kind)
            .count()
    }

    /// Share of the accounts holding `key` (a key no account holds counts as one).
    pub fn frequency(&self, key: KeyId) -> f64 {
        self.holders[key as usize].max(1) as f64 / self.accounts as f64
    }
}

/// One account holding one key value, with what tells a shared key from a personal one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Holding {
    key: KeyId,
    platform: u32,
    name: Option<KeyId>,
    registered_at: Option<i64>,
}

impl Holding {
    /// Every (key, account) holding once, sorted by key then platform.
    fn all(accounts: &[Account]) -> Vec<Holding> {
        let platform_of = platform_indexes(accounts);
        let mut held: Vec<Holding> = Vec::new();
        for (a, &platform) in accounts.iter().zip(&platform_of) {
            let mut own: Vec<KeyId> = Vec::new();
            own.extend(&a.phones);
            own.extend(a.email);
            own.extend(a.house);
            own.extend(&a.devices);
            own.extend(a.name);
            own.sort_unstable();
            own.dedup();
            held.extend(own.into_iter().map(|key| Holding {
                key,
                platform,
                name: a.name,
                registered_at: a.registered_at,
            }));
        }
        held.sort_unstable();
        held
    }
}

fn distinct_names(run: &[Holding]) -> usize {
    let mut names: Vec<KeyId> = run.iter().filter_map(|h| h.name).collect();
    names.sort_unstable();
    names.dedup();
    names.len()
}

/// Whether a phone, e-mail or device is held by several people: more accounts than
/// `max_key_accounts`, two accounts of one platform (a family phone, when a person keeps one
/// account per platform), or a burst of fresh accounts under different names (a brushing
/// ring's device: its throwaway accounts are registered within days of each other, which a
/// person's own accounts on several platforms rarely are, and never under three names).
fn is_shared_identifier(run: &[Holding], config: &IdentityConfig) -> bool {
    run.len() > config.max_key_accounts
        || (config.one_account_per_platform
            && run.windows(2).any(|w| w[0].platform == w[1].platform))
        || is_registration_burst(run)
}

/// Accounts registered within this long of each other count as one burst.
const BURST_WINDOW_US: i64 = 7 * 24 * 3600 * 1_000_000;
/// A burst is at least this many accounts under at least this many names.
const BURST_ACCOUNTS: usize = 3;

fn is_registration_burst(run: &[Holding]) -> bool {
    if run.len() < BURST_ACCOUNTS {
        return false;
    }
    let mut registered: Vec<(i64, Option<KeyId>)> = run
        .iter()
        .filter_map(|h| h.registered_at.map(|t| (t, h.name)))
        .collect();
    registered.sort_unstable();
    registered.windows(BURST_ACCOUNTS).any(|w| {
        let mut names: Vec<Option<KeyId>> = w.iter().map(|&(_, name)| name).collect();
        names.sort_unstable();
        names.dedup();
        w[BURST_ACCOUNTS - 1].0 - w[0].0 <= BURST_WINDOW_US && names.len() == BURST_ACCOUNTS
    })
}

/// Each account's platform as a small number.
pub fn platform_indexes(accounts: &[Account]) -> Vec<u32> {
    let mut index: HashMap<&str, u32> = HashMap::new();
    accounts
        .iter()
        .map(|a| {
            let next = index.len() as u32;
            *index.entry(a.platform.as_str()).or_insert(next)
        })
        .collect()
}

/// Whether a house held by `accounts` accounts under `names` distinct names is a drop point
/// (a parcel station, a shop, a dormitory's front desk) rather than a home. Not a count
/// alone: in a large project a home is shared by a family and by unrelated namesakes of the
/// same building, and its weight already falls with its frequency; a drop point is one where
/// nearly every account carries a different name.
pub fn is_drop_point(accounts: usize, names: usize, config: &IdentityConfig) -> bool {
    accounts > config.max_key_accounts && names * 4 >= accounts * 3
}
