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
    ids: HashMap<String, KeyId>,
    kinds: Vec<KeyKind>,
}

impl KeyTable {
    pub fn intern(&mut self, text: &str) -> KeyId {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = KeyId::try_from(self.kinds.len()).expect("fewer than 4 billion key values");
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
        self.ids = HashMap::new();
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
        let platform_of = platform_indexes(accounts);
        // (key, platform) once per account holding it, and (house, name) once per account.
        let mut held: Vec<(KeyId, u32)> = Vec::new();
        let mut names_at_house: Vec<(KeyId, KeyId)> = Vec::new();
        for (a, &platform) in accounts.iter().zip(&platform_of) {
            let mut own: Vec<KeyId> = Vec::new();
            own.extend(&a.phones);
            own.extend(a.email);
            own.extend(a.house);
            own.extend(&a.devices);
            own.extend(a.name);
            own.sort_unstable();
            own.dedup();
            held.extend(own.into_iter().map(|k| (k, platform)));
            if let (Some(house), Some(name)) = (a.house, a.name) {
                names_at_house.push((house, name));
            }
        }
        held.sort_unstable();
        names_at_house.sort_unstable();
        names_at_house.dedup();
        let mut holders = vec![0u32; keys.len()];
        let mut twice_on_a_platform = vec![false; keys.len()];
        for run in held.chunk_by(|x, y| x.0 == y.0) {
            holders[run[0].0 as usize] = run.len() as u32;
            twice_on_a_platform[run[0].0 as usize] = run.windows(2).any(|w| w[0].1 == w[1].1);
        }
        let mut names = vec![0usize; keys.len()];
        for run in names_at_house.chunk_by(|x, y| x.0 == y.0) {
            names[run[0].0 as usize] = run.len();
        }
        let shared = (0..keys.len())
            .map(|k| {
                let count = holders[k] as usize;
                match keys.kind(k as KeyId) {
                    // Names are compared with their frequency, never treated as shared keys.
                    KeyKind::Name => false,
                    KeyKind::House => is_drop_point(count, names[k], config),
                    _ => {
                        count > config.max_key_accounts
                            || (config.one_account_per_platform && twice_on_a_platform[k])
                    }
                }
            })
            .collect();
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
