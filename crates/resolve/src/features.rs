//! Pairwise similarity features of two records, independent of the attribute names so one
//! extractor serves our own listings and any benchmark's schema.
//!
//! Text: sentence-embedding cosine, TF-IDF cosine, BM25 score, token Jaccard and containment,
//! the IDF mass each side leaves unmatched, model-code and number agreement. Other attributes:
//! numeric ratio when both parse as numbers, else equality and token overlap. Candidate context:
//! how a pair's similarity compares with the best alternative either record has — a record
//! usually matches at most one record of the other source.

use std::collections::{HashMap, HashSet};

use shopfuse_core::encoder::cosine;

use crate::token_index::{shared_count, TokenIndex, TokenKind};

/// Lower-cased tokens: runs of letters/digits (dots kept inside numbers such as "7.0"), with
/// every CJK character its own token so Chinese titles get word-like units.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let dot_in_number = c == '.'
            && cur.chars().last().is_some_and(|p| p.is_ascii_digit())
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if is_cjk(c) {
            if !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
            tokens.push(c.to_string());
        } else if c.is_alphanumeric() || dot_in_number {
            cur.extend(c.to_lowercase());
        } else if !cur.is_empty() {
            tokens.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    for t in &mut tokens {
        // "12.0" and "12" are the same version or size.
        if is_number(t) && t.contains('.') {
            let trimmed = t.trim_end_matches('0').trim_end_matches('.');
            if !trimmed.is_empty() && trimmed.len() < t.len() {
                *t = trimmed.to_string();
            }
        }
    }
    tokens
}

/// Whether `s` has any CJK character (a Chinese title, a Chinese colour name).
pub fn has_cjk(s: &str) -> bool {
    s.chars().any(is_cjk)
}

/// Chinese, Japanese or Korean script.
pub fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3040}'..='\u{30ff}' | '\u{3400}'..='\u{4dbf}' | '\u{4e00}'..='\u{9fff}' | '\u{f900}'..='\u{faff}' | '\u{ac00}'..='\u{d7af}')
}

pub fn is_number(t: &str) -> bool {
    t.chars().next().is_some_and(|c| c.is_ascii_digit())
        && t.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// A model-code-like token: letters and digits mixed ("sm-g9910" tokenises to "sm", "g9910";
/// "dscw120p", "cs3", "a3092"), at least three characters.
pub fn is_code(t: &str) -> bool {
    t.len() >= 3
        && t.chars().any(|c| c.is_ascii_digit())
        && t.chars().any(|c| c.is_alphabetic())
        && t.is_ascii()
}

/// Corpus statistics for IDF weights, fitted on every record text of a task (labels unused).
#[derive(Debug, Clone, Default)]
pub struct Idf {
    docs: usize,
    df: HashMap<String, usize>,
    total_len: usize,
}

impl Idf {
    pub fn fit<'a>(docs: impl IntoIterator<Item = &'a [String]>) -> Self {
        let mut idf = Idf::default();
        for doc in docs {
            idf.docs += 1;
            idf.total_len += doc.len();
            let unique: HashSet<&String> = doc.iter().collect();
            for t in unique {
                *idf.df.entry(t.clone()).or_insert(0) += 1;
            }
        }
        idf
    }

    /// Smoothed IDF; unseen tokens get the rarest weight.
    pub fn weight(&self, token: &str) -> f64 {
        let df = self.df.get(token).copied().unwrap_or(0) as f64;
        ((1.0 + self.docs as f64) / (1.0 + df)).ln() + 1.0
    }

    pub(crate) fn avg_len(&self) -> f64 {
        if self.docs == 0 {
            1.0
        } else {
            (self.total_len as f64 / self.docs as f64).max(1.0)
        }
    }
}

/// One side of a pair, prepared once per record.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub main_tokens: Vec<String>,
    pub all_tokens: Vec<String>,
    pub main_vector: Vec<f32>,
    pub all_vector: Vec<f32>,
    /// The second encoder's vectors of the main text and the whole record; empty when the
    /// featurizer has no second encoder.
    pub second_main_vector: Vec<f32>,
    pub second_all_vector: Vec<f32>,
    /// Other attributes' values (same order as the extractor's `other_attrs`).
    pub others: Vec<String>,
}

/// Names of the features, in vector order (for explanations and importances); with
/// `second_encoder`, the second encoder's cosines come after the attributes'.
pub fn feature_names(other_attrs: &[String], second_encoder: bool) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for scope in ["main", "all"] {
        for f in [
            "embedding_cosine",
            "tfidf_cosine",
            "bm25",
            "jaccard",
            "containment",
            "unmatched_idf_max_side",
            "unmatched_idf_min_side",
            "max_unmatched_token_idf",
        ] {
            names.push(format!("{scope}.{f}"));
        }
    }
    for f in [
        "soft_unmatched_best",
        "soft_unmatched_matched_fraction",
        "codes_shared",
        "codes_conflict",
        "numbers_jaccard",
        "numbers_conflict",
        "numbers_unmatched",
        "token_count_ratio",
        "left_tokens",
        "right_tokens",
    ] {
        names.push(f.to_string());
    }
    for a in other_attrs {
        for f in ["numeric_log_ratio", "equal", "jaccard", "missing"] {
            names.push(format!("{a}.{f}"));
        }
    }
    if second_encoder {
        names.push("main.second_embedding_cosine".to_string());
        names.push("all.second_embedding_cosine".to_string());
    }
    for f in [
        "embedding_margin_left",
        "embedding_margin_right",
        "tfidf_margin_left",
        "tfidf_margin_right",
    ] {
        names.push(f.to_string());
    }
    names
}

// Ordered maps and sets wherever floats are summed over them: a hash order that changes per
// process would change the last bits of a sum, and with them the trees and the threshold.
fn parse_number(s: &str) -> Option<f64> {
    let cleaned: String = s
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
        .collect();
    cleaned.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Features of one pair, before the candidate-context margins are appended: records `a` and
/// `b`, each given by its number in `tokens` (one index of every record of the task) and its
/// prepared form.
pub fn pair_features(
    tokens: &TokenIndex,
    (ia, a): (usize, &Prepared),
    (ib, b): (usize, &Prepared),
) -> Vec<f64> {
    let (ba, bb) = (&tokens.records[ia], &tokens.records[ib]);
    let mut f = Vec::with_capacity(48);
    for (ta, tb, va, vb) in [
        (&ba.main, &bb.main, &a.main_vector, &b.main_vector),
        (&ba.all, &bb.all, &a.all_vector, &b.all_vector),
    ] {
        f.push(f64::from(cosine(va, vb)));
        f.push(tokens.tfidf_cosine(ta, tb));
        f.push(tokens.bm25(ta, tb));
        tokens.set_features(ta, tb, &mut f);
    }
    tokens.soft_features(&ba.main, &bb.main, &mut f);
    let codes = tokens.shared_kind(&ba.all, &bb.all, TokenKind::Code);
    f.push(codes.shared as f64);
    f.push(f64::from(
        codes.left > 0 && codes.right > 0 && codes.shared == 0,
    ));
    // Numbers of the main text only: a price attribute would otherwise always disagree.
    let numbers = tokens.shared_kind(&ba.main, &bb.main, TokenKind::Number);
    let ni = numbers.shared as f64;
    let nu = (numbers.left + numbers.right - numbers.shared) as f64;
    f.push(if nu == 0.0 { f64::NAN } else { ni / nu });
    f.push(f64::from(
        numbers.left > 0 && numbers.right > 0 && ni == 0.0,
    ));
    f.push(nu - ni);
    let (la, lb) = (a.all_tokens.len() as f64, b.all_tokens.len() as f64);
    f.push(if la.max(lb) == 0.0 {
        1.0
    } else {
        la.min(lb) / la.max(lb)
    });
    f.push(la);
    f.push(lb);
    for (k, (x, y)) in a.others.iter().zip(&b.others).enumerate() {
        let (x, y) = (x.trim(), y.trim());
        if x.is_empty() || y.is_empty() {
            f.extend([f64::NAN, f64::NAN, f64::NAN, 1.0]);
            continue;
        }
        match (parse_number(x), parse_number(y)) {
            (Some(p), Some(q)) if p > 0.0 && q > 0.0 => f.push((p / q).ln().abs()),
            _ => f.push(f64::NAN),
        }
        f.push(f64::from(x == y));
        let (sx, sy) = (tokens.other_tokens(ia, k), tokens.other_tokens(ib, k));
        let inter = shared_count(sx, sy);
        let union = (sx.len() + sy.len() - inter) as f64;
        f.push(if union == 0.0 {
            0.0
        } else {
            inter as f64 / union
        });
        f.push(0.0);
    }
    if !a.second_main_vector.is_empty() {
        f.push(f64::from(cosine(
            &a.second_main_vector,
            &b.second_main_vector,
        )));
        f.push(f64::from(cosine(
            &a.second_all_vector,
            &b.second_all_vector,
        )));
    }
    f
}

/// The two similarities the candidate margins compare: the whole-record embedding cosine and
/// TF-IDF cosine (the same values as `all.embedding_cosine` and `all.tfidf_cosine`).
/// Records are numbered in `tokens`, as for [`pair_features`].
pub fn margin_sims(
    tokens: &TokenIndex,
    (ia, a): (usize, &Prepared),
    (ib, b): (usize, &Prepared),
) -> (f64, f64) {
    (
        f64::from(cosine(&a.all_vector, &b.all_vector)),
        tokens.all_tfidf_cosine(ia, ib),
    )
}

/// [`margin_sims`] read off a row of [`pair_features`], where they are `all.embedding_cosine`
/// and `all.tfidf_cosine` (positions 8 and 9).
pub fn margin_sims_in_row(row: &[f64]) -> (f64, f64) {
    (row[8], row[9])
}

/// The best and second-best similarity each record has among its candidates, so a pair can be
/// compared with the best *other* candidate of either record. Built once over all candidate
/// pairs, then asked per pair, so feature rows can be made chunk by chunk.
pub struct CandidateMargins {
    /// By left key (embedding, TF-IDF), by right key (embedding, TF-IDF): top two values.
    left: HashMap<usize, [(f64, f64); 2]>,
    right: HashMap<usize, [(f64, f64); 2]>,
}

impl CandidateMargins {
    /// `keys[i]` = the (left, right) keys pair i is compared under; `sims[i]` = its
    /// (embedding cosine, TF-IDF cosine).
    pub fn new(keys: &[(usize, usize)], sims: &[(f64, f64)]) -> Self {
        fn push(top: &mut (f64, f64), v: f64) {
            if v > top.0 {
                *top = (v, top.0);
            } else if v > top.1 {
                top.1 = v;
            }
        }
        let empty = [(f64::NEG_INFINITY, f64::NEG_INFINITY); 2];
        let (mut left, mut right) = (HashMap::new(), HashMap::new());
        for (&(l, r), &(emb, tfidf)) in keys.iter().zip(sims) {
            for (table, key) in [(&mut left, l), (&mut right, r)] {
                let e: &mut [(f64, f64); 2] = table.entry(key).or_insert(empty);
                push(&mut e[0], emb);
                push(&mut e[1], tfidf);
            }
        }
        CandidateMargins { left, right }
    }

    /// A pair's similarity minus the best other candidate's, for its left and right key and
    /// each similarity (embedding left, embedding right, TF-IDF left, TF-IDF right); 0 where
    /// the record has no other candidate.
    pub fn of(&self, key: (usize, usize), sim: (f64, f64)) -> [f64; 4] {
        let margin = |top: (f64, f64), v: f64| {
            let other = if v >= top.0 { top.1 } else { top.0 };
            if other.is_finite() {
                v - other
            } else {
                0.0
            }
        };
        let (l, r) = (self.left[&key.0], self.right[&key.1]);
        [
            margin(l[0], sim.0),
            margin(r[0], sim.0),
            margin(l[1], sim.1),
            margin(r[1], sim.1),
        ]
    }
}

/// The token features as first written — per pair, from the token lists — kept as the
/// definitions [`crate::token_index`] must reproduce to the last bit.
#[cfg(test)]
mod reference {
    use std::collections::{BTreeMap, BTreeSet, HashSet};

    use shopfuse_core::encoder::cosine;

    use super::{is_code, is_number, parse_number, tokenize, Idf, Prepared};

    fn tfidf_vector<'a>(idf: &Idf, toks: &'a [String]) -> BTreeMap<&'a str, f64> {
        let mut m: BTreeMap<&str, f64> = BTreeMap::new();
        for t in toks {
            *m.entry(t.as_str()).or_insert(0.0) += 1.0;
        }
        for (t, v) in m.iter_mut() {
            *v = (1.0 + v.ln()) * idf.weight(t);
        }
        m
    }

    pub(super) fn tfidf_cosine(idf: &Idf, a: &[String], b: &[String]) -> f64 {
        let (va, vb) = (tfidf_vector(idf, a), tfidf_vector(idf, b));
        let dot: f64 = va
            .iter()
            .filter_map(|(t, x)| vb.get(t).map(|y| x * y))
            .sum();
        let na: f64 = va.values().map(|x| x * x).sum::<f64>().sqrt();
        let nb: f64 = vb.values().map(|x| x * x).sum::<f64>().sqrt();
        if na == 0.0 || nb == 0.0 {
            0.0
        } else {
            dot / (na * nb)
        }
    }

    /// Symmetric BM25: the mean of each side scored as a query against the other, normalised by
    /// the query's own best possible score so it lies in [0, 1].
    pub(super) fn bm25(idf: &Idf, a: &[String], b: &[String]) -> f64 {
        let one = |q: &[String], d: &[String]| {
            const K1: f64 = 1.2;
            const B: f64 = 0.75;
            let mut tf: BTreeMap<&str, f64> = BTreeMap::new();
            for t in d {
                *tf.entry(t.as_str()).or_insert(0.0) += 1.0;
            }
            let norm = K1 * (1.0 - B + B * d.len() as f64 / idf.avg_len());
            let q: BTreeSet<&String> = q.iter().collect();
            let (mut score, mut best) = (0.0, 0.0);
            for t in q {
                let w = idf.weight(t);
                best += w;
                if let Some(f) = tf.get(t.as_str()) {
                    score += w * f * (K1 + 1.0) / (f + norm);
                }
            }
            if best == 0.0 {
                0.0
            } else {
                score / (best * (K1 + 1.0))
            }
        };
        (one(a, b) + one(b, a)) / 2.0
    }

    fn set_features(idf: &Idf, a: &[String], b: &[String], out: &mut Vec<f64>) {
        let sa: BTreeSet<&String> = a.iter().collect();
        let sb: BTreeSet<&String> = b.iter().collect();
        let inter = sa.intersection(&sb).count() as f64;
        let union = sa.union(&sb).count() as f64;
        out.push(if union == 0.0 { 0.0 } else { inter / union });
        let min = sa.len().min(sb.len()) as f64;
        out.push(if min == 0.0 { 0.0 } else { inter / min });
        let unmatched = |x: &BTreeSet<&String>, y: &BTreeSet<&String>| {
            let total: f64 = x.iter().map(|t| idf.weight(t)).sum();
            let left: f64 = x
                .iter()
                .filter(|t| !y.contains(*t))
                .map(|t| idf.weight(t))
                .sum();
            let max_tok = x
                .iter()
                .filter(|t| !y.contains(*t))
                .map(|t| idf.weight(t))
                .fold(0.0, f64::max);
            (if total == 0.0 { 1.0 } else { left / total }, max_tok)
        };
        let (ua, ma) = unmatched(&sa, &sb);
        let (ub, mb) = unmatched(&sb, &sa);
        out.push(ua.max(ub));
        out.push(ua.min(ub));
        out.push(ma.max(mb));
    }

    /// Character trigrams of a token, padded so short tokens still have some.
    fn trigrams(t: &str) -> BTreeSet<[char; 3]> {
        let chars: Vec<char> = std::iter::once(' ')
            .chain(t.chars())
            .chain(std::iter::once(' '))
            .collect();
        chars.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
    }

    /// Soft matching of the words left unmatched on both sides ("photoshp" ~ "photoshop",
    /// "adobe's" ~ "adobe"): per unmatched word of three letters or more, its best trigram
    /// Jaccard among the other side's unmatched words (0.9 for a prefix, an abbreviation). Pushes the best such similarity and the
    /// fraction of unmatched words with a close partner (≥ 0.5); NaN when either side has none.
    fn soft_features(a: &[String], b: &[String], out: &mut Vec<f64>) {
        let sa: BTreeSet<&String> = a.iter().collect();
        let sb: BTreeSet<&String> = b.iter().collect();
        let words =
            |x: &BTreeSet<&String>, y: &BTreeSet<&String>| -> Vec<(String, BTreeSet<[char; 3]>)> {
                x.iter()
                    .filter(|t| !y.contains(*t) && t.chars().count() >= 3 && !is_number(t))
                    .map(|t| (t.to_string(), trigrams(t)))
                    .collect()
            };
        let (ua, ub) = (words(&sa, &sb), words(&sb, &sa));
        if ua.is_empty() || ub.is_empty() {
            out.extend([f64::NAN, f64::NAN]);
            return;
        }
        // An abbreviation ("upg", "prof", "win") as a prefix of the other word counts as close.
        let best = |(xw, x): &(String, BTreeSet<[char; 3]>),
                    others: &[(String, BTreeSet<[char; 3]>)]| {
            others
                .iter()
                .map(|(yw, y)| {
                    if xw.starts_with(yw.as_str()) || yw.starts_with(xw.as_str()) {
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

    /// Features of one pair, before the candidate-context margins are appended.
    pub fn pair_features(idf: &Idf, a: &Prepared, b: &Prepared) -> Vec<f64> {
        let mut f = Vec::with_capacity(48);
        for (ta, tb, va, vb) in [
            (
                &a.main_tokens,
                &b.main_tokens,
                &a.main_vector,
                &b.main_vector,
            ),
            (&a.all_tokens, &b.all_tokens, &a.all_vector, &b.all_vector),
        ] {
            f.push(f64::from(cosine(va, vb)));
            f.push(tfidf_cosine(idf, ta, tb));
            f.push(bm25(idf, ta, tb));
            set_features(idf, ta, tb, &mut f);
        }
        soft_features(&a.main_tokens, &b.main_tokens, &mut f);
        let codes = |t: &[String]| -> HashSet<String> {
            t.iter().filter(|t| is_code(t)).cloned().collect()
        };
        let (ca, cb) = (codes(&a.all_tokens), codes(&b.all_tokens));
        let shared = ca.intersection(&cb).count();
        f.push(shared as f64);
        f.push(f64::from(!ca.is_empty() && !cb.is_empty() && shared == 0));
        let numbers = |t: &[String]| -> HashSet<String> {
            t.iter().filter(|t| is_number(t)).cloned().collect()
        };
        // Numbers of the main text only: a price attribute would otherwise always disagree.
        let (na, nb) = (numbers(&a.main_tokens), numbers(&b.main_tokens));
        let ni = na.intersection(&nb).count() as f64;
        let nu = na.union(&nb).count() as f64;
        f.push(if nu == 0.0 { f64::NAN } else { ni / nu });
        f.push(f64::from(!na.is_empty() && !nb.is_empty() && ni == 0.0));
        f.push(nu - ni);
        let (la, lb) = (a.all_tokens.len() as f64, b.all_tokens.len() as f64);
        f.push(if la.max(lb) == 0.0 {
            1.0
        } else {
            la.min(lb) / la.max(lb)
        });
        f.push(la);
        f.push(lb);
        for (x, y) in a.others.iter().zip(&b.others) {
            let (x, y) = (x.trim(), y.trim());
            if x.is_empty() || y.is_empty() {
                f.extend([f64::NAN, f64::NAN, f64::NAN, 1.0]);
                continue;
            }
            match (parse_number(x), parse_number(y)) {
                (Some(p), Some(q)) if p > 0.0 && q > 0.0 => f.push((p / q).ln().abs()),
                _ => f.push(f64::NAN),
            }
            f.push(f64::from(x == y));
            let (tx, ty) = (tokenize(x), tokenize(y));
            let sx: HashSet<&String> = tx.iter().collect();
            let sy: HashSet<&String> = ty.iter().collect();
            let union = sx.union(&sy).count() as f64;
            f.push(if union == 0.0 {
                0.0
            } else {
                sx.intersection(&sy).count() as f64 / union
            });
            f.push(0.0);
        }
        if !a.second_main_vector.is_empty() {
            f.push(f64::from(cosine(
                &a.second_main_vector,
                &b.second_main_vector,
            )));
            f.push(f64::from(cosine(
                &a.second_all_vector,
                &b.second_all_vector,
            )));
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_similarities_are_the_rows_whole_record_cosines() {
        let prepared = |text: &str, v: Vec<f32>| Prepared {
            main_tokens: tokenize(text),
            all_tokens: tokenize(&format!("{text} brand")),
            main_vector: v.clone(),
            all_vector: v,
            ..Prepared::default()
        };
        let a = prepared("apple iphone 14 blue", vec![1.0, 0.0, 0.0]);
        let b = prepared("apple iphone 14 蓝色", vec![0.6, 0.8, 0.0]);
        let idf = Idf::fit([a.all_tokens.as_slice(), b.all_tokens.as_slice()]);
        let index = TokenIndex::build(&idf, &[a.clone(), b.clone()]);
        let row = pair_features(&index, (0, &a), (1, &b));
        assert_eq!(
            margin_sims_in_row(&row),
            margin_sims(&index, (0, &a), (1, &b))
        );
    }

    #[test]
    fn tokens_split_cjk_and_keep_version_numbers() {
        assert_eq!(
            tokenize("Adobe After Effects 7.5 (Mac) 蓝色"),
            vec!["adobe", "after", "effects", "7.5", "mac", "蓝", "色"]
        );
        assert_eq!(
            tokenize("pcAnywhere 12.0 2.50 v2.0"),
            vec!["pcanywhere", "12", "2.5", "v2.0"]
        );
        assert_eq!(tokenize("SM-G9910."), vec!["sm", "g9910"]);
        assert!(is_code("g9910") && is_code("cs3") && !is_code("128") && !is_code("gb"));
        assert!(is_number("7.0") && !is_number("v7"));
    }

    #[test]
    fn idf_weights_rare_tokens_higher() {
        let docs: Vec<Vec<String>> = vec![
            tokenize("apple iphone"),
            tokenize("apple ipad"),
            tokenize("dell xps"),
        ];
        let idf = Idf::fit(docs.iter().map(|d| d.as_slice()));
        assert!(idf.weight("xps") > idf.weight("apple"));
        assert!(idf.weight("unseen") >= idf.weight("xps"));
        let a = tokenize("apple iphone");
        assert!((reference::tfidf_cosine(&idf, &a, &a) - 1.0).abs() < 1e-9);
        assert!(reference::bm25(&idf, &a, &tokenize("dell xps")) == 0.0);
    }

    /// Equal as features: the same value, or both NaN.
    fn same_features(x: &[f64], y: &[f64]) -> bool {
        x.len() == y.len()
            && x.iter()
                .zip(y)
                .all(|(a, b)| a == b || (a.is_nan() && b.is_nan()))
    }

    fn record(title: &str, extra: &str, brand: &str) -> Prepared {
        Prepared {
            main_tokens: tokenize(title),
            all_tokens: tokenize(&format!("{title} {extra} {brand}")),
            main_vector: vec![1.0, 0.5],
            all_vector: vec![0.5, 1.0],
            others: vec![brand.to_string(), extra.to_string()],
            ..Prepared::default()
        }
    }

    proptest::proptest! {
        /// The indexed features are the definitions' values to the last bit, for records
        /// numbered in one index of many (as the resolve stage numbers them).
        #[test]
        fn indexed_features_equal_the_definitions(
            titles in proptest::collection::vec(
                "(apple|iphone|14|pro|128gb|g9910|sm|蓝|色|photoshp|photoshop|cs3|7.0|adobe|mac| ){0,12}",
                2..6,
            ),
            extras in proptest::collection::vec("(blue|black|2.50|v2|usb|usb-c| ){0,5}", 6),
        ) {
            let records: Vec<Prepared> = titles
                .iter()
                .enumerate()
                .map(|(i, t)| record(t, &extras[i], &extras[5 - i]))
                .collect();
            let idf = Idf::fit(records.iter().map(|r| r.all_tokens.as_slice()));
            let index = crate::token_index::TokenIndex::build(&idf, &records);
            for a in 0..records.len() {
                for b in 0..records.len() {
                    let want = reference::pair_features(&idf, &records[a], &records[b]);
                    let got = pair_features(&index, (a, &records[a]), (b, &records[b]));
                    proptest::prop_assert!(same_features(&want, &got), "{:?}\n{:?}", want, got);
                    let sims = margin_sims(&index, (a, &records[a]), (b, &records[b]));
                    proptest::prop_assert_eq!(sims, margin_sims_in_row(&got));
                }
            }
        }
    }

    #[test]
    fn margins_compare_with_the_best_other_candidate() {
        let pairs = [(0, 10), (0, 11), (1, 10)];
        let sims = [(0.9, 0.8), (0.5, 0.4), (0.7, 0.7)];
        let margins = CandidateMargins::new(&pairs, &sims);
        let f: Vec<[f64; 4]> = pairs
            .iter()
            .zip(&sims)
            .map(|(&key, &sim)| margins.of(key, sim))
            .collect();
        assert!((f[0][0] - 0.4).abs() < 1e-9, "{:?}", f[0]); // left 0: 0.9 vs 0.5
        assert!((f[1][0] + 0.4).abs() < 1e-9);
        assert!((f[0][1] - 0.2).abs() < 1e-9); // right 10: 0.9 vs 0.7
        assert_eq!(f[1][1], 0.0); // right 11 has no other candidate
    }
}
