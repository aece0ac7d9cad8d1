//! The identity graph's tables: scored links, the account → customer map, the model.

use arrow::datatypes::DataType;
use shopfuse_core::config::IdentityConfig;
use shopfuse_core::schema::timestamp_type;
use shopfuse_core::value::rows_to_batch;
use shopfuse_core::{Transaction, Value};

use super::*;
use crate::catalogue::tables::{opt_text, schema, text};
use crate::linkage::Clustering;

pub(super) fn write_tables(
    tx: &mut Transaction<'_>,
    accounts: &[Account],
    links: &[Link],
    customers: &Clustering,
    model: &FellegiSunter,
    config: &IdentityConfig,
) -> Result<(), ResolveError> {
    use DataType::{Boolean, Float64, Int64, Utf8};
    let ids: Vec<String> = customers
        .members
        .iter()
        .map(|m| customer_id(accounts, m))
        .collect();

    let s = schema(&[
        ("left_platform", Utf8, false),
        ("left_account_id", Utf8, false),
        ("right_platform", Utf8, false),
        ("right_account_id", Utf8, false),
        ("link_type", Utf8, false),
        ("match_weight", Float64, false),
        ("match_probability", Float64, false),
        ("threshold", Float64, false),
        ("reason", Utf8, false),
        ("same_customer", Boolean, false),
    ]);
    let rows: Vec<Vec<Value>> = links
        .iter()
        .map(|l| {
            let (a, b) = (&accounts[l.left], &accounts[l.right]);
            vec![
                text(&a.platform),
                text(&a.account_id),
                text(&b.platform),
                text(&b.account_id),
                text(if l.deterministic.is_some() {
                    "deterministic"
                } else {
                    "probabilistic"
                }),
                Value::Float(l.match_weight),
                Value::Float(l.match_probability),
                Value::Float(config.threshold),
                text(&l.reason(model)),
                Value::Bool(customers.cluster_of[l.left] == customers.cluster_of[l.right]),
            ]
        })
        .collect();
    tx.replace(LINKS_TABLE, &s, &[rows_to_batch(&s, &rows)?])?;

    let s = schema(&[
        ("customer_id", Utf8, false),
        ("platform", Utf8, false),
        ("account_id", Utf8, false),
        ("accounts", Int64, false),
        ("cohesion", Float64, true),
        ("explanation", Utf8, true),
        ("city", Utf8, true),
        ("registered_at", timestamp_type(), true),
        ("_file", Utf8, false),
        ("_row", Int64, false),
    ]);
    let mut rows: Vec<Vec<Value>> = Vec::with_capacity(accounts.len());
    for (c, members) in customers.members.iter().enumerate() {
        for &i in members {
            let a = &accounts[i];
            rows.push(vec![
                text(&ids[c]),
                text(&a.platform),
                text(&a.account_id),
                Value::Int(members.len() as i64),
                customers.cohesion[c].map_or(Value::Null, Value::Float),
                if customers.steps[c].is_empty() {
                    Value::Null
                } else {
                    text(&customers.steps[c].join("; "))
                },
                opt_text(&a.city),
                a.registered_at.map_or(Value::Null, Value::Timestamp),
                text(&a.file),
                Value::Int(a.row),
            ]);
        }
    }
    tx.replace(ACCOUNTS_TABLE, &s, &[rows_to_batch(&s, &rows)?])?;

    let s = schema(&[
        ("comparison", Utf8, false),
        ("level", Utf8, false),
        ("m_probability", Float64, false),
        ("m_source", Utf8, false),
        ("u_probability", Float64, false),
        ("match_weight", Float64, false),
        ("prior", Float64, false),
    ]);
    let mut rows: Vec<Vec<Value>> = Vec::new();
    for (c, comparison) in COMPARISONS.iter().enumerate() {
        for (l, level) in comparison.levels().iter().enumerate() {
            let (m, u) = (model.m[c][l], model.u[c][l]);
            rows.push(vec![
                text(comparison.as_str()),
                text(level),
                Value::Float(m),
                text(if model.m_from_seeds[c] {
                    "seed pairs (shared personal phone/e-mail)"
                } else {
                    "EM"
                }),
                Value::Float(u),
                Value::Float((m / u).log2()),
                Value::Float(model.prior),
            ]);
        }
    }
    tx.replace(PARAMETERS_TABLE, &s, &[rows_to_batch(&s, &rows)?])?;
    Ok(())
}
