//! Every propensity model of a project as of one cut-off, and the scores they give each
//! fused customer: the calibrated classifiers (a purchase in 30 days anywhere and on each
//! platform, churn over 90 days) and BG/NBD with Gamma-Gamma (P(alive), expected purchases
//! and spend over 90 days).
//!
//! The stage scores as of the latest activity in the data; `eval propensity` fits the same
//! models as of an earlier cut-off and compares their scores with what happened after it.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;
use shopfuse_core::config::PropensityConfig;

use crate::activity::{Activity, Histories, Order, DAY_US};
use crate::btyd::{BgNbd, GammaGamma, Rfm};
use crate::classifier::{Classifier, Driver, Target, TrainingSettings};
use crate::features::View;
use crate::PropensityError;

const WEEK_US: f64 = 7.0 * 86_400_000_000.0;

/// The horizon of the purchase probabilities, and of churn and value.
pub const BUY_DAYS: i64 = 30;
pub const CHURN_DAYS: i64 = 90;

/// Each customer's BG/NBD summary at `cutoff` from the orders `keep` admits: frequency and
/// recency in days with an order (several on one day are one purchase), in weeks, and the
/// mean value of the repeat purchase days.
pub fn rfm_at(orders: &[Order], cutoff: i64, keep: impl Fn(&Order) -> bool) -> BTreeMap<u32, Rfm> {
    let mut days: BTreeMap<u32, BTreeMap<i64, f64>> = BTreeMap::new();
    for o in orders.iter().filter(|o| o.at < cutoff && keep(o)) {
        *days
            .entry(o.customer)
            .or_default()
            .entry(o.at.div_euclid(DAY_US))
            .or_default() += o.amount;
    }
    days.into_iter()
        .map(|(customer, d)| {
            let first = *d.keys().next().expect("non-empty") as f64 * DAY_US as f64;
            let last = *d.keys().next_back().expect("non-empty") as f64 * DAY_US as f64;
            let repeats: Vec<f64> = d.values().skip(1).copied().collect();
            let rfm = Rfm {
                frequency: repeats.len() as f64,
                recency: (last - first) / WEEK_US,
                age: (cutoff as f64 - first) / WEEK_US,
                monetary: if repeats.is_empty() {
                    0.0
                } else {
                    repeats.iter().sum::<f64>() / repeats.len() as f64
                },
            };
            (customer, rfm)
        })
        .collect()
}

/// How the models are trained (from `[propensity]`), and whether on every core.
pub fn training_settings(config: &PropensityConfig, parallel: bool) -> TrainingSettings {
    TrainingSettings {
        cutoffs: config.training_cutoffs.max(1),
        max_rows: config.max_training_rows.max(100),
        iterations: config.iterations.max(1),
        learning_rate: config.learning_rate,
        max_depth: config.max_depth.max(1),
        parallel,
    }
}

/// The models of one cut-off.
pub struct PropensityModel {
    pub cutoff: i64,
    /// Fitted on every customer with an order before the cut-off; `None` without enough.
    pub bg_nbd: Option<BgNbd>,
    pub gamma_gamma: Option<GammaGamma>,
    /// A purchase anywhere within 30 days, on the fused customer.
    pub buy: Option<Classifier>,
    /// No purchase within 90 days, for customers who have bought.
    pub churn: Option<Classifier>,
    /// Per platform: a purchase there within 30 days, on the fused customer and on what the
    /// platform alone sees.
    pub per_platform: Vec<PlatformModels>,
    rfm: BTreeMap<u32, Rfm>,
}

pub struct PlatformModels {
    pub platform: u16,
    pub fused: Option<Classifier>,
    pub alone: Option<Classifier>,
}

/// One customer's scores (`None` where a model does not score them).
#[derive(Debug, Clone, Serialize)]
pub struct CustomerScore {
    pub customer: u32,
    pub p_buy_30d: Option<f64>,
    pub p_buy_30d_btyd: Option<f64>,
    pub p_alive: Option<f64>,
    pub p_churn_90d: Option<f64>,
    pub expected_purchases_90d: Option<f64>,
    pub expected_spend_90d: Option<f64>,
    /// What moves `p_buy_30d` most.
    pub drivers: Vec<Driver>,
}

/// One customer's purchase probability on one platform they have an account on.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PlatformScore {
    pub customer: u32,
    pub platform: u16,
    /// From the fused customer.
    pub p_buy_30d: f64,
    /// From what the platform alone sees.
    pub p_buy_30d_alone: Option<f64>,
}

impl PropensityModel {
    /// Fits every model as of `cutoff` on the activity before it.
    pub fn fit(
        activity: &Activity,
        histories: &Histories<'_>,
        cutoff: i64,
        settings: &TrainingSettings,
    ) -> Result<PropensityModel, PropensityError> {
        let rfm = rfm_at(&activity.orders, cutoff, |_| true);
        let rfms: Vec<Rfm> = rfm.values().copied().collect();
        let bg_nbd = if rfms.len() >= 20 {
            Some(BgNbd::fit(&rfms)?)
        } else {
            None
        };
        let repeaters = rfms
            .iter()
            .filter(|r| r.frequency > 0.0 && r.monetary > 0.0)
            .count();
        let gamma_gamma = if repeaters >= 20 {
            Some(GammaGamma::fit(&rfms)?)
        } else {
            None
        };
        let platforms = &activity.platforms;
        let train = |view, target| {
            Classifier::train(histories, (view, target), cutoff, platforms, settings)
        };
        let purchase = |platform| Target::Purchase {
            platform,
            days: BUY_DAYS,
        };
        let buy = train(View::Overall, purchase(None))?;
        let churn = train(View::Overall, Target::Churn { days: CHURN_DAYS })?;
        let per_platform = (0..platforms.len() as u16)
            .map(|p| {
                Ok(PlatformModels {
                    platform: p,
                    fused: train(View::PlatformFused(p), purchase(Some(p)))?,
                    alone: train(View::PlatformAlone(p), purchase(Some(p)))?,
                })
            })
            .collect::<Result<Vec<_>, PropensityError>>()?;
        Ok(PropensityModel {
            cutoff,
            bg_nbd,
            gamma_gamma,
            buy,
            churn,
            per_platform,
            rfm,
        })
    }

    /// Scores every customer active before the cut-off, with `drivers` drivers each.
    pub fn score(
        &self,
        histories: &Histories<'_>,
        drivers: usize,
        parallel: bool,
    ) -> (Vec<CustomerScore>, Vec<PlatformScore>) {
        let cutoff = self.cutoff;
        let active: Vec<usize> = (0..histories.customers())
            .filter(|&c| histories.active_before(c, cutoff))
            .collect();
        let classify =
            |model: &Option<Classifier>, who: &[usize]| -> Option<(Vec<f64>, Vec<Vec<Driver>>)> {
                let model = model.as_ref()?;
                let rows = rows_of(histories, model.view, who, cutoff);
                let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
                let explain = if drivers > 0 {
                    model.drivers(&refs, drivers, parallel)
                } else {
                    Vec::new()
                };
                Some((model.predict(&refs, parallel), explain))
            };
        let buy = classify(&self.buy, &active);
        let buyers: Vec<usize> = active
            .iter()
            .copied()
            .filter(|&c| Target::Churn { days: CHURN_DAYS }.scores(histories, c, cutoff))
            .collect();
        let churn = classify_without_drivers(&self.churn, histories, &buyers, cutoff, parallel);
        let churn_of: BTreeMap<usize, f64> = buyers
            .iter()
            .copied()
            .zip(churn.unwrap_or_default())
            .collect();
        let (p_buy, mut explained) = buy.unwrap_or_default();
        let customers = active
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let rfm = self.rfm.get(&(c as u32));
                let btyd = self.bg_nbd.zip(rfm);
                let expected = btyd.map(|(m, r)| m.expected_purchases(r, CHURN_DAYS as f64 / 7.0));
                CustomerScore {
                    customer: c as u32,
                    p_buy_30d: p_buy.get(i).copied(),
                    p_buy_30d_btyd: btyd
                        .map(|(m, r)| m.probability_of_purchase(r, BUY_DAYS as f64 / 7.0)),
                    p_alive: btyd.map(|(m, r)| m.probability_alive(r)),
                    p_churn_90d: churn_of.get(&c).copied(),
                    expected_purchases_90d: expected,
                    expected_spend_90d: expected
                        .zip(self.gamma_gamma.zip(rfm))
                        .map(|(e, (gg, r))| e * gg.expected_value(r)),
                    drivers: explained.get_mut(i).map(std::mem::take).unwrap_or_default(),
                }
            })
            .collect();
        (
            customers,
            self.score_platforms(histories, &active, parallel),
        )
    }

    fn score_platforms(
        &self,
        histories: &Histories<'_>,
        active: &[usize],
        parallel: bool,
    ) -> Vec<PlatformScore> {
        let mut out = Vec::new();
        for models in &self.per_platform {
            let p = models.platform;
            let who: Vec<usize> = active
                .iter()
                .copied()
                .filter(|&c| histories.has_account(c, p))
                .collect();
            let Some(fused) =
                classify_without_drivers(&models.fused, histories, &who, self.cutoff, parallel)
            else {
                continue;
            };
            let alone =
                classify_without_drivers(&models.alone, histories, &who, self.cutoff, parallel);
            for (i, &c) in who.iter().enumerate() {
                out.push(PlatformScore {
                    customer: c as u32,
                    platform: p,
                    p_buy_30d: fused[i],
                    p_buy_30d_alone: alone.as_ref().map(|a| a[i]),
                });
            }
        }
        out
    }
}

fn classify_without_drivers(
    model: &Option<Classifier>,
    histories: &Histories<'_>,
    who: &[usize],
    cutoff: i64,
    parallel: bool,
) -> Option<Vec<f64>> {
    let model = model.as_ref()?;
    let rows = rows_of(histories, model.view, who, cutoff);
    let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
    Some(model.predict(&refs, parallel))
}

/// Feature rows of `who`, built on every core.
pub fn rows_of(histories: &Histories<'_>, view: View, who: &[usize], cutoff: i64) -> Vec<Vec<f64>> {
    who.par_iter()
        .map(|&c| view.row(histories, c, cutoff))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::{Event, EventKind};

    /// The whole model — every classifier's training rows and labels, BG/NBD, the scores —
    /// is a function of the activity before the cut-off: planting orders and events after it
    /// changes no score.
    #[test]
    fn activity_after_the_cutoff_changes_no_score() {
        let mut activity = crate::bench::simulate(1500, 3);
        let cutoff = 400 * DAY_US;
        let settings = TrainingSettings {
            iterations: 40,
            parallel: false,
            ..TrainingSettings::default()
        };
        let scores = |activity: &Activity| {
            let h = Histories::new(activity);
            let model = PropensityModel::fit(activity, &h, cutoff, &settings).unwrap();
            assert!(model.buy.is_some() && model.churn.is_some());
            let (customers, platforms) = model.score(&h, 3, false);
            serde_json::to_string(&(customers, platforms)).unwrap()
        };
        let before = scores(&activity);
        for c in 0..1500u32 {
            activity.orders.push(Order {
                customer: c,
                platform: (c % 4) as u16,
                at: cutoff + i64::from(c % 30) * DAY_US,
                amount: 999.0,
            });
            activity.events.push(Event {
                customer: c,
                platform: ((c + 1) % 4) as u16,
                at: cutoff,
                kind: EventKind::Cart,
            });
        }
        assert_eq!(scores(&activity), before);
    }
}
