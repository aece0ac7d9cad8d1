//! The per-source data-quality report: what came in, what was rejected and why, what was
//! missing, duplicated or odd. Persisted as two tables (`quality_sources`, `quality_fields`)
//! so it is queryable with SQL and readable by `shopfuse report quality` without re-running.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};
use shopfuse_core::value::{batch_to_rows, rows_to_batch};
use shopfuse_core::{CoreError, EntityKind, Project, TableStore, Transaction, Value};

use shopfuse_ingest::quarantine;

use crate::{unconverted_price, Removal, WorkRow};

pub const SOURCES_TABLE: &str = quality_sources::NAME;
pub const FIELDS_TABLE: &str = quality_fields::NAME;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    pub sources: Vec<SourceQuality>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceQuality {
    pub source: String,
    pub platform: String,
    pub kind: String,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_quarantined: u64,
    pub quarantined_by_reason: BTreeMap<String, u64>,
    pub duplicates_removed: u64,
    pub duplicates_by_reason: BTreeMap<String, u64>,
    pub rows_clean: u64,
    pub outliers: u64,
    pub outliers_by_reason: BTreeMap<String, u64>,
    /// Prices in a currency with no rate in `[currency.rates]`, left without a base price.
    pub unconverted_prices: u64,
    pub fields: Vec<FieldQuality>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldQuality {
    pub source: String,
    pub field: String,
    /// Missing among accepted rows, before imputation.
    pub nulls: u64,
    pub null_share: f64,
    /// Rows quarantined because this field's value could not be parsed.
    pub invalid: u64,
    pub imputed: u64,
}

impl SourceQuality {
    /// rows read = rows accepted + rows quarantined, over every file ingested so far.
    pub fn balanced(&self) -> bool {
        self.rows_read == self.rows_accepted + self.rows_quarantined
    }
}

pub(crate) fn collect(
    kind: EntityKind,
    rows: &[WorkRow],
    removed: &[Removal],
    nulls_before: &HashMap<(String, &'static str), u64>,
    sources: &mut BTreeMap<String, SourceQuality>,
    fields: &mut Vec<FieldQuality>,
) {
    let mut imputed: HashMap<(&str, &str), u64> = HashMap::new();
    for r in rows {
        let s = sources
            .entry(r.source.clone())
            .or_insert_with(|| SourceQuality {
                source: r.source.clone(),
                platform: r.platform.clone(),
                kind: kind.to_string(),
                ..Default::default()
            });
        s.rows_clean += 1;
        if !r.outlier_reasons.is_empty() {
            s.outliers += 1;
        }
        for reason in &r.outlier_reasons {
            *s.outliers_by_reason.entry(reason.clone()).or_insert(0) += 1;
        }
        if unconverted_price(kind, r) {
            s.unconverted_prices += 1;
        }
        for f in &r.imputed {
            *imputed.entry((r.source.as_str(), f)).or_insert(0) += 1;
        }
    }
    for d in removed {
        if let Some(s) = sources.get_mut(&d.source) {
            s.duplicates_removed += 1;
            *s.duplicates_by_reason
                .entry(d.reason.to_string())
                .or_insert(0) += 1;
        }
    }
    for s in sources.values().filter(|s| s.kind == kind.as_str()) {
        let accepted = s.rows_clean + s.duplicates_removed;
        for f in kind.fields() {
            let nulls = nulls_before
                .get(&(s.source.clone(), f.name))
                .copied()
                .unwrap_or(0);
            fields.push(FieldQuality {
                source: s.source.clone(),
                field: f.name.to_string(),
                nulls,
                null_share: if accepted == 0 {
                    0.0
                } else {
                    nulls as f64 / accepted as f64
                },
                invalid: 0,
                imputed: imputed
                    .get(&(s.source.as_str(), f.name))
                    .copied()
                    .unwrap_or(0),
            });
        }
    }
}

/// Adds ingest's accounting (from the manifest and the quarantine table) and sources that
/// have no accepted rows at all.
pub(crate) fn finish(
    project: &Project,
    tx: &Transaction<'_>,
    mut sources: BTreeMap<String, SourceQuality>,
    mut fields: Vec<FieldQuality>,
) -> Result<QualityReport, CoreError> {
    for sc in &project.config.sources {
        let s = sources
            .entry(sc.name.clone())
            .or_insert_with(|| SourceQuality {
                source: sc.name.clone(),
                platform: sc.platform.clone(),
                kind: sc.kind.to_string(),
                ..Default::default()
            });
        if let Some(files) = tx.next.ingested.get(&sc.name) {
            s.rows_read = files.values().map(|f| f.rows_read).sum();
            s.rows_accepted = files.values().map(|f| f.rows_accepted).sum();
            s.rows_quarantined = files.values().map(|f| f.rows_quarantined).sum();
        }
        if !fields.iter().any(|f| f.source == sc.name) {
            fields.extend(sc.kind.fields().iter().map(|f| FieldQuality {
                source: sc.name.clone(),
                field: f.name.to_string(),
                nulls: 0,
                null_share: 0.0,
                invalid: 0,
                imputed: 0,
            }));
        }
    }
    if let Some((schema, batches)) = tx.read_table(quarantine::NAME)? {
        let col = |n: &str| {
            schema
                .index_of(n)
                .map_err(|_| CoreError::Schema(format!("quarantine has no column {n}")))
        };
        let (src, field, reason) = (
            col(quarantine::source)?,
            col(quarantine::field)?,
            col(quarantine::reason)?,
        );
        let mut invalid: HashMap<(String, String), u64> = HashMap::new();
        for batch in &batches {
            for row in batch_to_rows(batch)? {
                let source = row[src].render();
                let reason = row[reason].render();
                if let Some(s) = sources.get_mut(&source) {
                    *s.quarantined_by_reason.entry(reason.clone()).or_insert(0) += 1;
                }
                if reason == "invalid_value" {
                    *invalid.entry((source, row[field].render())).or_insert(0) += 1;
                }
            }
        }
        for f in &mut fields {
            f.invalid = invalid
                .get(&(f.source.clone(), f.field.clone()))
                .copied()
                .unwrap_or(0);
        }
    }
    let mut sources: Vec<SourceQuality> = sources.into_values().collect();
    for s in &mut sources {
        s.fields = fields
            .iter()
            .filter(|f| f.source == s.source)
            .cloned()
            .collect();
    }
    Ok(QualityReport { sources })
}

shopfuse_core::table! {
    /// One row per source: its row accounting from ingest to clean.
    pub mod quality_sources("quality_sources") {
        /// The `[[sources]]` entry.
        source: Text;
        /// Its platform.
        platform: Text;
        /// Its entity kind.
        kind: Text;
        /// Rows read from its files, over every file ingested so far.
        rows_read: Int;
        /// Rows accepted into raw_<kind>.
        rows_accepted: Int;
        /// Rows quarantined.
        rows_quarantined: Int;
        /// Quarantined rows per reason, as a JSON object.
        quarantined_by_reason: Text;
        /// Rows clean removed as duplicates.
        duplicates_removed: Int;
        /// Removed duplicates per reason, as a JSON object.
        duplicates_by_reason: Text;
        /// Rows in clean_<kind>.
        rows_clean: Int;
        /// Rows flagged as outliers.
        outliers: Int;
        /// Outliers per reason, as a JSON object.
        outliers_by_reason: Text;
        /// Prices in a currency without a rate in `[currency.rates]`.
        unconverted_prices: Int;
    }
}

shopfuse_core::table! {
    /// One row per source and canonical field: missing and invalid values.
    pub mod quality_fields("quality_fields") {
        /// The `[[sources]]` entry.
        source: Text;
        /// The canonical field.
        field: Text;
        /// Rows where it is missing after ingest.
        nulls: Int;
        /// nulls / accepted rows.
        null_share: Float;
        /// Rows quarantined because this field's value could not be parsed.
        invalid: Int;
        /// Missing values a `[clean.missing]` policy filled.
        imputed: Int;
    }
}

fn sources_schema() -> SchemaRef {
    quality_sources::TABLE.schema()
}

fn fields_schema() -> SchemaRef {
    quality_fields::TABLE.schema()
}

impl QualityReport {
    pub(crate) fn write(&self, tx: &mut Transaction<'_>) -> Result<(), CoreError> {
        let json = |m: &BTreeMap<String, u64>| {
            Value::Text(serde_json::to_string(m).expect("map serialises"))
        };
        let int = |v: u64| Value::Int(v as i64);
        let rows: Vec<Vec<Value>> = self
            .sources
            .iter()
            .map(|s| {
                vec![
                    Value::Text(s.source.clone()),
                    Value::Text(s.platform.clone()),
                    Value::Text(s.kind.clone()),
                    int(s.rows_read),
                    int(s.rows_accepted),
                    int(s.rows_quarantined),
                    json(&s.quarantined_by_reason),
                    int(s.duplicates_removed),
                    json(&s.duplicates_by_reason),
                    int(s.rows_clean),
                    int(s.outliers),
                    json(&s.outliers_by_reason),
                    int(s.unconverted_prices),
                ]
            })
            .collect();
        let schema = sources_schema();
        tx.replace(SOURCES_TABLE, &schema, &[rows_to_batch(&schema, &rows)?])?;
        let rows: Vec<Vec<Value>> = self
            .sources
            .iter()
            .flat_map(|s| &s.fields)
            .map(|f| {
                vec![
                    Value::Text(f.source.clone()),
                    Value::Text(f.field.clone()),
                    int(f.nulls),
                    Value::Float(f.null_share),
                    int(f.invalid),
                    int(f.imputed),
                ]
            })
            .collect();
        let schema = fields_schema();
        tx.replace(FIELDS_TABLE, &schema, &[rows_to_batch(&schema, &rows)?])?;
        Ok(())
    }

    /// The report of the last committed run, or `None` when no run has cleaned yet.
    pub fn load(store: &TableStore) -> Result<Option<QualityReport>, CoreError> {
        let Some((_, source_batches)) = store.read_table(SOURCES_TABLE)? else {
            return Ok(None);
        };
        let Some((_, field_batches)) = store.read_table(FIELDS_TABLE)? else {
            return Ok(None);
        };
        let mut fields: Vec<FieldQuality> = Vec::new();
        for batch in &field_batches {
            for r in batch_to_rows(batch)? {
                fields.push(FieldQuality {
                    source: r[0].render(),
                    field: r[1].render(),
                    nulls: r[2].as_i64().unwrap_or(0) as u64,
                    null_share: r[3].as_f64().unwrap_or(0.0),
                    invalid: r[4].as_i64().unwrap_or(0) as u64,
                    imputed: r[5].as_i64().unwrap_or(0) as u64,
                });
            }
        }
        let map = |v: &Value| -> Result<BTreeMap<String, u64>, CoreError> {
            Ok(serde_json::from_str(&v.render())?)
        };
        let int = |v: &Value| v.as_i64().unwrap_or(0) as u64;
        let mut sources = Vec::new();
        for batch in &source_batches {
            for r in batch_to_rows(batch)? {
                let source = r[0].render();
                sources.push(SourceQuality {
                    fields: fields
                        .iter()
                        .filter(|f| f.source == source)
                        .cloned()
                        .collect(),
                    source,
                    platform: r[1].render(),
                    kind: r[2].render(),
                    rows_read: int(&r[3]),
                    rows_accepted: int(&r[4]),
                    rows_quarantined: int(&r[5]),
                    quarantined_by_reason: map(&r[6])?,
                    duplicates_removed: int(&r[7]),
                    duplicates_by_reason: map(&r[8])?,
                    rows_clean: int(&r[9]),
                    outliers: int(&r[10]),
                    outliers_by_reason: map(&r[11])?,
                    unconverted_prices: int(&r[12]),
                });
            }
        }
        Ok(Some(QualityReport { sources }))
    }

    /// Plain-text rendering for terminals.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let reasons = |m: &BTreeMap<String, u64>| {
            if m.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    m.iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        };
        for s in &self.sources {
            let _ = writeln!(out, "source {} ({} {})", s.source, s.platform, s.kind);
            let _ = writeln!(
                out,
                "  rows read {}  accepted {}  quarantined {}{}  [{}]",
                s.rows_read,
                s.rows_accepted,
                s.rows_quarantined,
                reasons(&s.quarantined_by_reason),
                if s.balanced() {
                    "balanced"
                } else {
                    "UNBALANCED"
                }
            );
            let _ = writeln!(
                out,
                "  duplicates removed {}{}",
                s.duplicates_removed,
                reasons(&s.duplicates_by_reason)
            );
            let _ = writeln!(
                out,
                "  outliers flagged {}{}",
                s.outliers,
                reasons(&s.outliers_by_reason)
            );
            if s.unconverted_prices > 0 {
                let _ = writeln!(
                    out,
                    "  prices without a rate to the base currency {}",
                    s.unconverted_prices
                );
            }
            let _ = writeln!(out, "  rows clean {}", s.rows_clean);
            let _ = writeln!(
                out,
                "  {:<16} {:>8} {:>7} {:>8} {:>8}",
                "field", "nulls", "null%", "invalid", "imputed"
            );
            for f in &s.fields {
                let _ = writeln!(
                    out,
                    "  {:<16} {:>8} {:>6.1}% {:>8} {:>8}",
                    f.field,
                    f.nulls,
                    f.null_share * 100.0,
                    f.invalid,
                    f.imputed
                );
            }
        }
        out
    }
}
