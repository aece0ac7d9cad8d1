//! Offline evaluation the way the literature reports it: train on the past, rank the whole
//! catalogue for each user, score the purchases that followed.
//!
//! - Split: temporal (every interaction before the cut-off trains; purchases after it are
//!   the targets; the cut-off leaves `test_share` of purchases after it) or leave-last-out
//!   (each user's last purchase is the target; that user's interactions from then on are
//!   dropped from training). Targets the user had already bought before are not counted:
//!   the default exclusion would never show them.
//! - Metrics, averaged over users with at least one target: Recall@K = hits / min(K,
//!   targets) (the normalised recall of Liang et al. 2018), NDCG@K with binary relevance,
//!   HitRate@10, and catalogue coverage (share of candidate items in anyone's top 10).
//! - The hybrid's blend weights are chosen on a validation split carved out of the training
//!   data the same way, never on the test targets.
//! - Cross-platform lift: per platform, the same models trained on that platform's behaviour
//!   only versus on every platform, ranking that platform's items for its held-out
//!   purchases.
//!
//! Users without any training interaction are ranked by popularity (each model's scores get
//! a popularity tie-break a million times smaller than their own range).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use shopfuse_core::config::{RecsConfig, RecsExclusion};

use super::data::{Action, Catalog, Interaction, InteractionLog};
use super::models::{
    scale_to_unit_max, Content, Ease, Hybrid, Ials, ItemKnn, Popularity, Recommender, TrainMatrix,
};
use super::top_k;
use crate::LearnError;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum SplitKind {
    Temporal { test_share: f64 },
    LeaveLastOut,
}

/// Training interactions and, per user, the items to predict.
pub struct Split {
    pub train: Vec<Interaction>,
    /// (user, item, platform) of the target purchases, distinct per (user, item, platform).
    pub targets: Vec<(u32, u32, u16)>,
    pub now: i64,
}

pub fn split(interactions: &[Interaction], kind: SplitKind) -> Split {
    let purchases: Vec<&Interaction> = interactions
        .iter()
        .filter(|i| i.action == Action::Purchase)
        .collect();
    let (train, held): (Vec<Interaction>, Vec<&Interaction>) = match kind {
        SplitKind::Temporal { test_share } => {
            let mut times: Vec<i64> = purchases.iter().map(|i| i.at).collect();
            times.sort_unstable();
            let at = ((times.len() as f64) * (1.0 - test_share)).floor() as usize;
            let cutoff = times.get(at.min(times.len().saturating_sub(1))).copied();
            let Some(cutoff) = cutoff else {
                return Split {
                    train: interactions.to_vec(),
                    targets: Vec::new(),
                    now: 0,
                };
            };
            (
                interactions
                    .iter()
                    .filter(|i| i.at < cutoff)
                    .copied()
                    .collect(),
                purchases.into_iter().filter(|i| i.at >= cutoff).collect(),
            )
        }
        SplitKind::LeaveLastOut => {
            let mut last: HashMap<u32, &Interaction> = HashMap::new();
            for p in &purchases {
                last.insert(p.user, p); // sorted by time: the last one wins
            }
            let train = interactions
                .iter()
                .filter(|i| last.get(&i.user).is_none_or(|l| i.at < l.at))
                .copied()
                .collect();
            (train, last.into_values().collect())
        }
    };
    let bought_before: HashSet<(u32, u32)> = train
        .iter()
        .filter(|i| i.action == Action::Purchase)
        .map(|i| (i.user, i.item))
        .collect();
    let mut targets: Vec<(u32, u32, u16)> = held
        .iter()
        .filter(|i| !bought_before.contains(&(i.user, i.item)))
        .map(|i| (i.user, i.item, i.platform))
        .collect();
    targets.sort_unstable();
    targets.dedup();
    let now = train.iter().map(|i| i.at).max().unwrap_or(0);
    Split {
        train,
        targets,
        now,
    }
}

/// Per user, the items a recommendation must not show.
pub struct Exclusions {
    per_user: Vec<Vec<u32>>,
}

impl Exclusions {
    pub fn new<'a>(
        n_users: usize,
        catalog: &Catalog,
        interactions: impl Iterator<Item = &'a Interaction>,
        mode: RecsExclusion,
    ) -> Self {
        let mut per_user: Vec<Vec<u32>> = vec![Vec::new(); n_users];
        if mode == RecsExclusion::None {
            return Exclusions { per_user };
        }
        let mut family_items: HashMap<u32, Vec<u32>> = HashMap::new();
        if mode == RecsExclusion::BoughtAndVariants {
            for (i, f) in catalog.family.iter().enumerate() {
                family_items.entry(*f).or_default().push(i as u32);
            }
        }
        for i in interactions.filter(|i| i.action == Action::Purchase) {
            let list = &mut per_user[i.user as usize];
            match family_items.get(&catalog.family[i.item as usize]) {
                Some(items) => list.extend(items),
                None => list.push(i.item),
            }
        }
        for list in &mut per_user {
            list.sort_unstable();
            list.dedup();
        }
        Exclusions { per_user }
    }

    pub fn contains(&self, user: usize, item: usize) -> bool {
        self.per_user[user].binary_search(&(item as u32)).is_ok()
    }
}

/// Ranks `candidates` for `user` with `model`: scores scaled to a maximum of 1, popularity
/// breaking ties (and ranking users the model knows nothing about), exclusions skipped.
#[allow(clippy::too_many_arguments)]
pub fn rank(
    model: &dyn Recommender,
    x: &TrainMatrix,
    user: usize,
    k: usize,
    popularity: &[f32],
    exclusions: &Exclusions,
    candidate: &(dyn Fn(usize) -> bool + Sync),
    scores: &mut [f32],
) -> Vec<usize> {
    let (items, values) = x.row(user);
    model.score(user, items, values, scores);
    scale_to_unit_max(scores);
    for (s, p) in scores.iter_mut().zip(popularity) {
        *s += 1e-6 * p;
    }
    top_k(scores, k, |i| !candidate(i) || exclusions.contains(user, i))
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Metrics {
    pub users: usize,
    pub recall_10: f64,
    pub recall_20: f64,
    pub ndcg_10: f64,
    pub ndcg_20: f64,
    pub hit_rate_10: f64,
    pub coverage_10: f64,
}

fn ndcg(ranked: &[usize], targets: &HashSet<u32>, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, i)| targets.contains(&(**i as u32)))
        .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
        .sum();
    let ideal: f64 = (0..targets.len().min(k))
        .map(|r| 1.0 / ((r + 2) as f64).log2())
        .sum();
    if ideal > 0.0 {
        dcg / ideal
    } else {
        0.0
    }
}

fn recall(ranked: &[usize], targets: &HashSet<u32>, k: usize) -> f64 {
    let hits = ranked
        .iter()
        .take(k)
        .filter(|i| targets.contains(&(**i as u32)))
        .count();
    hits as f64 / targets.len().min(k).max(1) as f64
}

/// Scores `model` on `targets` (user → items), ranking only `candidate` items.
pub fn measure(
    model: &dyn Recommender,
    x: &TrainMatrix,
    targets: &BTreeMap<u32, HashSet<u32>>,
    popularity: &[f32],
    exclusions: &Exclusions,
    candidate: &(dyn Fn(usize) -> bool + Sync),
) -> Metrics {
    use rayon::prelude::*;
    let users: Vec<(&u32, &HashSet<u32>)> = targets.iter().collect();
    let ranked: Vec<Vec<usize>> = users
        .par_iter()
        .map_init(
            || vec![0f32; x.n_items],
            |scores, (u, _)| {
                rank(
                    model,
                    x,
                    **u as usize,
                    20,
                    popularity,
                    exclusions,
                    candidate,
                    scores,
                )
            },
        )
        .collect();
    let n = users.len().max(1) as f64;
    let mut m = Metrics {
        users: users.len(),
        ..Default::default()
    };
    let mut shown: HashSet<usize> = HashSet::new();
    for ((_, t), r) in users.iter().zip(&ranked) {
        m.recall_10 += recall(r, t, 10) / n;
        m.recall_20 += recall(r, t, 20) / n;
        m.ndcg_10 += ndcg(r, t, 10) / n;
        m.ndcg_20 += ndcg(r, t, 20) / n;
        m.hit_rate_10 += if recall(r, t, 10) > 0.0 { 1.0 / n } else { 0.0 };
        shown.extend(r.iter().take(10));
    }
    let candidates = (0..x.n_items).filter(|&i| candidate(i)).count().max(1);
    m.coverage_10 = shown.len() as f64 / candidates as f64;
    m
}

/// The models `eval recs` compares, by name, in the order reports list them.
pub const MODELS: [&str; 6] = [
    "popularity",
    "item-knn",
    "ease",
    "ials",
    "content",
    "hybrid",
];

/// Fits the named model (not the hybrid) on `x`; `None` when it cannot run here (EASE over
/// too many items, content without title vectors).
pub fn fit(
    name: &str,
    x: &TrainMatrix,
    xt: &TrainMatrix,
    log: &InteractionLog,
    config: &RecsConfig,
) -> Result<Option<Box<dyn Recommender>>, LearnError> {
    Ok(match name {
        "popularity" => Some(Box::new(Popularity::fit(x))),
        "item-knn" => Some(Box::new(ItemKnn::fit(x, xt, config.neighbours))),
        "ease" if x.n_items <= config.max_ease_items => {
            Some(Box::new(Ease::fit(x, config.ease_lambda)?))
        }
        "ials" => Some(Box::new(Ials::fit(x, xt, config, 7))),
        "content" => log
            .item_vectors
            .as_ref()
            .map(|v| Box::new(Content::new(v.clone())) as Box<dyn Recommender>),
        _ => None,
    })
}

/// The parts of the hybrid: the item-to-item model (EASE, or item-kNN on big catalogues),
/// iALS, content and popularity.
pub const HYBRID_PARTS: [&str; 4] = ["ease-or-knn", "ials", "content", "popularity"];

/// Blend weights by part name, for reports.
pub fn hybrid_weight_map(weights: [f32; 4]) -> BTreeMap<String, f32> {
    HYBRID_PARTS
        .iter()
        .zip(weights)
        .map(|(p, w)| (p.to_string(), w))
        .collect()
}

fn fit_part(
    part: &str,
    x: &TrainMatrix,
    xt: &TrainMatrix,
    log: &InteractionLog,
    config: &RecsConfig,
) -> Result<Option<Box<dyn Recommender>>, LearnError> {
    if part == "ease-or-knn" {
        return match fit("ease", x, xt, log, config)? {
            Some(m) => Ok(Some(m)),
            None => fit("item-knn", x, xt, log, config),
        };
    }
    fit(part, x, xt, log, config)
}

/// Fits the hybrid with `weights` (one per [`HYBRID_PARTS`] entry).
pub fn fit_hybrid(
    x: &TrainMatrix,
    xt: &TrainMatrix,
    log: &InteractionLog,
    config: &RecsConfig,
    weights: &[f32; 4],
) -> Result<Hybrid, LearnError> {
    let mut parts = Vec::new();
    for (part, &w) in HYBRID_PARTS.iter().zip(weights) {
        if w > 0.0 {
            if let Some(m) = fit_part(part, x, xt, log, config)? {
                parts.push((Arc::from(m), w));
            }
        }
    }
    Ok(Hybrid { parts })
}

fn targets_by_user(
    targets: &[(u32, u32, u16)],
    keep: impl Fn(&(u32, u32, u16)) -> bool,
) -> BTreeMap<u32, HashSet<u32>> {
    let mut out: BTreeMap<u32, HashSet<u32>> = BTreeMap::new();
    for t in targets.iter().filter(|t| keep(t)) {
        out.entry(t.0).or_default().insert(t.1);
    }
    out
}

fn has_row(x: &TrainMatrix, u: u32) -> bool {
    x.indptr[u as usize + 1] > x.indptr[u as usize]
}

/// Blend weights for the hybrid, chosen by NDCG@10 on a validation split of `train`.
pub fn tune_hybrid(
    log: &InteractionLog,
    train: &[Interaction],
    kind: SplitKind,
    config: &RecsConfig,
) -> Result<([f32; 4], f64), LearnError> {
    let val = split(train, kind);
    let n_users = log.users.len();
    let n_items = log.catalog.len();
    let x = TrainMatrix::build(n_users, n_items, val.train.iter(), config, val.now);
    let xt = x.transpose();
    let mut targets = targets_by_user(&val.targets, |t| has_row(&x, t.0));
    // Enough users to choose four weights; the rest would only cost time.
    while targets.len() > 3000 {
        let drop: Vec<u32> = targets.keys().copied().skip(1).step_by(2).collect();
        for u in drop {
            targets.remove(&u);
        }
    }
    let default = [1.0, 0.5, 0.25, 0.1];
    if targets.is_empty() {
        return Ok((default, 0.0));
    }
    let parts: Vec<Option<Box<dyn Recommender>>> = HYBRID_PARTS
        .iter()
        .map(|p| fit_part(p, &x, &xt, log, config))
        .collect::<Result<_, _>>()?;
    let popularity = Popularity::fit(&x).normalised();
    let exclusions = Exclusions::new(n_users, &log.catalog, val.train.iter(), config.exclude);
    // Each part's per-user normalised scores once; the grid only re-weights them.
    let users: Vec<u32> = targets.keys().copied().collect();
    let part_scores: Vec<Option<Vec<f32>>> = parts
        .iter()
        .map(|p| {
            p.as_ref().map(|m| {
                let mut all = vec![0f32; users.len() * n_items];
                for (k, &u) in users.iter().enumerate() {
                    let out = &mut all[k * n_items..(k + 1) * n_items];
                    let (items, values) = x.row(u as usize);
                    m.score(u as usize, items, values, out);
                    scale_to_unit_max(out);
                }
                all
            })
        })
        .collect();
    let grid = HybridGrid {
        users: &users,
        part_scores: &part_scores,
        popularity: &popularity,
        exclusions: &exclusions,
        targets: &targets,
        n_items,
    };
    let grid_a = [0.0f32, 0.5, 1.0];
    let grid_c = [0.0f32, 0.1, 0.25, 0.5];
    let grid_p = [0.0f32, 0.05, 0.2];
    let mut best = (default, -1.0f64);
    for &wa in &grid_a {
        for &wb in &grid_a {
            for &wc in &grid_c {
                for &wp in &grid_p {
                    let w = [wa, wb, wc, wp];
                    if w.iter().all(|x| *x == 0.0) {
                        continue;
                    }
                    let mean = grid.mean_ndcg_10(w);
                    if mean > best.1 + 1e-9 {
                        best = (w, mean);
                    }
                }
            }
        }
    }
    Ok(best)
}

/// The validation users' scores from each hybrid part, computed once, so that each weight
/// vector of the grid only re-weights them.
struct HybridGrid<'a> {
    users: &'a [u32],
    /// Per part (None when the part is off): `users.len() × n_items` scores, each user's row
    /// scaled to a maximum of 1.
    part_scores: &'a [Option<Vec<f32>>],
    popularity: &'a [f32],
    exclusions: &'a Exclusions,
    targets: &'a BTreeMap<u32, HashSet<u32>>,
    n_items: usize,
}

impl HybridGrid<'_> {
    /// NDCG@10 over the validation users of the hybrid with weights `w`.
    fn mean_ndcg_10(&self, w: [f32; 4]) -> f64 {
        let n_items = self.n_items;
        let mut scores = vec![0f32; n_items];
        let mut total = 0.0;
        for (k, &u) in self.users.iter().enumerate() {
            scores.fill(0.0);
            for (p, ps) in self.part_scores.iter().enumerate() {
                if let (Some(ps), true) = (ps, w[p] > 0.0) {
                    for (s, v) in scores.iter_mut().zip(&ps[k * n_items..(k + 1) * n_items]) {
                        *s += w[p] * v;
                    }
                }
            }
            for (s, p) in scores.iter_mut().zip(self.popularity) {
                *s += 1e-6 * p;
            }
            let r = top_k(&scores, 10, |i| self.exclusions.contains(u as usize, i));
            total += ndcg(&r, &self.targets[&u], 10);
        }
        total / self.users.len() as f64
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelMetrics {
    pub model: String,
    pub fit_seconds: f64,
    #[serde(flatten)]
    pub metrics: Metrics,
}

#[derive(Debug, Clone, Serialize)]
pub struct LiftRow {
    pub model: String,
    pub ndcg_10_single: f64,
    pub ndcg_10_all: f64,
    pub recall_10_single: f64,
    pub recall_10_all: f64,
    /// NDCG@10 of the all-platform model over the single-platform one, minus one, in %.
    pub ndcg_10_lift_pct: f64,
    /// The same for the light users of the platform.
    pub ndcg_10_single_light: f64,
    pub ndcg_10_all_light: f64,
    pub ndcg_10_lift_pct_light: f64,
}

/// At most this many products touched on a platform before the cut-off make a shopper
/// light there: the people a single platform knows least about.
pub const LIGHT_USER_ITEMS: usize = 3;

fn lift_pct(all: f64, single: f64) -> f64 {
    if single > 0.0 {
        100.0 * (all / single - 1.0)
    } else {
        0.0
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlatformLift {
    pub platform: String,
    pub users: usize,
    /// Of them, users with no behaviour on this platform before the cut-off (cold there,
    /// known elsewhere).
    pub cold_on_platform: usize,
    /// Of them, users with at most [`LIGHT_USER_ITEMS`] products touched on this platform.
    pub light_users: usize,
    pub models: Vec<LiftRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecsEvaluation {
    pub split: SplitKind,
    pub exclusion: RecsExclusion,
    pub users: usize,
    pub items: usize,
    pub interactions: usize,
    pub train_interactions: usize,
    /// Users with a target and some training behaviour (the ones scored).
    pub test_users: usize,
    /// Users with a target but no training behaviour (not scored: every model would rank
    /// them by popularity).
    pub cold_test_users: usize,
    pub hybrid_weights: BTreeMap<String, f32>,
    pub validation_ndcg_10: f64,
    pub models: Vec<ModelMetrics>,
    pub lift: Vec<PlatformLift>,
}

/// The whole evaluation: every model side by side, then the cross-platform lift (when the
/// log has more than one platform).
pub fn evaluate_log(
    log: &InteractionLog,
    config: &RecsConfig,
    kind: SplitKind,
) -> Result<RecsEvaluation, LearnError> {
    let s = split(&log.interactions, kind);
    if s.targets.is_empty() {
        return Err(LearnError::Invalid(
            "no purchases to hold out: recommendations need orders or purchase events".into(),
        ));
    }
    let n_users = log.users.len();
    let n_items = log.catalog.len();
    let x = TrainMatrix::build(n_users, n_items, s.train.iter(), config, s.now);
    let (weights, validation_ndcg_10) = tune_hybrid(log, &s.train, kind, config)?;
    let all_targets = targets_by_user(&s.targets, |_| true);
    let targets = targets_by_user(&s.targets, |t| has_row(&x, t.0));
    let exclusions = Exclusions::new(n_users, &log.catalog, s.train.iter(), config.exclude);
    let ctx = EvalContext {
        log,
        config,
        split: &s,
        x: &x,
        weights: &weights,
        exclusions: &exclusions,
    };
    let fitted = ctx.fit_all(&targets)?;
    let mut lift = Vec::new();
    if log.platforms.len() > 1 {
        for (p, platform) in log.platforms.iter().enumerate() {
            lift.extend(ctx.platform_lift(p as u16, platform, &fitted)?);
        }
    }
    Ok(RecsEvaluation {
        split: kind,
        exclusion: config.exclude,
        users: n_users,
        items: n_items,
        interactions: log.interactions.len(),
        train_interactions: s.train.len(),
        test_users: targets.len(),
        cold_test_users: all_targets.len() - targets.len(),
        hybrid_weights: hybrid_weight_map(weights),
        validation_ndcg_10,
        models: fitted.metrics,
        lift,
    })
}

/// What every part of one evaluation shares: the log, the split, the training matrix of all
/// platforms, the hybrid's blend and the exclusions.
struct EvalContext<'a> {
    log: &'a InteractionLog,
    config: &'a RecsConfig,
    split: &'a Split,
    x: &'a TrainMatrix,
    weights: &'a [f32; 4],
    exclusions: &'a Exclusions,
}

/// The models fitted on all platforms, with their metrics.
struct Fitted {
    metrics: Vec<ModelMetrics>,
    models: Vec<(String, Box<dyn Recommender>)>,
    hybrid: Option<Hybrid>,
}

impl EvalContext<'_> {
    /// Fits every model on all platforms' behaviour and measures it on `targets`.
    fn fit_all(&self, targets: &BTreeMap<u32, HashSet<u32>>) -> Result<Fitted, LearnError> {
        let (x, log, config) = (self.x, self.log, self.config);
        let xt = x.transpose();
        let popularity = Popularity::fit(x).normalised();
        let everything = |_: usize| true;
        let mut fitted = Fitted {
            metrics: Vec::new(),
            models: Vec::new(),
            hybrid: None,
        };
        for name in MODELS {
            let started = Instant::now();
            let model = if name == "hybrid" {
                let h = fit_hybrid(x, &xt, log, config, self.weights)?;
                fitted.hybrid = Some(Hybrid {
                    parts: h.parts.clone(),
                });
                Some(Box::new(h) as Box<dyn Recommender>)
            } else {
                fit(name, x, &xt, log, config)?
            };
            let Some(model) = model else { continue };
            let fit_seconds = started.elapsed().as_secs_f64();
            let metrics = measure(
                model.as_ref(),
                x,
                targets,
                &popularity,
                self.exclusions,
                &everything,
            );
            fitted.metrics.push(ModelMetrics {
                model: name.to_string(),
                fit_seconds,
                metrics,
            });
            fitted.models.push((name.to_string(), model));
        }
        Ok(fitted)
    }

    /// Platform `p`'s held-out purchases predicted by each model trained on `p`'s behaviour
    /// only and on all platforms; `None` when `p` has fewer than 20 such users.
    fn platform_lift(
        &self,
        p: u16,
        platform: &str,
        fitted: &Fitted,
    ) -> Result<Option<PlatformLift>, LearnError> {
        let (x, log, config, s) = (self.x, self.log, self.config, self.split);
        let on_p = targets_by_user(&s.targets, |t| t.2 == p && has_row(x, t.0));
        if on_p.len() < 20 {
            return Ok(None);
        }
        let train_p: Vec<Interaction> = s
            .train
            .iter()
            .filter(|i| i.platform == p)
            .copied()
            .collect();
        let (n_users, n_items) = (log.users.len(), log.catalog.len());
        let xp = TrainMatrix::build(n_users, n_items, train_p.iter(), config, s.now);
        let xpt = xp.transpose();
        let pop_p = Popularity::fit(&xp).normalised();
        let excl_p = Exclusions::new(n_users, &log.catalog, train_p.iter(), config.exclude);
        let offered = |i: usize| log.catalog.offered(i, p);
        let cold = on_p.keys().filter(|u| !has_row(&xp, **u)).count();
        let light: BTreeMap<u32, HashSet<u32>> = on_p
            .iter()
            .filter(|(u, _)| xp.row(**u as usize).0.len() <= LIGHT_USER_ITEMS)
            .map(|(u, t)| (*u, t.clone()))
            .collect();
        let mut rows = Vec::new();
        for (name, all_model) in &fitted.models {
            let single: Option<Box<dyn Recommender>> = if name == "hybrid" {
                Some(Box::new(fit_hybrid(&xp, &xpt, log, config, self.weights)?))
            } else {
                fit(name, &xp, &xpt, log, config)?
            };
            let Some(single) = single else { continue };
            // Ranking one platform's shelf, both blends use that platform's popularity.
            let contextual = match &fitted.hybrid {
                Some(h) if name == "hybrid" => Some(h.with_popularity_of(&xp)),
                _ => None,
            };
            let all_model: &dyn Recommender = match &contextual {
                Some(h) => h,
                None => all_model.as_ref(),
            };
            let a = measure(all_model, x, &on_p, &pop_p, self.exclusions, &offered);
            let b = measure(single.as_ref(), &xp, &on_p, &pop_p, &excl_p, &offered);
            let al = measure(all_model, x, &light, &pop_p, self.exclusions, &offered);
            let bl = measure(single.as_ref(), &xp, &light, &pop_p, &excl_p, &offered);
            rows.push(LiftRow {
                model: name.clone(),
                ndcg_10_single: b.ndcg_10,
                ndcg_10_all: a.ndcg_10,
                recall_10_single: b.recall_10,
                recall_10_all: a.recall_10,
                ndcg_10_lift_pct: lift_pct(a.ndcg_10, b.ndcg_10),
                ndcg_10_single_light: bl.ndcg_10,
                ndcg_10_all_light: al.ndcg_10,
                ndcg_10_lift_pct_light: lift_pct(al.ndcg_10, bl.ndcg_10),
            });
        }
        Ok(Some(PlatformLift {
            platform: platform.to_string(),
            users: on_p.len(),
            cold_on_platform: cold,
            light_users: light.len(),
            models: rows,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(user: u32, item: u32, action: Action, day: i64) -> Interaction {
        Interaction {
            user,
            item,
            platform: 0,
            action,
            at: day * 86_400_000_000,
        }
    }

    #[test]
    fn ndcg_and_recall_on_known_rankings() {
        let t: HashSet<u32> = [3, 7].into();
        assert!((ndcg(&[3, 7, 1], &t, 10) - 1.0).abs() < 1e-12);
        let expected = (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        assert!((ndcg(&[1, 3, 2], &t, 10) - expected).abs() < 1e-12);
        assert_eq!(recall(&[1, 3, 2], &t, 10), 0.5);
        assert_eq!(recall(&[1, 2], &t, 1), 0.0);
        assert_eq!(ndcg(&[], &t, 10), 0.0);
    }

    #[test]
    fn temporal_split_holds_out_later_purchases_not_rebuys() {
        let log = vec![
            at(0, 1, Action::Purchase, 1),
            at(0, 2, Action::View, 2),
            at(1, 3, Action::Purchase, 3),
            at(0, 1, Action::Purchase, 9),
            at(0, 2, Action::Purchase, 10),
        ];
        let s = split(&log, SplitKind::Temporal { test_share: 0.5 });
        assert_eq!(s.train.len(), 3);
        // user 0's re-purchase of item 1 is no target; the new item 2 is.
        assert_eq!(s.targets, vec![(0, 2, 0)]);
    }

    #[test]
    fn leave_last_out_drops_the_users_later_behaviour() {
        let log = vec![
            at(0, 1, Action::Purchase, 1),
            at(1, 5, Action::Purchase, 2),
            at(0, 2, Action::Purchase, 3),
            at(0, 4, Action::View, 4),
            at(1, 6, Action::View, 5),
        ];
        let s = split(&log, SplitKind::LeaveLastOut);
        let mut targets = s.targets.clone();
        targets.sort();
        assert_eq!(targets, vec![(0, 2, 0), (1, 5, 0)]);
        assert_eq!(s.train, vec![log[0]]);
    }

    #[test]
    fn exclusions_cover_variants_when_asked() {
        let catalog = Catalog {
            ids: vec!["a".into(), "b".into(), "c".into()],
            titles: vec![String::new(); 3],
            family: vec![0, 0, 1],
            offered_on: vec![1; 3],
        };
        let bought = [at(0, 0, Action::Purchase, 1), at(0, 2, Action::View, 1)];
        let e = Exclusions::new(1, &catalog, bought.iter(), RecsExclusion::Bought);
        assert!(e.contains(0, 0) && !e.contains(0, 1) && !e.contains(0, 2));
        let e = Exclusions::new(1, &catalog, bought.iter(), RecsExclusion::BoughtAndVariants);
        assert!(e.contains(0, 0) && e.contains(0, 1) && !e.contains(0, 2));
        let e = Exclusions::new(1, &catalog, bought.iter(), RecsExclusion::None);
        assert!(!e.contains(0, 0));
    }
}
