//! `shopfuse bench recs`: training time and recommendations/s of every model on synthetic
//! implicit feedback of growing size. The data have the shape recommenders meet in shops:
//! users with one or two taste groups, Zipf-popular items inside each group, a fifth of the
//! interactions purchases and the rest views, ten interactions per user on average.

use std::time::Instant;

use rand::distr::Distribution;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Zipf;
use serde::Serialize;
use shopfuse_core::config::{RecsConfig, RecsExclusion};

use super::data::{Action, Catalog, Interaction, InteractionLog, LogSummary};
use super::evaluate::{fit, fit_hybrid, rank, Exclusions};
use super::models::{Ease, Popularity, TrainMatrix};
use crate::LearnError;

pub fn synthetic_log(interactions: usize, items: usize, seed: u64) -> InteractionLog {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let users = (interactions / 10).max(10);
    let groups = (items / 50).clamp(2, 500);
    let per_group = items.div_ceil(groups);
    let zipf = Zipf::new(per_group as f64, 1.1).expect("valid Zipf");
    let tastes: Vec<[usize; 2]> = (0..users)
        .map(|_| [rng.random_range(0..groups), rng.random_range(0..groups)])
        .collect();
    let mut log = Vec::with_capacity(interactions);
    for n in 0..interactions {
        let user = rng.random_range(0..users);
        let group = if rng.random_bool(0.8) {
            tastes[user][rng.random_range(0..2)]
        } else {
            rng.random_range(0..groups)
        };
        let item = (group * per_group + zipf.sample(&mut rng) as usize - 1).min(items - 1);
        log.push(Interaction {
            user: user as u32,
            item: item as u32,
            platform: 0,
            action: if rng.random_bool(0.2) {
                Action::Purchase
            } else {
                Action::View
            },
            at: n as i64 * 1_000_000,
        });
    }
    let ids: Vec<String> = (0..items).map(|i| format!("item{i}")).collect();
    InteractionLog {
        users: (0..users).map(|u| format!("user{u}")).collect(),
        platforms: vec!["synthetic".into()],
        catalog: Catalog {
            titles: ids.clone(),
            ids,
            family: (0..items as u32).collect(),
            offered_on: vec![1; items],
        },
        interactions: log,
        item_vectors: None,
        summary: LogSummary::default(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub interactions: usize,
    pub items: usize,
    pub users: usize,
    pub model: String,
    pub fit_seconds: Option<f64>,
    /// Top-10 lists per second (scoring every item, excluding purchases, ranking).
    pub recs_per_second: Option<f64>,
    pub note: Option<String>,
}

/// Fits every model on a synthetic log of `interactions` × `items` and times them.
pub fn bench_size(
    interactions: usize,
    items: usize,
    config: &RecsConfig,
    seed: u64,
    mut on_row: impl FnMut(&BenchRow),
) -> Result<Vec<BenchRow>, LearnError> {
    let log = synthetic_log(interactions, items, seed);
    let n_users = log.users.len();
    let x = TrainMatrix::build(n_users, items, log.interactions.iter(), config, log.as_of());
    let xt = x.transpose();
    let pop = Popularity::fit(&x).normalised();
    let exclusions = Exclusions::new(
        n_users,
        &log.catalog,
        log.interactions.iter(),
        RecsExclusion::Bought,
    );
    // Users to serve for the throughput figure: the same sample for every model.
    let sample: Vec<usize> = (0..n_users).step_by((n_users / 2000).max(1)).collect();
    let mut rows = Vec::new();
    for name in ["popularity", "item-knn", "ease", "ials", "hybrid"] {
        let mut row = BenchRow {
            interactions,
            items,
            users: n_users,
            model: name.to_string(),
            fit_seconds: None,
            recs_per_second: None,
            note: None,
        };
        if name == "ease" && items > config.max_ease_items {
            row.note = Some(format!(
                "skipped: {items} items need {:.0} GB of dense matrices (max_ease_items {}); item-kNN stands in",
                Ease::memory_bytes(items) as f64 / 1e9,
                config.max_ease_items
            ));
            on_row(&row);
            rows.push(row);
            continue;
        }
        let started = Instant::now();
        let model = if name == "hybrid" {
            Some(
                Box::new(fit_hybrid(&x, &xt, &log, config, &[1.0, 0.5, 0.0, 0.05])?)
                    as Box<dyn super::Recommender>,
            )
        } else {
            fit(name, &x, &xt, &log, config)?
        };
        let Some(model) = model else { continue };
        row.fit_seconds = Some(started.elapsed().as_secs_f64());
        let started = Instant::now();
        use rayon::prelude::*;
        let served: usize = sample
            .par_iter()
            .map_init(
                || vec![0f32; items],
                |scores, &u| {
                    rank(
                        model.as_ref(),
                        &x,
                        u,
                        10,
                        &pop,
                        &exclusions,
                        &|_| true,
                        scores,
                    )
                    .len()
                },
            )
            .filter(|n| *n > 0)
            .count();
        row.recs_per_second = Some(served as f64 / started.elapsed().as_secs_f64());
        on_row(&row);
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_logs_have_the_asked_size_and_popular_heads() {
        let log = synthetic_log(5_000, 200, 1);
        assert_eq!(log.interactions.len(), 5_000);
        assert_eq!(log.users.len(), 500);
        let x = TrainMatrix::build(500, 200, log.interactions.iter(), &RecsConfig::default(), 0);
        let pop = Popularity::fit(&x).strength;
        // Zipf inside each group: a group's first item beats its last.
        assert!(pop[0] > pop[49]);
    }
}
