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

/// Rows per row group of the streamed tables.
const ROWS_PER_GROUP: usize = 131_072;

/// Makes the rows of `items` items (`rows_of(k, out)` pushes item k's rows, any number) the
/// whole content of `table`, one row group of about [`ROWS_PER_GROUP`] rows at a time: at a
/// million listings the candidate pairs alone are ~17 million rows, which as `Value`s plus
/// their Arrow copy were the resolve stage's peak memory.
fn replace_streamed(
    tx: &mut Transaction<'_>,
    table: &str,
    schema: &SchemaRef,
    items: usize,
    mut rows_of: impl FnMut(usize, &mut Vec<Vec<Value>>),
) -> Result<(), ResolveError> {
    let mut next = 0;
    let mut first = true;
    let batches = std::iter::from_fn(|| {
        // An empty table still gets one (empty) batch, so it exists with its schema.
        if next >= items && !first {
            return None;
        }
        first = false;
        let mut rows = Vec::new();
        while next < items && rows.len() < ROWS_PER_GROUP {
            rows_of(next, &mut rows);
            next += 1;
        }
        Some(rows_to_batch(schema, &rows))
    });
    tx.replace_streamed(table, schema, batches)?;
    Ok(())
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
    replace_streamed(tx, CANDIDATES_TABLE, &s, scored.ids.len(), |k, out| {
        let (i, j) = scored.ids[k];
        let (a, b) = (&listings[i], &listings[j]);
        out.push(vec![
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
        ]);
    })?;

    let s = schema(&[
        ("golden_id", Utf8, false),
        ("platform", Utf8, false),
        ("listing_id", Utf8, false),
        ("cluster_size", Int64, false),
        ("cohesion", Float64, true),
        ("explanation", Utf8, true),
    ]);
    replace_streamed(
        tx,
        CLUSTERS_TABLE,
        &s,
        clustering.members.len(),
        |c, rows| {
            let m = &clustering.members[c];
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
        },
    )?;

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
    replace_streamed(tx, GOLDEN_TABLE, &s, golden.len(), |c, rows| {
        let (g, m) = (&golden[c], &clustering.members[c]);
        let mut row = vec![text(&g.id)];
        // One column per golden field, as the schema lists them.
        row.extend(
            GOLDEN_FIELDS
                .iter()
                .zip(&g.fields)
                .map(|(_, (value, _, _))| value.clone()),
        );
        let platforms: BTreeSet<&str> = m.iter().map(|&i| listings[i].platform.as_str()).collect();
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
        rows.push(row);
    })?;

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
    replace_streamed(tx, PROVENANCE_TABLE, &s, golden.len(), |c, prov| {
        let g = &golden[c];
        for (f, (value, rule, sources)) in GOLDEN_FIELDS.iter().zip(&g.fields) {
            let rule = serde_json::to_value(rule)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            for &i in sources {
                let l = &listings[i];
                prov.push(vec![
                    text(&g.id),
                    text(f),
                    Value::Text(value.render()),
                    Value::Text(rule.clone()),
                    text(&l.platform),
                    text(&l.listing_id),
                    text(&l.file),
                    Value::Int(l.row),
                ]);
            }
        }
    })?;

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
    replace_streamed(tx, OFFERS_TABLE, &s, listings.len(), |i, rows| {
        let l = &listings[i];
        rows.push(vec![
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
        ]);
    })?;

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
