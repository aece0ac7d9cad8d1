//! End-to-end: customer identity on a generated project, scored against the generator's
//! truth; the unified customer table and its reports; and no clear personal data anywhere
//! the project keeps or prints.

use std::path::{Path, PathBuf};

use aho_corasick::AhoCorasick;
use arrow::array::StringArray;
use assert_cmd::Command;
use serde_json::Value;
use shopfuse_core::config::FileFormat;
use shopfuse_core::{Project, TableStore};

mod common;
use common::{generate, json, shopfuse, sql};

fn generated_project(dir: &Path) -> String {
    generate(dir, 5, 40, 500, 2000);
    // Without --quiet, so the progress and summary lines are scanned too.
    let out = Command::cargo_bin("shopfuse")
        .unwrap()
        .arg("-C")
        .arg(dir)
        .arg("run")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn is_han(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

/// The generator's clear names, phones, e-mails and addresses, read back from the customer
/// and order exports: each column is recognised by what most of its cells look like.
fn clear_values(project: &Path) -> Vec<String> {
    let mut files = Vec::new();
    files_under(&project.join("data"), &mut files);
    let mut values = Vec::new();
    let mut kinds = [0usize; 4];
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if !(name.starts_with("customers") || name.starts_with("orders")) {
            continue;
        }
        let Some(format) = FileFormat::from_path(&file) else {
            continue;
        };
        let table =
            shopfuse_ingest::reader::read(&std::fs::read(&file).unwrap(), format, None).unwrap();
        for col in 0..table.header.len() {
            let cells: Vec<String> = table
                .records
                .iter()
                .filter_map(|r| r.cells.as_ref().ok()?.get(col).cloned().flatten())
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect();
            if cells.is_empty() {
                continue;
            }
            let share = |f: &dyn Fn(&str) -> bool| {
                cells.iter().filter(|c| f(c)).count() as f64 / cells.len() as f64
            };
            // A Chinese mobile number: 1[3-9] and nine more digits, after any +86 / 0086.
            let phone = |c: &str| {
                let digits: String = c.chars().filter(char::is_ascii_digit).collect();
                c.chars().all(|ch| "+0123456789 -".contains(ch))
                    && digits.len() >= 11
                    && digits[digits.len() - 11..].starts_with('1')
                    && !digits[digits.len() - 10..].starts_with(['0', '1', '2'])
            };
            let distinct: std::collections::BTreeSet<&String> = cells.iter().collect();
            let kind = if share(&|c| c.contains('@')) > 0.5 {
                Some(0)
            } else if share(&phone) > 0.5 {
                Some(1)
            } else if share(&|c| c.contains('号') || c.contains('號')) > 0.5 {
                Some(2)
            } else if name.starts_with("customers")
                && distinct.len() > 50
                && share(&|c| {
                    c.chars().filter(|ch| is_han(*ch)).count() >= 2 && c.chars().count() <= 8
                }) > 0.5
            {
                Some(3)
            } else {
                None
            };
            let Some(kind) = kind else { continue };
            kinds[kind] += cells.len();
            for c in cells {
                match kind {
                    1 => {
                        let digits: String = c.chars().filter(char::is_ascii_digit).collect();
                        if digits.len() >= 11 {
                            values.push(digits[digits.len() - 11..].to_string());
                        }
                    }
                    3 => values.push(c.chars().filter(|ch| is_han(*ch)).collect()),
                    _ => values.push(c.to_lowercase()),
                }
            }
        }
    }
    assert!(
        kinds.iter().all(|&n| n >= 200),
        "the test must see clear e-mails, phones, addresses and names: {kinds:?}"
    );
    values.retain(|v| v.chars().count() >= 2 && v != "收");
    values.sort();
    values.dedup();
    values
}

#[test]
fn customers_are_linked_across_platforms_and_no_clear_pii_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    let run_output = generated_project(project);

    // Linking against the truth, for both kinds of overlap.
    let eval = json(shopfuse(project).args(["eval", "identity"]));
    let f1 = |v: &Value| v["f1"].as_f64().unwrap();
    assert!(f1(&eval["pairwise"]) >= 0.95, "{eval}");
    assert!(f1(&eval["by_overlap"]["shared_key"]) >= 0.95, "{eval}");
    assert!(f1(&eval["by_overlap"]["fuzzy"]) >= 0.9, "{eval}");

    // One profile per customer; every account in exactly one customer; links explained.
    let count = |q: &str| sql(project, q)[0]["n"].as_i64().unwrap();
    let customers = count("select count(distinct customer_id) as n from customer_accounts");
    assert_eq!(count("select count(*) as n from customers"), customers);
    assert_eq!(
        count("select count(*) as n from customer_accounts"),
        count("select count(*) as n from clean_customers")
    );
    assert_eq!(
        count("select count(*) as n from identity_links where reason = ''"),
        0
    );
    assert!(
        count("select count(*) as n from customers where platforms like '%,%' and orders > 0") > 0
    );
    // A re-run gives the same customers.
    let before = sql(
        project,
        "select customer_id, platform, account_id from customer_accounts order by 2, 3",
    );
    shopfuse(project).arg("identity").assert().success();
    let after = sql(
        project,
        "select customer_id, platform, account_id from customer_accounts order by 2, 3",
    );
    assert_eq!(before, after);

    // Reports: exact figures add up to the table; a DP release keeps every public group.
    let exact = json(shopfuse(project).args(["report", "customers"]));
    let total: f64 = exact["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["customers"].as_f64().unwrap())
        .sum();
    assert_eq!(total as i64, customers);
    let noisy = json(shopfuse(project).args(["report", "customers", "--dp-epsilon", "0.5"]));
    assert_eq!(noisy["count_noise_scale"].as_f64(), Some(4.0));
    assert_eq!(noisy["groups"].as_array().unwrap().len(), 9);
    shopfuse(project)
        .args(["report", "customers", "--dp-epsilon", "-1"])
        .assert()
        .failure();

    // No clear name, phone, e-mail or address in any table, file or output of the project.
    let clear = clear_values(project);
    let finder = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(&clear)
        .unwrap();
    let mut leaks: Vec<String> = Vec::new();
    let store = TableStore::open(&Project::open(project).unwrap()).unwrap();
    let tables = store.table_names().unwrap();
    assert!(tables.iter().any(|t| t == "customers"), "{tables:?}");
    for table in &tables {
        let (schema, batches) = store.read_table(table).unwrap().unwrap();
        for batch in &batches {
            for (i, field) in schema.fields().iter().enumerate() {
                let Some(strings) = batch.column(i).as_any().downcast_ref::<StringArray>() else {
                    continue; // numbers, times, vectors
                };
                for text in strings.iter().flatten() {
                    if let Some(m) = finder.find(text) {
                        leaks.push(format!(
                            "{table}.{}: {:?}",
                            field.name(),
                            &clear[m.pattern()]
                        ));
                    }
                }
            }
        }
    }
    let mut files = Vec::new();
    files_under(project, &mut files);
    for file in files {
        let rel = file.strip_prefix(project).unwrap();
        if rel.starts_with("data") {
            continue; // the platforms' own exports, as the user gave them
        }
        let bytes = std::fs::read(&file).unwrap();
        if let Some(m) = finder.find(&bytes) {
            leaks.push(format!("{}: {:?}", rel.display(), &clear[m.pattern()]));
        }
    }
    if let Some(m) = finder.find(&run_output) {
        leaks.push(format!("run output: {:?}", &clear[m.pattern()]));
    }
    leaks.truncate(20);
    assert!(leaks.is_empty(), "clear personal data found: {leaks:#?}");
}

#[test]
fn identity_bench_scores_each_size_against_the_truth() {
    let out = Command::cargo_bin("shopfuse")
        .unwrap()
        .args(["--json", "bench", "identity", "--sizes", "600"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &rows.as_array().unwrap()[0];
    assert!(row["accounts"].as_u64().unwrap() > 400);
    assert!(row["accounts_per_second"].as_f64().unwrap() > 0.0);
    assert!(row["pair_completeness"].as_f64().unwrap() > 0.95);
    assert!(row["pairwise"]["f1"].as_f64().unwrap() > 0.9);
    // No Python given: no peer figures, rather than made-up ones.
    assert!(row["splink"].is_null());
}
