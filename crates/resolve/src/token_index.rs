//! The token side of the pair features, computed from records tokenised, numbered and
//! summed **once**, not once per pair.
//!
//! Vocabulary: the **vocabulary** numbers every distinct token of a task's records in byte
//! order of the token, with its IDF weight and whether it is a model code or a number. A
//! record's **token bag** in one scope (its main text, or the whole record) is its distinct
//! token numbers, ascending, with their counts, plus the sums a pair would otherwise redo:
//! the TF-IDF norm and the IDF mass. Comparing two records is then a merge of two sorted
//! integer lists — no string is hashed, compared or allocated for the set and TF-IDF
//! features, where building a `BTreeMap<&str, f64>` per side per pair was a fifth of the
//! resolve stage.
//!
//! Why byte order: the features sum floating-point terms over a side's distinct tokens, and
//! they used to do so in the order of a `BTreeSet<&String>`. Numbering tokens in that order
//! keeps every sum in the same order, so each feature is the same value to the last bit as
//! the definitions in [`crate::features`]' tests, which a property test checks.

use std::collections::{BTreeSet, HashMap, HashSet};

use rayon::prelude::*;

use crate::features::{is_code, is_number, tokenize, Idf, Prepared};
use crate::learned::token_hashes;

/// Every distinct token of a task, numbered in byte order.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    tokens: Vec<String>,
    weights: Vec<f64>,
    is_code: Vec<bool>,
    is_number: Vec<bool>,
    /// [`crate::learned::token_hashes`] of each token.
    learned: Vec<[u32; 3]>,
}

impl Vocabulary {
    /// The token numbered `id`.
    pub fn token(&self, id: u32) -> &str {
        &self.tokens[id as usize]
    }

    pub fn is_number(&self, id: u32) -> bool {
        self.is_number[id as usize]
    }

    /// The learned token model's hashed features of token `id`.
    pub fn learned_hashes(&self, id: u32) -> [u32; 3] {
        self.learned[id as usize]
    }
}

/// One record's tokens in one scope: distinct numbers ascending, their counts, the number of
/// tokens with repeats, and the sums over its distinct tokens in order.
#[derive(Debug, Clone, Default)]
pub struct TokenBag {
    ids: Vec<u32>,
    counts: Vec<u32>,
    len: usize,
    tfidf_norm: f64,
    weight_sum: f64,
}

/// A record's bags: main text, whole record, and each other attribute's distinct tokens.
#[derive(Debug, Clone, Default)]
pub struct RecordBags {
    pub main: TokenBag,
    pub all: TokenBag,
    others: Vec<Vec<String>>,
}

/// The vocabulary and every record's bags, addressed by record number.
#[derive(Debug, Clone, Default)]
pub struct TokenIndex {
    pub vocabulary: Vocabulary,
    pub records: Vec<RecordBags>,
    avg_len: f64,
}

impl TokenIndex {
    /// Numbers the tokens of `prepared` and builds each record's bags (in parallel).
    pub fn build(idf: &Idf, prepared: &[Prepared]) -> TokenIndex {
        let mut distinct: HashSet<&str> = HashSet::new();
        for p in prepared {
            distinct.extend(p.main_tokens.iter().map(String::as_str));
            distinct.extend(p.all_tokens.iter().map(String::as_str));
        }
        let mut tokens: Vec<&str> = distinct.into_iter().collect();
        tokens.par_sort_unstable();
        let number: HashMap<&str, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, i as u32))
            .collect();
        let vocabulary = Vocabulary {
            weights: tokens.par_iter().map(|t| idf.weight(t)).collect(),
            is_code: tokens.iter().map(|t| is_code(t)).collect(),
            is_number: tokens.iter().map(|t| is_number(t)).collect(),
            learned: tokens.par_iter().map(|t| token_hashes(t)).collect(),
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
        };
        let records = prepared
            .par_iter()
            .map(|p| RecordBags {
                main: TokenBag::of(&p.main_tokens, &number, &vocabulary),
                all: TokenBag::of(&p.all_tokens, &number, &vocabulary),
                others: p.others.iter().map(|o| distinct_tokens(o)).collect(),
            })
            .collect();
        TokenIndex {
            vocabulary,
            records,
            avg_len: idf.avg_len(),
        }
    }

    /// TF-IDF cosine of two records' whole texts.
    pub fn all_tfidf_cosine(&self, a: usize, b: usize) -> f64 {
        self.tfidf_cosine(&self.records[a].all, &self.records[b].all)
    }

    /// Cosine of the sublinear TF-IDF vectors.
    pub fn tfidf_cosine(&self, a: &TokenBag, b: &TokenBag) -> f64 {
        let mut dot = 0.0;
        for_each_shared(a, b, |i, j| {
            dot += self.tfidf(a, i) * self.tfidf(b, j);
        });
        if a.tfidf_norm == 0.0 || b.tfidf_norm == 0.0 {
            0.0
        } else {
            dot / (a.tfidf_norm * b.tfidf_norm)
        }
    }

    fn tfidf(&self, bag: &TokenBag, k: usize) -> f64 {
        tfidf_term(bag.counts[k], self.vocabulary.weights[bag.ids[k] as usize])
    }

    /// Symmetric BM25: the mean of each side scored as a query against the other, normalised
    /// by the query's own best possible score so it lies in [0, 1].
    pub fn bm25(&self, a: &TokenBag, b: &TokenBag) -> f64 {
        (self.bm25_one(a, b) + self.bm25_one(b, a)) / 2.0
    }

    fn bm25_one(&self, query: &TokenBag, doc: &TokenBag) -> f64 {
        const K1: f64 = 1.2;
        const B: f64 = 0.75;
        let norm = K1 * (1.0 - B + B * doc.len as f64 / self.avg_len);
        let mut score = 0.0;
        for_each_shared(query, doc, |i, j| {
            let w = self.vocabulary.weights[query.ids[i] as usize];
            let f = doc.counts[j] as f64;
            score += w * f * (K1 + 1.0) / (f + norm);
        });
        if query.weight_sum == 0.0 {
            0.0
        } else {
            score / (query.weight_sum * (K1 + 1.0))
        }
    }

    /// Jaccard, containment, the IDF share each side leaves unmatched (larger, smaller) and
    /// the heaviest unmatched token's IDF.
    pub fn set_features(&self, a: &TokenBag, b: &TokenBag, out: &mut Vec<f64>) {
        let mut inter = 0usize;
        for_each_shared(a, b, |_, _| inter += 1);
        let union = (a.ids.len() + b.ids.len() - inter) as f64;
        let inter = inter as f64;
        out.push(if union == 0.0 { 0.0 } else { inter / union });
        let min = a.ids.len().min(b.ids.len()) as f64;
        out.push(if min == 0.0 { 0.0 } else { inter / min });
        let (ua, ma) = self.unmatched(a, b);
        let (ub, mb) = self.unmatched(b, a);
        out.push(ua.max(ub));
        out.push(ua.min(ub));
        out.push(ma.max(mb));
    }

    /// The share of `x`'s IDF mass not in `y` (1 for an empty side), and the largest IDF
    /// weight among those tokens.
    fn unmatched(&self, x: &TokenBag, y: &TokenBag) -> (f64, f64) {
        let (mut left, mut max_token) = (0.0, 0.0f64);
        for_each_unshared(x, y, |i| {
            let w = self.vocabulary.weights[x.ids[i] as usize];
            left += w;
            max_token = max_token.max(w);
        });
        let share = if x.weight_sum == 0.0 {
            1.0
        } else {
            left / x.weight_sum
        };
        (share, max_token)
    }

    /// Soft matching of the words left unmatched on both sides ("photoshp" ~ "photoshop",
    /// "adobe's" ~ "adobe"): per unmatched word of three letters or more, its best trigram
    /// Jaccard among the other side's unmatched words (0.9 for a prefix, an abbreviation).
    /// Pushes the best such similarity and the fraction of unmatched words with a close
    /// partner (≥ 0.5); NaN when either side has none.
    pub fn soft_features(&self, a: &TokenBag, b: &TokenBag, out: &mut Vec<f64>) {
        let words = |x: &TokenBag, y: &TokenBag| -> Vec<(&str, BTreeSet<[char; 3]>)> {
            let mut out = Vec::new();
            for_each_unshared(x, y, |i| {
                let id = x.ids[i] as usize;
                let t = self.vocabulary.tokens[id].as_str();
                if t.chars().count() >= 3 && !self.vocabulary.is_number[id] {
                    out.push((t, trigrams(t)));
                }
            });
            out
        };
        let (ua, ub) = (words(a, b), words(b, a));
        if ua.is_empty() || ub.is_empty() {
            out.extend([f64::NAN, f64::NAN]);
            return;
        }
        // An abbreviation ("upg", "prof", "win") as a prefix of the other word counts as close.
        let best = |(xw, x): &(&str, BTreeSet<[char; 3]>),
                    others: &[(&str, BTreeSet<[char; 3]>)]| {
            others
                .iter()
                .map(|(yw, y)| {
                    if xw.starts_with(yw) || yw.starts_with(xw) {
                        return 0.9;
                    }
                    let inter = x.intersection(y).count() as f64;
                    inter / ((x.len() + y.len()) as f64 - inter)
                })
                .fold(0.0, f64::max)
        };
        let bests: Vec<f64> = ua
            .iter()
            .map(|x| best(x, &ub))
            .chain(ub.iter().map(|y| best(y, &ua)))
            .collect();
        out.push(bests.iter().copied().fold(0.0, f64::max));
        out.push(bests.iter().filter(|&&v| v >= 0.5).count() as f64 / bests.len() as f64);
    }

    /// Distinct model codes the two bags share, and whether each has some.
    pub fn shared_kind(&self, a: &TokenBag, b: &TokenBag, kind: TokenKind) -> KindOverlap {
        let of_kind = |bag: &TokenBag| -> Vec<u32> {
            bag.ids
                .iter()
                .copied()
                .filter(|&id| match kind {
                    TokenKind::Code => self.vocabulary.is_code[id as usize],
                    TokenKind::Number => self.vocabulary.is_number[id as usize],
                })
                .collect()
        };
        let (x, y) = (of_kind(a), of_kind(b));
        KindOverlap {
            left: x.len(),
            right: y.len(),
            shared: shared_count(&x, &y),
        }
    }

    /// The token numbers both bags have, and those only `a` has and only `b` has, each
    /// ascending.
    pub fn split(a: &TokenBag, b: &TokenBag) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
        let mut shared = Vec::new();
        for_each_shared(a, b, |i, _| shared.push(a.ids[i]));
        let mut only_a = Vec::new();
        for_each_unshared(a, b, |i| only_a.push(a.ids[i]));
        let mut only_b = Vec::new();
        for_each_unshared(b, a, |j| only_b.push(b.ids[j]));
        (shared, only_a, only_b)
    }

    /// The distinct tokens of other attribute `k` of record `r`, sorted.
    pub fn other_tokens(&self, r: usize, k: usize) -> &[String] {
        &self.records[r].others[k]
    }
}

/// Which tokens [`TokenIndex::shared_kind`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Code,
    Number,
}

/// How many distinct tokens of a kind each side has, and how many they share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindOverlap {
    pub left: usize,
    pub right: usize,
    pub shared: usize,
}

impl TokenBag {
    fn of(tokens: &[String], number: &HashMap<&str, u32>, vocabulary: &Vocabulary) -> TokenBag {
        let mut ids: Vec<u32> = tokens.iter().map(|t| number[t.as_str()]).collect();
        ids.sort_unstable();
        let mut bag = TokenBag {
            len: tokens.len(),
            ..TokenBag::default()
        };
        for id in ids {
            if bag.ids.last() == Some(&id) {
                *bag.counts.last_mut().expect("a count per id") += 1;
            } else {
                bag.ids.push(id);
                bag.counts.push(1);
            }
        }
        let mut squares = 0.0;
        for (&id, &count) in bag.ids.iter().zip(&bag.counts) {
            let w = vocabulary.weights[id as usize];
            bag.weight_sum += w;
            let t = tfidf_term(count, w);
            squares += t * t;
        }
        bag.tfidf_norm = squares.sqrt();
        bag
    }
}

/// The sublinear TF-IDF weight of a token seen `count` times.
fn tfidf_term(count: u32, weight: f64) -> f64 {
    (1.0 + (count as f64).ln()) * weight
}

/// Calls `f(i, j)` for each token at position `i` of `a` that is at position `j` of `b`, in
/// `a`'s order.
fn for_each_shared(a: &TokenBag, b: &TokenBag, f: impl FnMut(usize, usize)) {
    merge_shared(&a.ids, &b.ids, f);
}

/// Calls `f(i, j)` for each value at position `i` of `a` that is at position `j` of `b`, both
/// ascending and distinct, in `a`'s order.
fn merge_shared<T: Ord>(a: &[T], b: &[T], mut f: impl FnMut(usize, usize)) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                f(i, j);
                i += 1;
                j += 1;
            }
        }
    }
}

/// Calls `f(i)` for each token at position `i` of `x` that is not in `y`, in `x`'s order.
fn for_each_unshared(x: &TokenBag, y: &TokenBag, mut f: impl FnMut(usize)) {
    let mut j = 0;
    for (i, id) in x.ids.iter().enumerate() {
        while j < y.ids.len() && y.ids[j] < *id {
            j += 1;
        }
        if y.ids.get(j) != Some(id) {
            f(i);
        }
    }
}

/// How many values two ascending, distinct lists share.
pub(crate) fn shared_count<T: Ord>(a: &[T], b: &[T]) -> usize {
    let mut n = 0;
    merge_shared(a, b, |_, _| n += 1);
    n
}

/// The distinct tokens of a text, sorted.
fn distinct_tokens(text: &str) -> Vec<String> {
    let mut tokens = tokenize(text.trim());
    tokens.sort_unstable();
    tokens.dedup();
    tokens
}

/// Character trigrams of a token, padded so short tokens still have some.
pub(crate) fn trigrams(t: &str) -> BTreeSet<[char; 3]> {
    let chars: Vec<char> = std::iter::once(' ')
        .chain(t.chars())
        .chain(std::iter::once(' '))
        .collect();
    chars.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
}
