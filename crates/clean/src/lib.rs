//! Clean stage: turns `raw_<kind>` tables into `clean_<kind>` tables.
//!
//! Per source: text normalisation (NFKC, full-width → half-width, whitespace, case of
//! identifiers), prices converted to the base currency, capacities to canonical units,
//! missing values filled per the configured policy (and marked), exact and near duplicates
//! removed with a record of each removal in `clean_removed`, and outliers flagged — never
//! deleted. Also writes the data-quality tables behind `shopfuse report quality`.
//!
//! The stage is a pure function of the raw tables and the config: rows are sorted by their
//! provenance first and every random choice is seeded, so a re-run writes the same rows.

pub mod dedupe;
pub mod missing;
pub mod normalise;
pub mod outliers;
pub mod quality;

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use arrow::datatypes::{Field, SchemaRef};
use rayon::prelude::*;
use serde::Serialize;
use shopfuse_core::config::MissingPolicy;
use shopfuse_core::schema::{canonical_columns, provenance_columns, FieldType};
use shopfuse_core::table::{Column, ColumnType, TableDef};
use shopfuse_core::value::{batch_to_rows, rows_to_batch};
use shopfuse_core::{CoreError, EntityKind, Progress, Project, Transaction, Value};

use crate::normalise::{
    normalise_brand, normalise_gtin, normalise_model_code, normalise_text, parse_measure,
};
use crate::outliers::{univariate_outliers, IsolationForest};
use crate::quality::{FieldQuality, QualityReport, SourceQuality};

#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    /// Reading a raw table or writing a clean one failed; the source names the file.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A `[clean.missing]` policy does not fit its field; `reason` says why and what fits.
    #[error("{config}: [clean.missing] \"{key}\" = \"{policy}\": {reason}")]
    Policy {
        config: String,
        key: String,
        policy: String,
        reason: String,
    },
}

/// One row on its way through the stage.
#[derive(Debug, Clone)]
pub struct WorkRow {
    /// Canonical fields in schema order.
    pub values: Vec<Value>,
    pub source: String,
    pub platform: String,
    pub file: String,
    pub row: i64,
    /// Derived columns of the kind (see [`extra_fields`]).
    pub extras: Vec<Value>,
    pub imputed: Vec<&'static str>,
    pub outlier_reasons: Vec<String>,
}

impl WorkRow {
    pub fn get(&self, kind: EntityKind, field: &str) -> &Value {
        &self.values[kind.field_index(field).expect("canonical field")]
    }
}

/// A row removed as a duplicate, and the row that was kept in its place.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Removal {
    pub source: String,
    pub kind: EntityKind,
    pub file: String,
    pub row: i64,
    pub kept_file: String,
    pub kept_row: i64,
    pub reason: &'static str,
    pub detail: String,
}

/// Columns derived by the clean stage, after the canonical ones.
pub fn extra_fields(kind: EntityKind) -> Vec<Field> {
    extra_columns(kind)
        .iter()
        .map(|c| Field::new(c.name.as_ref(), c.ty.arrow_type(0), c.nullable))
        .collect()
}

fn extra_columns(kind: EntityKind) -> Vec<Column> {
    let f = |n: &str, t: ColumnType, doc: &str| Column::new(n, t, true, doc);
    match kind {
        EntityKind::Products => vec![
            f(
                "price_base",
                ColumnType::Float,
                "Price in the base currency.",
            ),
            f(
                "capacity_value",
                ColumnType::Float,
                "Capacity as a number in the canonical unit (GB, ml, g …).",
            ),
            f(
                "capacity_unit",
                ColumnType::Text,
                "The canonical unit of capacity_value.",
            ),
        ],
        EntityKind::Orders => vec![
            f(
                "unit_price_base",
                ColumnType::Float,
                "Unit price in the base currency.",
            ),
            f(
                "amount_base",
                ColumnType::Float,
                "quantity × unit price in the base currency.",
            ),
        ],
        _ => vec![],
    }
}

/// The declaration of `clean_<kind>`: canonical fields (normalised), derived fields, quality
/// marks, provenance.
pub fn clean_table_def(kind: EntityKind) -> TableDef {
    let mut columns = canonical_columns(kind);
    columns.extend(extra_columns(kind));
    columns.extend([
        Column::new(
            "_imputed",
            ColumnType::Text,
            true,
            "Fields whose missing value a [clean.missing] policy filled, comma-separated.",
        ),
        Column::new(
            "_outlier",
            ColumnType::Bool,
            false,
            "Whether the row is flagged as an outlier (kept, not removed).",
        ),
        Column::new(
            "_outlier_reasons",
            ColumnType::Text,
            true,
            "Why it is flagged: the field and method (IQR, z-score, isolation forest), comma-separated.",
        ),
    ]);
    columns.extend(provenance_columns());
    TableDef::new(
        kind.clean_table(),
        format!(
            "One row per {kind} record after normalisation, de-duplication and outlier flagging."
        ),
        columns,
    )
}

/// Schema of `clean_<kind>`.
pub fn clean_schema(kind: EntityKind) -> SchemaRef {
    clean_table_def(kind).schema()
}

shopfuse_core::table! {
    /// One row per row clean removed as a duplicate, and the row kept in its place.
    pub mod clean_removed("clean_removed") {
        /// The `[[sources]]` entry of the removed row.
        source: Text;
        /// Its entity kind.
        kind: Text;
        /// Its file.
        file: Text;
        /// Its row.
        row: Int;
        /// The file of the row kept instead.
        kept_file: Text;
        /// The row kept instead.
        kept_row: Int;
        /// exact_duplicate, same_key, same_event_id (an event id sent twice) or repeated_event
        /// (a double-sent event).
        reason: Text;
        /// What matched.
        detail: Text;
    }
}

pub const REMOVED_TABLE: &str = clean_removed::NAME;

pub fn removed_schema() -> SchemaRef {
    clean_removed::TABLE.schema()
}

#[derive(Debug, Clone, Serialize)]
pub struct KindSummary {
    pub kind: EntityKind,
    pub rows_in: u64,
    pub rows_out: u64,
    pub duplicates_removed: u64,
    pub outliers_flagged: u64,
    pub values_imputed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CleanSummary {
    pub kinds: Vec<KindSummary>,
    pub seconds: f64,
    pub quality: QualityReport,
}

/// Cleans every raw table of the transaction's current view into its clean table.
pub fn clean(
    project: &Project,
    tx: &mut Transaction<'_>,
    progress: &dyn Progress,
) -> Result<CleanSummary, CleanError> {
    let started = Instant::now();
    let config = &project.config;
    let policies = resolve_policies(project)?;
    let mut kinds = Vec::new();
    let mut all_removed = Vec::new();
    let mut quality_sources: BTreeMap<String, SourceQuality> = BTreeMap::new();
    let mut quality_fields: Vec<FieldQuality> = Vec::new();

    for kind in EntityKind::ALL {
        let mut rows = read_raw(tx, kind)?;
        progress.start(&format!("clean {kind}"), rows.len() as u64);
        let rows_in = rows.len() as u64;

        // Deterministic order regardless of how ingest split the raw table into files.
        rows.par_sort_by(|a, b| (&a.source, &a.file, a.row).cmp(&(&b.source, &b.file, b.row)));
        rows.par_iter_mut().for_each(|r| normalise_row(kind, r));
        let nulls_before = count_nulls(kind, &rows);

        let (mut rows, removed) =
            dedupe::remove_duplicates(kind, rows, config.clean.duplicate_event_window_secs);
        let mut imputed = 0u64;
        for (field, policy) in policies
            .iter()
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, f, p)| (*f, p))
        {
            imputed += missing::fill(kind, &mut rows, field, policy);
        }
        derive_extras(kind, &mut rows, config);
        flag_outliers(kind, &mut rows, &config.clean.outliers);
        progress.advance(rows_in);
        progress.finish();

        let outliers = rows
            .iter()
            .filter(|r| !r.outlier_reasons.is_empty())
            .count() as u64;
        quality::collect(
            kind,
            &rows,
            &removed,
            &nulls_before,
            &mut quality_sources,
            &mut quality_fields,
        );
        kinds.push(KindSummary {
            kind,
            rows_in,
            rows_out: rows.len() as u64,
            duplicates_removed: removed.len() as u64,
            outliers_flagged: outliers,
            values_imputed: imputed,
        });
        write_clean(tx, kind, &rows)?;
        all_removed.extend(removed);
    }

    write_removed(tx, &all_removed)?;
    let quality = quality::finish(project, tx, quality_sources, quality_fields)?;
    quality.write(tx)?;
    Ok(CleanSummary {
        kinds,
        seconds: started.elapsed().as_secs_f64(),
        quality,
    })
}

/// Replaces `clean_removed` with every row removed as a duplicate.
fn write_removed(tx: &mut Transaction<'_>, removed: &[Removal]) -> Result<(), CleanError> {
    let removed_rows: Vec<Vec<Value>> = removed
        .iter()
        .map(|r| {
            vec![
                Value::Text(r.source.clone()),
                Value::Text(r.kind.to_string()),
                Value::Text(r.file.clone()),
                Value::Int(r.row),
                Value::Text(r.kept_file.clone()),
                Value::Int(r.kept_row),
                Value::Text(r.reason.to_string()),
                Value::Text(r.detail.clone()),
            ]
        })
        .collect();
    let schema = removed_schema();
    tx.replace(
        REMOVED_TABLE,
        &schema,
        &[rows_to_batch(&schema, &removed_rows)?],
    )?;
    Ok(())
}

/// (kind, field, policy) for every configured policy other than `leave`, validated against the
/// field's type so a mistake in the config is reported before any work is done.
fn resolve_policies(
    project: &Project,
) -> Result<Vec<(EntityKind, &'static str, MissingPolicy)>, CleanError> {
    let mut out = Vec::new();
    for (key, text) in &project.config.clean.missing {
        let bad = |reason: String| CleanError::Policy {
            config: project.config_path().display().to_string(),
            key: key.clone(),
            policy: text.clone(),
            reason,
        };
        let (kind, field) = key
            .split_once('.')
            .ok_or_else(|| bad("expected KIND.FIELD".into()))?;
        let kind: EntityKind = kind.parse().map_err(bad)?;
        let field = kind
            .field(field)
            .ok_or_else(|| bad(format!("{kind} has no such field")))?;
        let policy = MissingPolicy::parse(text).map_err(bad)?;
        let numeric = matches!(
            field.ty,
            FieldType::Integer | FieldType::Decimal | FieldType::Price | FieldType::Rating
        );
        match &policy {
            MissingPolicy::Leave => continue,
            MissingPolicy::Mean
            | MissingPolicy::Median
            | MissingPolicy::Interpolate
            | MissingPolicy::Zero
                if !numeric =>
            {
                return Err(bad(format!(
                    "{} is a {:?} field; only constant:VALUE or leave apply",
                    field.name, field.ty
                )))
            }
            MissingPolicy::Constant(v) => {
                missing::constant_value(field.ty, v).map_err(bad)?;
            }
            _ => {}
        }
        if field.required {
            continue; // Never missing: ingest quarantines rows without it.
        }
        out.push((kind, field.name, policy));
    }
    Ok(out)
}

fn read_raw(tx: &Transaction<'_>, kind: EntityKind) -> Result<Vec<WorkRow>, CleanError> {
    let Some((schema, batches)) = tx.read_table(&kind.raw_table())? else {
        return Ok(Vec::new());
    };
    let position = |name: &str| {
        schema
            .index_of(name)
            .map_err(|_| CoreError::Schema(format!("{} has no column {name}", kind.raw_table())))
    };
    let canonical: Vec<usize> = kind
        .fields()
        .iter()
        .map(|f| position(f.name))
        .collect::<Result<_, _>>()?;
    let (src, plat, file, row) = (
        position("_source")?,
        position("_platform")?,
        position("_file")?,
        position("_row")?,
    );
    let n_extra = extra_fields(kind).len();
    let mut out = Vec::new();
    for batch in &batches {
        for values in batch_to_rows(batch)? {
            let text = |i: usize| values[i].as_str().unwrap_or_default().to_string();
            out.push(WorkRow {
                values: canonical.iter().map(|&i| values[i].clone()).collect(),
                source: text(src),
                platform: text(plat),
                file: text(file),
                row: values[row].as_i64().unwrap_or_default(),
                extras: vec![Value::Null; n_extra],
                imputed: Vec::new(),
                outlier_reasons: Vec::new(),
            });
        }
    }
    Ok(out)
}

fn normalise_row(kind: EntityKind, row: &mut WorkRow) {
    for (field, value) in kind.fields().iter().zip(row.values.iter_mut()) {
        let Value::Text(text) = value else { continue };
        // Pseudonyms are already canonical; the event type and currency were parsed at ingest.
        if field.pii.is_some() {
            continue;
        }
        let normalised = match field.name {
            "brand" => normalise_brand(text),
            "model_code" => normalise_model_code(text),
            "gtin" => normalise_gtin(text),
            "currency" => normalise_text(text).map(|s| s.to_uppercase()),
            "color" => normalise_text(text).map(|s| s.to_lowercase()),
            _ => normalise_text(text),
        };
        *value = normalised.map(Value::Text).unwrap_or(Value::Null);
    }
}

fn count_nulls(kind: EntityKind, rows: &[WorkRow]) -> HashMap<(String, &'static str), u64> {
    let mut out = HashMap::new();
    for r in rows {
        for (f, v) in kind.fields().iter().zip(&r.values) {
            if v.is_null() {
                *out.entry((r.source.clone(), f.name)).or_insert(0) += 1;
            }
        }
    }
    out
}

fn derive_extras(kind: EntityKind, rows: &mut [WorkRow], config: &shopfuse_core::ProjectConfig) {
    let base = &config.project.base_currency;
    let to_base = |price: &Value, currency: &Value| -> Value {
        match (price.as_f64(), currency.as_str()) {
            (Some(p), Some(c)) => match config.currency.rate_to_base(c, base) {
                Some(rate) => Value::Float((p * rate * 100.0).round() / 100.0),
                None => Value::Null,
            },
            _ => Value::Null,
        }
    };
    match kind {
        EntityKind::Products => rows.par_iter_mut().for_each(|r| {
            r.extras[0] = to_base(r.get(kind, "price"), r.get(kind, "currency"));
            let measure = r
                .get(kind, "capacity")
                .as_str()
                .and_then(parse_measure)
                .or_else(|| r.get(kind, "title").as_str().and_then(parse_measure));
            if let Some(m) = measure {
                r.extras[1] = Value::Float(m.value);
                r.extras[2] = Value::Text(m.unit.to_string());
            }
        }),
        EntityKind::Orders => rows.par_iter_mut().for_each(|r| {
            let unit = to_base(r.get(kind, "unit_price"), r.get(kind, "currency"));
            let qty = r.get(kind, "quantity").as_f64();
            r.extras[1] = match (unit.as_f64(), qty) {
                (Some(u), Some(q)) => Value::Float((u * q * 100.0).round() / 100.0),
                _ => Value::Null,
            };
            r.extras[0] = unit;
        }),
        _ => {}
    }
}

/// Rows whose price is unconvertible: a currency with no rate in `[currency.rates]`.
pub fn unconverted_price(kind: EntityKind, row: &WorkRow) -> bool {
    match kind {
        EntityKind::Products => !row.get(kind, "price").is_null() && row.extras[0].is_null(),
        EntityKind::Orders => !row.get(kind, "unit_price").is_null() && row.extras[0].is_null(),
        _ => false,
    }
}

fn flag_outliers(
    kind: EntityKind,
    rows: &mut [WorkRow],
    config: &shopfuse_core::config::OutlierConfig,
) {
    match kind {
        EntityKind::Products => flag_product_prices(rows, config),
        EntityKind::Orders => {
            let ratio = price_vs_listing(rows);
            let off: Vec<usize> = (0..rows.len())
                .filter(|&i| ratio[i] > 5.0 || ratio[i] < 0.2)
                .collect();
            flag(rows, &off, "price_vs_listing");
            flag_quantities(rows, config);
            if config.isolation_forest && rows.len() >= 64 {
                flag_isolated_orders(rows, &ratio, config);
            }
        }
        _ => {}
    }
}

fn flag(rows: &mut [WorkRow], idx: &[usize], reason: &str) {
    for &i in idx {
        rows[i].outlier_reasons.push(reason.to_string());
    }
}

/// Listing prices: prices differ by orders of magnitude between categories, so they are
/// compared within a source's category when it has enough listings, else within the source.
fn flag_product_prices(rows: &mut [WorkRow], config: &shopfuse_core::config::OutlierConfig) {
    let kind = EntityKind::Products;
    let groups = group_indices(rows, |r| {
        (
            r.source.clone(),
            r.get(kind, "category")
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    });
    // Every small category of a source falls back to the same whole-source test: run it once
    // per source.
    let mut whole_source_done = std::collections::BTreeSet::new();
    for ((source, _), idx) in &groups {
        let idx = if idx.len() >= 20 {
            idx.clone()
        } else if whole_source_done.insert(source.clone()) {
            (0..rows.len())
                .filter(|&i| &rows[i].source == source)
                .collect()
        } else {
            continue;
        };
        let values: Vec<Option<f64>> = idx.iter().map(|&i| rows[i].extras[0].as_f64()).collect();
        let hits: Vec<usize> = univariate_outliers(&values, config)
            .into_iter()
            .map(|j| idx[j])
            .filter(|&i| !rows[i].outlier_reasons.iter().any(|r| r == "price"))
            .collect();
        flag(rows, &hits, "price");
    }
}

/// Each order's price against what the same listing usually sells for (1 where unknown): a
/// 100× order price is an outlier even when the catalogue as a whole spans that range.
fn price_vs_listing(rows: &[WorkRow]) -> Vec<f64> {
    let kind = EntityKind::Orders;
    let by_listing = group_indices(rows, |r| {
        (
            r.source.clone(),
            r.get(kind, "listing_id")
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    });
    let mut ratio = vec![1.0f64; rows.len()];
    for idx in by_listing.values() {
        let mut prices: Vec<f64> = idx
            .iter()
            .filter_map(|&i| rows[i].extras[0].as_f64())
            .collect();
        if prices.len() < 3 {
            continue;
        }
        prices.sort_by(f64::total_cmp);
        let median = outliers::quantile(&prices, 0.5);
        for &i in idx {
            if let Some(p) = rows[i].extras[0].as_f64() {
                if median > 0.0 {
                    ratio[i] = p / median;
                }
            }
        }
    }
    ratio
}

/// Order quantities, within each source.
fn flag_quantities(rows: &mut [WorkRow], config: &shopfuse_core::config::OutlierConfig) {
    let kind = EntityKind::Orders;
    for source in sources(rows) {
        let idx: Vec<usize> = (0..rows.len())
            .filter(|&i| rows[i].source == source)
            .collect();
        let values: Vec<Option<f64>> = idx
            .iter()
            .map(|&i| rows[i].get(kind, "quantity").as_f64())
            .collect();
        let hits: Vec<usize> = univariate_outliers(&values, config)
            .into_iter()
            .map(|j| idx[j])
            .collect();
        flag(rows, &hits, "quantity");
    }
}

/// Orders an isolation forest isolates quickly on (log price, log quantity, log price ratio to
/// the listing, hour of day): unusual combinations no single field shows.
fn flag_isolated_orders(
    rows: &mut [WorkRow],
    ratio: &[f64],
    config: &shopfuse_core::config::OutlierConfig,
) {
    let kind = EntityKind::Orders;
    let features: Vec<Vec<f64>> = rows
        .iter()
        .zip(ratio)
        .map(|(r, ratio)| {
            let hour = r
                .get(kind, "ordered_at")
                .as_i64()
                .map(|t| ((t / 3_600_000_000) % 24) as f64);
            vec![
                r.extras[0].as_f64().unwrap_or(0.0).ln_1p(),
                r.get(kind, "quantity").as_f64().unwrap_or(1.0).ln_1p(),
                ratio.ln(),
                hour.unwrap_or(12.0),
            ]
        })
        .collect();
    let forest = IsolationForest::fit(&features, 100, 256, FOREST_SEED);
    let scores: Vec<f64> = features.par_iter().map(|f| forest.score(f)).collect();
    let hits: Vec<usize> = (0..rows.len())
        .filter(|&i| scores[i] > config.isolation_forest_threshold)
        .collect();
    flag(rows, &hits, "isolation_forest");
}

/// Seed of the isolation forest: fixed, so runs are reproducible.
const FOREST_SEED: u64 = 0x5F0F_5EED;

fn group_indices<K: Ord>(rows: &[WorkRow], key: impl Fn(&WorkRow) -> K) -> BTreeMap<K, Vec<usize>> {
    let mut out: BTreeMap<K, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        out.entry(key(r)).or_default().push(i);
    }
    out
}

fn sources(rows: &[WorkRow]) -> Vec<String> {
    let mut s: Vec<String> = rows.iter().map(|r| r.source.clone()).collect();
    s.sort();
    s.dedup();
    s
}

fn write_clean(
    tx: &mut Transaction<'_>,
    kind: EntityKind,
    rows: &[WorkRow],
) -> Result<(), CleanError> {
    let schema = clean_schema(kind);
    let mut batches = Vec::new();
    for chunk in rows.chunks(65_536) {
        let values: Vec<Vec<Value>> = chunk
            .par_iter()
            .map(|r| {
                let mut v = r.values.clone();
                v.extend(r.extras.iter().cloned());
                v.push(if r.imputed.is_empty() {
                    Value::Null
                } else {
                    Value::Text(r.imputed.join(","))
                });
                v.push(Value::Bool(!r.outlier_reasons.is_empty()));
                v.push(if r.outlier_reasons.is_empty() {
                    Value::Null
                } else {
                    Value::Text(r.outlier_reasons.join(","))
                });
                v.push(Value::Text(r.source.clone()));
                v.push(Value::Text(r.platform.clone()));
                v.push(Value::Text(r.file.clone()));
                v.push(Value::Int(r.row));
                v
            })
            .collect();
        batches.push(rows_to_batch(&schema, &values)?);
    }
    tx.replace(&kind.clean_table(), &schema, &batches)?;
    Ok(())
}
