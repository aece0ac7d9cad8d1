//! End-to-end: the sentiment stage on a generated project (run by `shopfuse run`): every
//! review classified, scored by `eval sentiment` against the generator's truth, a text
//! classified clause by clause, one product's report, a forced re-run writing the same rows;
//! and `eval sentiment --data` on a public-set layout, with a bad file named by row.

mod common;
use common::{generate, json, shopfuse, sql};

#[test]
fn reviews_are_classified_with_aspects_and_scored_against_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    generate(project, 7, 40, 400, 4000);
    shopfuse(project).arg("run").assert().success();

    let reviews = sql(
        project,
        "select count(*) as n from clean_reviews where text is not null",
    );
    let classified = sql(project, "select count(*) as n from review_sentiment");
    assert_eq!(reviews[0]["n"], classified[0]["n"]);
    assert!(classified[0]["n"].as_i64().unwrap() > 100, "{classified:?}");

    let e = json(shopfuse(project).args(["eval", "sentiment"]));
    // Truth rows of malformed or duplicate review rows are not in the tables.
    let matched = e["matched"].as_f64().unwrap();
    assert!(matched >= 0.95 * e["reviews"].as_f64().unwrap(), "{e}");
    assert!(e["accuracy"].as_f64().unwrap() > 0.95, "{e}");
    assert!(e["macro_f1"].as_f64().unwrap() > 0.9, "{e}");
    if e["mismatch"]["truth"].as_u64().unwrap() > 0 {
        assert!(e["mismatch"]["recall"].as_f64().unwrap() > 0.5, "{e}");
        assert!(e["mismatch"]["precision"].as_f64().unwrap() > 0.8, "{e}");
    }
    // The text model reads what the stars miss (angry five-star reviews).
    assert!(
        e["accuracy"].as_f64().unwrap() > e["stars_accuracy"].as_f64().unwrap(),
        "{e}"
    );
    assert!(e["aspects"]["recall"].as_f64().unwrap() > 0.7, "{e}");

    let a = json(shopfuse(project).args(["sentiment", "物流很快，但是质量太差了，用两天就坏了"]));
    let clauses = a["clauses"].as_array().unwrap();
    let quality = clauses
        .iter()
        .find(|c| c["aspects"].to_string().contains("quality"))
        .unwrap_or_else(|| panic!("no quality clause: {a}"));
    assert_eq!(quality["polarity"], "negative", "{a}");
    let logistics = clauses
        .iter()
        .find(|c| c["aspects"].to_string().contains("logistics"))
        .unwrap_or_else(|| panic!("no logistics clause: {a}"));
    assert_eq!(logistics["polarity"], "positive", "{a}");
    let en = json(shopfuse(project).args(["sentiment", "Works great, fast shipping. Love it!"]));
    assert_eq!(en["prediction"]["polarity"], "positive", "{en}");

    let top = &sql(
        project,
        "select golden_id from review_sentiment where golden_id is not null group by golden_id order by count(*) desc limit 1",
    )[0]["golden_id"];
    let product = json(shopfuse(project).args(["sentiment", "--product", top.as_str().unwrap()]));
    assert!(
        product["overall"]["total"].as_i64().unwrap() > 0,
        "{product}"
    );
    assert!(
        !product["aspects"].as_object().unwrap().is_empty(),
        "{product}"
    );
    shopfuse(project)
        .args(["sentiment", "--product", "GPnope"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("GPnope has no reviews"));

    // Re-running the stage on the same data writes the same rows.
    let before = sql(
        project,
        "select review_id, polarity, p_positive from review_sentiment order by platform, review_id",
    );
    shopfuse(project)
        .args(["run", "--only", "sentiment", "--force"])
        .assert()
        .success();
    let after = sql(
        project,
        "select review_id, polarity, p_positive from review_sentiment order by platform, review_id",
    );
    assert_eq!(before, after);
}

#[test]
fn a_public_set_is_cross_validated_and_a_bad_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cells");
    std::fs::create_dir(&data).unwrap();
    let mut text = String::new();
    let good = [
        "Great phone",
        "love it",
        "works perfectly",
        "excellent battery",
    ];
    let bad = [
        "terrible",
        "broke after a day",
        "waste of money",
        "do not buy",
    ];
    for i in 0..60 {
        text.push_str(&format!("{} {i}\t1\n", good[i % 4]));
        text.push_str(&format!("{} {i}\t0\n", bad[i % 4]));
    }
    std::fs::write(data.join("amazon_cells_labelled.txt"), &text).unwrap();
    let e = json(shopfuse(dir.path()).args([
        "eval",
        "sentiment",
        "--data",
        data.to_str().unwrap(),
        "--folds",
        "3",
        "--no-encoder",
    ]));
    let nbsvm = &e["parts"][0];
    assert_eq!(nbsvm["model"], "nbsvm", "{e}");
    assert!(nbsvm["test"].as_f64().unwrap() > 0.95, "{e}");

    text.push_str("no label here\n");
    std::fs::write(data.join("amazon_cells_labelled.txt"), &text).unwrap();
    shopfuse(dir.path())
        .args([
            "eval",
            "sentiment",
            "--data",
            data.to_str().unwrap(),
            "--no-encoder",
        ])
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "amazon_cells_labelled.txt, row 121",
        ));
}
