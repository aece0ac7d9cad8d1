//! The stage's tables, `propensity` (one row per unified customer) and
//! `propensity_platforms` (one row per customer and platform they have an account on), and
//! the run that fills them: read the fused activity, fit every model as of the latest
//! activity, score, write.

use serde::Serialize;
use shopfuse_core::config::PropensityConfig;
use shopfuse_core::value::rows_to_batch;
use shopfuse_core::{Transaction, Value};

use crate::activity::{Activity, Histories};
use crate::classifier::{Classifier, Driver};
use crate::model::{training_settings, CustomerScore, PlatformScore, PropensityModel};
use crate::PropensityError;

shopfuse_core::table! {
    /// One row per unified customer: how likely they are to buy, to lapse, and what they are
    /// worth over the next months, as of the latest activity in the data.
    pub mod propensity("propensity") {
        /// Unified customer id (as in customers and customer_accounts).
        customer_id: Text;
        /// The cut-off the scores are as of: the latest order or event in the data.
        as_of: Timestamp;
        /// P(a purchase on any platform in the next 30 days): gradient-boosted trees on the
        /// fused customer's features, isotonic-calibrated. Null for a customer with no
        /// order or event yet.
        p_buy_30d: Float null;
        /// The same probability from BG/NBD (null for a customer who never ordered).
        p_buy_30d_btyd: Float null;
        /// BG/NBD's probability that the customer is still active.
        p_alive: Float null;
        /// P(no purchase on any platform in the next 90 days), for customers who have bought:
        /// the churn classifier, calibrated.
        p_churn_90d: Float null;
        /// Expected purchase days in the next 90 days (BG/NBD).
        expected_purchases_90d: Float null;
        /// Expected spend in the base currency over the next 90 days (BG/NBD purchases times
        /// the Gamma-Gamma value per purchase).
        expected_spend_90d: Float null;
        /// What moves p_buy_30d most: `feature[scope]=value (±log-odds)`, strongest first,
        /// separated by "; " (the trees' path contributions).
        drivers: Text null;
    }
}

shopfuse_core::table! {
    /// One row per unified customer and platform they have an account on: the probability
    /// of a purchase on that platform, from the fused customer and from that platform's view.
    pub mod propensity_platforms("propensity_platforms") {
        /// Unified customer id.
        customer_id: Text;
        /// The platform.
        platform: Text;
        /// P(a purchase on this platform in the next 30 days), from every platform's activity.
        p_buy_30d: Float;
        /// The same from this platform's activity alone (what the platform itself can know);
        /// the gap to p_buy_30d is what fusion adds.
        p_buy_30d_alone: Float null;
    }
}

/// What the stage reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PropensitySummary {
    pub as_of: Option<String>,
    pub customers: usize,
    pub customers_scored: usize,
    pub platform_rows: usize,
    /// Training rows (and positives) of the 30-day purchase classifier and the churn one.
    pub buy_training_rows: usize,
    pub buy_training_positives: usize,
    pub churn_training_rows: usize,
    pub churn_training_positives: usize,
    /// Mean p_buy_30d over the customers scored: the purchase rate the model expects.
    pub mean_p_buy_30d: Option<f64>,
    /// BG/NBD's parameters (r, α, a, b), when fitted.
    pub bg_nbd: Option<crate::BgNbd>,
    pub seconds: f64,
}

/// Fits and scores as of the latest activity and replaces both tables.
pub fn run_propensity(
    tx: &mut Transaction<'_>,
    config: &PropensityConfig,
) -> Result<PropensitySummary, PropensityError> {
    let started = std::time::Instant::now();
    let activity = {
        let read = |t: &str, cols: &[&str]| tx.read_columns(t, cols);
        Activity::read(&read)?
    };
    let mut summary = PropensitySummary {
        customers: activity.customer_ids.len(),
        ..Default::default()
    };
    let (customers, platforms) = match activity.last_activity() {
        Some(last) => {
            // Just after the latest event, so that it counts as before the cut-off.
            let as_of = last + 1;
            let histories = Histories::new(&activity);
            let settings = training_settings(config, true);
            let model = PropensityModel::fit(&activity, &histories, as_of, &settings)?;
            let (customers, platforms) = model.score(&histories, config.drivers, true);
            describe(&mut summary, &model, &customers);
            (customers, platforms)
        }
        None => (Vec::new(), Vec::new()),
    };
    summary.customers_scored = customers.len();
    summary.platform_rows = platforms.len();
    write_customers(tx, &activity, &customers)?;
    write_platforms(tx, &activity, &platforms)?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn describe(summary: &mut PropensitySummary, model: &PropensityModel, customers: &[CustomerScore]) {
    let trained = |c: &Option<Classifier>| {
        c.as_ref()
            .map_or((0, 0), |c| (c.training_rows, c.training_positives))
    };
    (summary.buy_training_rows, summary.buy_training_positives) = trained(&model.buy);
    (
        summary.churn_training_rows,
        summary.churn_training_positives,
    ) = trained(&model.churn);
    summary.as_of = timestamp_text(model.cutoff);
    summary.bg_nbd = model.bg_nbd;
    let scored: Vec<f64> = customers.iter().filter_map(|c| c.p_buy_30d).collect();
    summary.mean_p_buy_30d =
        (!scored.is_empty()).then(|| scored.iter().sum::<f64>() / scored.len() as f64);
}

pub(crate) fn timestamp_text(us: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// `feature=value (±contribution)`, strongest first.
pub fn drivers_text(drivers: &[Driver]) -> Option<String> {
    (!drivers.is_empty()).then(|| {
        drivers
            .iter()
            .map(|d| format!("{}={} ({:+.2})", d.feature, short(d.value), d.contribution))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn short(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn rounded(v: Option<f64>) -> Value {
    v.filter(|v| v.is_finite())
        .map_or(Value::Null, |v| Value::Float((v * 1e6).round() / 1e6))
}

fn write_customers(
    tx: &mut Transaction<'_>,
    activity: &Activity,
    scores: &[CustomerScore],
) -> Result<(), PropensityError> {
    let as_of = activity.last_activity().map_or(0, |t| t + 1);
    let mut by_customer: Vec<Option<&CustomerScore>> = vec![None; activity.customer_ids.len()];
    for s in scores {
        if let Some(slot) = by_customer.get_mut(s.customer as usize) {
            *slot = Some(s);
        }
    }
    let rows: Vec<Vec<Value>> = activity
        .customer_ids
        .iter()
        .zip(&by_customer)
        .map(|(id, s)| {
            let f = |get: fn(&CustomerScore) -> Option<f64>| rounded(s.and_then(get));
            vec![
                Value::Text(id.clone()),
                Value::Timestamp(as_of),
                f(|s| s.p_buy_30d),
                f(|s| s.p_buy_30d_btyd),
                f(|s| s.p_alive),
                f(|s| s.p_churn_90d),
                f(|s| s.expected_purchases_90d),
                f(|s| s.expected_spend_90d),
                s.and_then(|s| drivers_text(&s.drivers))
                    .map_or(Value::Null, Value::Text),
            ]
        })
        .collect();
    let schema = propensity::TABLE.schema();
    let batch = rows_to_batch(&schema, &rows)?;
    tx.replace(propensity::NAME, &schema, &[batch])?;
    Ok(())
}

fn write_platforms(
    tx: &mut Transaction<'_>,
    activity: &Activity,
    scores: &[PlatformScore],
) -> Result<(), PropensityError> {
    let rows: Vec<Vec<Value>> = scores
        .iter()
        .map(|s| {
            vec![
                Value::Text(activity.customer_ids[s.customer as usize].clone()),
                Value::Text(activity.platforms[s.platform as usize].clone()),
                rounded(Some(s.p_buy_30d)),
                rounded(s.p_buy_30d_alone),
            ]
        })
        .collect();
    let schema = propensity_platforms::TABLE.schema();
    let batch = rows_to_batch(&schema, &rows)?;
    tx.replace(propensity_platforms::NAME, &schema, &[batch])?;
    Ok(())
}
