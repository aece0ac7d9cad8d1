//! Propensity on a project's fused customers, evaluated on a temporal split: every model the
//! stage fits ([`PropensityModel`]) is fitted as of a cut-off 90 days before the last order,
//! on the activity before it, and its scores are compared with what customers did after it.
//!
//! Two comparisons:
//! - **BG/NBD vs the classifier** on the same customers (those with an order before the
//!   cut-off): a purchase anywhere in 30 days, and churn (no purchase in 90).
//! - **The fusion lift**: for each platform, whether a customer buys *on that platform* in
//!   30 days, predicted from that platform's data alone (what the platform sees of its
//!   customer) and from the fused customer — BG/NBD (its orders vs the fused history times
//!   the platform's share) and the classifier (its view vs the fused view) — once over the
//!   platform's buyers and once over every account holder active anywhere (the shopper who
//!   browses on Taobao and buys on JD looks cold to JD alone).
//!
//! Nothing after the cut-off reaches a prediction: features and summaries are cut before the
//! models are fitted (unit tests plant future activity and check it changes nothing).

use std::collections::HashMap;

use serde::Serialize;

use crate::activity::{Activity, Histories, DAY_US};
use crate::btyd::{BgNbd, Rfm};
use crate::classifier::{Target, TrainingSettings};
use crate::metrics::Scores;
use crate::model::{rfm_at, rows_of, PlatformModels, PropensityModel, BUY_DAYS, CHURN_DAYS};
use crate::tables::timestamp_text;
use crate::PropensityError;

/// One model's figures against one outcome, or `None` where it could not be fitted.
#[derive(Debug, Clone, Serialize)]
pub struct Compared {
    pub btyd: Option<Scores>,
    pub classifier: Option<Scores>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlatformLift {
    pub platform: String,
    /// Customers with an order on the platform before the cut-off.
    pub buyers_alone: Compared,
    pub buyers_fused: Compared,
    /// Every account holder on the platform active anywhere before the cut-off (classifier).
    pub holders_alone: Option<Scores>,
    pub holders_fused: Option<Scores>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectEvaluation {
    pub cutoff: String,
    pub model: Option<BgNbd>,
    /// P(purchase anywhere in 30 days) on customers with an order before the cut-off.
    pub buy_30d: Compared,
    /// The classifier on every customer active before the cut-off (browsers included).
    pub buy_30d_all_active: Option<Scores>,
    /// P(no purchase in 90 days): the churn classifier vs 1 − BG/NBD's P(purchase in 90).
    pub churn_90d: Compared,
    /// Expected vs actual purchase days and spend in the next 90 days (BG/NBD, Gamma-Gamma).
    pub purchases_90d_mae: f64,
    pub purchases_90d_actual: f64,
    pub purchases_90d_forecast: f64,
    pub spend_90d_actual: f64,
    pub spend_90d_forecast: f64,
    pub per_platform: Vec<PlatformLift>,
    pub seconds: f64,
}

/// The temporal evaluation: cut-off 90 days before the last order.
pub fn evaluate_project(
    activity: &Activity,
    settings: &TrainingSettings,
) -> Result<ProjectEvaluation, PropensityError> {
    let started = std::time::Instant::now();
    let last = activity
        .orders
        .iter()
        .map(|o| o.at)
        .max()
        .ok_or(PropensityError::NoData("the project has no orders"))?;
    let cutoff = last - CHURN_DAYS * DAY_US;
    let h = Histories::new(activity);
    let model = PropensityModel::fit(activity, &h, cutoff, settings)?;
    let (scores, _) = model.score(&h, 0, settings.parallel);
    let buyers: Vec<usize> = (0..h.customers())
        .filter(|&c| Target::Churn { days: CHURN_DAYS }.scores(&h, c, cutoff))
        .collect();
    let by_customer: HashMap<u32, &crate::model::CustomerScore> =
        scores.iter().map(|s| (s.customer, s)).collect();
    let outcome = |target: Target, who: &[usize]| -> Vec<bool> {
        who.iter().map(|&c| target.outcome(&h, c, cutoff)).collect()
    };
    let buy = Target::Purchase {
        platform: None,
        days: BUY_DAYS,
    };
    let score_of = |who: &[usize], get: &dyn Fn(&crate::model::CustomerScore) -> Option<f64>| {
        who.iter()
            .map(|c| by_customer.get(&(*c as u32)).and_then(|s| get(s)))
            .collect::<Option<Vec<f64>>>()
    };
    let scored = |p: Option<Vec<f64>>, y: &[bool]| p.map(|p| Scores::of(&p, y));
    let y_buy = outcome(buy, &buyers);
    let y_churn = outcome(Target::Churn { days: CHURN_DAYS }, &buyers);
    let rfm = rfm_at(&activity.orders, cutoff, |_| true);
    let quarter = CHURN_DAYS as f64 / 7.0;
    let btyd_churn = model.bg_nbd.map(|m| {
        buyers
            .iter()
            .map(|c| 1.0 - m.probability_of_purchase(&rfm[&(*c as u32)], quarter))
            .collect()
    });
    let active: Vec<usize> = (0..h.customers())
        .filter(|&c| h.active_before(c, cutoff))
        .collect();
    let value = future_value(activity, cutoff);
    let expected: Vec<(f64, f64)> = buyers
        .iter()
        .map(|c| {
            let s = by_customer.get(&(*c as u32));
            (
                s.and_then(|s| s.expected_purchases_90d).unwrap_or(0.0),
                s.and_then(|s| s.expected_spend_90d).unwrap_or(0.0),
            )
        })
        .collect();
    let actual: Vec<(f64, f64)> = buyers
        .iter()
        .map(|c| value.get(&(*c as u32)).copied().unwrap_or((0.0, 0.0)))
        .collect();
    let per_platform = model
        .per_platform
        .iter()
        .map(|m| platform_lift(activity, &h, &model, m, (&rfm, cutoff)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ProjectEvaluation {
        cutoff: timestamp_text(cutoff).unwrap_or_default(),
        model: model.bg_nbd,
        buy_30d: Compared {
            btyd: scored(score_of(&buyers, &|s| s.p_buy_30d_btyd), &y_buy),
            classifier: scored(score_of(&buyers, &|s| s.p_buy_30d), &y_buy),
        },
        buy_30d_all_active: scored(score_of(&active, &|s| s.p_buy_30d), &outcome(buy, &active)),
        churn_90d: Compared {
            btyd: scored(btyd_churn, &y_churn),
            classifier: scored(score_of(&buyers, &|s| s.p_churn_90d), &y_churn),
        },
        purchases_90d_mae: expected
            .iter()
            .zip(&actual)
            .map(|(e, a)| (e.0 - a.0).abs())
            .sum::<f64>()
            / expected.len().max(1) as f64,
        purchases_90d_actual: actual.iter().map(|a| a.0).sum(),
        purchases_90d_forecast: expected.iter().map(|e| e.0).sum(),
        spend_90d_actual: actual.iter().map(|a| a.1).sum(),
        spend_90d_forecast: expected.iter().map(|e| e.1).sum(),
        per_platform,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Each customer's purchase days and spend in the 90 days after `cutoff`.
fn future_value(activity: &Activity, cutoff: i64) -> HashMap<u32, (f64, f64)> {
    let mut days: HashMap<u32, (Vec<i64>, f64)> = HashMap::new();
    for o in activity
        .orders
        .iter()
        .filter(|o| o.at >= cutoff && o.at < cutoff + CHURN_DAYS * DAY_US)
    {
        let e = days.entry(o.customer).or_default();
        e.0.push(o.at.div_euclid(DAY_US));
        e.1 += o.amount;
    }
    days.into_iter()
        .map(|(c, (mut d, spend))| {
            d.sort_unstable();
            d.dedup();
            (c, (d.len() as f64, spend))
        })
        .collect()
}

/// One platform's customers scored from its own data and from the fused customer.
fn platform_lift(
    activity: &Activity,
    h: &Histories<'_>,
    model: &PropensityModel,
    models: &PlatformModels,
    (fused_rfm, cutoff): (&std::collections::BTreeMap<u32, Rfm>, i64),
) -> Result<PlatformLift, PropensityError> {
    let p = models.platform;
    let target = Target::Purchase {
        platform: Some(p),
        days: BUY_DAYS,
    };
    let month = BUY_DAYS as f64 / 7.0;
    let alone_rfm = rfm_at(&activity.orders, cutoff, |o| o.platform == p);
    let buyers: Vec<usize> = alone_rfm.keys().map(|&c| c as usize).collect();
    let holders: Vec<usize> = (0..h.customers())
        .filter(|&c| target.scores(h, c, cutoff))
        .collect();
    let y = |who: &[usize]| -> Vec<bool> {
        who.iter().map(|&c| target.outcome(h, c, cutoff)).collect()
    };
    let (y_buyers, y_holders) = (y(&buyers), y(&holders));
    let classify = |m: &Option<crate::classifier::Classifier>, who: &[usize]| {
        m.as_ref().map(|m| {
            let rows = rows_of(h, m.view, who, cutoff);
            let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
            m.predict(&refs, true)
        })
    };
    let btyd_alone = if buyers.len() >= 20 {
        let rfms: Vec<Rfm> = alone_rfm.values().copied().collect();
        let m = BgNbd::fit(&rfms)?;
        Some(
            rfms.iter()
                .map(|r| m.probability_of_purchase(r, month))
                .collect::<Vec<_>>(),
        )
    } else {
        None
    };
    let mut share: HashMap<u32, (f64, f64)> = HashMap::new();
    for o in activity.orders.iter().filter(|o| o.at < cutoff) {
        let s = share.entry(o.customer).or_default();
        s.1 += 1.0;
        s.0 += f64::from(u8::from(o.platform == p));
    }
    let btyd_fused = model.bg_nbd.map(|m| {
        buyers
            .iter()
            .map(|&c| {
                let (mine, all) = share.get(&(c as u32)).copied().unwrap_or((0.0, 1.0));
                m.probability_of_purchase(&fused_rfm[&(c as u32)], month) * mine / all.max(1.0)
            })
            .collect::<Vec<_>>()
    });
    let scored = |p: Option<Vec<f64>>, y: &[bool]| p.map(|p| Scores::of(&p, y));
    Ok(PlatformLift {
        platform: activity.platforms[p as usize].clone(),
        buyers_alone: Compared {
            btyd: scored(btyd_alone, &y_buyers),
            classifier: scored(classify(&models.alone, &buyers), &y_buyers),
        },
        buyers_fused: Compared {
            btyd: scored(btyd_fused, &y_buyers),
            classifier: scored(classify(&models.fused, &buyers), &y_buyers),
        },
        holders_alone: scored(classify(&models.alone, &holders), &y_holders),
        holders_fused: scored(classify(&models.fused, &holders), &y_holders),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::Order;

    #[test]
    fn an_order_after_the_cutoff_changes_no_summary() {
        let day = |d: i64| d * DAY_US;
        let o = |customer, platform, d, amount| Order {
            customer,
            platform,
            at: day(d),
            amount,
        };
        let mut orders = vec![o(1, 0, 10, 1.0), o(1, 1, 40, 3.0), o(2, 0, 20, 1.0)];
        let before = rfm_at(&orders, day(100), |_| true);
        orders.push(o(1, 0, 150, 1.0));
        orders.push(o(3, 1, 120, 1.0));
        assert_eq!(rfm_at(&orders, day(100), |_| true), before);
        assert_eq!(before[&1].frequency, 1.0);
        assert_eq!(before[&1].monetary, 3.0);
        assert!((before[&1].recency - 30.0 / 7.0).abs() < 1e-9);
    }
}
