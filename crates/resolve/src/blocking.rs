//! Blocking: the candidate pairs worth scoring, out of every left × right pair.
//!
//! Three blockers, unioned, each recording why it proposed a pair:
//! * identifier keys: GTIN/EAN/UPC numbers (8–14 digits, leading zeros dropped) and model
//!   codes (letters and digits mixed: "dscw120p", "g9910", and adjacent tokens joined, so
//!   "SM-G9910" also yields "smg9910");
//! * rare-token keys: each record's few highest-IDF tokens (CJK characters included);
//!   an oversized block of either key kind is narrowed to embedding neighbours inside it (so
//!   a common word cannot produce a cross product, yet "Lancome … Gen223" still meets
//!   "兰蔻 … Gen223" when a thousand listings say Gen223), and such pairs count as token pairs;
//! * embedding neighbours: the k nearest records of the other side in the multilingual
//!   sentence space, from an HNSW index (`instant-distance`), both directions; this is what
//!   pairs a Chinese title with its English twin when they share no token.

use std::collections::{BTreeMap, BTreeSet};

use instant_distance::{Builder, HnswMap, Search};
use rayon::prelude::*;
use serde::Serialize;

use crate::features::{is_code, is_number, Idf, Prepared};

/// Which blocker proposed a pair (bit set).
pub const BY_IDENTIFIER: u8 = 1;
pub const BY_TOKEN: u8 = 2;
pub const BY_EMBEDDING: u8 = 4;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct BlockingConfig {
    /// Nearest neighbours per record and direction in the embedding index.
    pub knn: usize,
    /// Rare tokens per record used as keys.
    pub rare_tokens: usize,
    /// Blocks with more pairs than this are narrowed to embedding neighbours within them.
    pub max_block_pairs: usize,
    /// Neighbours per record and direction inside a narrowed block.
    pub refine_k: usize,
}

impl Default for BlockingConfig {
    fn default() -> Self {
        BlockingConfig {
            knn: 10,
            rare_tokens: 4,
            max_block_pairs: 400,
            refine_k: 3,
        }
    }
}

/// A candidate pair: indices into the left and right record lists, and the blockers that
/// proposed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct CandidatePair {
    pub left: usize,
    pub right: usize,
    pub reasons: u8,
}

/// Identifier keys of a record: GTIN-like numbers and model codes.
pub fn identifier_keys(tokens: &[String]) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for t in tokens {
        if t.len() >= 8 && t.len() <= 14 && t.chars().all(|c| c.is_ascii_digit()) {
            keys.insert(format!("gtin:{}", t.trim_start_matches('0')));
        } else if is_code(t) && t.len() >= 4 {
            keys.insert(format!("code:{t}"));
        }
    }
    for w in tokens.windows(2) {
        let joined = format!("{}{}", w[0], w[1]);
        if w[0].len() <= 4 && is_code(&joined) && joined.len() >= 5 && !is_number(&w[1]) {
            keys.insert(format!("code:{joined}"));
        }
    }
    keys
}

/// The `n` highest-IDF tokens of a record (ties broken by the token, for stable keys).
fn rare_keys(tokens: &[String], idf: &Idf, n: usize) -> Vec<String> {
    let unique: BTreeSet<&String> = tokens
        .iter()
        .filter(|t| !(is_number(t) && t.len() <= 2))
        .collect();
    let mut scored: Vec<(f64, &String)> = unique.into_iter().map(|t| (idf.weight(t), t)).collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(n)
        .map(|(_, t)| format!("tok:{t}"))
        .collect()
}

/// Pairs proposed with their reasons, gathered in any order and with repeats, then sorted once
/// with each pair's reasons merged. At a million listings the blockers propose tens of
/// millions of pairs; pushing onto a flat vector and one parallel sort is several times faster
/// than a tree- or hash-map insert per pair, and holds 24 bytes a pair instead of a node.
#[derive(Debug, Default)]
pub struct PairReasons {
    pairs: Vec<((usize, usize), u8)>,
}

impl PairReasons {
    pub fn add(&mut self, pair: (usize, usize), reasons: u8) {
        self.pairs.push((pair, reasons));
    }

    pub fn add_all(&mut self, pairs: impl IntoIterator<Item = (usize, usize)>, reasons: u8) {
        self.pairs.extend(pairs.into_iter().map(|p| (p, reasons)));
    }

    /// The distinct pairs in order, each with the union of its reasons.
    pub fn merged(mut self) -> Vec<((usize, usize), u8)> {
        self.pairs.par_sort_unstable_by_key(|p| p.0);
        let mut out: Vec<((usize, usize), u8)> = Vec::with_capacity(self.pairs.len());
        for (pair, reasons) in self.pairs {
            match out.last_mut() {
                Some(last) if last.0 == pair => last.1 |= reasons,
                _ => out.push((pair, reasons)),
            }
        }
        out
    }
}

/// (left, right) record positions, with repeats.
type Pairs = Vec<(usize, usize)>;

/// Pairs of records sharing a key. A block of more than `max_pairs` pairs (a key too common
/// to decide anything alone: a generation number shared across brands, a frequent word) is
/// narrowed rather than dropped: each record in it is paired with its `refine_k` nearest
/// records of the other side *within the block* by embedding, so "Lancome … Gen223" still meets
/// "兰蔻 … Gen223" though a thousand listings say Gen223. Blocks with more than
/// [`MAX_REFINED_SIDE`] records on a side say nothing and are dropped. Returns the pairs of
/// whole blocks and the pairs found inside narrowed ones, each with repeats (see
/// [`PairReasons`]). Blocks are independent, so they are paired in parallel.
fn key_pairs(
    left: &[Vec<String>],
    right: &[Vec<String>],
    vectors: (&[&[f32]], &[&[f32]]),
    max_pairs: usize,
    refine_k: usize,
) -> (Pairs, Pairs) {
    let mut blocks: BTreeMap<&str, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for (i, keys) in left.iter().enumerate() {
        for k in keys {
            blocks.entry(k).or_default().0.push(i);
        }
    }
    for (j, keys) in right.iter().enumerate() {
        for k in keys {
            blocks.entry(k).or_default().1.push(j);
        }
    }
    let blocks: Vec<(Vec<usize>, Vec<usize>)> = blocks
        .into_values()
        .filter(|(l, r)| !l.is_empty() && !r.is_empty())
        .collect();
    let paired: Vec<(Pairs, Pairs)> = blocks
        .par_iter()
        .map(|(l, r)| block_pairs(l, r, vectors, max_pairs, refine_k))
        .collect();
    let mut whole = Vec::with_capacity(paired.iter().map(|p| p.0.len()).sum());
    let mut narrowed = Vec::with_capacity(paired.iter().map(|p| p.1.len()).sum());
    for (w, n) in paired {
        whole.extend(w);
        narrowed.extend(n);
    }
    (whole, narrowed)
}

/// One key block's pairs: its whole cross product, or its records' nearest neighbours inside
/// it (see [`key_pairs`]).
fn block_pairs(
    l: &[usize],
    r: &[usize],
    vectors: (&[&[f32]], &[&[f32]]),
    max_pairs: usize,
    refine_k: usize,
) -> (Pairs, Pairs) {
    if l.len() * r.len() <= max_pairs {
        let whole = l
            .iter()
            .flat_map(|&i| r.iter().map(move |&j| (i, j)))
            .collect();
        return (whole, Vec::new());
    }
    let mut narrowed = Vec::new();
    if refine_k > 0 && l.len().max(r.len()) <= MAX_REFINED_SIDE {
        let lv: Vec<&[f32]> = l.iter().map(|&i| vectors.0[i]).collect();
        let rv: Vec<&[f32]> = r.iter().map(|&j| vectors.1[j]).collect();
        let (by_left, by_right) = nearest_both_ways(&lv, &rv, refine_k);
        for (x, near) in by_left.into_iter().enumerate() {
            narrowed.extend(near.into_iter().map(|y| (l[x], r[y])));
        }
        for (y, near) in by_right.into_iter().enumerate() {
            narrowed.extend(near.into_iter().map(|x| (l[x], r[y])));
        }
    }
    (Vec::new(), narrowed)
}

/// Largest side of a key block that is narrowed by embedding neighbours instead of dropped.
const MAX_REFINED_SIDE: usize = 2_000;

pub use shopfuse_core::vector::dot;
use shopfuse_core::vector::{dot_unordered, dots};

/// A unit vector as an HNSW point; cosine distance (the encoder's vectors have unit length,
/// so the cosine is the dot product). The index sums it in its own order
/// ([`dot_unordered`]): its proposals are reranked by the exact [`dot`].
#[derive(Clone)]
struct UnitVector<'a>(&'a [f32]);

impl instant_distance::Point for UnitVector<'_> {
    fn distance(&self, other: &Self) -> f32 {
        1.0 - dot_unordered(self.0, other.0)
    }
}

/// Below this many left × right pairs the neighbours are found exactly from the full
/// similarity matrix (at most 128 MB): faster than building two indexes at that size, and
/// exact, so candidates do not depend on the index's (parallel, order-dependent) construction.
const EXACT_KNN_PAIRS: usize = 32_000_000;

use shopfuse_core::vector::top_k_of as top_k;

/// Each left vector's `k` nearest right vectors and each right vector's `k` nearest left ones.
pub fn nearest_both_ways(
    left: &[&[f32]],
    right: &[&[f32]],
    k: usize,
) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    if k == 0 {
        return (vec![Vec::new(); left.len()], vec![Vec::new(); right.len()]);
    }
    if !exact_neighbours(left.len(), right.len()) {
        return (nearest(left, right, k), nearest(right, left, k));
    }
    // One similarity matrix serves both directions.
    let matrix: Vec<Vec<f32>> = left.par_iter().map(|l| dots(l, right)).collect();
    let by_left = matrix
        .par_iter()
        .map(|row| top_k(row.iter().copied().zip(0..).collect(), k))
        .collect();
    let by_right = (0..right.len())
        .into_par_iter()
        .map(|j| top_k(matrix.iter().map(|row| row[j]).zip(0..).collect(), k))
        .collect();
    (by_left, by_right)
}

/// An approximate nearest-neighbour index (HNSW) over unit vectors, built once and searched
/// from any number of query sets.
pub struct VectorIndex<'a> {
    index: HnswMap<UnitVector<'a>, usize>,
}

impl<'a> VectorIndex<'a> {
    /// Builds the index on one thread. instant-distance inserts points in parallel when it
    /// can, and then the graph — and so the candidates — depend on which thread got where
    /// first: a re-run of the stage on the same data gave a few dozen different pairs among
    /// 1.5 M. One thread makes the graph a function of the data and the seed; callers build
    /// the indexes of several platforms side by side to keep the cores busy.
    pub fn build(targets: &[&'a [f32]], k: usize) -> Self {
        let points: Vec<UnitVector> = targets.iter().map(|v| UnitVector(v)).collect();
        let values: Vec<usize> = (0..targets.len()).collect();
        let builder = Builder::default()
            .seed(7)
            // Lower than the crate's 100: a candidate generator needs the match among the
            // k nearest, not the exact k nearest, and construction cost grows with it.
            .ef_construction(48)
            .ef_search(k.max(48));
        let build = move || -> HnswMap<UnitVector, usize> { builder.build(points, values) };
        let index = match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
            Ok(pool) => pool.install(build),
            // Without a pool of its own (threads exhausted) the index is built in place.
            Err(_) => build(),
        };
        VectorIndex { index }
    }

    /// For each query vector, the positions of its `k` nearest targets.
    pub fn search(&self, queries: &[&[f32]], k: usize) -> Vec<Vec<usize>> {
        queries
            .par_iter()
            // One search state per rayon job, not per query: a fresh one allocates and zeroes a
            // visited mark per indexed point. Every search resets the state it is given.
            .map_init(Search::default, |search, q| {
                self.index
                    .search(&UnitVector(q), search)
                    .take(k)
                    .map(|item| *item.value)
                    .collect()
            })
            .collect()
    }
}

/// Sentence vectors projected onto their leading principal directions, for the neighbour
/// index of a large catalogue. Every HNSW step computes distances, and at a million listings
/// those dominate the stage; the leading components of the (uncentred) second-moment matrix
/// keep the dot products that decide who is near whom, at a quarter of the cost. The index
/// only proposes candidates: their similarity is then taken on the full vectors. Serialisable,
/// so an index built on projected vectors can be saved with the projection its queries need.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Projection {
    /// `dims` rows of the input dimension, strongest direction first.
    basis: Vec<Vec<f32>>,
}

/// Vectors the projection is fitted on (an even sample of them beyond this many).
const PROJECTION_SAMPLE: usize = 20_000;

impl Projection {
    /// The `dims` leading directions of `vectors` (all of them when `dims` ≥ their dimension).
    pub fn fit(vectors: &[&[f32]], dims: usize) -> Self {
        let d = vectors.first().map_or(0, |v| v.len());
        if vectors.is_empty() || d == 0 {
            return Projection { basis: Vec::new() };
        }
        let step = vectors.len().div_ceil(PROJECTION_SAMPLE).max(1);
        let sample: Vec<&[f32]> = vectors.iter().step_by(step).copied().collect();
        let x = faer::Mat::<f64>::from_fn(sample.len(), d, |i, j| f64::from(sample[i][j]));
        let moment = x.transpose() * &x;
        let basis = match moment.self_adjoint_eigen(faer::Side::Lower) {
            // Eigenvalues ascend: the last columns are the strongest directions.
            Ok(eigen) => {
                let u = eigen.U();
                (0..dims.min(d))
                    .map(|k| (0..d).map(|j| u[(j, d - 1 - k)] as f32).collect())
                    .collect()
            }
            // No decomposition (it does not fail on a symmetric matrix, but never guess):
            // the identity keeps the full vectors.
            Err(_) => (0..d)
                .map(|k| (0..d).map(|j| f32::from(u8::from(j == k))).collect())
                .collect(),
        };
        Projection { basis }
    }

    pub fn apply(&self, v: &[f32]) -> Vec<f32> {
        let basis: Vec<&[f32]> = self.basis.iter().map(Vec::as_slice).collect();
        dots(v, &basis)
    }
}

/// Of each query's proposed neighbours (`near[q]`, positions in `targets`), the `k` with the
/// largest dot product with the query.
pub fn rerank(
    queries: &[&[f32]],
    targets: &[&[f32]],
    near: Vec<Vec<usize>>,
    k: usize,
) -> Vec<Vec<usize>> {
    near.into_par_iter()
        .zip(queries)
        .map(|(near, q)| {
            let near_vectors: Vec<&[f32]> = near.iter().map(|&j| targets[j]).collect();
            top_k(dots(q, &near_vectors).into_iter().zip(near).collect(), k)
        })
        .collect()
}

/// For each query vector, the indices of its `k` nearest `targets`.
fn nearest(queries: &[&[f32]], targets: &[&[f32]], k: usize) -> Vec<Vec<usize>> {
    if targets.is_empty() || k == 0 {
        return vec![Vec::new(); queries.len()];
    }
    VectorIndex::build(targets, k).search(queries, k)
}

/// Whether [`nearest_both_ways`] computes the exact similarity matrix for these sizes.
pub fn exact_neighbours(left: usize, right: usize) -> bool {
    left * right <= EXACT_KNN_PAIRS
}

/// The candidate pairs between `left` and `right`, sorted, each with its reasons.
pub fn candidate_pairs(
    left: &[&Prepared],
    right: &[&Prepared],
    idf: &Idf,
    config: &BlockingConfig,
) -> Vec<CandidatePair> {
    let mut reasons = PairReasons::default();
    let ids = |side: &[&Prepared]| -> Vec<Vec<String>> {
        side.par_iter()
            .map(|p| identifier_keys(&p.all_tokens).into_iter().collect())
            .collect()
    };
    let lv: Vec<&[f32]> = left.iter().map(|p| p.main_vector.as_slice()).collect();
    let rv: Vec<&[f32]> = right.iter().map(|p| p.main_vector.as_slice()).collect();
    let vectors = (lv.as_slice(), rv.as_slice());
    // A shared identifier is strong evidence; a shared token inside a narrowed block (an
    // identifier-like token too common to be one) is only as strong as a rare token.
    let (whole, narrowed) = key_pairs(
        &ids(left),
        &ids(right),
        vectors,
        config.max_block_pairs,
        config.refine_k,
    );
    reasons.add_all(whole, BY_IDENTIFIER);
    reasons.add_all(narrowed, BY_TOKEN);
    let rare = |side: &[&Prepared]| -> Vec<Vec<String>> {
        side.par_iter()
            .map(|p| rare_keys(&p.all_tokens, idf, config.rare_tokens))
            .collect()
    };
    let (whole, narrowed) = key_pairs(
        &rare(left),
        &rare(right),
        vectors,
        config.max_block_pairs,
        config.refine_k,
    );
    reasons.add_all(whole.into_iter().chain(narrowed), BY_TOKEN);
    let (left_near, right_near) = nearest_both_ways(&lv, &rv, config.knn);
    for (i, near) in left_near.into_iter().enumerate() {
        reasons.add_all(near.into_iter().map(|j| (i, j)), BY_EMBEDDING);
    }
    for (j, near) in right_near.into_iter().enumerate() {
        reasons.add_all(near.into_iter().map(|i| (i, j)), BY_EMBEDDING);
    }
    reasons
        .merged()
        .into_iter()
        .map(|((left, right), reasons)| CandidatePair {
            left,
            right,
            reasons,
        })
        .collect()
}

/// How well a candidate set covers the true matches.
#[derive(Debug, Clone, Serialize)]
pub struct BlockingQuality {
    pub left_records: usize,
    pub right_records: usize,
    pub candidate_pairs: usize,
    pub true_matches: usize,
    /// Share of true matches among the candidates (recall of blocking).
    pub pair_completeness: f64,
    /// 1 − candidates / (left × right).
    pub reduction_ratio: f64,
    /// Pair completeness of each blocker alone: identifier, token, embedding.
    pub completeness_by_blocker: [(String, f64, usize); 3],
}

pub fn blocking_quality(
    candidates: &[CandidatePair],
    truth: &BTreeSet<(usize, usize)>,
    left_records: usize,
    right_records: usize,
) -> BlockingQuality {
    let found = |mask: u8| {
        candidates
            .iter()
            .filter(|c| c.reasons & mask != 0 && truth.contains(&(c.left, c.right)))
            .count()
    };
    let share = |n: usize| {
        if truth.is_empty() {
            1.0
        } else {
            n as f64 / truth.len() as f64
        }
    };
    let count = |mask: u8| candidates.iter().filter(|c| c.reasons & mask != 0).count();
    let cross = (left_records * right_records).max(1) as f64;
    BlockingQuality {
        left_records,
        right_records,
        candidate_pairs: candidates.len(),
        true_matches: truth.len(),
        pair_completeness: share(found(u8::MAX)),
        reduction_ratio: 1.0 - candidates.len() as f64 / cross,
        completeness_by_blocker: [
            (
                "identifier".into(),
                share(found(BY_IDENTIFIER)),
                count(BY_IDENTIFIER),
            ),
            ("token".into(), share(found(BY_TOKEN)), count(BY_TOKEN)),
            (
                "embedding".into(),
                share(found(BY_EMBEDDING)),
                count(BY_EMBEDDING),
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::tokenize;
    use proptest::prelude::*;

    proptest! {
        /// The sort-and-merge gives what a map with a union per insert gave.
        #[test]
        fn merged_reasons_equal_a_map_of_unions(
            added in proptest::collection::vec(((0usize..40, 0usize..40), 0u8..8), 0..300)
        ) {
            let mut map: BTreeMap<(usize, usize), u8> = BTreeMap::new();
            let mut reasons = PairReasons::default();
            for &(pair, r) in &added {
                *map.entry(pair).or_default() |= r;
                reasons.add(pair, r);
            }
            prop_assert_eq!(reasons.merged(), map.into_iter().collect::<Vec<_>>());
        }
    }

    fn prepared(title: &str, vector: Vec<f32>) -> Prepared {
        Prepared {
            main_tokens: tokenize(title),
            all_tokens: tokenize(title),
            main_vector: vector,
            ..Prepared::default()
        }
    }

    #[test]
    fn identifier_keys_normalise_codes_and_gtins() {
        let k = identifier_keys(&tokenize("Samsung Galaxy S21 SM-G9910 0012345678905"));
        assert!(k.contains("code:g9910"), "{k:?}");
        assert!(k.contains("code:smg9910"), "{k:?}");
        assert!(k.contains("gtin:12345678905"), "{k:?}");
        assert!(!k.iter().any(|k| k.contains("samsung")));
    }

    #[test]
    fn each_blocker_finds_what_only_it_can() {
        let docs = [
            prepared("sony cybershot dscw120p camera", vec![1.0, 0.0, 0.0]),
            prepared("zebra notebook", vec![0.0, 1.0, 0.0]),
            prepared("苹果 手机", vec![0.0, 0.0, 1.0]),
        ];
        let others = [
            prepared("DSC-W120P silver", vec![0.0, 0.7, 0.7]),
            prepared("notebook zebra ruled", vec![0.6, 0.0, 0.8]),
            prepared("apple phone", vec![0.1, 0.0, 0.99]),
        ];
        let all: Vec<&Prepared> = docs.iter().chain(&others).collect();
        let idf = Idf::fit(all.iter().map(|p| p.all_tokens.as_slice()));
        let config = BlockingConfig {
            knn: 1,
            ..Default::default()
        };
        let l: Vec<&Prepared> = docs.iter().collect();
        let r: Vec<&Prepared> = others.iter().collect();
        let pairs = candidate_pairs(&l, &r, &idf, &config);
        let reason = |i, j| {
            pairs
                .iter()
                .find(|c| c.left == i && c.right == j)
                .map_or(0, |c| c.reasons)
        };
        assert!(reason(0, 0) & BY_IDENTIFIER != 0, "{pairs:?}");
        assert!(reason(1, 1) & BY_TOKEN != 0, "{pairs:?}");
        assert!(reason(2, 2) & BY_EMBEDDING != 0, "{pairs:?}");
        let truth: BTreeSet<(usize, usize)> = [(0, 0), (1, 1), (2, 2)].into();
        let q = blocking_quality(&pairs, &truth, 3, 3);
        assert_eq!(q.pair_completeness, 1.0);
        assert!(q.reduction_ratio > 0.0 && q.reduction_ratio < 1.0);
    }

    #[test]
    fn an_oversized_block_is_narrowed_to_neighbours_inside_it() {
        // 30 × 30 records share "gen223" (900 pairs > 400): not a cross product, and not
        // dropped either: each record meets its nearest partner inside the block.
        let unit = |i: usize| {
            let a = i as f32 * 0.05;
            vec![a.cos(), a.sin(), 0.0]
        };
        let left: Vec<Prepared> = (0..30)
            .map(|i| prepared(&format!("lancome serum gen223 l{i}"), unit(i)))
            .collect();
        let right: Vec<Prepared> = (0..30)
            .map(|i| prepared(&format!("兰蔻 精华 gen223 r{i}"), unit(i)))
            .collect();
        let all: Vec<&Prepared> = left.iter().chain(&right).collect();
        let idf = Idf::fit(all.iter().map(|p| p.all_tokens.as_slice()));
        let config = BlockingConfig {
            knn: 0,
            refine_k: 1,
            ..Default::default()
        };
        let l: Vec<&Prepared> = left.iter().collect();
        let r: Vec<&Prepared> = right.iter().collect();
        let pairs = candidate_pairs(&l, &r, &idf, &config);
        for i in 0..30 {
            let c = pairs.iter().find(|c| c.left == i && c.right == i);
            assert!(c.is_some_and(|c| c.reasons == BY_TOKEN), "{i}: {pairs:?}");
        }
        assert!(pairs.len() <= 60, "{} pairs", pairs.len());
        // Without narrowing the block is dropped and nothing is found.
        let dropped = BlockingConfig {
            refine_k: 0,
            ..config
        };
        assert!(candidate_pairs(&l, &r, &idf, &dropped).is_empty());
    }

    #[test]
    fn projection_keeps_the_dot_products_of_the_leading_directions() {
        // Vectors in a 2-dimensional subspace of 6 dimensions: two directions keep every dot.
        let vectors: Vec<Vec<f32>> = (0..50)
            .map(|i| {
                let (a, b) = ((i as f32 * 0.3).cos(), (i as f32 * 0.7).sin());
                vec![a, b, a - b, 0.0, 2.0 * b, 0.0]
            })
            .collect();
        let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        let projection = Projection::fit(&refs, 2);
        for (u, v) in [(0, 1), (3, 17), (40, 41)] {
            let (pu, pv) = (projection.apply(&vectors[u]), projection.apply(&vectors[v]));
            assert_eq!(pu.len(), 2);
            let (full, reduced) = (dot(&vectors[u], &vectors[v]), dot(&pu, &pv));
            assert!((full - reduced).abs() < 1e-3, "{full} vs {reduced}");
        }
    }
}
