//! The stage's tables: candidates, clusters, golden products, provenance, offers, aliases.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use shopfuse_core::schema::timestamp_type;
use shopfuse_core::value::rows_to_batch;
use shopfuse_core::{Transaction, Value};

use super::aliases::FieldAliases;
use super::golden::Golden;
use super::*;
use crate::blocking::{BY_EMBEDDING, BY_IDENTIFIER, BY_TOKEN};
use crate::linkage::Clustering;

pub(crate) fn schema(fields: &[(&str, DataType, bool)]) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|(n, t, null)| Field::new(*n, t.clone(), *null))
            .collect::<Vec<_>>(),
    ))
}

pub(crate) fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

pub(crate) fn opt_text(s: &Option<String>) -> Value {
    s.as_ref().map_or(Value::Null, |v| Value::Text(v.clone()))
}

fn blockers(reasons: u8) -> String {
    let mut out = Vec::new();
    for (bit, name) in [
        (BY_IDENTIFIER, "identifier"),
        (BY_TOKEN, "token"),
        (BY_EMBEDDING, "embedding"),
    ] {
        if reasons & bit != 0 {
            out.push(name);
        }
    }
    if out.is_empty() {
        out.push("review");
    }
    out.join(",")
}

pub(super) fn write_tables(
    tx: &mut Transaction<'_>,
    listings: &[Listing],
    scored: &Scored,
    clustering: &Clustering,
    golden: &[Golden],
    aliases: &FieldAliases,
    base_currency: &str,
) -> Result<(), ResolveError> {
    use DataType::{Boolean, Float64, Int64, Utf8};
    let ts = timestamp_type();

    let s = schema(&[
        ("left_platform", Utf8, false),
        ("left_listing_id", Utf8, false),
        ("right_platform", Utf8, false),
        ("right_listing_id", Utf8, false),
        ("blockers", Utf8, false),
        ("match_probability", Float64, false),
        ("threshold", Float64, false),
        ("label_source", Utf8, false),
        ("same_cluster", Boolean, false),
        ("drivers", Utf8, true),
    ]);
    let rows: Vec<Vec<Value>> = scored
        .ids
        .iter()
        .enumerate()
        .map(|(k, &(i, j))| {
            let (a, b) = (&listings[i], &listings[j]);
            vec![
                text(&a.platform),
                text(&a.listing_id),
                text(&b.platform),
                text(&b.listing_id),
                Value::Text(blockers(scored.reasons[k])),
                Value::Float(scored.probability[k]),
                Value::Float(scored.threshold),
                text(scored.label_source[k]),
                Value::Bool(clustering.cluster_of[i] == clustering.cluster_of[j]),
                if scored.drivers[k].is_empty() {
                    Value::Null
                } else {
                    Value::Text(scored.drivers[k].clone())
                },
            ]
        })
        .collect();
    tx.replace(CANDIDATES_TABLE, &s, &[rows_to_batch(&s, &rows)?])?;

    let s = schema(&[
        ("golden_id", Utf8, false),
        ("platform", Utf8, false),
        ("listing_id", Utf8, false),
        ("cluster_size", Int64, false),
        ("cohesion", Float64, true),
        ("explanation", Utf8, true),
    ]);
    let mut rows = Vec::new();
    for (c, m) in clustering.members.iter().enumerate() {
        let explanation = clustering.steps[c].join(" | ");
        for &i in m {
            rows.push(vec![
                text(&golden[c].id),
                text(&listings[i].platform),
                text(&listings[i].listing_id),
                Value::Int(m.len() as i64),
                clustering.cohesion[c].map_or(Value::Null, Value::Float),
                if explanation.is_empty() {
                    Value::Null
                } else {
                    Value::Text(explanation.clone())
                },
            ]);
        }
    }
    tx.replace(CLUSTERS_TABLE, &s, &[rows_to_batch(&s, &rows)?])?;

    let mut cols: Vec<(&str, DataType, bool)> = vec![("golden_id", Utf8, false)];
    for f in GOLDEN_FIELDS {
        let t = match f {
            "price_base" => Float64,
            "listed_at" => ts.clone(),
            _ => Utf8,
        };
        cols.push((f, t, true));
    }
    cols.extend([
        ("listings", Int64, false),
        ("platforms", Utf8, false),
        ("min_price_base", Float64, true),
        ("max_price_base", Float64, true),
    ]);
    let s = schema(&cols);
    let mut prov = Vec::new();
    let rows: Vec<Vec<Value>> = golden
        .iter()
        .zip(&clustering.members)
        .map(|(g, m)| {
            let mut row = vec![text(&g.id)];
            for (f, (value, rule, sources)) in GOLDEN_FIELDS.iter().zip(&g.fields) {
                row.push(value.clone());
                for &i in sources {
                    let l = &listings[i];
                    prov.push(vec![
                        text(&g.id),
                        text(f),
                        Value::Text(value.render()),
                        Value::Text(
                            serde_json::to_value(rule)
                                .ok()
                                .and_then(|v| v.as_str().map(String::from))
                                .unwrap_or_default(),
                        ),
                        text(&l.platform),
                        text(&l.listing_id),
                        text(&l.file),
                        Value::Int(l.row),
                    ]);
                }
            }
            let platforms: BTreeSet<&str> =
                m.iter().map(|&i| listings[i].platform.as_str()).collect();
            let prices: Vec<f64> = m.iter().filter_map(|&i| listings[i].price_base).collect();
            row.extend([
                Value::Int(m.len() as i64),
                Value::Text(platforms.into_iter().collect::<Vec<_>>().join(",")),
                prices
                    .iter()
                    .copied()
                    .reduce(f64::min)
                    .map_or(Value::Null, Value::Float),
                prices
                    .iter()
                    .copied()
                    .reduce(f64::max)
                    .map_or(Value::Null, Value::Float),
            ]);
            row
        })
        .collect();
    tx.replace(GOLDEN_TABLE, &s, &[rows_to_batch(&s, &rows)?])?;

    let s = schema(&[
        ("golden_id", Utf8, false),
        ("field", Utf8, false),
        ("value", Utf8, true),
        ("rule", Utf8, false),
        ("platform", Utf8, false),
        ("listing_id", Utf8, false),
        ("_file", Utf8, false),
        ("_row", Int64, false),
    ]);
    tx.replace(PROVENANCE_TABLE, &s, &[rows_to_batch(&s, &prov)?])?;

    let s = schema(&[
        ("golden_id", Utf8, false),
        ("platform", Utf8, false),
        ("listing_id", Utf8, false),
        ("title", Utf8, false),
        ("price", Float64, true),
        ("currency", Utf8, true),
        ("price_base", Float64, true),
        ("base_currency", Utf8, false),
        ("stock", Int64, true),
        ("url", Utf8, true),
        ("listed_at", ts, true),
        ("_file", Utf8, false),
        ("_row", Int64, false),
    ]);
    let rows: Vec<Vec<Value>> = listings
        .iter()
        .enumerate()
        .map(|(i, l)| {
            vec![
                text(&golden[clustering.cluster_of[i]].id),
                text(&l.platform),
                text(&l.listing_id),
                text(&l.title),
                l.price.map_or(Value::Null, Value::Float),
                opt_text(&l.currency),
                l.price_base.map_or(Value::Null, Value::Float),
                text(base_currency),
                l.stock.map_or(Value::Null, Value::Int),
                opt_text(&l.url),
                l.listed_at.map_or(Value::Null, Value::Timestamp),
                text(&l.file),
                Value::Int(l.row),
            ]
        })
        .collect();
    tx.replace(OFFERS_TABLE, &s, &[rows_to_batch(&s, &rows)?])?;

    let s = schema(&[
        ("field", Utf8, false),
        ("value", Utf8, false),
        ("canonical", Utf8, false),
        ("support", Int64, false),
    ]);
    let mut rows = aliases.brand.rows("brand");
    rows.extend(aliases.category.rows("category"));
    rows.extend(aliases.color.rows("color"));
    tx.replace(ALIASES_TABLE, &s, &[rows_to_batch(&s, &rows)?])?;
    Ok(())
}
