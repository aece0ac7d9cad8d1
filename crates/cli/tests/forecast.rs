//! End-to-end: the forecast stage on a generated project (run by `shopfuse run`), shown by
//! `shopfuse forecast`, scored by `eval forecast`; its replenishment plans and price alerts,
//! the alerts scored against the generator's planted moves; a bad promotion window is
//! refused.

use std::path::Path;

mod common;
use common::{generate, json, shopfuse, sql};

#[test]
fn forecasts_are_coherent_banded_and_scored() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    generate(project, 8, 60, 800, 6000);
    shopfuse(project).arg("run").assert().success();

    // Every daily series has 28 days and every weekly one 4 weeks; at both frequencies the
    // product × platform forecasts sum to the total's each step; bands are ordered and
    // non-negative; each series has exactly one chosen model.
    let checks = &sql(
        project,
        "with bottom as (select frequency, day, sum(forecast) as units from forecasts where level = 'product_platform' group by frequency, day), \
              total as (select frequency, day, forecast as units from forecasts where level = 'total') \
         select (select count(distinct day) from forecasts where frequency = 'daily') as days, \
                (select count(distinct day) from forecasts where frequency = 'weekly') as weeks, \
                (select count(distinct frequency) from bottom join total using (frequency, day)) as frequencies, \
                (select count(*) from bottom join total using (frequency, day) where abs(bottom.units - total.units) > 0.01) as incoherent, \
                (select count(*) from forecasts where p10 > p50 or p50 > p90 or p10 < 0) as disordered, \
                (select count(*) from (select series, count(*) as n from forecasts where frequency = 'daily' group by series) where n <> 28) as short_series, \
                (select count(*) from (select series, count(*) as n from forecasts where frequency = 'weekly' group by series) where n <> 4) as short_weekly, \
                (select count(*) from forecasts where frequency = 'weekly' and extract(dow from cast(day as date)) <> 1) as not_monday, \
                (select count(*) from (select frequency, level, series, count(*) as n from forecast_backtests where chosen group by frequency, level, series) where n <> 1) as unchosen, \
                (select count(distinct level) from forecasts) as levels",
    )[0];
    assert_eq!(checks["days"], 28, "{checks}");
    assert_eq!(checks["weeks"], 4, "{checks}");
    assert_eq!(checks["frequencies"], 2, "{checks}");
    assert_eq!(checks["short_weekly"], 0, "{checks}");
    assert_eq!(checks["not_monday"], 0, "{checks}");
    assert_eq!(checks["incoherent"], 0, "{checks}");
    assert_eq!(checks["disordered"], 0, "{checks}");
    assert_eq!(checks["short_series"], 0, "{checks}");
    assert_eq!(checks["unchosen"], 0, "{checks}");
    assert_eq!(checks["levels"], 5, "{checks}");

    let total = json(shopfuse(project).args(["forecast", "--horizon", "7"]));
    let days = total.as_array().unwrap();
    assert_eq!(days.len(), 7);
    assert!(
        days.iter().all(|d| d["forecast"].as_f64().unwrap() > 0.0),
        "{total}"
    );
    let weekly = json(shopfuse(project).args(["forecast", "--weekly"]));
    assert_eq!(weekly.as_array().unwrap().len(), 4, "{weekly}");
    let missing = shopfuse(project)
        .args(["forecast", "--product", "GP-none"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("GP-none"));

    // The rolling-origin evaluation scores every level; the chosen-and-reconciled forecast
    // of the total beats the seasonal naive on it.
    let eval = json(shopfuse(project).args(["eval", "forecast", "--windows", "2"]));
    let scores = eval["project"]["scores"].as_array().unwrap();
    let score = |level: &str, method: &str| {
        scores
            .iter()
            .find(|s| s["level"] == level && s["method"] == method)
            .unwrap_or_else(|| panic!("no {level}/{method} in {eval}"))["mase"]
            .as_f64()
            .unwrap()
    };
    assert!(
        score("total", "selection, reconciled") < score("total", "seasonal_naive"),
        "{eval}"
    );
    assert!(score("product_platform", "croston_sba").is_finite());

    replenishment_follows_its_policy(project);
    planted_price_moves_are_found(project);
}

/// One plan per product-level forecast, every plan consistent with the policy.
fn replenishment_follows_its_policy(project: &Path) {
    let checks = &sql(
        project,
        "select (select count(*) from replenishment) as plans, \
                (select count(distinct golden_id) from forecasts where level = 'product') as products, \
                (select count(*) from replenishment where reorder_point < demand_lead_time or order_up_to < reorder_point or safety_stock < 0) as inconsistent, \
                (select count(*) from replenishment where (stock < reorder_point and order_quantity = 0) or (stock > reorder_point and order_quantity > 0)) as wrong_order, \
                (select count(*) from replenishment where stock is not null and order_quantity > 0 and stock + order_quantity < order_up_to) as short_order, \
                (select count(*) from replenishment where stockout_risk < 0 or stockout_risk > 1) as bad_risk, \
                (select count(*) from replenishment where order_quantity > 0) as to_order",
    )[0];
    assert_eq!(checks["plans"], checks["products"], "{checks}");
    for k in ["inconsistent", "wrong_order", "short_order", "bad_risk"] {
        assert_eq!(checks[k], 0, "{k}: {checks}");
    }
    assert!(checks["to_order"].as_i64().unwrap() > 0, "{checks}");
    let shown = json(shopfuse(project).args(["replenish"]));
    assert_eq!(
        shown.as_array().unwrap().len() as i64,
        checks["to_order"].as_i64().unwrap().min(20)
    );
    let missing = shopfuse(project)
        .args(["replenish", "--product", "GP-none"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("GP-none"));
}

/// The planted undercuts and sharp moves raise alerts of their kind, and most alerts are
/// explained by a planted move; the cheapest platform of a week has no gap.
fn planted_price_moves_are_found(project: &Path) {
    let eval = json(shopfuse(project).args(["eval", "prices"]));
    for kind in eval["kinds"].as_array().unwrap() {
        assert!(kind["planted"].as_i64().unwrap() >= 2, "{eval}");
        assert!(kind["recall"].as_f64().unwrap() >= 0.6, "{eval}");
    }
    assert!(eval["precision"].as_f64().unwrap() >= 0.6, "{eval}");
    let checks = &sql(
        project,
        "select (select count(*) from price_history where gap_to_cheapest < 0) as negative, \
                (select count(*) from price_history where platform = cheapest_platform and gap_to_cheapest <> 0) as cheapest_gap, \
                (select min(golden_id) from price_alerts) as alerted",
    )[0];
    assert_eq!(checks["negative"], 0, "{checks}");
    assert_eq!(checks["cheapest_gap"], 0, "{checks}");
    let product = checks["alerted"].as_str().unwrap();
    let shown = json(shopfuse(project).args(["prices", "--product", product]));
    assert!(!shown["weeks"].as_array().unwrap().is_empty(), "{shown}");
    assert!(!shown["alerts"].as_array().unwrap().is_empty(), "{shown}");
}

#[test]
fn a_promotion_window_that_does_not_parse_names_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    generate(project, 9, 20, 100, 500);
    let config = project.join("shopfuse.toml");
    let valid = std::fs::read_to_string(&config).unwrap();
    let mut text = valid.clone();
    text.push_str("\n[forecast]\n[[forecast.promotions]]\nname = \"618\"\nfrom = \"06-01\"\nto = \"2025-06-18\"\n");
    std::fs::write(&config, text).unwrap();
    let out = shopfuse(project).arg("run").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[[forecast.promotions]] #1") && err.contains("MM-DD"),
        "{err}"
    );
    // Refused before any stage ran: with the file put back, nothing was committed.
    std::fs::write(&config, valid).unwrap();
    assert_no_half_commit(project);
}

/// Nothing is committed: no table has rows.
fn assert_no_half_commit(project: &Path) {
    let tables = json(shopfuse(project).arg("tables"));
    assert!(
        tables
            .get("forecasts")
            .is_none_or(|v| v.is_null() || v == 0),
        "{tables}"
    );
    assert!(
        tables
            .get("clean_orders")
            .is_none_or(|v| v.is_null() || v == 0),
        "{tables}"
    );
}
