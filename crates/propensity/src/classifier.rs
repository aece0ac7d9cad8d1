//! The purchase and churn classifiers: gradient-boosted trees (forust, as the product matcher
//! uses) on [`crate::features`] rows, calibrated by isotonic regression on customers held out
//! of the trees' fit, with per-customer drivers from the trees' path contributions.
//!
//! Drivers are Saabas' path contributions (each split on a row's path credits its feature
//! with the change of the node value), not exact Shapley values: they cost one walk down each
//! tree per row, so every customer of a million gets drivers in seconds, where forust's exact
//! TreeSHAP is quadratic in the depth per leaf. Both sum to the row's log-odds.
//!
//! Training rows come from earlier cut-offs whose outcome window ends at or before the
//! scoring cut-off, so every label the model learns from lies before the moment it scores:
//! to score "a purchase in the next 30 days" as of `t`, the rows are the customers as of
//! `t − 30 d`, `t − 60 d`, … with what they did in the 30 days after each.

use forust_ml::gradientbooster::{ContributionsMethod, GradientBooster};
use forust_ml::objective::ObjectiveType;
use forust_ml::Matrix;
use rayon::prelude::*;
use serde::Serialize;

use crate::activity::{Histories, DAY_US};
use crate::calibration::Isotonic;
use crate::features::View;
use crate::PropensityError;

/// What a classifier predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A purchase (on the platform, or anywhere) within the horizon.
    Purchase { platform: Option<u16>, days: i64 },
    /// No purchase anywhere within the horizon, for a customer who has bought before.
    Churn { days: i64 },
}

impl Target {
    pub fn days(self) -> i64 {
        match self {
            Target::Purchase { days, .. } | Target::Churn { days } => days,
        }
    }

    /// Whether a customer is scored as of `cutoff`: active before it (with an account on the
    /// platform, for a platform's purchase; with an order, for churn).
    pub fn scores(self, h: &Histories<'_>, customer: usize, cutoff: i64) -> bool {
        match self {
            Target::Purchase { platform, .. } => {
                h.active_before(customer, cutoff)
                    && platform.is_none_or(|p| h.has_account(customer, p))
            }
            Target::Churn { .. } => h.orders[customer].iter().any(|o| o.at < cutoff),
        }
    }

    /// The outcome after `cutoff`.
    pub fn outcome(self, h: &Histories<'_>, customer: usize, cutoff: i64) -> bool {
        match self {
            Target::Purchase { platform, days } => {
                h.bought_within(customer, cutoff, days, platform)
            }
            Target::Churn { days } => !h.bought_within(customer, cutoff, days, None),
        }
    }
}

/// How a classifier is trained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct TrainingSettings {
    /// Training cut-offs, a month apart, the latest one horizon before the scoring cut-off.
    pub cutoffs: usize,
    /// At most this many training rows (a deterministic sample by customer beyond it).
    pub max_rows: usize,
    pub iterations: usize,
    pub learning_rate: f32,
    pub max_depth: usize,
    /// Use every core for the trees.
    pub parallel: bool,
}

impl Default for TrainingSettings {
    fn default() -> Self {
        TrainingSettings {
            cutoffs: 4,
            max_rows: 400_000,
            iterations: 150,
            learning_rate: 0.05,
            max_depth: 4,
            parallel: true,
        }
    }
}

/// One feature's part in a customer's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Driver {
    /// Feature name, `column[scope]` (`views_7d[jd]`).
    pub feature: String,
    /// The customer's value of it.
    pub value: f64,
    /// Its path contribution to the trees' log-odds: positive raises the score.
    pub contribution: f64,
}

/// A calibrated gradient-boosted classifier on one [`View`]'s rows.
pub struct Classifier {
    pub view: View,
    pub target: Target,
    trees: GradientBooster,
    calibration: Isotonic,
    names: Vec<String>,
    /// Rows and positives it was trained on (trees and calibration together).
    pub training_rows: usize,
    pub training_positives: usize,
}

impl Classifier {
    /// Trains for `target` as of `cutoff` from the rows of earlier cut-offs. `None` when the
    /// training rows lack either outcome.
    pub fn train(
        h: &Histories<'_>,
        (view, target): (View, Target),
        cutoff: i64,
        platforms: &[String],
        settings: &TrainingSettings,
    ) -> Result<Option<Classifier>, PropensityError> {
        let (rows, labels, holdout) = training_rows(h, (view, target), cutoff, settings);
        let positives = labels.iter().filter(|&&y| y).count();
        if rows.len() < 50 || positives == 0 || positives == labels.len() {
            return Ok(None);
        }
        let pick = |keep: bool| -> (Vec<&[f64]>, Vec<bool>) {
            rows.iter()
                .zip(&labels)
                .zip(&holdout)
                .filter(|(_, &held)| held == keep)
                .map(|((r, &y), _)| (r.as_slice(), y))
                .unzip()
        };
        let (fit_rows, fit_y) = pick(false);
        let (cal_rows, cal_y) = pick(true);
        let trees = fit_trees(&fit_rows, &fit_y, settings)?;
        let raw = raw_probabilities(&trees, &cal_rows, settings.parallel);
        Ok(Some(Classifier {
            view,
            target,
            trees,
            calibration: Isotonic::fit(&raw, &cal_y),
            names: view.names(platforms),
            training_rows: rows.len(),
            training_positives: positives,
        }))
    }

    /// Calibrated probabilities of `rows`.
    pub fn predict(&self, rows: &[&[f64]], parallel: bool) -> Vec<f64> {
        raw_probabilities(&self.trees, rows, parallel)
            .into_iter()
            .map(|p| self.calibration.apply(p))
            .collect()
    }

    /// The `k` features that move each row's score most, by absolute contribution.
    pub fn drivers(&self, rows: &[&[f64]], k: usize, parallel: bool) -> Vec<Vec<Driver>> {
        let (data, n, cols) = column_major(rows);
        let contributions = self.trees.predict_contributions(
            &Matrix::new(&data, n, cols),
            ContributionsMethod::Weight,
            parallel,
        );
        (0..n)
            .map(|r| {
                let row = &contributions[r * (cols + 1)..r * (cols + 1) + cols];
                let mut order: Vec<usize> = (0..cols).filter(|&c| row[c] != 0.0).collect();
                order.sort_by(|&a, &b| row[b].abs().total_cmp(&row[a].abs()).then(a.cmp(&b)));
                order
                    .into_iter()
                    .take(k)
                    .map(|c| Driver {
                        feature: self.names[c].clone(),
                        value: rows[r][c],
                        contribution: row[c],
                    })
                    .collect()
            })
            .collect()
    }
}

/// Rows, outcomes and the calibration hold-out flag of each training row.
fn training_rows(
    h: &Histories<'_>,
    (view, target): (View, Target),
    cutoff: i64,
    settings: &TrainingSettings,
) -> (Vec<Vec<f64>>, Vec<bool>, Vec<bool>) {
    let mut candidates: Vec<(usize, i64)> = Vec::new();
    for k in 0..settings.cutoffs as i64 {
        let t = cutoff - (target.days() + 30 * k) * DAY_US;
        candidates.extend(
            (0..h.customers())
                .filter(|&c| target.scores(h, c, t))
                .map(|c| (c, t)),
        );
    }
    if candidates.len() > settings.max_rows {
        // A deterministic sample, spread over customers and cut-offs alike.
        let keep = settings.max_rows as f64 / candidates.len() as f64;
        candidates.retain(|&(c, t)| unit_hash(c as u64 ^ (t as u64).rotate_left(17)) < keep);
    }
    let rows = candidates
        .par_iter()
        .map(|&(c, t)| view.row(h, c, t))
        .collect();
    let labels = candidates
        .iter()
        .map(|&(c, t)| target.outcome(h, c, t))
        .collect();
    // One customer in five, by customer, so no customer is on both sides.
    let holdout = candidates
        .iter()
        .map(|&(c, _)| unit_hash(c as u64) < 0.2)
        .collect();
    (rows, labels, holdout)
}

/// A number in [0, 1) from a key (SplitMix64's finaliser).
fn unit_hash(key: u64) -> f64 {
    let mut z = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) as f64 / (u64::MAX as f64 + 1.0)
}

fn column_major(rows: &[&[f64]]) -> (Vec<f64>, usize, usize) {
    let (n, cols) = (rows.len(), rows.first().map_or(0, |r| r.len()));
    let mut data = vec![0.0; n * cols];
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            data[c * n + r] = *v;
        }
    }
    (data, n, cols)
}

fn fit_trees(
    rows: &[&[f64]],
    labels: &[bool],
    settings: &TrainingSettings,
) -> Result<GradientBooster, PropensityError> {
    let (data, n, cols) = column_major(rows);
    let matrix = Matrix::new(&data, n, cols);
    let y: Vec<f64> = labels.iter().map(|&b| f64::from(u8::from(b))).collect();
    let mut booster = GradientBooster::default()
        .set_objective_type(ObjectiveType::LogLoss)
        .set_iterations(settings.iterations)
        .set_learning_rate(settings.learning_rate)
        .set_max_depth(settings.max_depth)
        .set_l2(1.0)
        .set_subsample(0.8)
        .set_seed(11)
        .set_parallel(settings.parallel);
    booster
        .fit_unweighted(&matrix, &y, None)
        .map_err(|e| PropensityError::Fit(e.to_string()))?;
    Ok(booster)
}

fn raw_probabilities(model: &GradientBooster, rows: &[&[f64]], parallel: bool) -> Vec<f64> {
    if rows.is_empty() {
        return Vec::new();
    }
    let (data, n, cols) = column_major(rows);
    model
        .predict(&Matrix::new(&data, n, cols), parallel)
        .into_iter()
        .map(|log_odds| 1.0 / (1.0 + (-log_odds).exp()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::{Activity, Event, EventKind, Order};

    /// Customers who carted on JD in the week before buying on Taobao: the fused view learns
    /// it, Taobao's own view cannot see it.
    #[test]
    fn the_fused_view_learns_what_another_platform_shows() {
        let day = |d: i64| d * DAY_US;
        let mut activity = Activity {
            platforms: vec!["taobao".into(), "jd".into()],
            ..Default::default()
        };
        for c in 0..600u32 {
            activity.customer_ids.push(format!("CU{c}"));
            activity.accounts.extend([(c, 0), (c, 1)]);
            activity.orders.push(Order {
                customer: c,
                platform: 0,
                at: day(5 + i64::from(c % 7)),
                amount: 10.0,
            });
            for month in 0..8i64 {
                if unit_hash(u64::from(c) * 1000 + month as u64) < 0.4 {
                    let start = day(40 + month * 30);
                    let buy = start + day(2) + i64::from(c) * 1_000_000;
                    activity.events.push(Event {
                        customer: c,
                        platform: 1,
                        at: start - day(1),
                        kind: EventKind::Cart,
                    });
                    activity.orders.push(Order {
                        customer: c,
                        platform: 0,
                        at: buy,
                        amount: 10.0,
                    });
                }
            }
        }
        let h = Histories::new(&activity);
        let cutoff = day(40 + 7 * 30);
        let target = Target::Purchase {
            platform: Some(0),
            days: 30,
        };
        let settings = TrainingSettings {
            parallel: false,
            ..TrainingSettings::default()
        };
        let auc = |view: View| {
            let model =
                Classifier::train(&h, (view, target), cutoff, &activity.platforms, &settings)
                    .unwrap()
                    .unwrap();
            let who: Vec<usize> = (0..h.customers())
                .filter(|&c| target.scores(&h, c, cutoff))
                .collect();
            let rows: Vec<Vec<f64>> = who.iter().map(|&c| view.row(&h, c, cutoff)).collect();
            let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
            let p = model.predict(&refs, false);
            let y: Vec<bool> = who.iter().map(|&c| target.outcome(&h, c, cutoff)).collect();
            let drivers = model.drivers(&refs, 3, false);
            (crate::metrics::Scores::of(&p, &y).roc_auc, drivers)
        };
        let (alone, _) = auc(View::PlatformAlone(0));
        let (fused, drivers) = auc(View::PlatformFused(0));
        assert!(fused > 0.9, "fused AUC {fused}");
        assert!(fused > alone + 0.1, "fused {fused} vs alone {alone}");
        assert!(drivers.iter().any(|d| d
            .iter()
            .any(|x| x.feature.ends_with("[jd]") || x.feature.ends_with("[all]"))));
    }
}
