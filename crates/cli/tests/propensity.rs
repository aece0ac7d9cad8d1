//! End-to-end: the propensity stage on a generated project (scored by `shopfuse run`),
//! evaluated by `eval propensity`, shown by `propensity --customer`, drawn as audiences.

use std::path::Path;

use serde_json::Value;

mod common;
use common::{generate, json, shopfuse, sql};

fn generated_project(dir: &Path) {
    generate(dir, 5, 120, 1500, 12000);
    shopfuse(dir).arg("run").assert().success();
}

fn audit_lines(project: &Path) -> Vec<Value> {
    std::fs::read_to_string(project.join(".shopfuse/audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn propensity_scores_every_customer_and_audiences_follow_the_condition() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    generated_project(project);

    // One row per unified customer; probabilities are probabilities; the scored ones have
    // drivers, and the per-platform rows belong to customers with an account there.
    let counts = &sql(
        project,
        "select (select count(*) from propensity) as scored, \
                (select count(distinct customer_id) from customer_accounts) as customers, \
                (select count(*) from propensity where p_buy_30d is not null) as with_p, \
                (select count(*) from propensity where p_buy_30d < 0 or p_buy_30d > 1 \
                   or p_churn_90d < 0 or p_churn_90d > 1 or p_alive < 0 or p_alive > 1) as out_of_range, \
                (select count(*) from propensity where p_buy_30d is not null and drivers is null) as unexplained, \
                (select count(*) from propensity_platforms pp where not exists (select 1 from customer_accounts a \
                   where a.customer_id = pp.customer_id and a.platform = pp.platform)) as strangers",
    )[0];
    assert_eq!(counts["scored"], counts["customers"], "{counts}");
    assert!(counts["with_p"].as_u64().unwrap() > 1000, "{counts}");
    assert_eq!(counts["out_of_range"], 0, "{counts}");
    assert_eq!(counts["unexplained"], 0, "{counts}");
    assert_eq!(counts["strangers"], 0, "{counts}");

    // The calibrated 30-day probability orders the customers who do buy above those who do
    // not, on a temporal split; the fused view beats each platform's own on its holders.
    let eval = json(shopfuse(project).args(["eval", "propensity"]));
    let auc = eval["project"]["buy_30d"]["classifier"]["roc_auc"]
        .as_f64()
        .unwrap();
    assert!(auc > 0.6, "{eval}");
    let lifts = eval["project"]["per_platform"].as_array().unwrap();
    assert!(lifts.len() >= 3, "{eval}");
    let gain: f64 = lifts
        .iter()
        .map(|p| {
            p["holders_fused"]["roc_auc"].as_f64().unwrap()
                - p["holders_alone"]["roc_auc"].as_f64().unwrap()
        })
        .sum::<f64>()
        / lifts.len() as f64;
    assert!(gain > 0.02, "fusion adds {gain:.3} ROC-AUC: {eval}");

    // One customer's view is audited.
    let top = &sql(
        project,
        "select customer_id from propensity where p_buy_30d is not null order by p_buy_30d desc, customer_id limit 1",
    )[0]["customer_id"];
    let customer = top.as_str().unwrap();
    let view = json(shopfuse(project).args(["propensity", "--customer", customer]));
    assert!(view["p_buy_30d"].as_f64().unwrap() > 0.0, "{view}");
    assert!(!view["drivers"].as_array().unwrap().is_empty(), "{view}");
    assert!(audit_lines(project)
        .iter()
        .any(|l| l["route"] == "shopfuse propensity" && l["customer_id"] == customer));
    shopfuse(project)
        .args(["propensity", "--customer", "CU-nobody"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("no customer"));

    // An audience on JD: exactly the customers the same condition selects in SQL, their JD
    // accounts, pseudonymous unless the platform's ids are asked for.
    let condition = "p_buy_30d > 0.3 and orders >= 2";
    let expected = sql(
        project,
        &format!(
            "select count(*) as n from customer_accounts a join propensity p using (customer_id) \
             join customers c using (customer_id) where a.platform = 'jd' and {}",
            condition.replace("orders", "c.orders")
        ),
    )[0]["n"]
        .as_u64()
        .unwrap();
    assert!(expected > 0);
    let out = project.join("jd-audience.csv");
    shopfuse(project)
        .args([
            "audience",
            "--where",
            condition,
            "--platform",
            "jd",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("platform,pseudonymous_id,customer_id,p_buy_30d,segment")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len() as u64, expected);
    assert!(rows.iter().all(|r| r.starts_with("jd,aud:")));
    let with_ids = json(shopfuse(project).args([
        "audience",
        "--where",
        condition,
        "--platform",
        "jd",
        "--ids",
        "platform",
    ]));
    let members = with_ids["members"].as_array().unwrap();
    assert_eq!(members.len() as u64, expected);
    let first = &members[0];
    let known = &sql(
        project,
        &format!(
            "select count(*) as n from customer_accounts where platform = 'jd' and account_id = '{}' and customer_id = '{}'",
            first["account_id"].as_str().unwrap(),
            first["customer_id"].as_str().unwrap()
        ),
    )[0]["n"];
    assert_eq!(known, 1, "{first}");
    assert!(audit_lines(project)
        .iter()
        .any(|l| l["route"] == "shopfuse audience"
            && l["detail"].as_str().unwrap().contains(condition)));

    // A viewer's count is noisy and carries no ids; a condition that is not one expression
    // is refused before anything runs.
    let noisy =
        json(shopfuse(project).args(["audience", "--where", condition, "--dp-epsilon", "1"]));
    assert!(noisy["customers"].as_f64().unwrap() >= 0.0 && noisy.get("members").is_none());
    shopfuse(project)
        .args([
            "audience",
            "--where",
            "p_buy_30d > 0.5) union select account_id from customer_accounts --",
        ])
        .assert()
        .failure()
        .stderr(predicates::str::contains("not a single SQL condition"));
    shopfuse(project)
        .args(["audience", "--where", "no_such_column > 1"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("no_such_column"));
}
