//! Constrained average-linkage clustering of scored listing pairs.

use std::collections::{BTreeMap, HashMap};

use shopfuse_core::config::ResolveConfig;

use super::aliases::FieldAliases;
use super::{Listing, Scored};
use shopfuse_core::linkage::{Clustering, Merges};

/// Why two listings may never be in one cluster, or `None`.
fn cannot_link(
    a: &Listing,
    b: &Listing,
    aliases: &FieldAliases,
    config: &ResolveConfig,
) -> Option<&'static str> {
    if config.one_listing_per_platform && a.platform == b.platform {
        return Some("same platform");
    }
    if let (Some(x), Some(y)) = (a.gtin_key(), b.gtin_key()) {
        if x != y {
            return Some("different gtin");
        }
    }
    if let (Some(x), Some(y)) = (&a.capacity, &b.capacity) {
        if !x.eq_ignore_ascii_case(y) {
            return Some("capacity differs");
        }
    }
    if let (Some(x), Some(y)) = (&a.color, &b.color) {
        if aliases.color.conflict(x, y) {
            return Some("colour differs");
        }
    }
    None
}

pub(super) fn cluster(
    listings: &[Listing],
    scored: &Scored,
    forced: &BTreeMap<(usize, usize), bool>,
    aliases: &FieldAliases,
    config: &ResolveConfig,
) -> Clustering {
    let n = listings.len();
    let mut score: HashMap<(usize, usize), f64> = HashMap::new();
    for (k, &pair) in scored.ids.iter().enumerate() {
        score.insert(pair, scored.probability[k]);
    }
    let edges = ordered_edges(listings, scored, forced);
    let mut groups = Merges::singletons(n);
    for &(weight, i, j, why) in &edges {
        let (ci, cj) = (groups.group_of(i), groups.group_of(j));
        if ci == cj {
            continue;
        }
        let link = match cross_link(
            &groups,
            (ci, cj),
            listings,
            &score,
            forced,
            (aliases, config),
        ) {
            Ok(link) => link,
            Err(reason) => {
                groups.refuse(reason);
                continue;
            }
        };
        let CrossLink {
            sum,
            scored_pairs,
            cross,
        } = link;
        let average = if scored_pairs == 0 {
            0.0
        } else {
            sum / scored_pairs as f64
        };
        // A model edge joins two clusters only when the listings agree on average and most
        // cross pairs were compared at all: one strong link does not chain two groups.
        if why == "model" && (average < scored.threshold || 2 * scored_pairs < cross) {
            groups.refuse("weak average link");
            continue;
        }
        let (keep, gone) = if groups.members(ci).len() >= groups.members(cj).len() {
            (ci, cj)
        } else {
            (cj, ci)
        };
        let p = if weight >= 2.0 { weight - 2.0 } else { weight };
        let step = format!(
            "{} ~ {}: p={p:.3}, {why}, average link {average:.3} over {scored_pairs}/{cross} pairs",
            listings[i].key(),
            listings[j].key()
        );
        groups.merge(keep, gone, step);
    }
    groups.finish(|x, y| score.get(&(x, y)).copied())
}

/// Candidate edges strongest first: reviewed matches and equal GTINs (must-links, weight
/// 2 + p), then model edges at or above the threshold; reviewed non-matches are dropped.
fn ordered_edges(
    listings: &[Listing],
    scored: &Scored,
    forced: &BTreeMap<(usize, usize), bool>,
) -> Vec<(f64, usize, usize, &'static str)> {
    // Edges: reviewed matches and equal GTINs first (must-links), then by probability.
    let mut edges: Vec<(f64, usize, usize, &'static str)> = Vec::new();
    for (k, &(i, j)) in scored.ids.iter().enumerate() {
        let p = scored.probability[k];
        let must = match forced.get(&(i, j)) {
            Some(true) => Some("review"),
            Some(false) => continue,
            None => match (listings[i].gtin_key(), listings[j].gtin_key()) {
                (Some(x), Some(y)) if x == y => Some("gtin"),
                _ => None,
            },
        };
        match must {
            Some(why) => edges.push((2.0 + p, i, j, why)),
            None if p >= scored.threshold => edges.push((p, i, j, "model")),
            None => {}
        }
    }
    edges.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    edges
}

/// Totals over the cross pairs of two clusters about to merge.
struct CrossLink {
    /// Sum of the scored cross pairs' probabilities (a reviewed match counts 1).
    sum: f64,
    scored_pairs: usize,
    cross: usize,
}

/// The cross pairs of clusters `ci` and `cj`, or why they cannot merge (a reviewed
/// non-match or a cannot-link rule between some member pair).
fn cross_link(
    groups: &Merges,
    (ci, cj): (usize, usize),
    listings: &[Listing],
    score: &HashMap<(usize, usize), f64>,
    forced: &BTreeMap<(usize, usize), bool>,
    (aliases, config): (&FieldAliases, &ResolveConfig),
) -> Result<CrossLink, &'static str> {
    let (mut sum, mut scored_pairs, mut cross) = (0.0, 0usize, 0usize);
    for &x in groups.members(ci) {
        for &y in groups.members(cj) {
            let key = (x.min(y), x.max(y));
            if forced.get(&key) == Some(&false) {
                return Err("reviewed non-match");
            }
            if let Some(reason) = cannot_link(&listings[x], &listings[y], aliases, config) {
                return Err(reason);
            }
            cross += 1;
            if let Some(p) = score.get(&key) {
                sum += if forced.get(&key) == Some(&true) {
                    1.0
                } else {
                    *p
                };
                scored_pairs += 1;
            }
        }
    }
    Ok(CrossLink {
        sum,
        scored_pairs,
        cross,
    })
}
