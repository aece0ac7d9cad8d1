//! End-to-end: the risk stage on a generated project (run by `shopfuse run`): every order
//! and review scored with reasons, the planted brushing rings found, `eval risk` against the
//! generator's truth with the fused model next to one platform at a time, one ring shown,
//! an unknown ring refused, and labels turning the combiner supervised (a bad label file
//! named by row).

mod common;
use common::{generate, json, shopfuse, sql};

#[test]
fn orders_reviews_and_rings_are_scored_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    generate(project, 7, 40, 400, 4000);
    shopfuse(project).arg("run").assert().success();

    let orders = sql(project, "select count(*) as n from clean_orders");
    let scored = sql(project, "select count(*) as n from risk_orders");
    assert_eq!(orders[0]["n"], scored[0]["n"]);
    let reviews = sql(project, "select count(*) as n from clean_reviews");
    let scored = sql(project, "select count(*) as n from risk_reviews");
    assert_eq!(reviews[0]["n"], scored[0]["n"]);

    let e = json(shopfuse(project).args(["eval", "risk"]));
    let fused = &e["scorers"][0]["patterns"];
    assert!(fused["brushing"]["pr_auc"].as_f64().unwrap() > 0.9, "{e}");
    assert!(fused["all"]["pr_auc"].as_f64().unwrap() > 0.6, "{e}");
    assert!(
        fused["account_takeover"]["roc_auc"].as_f64().unwrap() > 0.8,
        "{e}"
    );
    assert_eq!(
        e["scorers"][1]["scorer"],
        "shopfuse (one platform at a time)"
    );
    assert!(e["rings"]["recall"].as_f64().unwrap() > 0.8, "{e}");
    assert!(e["rings"]["precision"].as_f64().unwrap() > 0.5, "{e}");

    let top = json(shopfuse(project).args(["risk", "--top", "5"]));
    let first = &top["orders"][0];
    assert!(!first["reasons"].as_str().unwrap().is_empty(), "{top}");
    let ring = top["rings"][0]["ring_id"].as_str().unwrap().to_string();
    assert!(top["rings"][0]["evidence"]
        .as_str()
        .unwrap()
        .starts_with("ring of"));
    let view = json(shopfuse(project).args(["risk", "--ring", &ring]));
    assert!(view["accounts"].as_array().unwrap().len() >= 3, "{view}");
    assert!(view["orders"].as_array().unwrap().len() >= 3, "{view}");
    let unknown = shopfuse(project)
        .args(["risk", "--ring", "RGnope"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no ring \"RGnope\""));

    // Decisions on orders make the combiner supervised.
    let truth = std::fs::read_to_string(project.join("truth/fraud_labels.csv")).unwrap();
    std::fs::write(project.join("decisions.csv"), &truth).unwrap();
    let config = std::fs::read_to_string(project.join("shopfuse.toml")).unwrap();
    std::fs::write(
        project.join("shopfuse.toml"),
        format!("{config}\n[risk]\nlabels = \"decisions.csv\"\n"),
    )
    .unwrap();
    let run = json(shopfuse(project).arg("run"));
    assert_eq!(run["risk"]["method"], "supervised", "{}", run["risk"]);
    let p = sql(
        project,
        "select max(probability) as hi, min(probability) as lo from risk_orders",
    );
    assert!(p[0]["hi"].as_f64().unwrap() > 0.9, "{p:?}");
    assert!(p[0]["lo"].as_f64().unwrap() < 0.1, "{p:?}");

    std::fs::write(
        project.join("decisions.csv"),
        "platform,order_id,is_fraud\njd,1,maybe\n",
    )
    .unwrap();
    let bad = shopfuse(project).arg("run").output().unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("decisions.csv, row 2"), "{err}");
}
