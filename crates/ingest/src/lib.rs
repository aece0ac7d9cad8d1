//! Ingest: reads every declared source into `raw_<kind>` tables, and every row it cannot
//! accept into `quarantine` with the file, row, field and reason. For each file,
//! rows read = rows accepted + rows quarantined.
//!
//! A file is identified by its content hash and its source's mapping fingerprint: a file
//! already ingested unchanged is skipped (re-runs are idempotent), a new file in a glob is
//! added, and a file rewritten in place replaces what it contributed before.

pub mod encoding;
pub mod json_fields;
pub mod mapping;
pub mod parse;
pub mod pii;
pub mod preset;
pub mod reader;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use shopfuse_core::config::{FileFormat, SourceConfig};
use shopfuse_core::schema::raw_schema;
use shopfuse_core::store::IngestedFile;
use shopfuse_core::tombstone::Tombstones;
use shopfuse_core::value::rows_to_batch;
use shopfuse_core::{CoreError, EntityKind, Progress, Project, Transaction, Value};

use crate::mapping::RowMapper;
use crate::pii::Pseudonymiser;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Writing a raw table or the quarantine failed; the source names the file.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A `[[sources]]` path is not a valid glob pattern.
    #[error("source {source_name:?}: bad path pattern {pattern:?}")]
    Pattern {
        source_name: String,
        pattern: String,
        source: glob::PatternError,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct FileFailure {
    pub path: String,
    pub error: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceSummary {
    pub source: String,
    pub platform: String,
    pub kind: String,
    pub files_matched: usize,
    pub files_ingested: usize,
    pub files_unchanged: usize,
    pub files_failed: Vec<FileFailure>,
    /// Files ingested by an earlier run that no longer match the pattern; their rows are kept.
    pub files_missing: Vec<String>,
    /// This run.
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_quarantined: u64,
    pub quarantined_by_reason: BTreeMap<String, u64>,
    /// Everything committed for this source, this run included.
    pub total_rows_read: u64,
    pub total_rows_accepted: u64,
    pub total_rows_quarantined: u64,
    /// Rows an erasure removed since they were ingested.
    pub total_rows_erased: u64,
}

impl SourceSummary {
    /// The accounting invariant, for this run and for everything committed.
    pub fn balanced(&self) -> bool {
        self.rows_read == self.rows_accepted + self.rows_quarantined
            && self.total_rows_read
                == self.total_rows_accepted + self.total_rows_quarantined + self.total_rows_erased
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestSummary {
    pub sources: Vec<SourceSummary>,
    pub bytes_read: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
}

impl IngestSummary {
    pub fn failed_files(&self) -> usize {
        self.sources.iter().map(|s| s.files_failed.len()).sum()
    }
    pub fn rows_read(&self) -> u64 {
        self.sources.iter().map(|s| s.rows_read).sum()
    }
}

shopfuse_core::table! {
    /// One row per rejected source row: where it was and why, so nothing is lost (rows read =
    /// rows accepted + rows quarantined). Rows of kinds with personal data keep no raw text.
    pub mod quarantine("quarantine") {
        /// The `[[sources]]` entry.
        source: Text;
        /// Its platform.
        platform: Text;
        /// Its entity kind.
        kind: Text;
        /// The source file, relative to the project.
        file: Text;
        /// The line an editor shows.
        row: Int;
        /// The canonical field that failed, when one did.
        field: Text null;
        /// The source column of that field.
        column: Text null;
        /// invalid_value, missing_required, malformed_row, or erased (the account was erased
        /// on request; no raw text is kept).
        reason: Text;
        /// What was wrong and how to fix it.
        message: Text;
        /// The raw line (empty for kinds with personal data).
        raw: Text;
    }
}

shopfuse_core::table! {
    /// One row per ingested source file: its content hash (what makes re-runs incremental)
    /// and its row accounting.
    pub mod ingest_files("ingest_files") {
        /// The `[[sources]]` entry.
        source: Text;
        /// Its platform.
        platform: Text;
        /// Its entity kind.
        kind: Text;
        /// The file, relative to the project.
        path: Text;
        /// SHA-256 of the file's bytes when ingested.
        content_sha256: Text;
        /// The encoding it was read with (detected or declared).
        encoding: Text;
        /// Rows read.
        rows_read: Int;
        /// Rows accepted into raw_<kind>.
        rows_accepted: Int;
        /// Rows quarantined.
        rows_quarantined: Int;
        /// When it was ingested (RFC 3339).
        ingested_at: Text;
        /// The store version that ingested it.
        version: Int;
    }
}

pub const QUARANTINE_TABLE: &str = quarantine::NAME;
pub const INGEST_FILES_TABLE: &str = ingest_files::NAME;

pub fn quarantine_schema() -> SchemaRef {
    quarantine::TABLE.schema()
}

fn ingest_files_schema() -> SchemaRef {
    ingest_files::TABLE.schema()
}

struct FileJob<'a> {
    source: &'a SourceConfig,
    /// Position of `source` in `[[sources]]`.
    source_index: usize,
    /// Fields of the source's kind that `[privacy] pii` marks as personal.
    marked: Vec<String>,
    rel: String,
    bytes: Vec<u8>,
    sha: String,
}

struct FileOutcome {
    entry: IngestedFile,
    by_reason: BTreeMap<String, u64>,
    raw_part: String,
    quarantine_part: Option<String>,
}

/// Ingests every source of `project` into `tx`. Files that cannot be read at all (unknown
/// format, no column for a required field) are reported in the summary and left for the next
/// run; they change nothing.
pub fn ingest(
    project: &Project,
    tx: &mut Transaction<'_>,
    progress: &dyn Progress,
) -> Result<IngestSummary, IngestError> {
    let started = Instant::now();
    let pseudonymiser = Pseudonymiser::new(&project.secret()?);
    let tombstones = Tombstones::load(project)?;
    let now = chrono::Utc::now().to_rfc3339();
    let (mut summaries, jobs) = plan(project, tx)?;
    let bytes_read: u64 = jobs.iter().map(|j| j.bytes.len() as u64).sum();
    progress.start("ingest (bytes)", bytes_read);
    let version = tx.version();
    let tx_ref: &Transaction = tx;
    let outcomes: Vec<(usize, Result<FileOutcome, FileFailure>)> = jobs
        .par_iter()
        .map(|job| {
            let out = ingest_file(tx_ref, job, &pseudonymiser, &tombstones, &now, version);
            progress.advance(job.bytes.len() as u64);
            (job.source_index, out)
        })
        .collect();
    progress.finish();
    for (index, outcome) in outcomes {
        let source = &project.config.sources[index];
        record_outcome(tx, source, &mut summaries[index], outcome);
    }
    ensure_tables(project, tx)?;
    write_ingest_files_table(tx)?;
    add_totals(tx, &mut summaries);
    let seconds = started.elapsed().as_secs_f64();
    let rows: u64 = summaries.iter().map(|s| s.rows_read).sum();
    Ok(IngestSummary {
        sources: summaries,
        bytes_read,
        seconds,
        rows_per_second: rows as f64 / seconds.max(1e-9),
    })
}

/// Reads every source's matching files and keeps those whose bytes or mapping changed since
/// they were last ingested; one summary per source, in `[[sources]]` order.
fn plan<'p>(
    project: &'p Project,
    tx: &Transaction<'_>,
) -> Result<(Vec<SourceSummary>, Vec<FileJob<'p>>), IngestError> {
    let mut summaries: Vec<SourceSummary> = Vec::new();
    let mut jobs: Vec<FileJob> = Vec::new();
    for (source_index, source) in project.config.sources.iter().enumerate() {
        let mut summary = SourceSummary {
            source: source.name.clone(),
            platform: source.platform.clone(),
            kind: source.kind.to_string(),
            ..Default::default()
        };
        let files = matching_files(&project.root, source)?;
        summary.files_matched = files.len();
        let previous = tx
            .next
            .ingested
            .get(&source.name)
            .cloned()
            .unwrap_or_default();
        let marked = project.config.privacy.marked(source.kind);
        let fingerprint = source_fingerprint(source, &marked);
        for path in &files {
            let rel = relative(&project.root, path);
            let bytes = match std::fs::read(path) {
                Ok(mut b) if source.append_only => {
                    b.truncate(shopfuse_core::event_log::whole_lines(&b).len());
                    b
                }
                Ok(b) => b,
                Err(e) => {
                    summary.files_failed.push(FileFailure {
                        path: rel,
                        error: format!("cannot read: {e}"),
                    });
                    continue;
                }
            };
            let sha = hex::encode(Sha256::digest(&bytes));
            match previous.get(&rel) {
                Some(prev)
                    if prev.content_sha256 == sha && prev.config_fingerprint == fingerprint =>
                {
                    summary.files_unchanged += 1;
                }
                _ => jobs.push(FileJob {
                    source,
                    source_index,
                    marked: marked.clone(),
                    rel,
                    bytes,
                    sha,
                }),
            }
        }
        let matched: Vec<String> = files.iter().map(|p| relative(&project.root, p)).collect();
        summary.files_missing = previous
            .keys()
            .filter(|k| !matched.contains(k))
            .cloned()
            .collect();
        summaries.push(summary);
    }
    Ok((summaries, jobs))
}

/// Adds one file's parts to the tables (replacing what an earlier version of the file
/// contributed) and its counts to its source's summary.
fn record_outcome(
    tx: &mut Transaction<'_>,
    source: &SourceConfig,
    summary: &mut SourceSummary,
    outcome: Result<FileOutcome, FileFailure>,
) {
    let out = match outcome {
        Err(failure) => return summary.files_failed.push(failure),
        Ok(out) => out,
    };
    let kind = source.kind;
    // A file rewritten in place: what it contributed before is replaced.
    if let Some(prev) = tx
        .next
        .ingested
        .get(&source.name)
        .and_then(|m| m.get(&out.entry.path))
        .cloned()
    {
        tx.remove_files(&kind.raw_table(), &prev.parts);
        tx.remove_files(QUARANTINE_TABLE, &prev.parts);
    }
    tx.add_file(&kind.raw_table(), out.raw_part);
    if let Some(q) = out.quarantine_part {
        tx.add_file(QUARANTINE_TABLE, q);
    }
    summary.files_ingested += 1;
    summary.rows_read += out.entry.rows_read;
    summary.rows_accepted += out.entry.rows_accepted;
    summary.rows_quarantined += out.entry.rows_quarantined;
    for (reason, n) in out.by_reason {
        *summary.quarantined_by_reason.entry(reason).or_default() += n;
    }
    tx.next
        .ingested
        .entry(source.name.clone())
        .or_default()
        .insert(out.entry.path.clone(), out.entry);
}

/// Every declared kind and the quarantine exist as tables, even when empty, so SQL over
/// them answers 0 rather than "table not found".
fn ensure_tables(project: &Project, tx: &mut Transaction<'_>) -> Result<(), CoreError> {
    let kinds: std::collections::BTreeSet<EntityKind> =
        project.config.sources.iter().map(|s| s.kind).collect();
    for kind in kinds {
        if !tx.next.tables.contains_key(&kind.raw_table()) {
            let schema = raw_schema(kind);
            tx.append(
                &kind.raw_table(),
                "empty",
                &schema,
                &[rows_to_batch(&schema, &[])?],
            )?;
        }
    }
    if !tx.next.tables.contains_key(QUARANTINE_TABLE) {
        let schema = quarantine_schema();
        tx.append(
            QUARANTINE_TABLE,
            "empty",
            &schema,
            &[rows_to_batch(&schema, &[])?],
        )?;
    }
    Ok(())
}

/// Each source's totals over every file ingested so far.
fn add_totals(tx: &Transaction<'_>, summaries: &mut [SourceSummary]) {
    for summary in summaries {
        if let Some(files) = tx.next.ingested.get(&summary.source) {
            for f in files.values() {
                summary.total_rows_read += f.rows_read;
                summary.total_rows_accepted += f.rows_accepted;
                summary.total_rows_quarantined += f.rows_quarantined;
                summary.total_rows_erased += f.rows_erased;
            }
        }
    }
}

pub fn matching_files(root: &Path, source: &SourceConfig) -> Result<Vec<PathBuf>, IngestError> {
    let pattern = root.join(&source.path).to_string_lossy().into_owned();
    let paths = glob::glob(&pattern).map_err(|e| IngestError::Pattern {
        source_name: source.name.clone(),
        pattern: source.path.clone(),
        source: e,
    })?;
    let mut files: Vec<PathBuf> = paths
        .filter_map(|p| p.ok())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// What shapes a file's parsed rows: the source's mapping, the canonical fields of its kind
/// (so a new derived field re-ingests old files) and the fields marked as personal.
fn source_fingerprint(source: &SourceConfig, marked: &[String]) -> String {
    use sha2::{Digest, Sha256};
    let fields: Vec<&str> = source.kind.fields().iter().map(|f| f.name).collect();
    let text = format!(
        "{}|{}|{}",
        source.fingerprint(),
        fields.join(","),
        marked.join(",")
    );
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

fn ingest_file(
    tx: &Transaction<'_>,
    job: &FileJob<'_>,
    pseudonymiser: &Pseudonymiser,
    tombstones: &Tombstones,
    now: &str,
    version: u64,
) -> Result<FileOutcome, FileFailure> {
    let source = job.source;
    let fail = |error: String| FileFailure {
        path: job.rel.clone(),
        error,
    };
    let format = source
        .format
        .or_else(|| FileFormat::from_path(Path::new(&job.rel)))
        .ok_or_else(|| {
            fail(
                "unknown file format; set `format` (csv, tsv, json, jsonl, parquet) on the source"
                    .into(),
            )
        })?;
    let table = reader::read(&job.bytes, format, source.encoding.as_deref()).map_err(&fail)?;
    let mapper = RowMapper::new(source, &table.header, &job.marked).map_err(&fail)?;
    let rows = map_records(job, &table, &mapper, pseudonymiser, tombstones);
    let (raw_part, quarantine_part) =
        write_parts(tx, job, &rows).map_err(|e| fail(format!("cannot write table file: {e}")))?;
    let mut parts = vec![raw_part.clone()];
    parts.extend(quarantine_part.clone());
    let entry = IngestedFile {
        source: source.name.clone(),
        platform: source.platform.clone(),
        kind: source.kind.to_string(),
        path: job.rel.clone(),
        content_sha256: job.sha.clone(),
        config_fingerprint: source_fingerprint(source, &job.marked),
        encoding: table.encoding.clone(),
        rows_read: table.records.len() as u64,
        rows_accepted: rows.accepted.len() as u64,
        rows_quarantined: rows.quarantined.len() as u64,
        rows_erased: 0,
        parts,
        ingested_at: now.to_string(),
        version,
    };
    debug_assert_eq!(
        entry.rows_read,
        entry.rows_accepted + entry.rows_quarantined
    );
    Ok(FileOutcome {
        entry,
        by_reason: rows.by_reason,
        raw_part,
        quarantine_part,
    })
}

/// A rejected row: its reason and its quarantine columns.
type QuarantinedRow = (&'static str, Vec<Value>);

/// A file's rows: accepted (canonical fields, then provenance), quarantined (quarantine
/// columns), and the quarantined count per reason.
struct MappedRows {
    accepted: Vec<Vec<Value>>,
    quarantined: Vec<Vec<Value>>,
    by_reason: BTreeMap<String, u64>,
}

/// Maps every record onto the canonical schema (in parallel); a record that does not map is
/// quarantined with its field, column, reason and message.
fn map_records(
    job: &FileJob<'_>,
    table: &reader::SourceTable,
    mapper: &RowMapper,
    pseudonymiser: &Pseudonymiser,
    tombstones: &Tombstones,
) -> MappedRows {
    let source = job.source;
    let kind = source.kind;
    let account_field = kind
        .field_index("account_id")
        .filter(|_| !tombstones.is_empty());
    let erased = |values: &[Value]| {
        account_field
            .and_then(|i| values[i].as_str())
            .is_some_and(|a| tombstones.is_erased(&source.platform, a))
    };
    let has_pii = kind.fields().iter().any(|f| f.pii.is_some()) || !job.marked.is_empty();
    let mapped: Vec<Result<Vec<Value>, QuarantinedRow>> = table
        .records
        .par_iter()
        .map_init(
            || pseudonymiser.memoised(),
            |memo, record| {
                let provenance = || {
                    [
                        Value::Text(source.name.clone()),
                        Value::Text(source.platform.clone()),
                        Value::Text(job.rel.clone()),
                        Value::Int(record.row as i64),
                    ]
                };
                let result = match &record.cells {
                    Err(malformed) => Err((None, None, "malformed_row", malformed.reason.clone())),
                    Ok(cells) => mapper
                        .map_row(cells, memo)
                        .map_err(|e| (e.field, e.column, e.reason, e.message)),
                };
                let (field, column, reason, message) = match result {
                    Ok(values) if erased(&values) => (
                        Some("account_id"),
                        None,
                        "erased",
                        "the account was erased on request; its rows are not ingested again"
                            .to_string(),
                    ),
                    Ok(mut values) => {
                        values.extend(provenance());
                        return Ok(values);
                    }
                    Err(e) => e,
                };
                // An erased account's row keeps no text at all.
                let raw = if reason == "erased" {
                    String::new()
                } else {
                    redacted_raw(record, &table.header, mapper, pseudonymiser, has_pii)
                };
                let [src, platform, file, row] = provenance();
                // In the order of the quarantine table's columns.
                let quarantined = vec![
                    src,
                    platform,
                    Value::Text(kind.to_string()),
                    file,
                    row,
                    field.map_or(Value::Null, |f| Value::Text(f.to_string())),
                    column.map_or(Value::Null, Value::Text),
                    Value::Text(reason.to_string()),
                    Value::Text(format!("{}, row {}: {message}", job.rel, record.row)),
                    Value::Text(raw),
                ];
                Err((reason, quarantined))
            },
        )
        .collect();
    let mut rows = MappedRows {
        accepted: Vec::with_capacity(mapped.len()),
        quarantined: Vec::new(),
        by_reason: BTreeMap::new(),
    };
    for m in mapped {
        match m {
            Ok(v) => rows.accepted.push(v),
            Err((reason, q)) => {
                *rows.by_reason.entry(reason.to_string()).or_default() += 1;
                rows.quarantined.push(q);
            }
        }
    }
    rows
}

/// Rows per Arrow batch of a raw table part.
const BATCH_ROWS: usize = 32 * 1024;

/// Writes the file's accepted rows as a part of `raw_<kind>` and its quarantined rows (if
/// any) as a part of `quarantine`; the parts join their tables when the outcome is recorded.
fn write_parts(
    tx: &Transaction<'_>,
    job: &FileJob<'_>,
    rows: &MappedRows,
) -> Result<(String, Option<String>), CoreError> {
    let kind = job.source.kind;
    let stem = format!("{}--{}", job.source.name, &job.sha[..16]);
    let schema = raw_schema(kind);
    // Built in parallel chunks: a 40 MB event log is one file, and one job of the pool.
    let batches = rows
        .accepted
        .par_chunks(BATCH_ROWS)
        .map(|chunk| rows_to_batch(&schema, chunk))
        .collect::<Result<Vec<_>, CoreError>>()?;
    let raw_part = tx.write_file(&kind.raw_table(), &stem, &schema, &batches)?;
    if rows.quarantined.is_empty() {
        return Ok((raw_part, None));
    }
    let qs = quarantine_schema();
    let batch = rows_to_batch(&qs, &rows.quarantined)?;
    let quarantine_part = tx.write_file(QUARANTINE_TABLE, &stem, &qs, &[batch])?;
    Ok((raw_part, Some(quarantine_part)))
}

/// The quarantined row as read, with personal data pseudonymised. A row whose structure is
/// broken cannot be told apart field by field, so for kinds that carry personal data its text
/// is withheld rather than risk a phone number in clear; the file and row say where it is.
fn redacted_raw(
    record: &reader::SourceRecord,
    header: &[String],
    mapper: &RowMapper,
    p: &Pseudonymiser,
    has_pii: bool,
) -> String {
    const MAX: usize = 2000;
    match &record.cells {
        Ok(cells) => {
            let mut obj = serde_json::Map::new();
            for (i, (name, cell)) in header.iter().zip(cells).enumerate() {
                let v = match (cell, mapper.pii_columns.iter().find(|(c, _)| *c == i)) {
                    (Some(c), Some((_, kind))) => p
                        .pseudonymise(*kind, c)
                        .map(serde_json::Value::String)
                        .unwrap_or_default(),
                    (Some(c), None) => serde_json::Value::String(c.clone()),
                    (None, _) => serde_json::Value::Null,
                };
                obj.insert(name.clone(), v);
            }
            truncate(serde_json::Value::Object(obj).to_string(), MAX)
        }
        Err(malformed) if has_pii => format!(
            "[withheld: {} bytes of a malformed row that may hold personal data]",
            malformed.raw.len()
        ),
        Err(malformed) => truncate(malformed.raw.clone(), MAX),
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn write_ingest_files_table(tx: &mut Transaction<'_>) -> Result<(), CoreError> {
    let rows: Vec<Vec<Value>> = tx
        .next
        .ingested
        .values()
        .flat_map(|m| m.values())
        .map(|f| {
            vec![
                Value::Text(f.source.clone()),
                Value::Text(f.platform.clone()),
                Value::Text(f.kind.clone()),
                Value::Text(f.path.clone()),
                Value::Text(f.content_sha256.clone()),
                Value::Text(f.encoding.clone()),
                Value::Int(f.rows_read as i64),
                Value::Int(f.rows_accepted as i64),
                Value::Int(f.rows_quarantined as i64),
                Value::Text(f.ingested_at.clone()),
                Value::Int(f.version as i64),
            ]
        })
        .collect();
    let schema = ingest_files_schema();
    let batch = rows_to_batch(&schema, &rows)?;
    tx.replace(INGEST_FILES_TABLE, &schema, &[batch])
}
