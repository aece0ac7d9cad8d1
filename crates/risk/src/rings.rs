//! Rings: groups of entities that share devices, IPs or addresses and buy the same listings
//! together.
//!
//! Two steps, so that the search scales with the suspicious part of the graph and not with
//! the whole of it:
//! 1. **Components of shared keys**: entities are joined when they used one device, IP or
//!    address (a key used by more than `max_key_members` entities is a public one and joins
//!    nobody). In the fused view an entity is a unified customer, so one person's accounts
//!    on four platforms sharing a phone are one row and never a ring; only keys shared by
//!    *different people* join anything.
//! 2. **Dense blocks inside each component** ([`crate::fraudar`]): rows are the component's
//!    entities, columns the keys they share and the listings they bought, each column
//!    weighted by its degree in the *whole* book (a bestseller everyone buys weighs little,
//!    which is what makes camouflage useless). Each block of at least `ring_min_members`
//!    entities and `ring_min_density` is a ring — when one device or address of it is used
//!    by at least `ring_min_members` of its members (a **hub**: the phone the brushing
//!    accounts are run from). Density alone also finds chains of honest customers who share
//!    a key pairwise — neighbours, a shared flat, two strangers behind one carrier-NAT IP —
//!    glued together by bestsellers; and IPs alone never make a ring, since carrier NAT,
//!    mobile networks and public Wi-Fi put strangers behind one IP (a shared IP still adds to
//!    a ring's density).
//!
//! Components are searched in parallel.

use std::collections::{BTreeSet, HashMap};

use rayon::prelude::*;
use shopfuse_core::config::RiskConfig;

use crate::fraudar::{dense_blocks, Bipartite, BlockLimits};
use crate::order_book::{KeyKind, OrderBook};

/// One ring found.
#[derive(Debug, Clone)]
pub struct Ring {
    /// `RG` + a hash of its sorted member accounts: stable across runs.
    pub ring_id: String,
    /// Member entities.
    pub entities: Vec<u32>,
    /// Keys of the block (devices, IPs, addresses).
    pub keys: Vec<u32>,
    /// Listings of the block.
    pub listings: Vec<u32>,
    /// FRAUDAR density of the block.
    pub density: f64,
}

/// Union–find with path halving.
struct Components(Vec<u32>);

impl Components {
    fn new(n: usize) -> Self {
        Self((0..n as u32).collect())
    }
    fn find(&mut self, mut x: u32) -> u32 {
        while self.0[x as usize] != x {
            let parent = self.0[self.0[x as usize] as usize];
            self.0[x as usize] = parent;
            x = parent;
        }
        x
    }
    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[ra.max(rb) as usize] = ra.min(rb);
        }
    }
}

/// The entity × column graph of a book: which entities used each key (device, IP, address)
/// and bought each listing. Columns are keys first, then `keys + listing`. Built once per
/// assessment: the ring search reads it, and a key's degree is how many entities share it.
#[derive(Debug, Clone)]
pub struct Incidences {
    /// Distinct (column, entity) pairs, sorted by column.
    pub pairs: Vec<(u32, u32)>,
    /// Distinct entities per column.
    pub degree: Vec<u32>,
    /// Columns below this are keys.
    pub keys: u32,
}

impl Incidences {
    pub fn of(book: &OrderBook) -> Self {
        let keys = book.keys.len() as u32;
        let mut pairs: Vec<(u32, u32)> = Vec::with_capacity(book.orders.len() * 4);
        for o in &book.orders {
            let e = book.entity_of(o.account);
            for k in o.keys.iter().flatten() {
                pairs.push((*k, e));
            }
            pairs.push((keys + o.listing, e));
        }
        pairs.par_sort_unstable();
        pairs.dedup();
        let mut degree = vec![0u32; book.keys.len() + book.listings.len()];
        for &(c, _) in &pairs {
            degree[c as usize] += 1;
        }
        Self {
            pairs,
            degree,
            keys,
        }
    }

    /// Entities sharing key `k`.
    pub fn key_sharing(&self, k: u32) -> u32 {
        self.degree[k as usize]
    }
}

/// Finds the book's rings.
pub fn find_rings(book: &OrderBook, config: &RiskConfig) -> Vec<Ring> {
    find_rings_in(book, &Incidences::of(book), config)
}

/// Finds the rings of a book whose incidences are already built.
pub fn find_rings_in(book: &OrderBook, graph: &Incidences, config: &RiskConfig) -> Vec<Ring> {
    let (pairs, degree, keys) = (&graph.pairs, &graph.degree, graph.keys);
    let linking =
        |c: u32| c < keys && (2..=config.max_key_members as u32).contains(&degree[c as usize]);
    let mut components = Components::new(book.entities.len());
    let mut i = 0;
    while i < pairs.len() {
        let c = pairs[i].0;
        let mut j = i;
        while j < pairs.len() && pairs[j].0 == c {
            j += 1;
        }
        if linking(c) {
            for p in &pairs[i + 1..j] {
                components.union(pairs[i].1, p.1);
            }
        }
        i = j;
    }
    let mut members: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut linked = vec![false; book.entities.len()];
    for &(c, e) in pairs {
        if linking(c) {
            linked[e as usize] = true;
        }
    }
    for e in 0..book.entities.len() as u32 {
        if linked[e as usize] {
            members.entry(components.find(e)).or_default().push(e);
        }
    }
    let mut groups: Vec<Vec<u32>> = members
        .into_values()
        .filter(|m| m.len() >= config.ring_min_members)
        .collect();
    groups.sort();
    let by_entity = columns_by_entity(pairs, book.entities.len());
    let weights: Vec<f64> = degree
        .iter()
        .map(|&d| 1.0 / (d as f64 + 5.0).ln())
        .collect();
    let limits = BlockLimits {
        max_blocks: config.max_blocks_per_component,
        min_rows: config.ring_min_members,
        min_density: config.ring_min_density,
    };
    let hub_key = |c: u32| c < keys && book.key_kinds[c as usize] != KeyKind::Ip;
    let mut rings: Vec<Ring> = groups
        .par_iter()
        .flat_map_iter(|group| {
            let columns = Columns {
                by_entity: &by_entity,
                weights: &weights,
                keys,
                linking: &linking,
                hub_key: &hub_key,
            };
            component_rings(group, &columns, limits)
        })
        .collect();
    for ring in &mut rings {
        ring.ring_id = ring_id(book, &ring.entities);
    }
    rings.sort_by(|a, b| {
        b.density
            .total_cmp(&a.density)
            .then(a.ring_id.cmp(&b.ring_id))
    });
    rings
}

/// Each entity's columns (`pairs` is sorted by column; the result by entity).
fn columns_by_entity(pairs: &[(u32, u32)], entities: usize) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); entities];
    for &(c, e) in pairs {
        out[e as usize].push(c);
    }
    out
}

/// The book's columns as the block search sees them.
struct Columns<'a> {
    /// Each entity's columns.
    by_entity: &'a [Vec<u32>],
    /// FRAUDAR's weight of each column, from its degree in the whole book.
    weights: &'a [f64],
    /// Columns below this are keys, the rest listings.
    keys: u32,
    /// A key that joins entities (shared, not public).
    linking: &'a (dyn Fn(u32) -> bool + Sync),
    /// A key that can be a ring's hub (a device or an address).
    hub_key: &'a (dyn Fn(u32) -> bool + Sync),
}

/// The rings of one component: its dense blocks that have a hub. Columns are its linking
/// keys and every listing its members bought (a listing only one member bought cannot be in
/// a block of several rows, but it keeps that member's density honest).
fn component_rings(group: &[u32], columns: &Columns<'_>, limits: BlockLimits) -> Vec<Ring> {
    let Columns {
        by_entity,
        weights,
        keys,
        linking,
        hub_key,
    } = *columns;
    let mut local: HashMap<u32, u32> = HashMap::new();
    let mut global: Vec<u32> = Vec::new();
    let mut edges = Vec::new();
    for (row, &e) in group.iter().enumerate() {
        for &c in &by_entity[e as usize] {
            if c < keys && !linking(c) {
                continue;
            }
            let next = global.len() as u32;
            let col = *local.entry(c).or_insert_with(|| {
                global.push(c);
                next
            });
            edges.push((row as u32, col));
        }
    }
    let graph = Bipartite::from_edges(group.len(), global.len(), &edges);
    let local_weights: Vec<f64> = global.iter().map(|&c| weights[c as usize]).collect();
    dense_blocks(&graph, &local_weights, limits)
        .into_iter()
        .filter(|b| {
            let mut members: HashMap<u32, usize> = HashMap::new();
            for &r in &b.rows {
                for &c in graph.row_cols(r as usize) {
                    if hub_key(global[c as usize]) && b.cols.binary_search(&c).is_ok() {
                        *members.entry(c).or_default() += 1;
                    }
                }
            }
            members.values().any(|&n| n >= limits.min_rows)
        })
        .map(|b| {
            let cols: Vec<u32> = b.cols.iter().map(|&c| global[c as usize]).collect();
            Ring {
                ring_id: String::new(),
                entities: b.rows.iter().map(|&r| group[r as usize]).collect(),
                keys: cols.iter().copied().filter(|&c| c < keys).collect(),
                listings: cols
                    .iter()
                    .filter(|&&c| c >= keys)
                    .map(|&c| c - keys)
                    .collect(),
                density: b.density,
            }
        })
        .collect()
}

/// `RG` + FNV-1a of the sorted `platform:account` names of the ring's accounts.
fn ring_id(book: &OrderBook, entities: &[u32]) -> String {
    let members: BTreeSet<u32> = entities.iter().copied().collect();
    let mut names: Vec<String> = book
        .accounts
        .iter()
        .filter(|a| members.contains(&a.entity))
        .map(|a| format!("{}:{}", book.platform_name(a.platform), a.account_id))
        .collect();
    names.sort();
    format!(
        "RG{:012x}",
        crate::order_book::text_hash(&names.join("|")) >> 16
    )
}

/// Entity → (ring index, density) of the densest ring it is in.
pub fn ring_of_entity(rings: &[Ring], entities: usize) -> Vec<Option<(usize, f64)>> {
    let mut out: Vec<Option<(usize, f64)>> = vec![None; entities];
    for (i, r) in rings.iter().enumerate() {
        for &e in &r.entities {
            let slot = &mut out[e as usize];
            if slot.is_none_or(|(_, d)| d < r.density) {
                *slot = Some((i, r.density));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order_book::OrderInput;

    fn order<'a>(
        platform: &'a str,
        account: &'a str,
        listing: &'a str,
        device: &'a str,
    ) -> OrderInput<'a> {
        OrderInput {
            platform,
            order_id: "o",
            account_id: account,
            listing_id: listing,
            device: Some(device),
            ..Default::default()
        }
    }

    #[test]
    fn a_ring_across_platforms_is_found_and_one_persons_accounts_are_not() {
        let mut book = OrderBook::default();
        // One honest person: three accounts, one customer, one phone.
        for (p, a) in [("taobao", "h1"), ("jd", "h2"), ("amazon", "h3")] {
            book.add_account(p, a, Some("CU-honest"), None);
            book.add_order(&order(p, a, "popular", "dev-home"));
        }
        // A ring: five people on two devices buying one listing on each platform.
        let ring = [
            ("taobao", "r1"),
            ("taobao", "r2"),
            ("jd", "r3"),
            ("jd", "r4"),
            ("taobao", "r5"),
        ];
        for (i, (p, a)) in ring.iter().enumerate() {
            let device = if i % 2 == 0 { "dev-a" } else { "dev-b" };
            book.add_order(&order(p, a, &format!("target-{p}"), device));
            book.add_order(&order(p, a, &format!("target-{p}"), "dev-a"));
        }
        // Buyers of the popular listing, each alone.
        for i in 0..30 {
            book.add_order(&order(
                "taobao",
                &format!("b{i}"),
                "popular",
                &format!("dev-{i}"),
            ));
        }
        let rings = find_rings(&book, &RiskConfig::default());
        assert_eq!(rings.len(), 1, "{rings:?}");
        let names: Vec<&str> = rings[0]
            .entities
            .iter()
            .map(|&e| book.entities.names[e as usize].as_str())
            .collect();
        assert_eq!(
            names,
            ["taobao:r1", "taobao:r2", "jd:r3", "jd:r4", "taobao:r5"]
        );
        assert!(rings[0].ring_id.starts_with("RG"));
    }

    #[test]
    fn strangers_behind_one_ip_are_no_ring() {
        let mut book = OrderBook::default();
        for i in 0..6 {
            book.add_order(&OrderInput {
                platform: "jd",
                order_id: "o",
                account_id: &format!("a{i}"),
                listing_id: "l",
                device: Some(&format!("dev-{i}")),
                ip: Some("10.0.0.1"),
                ..Default::default()
            });
        }
        assert!(find_rings(&book, &RiskConfig::default()).is_empty());
    }

    #[test]
    fn a_public_key_joins_nobody() {
        let mut book = OrderBook::default();
        for i in 0..50 {
            book.add_order(&order(
                "jd",
                &format!("a{i}"),
                &format!("l{i}"),
                "cafe-wifi",
            ));
        }
        let config = RiskConfig {
            max_key_members: 40,
            ..Default::default()
        };
        assert!(find_rings(&book, &config).is_empty());
    }
}
