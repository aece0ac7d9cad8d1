//! Product clusters against a ground truth: pairwise and cluster-level precision, recall and
//! F1, and the two things product matching must get right across platforms: listings of one
//! product in different languages end up together, its variants stay apart.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use shopfuse_core::metrics::{exact_cluster_scores, group_by, pair_scores, pairs_within, Scores};
use shopfuse_core::TableStore;

use crate::catalogue::{offers, product_clusters, resolve_candidates, ResolveError};

/// One listing as the truth and the prediction see it.
#[derive(Debug, Clone)]
pub struct ClusteredListing {
    pub key: String,
    /// Predicted cluster (golden product) id.
    pub predicted: String,
    /// True product id.
    pub product: String,
    /// True product family (the variants of one model share it).
    pub family: String,
    /// Whether the title is written in Chinese (or another CJK script).
    pub cjk_title: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MatchEvalReport {
    pub listings: usize,
    pub true_products: usize,
    pub predicted_clusters: usize,
    /// Over all pairs of listings: same true product vs same predicted cluster.
    pub pairwise: Scores,
    /// A cluster counts when its listings are exactly one true product's listings.
    pub cluster: Scores,
    /// Share of the true pairs with one Chinese and one non-Chinese title that are clustered.
    pub cross_language_recall: f64,
    pub cross_language_pairs: usize,
    /// Share of pairs of different variants of one family (same model, other colour or
    /// capacity) that are kept apart.
    pub variants_apart: f64,
    pub variant_pairs: usize,
}

/// A project's clusters and candidates scored against a ground truth.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectMatchEval {
    #[serde(flatten)]
    pub report: MatchEvalReport,
    pub blocking: CandidateEvalReport,
    pub truth_listings_not_in_project: usize,
    pub project_listings_not_in_truth: usize,
}

/// Scores the committed `product_clusters` (titles from `offers`) and `resolve_candidates`
/// against `truth`: "platform:listing_id" → (product id, family id). `None` when the project
/// has no clusters yet.
pub fn evaluate_project(
    store: &TableStore,
    truth: &BTreeMap<String, (String, String)>,
) -> Result<Option<ProjectMatchEval>, ResolveError> {
    let (Some(clusters), Some(offer_rows)) = (
        store.read_rows(product_clusters::NAME)?,
        store.read_rows(offers::NAME)?,
    ) else {
        return Ok(None);
    };
    let key = |t: &shopfuse_core::value::NamedRows, row: &[shopfuse_core::Value]| {
        format!(
            "{}:{}",
            t.text(row, offers::platform).unwrap_or_default(),
            t.text(row, offers::listing_id).unwrap_or_default()
        )
    };
    let titles: BTreeMap<String, String> = offer_rows
        .rows
        .iter()
        .map(|row| {
            (
                key(&offer_rows, row),
                offer_rows.text(row, offers::title).unwrap_or_default(),
            )
        })
        .collect();
    let mut listings = Vec::new();
    let mut unknown = 0;
    for row in &clusters.rows {
        let key = key(&clusters, row);
        let (Some(title), Some((product, family))) = (titles.get(&key), truth.get(&key)) else {
            unknown += usize::from(titles.contains_key(&key));
            continue;
        };
        listings.push(ClusteredListing {
            cjk_title: crate::features::has_cjk(title),
            predicted: clusters
                .text(row, product_clusters::golden_id)
                .unwrap_or_default(),
            key,
            product: product.clone(),
            family: family.clone(),
        });
    }
    let candidates: Vec<(String, String)> = match store.read_rows(resolve_candidates::NAME)? {
        None => Vec::new(),
        Some(c) => c
            .rows
            .iter()
            .map(|row| {
                let side = |platform: &str, listing: &str| {
                    format!(
                        "{}:{}",
                        c.text(row, platform).unwrap_or_default(),
                        c.text(row, listing).unwrap_or_default()
                    )
                };
                (
                    side(
                        resolve_candidates::left_platform,
                        resolve_candidates::left_listing_id,
                    ),
                    side(
                        resolve_candidates::right_platform,
                        resolve_candidates::right_listing_id,
                    ),
                )
            })
            .collect(),
    };
    Ok(Some(ProjectMatchEval {
        report: evaluate_clusters(&listings),
        blocking: evaluate_candidates(&listings, &candidates),
        truth_listings_not_in_project: truth.len() - listings.len(),
        project_listings_not_in_truth: unknown,
    }))
}

/// Scores `listings`; each appears once.
pub fn evaluate_clusters(listings: &[ClusteredListing]) -> MatchEvalReport {
    let group =
        |f: &dyn Fn(&ClusteredListing) -> &str| group_by(listings.len(), |i| f(&listings[i]));
    let truth = group(&|l| l.product.as_str());
    let predicted = group(&|l| l.predicted.as_str());
    let families = group(&|l| l.family.as_str());
    let pairs = pairs_within;
    let (true_pairs, predicted_pairs) = (pairs(&truth), pairs(&predicted));
    let pairwise = pair_scores(&true_pairs, &predicted_pairs);
    let cluster = exact_cluster_scores(&truth, &predicted);

    let same_cluster = |a: usize, b: usize| listings[a].predicted == listings[b].predicted;
    let cross: Vec<&(usize, usize)> = true_pairs
        .iter()
        .filter(|(a, b)| listings[*a].cjk_title != listings[*b].cjk_title)
        .collect();
    let cross_found = cross.iter().filter(|(a, b)| same_cluster(*a, *b)).count();
    let variant_pairs: Vec<(usize, usize)> = pairs(&families)
        .into_iter()
        .filter(|(a, b)| listings[*a].product != listings[*b].product)
        .collect();
    let apart = variant_pairs
        .iter()
        .filter(|(a, b)| !same_cluster(*a, *b))
        .count();
    let share = |n: usize, d: usize| if d == 0 { 1.0 } else { n as f64 / d as f64 };
    MatchEvalReport {
        listings: listings.len(),
        true_products: truth.len(),
        predicted_clusters: predicted.len(),
        pairwise,
        cluster,
        cross_language_recall: share(cross_found, cross.len()),
        cross_language_pairs: cross.len(),
        variants_apart: share(apart, variant_pairs.len()),
        variant_pairs: variant_pairs.len(),
    }
}

/// How well the candidate pairs cover the true matches across platforms.
#[derive(Debug, Clone, Serialize)]
pub struct CandidateEvalReport {
    pub candidate_pairs: usize,
    /// Pairs of listings of one true product on different platforms.
    pub true_pairs: usize,
    /// Share of `true_pairs` among the candidates (recall of blocking and pruning).
    pub pair_completeness: f64,
    /// 1 − candidates / all cross-platform pairs of the scored listings.
    pub reduction_ratio: f64,
}

/// Scores `candidates` (pairs of listing keys, "platform:listing_id") against the truth of
/// `listings`; a listing's platform is its key up to the first colon.
pub fn evaluate_candidates(
    listings: &[ClusteredListing],
    candidates: &[(String, String)],
) -> CandidateEvalReport {
    let platform = |key: &str| key.split(':').next().unwrap_or_default().to_string();
    let mut by_product: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut per_platform: BTreeMap<String, u64> = BTreeMap::new();
    for l in listings {
        by_product.entry(&l.product).or_default().push(&l.key);
        *per_platform.entry(platform(&l.key)).or_default() += 1;
    }
    let ordered = |a: &str, b: &str| {
        if a <= b {
            (a.to_string(), b.to_string())
        } else {
            (b.to_string(), a.to_string())
        }
    };
    let mut truth = BTreeSet::new();
    for keys in by_product.values() {
        for (k, a) in keys.iter().enumerate() {
            for b in &keys[k + 1..] {
                if platform(a) != platform(b) {
                    truth.insert(ordered(a, b));
                }
            }
        }
    }
    let candidates: BTreeSet<(String, String)> =
        candidates.iter().map(|(a, b)| ordered(a, b)).collect();
    let found = truth.iter().filter(|p| candidates.contains(*p)).count();
    let total: u64 = per_platform.values().sum();
    let possible = total * total.saturating_sub(1) / 2
        - per_platform
            .values()
            .map(|n| n * n.saturating_sub(1) / 2)
            .sum::<u64>();
    CandidateEvalReport {
        candidate_pairs: candidates.len(),
        true_pairs: truth.len(),
        pair_completeness: if truth.is_empty() {
            1.0
        } else {
            found as f64 / truth.len() as f64
        },
        reduction_ratio: if possible == 0 {
            0.0
        } else {
            1.0 - candidates.len() as f64 / possible as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(key: &str, predicted: &str, product: &str, family: &str, cjk: bool) -> ClusteredListing {
        ClusteredListing {
            key: key.into(),
            predicted: predicted.into(),
            product: product.into(),
            family: family.into(),
            cjk_title: cjk,
        }
    }

    #[test]
    fn pairwise_cluster_language_and_variant_scores() {
        let listings = vec![
            l("jd:1", "g1", "p1", "f1", true),
            l("amazon:1", "g1", "p1", "f1", false),
            l("own:1", "g2", "p1", "f1", false),
            // A variant of p1, wrongly merged with p1's own-shop listing.
            l("jd:2", "g2", "p2", "f1", true),
            l("amazon:3", "g3", "p3", "f3", false),
        ];
        let r = evaluate_clusters(&listings);
        // True pairs: (0,1) (0,2) (1,2); predicted: (0,1) (2,3).
        assert_eq!(
            (
                r.pairwise.true_positives,
                r.pairwise.false_positives,
                r.pairwise.false_negatives
            ),
            (1, 1, 2)
        );
        // Exact clusters: g3 only.
        assert_eq!(
            (
                r.cluster.true_positives,
                r.predicted_clusters,
                r.true_products
            ),
            (1, 3, 3)
        );
        // Cross-language true pairs: (0,1) found, (0,2) missed.
        assert_eq!((r.cross_language_pairs, r.cross_language_recall), (2, 0.5));
        // Variant pairs: p2 against p1's three listings; one merged.
        assert_eq!(r.variant_pairs, 3);
        assert!((r.variants_apart - 2.0 / 3.0).abs() < 1e-12);

        // Cross-platform true pairs: (jd:1, amazon:1), (jd:1, own:1), (amazon:1, own:1).
        let candidates = [
            ("amazon:1".to_string(), "jd:1".to_string()),
            ("own:1".to_string(), "amazon:1".to_string()),
            ("jd:2".to_string(), "amazon:3".to_string()),
        ];
        let c = evaluate_candidates(&listings, &candidates);
        assert_eq!((c.true_pairs, c.candidate_pairs), (3, 3));
        assert!((c.pair_completeness - 2.0 / 3.0).abs() < 1e-12);
        // 5 listings on jd (2), amazon (2), own (1): 10 pairs, 2 within a platform.
        assert!((c.reduction_ratio - (1.0 - 3.0 / 8.0)).abs() < 1e-12);
    }
}
