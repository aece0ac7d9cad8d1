//! A Fellegi–Sunter model of account pairs, estimated from the data as Splink does: the
//! u-probabilities (how often a *random* pair agrees at each level) from random pairs of
//! accounts, the m-probabilities (how often a *matching* pair does) and the match prior by
//! expectation maximisation over the candidate pairs, seeded from the accounts that share a
//! personal phone or e-mail. Exact agreement on a value is weighted by that value's term
//! frequency, so sharing the name 王伟 says less than sharing 欧阳一诺.
//!
//! Written here rather than taken from a crate: no maintained Rust crate does record linkage
//! with Fellegi–Sunter weights, and the model is small (a few dozen probabilities).

use serde::Serialize;

/// One comparison of two accounts and its agreement levels, strongest first; the last
/// level is disagreement. A pair where either side lacks the field has no level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    Name,
    Phone,
    Email,
    Address,
    City,
    Device,
}

pub const COMPARISONS: [Comparison; 6] = [
    Comparison::Name,
    Comparison::Phone,
    Comparison::Email,
    Comparison::Address,
    Comparison::City,
    Comparison::Device,
];

impl Comparison {
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Name => "name",
            Comparison::Phone => "phone",
            Comparison::Email => "email",
            Comparison::Address => "address",
            Comparison::City => "city",
            Comparison::Device => "device",
        }
    }

    pub fn levels(self) -> &'static [&'static str] {
        match self {
            Comparison::Name => &["same name", "shared name part", "different name"],
            Comparison::Phone => &["same phone", "same phone tail", "different phone"],
            Comparison::Email => &["same e-mail", "same mailbox", "different e-mail"],
            Comparison::Address => &[
                "same house",
                "same street",
                "same district",
                "different address",
            ],
            Comparison::City => &["same city", "different city"],
            Comparison::Device => &["shared device", "no shared device"],
        }
    }

    /// Whether the phone and e-mail comparisons are the keys of deterministic links, which
    /// therefore cannot seed their own m-probabilities.
    fn is_key(self) -> bool {
        matches!(self, Comparison::Phone | Comparison::Email)
    }
}

/// The comparison vector of one pair: per comparison the level (index into `levels()`), and
/// for an exact agreement the agreeing value's term frequency (share of accounts holding it).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gamma {
    pub level: [Option<u8>; 6],
    pub term_frequency: [Option<f64>; 6],
}

#[derive(Debug, Clone, Serialize)]
pub struct FellegiSunter {
    /// Prior probability that two random accounts (on different platforms) are one
    /// person: the expected matches among the candidates over all pairs. The u-probabilities
    /// are rates among random pairs, so the prior must be too; the candidates' own match
    /// rate would count the blocking key's agreement twice.
    pub prior: f64,
    /// Share of the candidate pairs that match, as EM estimated it.
    pub candidate_prior: f64,
    pub m: Vec<Vec<f64>>,
    pub u: Vec<Vec<f64>>,
    /// EM iterations until the parameters stopped moving.
    pub iterations: usize,
    /// Per comparison: whether m came from the seed pairs (else from EM).
    pub m_from_seeds: Vec<bool>,
}

/// One comparison's share of a pair's match weight.
#[derive(Debug, Clone)]
pub struct Contribution {
    pub comparison: Comparison,
    pub level: &'static str,
    pub weight: f64,
}

const MAX_ITERATIONS: usize = 50;
/// Seed pairs that compare a field before their agreement rates are trusted as its m.
const MIN_SEEDS: f64 = 10.0;
/// Keeps every probability away from 0 and 1, so one level never vetoes a pair outright.
const FLOOR: f64 = 1e-4;

fn normalised(counts: &[f64]) -> Vec<f64> {
    let total: f64 = counts.iter().sum();
    counts
        .iter()
        .map(|c| ((c + 0.5) / (total + 0.5 * counts.len() as f64)).max(FLOOR))
        .collect()
}

fn level_counts(gammas: &[Gamma], weights: &[f64], comparison: usize) -> Vec<f64> {
    let n_levels = COMPARISONS[comparison].levels().len();
    let mut counts = vec![0.0; n_levels];
    for (g, w) in gammas.iter().zip(weights) {
        if let Some(l) = g.level[comparison] {
            counts[l as usize] += w;
        }
    }
    counts
}

/// The distinct level vectors among `gammas` (term frequencies dropped), in a fixed order,
/// and how many of `gammas` have each.
fn level_patterns(gammas: &[Gamma]) -> (Vec<Gamma>, Vec<f64>) {
    let mut counts: std::collections::BTreeMap<[Option<u8>; 6], f64> = Default::default();
    for g in gammas {
        *counts.entry(g.level).or_default() += 1.0;
    }
    counts
        .into_iter()
        .map(|(level, n)| {
            (
                Gamma {
                    level,
                    term_frequency: [None; 6],
                },
                n,
            )
        })
        .unzip()
}

impl FellegiSunter {
    /// `random` are comparison vectors of random account pairs (nearly all non-matches),
    /// `candidates` those of the blocked pairs, `seeds` those of pairs known to match (by a
    /// personal key; their key comparisons are not used as evidence of themselves);
    /// `all_pairs` is the number of account pairs that could match.
    pub fn estimate(
        random: &[Gamma],
        candidates: &[Gamma],
        seeds: &[Gamma],
        all_pairs: f64,
    ) -> Self {
        let ones = |n: usize| vec![1.0; n];
        let u: Vec<Vec<f64>> = (0..COMPARISONS.len())
            .map(|c| normalised(&level_counts(random, &ones(random.len()), c)))
            .collect();
        // Where the seeds can speak (every comparison but the keys that made them seeds), m
        // is read off them and held fixed: EM left free on blocked pairs drifts to the
        // largest look-alike class (namesakes) instead of the matches.
        let mut fixed = [false; COMPARISONS.len()];
        let m: Vec<Vec<f64>> = COMPARISONS
            .iter()
            .enumerate()
            .map(|(c, comparison)| {
                let counts = level_counts(seeds, &ones(seeds.len()), c);
                if !comparison.is_key() && counts.iter().sum::<f64>() >= MIN_SEEDS {
                    fixed[c] = true;
                    normalised(&counts)
                } else {
                    let n = comparison.levels().len();
                    (0..n)
                        .map(|l| if l == 0 { 0.7 } else { 0.3 / (n - 1) as f64 })
                        .collect()
                }
            })
            .collect();
        let mut model = Self {
            prior: 0.1,
            candidate_prior: 0.1,
            m,
            u,
            iterations: 0,
            m_from_seeds: fixed.to_vec(),
        };
        if candidates.is_empty() {
            return model;
        }
        // EM reads only the levels, so the candidates' distinct level vectors, each with how
        // many candidates have it, stand for them all: a few hundred instead of millions.
        let (patterns, counts) = level_patterns(candidates);
        let total: f64 = counts.iter().sum();
        for iteration in 1..=MAX_ITERATIONS {
            let posterior: Vec<f64> = patterns
                .iter()
                .zip(&counts)
                .map(|(g, n)| n * model.probability_without_tf(g))
                .collect();
            let prior = (posterior.iter().sum::<f64>() / total).clamp(FLOOR, 0.5);
            let m: Vec<Vec<f64>> = (0..COMPARISONS.len())
                .map(|c| {
                    if fixed[c] {
                        model.m[c].clone()
                    } else {
                        normalised(&level_counts(&patterns, &posterior, c))
                    }
                })
                .collect();
            let moved = (prior - model.prior).abs().max(
                m.iter()
                    .flatten()
                    .zip(model.m.iter().flatten())
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max),
            );
            model.prior = prior;
            model.m = m;
            model.iterations = iteration;
            if moved < 1e-5 {
                break;
            }
        }
        let expected_matches: f64 = patterns
            .iter()
            .zip(&counts)
            .map(|(g, n)| n * model.probability_without_tf(g))
            .sum();
        model.candidate_prior = model.prior;
        model.prior = (expected_matches / all_pairs.max(candidates.len() as f64)).clamp(1e-12, 0.5);
        model
    }

    fn prior_weight(&self) -> f64 {
        (self.prior / (1.0 - self.prior)).log2()
    }

    fn probability_without_tf(&self, g: &Gamma) -> f64 {
        let mut w = self.prior_weight();
        for (c, level) in g.level.iter().enumerate() {
            if let Some(l) = level {
                w += (self.m[c][*l as usize] / self.u[c][*l as usize]).log2();
            }
        }
        probability(w)
    }

    /// Each compared field's log2 Bayes factor, with exact agreement weighted by how rare
    /// the agreeing value is.
    pub fn contributions(&self, g: &Gamma) -> Vec<Contribution> {
        let mut out = Vec::new();
        self.contributions_into(g, &mut out);
        out
    }

    /// [`Self::contributions`] into a buffer the caller reuses (millions of links).
    pub fn contributions_into(&self, g: &Gamma, out: &mut Vec<Contribution>) {
        out.clear();
        for (c, comparison) in COMPARISONS.iter().enumerate() {
            let Some(l) = g.level[c] else { continue };
            let l = l as usize;
            let u = match (l, g.term_frequency[c]) {
                (0, Some(tf)) => tf.max(FLOOR * FLOOR),
                _ => self.u[c][l],
            };
            out.push(Contribution {
                comparison: *comparison,
                level: comparison.levels()[l],
                weight: (self.m[c][l] / u).log2(),
            });
        }
    }

    /// log2 odds of a match: the prior plus every comparison's contribution.
    pub fn match_weight(&self, g: &Gamma) -> f64 {
        let mut parts = Vec::with_capacity(COMPARISONS.len());
        self.contributions_into(g, &mut parts);
        self.prior_weight() + parts.iter().map(|c| c.weight).sum::<f64>()
    }

    pub fn match_probability(&self, g: &Gamma) -> f64 {
        probability(self.match_weight(g))
    }
}

pub fn probability(weight: f64) -> f64 {
    let odds = weight.exp2();
    if odds.is_infinite() {
        1.0
    } else {
        odds / (1.0 + odds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gamma(levels: [Option<u8>; 6]) -> Gamma {
        Gamma {
            level: levels,
            term_frequency: [None; 6],
        }
    }

    #[test]
    fn em_separates_matches_from_look_alikes() {
        // Random pairs: one in a hundred shares a (common) name, one in eight a city.
        let random: Vec<Gamma> = (0..1000)
            .map(|i| {
                gamma([
                    Some(if i % 100 == 0 { 0 } else { 2 }),
                    Some(2),
                    Some(2),
                    Some(3),
                    Some(if i % 8 == 0 { 0 } else { 1 }),
                    None,
                ])
            })
            .collect();
        // Candidates: 100 matches (same name, house and city, another phone) and 400
        // namesakes elsewhere (a quarter of them in the same city).
        let mut candidates: Vec<Gamma> = (0..100)
            .map(|_| gamma([Some(0), Some(2), None, Some(0), Some(0), None]))
            .collect();
        candidates.extend((0..400).map(|i| {
            gamma([
                Some(0),
                Some(2),
                None,
                Some(3),
                Some(u8::from(i % 4 != 0)),
                None,
            ])
        }));
        let seeds: Vec<Gamma> = (0..50)
            .map(|_| gamma([Some(0), Some(0), None, Some(0), Some(0), None]))
            .collect();
        let model = FellegiSunter::estimate(&random, &candidates, &seeds, 500.0);
        // 100 matches and 100 same-city namesakes that the fields cannot tell apart.
        assert!(
            (0.15..0.45).contains(&model.candidate_prior),
            "prior {}",
            model.candidate_prior
        );
        // Over ten times as many possible pairs, the prior is ten times lower.
        let wide = FellegiSunter::estimate(&random, &candidates, &seeds, 5000.0);
        assert!((wide.prior * 10.0 - model.prior).abs() < 1e-6);
        let matching = model.match_probability(&candidates[0]);
        let namesake = model.match_probability(&candidates[201]);
        assert!(matching > 0.99 && namesake < 0.01, "{matching} {namesake}");
        // A rare name is stronger evidence than a common one.
        let mut rare = candidates[0];
        rare.term_frequency[0] = Some(0.0001);
        let mut common = candidates[0];
        common.term_frequency[0] = Some(0.05);
        assert!(model.match_weight(&rare) > model.match_weight(&common) + 5.0);
    }

    #[test]
    fn missing_fields_are_no_evidence() {
        let model = FellegiSunter::estimate(&[], &[], &[], 1.0);
        let empty = gamma([None; 6]);
        assert!((model.match_probability(&empty) - model.prior).abs() < 1e-9);
        assert!(model.contributions(&empty).is_empty());
    }
}
