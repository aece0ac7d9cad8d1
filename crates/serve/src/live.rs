//! Events the server accepted that the served version does not hold yet ([`LiveEvents`]),
//! and how they move a customer's recommendations at once ([`FoldIn`]).
//!
//! Vocabulary:
//! - a **live event** is in the event log but not in the committed tables. When a run
//!   commits, the events its ingest read (the first `rows_read` lines of each segment, as
//!   the manifest records) stop being live: the tables hold them now, so nothing is counted
//!   twice.
//! - **fold-in** scores a customer's history — the committed interactions plus the live
//!   events — with item-kNN (cosine between items' columns of the committed interaction
//!   matrix), and blends that with the run's hybrid list, each scaled to a maximum of 1.
//!   Only that customer is scored; nothing is retrained. Why item-kNN: its neighbour lists
//!   are already what the trained model's reasons quote, it scores a new history with one
//!   pass over that history's neighbours, and a brand-new view counts as soon as it is in.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use shopfuse_core::config::{RecsConfig, RecsExclusion};
use shopfuse_core::event_log::EVENT_SOURCE_PREFIX;
use shopfuse_core::Manifest;
use shopfuse_learn::recs::models::{ItemKnn, TrainMatrix};
use shopfuse_learn::recs::Action;

use crate::event_log::StoredEvent;
use crate::index::{Customer, Recommendation, ServeIndex};

/// An accepted event, as the overlay keeps it.
#[derive(Debug, Clone)]
pub struct LiveEvent {
    pub event_id: String,
    pub platform: String,
    pub account_id: String,
    pub listing_id: String,
    pub action: Action,
    /// Microseconds since the epoch, UTC.
    pub at: i64,
    pub segment: Arc<str>,
    pub line: u64,
    /// The golden product's position in the served index (its fold-in item), resolved
    /// again whenever a new version is served.
    pub item: Option<u32>,
}

impl LiveEvent {
    /// `None` for a logged line whose type or time does not parse (ingest quarantines it).
    pub fn from_stored(s: StoredEvent) -> Option<Self> {
        let action = Action::parse(&s.event.event_type)?;
        let at = chrono::DateTime::parse_from_rfc3339(&s.event.occurred_at)
            .ok()?
            .timestamp_micros();
        Some(LiveEvent {
            event_id: s.event.event_id,
            platform: s.platform,
            account_id: s.event.account_id,
            listing_id: s.event.listing_id,
            action,
            at,
            segment: s.segment,
            line: s.line,
            item: None,
        })
    }
}

/// The overlay: live events by (platform, account id), and every event id in the log.
#[derive(Debug, Default)]
pub struct LiveEvents {
    by_account: HashMap<(String, String), Vec<LiveEvent>>,
    /// (platform, event id) of every event in the log, folded or not: a repeat is reported
    /// as a duplicate instead of being stored twice.
    ids: HashSet<(String, String)>,
    live: usize,
}

impl LiveEvents {
    /// The overlay of a recovered log, as of `manifest` (whose index is `index`).
    pub fn from_log(stored: Vec<StoredEvent>, manifest: &Manifest, index: &ServeIndex) -> Self {
        let mut overlay = LiveEvents::default();
        for s in stored {
            overlay
                .ids
                .insert((s.platform.clone(), s.event.event_id.clone()));
            if let Some(event) = LiveEvent::from_stored(s) {
                overlay.push(event);
            }
        }
        overlay.fold_out(manifest, index);
        overlay
    }

    fn push(&mut self, event: LiveEvent) {
        self.live += 1;
        self.by_account
            .entry((event.platform.clone(), event.account_id.clone()))
            .or_default()
            .push(event);
    }

    /// Drops the events `manifest`'s version has ingested, and points the others at the
    /// items of `index` (that version's).
    pub fn fold_out(&mut self, manifest: &Manifest, index: &ServeIndex) {
        let folded = |e: &LiveEvent| {
            manifest
                .ingested
                .get(&format!("{EVENT_SOURCE_PREFIX}{}", e.platform))
                .and_then(|files| files.get(&*e.segment))
                .is_some_and(|f| e.line <= f.rows_read)
        };
        for events in self.by_account.values_mut() {
            events.retain(|e| !folded(e));
            for e in events.iter_mut() {
                e.item = index
                    .product_of_listing(&e.platform, &e.listing_id)
                    .and_then(|g| index.item_of(g));
            }
        }
        self.by_account.retain(|_, events| !events.is_empty());
        self.live = self.by_account.values().map(Vec::len).sum();
    }

    /// Claims `(platform, event_id)`; false when the log already has it.
    pub fn reserve(&mut self, platform: &str, event_id: &str) -> bool {
        self.ids
            .insert((platform.to_string(), event_id.to_string()))
    }

    /// Gives back claims whose batch could not be written.
    pub fn release(&mut self, claimed: &[(String, String)]) {
        for id in claimed {
            self.ids.remove(id);
        }
    }

    pub fn add(&mut self, events: Vec<LiveEvent>) {
        for event in events {
            self.push(event);
        }
    }

    /// The live events of the accounts given, oldest first.
    pub fn of_accounts<'a>(
        &self,
        accounts: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Vec<LiveEvent> {
        let mut out: Vec<LiveEvent> = accounts
            .filter_map(|(p, a)| self.by_account.get(&(p.to_string(), a.to_string())))
            .flatten()
            .cloned()
            .collect();
        out.sort_by_key(|e| (e.at, e.line));
        out
    }

    /// Forgets the events and event ids of erased accounts.
    pub fn forget_accounts(&mut self, accounts: &HashSet<(String, String)>) {
        for account in accounts {
            if let Some(events) = self.by_account.remove(account) {
                for e in events {
                    self.ids.remove(&(e.platform, e.event_id));
                }
            }
        }
        self.live = self.by_account.values().map(Vec::len).sum();
    }

    /// Calls `f` with every live event of the accounts given, without copying them.
    pub fn for_each_of_accounts<'s, 'a>(
        &'s self,
        accounts: impl Iterator<Item = (&'a str, &'a str)>,
        mut f: impl FnMut(&'s LiveEvent),
    ) {
        let mut key = (String::new(), String::new());
        for (platform, account) in accounts {
            key.0.clear();
            key.0.push_str(platform);
            key.1.clear();
            key.1.push_str(account);
            self.by_account
                .get(&key)
                .into_iter()
                .flatten()
                .for_each(&mut f);
        }
    }

    /// Events in the overlay.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Event ids the log holds.
    pub fn logged(&self) -> usize {
        self.ids.len()
    }
}

/// Item-kNN over the committed interactions, for scoring one customer's new history.
pub struct FoldIn {
    knn: ItemKnn,
    weights: [f64; 4],
    exclude_bought: bool,
}

impl std::fmt::Debug for FoldIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FoldIn").finish_non_exhaustive()
    }
}

/// How much of one item a history holds: the summed event weights, and the strongest event
/// (for the reason) with the platform it happened on when it is live.
#[derive(Debug, Clone, Default)]
pub struct HistoryCell {
    pub weight: f64,
    pub strongest: Option<(Action, Option<String>)>,
    pub bought: bool,
}

impl HistoryCell {
    fn saw(&mut self, action: Action, weight: f64, live_on: Option<&str>) {
        self.weight += weight;
        self.bought |= action == Action::Purchase;
        if self.strongest.as_ref().is_none_or(|(a, _)| action >= *a) {
            self.strongest = Some((action, live_on.map(str::to_string)));
        }
    }
}

impl FoldIn {
    /// From (customer, item, raw weight) cells of the committed interactions.
    pub fn fit(
        n_customers: usize,
        n_items: usize,
        cells: &mut [(u32, u32, f64)],
        config: &RecsConfig,
    ) -> Self {
        let x = TrainMatrix::from_cells(n_customers, n_items, cells);
        let xt = x.transpose();
        FoldIn {
            knn: ItemKnn::fit(&x, &xt, config.neighbours),
            weights: [
                Action::View,
                Action::Favorite,
                Action::Cart,
                Action::Purchase,
            ]
            .map(|a| a.weight(config)),
            exclude_bought: config.exclude != RecsExclusion::None,
        }
    }

    pub fn weight(&self, action: Action) -> f64 {
        self.weights[action as usize]
    }

    pub fn excludes_bought(&self) -> bool {
        self.exclude_bought
    }

    /// Item-kNN scores for every item from `history` (item → cell), scaled to a maximum of
    /// 1, and for each item the history item that adds most to its score (what its reason
    /// quotes): one pass over the history items' neighbour lists.
    pub fn score(&self, history: &HashMap<u32, HistoryCell>, n_items: usize) -> Scored {
        let mut scores = vec![0f32; n_items];
        let mut best: Vec<(f32, Option<u32>)> = vec![(0.0, None); n_items];
        let mut items: Vec<(&u32, &HistoryCell)> = history.iter().collect();
        items.sort_unstable_by_key(|(j, _)| **j);
        for (&j, cell) in items {
            let x = (1.0 + cell.weight).ln() as f32;
            for &(i, s) in self.knn.neighbours(j as usize) {
                let part = x * s;
                scores[i as usize] += part;
                if part > best[i as usize].0 {
                    best[i as usize] = (part, Some(j));
                }
            }
        }
        shopfuse_learn::recs::models::scale_to_unit_max(&mut scores);
        Scored {
            scores,
            supporter: best.into_iter().map(|(_, j)| j).collect(),
        }
    }
}

/// Fold-in scores and, per item, the history item that supports it most.
pub struct Scored {
    pub scores: Vec<f32>,
    pub supporter: Vec<Option<u32>>,
}

/// Share of the blend that the live item-kNN scores get; the run's hybrid list gets the rest.
pub const LIVE_SHARE: f32 = 0.5;

/// The customer's recommendations with `live` (their not-yet-folded events) folded in, best
/// first; the stored list, filtered, when there is nothing to fold.
pub fn recommend_with_live(
    index: &ServeIndex,
    customer: &Customer,
    live: &LiveEvents,
    k: usize,
    excluded: &HashSet<&str>,
) -> Vec<Recommendation> {
    let stored = index.recommendations(&customer.customer_id);
    let mut live_history: Vec<(u32, Action, &str)> = Vec::new();
    live.for_each_of_accounts(accounts_of(customer), |e| {
        if let Some(item) = e.item {
            live_history.push((item, e.action, e.platform.as_str()));
        }
    });
    let Some(fold) = index.fold_in.as_ref().filter(|_| !live_history.is_empty()) else {
        return stored
            .iter()
            .filter(|r| !excluded.contains(r.golden_id.as_str()))
            .take(k)
            .cloned()
            .collect();
    };
    let history = history(index, fold, customer, &live_history);
    let Scored {
        scores: knn,
        supporter,
    } = fold.score(&history, index.products.len());
    let top_stored = stored.iter().map(|r| r.score).fold(0f64, f64::max);
    let mut blended: HashMap<u32, (f32, f32, Option<&Recommendation>)> = HashMap::new();
    for r in stored {
        if let Some(item) = index.item_of(&r.golden_id) {
            let h = if top_stored > 0.0 {
                (r.score / top_stored) as f32
            } else {
                0.0
            };
            blended.insert(item, (h, 0.0, Some(r)));
        }
    }
    for (item, &score) in knn.iter().enumerate().filter(|(_, s)| **s > 0.0) {
        blended.entry(item as u32).or_insert((0.0, 0.0, None)).1 = score;
    }
    let bought = |item: &u32| history.get(item).is_some_and(|c| c.bought);
    let mut ranked: Vec<Candidate> = blended
        .into_iter()
        .filter(|(item, _)| {
            let id = index.products[*item as usize].summary.golden_id.as_str();
            let refused = excluded.contains(id) || (fold.excludes_bought() && bought(item));
            !refused
        })
        .map(|(item, (h, l, from_run))| Candidate {
            item,
            from_hybrid: (1.0 - LIVE_SHARE) * h,
            from_knn: LIVE_SHARE * l,
            from_run,
        })
        .collect();
    ranked.sort_by(|a, b| b.score().total_cmp(&a.score()).then(a.item.cmp(&b.item)));
    ranked
        .into_iter()
        .take(k)
        .enumerate()
        .map(|(rank, c)| {
            let product = &index.products[c.item as usize].summary;
            // The reason of whichever part weighs more.
            let live_reason = (c.from_knn >= c.from_hybrid)
                .then_some(supporter[c.item as usize])
                .flatten()
                .map(|j| reason(index, j, &history[&j]));
            Recommendation {
                rank: rank as i64 + 1,
                golden_id: product.golden_id.clone(),
                title: product.title.clone().unwrap_or_default(),
                score: c.score() as f64,
                reason: live_reason
                    .or_else(|| c.from_run.map(|r| r.reason.clone()))
                    .unwrap_or_default(),
                model: "hybrid+live".into(),
            }
        })
        .collect()
}

/// One item's blended score, by part.
struct Candidate<'a> {
    item: u32,
    from_hybrid: f32,
    from_knn: f32,
    from_run: Option<&'a Recommendation>,
}

impl Candidate<'_> {
    fn score(&self) -> f32 {
        self.from_hybrid + self.from_knn
    }
}

fn accounts_of(customer: &Customer) -> impl Iterator<Item = (&str, &str)> {
    customer
        .accounts
        .iter()
        .map(|a| (a.platform.as_str(), a.account_id.as_str()))
}

/// The committed interactions and the live events of `customer`, by item.
fn history(
    index: &ServeIndex,
    fold: &FoldIn,
    customer: &Customer,
    live: &[(u32, Action, &str)],
) -> HashMap<u32, HistoryCell> {
    let mut history: HashMap<u32, HistoryCell> = HashMap::new();
    for row in index.interactions(&customer.customer_id) {
        let Some(item) = index.item_of(&row.golden_id) else {
            continue;
        };
        let cell = history.entry(item).or_default();
        for (action, count) in [
            (Action::View, row.views),
            (Action::Favorite, row.favorites),
            (Action::Cart, row.carts),
            (Action::Purchase, row.purchases),
        ] {
            if count > 0 {
                cell.saw(action, count as f64 * fold.weight(action), None);
            }
        }
    }
    for &(item, action, platform) in live {
        let cell = history.entry(item).or_default();
        cell.saw(action, fold.weight(action), Some(platform));
    }
    history
}

fn reason(index: &ServeIndex, item: u32, cell: &HistoryCell) -> String {
    let title = index.products[item as usize]
        .summary
        .title
        .clone()
        .unwrap_or_default();
    match &cell.strongest {
        Some((action, Some(platform))) => format!(
            "you {} “{title}” on {} just now",
            action.verb(),
            shopfuse_learn::recs::serve::platform_label(platform)
        ),
        Some((action, None)) => format!("you {} “{title}”", action.verb()),
        None => format!("similar to “{title}”"),
    }
}

/// Up to `k` products like `item`: its item-kNN neighbours, then the same category's products
/// nearest in price (a product nobody has touched yet still gets an answer).
pub fn similar_products(
    index: &ServeIndex,
    item: u32,
    k: usize,
) -> Vec<crate::api::SimilarProduct> {
    let mut out = Vec::with_capacity(k);
    let mut taken: HashSet<u32> = HashSet::from([item]);
    if let Some(fold) = &index.fold_in {
        let one = HashMap::from([(
            item,
            HistoryCell {
                weight: std::f64::consts::E - 1.0,
                ..Default::default()
            },
        )]);
        let scores = fold.score(&one, index.products.len()).scores;
        let mut near: Vec<(u32, f32)> = scores
            .iter()
            .enumerate()
            .filter(|(j, s)| **s > 0.0 && *j as u32 != item)
            .map(|(j, s)| (j as u32, *s))
            .collect();
        near.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for (j, s) in near.into_iter().take(k) {
            taken.insert(j);
            out.push(crate::api::SimilarProduct {
                product: index.products[j as usize].summary.clone(),
                similarity: s as f64,
                reason: "shoppers who interacted with it interacted with this".into(),
            });
        }
    }
    let this = &index.products[item as usize].summary;
    if out.len() < k && this.category.is_some() {
        let price = this.price_base.unwrap_or(0.0);
        let mut same: Vec<(u32, f64)> = index
            .products
            .iter()
            .enumerate()
            .filter(|(j, p)| p.summary.category == this.category && !taken.contains(&(*j as u32)))
            .map(|(j, p)| {
                (
                    j as u32,
                    (p.summary.price_base.unwrap_or(0.0) - price).abs(),
                )
            })
            .collect();
        same.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        for (j, gap) in same.into_iter().take(k - out.len()) {
            out.push(crate::api::SimilarProduct {
                product: index.products[j as usize].summary.clone(),
                similarity: 0.0,
                reason: format!("same category, {gap:.0} apart in price"),
            });
        }
    }
    out
}
