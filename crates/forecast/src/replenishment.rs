//! Replenishment from the forecast: for each golden product, the demand over its lead time
//! and the uncertainty around it, and from them the safety stock, the reorder point, the
//! order-up-to level, the quantity to order now against the stock summed over its platforms,
//! and the chance of selling out in the next days.
//!
//! Vocabulary (a periodic-review, order-up-to policy):
//! - **lead time** `L`: days from ordering to sellable stock; **review period** `R`: days
//!   between two orders, so an order must last `L + R` days.
//! - **service level**: the chance that demand over the lead time is covered; its normal
//!   quantile `z` sets the **safety stock** `z·σ(L)`.
//! - **reorder point**: `μ(L) + z·σ(L)` — at or below it, order; **order-up-to level**:
//!   `μ(L+R) + z·σ(L+R)` — order what brings the stock up to it.
//!
//! `μ(n)` sums the reconciled daily forecast over the first `n` days. The daily spread is
//! read off the band's upper half, `σ_h = (P90_h − P50_h) / z₀.₉`: the lower half is cut at
//! zero for slow sellers, and it is running out, not overstock, that the safety stock is for.
//! Days are taken as independent, `σ(n) = √Σσ_h²`; a forecast biased for weeks on end is
//! under-covered by this, which the backtest's bias would show.

use distrs::Normal;
use shopfuse_core::config::{ReplenishmentConfig, ReplenishmentRule};

/// What one product is planned with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub lead_time_days: usize,
    pub review_days: usize,
    pub service_level: f64,
    pub risk_days: usize,
}

/// One product's plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub demand_lead_time: f64,
    pub sd_lead_time: f64,
    pub safety_stock: f64,
    pub reorder_point: f64,
    pub order_up_to: f64,
    /// Whole units to order now (0 above the reorder point); None when the stock is unknown.
    pub order_quantity: Option<i64>,
    /// Days the stock lasts at the forecast's mean rate; None without stock or demand.
    pub days_of_cover: Option<f64>,
    /// Chance that demand over `risk_days` exceeds the stock; None without stock.
    pub stockout_risk: Option<f64>,
}

/// The 90th percentile of the standard normal.
fn z90() -> f64 {
    Normal::ppf(0.9, 0.0, 1.0)
}

/// The daily standard deviation a P50/P90 pair implies.
pub fn daily_sd(p50: f64, p90: f64) -> f64 {
    (p90 - p50).max(0.0) / z90()
}

/// Plans one product from its daily expected demand and standard deviations.
pub fn plan(demand: &[f64], sd: &[f64], stock: Option<f64>, policy: &Policy) -> Plan {
    let over = |n: usize| {
        let n = n.min(demand.len());
        let mean: f64 = demand[..n].iter().sum();
        let sd = sd[..n].iter().map(|s| s * s).sum::<f64>().sqrt();
        (mean, sd)
    };
    let z = Normal::ppf(policy.service_level, 0.0, 1.0);
    let (demand_lead_time, sd_lead_time) = over(policy.lead_time_days);
    let (demand_cycle, sd_cycle) = over(policy.lead_time_days + policy.review_days);
    let safety_stock = z * sd_lead_time;
    let reorder_point = demand_lead_time + safety_stock;
    let order_up_to = demand_cycle + z * sd_cycle;
    let daily_rate = demand.iter().sum::<f64>() / demand.len().max(1) as f64;
    let (risk_mean, risk_sd) = over(policy.risk_days);
    Plan {
        demand_lead_time,
        sd_lead_time,
        safety_stock,
        reorder_point,
        order_up_to,
        order_quantity: stock.map(|s| {
            if s <= reorder_point {
                (order_up_to - s).ceil().max(0.0) as i64
            } else {
                0
            }
        }),
        days_of_cover: stock.filter(|_| daily_rate > 0.0).map(|s| s / daily_rate),
        stockout_risk: stock.map(|s| exceed_chance(s, risk_mean, risk_sd)),
    }
}

/// P(demand > stock) for normal demand, with the continuity correction: units are whole, so
/// selling out is demand ≥ stock + 1, and a product expected to sell 0.01 units is not given
/// a 50 % risk with none in stock. A certain demand when the spread is zero.
fn exceed_chance(stock: f64, mean: f64, sd: f64) -> f64 {
    let edge = stock + 0.5;
    if sd <= 0.0 {
        return if mean > edge { 1.0 } else { 0.0 };
    }
    1.0 - Normal::cdf(edge, mean, sd)
}

/// The policy for a product: the first rule naming its id or category over the defaults,
/// and which rule that was (`default`, `golden_id GP…`, `category 手机`).
pub fn policy_for(
    config: &ReplenishmentConfig,
    golden_id: &str,
    category: Option<&str>,
) -> (Policy, String) {
    let base = Policy {
        lead_time_days: config.lead_time_days,
        review_days: config.review_days,
        service_level: config.service_level,
        risk_days: config.risk_days,
    };
    let matches = |r: &&ReplenishmentRule| {
        r.golden_id.as_deref() == Some(golden_id)
            || (r.category.is_some() && r.category.as_deref() == category)
    };
    let Some(rule) = config.rules.iter().find(matches) else {
        return (base, "default".into());
    };
    let name = match (&rule.golden_id, &rule.category) {
        (Some(id), _) => format!("golden_id {id}"),
        (_, Some(c)) => format!("category {c}"),
        _ => "default".into(),
    };
    (
        Policy {
            lead_time_days: rule.lead_time_days.unwrap_or(base.lead_time_days),
            review_days: rule.review_days.unwrap_or(base.review_days),
            service_level: rule.service_level.unwrap_or(base.service_level),
            risk_days: base.risk_days,
        },
        name,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-3
    }

    /// 10 units a day, σ 3 a day; L = 4, R = 5, 95 %: by hand, μ(4) = 40, σ(4) = 6,
    /// z = 1.6449, safety stock 9.869, reorder point 49.869; μ(9) = 90, σ(9) = 9,
    /// order-up-to 104.804; with 30 in stock, order ⌈74.804⌉ = 75; the chance that 4 days
    /// sell 31 or more is Φ((40 − 30.5)/6) = 0.9433; cover 3 days.
    #[test]
    fn a_hand_computed_plan() {
        let p50 = 10.0;
        let p90 = 10.0 + 3.0 * z90();
        assert!(close(daily_sd(p50, p90), 3.0));
        let policy = Policy {
            lead_time_days: 4,
            review_days: 5,
            service_level: 0.95,
            risk_days: 4,
        };
        let plan = plan(&[10.0; 14], &[3.0; 14], Some(30.0), &policy);
        assert!(close(plan.demand_lead_time, 40.0));
        assert!(close(plan.sd_lead_time, 6.0));
        assert!(close(plan.safety_stock, 9.869), "{plan:?}");
        assert!(close(plan.reorder_point, 49.869));
        assert!(close(plan.order_up_to, 104.804), "{plan:?}");
        assert_eq!(plan.order_quantity, Some(75));
        assert!(close(plan.stockout_risk.unwrap(), 0.9433), "{plan:?}");
        assert!(close(plan.days_of_cover.unwrap(), 3.0));
    }

    #[test]
    fn above_the_reorder_point_nothing_is_ordered_and_unknown_stock_gives_no_quantity() {
        let policy = Policy {
            lead_time_days: 4,
            review_days: 5,
            service_level: 0.95,
            risk_days: 4,
        };
        let full = plan(&[10.0; 14], &[3.0; 14], Some(500.0), &policy);
        assert_eq!(full.order_quantity, Some(0));
        assert!(full.stockout_risk.unwrap() < 1e-9);
        let unknown = plan(&[10.0; 14], &[3.0; 14], None, &policy);
        assert_eq!(unknown.order_quantity, None);
        assert_eq!(unknown.stockout_risk, None);
        // A trickle with nothing in stock: a small risk, not a coin toss.
        let trickle = plan(&[0.002; 14], &[0.04; 14], Some(0.0), &policy);
        assert!(trickle.stockout_risk.unwrap() < 1e-6, "{trickle:?}");
        let idle = plan(&[0.0; 14], &[0.0; 14], Some(0.0), &policy);
        assert_eq!(idle.order_quantity, Some(0));
        assert_eq!(idle.stockout_risk, Some(0.0));
        assert_eq!(idle.days_of_cover, None);
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let config = ReplenishmentConfig {
            rules: vec![
                ReplenishmentRule {
                    golden_id: Some("GP1".into()),
                    category: None,
                    lead_time_days: Some(3),
                    review_days: None,
                    service_level: None,
                },
                ReplenishmentRule {
                    golden_id: None,
                    category: Some("手机".into()),
                    lead_time_days: Some(14),
                    review_days: None,
                    service_level: Some(0.99),
                },
            ],
            ..ReplenishmentConfig::default()
        };
        let (p, rule) = policy_for(&config, "GP1", Some("手机"));
        assert_eq!(
            (p.lead_time_days, p.service_level, rule.as_str()),
            (3, 0.95, "golden_id GP1")
        );
        let (p, rule) = policy_for(&config, "GP2", Some("手机"));
        assert_eq!(
            (p.lead_time_days, p.service_level, rule.as_str()),
            (14, 0.99, "category 手机")
        );
        let (p, rule) = policy_for(&config, "GP2", None);
        assert_eq!((p.lead_time_days, rule.as_str()), (7, "default"));
    }
}
