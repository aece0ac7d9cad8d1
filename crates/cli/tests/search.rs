//! End-to-end: the search stage on a generated project (run by `shopfuse run`), queried by
//! `shopfuse search` in both languages with attribute filters, scored by `eval search`; the
//! assistant answering product, policy and order questions with citations, scored by
//! `eval ask`; a forced re-run leaves the index as it is.

mod common;
use common::{generate, json, shopfuse, sql};

#[test]
fn search_and_the_assistant_answer_from_the_fused_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    generate(project, 11, 40, 300, 2500);
    shopfuse(project).arg("run").assert().success();

    // An attribute query: every hit has the colour and capacity it names.
    let variant = &sql(
        project,
        "select title, color, capacity from golden_products where color = 'black' and capacity is not null order by golden_id limit 1",
    )[0];
    let capacity = variant["capacity"].as_str().unwrap().replace("GB", "G");
    let found =
        json(shopfuse(project).args(["search", &format!("黑色 {capacity}"), "--limit", "20"]));
    let hits = found["hits"].as_array().unwrap();
    assert!(!hits.is_empty(), "{found}");
    assert!(
        hits.iter()
            .all(|h| h["color"] == "black" && h["capacity"] == variant["capacity"]),
        "{found}"
    );
    assert_eq!(found["understood"]["color"], "black");

    // The ranking metrics on the generator's query set, per mode.
    let e = json(shopfuse(project).args(["eval", "search"]));
    let hybrid = e["modes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mode"] == "hybrid")
        .unwrap();
    assert!(
        hybrid["overall"]["recall_at_10"].as_f64().unwrap() > 0.9,
        "{e}"
    );
    assert_eq!(
        hybrid["by_kind"]["attribute"]["wrong_variant_first"], 0,
        "{e}"
    );

    // A policy question is answered from policies/ with its section cited; an order question
    // needs the customer, and with one cites the order row.
    let policy =
        json(shopfuse(project).args(["ask", "How long until my refund arrives on my card?"]));
    assert_eq!(policy["intent"], "returns_policy", "{policy}");
    assert!(policy["citations"][0]["source"]
        .as_str()
        .unwrap()
        .starts_with("policies/"));
    let out = shopfuse(project)
        .args(["ask", "我的订单到哪了？"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "no customer, no answer");
    let customer = sql(
        project,
        "select customer_id from customers where orders > 0 limit 1",
    )[0]["customer_id"]
        .as_str()
        .unwrap()
        .to_string();
    let order = json(shopfuse(project).args(["ask", "我的订单到哪了？", "--customer", &customer]));
    assert_eq!(order["language"], "zh");
    assert_eq!(order["citations"][0]["source"], "clean_orders", "{order}");
    let audit = std::fs::read_to_string(project.join(".shopfuse").join("audit.log")).unwrap();
    assert!(audit.contains("shopfuse ask") && audit.contains(&customer));

    let asked = json(shopfuse(project).args(["eval", "ask"]));
    assert!(asked["intent_accuracy"].as_f64().unwrap() > 0.8, "{asked}");

    // A forced re-run of the stage finds the index on disk already in sync with the table.
    let rerun = json(shopfuse(project).args(["run", "--only", "search", "--force"]));
    assert_eq!(rerun["search"]["unchanged"], true, "{rerun}");
}
