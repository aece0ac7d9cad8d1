//! `shopfuse bench propensity`: how fast every propensity model is fitted and how many
//! customers per second it scores, at up to a million customers, with BG/NBD's fit next to
//! the `lifetimes` package's on the same summaries.
//!
//! The customers are simulated here, not generated as a project: a million fused customers
//! would take the whole pipeline an hour to produce, and this bench measures the models. The
//! simulation has what the models look at — heterogeneous purchase rates, lapsing shoppers,
//! one to three platforms each, research on another platform days before a purchase, and
//! browsing — so the trees have real structure to fit.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Gamma, LogNormal, Poisson};
use serde::Serialize;
use shopfuse_core::config::PropensityConfig;

use crate::activity::{Activity, Event, EventKind, Histories, Order, DAY_US};
use crate::btyd::BgNbd;
use crate::cdnow::{run_lifetimes, Cdnow};
use crate::model::{rfm_at, training_settings, PropensityModel};
use crate::PropensityError;

const DAYS: i64 = 540;
const PLATFORMS: u16 = 4;

/// Simulated fused activity of `customers` customers.
pub fn simulate(customers: usize, seed: u64) -> Activity {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let rate = Gamma::new(0.8, 1.0 / 60.0).expect("valid gamma");
    let life = Exp::new(1.0 / (1.4 * DAYS as f64)).expect("valid exponential");
    let mut activity = Activity {
        platforms: ["taobao", "jd", "amazon", "own_shop"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    };
    for c in 0..customers as u32 {
        activity.customer_ids.push(format!("CU{c:08}"));
        let mut mine: Vec<u16> = (0..PLATFORMS).filter(|_| rng.random_bool(0.45)).collect();
        if mine.is_empty() {
            mine.push(rng.random_range(0..PLATFORMS));
        }
        activity.accounts.extend(mine.iter().map(|&p| (c, p)));
        let lambda: f64 = rate.sample(&mut rng);
        let active_days = life.sample(&mut rng).min(DAYS as f64);
        let spend = LogNormal::new(rng.random_range(4.0..6.5), 0.5).expect("valid lognormal");
        simulate_customer(
            &mut activity,
            (c, &mine),
            (lambda, active_days),
            &spend,
            &mut rng,
        );
    }
    activity
}

fn simulate_customer(
    activity: &mut Activity,
    (c, mine): (u32, &[u16]),
    (lambda, active_days): (f64, f64),
    spend: &LogNormal<f64>,
    rng: &mut ChaCha8Rng,
) {
    let count = |mean: f64, rng: &mut ChaCha8Rng| {
        if mean > 0.0 {
            Poisson::new(mean).map_or(0, |p| p.sample(rng) as usize)
        } else {
            0
        }
    };
    let day_us = |d: f64| (d * DAY_US as f64) as i64;
    for _ in 0..count(lambda * active_days, rng) {
        let at = day_us(rng.random_range(0.0..active_days.max(1e-3)));
        let platform = mine[rng.random_range(0..mine.len())];
        activity.orders.push(Order {
            customer: c,
            platform,
            at,
            amount: spend.sample(rng),
        });
        if rng.random_bool(0.45) {
            let there = if rng.random_bool(0.6) {
                mine[rng.random_range(0..mine.len())]
            } else {
                platform
            };
            let before = at - day_us(rng.random_range(1.0..12.0));
            for kind in [EventKind::View, EventKind::Cart] {
                if before >= 0 && (kind == EventKind::View || rng.random_bool(0.3)) {
                    activity.events.push(Event {
                        customer: c,
                        platform: there,
                        at: before,
                        kind,
                    });
                }
            }
        }
    }
    for _ in 0..count(2.0 * lambda * active_days, rng) {
        activity.events.push(Event {
            customer: c,
            platform: mine[rng.random_range(0..mine.len())],
            at: day_us(rng.random_range(0.0..active_days.max(1e-3))),
            kind: if rng.random_bool(0.1) {
                EventKind::Favorite
            } else {
                EventKind::View
            },
        });
    }
}

/// One size's figures.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub customers: usize,
    pub orders: usize,
    pub events: usize,
    /// Every model of the stage (BG/NBD, Gamma-Gamma, the 30-day, churn and per-platform
    /// classifiers with their calibration).
    pub fit_seconds: f64,
    pub fit_customers_per_second: f64,
    /// Scores and drivers of every customer and platform account.
    pub score_seconds: f64,
    pub score_customers_per_second: f64,
    /// BG/NBD's fit alone, and the `lifetimes` package's on the same summaries.
    pub bg_nbd_seconds: f64,
    pub lifetimes_bg_nbd_seconds: Option<f64>,
    pub peak_memory_mib: Option<f64>,
}

/// Runs every size in ascending order (the peak memory of a size is the process's peak so
/// far, so ascending sizes make it the size's own).
pub fn bench(
    sizes: &[usize],
    config: &PropensityConfig,
    lifetimes: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<Vec<BenchRow>, PropensityError> {
    let mut sizes = sizes.to_vec();
    sizes.sort_unstable();
    let settings = training_settings(config, true);
    let mut out = Vec::new();
    for n in sizes {
        let activity = simulate(n, 7);
        let cutoff = DAYS * DAY_US;
        let started = std::time::Instant::now();
        let histories = Histories::new(&activity);
        let model = PropensityModel::fit(&activity, &histories, cutoff, &settings)?;
        let fit_seconds = started.elapsed().as_secs_f64();
        let started = std::time::Instant::now();
        let (scores, platforms) = model.score(&histories, config.drivers, true);
        let score_seconds = started.elapsed().as_secs_f64();
        std::hint::black_box((&scores, &platforms));
        let rfm: Vec<crate::Rfm> = rfm_at(&activity.orders, cutoff, |_| true)
            .into_values()
            .collect();
        let started = std::time::Instant::now();
        BgNbd::fit(&rfm)?;
        let bg_nbd_seconds = started.elapsed().as_secs_f64();
        let lifetimes_bg_nbd_seconds = match lifetimes {
            Some((python, script)) => {
                let data = Cdnow {
                    holdout: vec![0.0; rfm.len()],
                    customers: rfm,
                    holdout_weeks: 13.0,
                };
                Some(run_lifetimes(&data, python, script)?.bg_nbd_seconds)
            }
            None => None,
        };
        out.push(BenchRow {
            customers: n,
            orders: activity.orders.len(),
            events: activity.events.len(),
            fit_seconds,
            fit_customers_per_second: n as f64 / fit_seconds,
            score_seconds,
            score_customers_per_second: n as f64 / score_seconds,
            bg_nbd_seconds,
            lifetimes_bg_nbd_seconds,
            peak_memory_mib: shopfuse_core::progress::peak_memory_mib(),
        });
    }
    Ok(out)
}
