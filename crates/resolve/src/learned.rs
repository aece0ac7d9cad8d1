//! Learned similarity signals stacked under the tree model.
//!
//! The hand-made features say *how much* two titles differ; they cannot say *which*
//! differences matter. "upgrade", "mac" or "2008" left unmatched usually means another
//! product, while "software" or "inc" left unmatched means nothing, and that varies by
//! domain. Two sparse logistic models learn it from the labelled pairs:
//!
//! * the token model sees the shared tokens, the unmatched tokens, pairs of unmatched tokens
//!   (one from each side: "mac|win", "2007|2008") and the shapes of unmatched tokens
//!   ("9.9", "aa999"), hashed into a fixed space;
//! * the embedding model sees |u − v| and u ⊙ v of the two sentence vectors, i.e. which
//!   directions of the multilingual space carry product identity.
//!
//! Their outputs enter the tree model as features. On the training pairs they are
//! cross-fitted (each fold scored by a model that never saw it), so the trees do not learn to
//! trust an over-fitted score.
//!
//! Written here rather than taken from a crate: what we need is hashed sparse features with
//! per-coordinate adaptive steps (AdaGrad) on a few thousand pairs; the Rust crates with
//! logistic regression (linfa-logistic, smartcore) take dense ndarray matrices and L-BFGS,
//! which would mean a 2^20-column dense matrix.

use std::hash::Hasher;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[cfg(test)]
use crate::features::is_number;
use crate::features::Prepared;
use crate::token_index::TokenIndex;

/// One sparse example: (feature index, value).
pub type SparseRow = Vec<(u32, f32)>;

const HASH_BITS: u32 = 20;
/// Embedding coordinates used by the embedding model; hashed token features start after them.
const EMBED_DIM_MAX: usize = 1024;
const DENSE: u32 = 2 * EMBED_DIM_MAX as u32;

/// Logistic regression on sparse rows, trained with AdaGrad and L2.
#[derive(Debug, Clone)]
pub struct SparseLogistic {
    weights: Vec<f32>,
    bias: f32,
}

impl SparseLogistic {
    pub fn fit(rows: &[SparseRow], labels: &[bool], epochs: usize, l2: f32, seed: u64) -> Self {
        let dim = rows
            .iter()
            .flat_map(|r| r.iter().map(|(i, _)| *i as usize + 1))
            .max()
            .unwrap_or(0);
        let mut w = vec![0f32; dim];
        let mut g2 = vec![1e-6f32; dim];
        let (mut bias, mut bias_g2) = (0f32, 1e-6f32);
        // Balanced classes: a positive weighs as much in total as all negatives.
        let positives = labels.iter().filter(|&&y| y).count().max(1) as f32;
        let negatives = (labels.len() as f32 - positives).max(1.0);
        let (wp, wn) = (
            labels.len() as f32 / (2.0 * positives),
            labels.len() as f32 / (2.0 * negatives),
        );
        let lr = 0.1f32;
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..epochs {
            order.shuffle(&mut rng);
            for &i in &order {
                let row = &rows[i];
                let z = bias + row.iter().map(|&(j, v)| w[j as usize] * v).sum::<f32>();
                let p = sigmoid(z);
                let y = f32::from(u8::from(labels[i]));
                let err = (p - y) * if labels[i] { wp } else { wn };
                for &(j, v) in row {
                    let j = j as usize;
                    let g = err * v + l2 * w[j];
                    g2[j] += g * g;
                    w[j] -= lr * g / g2[j].sqrt();
                }
                bias_g2 += err * err;
                bias -= lr * err / bias_g2.sqrt();
            }
        }
        SparseLogistic { weights: w, bias }
    }

    /// Log-odds of a match.
    pub fn logit(&self, row: &SparseRow) -> f32 {
        self.bias
            + row
                .iter()
                .filter_map(|&(j, v)| self.weights.get(j as usize).map(|w| w * v))
                .sum::<f32>()
    }
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

fn hashed(feature: &str) -> u32 {
    hashed_parts(&[feature])
}

/// [`hashed`] of the concatenation of `parts`, without building it: SipHash reads its input
/// as one byte stream, so writing the parts one after another hashes the same bytes (and
/// `str`'s trailing 0xff once at the end, as `str::hash` writes it).
fn hashed_parts(parts: &[&str]) -> u32 {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    for p in parts {
        h.write(p.as_bytes());
    }
    h.write_u8(0xff);
    DENSE + (h.finish() as u32 & ((1 << HASH_BITS) - 1))
}

/// Letters → a, digits → 9, runs kept to three: "cs3" → "aa9", "2008" → "999".
fn shape(token: &str) -> String {
    let mut out = String::new();
    let (mut last, mut run) = (' ', 0);
    for c in token.chars() {
        let s = if c.is_ascii_digit() {
            '9'
        } else if c.is_alphabetic() {
            'a'
        } else {
            c
        };
        if s == last {
            run += 1;
        } else {
            (last, run) = (s, 1);
        }
        if run <= 3 {
            out.push(s);
        }
    }
    out
}

/// Which tokens a token model looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenScope {
    /// The main text (title) only.
    Main,
    /// Every attribute's tokens (brand and price numbers included).
    All,
}

/// The hashed features one token gives on its own: shared by both sides, on one side only,
/// and its shape on one side only. [`crate::token_index::TokenIndex`] computes them once per
/// distinct token.
pub fn token_hashes(token: &str) -> [u32; 3] {
    [
        hashed_parts(&["s:", token]),
        hashed_parts(&["d:", token]),
        hashed_parts(&["ds:", &shape(token)]),
    ]
}

/// The token model's view of a pair (symmetric in its two sides), records `a` and `b` by
/// their numbers in `tokens`: the shared and one-sided tokens come from a merge of the two
/// records' sorted token numbers and their hashes from the vocabulary, so only the pairs of
/// differing tokens are hashed per pair.
pub fn token_row(tokens: &TokenIndex, a: usize, b: usize, scope: TokenScope) -> SparseRow {
    let (ra, rb) = (&tokens.records[a], &tokens.records[b]);
    let (ba, bb) = match scope {
        TokenScope::Main => (&ra.main, &rb.main),
        TokenScope::All => (&ra.all, &rb.all),
    };
    let vocabulary = &tokens.vocabulary;
    let (shared, only_a, only_b) = TokenIndex::split(ba, bb);
    let mut feats: Vec<u32> = Vec::new();
    for &t in &shared {
        feats.push(vocabulary.learned_hashes(t)[0]);
    }
    for &t in only_a.iter().chain(&only_b) {
        let [_, one_sided, shape] = vocabulary.learned_hashes(t);
        feats.push(one_sided);
        feats.push(shape);
    }
    for &x in only_a.iter().take(8) {
        for &y in only_b.iter().take(8) {
            // Numbers are in byte order of the tokens, so this is the tokens' order.
            let (p, q) = if x < y { (x, y) } else { (y, x) };
            feats.push(hashed_parts(&[
                "dp:",
                vocabulary.token(p),
                "|",
                vocabulary.token(q),
            ]));
            if vocabulary.is_number(x) && vocabulary.is_number(y) {
                feats.push(hashed("dp:number|number"));
            }
        }
    }
    let count = |prefix: &str, n: usize| hashed_parts(&[prefix, &n.to_string()]);
    feats.push(count("nshared:", shared.len().min(8)));
    feats.push(count("nonly:", (only_a.len() + only_b.len()).min(12)));
    feats.push(count("nonly_min:", only_a.len().min(only_b.len()).min(6)));
    let scale = 1.0 / (feats.len() as f32).sqrt();
    let mut row: SparseRow = feats.into_iter().map(|f| (f, scale)).collect();
    row.sort_unstable_by_key(|(j, _)| *j);
    row.dedup_by_key(|(j, _)| *j);
    row
}

/// The embedding model's view of a pair: |u − v| and u ⊙ v of the main-text vectors.
pub fn embedding_row(a: &Prepared, b: &Prepared) -> SparseRow {
    vector_pair_row(&a.main_vector, &b.main_vector)
}

/// [`embedding_row`] of the second encoder's main-text vectors.
pub fn second_embedding_row(a: &Prepared, b: &Prepared) -> SparseRow {
    vector_pair_row(&a.second_main_vector, &b.second_main_vector)
}

fn vector_pair_row(u: &[f32], v: &[f32]) -> SparseRow {
    let n = u.len().min(EMBED_DIM_MAX);
    let mut row = Vec::with_capacity(2 * n);
    // Scaled so a typical row has a norm near one, like the token rows.
    let s = (n as f32).sqrt();
    for i in 0..n {
        row.push((i as u32, (u[i] - v[i]).abs() * s));
    }
    for i in 0..n {
        row.push(((n + i) as u32, u[i] * v[i] * s));
    }
    row
}

/// Out-of-fold scores for the training rows and a model fitted on all of them for new rows.
pub struct CrossFitted {
    pub model: SparseLogistic,
    pub out_of_fold: Vec<f32>,
}

pub fn cross_fit(rows: &[SparseRow], labels: &[bool], folds: usize, epochs: usize) -> CrossFitted {
    use rayon::prelude::*;
    let mut fold_of: Vec<usize> = (0..rows.len()).map(|i| i % folds).collect();
    fold_of.shuffle(&mut ChaCha8Rng::seed_from_u64(29));
    let per_fold: Vec<Vec<(usize, f32)>> = (0..folds)
        .into_par_iter()
        .map(|k| {
            let (fit_rows, fit_labels): (Vec<SparseRow>, Vec<bool>) = rows
                .iter()
                .zip(labels)
                .zip(&fold_of)
                .filter(|(_, &f)| f != k)
                .map(|((r, &y), _)| (r.clone(), y))
                .unzip();
            let model = SparseLogistic::fit(&fit_rows, &fit_labels, epochs, 1e-4, k as u64);
            (0..rows.len())
                .filter(|&i| fold_of[i] == k)
                .map(|i| (i, model.logit(&rows[i])))
                .collect()
        })
        .collect();
    let mut out_of_fold = vec![0f32; rows.len()];
    for (i, z) in per_fold.into_iter().flatten() {
        out_of_fold[i] = z;
    }
    let model = SparseLogistic::fit(rows, labels, epochs, 1e-4, 99);
    CrossFitted { model, out_of_fold }
}

/// The token row as first written — per pair, from the token strings — kept as the definition
/// [`token_row`] must reproduce exactly.
#[cfg(test)]
mod reference {
    use super::{hashed, hashed_parts, is_number, shape, Prepared, SparseRow, TokenScope};

    /// The token model's view of a pair (symmetric in its two sides).
    pub(super) fn token_row<'a>(a: &'a Prepared, b: &'a Prepared, scope: TokenScope) -> SparseRow {
        let (ta, tb) = match scope {
            TokenScope::Main => (&a.main_tokens, &b.main_tokens),
            TokenScope::All => (&a.all_tokens, &b.all_tokens),
        };
        // Sorted unique tokens and a merge: per-pair hash sets and formatted feature strings
        // were most of the cost of scoring a large catalogue's candidates.
        let unique = |t: &'a [String]| -> Vec<&'a str> {
            let mut v: Vec<&str> = t.iter().map(String::as_str).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let (sa, sb) = (unique(ta), unique(tb));
        let (mut shared, mut only_a, mut only_b) = (Vec::new(), Vec::new(), Vec::new());
        let (mut i, mut j) = (0, 0);
        while i < sa.len() || j < sb.len() {
            match (sa.get(i), sb.get(j)) {
                (Some(x), Some(y)) if x == y => {
                    shared.push(*x);
                    i += 1;
                    j += 1;
                }
                (Some(x), Some(y)) if x < y => {
                    only_a.push(*x);
                    i += 1;
                }
                (Some(x), None) => {
                    only_a.push(*x);
                    i += 1;
                }
                (_, Some(y)) => {
                    only_b.push(*y);
                    j += 1;
                }
                (None, None) => unreachable!("loop condition"),
            }
        }
        let mut feats: Vec<u32> = Vec::new();
        for t in &shared {
            feats.push(hashed_parts(&["s:", t]));
        }
        for t in only_a.iter().chain(&only_b) {
            feats.push(hashed_parts(&["d:", t]));
            feats.push(hashed_parts(&["ds:", &shape(t)]));
        }
        for x in only_a.iter().take(8) {
            for y in only_b.iter().take(8) {
                let (p, q) = if x < y { (x, y) } else { (y, x) };
                feats.push(hashed_parts(&["dp:", p, "|", q]));
                if is_number(x) && is_number(y) {
                    feats.push(hashed("dp:number|number"));
                }
            }
        }
        let count = |prefix: &str, n: usize| hashed_parts(&[prefix, &n.to_string()]);
        feats.push(count("nshared:", shared.len().min(8)));
        feats.push(count("nonly:", (only_a.len() + only_b.len()).min(12)));
        feats.push(count("nonly_min:", only_a.len().min(only_b.len()).min(6)));
        let scale = 1.0 / (feats.len() as f32).sqrt();
        let mut row: SparseRow = feats.into_iter().map(|f| (f, scale)).collect();
        row.sort_unstable_by_key(|(j, _)| *j);
        row.dedup_by_key(|(j, _)| *j);
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    fn prepared(title: &str) -> Prepared {
        Prepared {
            main_tokens: crate::features::tokenize(title),
            all_tokens: crate::features::tokenize(title),
            main_vector: vec![0.0; 4],
            all_vector: vec![0.0; 4],
            ..Prepared::default()
        }
    }

    #[test]
    fn shapes_generalise_codes_and_versions() {
        assert_eq!(shape("cs3"), "aa9");
        assert_eq!(shape("2008"), "999");
        assert_eq!(shape("9.0"), "9.9");
        assert_eq!(shape("photoshop"), "aaa");
    }

    #[test]
    fn hashing_parts_equals_hashing_the_joined_string() {
        #[allow(deprecated)]
        let joined = |s: &str| {
            let mut h = std::hash::SipHasher::new();
            s.hash(&mut h);
            DENSE + (h.finish() as u32 & ((1 << HASH_BITS) - 1))
        };
        assert_eq!(
            hashed_parts(&["dp:", "mac", "|", "win"]),
            joined("dp:mac|win")
        );
        assert_eq!(hashed("s:蓝"), joined("s:蓝"));
        assert_ne!(hashed_parts(&["d:", "ab"]), hashed_parts(&["d:", "a"]));
    }

    /// [`token_row`] of two records numbered in an index of their own.
    fn row_of(a: &Prepared, b: &Prepared, scope: TokenScope) -> SparseRow {
        let records = [a.clone(), b.clone()];
        let idf = crate::features::Idf::fit(records.iter().map(|r| r.all_tokens.as_slice()));
        let index = TokenIndex::build(&idf, &records);
        token_row(&index, 0, 1, scope)
    }

    #[test]
    fn token_rows_are_symmetric() {
        let (a, b) = (
            prepared("adobe photoshop cs3 mac"),
            prepared("photoshop cs3 win upgrade"),
        );
        assert_eq!(
            row_of(&a, &b, TokenScope::Main),
            row_of(&b, &a, TokenScope::Main)
        );
    }

    proptest::proptest! {
        /// The indexed token rows are the definition's, for records numbered in one index of
        /// many.
        #[test]
        fn indexed_token_rows_equal_the_definition(
            titles in proptest::collection::vec(
                "(adobe|photoshop|cs3|cs4|mac|win|upgrade|12|2.5|蓝|色|v2|pro| ){0,14}",
                2..6,
            ),
        ) {
            let records: Vec<Prepared> = titles
                .iter()
                .enumerate()
                .map(|(i, t)| Prepared {
                    all_tokens: crate::features::tokenize(&format!("{t} brand{}", i % 2)),
                    ..prepared(t)
                })
                .collect();
            let idf = crate::features::Idf::fit(records.iter().map(|r| r.all_tokens.as_slice()));
            let index = TokenIndex::build(&idf, &records);
            for a in 0..records.len() {
                for b in 0..records.len() {
                    for scope in [TokenScope::Main, TokenScope::All] {
                        proptest::prop_assert_eq!(
                            token_row(&index, a, b, scope),
                            reference::token_row(&records[a], &records[b], scope)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn learns_which_unmatched_tokens_mean_another_product() {
        // "upgrade" unmatched means a different product; "software" unmatched means nothing.
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..200 {
            let base = format!("product{i} suite {}", i % 7);
            let (other, label) = if i % 2 == 0 {
                (format!("{base} upgrade"), false)
            } else {
                (format!("{base} software"), true)
            };
            rows.push(row_of(
                &prepared(&base),
                &prepared(&other),
                TokenScope::Main,
            ));
            labels.push(label);
        }
        let model = SparseLogistic::fit(&rows, &labels, 10, 1e-4, 1);
        let row = |a: &str, b: &str| row_of(&prepared(a), &prepared(b), TokenScope::Main);
        let up = model.logit(&row("widget 9", "widget 9 upgrade"));
        let sw = model.logit(&row("widget 9", "widget 9 software"));
        assert!(up < 0.0 && sw > 0.0, "upgrade {up}, software {sw}");
    }
}
