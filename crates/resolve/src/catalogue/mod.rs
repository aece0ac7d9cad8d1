//! The resolve stage of a project: `clean_products` → candidate pairs with match
//! probabilities, product clusters, golden products with per-field provenance, and offers.
//!
//! Listings of one real product arrive from several platforms in several languages
//! ("苹果(Apple) iPhone 14 128GB 蓝色" on JD, "Apple iPhone 14, 128GB, Blue" on Amazon), and its
//! colour and capacity variants look almost the same. The stage
//! 1. learns cross-language value aliases (蓝色 = blue, 苹果 = apple, 手机 = Mobile Phones)
//!    from listings that share a GTIN, so attributes can be compared across languages;
//! 2. proposes candidate pairs per pair of platforms (identifier keys, rare tokens, HNSW
//!    neighbours of the title embedding);
//! 3. learns the match probability without hand labels: pairs whose listings both carry a
//!    GTIN are labelled by GTIN equality (weak supervision; the GTIN itself is not a feature),
//!    reviewed pairs override them, and with neither the self-supervised pseudo-labels are used;
//!    with `[resolve.cross_encoder]` on, the pairs nearest the threshold are re-read by a
//!    cross-encoder trained on the same labels (`cross_band`);
//! 4. clusters with constrained average linkage: a merge needs the *average* probability over
//!    all scored cross pairs above the threshold and no cannot-link between the two clusters
//!    (different GTINs, a conflicting capacity or colour, two listings of one platform, a
//!    reviewed non-match), so A~B and B~C do not chain A to C;
//! 5. builds one golden product per cluster with configurable per-field rules and provenance.

mod aliases;
mod cluster;
mod cross_band;
mod golden;
pub(crate) mod tables;

pub use aliases::{Aliases, FieldAliases};
pub use cross_band::{CrossEncoderFiles, CrossEncoderOrigin, CrossEncoderSummary};
pub use golden::Golden;
pub use shopfuse_core::linkage::Clustering;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use shopfuse_core::config::{FieldRule, ResolveConfig};
use shopfuse_core::value::batch_to_rows;
use shopfuse_core::{CoreError, Encoder, EntityKind, Progress, Transaction};
use shopfuse_embed::EmbeddingCache;

use crate::blocking::{self, BlockingConfig, PairReasons, BY_EMBEDDING, BY_IDENTIFIER};
use crate::features::{CandidateMargins, Prepared};
use crate::matcher::{
    self, MatchError, PairFeaturizer, PairModel, Scores, StackedLearned, Supervision,
};
use crate::pairs::Record;

pub use tables::{
    golden_products, golden_provenance, offers, product_clusters, resolve_aliases,
    resolve_candidates, review_labels,
};

/// Golden fields, in table order.
pub const GOLDEN_FIELDS: [&str; 9] = [
    "title",
    "brand",
    "category",
    "model_code",
    "gtin",
    "color",
    "capacity",
    "price_base",
    "listed_at",
];

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Reading or writing a table failed; the source names the file.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The matcher could not be trained or applied.
    #[error(transparent)]
    Match(#[from] MatchError),
    /// The project's embedding cache could not be read or written.
    #[error("embedding cache")]
    Cache(#[from] shopfuse_embed::cache::CacheError),
    /// The cross-encoder (`[resolve.cross_encoder]`) could not be loaded, trained or run; the
    /// source names the file.
    #[error("[resolve.cross_encoder]")]
    CrossEncoder(#[source] shopfuse_embed::EncoderError),
    /// A `[resolve.fields]` rule does not fit its field; the message names both.
    #[error("shopfuse.toml [resolve.fields]: {0}")]
    Config(String),
}

/// One listing of `clean_products`, with its comparison keys.
#[derive(Debug, Clone)]
pub struct Listing {
    pub platform: String,
    pub listing_id: String,
    pub title: String,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub model_code: Option<String>,
    pub gtin: Option<String>,
    pub color: Option<String>,
    /// Canonical capacity, e.g. "128GB", "50ml" (clean's value and unit, or read off the title).
    pub capacity: Option<String>,
    pub price: Option<f64>,
    pub currency: Option<String>,
    pub price_base: Option<f64>,
    pub stock: Option<i64>,
    pub url: Option<String>,
    pub listed_at: Option<i64>,
    pub file: String,
    pub row: i64,
}

impl Listing {
    pub fn key(&self) -> String {
        format!("{}:{}", self.platform, self.listing_id)
    }

    /// The GTIN as digits without leading zeros (EAN-13 and UPC-A of one item agree).
    pub fn gtin_key(&self) -> Option<String> {
        let g = self.gtin.as_deref()?;
        let digits: String = g.chars().filter(char::is_ascii_digit).collect();
        let key = digits.trim_start_matches('0');
        (key.len() >= 7 && digits.len() <= 14).then(|| key.to_string())
    }

    pub fn model_key(&self) -> Option<String> {
        let m = self.model_code.as_deref()?;
        let k: String = m
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        (!k.is_empty()).then_some(k)
    }
}

/// Reads `clean_products` as listings, sorted by (platform, listing id).
pub fn read_listings(tx: &Transaction<'_>) -> Result<Vec<Listing>, ResolveError> {
    let Some((schema, batches)) = tx.read_table(&EntityKind::Products.clean_table())? else {
        return Ok(Vec::new());
    };
    let col = |name: &str| {
        schema
            .index_of(name)
            .map_err(|_| CoreError::Schema(format!("clean_products has no column {name}")))
    };
    let c: BTreeMap<&str, usize> = [
        "listing_id",
        "title",
        "brand",
        "category",
        "price",
        "currency",
        "model_code",
        "gtin",
        "color",
        "capacity",
        "url",
        "stock",
        "listed_at",
        "price_base",
        "capacity_value",
        "capacity_unit",
        "_platform",
        "_file",
        "_row",
    ]
    .into_iter()
    .map(|n| col(n).map(|i| (n, i)))
    .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for batch in &batches {
        for v in batch_to_rows(batch)? {
            let text = |n: &str| {
                v[c[n]]
                    .as_str()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            let title = text("title").unwrap_or_default();
            let capacity =
                canonical_capacity(v[c["capacity_value"]].as_f64(), text("capacity_unit"))
                    .or_else(|| capacity_in_title(&title));
            out.push(Listing {
                platform: text("_platform").unwrap_or_default(),
                listing_id: text("listing_id").unwrap_or_default(),
                brand: text("brand"),
                category: text("category"),
                model_code: text("model_code"),
                gtin: text("gtin"),
                color: text("color").map(|s| s.to_lowercase()),
                capacity,
                price: v[c["price"]].as_f64(),
                currency: text("currency"),
                price_base: v[c["price_base"]].as_f64(),
                stock: v[c["stock"]].as_i64(),
                url: text("url"),
                listed_at: v[c["listed_at"]].as_i64(),
                file: text("_file").unwrap_or_default(),
                row: v[c["_row"]].as_i64().unwrap_or_default(),
                title,
            });
        }
    }
    out.sort_by(|a, b| (&a.platform, &a.listing_id).cmp(&(&b.platform, &b.listing_id)));
    Ok(out)
}

fn canonical_capacity(value: Option<f64>, unit: Option<String>) -> Option<String> {
    let (value, unit) = (value?, unit?);
    let (value, unit) = match unit.to_lowercase().as_str() {
        "tb" => (value * 1024.0, "GB".to_string()),
        "mb" => (value / 1024.0, "GB".to_string()),
        "l" => (value * 1000.0, "ml".to_string()),
        "kg" => (value * 1000.0, "g".to_string()),
        _ => (value, unit),
    };
    Some(format!("{}{unit}", format_number(value)))
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A capacity written in the title when the field is empty ("… 256GB …", "1TB", "50 ml").
/// A bare "G" is left alone: 256G is gigabytes on a phone and grams on a bag of coffee.
/// Not clean's `parse_measure`: that reads a capacity *field* and takes the first measure,
/// which in a title is often the network ("5G手机 256GB").
fn capacity_in_title(title: &str) -> Option<String> {
    let lower = title.to_lowercase();
    for (number, rest) in shopfuse_core::text::numbers_with_rest(&lower) {
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if let (Ok(v), true) = (
            number.parse::<f64>(),
            ["gb", "tb", "ml", "kg", "l"].contains(&unit),
        ) {
            let unit = if unit == "gb" { "GB" } else { unit };
            return canonical_capacity(Some(v), Some(unit.to_string()));
        }
    }
    None
}
/// The record the pair features see: the title, and the attributes in canonical form so a
/// Chinese listing's "蓝色" and an English one's "blue" compare equal. The GTIN is left out:
/// it labels the training pairs, so as a feature it would explain them away.
fn matcher_record(l: &Listing, aliases: &FieldAliases) -> Record {
    let v = |o: Option<String>| o.unwrap_or_default();
    Record {
        attrs: vec![
            ("title".into(), l.title.clone()),
            (
                "brand".into(),
                v(l.brand.as_deref().map(|b| aliases.brand.canonical(b))),
            ),
            (
                "category".into(),
                v(l.category.as_deref().map(|c| aliases.category.canonical(c))),
            ),
            ("model_code".into(), v(l.model_key())),
            (
                "color".into(),
                v(l.color.as_deref().map(|c| aliases.color.canonical(c))),
            ),
            ("capacity".into(), v(l.capacity.clone())),
            ("price".into(), v(l.price_base.map(|p| format!("{p:.2}")))),
        ],
    }
}

/// A reviewed pair (from `shopfuse review import`), keyed by the two listings' keys in order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReviewLabel {
    pub left: (String, String),
    pub right: (String, String),
    pub is_match: bool,
}

pub fn review_schema() -> SchemaRef {
    review_labels::TABLE.schema()
}

/// Reviewed labels in the transaction's view, in key order.
pub fn read_review_labels(tx: &Transaction<'_>) -> Result<Vec<ReviewLabel>, ResolveError> {
    Ok(crate::review::read_reviewed(tx)?
        .into_iter()
        .map(|r| r.label)
        .collect())
}

/// Reviewed pairs as (smaller, larger) listing positions → is a match; labels of listings no
/// longer in the project are ignored.
fn reviewed_pairs(listings: &[Listing], reviews: &[ReviewLabel]) -> BTreeMap<(usize, usize), bool> {
    let index: HashMap<(&str, &str), usize> = listings
        .iter()
        .enumerate()
        .map(|(i, l)| ((l.platform.as_str(), l.listing_id.as_str()), i))
        .collect();
    let position = |key: &(String, String)| index.get(&(key.0.as_str(), key.1.as_str())).copied();
    reviews
        .iter()
        .filter_map(|r| match (position(&r.left), position(&r.right)) {
            (Some(i), Some(j)) if i != j => Some(((i.min(j), i.max(j)), r.is_match)),
            _ => None,
        })
        .collect()
}

/// Figures of one resolve run.
#[derive(Debug, Clone, Serialize)]
pub struct ResolveSummary {
    pub listings: usize,
    pub platforms: usize,
    /// Cross-platform pairs that could be compared.
    pub possible_pairs: u64,
    pub candidate_pairs: usize,
    pub reduction_ratio: f64,
    pub supervision: Supervision,
    /// Candidate pairs labelled by GTIN equality / by review.
    pub gtin_labelled_pairs: usize,
    pub review_labelled_pairs: usize,
    pub threshold: f64,
    /// The held-out part of the labelled pairs (weak labels, so an estimate), with the
    /// cross-encoder's band when it ran.
    pub valid: Option<Scores>,
    /// What the cross-encoder did, when `[resolve.cross_encoder]` is enabled and the project
    /// has labelled pairs of both kinds to hold some out (boxed: it is most of the summary's
    /// size and mostly absent).
    pub cross_encoder: Option<Box<CrossEncoderSummary>>,
    pub matched_pairs: usize,
    pub merges_refused: BTreeMap<String, usize>,
    pub golden_products: usize,
    pub multi_listing_products: usize,
    pub aliases: usize,
    /// Seconds per phase, in order.
    pub phases: Vec<(String, f64)>,
    /// Peak resident memory (MiB) at the end of each phase, in order: where memory grows.
    pub phase_peak_memory_mib: Vec<(String, f64)>,
    /// CPU seconds over wall seconds per phase, in order: the cores each phase kept busy.
    pub phase_busy_cores: Vec<(String, f64)>,
    pub seconds: f64,
    /// Peak resident memory of the process so far (Linux), MiB.
    pub peak_memory_mib: Option<f64>,
}

pub use shopfuse_core::progress::peak_memory_mib;
use shopfuse_core::progress::process_cpu_seconds;

/// Wall-clock seconds per phase.
struct Phases {
    last: Instant,
    last_cpu: Option<f64>,
    done: Vec<(String, f64)>,
    peaks: Vec<(String, f64)>,
    busy_cores: Vec<(String, f64)>,
}

impl Phases {
    fn new() -> Self {
        Phases {
            last: Instant::now(),
            last_cpu: process_cpu_seconds(),
            done: Vec::new(),
            peaks: Vec::new(),
            busy_cores: Vec::new(),
        }
    }
    fn mark(&mut self, phase: &str) {
        let now = Instant::now();
        let wall = (now - self.last).as_secs_f64();
        self.done.push((phase.to_string(), wall));
        if let Some(peak) = peak_memory_mib() {
            self.peaks.push((phase.to_string(), peak));
        }
        let cpu = process_cpu_seconds();
        if let (Some(before), Some(after)) = (self.last_cpu, cpu) {
            if wall > 0.0 {
                self.busy_cores
                    .push((phase.to_string(), (after - before) / wall));
            }
        }
        self.last = now;
        self.last_cpu = cpu;
    }
}

struct Scored {
    ids: Vec<(usize, usize)>,
    reasons: Vec<u8>,
    probability: Vec<f64>,
    threshold: f64,
    label_source: Vec<&'static str>,
    drivers: Vec<String>,
    supervision: Supervision,
    valid: Option<Scores>,
    gtin_labelled: usize,
    review_labelled: usize,
    cross_encoder: Option<Box<CrossEncoderSummary>>,
}

impl Scored {
    /// Fewer than two listings: nothing to score.
    fn empty() -> Self {
        Scored {
            ids: Vec::new(),
            reasons: Vec::new(),
            probability: Vec::new(),
            threshold: 0.5,
            label_source: Vec::new(),
            drivers: Vec::new(),
            supervision: Supervision::SelfSupervised,
            valid: None,
            gtin_labelled: 0,
            review_labelled: 0,
            cross_encoder: None,
        }
    }
}

/// Runs the stage on the transaction's `clean_products` and replaces its tables.
pub fn resolve_products(
    tx: &mut Transaction<'_>,
    config: &ResolveConfig,
    base_currency: &str,
    encoder: &dyn Encoder,
    cross_encoder: Option<&CrossEncoderFiles>,
    progress: &dyn Progress,
) -> Result<ResolveSummary, ResolveError> {
    let started = Instant::now();
    let mut phases = Phases::new();
    validate_rules(config)?;
    let listings = read_listings(tx)?;
    let reviews = read_review_labels(tx)?;
    let reviewed = reviewed_pairs(&listings, &reviews);
    phases.mark("read");
    let aliases = FieldAliases::learn(&listings);
    phases.mark("aliases");
    let platforms = PlatformIndex::of(&listings);
    let scored = if listings.len() < 2 {
        Scored::empty()
    } else {
        let context = MatchContext {
            listings: &listings,
            platforms: &platforms,
            aliases: &aliases,
            reviewed: &reviewed,
            config,
            cross_encoder,
        };
        match_pairs(tx, &context, encoder, progress, &mut phases)?
    };
    let clustering = cluster::cluster(&listings, &scored, &reviewed, &aliases, config);
    phases.mark("cluster");
    let golden = golden::golden_products(&listings, &clustering, &aliases, config);
    phases.mark("golden");
    tables::write_tables(
        tx,
        &listings,
        &scored,
        &clustering,
        &golden,
        &aliases,
        base_currency,
    )?;
    phases.mark("write");
    let aliases_n = aliases.brand.len() + aliases.category.len() + aliases.color.len();
    let mut summary = ResolveSummary::of(&listings, &platforms, &scored, &clustering, aliases_n);
    summary.phases = phases.done;
    summary.phase_peak_memory_mib = phases.peaks;
    summary.phase_busy_cores = phases.busy_cores;
    summary.seconds = started.elapsed().as_secs_f64();
    summary.peak_memory_mib = peak_memory_mib();
    Ok(summary)
}

/// The platforms of the listings (sorted), each listing's platform position, and how many
/// cross-platform pairs there are.
struct PlatformIndex {
    names: Vec<String>,
    of_listing: Vec<usize>,
    possible_pairs: u64,
}

impl PlatformIndex {
    fn of(listings: &[Listing]) -> Self {
        let names: Vec<String> = listings
            .iter()
            .map(|l| l.platform.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let of_listing: Vec<usize> = listings
            .iter()
            .map(|l| names.binary_search(&l.platform).expect("known platform"))
            .collect();
        let mut per_platform = vec![0u64; names.len()];
        for &p in &of_listing {
            per_platform[p] += 1;
        }
        let total: u64 = per_platform.iter().sum();
        let possible_pairs = (total * total.saturating_sub(1) / 2)
            - per_platform
                .iter()
                .map(|n| n * n.saturating_sub(1) / 2)
                .sum::<u64>();
        Self {
            names,
            of_listing,
            possible_pairs,
        }
    }
}

/// What matching reads besides the transaction.
struct MatchContext<'a> {
    listings: &'a [Listing],
    platforms: &'a PlatformIndex,
    aliases: &'a FieldAliases,
    reviewed: &'a BTreeMap<(usize, usize), bool>,
    config: &'a ResolveConfig,
    cross_encoder: Option<&'a CrossEncoderFiles>,
}

/// Embeds the listings (through the project's cache), proposes and prunes candidate pairs,
/// scores them, and re-reads the uncertain ones with the cross-encoder when it is on: the
/// embed, candidates, score and cross-encoder phases.
fn match_pairs(
    tx: &mut Transaction<'_>,
    c: &MatchContext<'_>,
    encoder: &dyn Encoder,
    progress: &dyn Progress,
    phases: &mut Phases,
) -> Result<Scored, ResolveError> {
    let mut cache = EmbeddingCache::load(tx.store(), encoder)?;
    let records: Vec<Record> = c
        .listings
        .iter()
        .map(|l| matcher_record(l, c.aliases))
        .collect();
    let featurizer = PairFeaturizer::from_records(&records, encoder, &mut cache, progress)?;
    drop(records);
    if cache.new_entries() > 0 {
        cache.save(tx)?;
    }
    // Every vector is in the featurizer now; at a million listings the cache's own copy is
    // gigabytes the scoring below needs.
    drop(cache);
    phases.mark("embed");
    let n_platforms = c.platforms.names.len();
    progress.start("resolve: candidates", 3);
    let of_listing = &c.platforms.of_listing;
    let members = platform_members(of_listing, n_platforms);
    let mut proposed = PairReasons::default();
    key_candidates(
        c.listings,
        of_listing,
        &members,
        &featurizer,
        c.reviewed,
        &mut proposed,
    );
    progress.advance(1);
    phases.mark("keys");
    neighbour_candidates(&members, &featurizer, c.config.knn, &mut proposed);
    progress.advance(1);
    phases.mark("neighbours");
    let kept = prune_candidates(
        proposed.merged(),
        of_listing,
        n_platforms,
        &featurizer,
        c.reviewed,
        c.config.max_candidates_per_platform,
    );
    progress.finish();
    phases.mark("prune");
    progress.start("resolve: match probabilities", kept.ids.len() as u64);
    let (mut scored, split) = score(
        c.listings,
        &featurizer,
        kept,
        c.reviewed,
        c.config,
        progress,
    )?;
    progress.finish();
    phases.mark("score");
    drop(featurizer);
    if let (Some(files), Some(split)) = (c.cross_encoder, split.filter(|s| s.held_out)) {
        rescore_with_cross_encoder(c, files, &split, &mut scored, progress)?;
        phases.mark("cross-encoder");
    }
    Ok(scored)
}

/// The band of uncertain pairs re-read by the cross-encoder, their probabilities and the
/// held-out estimate updated.
fn rescore_with_cross_encoder(
    c: &MatchContext<'_>,
    files: &CrossEncoderFiles,
    split: &TrainValid,
    scored: &mut Scored,
    progress: &dyn Progress,
) -> Result<(), ResolveError> {
    let ids = &scored.ids;
    let record_of = |k: usize| {
        let (i, j) = ids[k];
        (
            matcher_record(&c.listings[i], c.aliases),
            matcher_record(&c.listings[j], c.aliases),
        )
    };
    let labelled = cross_band::LabelledPositions {
        train: &split.train,
        y_train: &split.y_train,
        held_out: &split.valid,
        y_held_out: &split.y_valid,
    };
    let scores = cross_band::BandScores {
        probability: &mut scored.probability,
        drivers: &mut scored.drivers,
        threshold: scored.threshold,
    };
    let summary = cross_band::rescore_band(
        files,
        &c.config.cross_encoder,
        &record_of,
        &labelled,
        scores,
        progress,
    )
    .map_err(ResolveError::CrossEncoder)?;
    scored.valid = Some(summary.held_out_after);
    scored.cross_encoder = Some(Box::new(summary));
    Ok(())
}

impl ResolveSummary {
    /// The run's figures; timings are filled in by the caller.
    fn of(
        listings: &[Listing],
        platforms: &PlatformIndex,
        scored: &Scored,
        clustering: &Clustering,
        aliases: usize,
    ) -> Self {
        let possible_pairs = platforms.possible_pairs;
        let matched_pairs = scored
            .ids
            .iter()
            .filter(|(a, b)| clustering.cluster_of[*a] == clustering.cluster_of[*b])
            .count();
        ResolveSummary {
            listings: listings.len(),
            platforms: platforms.names.len(),
            possible_pairs,
            candidate_pairs: scored.ids.len(),
            reduction_ratio: if possible_pairs == 0 {
                0.0
            } else {
                1.0 - scored.ids.len() as f64 / possible_pairs as f64
            },
            supervision: scored.supervision,
            gtin_labelled_pairs: scored.gtin_labelled,
            review_labelled_pairs: scored.review_labelled,
            threshold: scored.threshold,
            valid: scored.valid,
            cross_encoder: scored.cross_encoder.clone(),
            matched_pairs,
            merges_refused: clustering.refused.clone(),
            golden_products: clustering.members.len(),
            multi_listing_products: clustering.members.iter().filter(|m| m.len() > 1).count(),
            aliases,
            phases: Vec::new(),
            phase_peak_memory_mib: Vec::new(),
            phase_busy_cores: Vec::new(),
            seconds: 0.0,
            peak_memory_mib: None,
        }
    }
}

fn validate_rules(config: &ResolveConfig) -> Result<(), ResolveError> {
    for (field, rule) in &config.fields {
        if !GOLDEN_FIELDS.contains(&field.as_str()) {
            return Err(ResolveError::Config(format!(
                "unknown golden field {field:?}; the fields are {}",
                GOLDEN_FIELDS.join(", ")
            )));
        }
        if *rule == FieldRule::Median && field != "price_base" {
            return Err(ResolveError::Config(format!(
                "{field} = \"median\": median needs a numeric field (price_base); use majority, source_priority, most_recent or most_complete"
            )));
        }
    }
    Ok(())
}

/// The listings of each platform, by platform number.
fn platform_members(platform_of: &[usize], platforms: usize) -> Vec<Vec<usize>> {
    let mut members = vec![Vec::new(); platforms];
    for (i, &p) in platform_of.iter().enumerate() {
        members[p].push(i);
    }
    members
}

/// Key candidates (i < j, different platforms): the key blockers of
/// [`blocking::candidate_pairs`] per pair of platforms, equal GTINs, and every reviewed pair.
fn key_candidates(
    listings: &[Listing],
    platform_of: &[usize],
    members: &[Vec<usize>],
    featurizer: &PairFeaturizer,
    reviewed: &BTreeMap<(usize, usize), bool>,
    out: &mut PairReasons,
) {
    // Keys only; the embedding neighbours are [`neighbour_candidates`], so that each
    // platform's index is built once however many platforms query it.
    let blocking = BlockingConfig {
        knn: 0,
        ..BlockingConfig::default()
    };
    let prepared = featurizer.prepared();
    for a in 0..members.len() {
        for b in a + 1..members.len() {
            let left: Vec<_> = members[a].iter().map(|&i| &prepared[i]).collect();
            let right: Vec<_> = members[b].iter().map(|&i| &prepared[i]).collect();
            for c in blocking::candidate_pairs(&left, &right, featurizer.idf(), &blocking) {
                let (i, j) = (members[a][c.left], members[b][c.right]);
                out.add((i.min(j), i.max(j)), c.reasons);
            }
        }
    }
    add_equal_gtins(listings, platform_of, out);
    for &pair in reviewed.keys() {
        out.add(pair, 0);
    }
}

/// Embedding-neighbour candidates: each listing's `knn` nearest listings on every other
/// platform by title embedding, and the other way round.
fn neighbour_candidates(
    members: &[Vec<usize>],
    featurizer: &PairFeaturizer,
    knn: usize,
    out: &mut PairReasons,
) {
    let prepared = featurizer.prepared();
    let projected = projected_vectors(members, prepared);
    let mut neighbours = EmbeddingNeighbours::new(members, prepared, &projected, knn);
    let mut add = |i: usize, j: usize| out.add((i.min(j), i.max(j)), BY_EMBEDDING);
    for a in 0..members.len() {
        for b in a + 1..members.len() {
            let (left_near, right_near) = neighbours.between(a, b);
            for (x, near) in left_near.into_iter().enumerate() {
                for y in near {
                    add(members[a][x], members[b][y]);
                }
            }
            for (y, near) in right_near.into_iter().enumerate() {
                for x in near {
                    add(members[a][x], members[b][y]);
                }
            }
        }
    }
}

/// Every cross-platform pair of listings carrying the same GTIN.
fn add_equal_gtins(listings: &[Listing], platform_of: &[usize], out: &mut PairReasons) {
    let mut by_gtin: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, l) in listings.iter().enumerate() {
        if let Some(g) = l.gtin_key() {
            by_gtin.entry(g).or_default().push(i);
        }
    }
    for ids in by_gtin.values() {
        for (k, &i) in ids.iter().enumerate() {
            for &j in &ids[k + 1..] {
                if platform_of[i] != platform_of[j] {
                    out.add((i, j), BY_IDENTIFIER);
                }
            }
        }
    }
}

/// The listings' vectors reduced to their leading principal components, per platform, when
/// some pair of platforms is too large for the exact similarity matrix; empty otherwise.
fn projected_vectors(members: &[Vec<usize>], prepared: &[Prepared]) -> Vec<Vec<Vec<f32>>> {
    let platforms = members.len();
    let needs_index = (0..platforms).any(|a| {
        (a + 1..platforms).any(|b| !blocking::exact_neighbours(members[a].len(), members[b].len()))
    });
    if !needs_index {
        return vec![Vec::new(); platforms];
    }
    let all: Vec<&[f32]> = prepared.iter().map(|p| p.main_vector.as_slice()).collect();
    let projection = blocking::Projection::fit(&all, INDEX_DIMENSIONS);
    members
        .iter()
        .map(|m| {
            m.par_iter()
                .map(|&i| projection.apply(&prepared[i].main_vector))
                .collect()
        })
        .collect()
}

/// Nearest neighbours by title embedding between two platforms' listings: an exact
/// similarity matrix where both are small enough, otherwise HNSW indexes over the
/// [`projected_vectors`], built once per platform however many platforms query it.
struct EmbeddingNeighbours<'a> {
    vectors: Vec<Vec<&'a [f32]>>,
    projected: Vec<Vec<&'a [f32]>>,
    indexes: Vec<Option<blocking::VectorIndex<'a>>>,
    knn: usize,
}

impl<'a> EmbeddingNeighbours<'a> {
    fn new(
        members: &[Vec<usize>],
        prepared: &'a [Prepared],
        projected: &'a [Vec<Vec<f32>>],
        knn: usize,
    ) -> Self {
        // Every index a platform pair will need, built up front and side by side: each build
        // is single-threaded (see `VectorIndex::build`), so the platforms share the cores.
        let platforms = members.len();
        let needs_index: Vec<bool> = (0..platforms)
            .map(|p| {
                (0..platforms).any(|q| {
                    q != p && !blocking::exact_neighbours(members[p].len(), members[q].len())
                })
            })
            .collect();
        let indexes = (0..platforms)
            .into_par_iter()
            .map(|p| {
                needs_index[p].then(|| {
                    let vectors: Vec<&[f32]> = projected[p].iter().map(Vec::as_slice).collect();
                    blocking::VectorIndex::build(&vectors, knn)
                })
            })
            .collect();
        Self {
            vectors: members
                .iter()
                .map(|m| {
                    m.iter()
                        .map(|&i| prepared[i].main_vector.as_slice())
                        .collect()
                })
                .collect(),
            projected: projected
                .iter()
                .map(|p| p.iter().map(Vec::as_slice).collect())
                .collect(),
            indexes,
            knn,
        }
    }

    /// For each listing of platform `a` its neighbours on `b`, and the other way round.
    fn between(&mut self, a: usize, b: usize) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
        let knn = self.knn;
        if blocking::exact_neighbours(self.vectors[a].len(), self.vectors[b].len()) {
            return blocking::nearest_both_ways(&self.vectors[a], &self.vectors[b], knn);
        }
        // Twice the neighbours from the projected index, the best half kept by the full
        // vectors: the projection blurs the small differences (a colour, a capacity) that
        // order a family's variants.
        let search = |p: usize, q: usize| {
            let near = self.indexes[p]
                .as_ref()
                .expect("built")
                .search(&self.projected[q], 2 * knn);
            blocking::rerank(&self.vectors[q], &self.vectors[p], near, knn)
        };
        (search(b, a), search(a, b))
    }
}

/// Candidate pairs in key order, with what the scorer needs of each besides its features.
struct Candidates {
    ids: Vec<(usize, usize)>,
    reasons: Vec<u8>,
    /// (left listing, right listing's platform), (right listing, left listing's platform):
    /// margins compare a pair with the other candidates of the same listing *on the same
    /// platform*, since a listing has one best partner per other platform, not one overall.
    margin_keys: Vec<(usize, usize)>,
    /// (whole-record embedding cosine, TF-IDF cosine).
    sims: Vec<(f64, f64)>,
}

/// Keeps, of the blockers' candidates, the `per_platform` most similar (embedding + TF-IDF
/// cosine) of each listing on each other platform, seen from either side, plus every pair an
/// identifier proposed and every reviewed pair. The blockers are generous on purpose (ten
/// embedding neighbours each way, rare-token blocks), which on a catalogue of near-identical
/// variants means 30+ candidates per listing; past the first few, a candidate is almost never
/// the listing's match, yet every one costs the full feature and model work. The top two of
/// each listing are always kept, so the candidate margins are the same as without pruning.
fn prune_candidates(
    candidates: Vec<((usize, usize), u8)>,
    platform_of: &[usize],
    platforms: usize,
    featurizer: &PairFeaturizer,
    reviewed: &BTreeMap<(usize, usize), bool>,
    per_platform: usize,
) -> Candidates {
    let (ids, reasons): (Vec<(usize, usize)>, Vec<u8>) = candidates.into_iter().unzip();
    let margin_keys: Vec<(usize, usize)> = ids
        .iter()
        .map(|&(i, j)| {
            (
                i * platforms + platform_of[j],
                j * platforms + platform_of[i],
            )
        })
        .collect();
    let sims = featurizer.margin_sims_of(&ids);
    let mut keep: Vec<bool> = ids
        .iter()
        .zip(&reasons)
        .map(|(pair, r)| r & BY_IDENTIFIER != 0 || reviewed.contains_key(pair))
        .collect();
    let score: Vec<f64> = sims.iter().map(|s| s.0 + s.1).collect();
    let left: Vec<usize> = margin_keys.iter().map(|k| k.0).collect();
    let right: Vec<usize> = margin_keys.iter().map(|k| k.1).collect();
    for keys in [&left, &right] {
        for k in most_similar_per_key(keys, &score, per_platform) {
            keep[k] = true;
        }
    }
    let mut out = Candidates {
        ids: Vec::new(),
        reasons: Vec::new(),
        margin_keys: Vec::new(),
        sims: Vec::new(),
    };
    for k in (0..ids.len()).filter(|&k| keep[k]) {
        out.ids.push(ids[k]);
        out.reasons.push(reasons[k]);
        out.margin_keys.push(margin_keys[k]);
        out.sims.push(sims[k]);
    }
    out
}

/// Dimensions of the vectors in the neighbour index (of the encoder's 512).
const INDEX_DIMENSIONS: usize = 128;

/// The positions of the `n` highest `score`s among the pairs of each key (ties to the
/// earlier pair).
fn most_similar_per_key(keys: &[usize], score: &[f64], n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_unstable_by(|&a, &b| {
        keys[a]
            .cmp(&keys[b])
            .then(score[b].total_cmp(&score[a]))
            .then(a.cmp(&b))
    });
    let mut out = Vec::new();
    let mut rank = 0;
    for (m, &k) in order.iter().enumerate() {
        rank = if m > 0 && keys[order[m - 1]] == keys[k] {
            rank + 1
        } else {
            0
        };
        if rank < n {
            out.push(k);
        }
    }
    out
}

/// Most labelled pairs the matcher trains on (and a quarter of that to choose the threshold).
const MAX_TRAIN_PAIRS: usize = 20_000;

/// Candidate pairs featurised, scored and explained at a time: the feature rows of a
/// million-listing catalogue's candidates would not fit in memory at once.
const SCORE_CHUNK: usize = 65_536;

/// A stable pseudo-random fraction of a pair, for the train/validation split.
fn pair_fraction(a: &Listing, b: &Listing) -> f64 {
    let digest = Sha256::digest(format!("{}|{}", a.key(), b.key()).as_bytes());
    let x = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn score(
    listings: &[Listing],
    featurizer: &PairFeaturizer,
    candidates: Candidates,
    reviewed: &BTreeMap<(usize, usize), bool>,
    config: &ResolveConfig,
    progress: &dyn Progress,
) -> Result<(Scored, Option<TrainValid>), ResolveError> {
    let Candidates {
        ids,
        reasons,
        margin_keys,
        sims,
    } = candidates;
    let margins = CandidateMargins::new(&margin_keys, &sims);
    let mut known = PairLabels::of(listings, &ids, reviewed);
    let supervision = known.supervise(&margins, &margin_keys, &sims);
    let labels = &known.labels;
    let labelled: Vec<bool> = labels.iter().flatten().copied().collect();
    if !(labelled.iter().any(|&y| y) && labelled.iter().any(|&y| !y)) {
        let scored = similarity_only(ids, reasons, &sims, known.source, known.gtin, known.review);
        return Ok((scored, None));
    }
    let split = TrainValid::of(listings, &ids, labels);
    let pairs = PairRows {
        featurizer,
        ids: &ids,
        margin_keys: &margin_keys,
        margins: &margins,
    };
    let trained = train(&pairs, &split, config)?;
    let (probability, drivers) = score_in_chunks(&pairs, &trained, progress);
    let scored = Scored {
        ids,
        reasons,
        threshold: trained.model.threshold,
        probability,
        label_source: known.source,
        drivers,
        supervision,
        valid: Some(trained.valid_scores),
        gtin_labelled: known.gtin,
        review_labelled: known.review,
        cross_encoder: None,
    };
    Ok((scored, Some(split)))
}

/// Each candidate pair's label where one is known (reviewed, else GTIN equality).
struct PairLabels {
    labels: Vec<Option<bool>>,
    source: Vec<&'static str>,
    gtin: usize,
    review: usize,
}

impl PairLabels {
    fn of(
        listings: &[Listing],
        ids: &[(usize, usize)],
        reviewed: &BTreeMap<(usize, usize), bool>,
    ) -> Self {
        let mut out = PairLabels {
            labels: vec![None; ids.len()],
            source: vec!["none"; ids.len()],
            gtin: 0,
            review: 0,
        };
        for (k, &(i, j)) in ids.iter().enumerate() {
            if let Some(&y) = reviewed.get(&(i, j)) {
                out.labels[k] = Some(y);
                out.source[k] = "review";
                out.review += 1;
            } else if let (Some(x), Some(y)) = (listings[i].gtin_key(), listings[j].gtin_key()) {
                out.labels[k] = Some(x == y);
                out.source[k] = "gtin";
                out.gtin += 1;
            }
        }
        out
    }

    /// Supervised when there are ten labels of each kind; else the unlabelled pairs get
    /// pseudo-labels (mutual best candidates by TF-IDF and embedding).
    fn supervise(
        &mut self,
        margins: &CandidateMargins,
        margin_keys: &[(usize, usize)],
        sims: &[(f64, f64)],
    ) -> Supervision {
        let positives = self.labels.iter().filter(|l| **l == Some(true)).count();
        let negatives = self.labels.iter().filter(|l| **l == Some(false)).count();
        if positives >= 10 && negatives >= 10 {
            return Supervision::Labelled;
        }
        let mutual_best: Vec<bool> = (0..self.labels.len())
            .map(|k| {
                margins
                    .of(margin_keys[k], sims[k])
                    .iter()
                    .all(|&m| m >= 0.0)
            })
            .collect();
        let pseudo = matcher::pseudo_labels_of(sims, &mutual_best);
        for (k, y) in pseudo.into_iter().enumerate() {
            self.labels[k].get_or_insert(y);
        }
        Supervision::SelfSupervised
    }
}

/// The labelled pairs split four fifths for training, one fifth for the threshold, by each
/// pair's stable random fraction, and capped.
struct TrainValid {
    train: Vec<usize>,
    valid: Vec<usize>,
    y_train: Vec<bool>,
    y_valid: Vec<bool>,
    /// Whether `valid` is held out (false: too few labels, it is the training set).
    held_out: bool,
}

impl TrainValid {
    fn of(listings: &[Listing], ids: &[(usize, usize)], labels: &[Option<bool>]) -> Self {
        let (mut train, mut valid) = (Vec::new(), Vec::new());
        // Each labelled pair's stable random fraction, hashed once: it splits and samples.
        let fraction: HashMap<usize, f64> = (0..ids.len())
            .filter(|&k| labels[k].is_some())
            .map(|k| (k, pair_fraction(&listings[ids[k].0], &listings[ids[k].1])))
            .collect();
        for k in 0..ids.len() {
            if labels[k].is_some() {
                if fraction[&k] < 0.8 {
                    train.push(k);
                } else {
                    valid.push(k);
                }
            }
        }
        // Training needs a sample, not every labelled pair of a large catalogue: the lowest
        // pair fractions (a stable random order) up to a cap.
        let cap = |set: &mut Vec<usize>, n: usize| {
            if set.len() > n {
                set.sort_by(|a, b| fraction[a].total_cmp(&fraction[b]));
                set.truncate(n);
                set.sort_unstable();
            }
        };
        cap(&mut train, MAX_TRAIN_PAIRS);
        cap(&mut valid, MAX_TRAIN_PAIRS / 4);
        let y =
            |set: &[usize]| -> Vec<bool> { set.iter().map(|&k| labels[k] == Some(true)).collect() };
        let (y_train, mut y_valid) = (y(&train), y(&valid));
        let held_out = y_valid.iter().any(|&v| v) && y_valid.iter().any(|&v| !v);
        if !held_out {
            // Too few labels to hold some out: the threshold is chosen on the training pairs.
            valid = train.clone();
            y_valid = y_train.clone();
        }
        TrainValid {
            train,
            valid,
            y_train,
            y_valid,
            held_out,
        }
    }
}

/// What featurises candidate pairs by position.
struct PairRows<'a> {
    featurizer: &'a PairFeaturizer,
    ids: &'a [(usize, usize)],
    margin_keys: &'a [(usize, usize)],
    margins: &'a CandidateMargins,
}

impl PairRows<'_> {
    fn rows_of(&self, set: &[usize]) -> (Vec<Vec<f64>>, Vec<(usize, usize)>) {
        let set_ids: Vec<(usize, usize)> = set.iter().map(|&k| self.ids[k]).collect();
        let set_keys: Vec<(usize, usize)> = set.iter().map(|&k| self.margin_keys[k]).collect();
        (
            self.featurizer
                .featurize_with(&set_ids, &set_keys, self.margins),
            set_ids,
        )
    }
}

/// The fitted matcher: the stacked learned models, the trees with their threshold, and the
/// training pairs' rows (which keep their out-of-fold logits when scored).
struct Trained {
    stacked: StackedLearned,
    model: PairModel,
    valid_scores: Scores,
    x_train: Vec<Vec<f64>>,
    train_position: HashMap<usize, usize>,
}

fn train(
    pairs: &PairRows<'_>,
    split: &TrainValid,
    config: &ResolveConfig,
) -> Result<Trained, ResolveError> {
    let mut names = pairs.featurizer.feature_names();
    let (mut x_train, train_ids) = pairs.rows_of(&split.train);
    let stacked = StackedLearned::fit_on(
        pairs.featurizer,
        &matcher::PROJECT_LEARNED_MODELS,
        &train_ids,
        &split.y_train,
        &mut x_train,
        &mut names,
    );
    let (mut x_valid, valid_ids) = pairs.rows_of(&split.valid);
    stacked.extend_on(pairs.featurizer, &valid_ids, &mut x_valid);
    // A pair both trained and validated on (too few labels) keeps its out-of-fold logits.
    let train_position: HashMap<usize, usize> = split
        .train
        .iter()
        .enumerate()
        .map(|(t, &k)| (k, t))
        .collect();
    for (v, k) in split.valid.iter().enumerate() {
        if let Some(&t) = train_position.get(k) {
            x_valid[v] = x_train[t].clone();
        }
    }
    let (mut model, _) = PairModel::fit(
        &x_train,
        &split.y_train,
        &x_valid,
        &split.y_valid,
        names,
        config.trees,
    )?;
    let p_valid = model.predict(&x_valid);
    model.threshold = matcher::plateau_threshold(&p_valid, &split.y_valid);
    let valid_scores = Scores::of(&p_valid, &split.y_valid, model.threshold);
    Ok(Trained {
        stacked,
        model,
        valid_scores,
        x_train,
        train_position,
    })
}

/// Every candidate pair's probability and drivers, featurised a chunk at a time so memory
/// holds one chunk of rows, not all of them.
fn score_in_chunks(
    pairs: &PairRows<'_>,
    trained: &Trained,
    progress: &dyn Progress,
) -> (Vec<f64>, Vec<String>) {
    let ids = pairs.ids;
    let mut probability = Vec::with_capacity(ids.len());
    let mut drivers = Vec::with_capacity(ids.len());
    for start in (0..ids.len()).step_by(SCORE_CHUNK) {
        let end = (start + SCORE_CHUNK).min(ids.len());
        let mut rows = pairs.featurizer.featurize_with(
            &ids[start..end],
            &pairs.margin_keys[start..end],
            pairs.margins,
        );
        trained
            .stacked
            .extend_on(pairs.featurizer, &ids[start..end], &mut rows);
        // Training pairs keep their out-of-fold logits.
        for (offset, row) in rows.iter_mut().enumerate() {
            if let Some(&t) = trained.train_position.get(&(start + offset)) {
                *row = trained.x_train[t].clone();
            }
        }
        let p = trained.model.predict(&rows);
        drivers.extend(explain_pairs(&trained.model, &rows, &p));
        probability.extend(p);
        progress.advance((end - start) as u64);
    }
    (probability, drivers)
}

/// Scores without a model, for a project too small to have labels of both kinds.
fn similarity_only(
    ids: Vec<(usize, usize)>,
    reasons: Vec<u8>,
    sims: &[(f64, f64)],
    label_source: Vec<&'static str>,
    gtin_labelled: usize,
    review_labelled: usize,
) -> Scored {
    let probability: Vec<f64> = sims
        .iter()
        .map(|(emb, tfidf)| (emb + tfidf) / 2.0)
        .collect();
    let drivers = sims
        .iter()
        .map(|(emb, tfidf)| format!("all.embedding_cosine={emb:.3}; all.tfidf_cosine={tfidf:.3}"))
        .collect();
    Scored {
        ids,
        reasons,
        probability,
        threshold: 0.8,
        label_source,
        drivers,
        supervision: Supervision::Similarity,
        valid: None,
        gtin_labelled,
        review_labelled,
        cross_encoder: None,
    }
}

/// The three features that moved each pair's log-odds most, for pairs with some chance of
/// matching (the rest are plainly different products and explaining them costs time).
fn explain_pairs(model: &PairModel, rows: &[Vec<f64>], probability: &[f64]) -> Vec<String> {
    let worth: Vec<usize> = (0..rows.len()).filter(|&k| probability[k] >= 0.1).collect();
    let picked: Vec<Vec<f64>> = worth.iter().map(|&k| rows[k].clone()).collect();
    let mut out = vec![String::new(); rows.len()];
    for (&k, drivers) in worth.iter().zip(model.explain(&picked, 3)) {
        out[k] = drivers
            .iter()
            .map(|(name, value, contribution)| format!("{name}={value:.3} ({contribution:+.2})"))
            .collect::<Vec<_>>()
            .join("; ");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_are_canonical() {
        assert_eq!(
            canonical_capacity(Some(1.0), Some("TB".into())).as_deref(),
            Some("1024GB")
        );
        assert_eq!(
            canonical_capacity(Some(128.0), Some("GB".into())).as_deref(),
            Some("128GB")
        );
        assert_eq!(
            capacity_in_title("Apple iPhone 14, 256GB, Blue").as_deref(),
            Some("256GB")
        );
        assert_eq!(capacity_in_title("Serum 50 ml").as_deref(), Some("50ml"));
        assert_eq!(capacity_in_title("iPhone 14 256G"), None);
        assert_eq!(capacity_in_title("SM-G9910 5G"), None);
    }

    #[test]
    fn pruning_keeps_the_most_similar_pairs_of_each_key() {
        // Key 7 has four candidates, key 9 one.
        let keys = [7, 9, 7, 7, 7];
        let score = [0.2, 0.1, 0.9, 0.5, 0.9];
        let mut kept = most_similar_per_key(&keys, &score, 2);
        kept.sort_unstable();
        // Key 7: the two 0.9s (a tie, both within two); key 9: its only pair.
        assert_eq!(kept, [1, 2, 4]);
        let mut kept = most_similar_per_key(&keys, &score, 3);
        kept.sort_unstable();
        assert_eq!(kept, [1, 2, 3, 4]);
    }
}
