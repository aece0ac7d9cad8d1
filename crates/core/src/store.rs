//! The table store: Parquet files under `tables/<table>/`, made visible all at once by an
//! atomic commit of `.shopfuse/manifest.json`.
//!
//! Why a manifest instead of "every file in the directory": a run that is killed half-way
//! leaves new Parquet files behind; readers that follow the manifest never see them, and the
//! next writer deletes them. Files are never overwritten in place (each carries the version
//! that wrote it), so a committed file is immutable until a later commit drops it. After each
//! commit the directories hold exactly the committed files again, so DuckDB, pandas or Spark
//! can read `tables/<table>/*.parquet` directly.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{RecordBatch, RecordBatchReader};
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, IoContext, Result};
use crate::project::{Project, STATE_DIR, TABLES_DIR};

const MANIFEST: &str = "manifest.json";
const LOCK: &str = "lock";
/// Set to make a run abort right before its commit; used by the crash-safety tests.
pub const CRASH_BEFORE_COMMIT_ENV: &str = "SHOPFUSE_CRASH_BEFORE_COMMIT";

/// One source file as ingested: what it was, how it was read, and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestedFile {
    pub source: String,
    pub platform: String,
    pub kind: String,
    /// Relative to the project directory.
    pub path: String,
    pub content_sha256: String,
    pub config_fingerprint: String,
    pub encoding: String,
    pub rows_read: u64,
    pub rows_accepted: u64,
    pub rows_quarantined: u64,
    /// Rows removed since by an erasure (`shopfuse erase`): rows read = accepted +
    /// quarantined + erased.
    #[serde(default)]
    pub rows_erased: u64,
    /// Table files holding this file's rows (relative to `tables/`).
    pub parts: Vec<String>,
    pub ingested_at: String,
    pub version: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u64,
    #[serde(default)]
    pub committed_at: Option<String>,
    /// Table name → files relative to `tables/`, in read order.
    pub tables: BTreeMap<String, Vec<String>>,
    /// Source name → file path → what was ingested from it.
    #[serde(default)]
    pub ingested: BTreeMap<String, BTreeMap<String, IngestedFile>>,
    /// Table file (relative to `tables/`) → SHA-256 of its bytes, recorded as it was written:
    /// what a table *holds*, independent of which run wrote it, so a stage that rewrites a
    /// table with the same rows does not make the stages after it run again.
    #[serde(default)]
    pub file_sha256: BTreeMap<String, String>,
    /// Stage name → the inputs it last ran on; a stage whose inputs are unchanged is skipped.
    #[serde(default)]
    pub stages: BTreeMap<String, StageRecord>,
}

/// What a stage ran on the last time it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// Hash of the stage's settings and of the content of every table it reads.
    pub fingerprint: String,
    /// The version whose commit holds the stage's results.
    pub version: u64,
    /// The tables the stage wrote; if one of them is gone the stage runs again.
    pub outputs: Vec<String>,
    /// What the stage reported when it ran (its counts and its models' validation figures),
    /// as JSON; what `GET /api/v1/reports/evaluations` serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<serde_json::Value>,
    /// Wall-clock seconds the stage took when it last ran (what the dashboard's overview
    /// shows as stage timings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

impl Manifest {
    /// A fingerprint of `table`'s content: the hashes of its files in read order, `None` when
    /// the table does not exist. Files from before content hashes were recorded count by name.
    pub fn table_fingerprint(&self, table: &str) -> Option<String> {
        use sha2::{Digest, Sha256};
        let files = self.tables.get(table)?;
        let mut hasher = Sha256::new();
        for f in files {
            match self.file_sha256.get(f) {
                Some(sha) => hasher.update(sha.as_bytes()),
                None => hasher.update(format!("file:{f}").as_bytes()),
            }
            hasher.update(b"\n");
        }
        Some(hex::encode(hasher.finalize()))
    }
}

#[derive(Debug, Clone)]
pub struct TableStore {
    tables_dir: PathBuf,
    state_dir: PathBuf,
}

impl TableStore {
    pub fn open(project: &Project) -> Self {
        Self::at(&project.root)
    }

    pub fn at(root: &Path) -> Self {
        Self {
            tables_dir: root.join(TABLES_DIR),
            state_dir: root.join(STATE_DIR),
        }
    }

    pub fn tables_dir(&self) -> &Path {
        &self.tables_dir
    }

    /// The last committed state; empty for a project that never ran.
    pub fn manifest(&self) -> Result<Manifest> {
        let path = self.state_dir.join(MANIFEST);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                CoreError::Store(format!(
                    "{}: unreadable manifest ({e}); restore it from backup",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(CoreError::Io { path, source: e }),
        }
    }

    pub fn table_names(&self) -> Result<Vec<String>> {
        Ok(self.manifest()?.tables.keys().cloned().collect())
    }

    /// Every batch of `table` as of `manifest`; `None` when the table does not exist there.
    pub fn read_at(
        &self,
        manifest: &Manifest,
        table: &str,
    ) -> Result<Option<(SchemaRef, Vec<RecordBatch>)>> {
        self.read_projected_at(manifest, table, None)
    }

    /// Like [`Self::read_at`], only the named columns (those the table has) when `columns` is
    /// given: Parquet decodes no other column, so a stage that needs four columns of a wide
    /// table pays for four.
    fn read_projected_at(
        &self,
        manifest: &Manifest,
        table: &str,
        columns: Option<&[&str]>,
    ) -> Result<Option<(SchemaRef, Vec<RecordBatch>)>> {
        if !manifest.tables.contains_key(table) {
            return Ok(None);
        }
        let mut schema = None;
        let mut batches = Vec::new();
        for path in self.table_files(manifest, table) {
            let file = match File::open(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    // Say how many more are gone, so the message covers the whole damage.
                    let mut missing = self.missing_files(manifest);
                    if missing.is_empty() {
                        missing.push(path);
                    }
                    return Err(self.missing_files_error(missing));
                }
                opened => opened.at(&path)?,
            };
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)?.with_batch_size(65_536);
            let builder = match columns {
                Some(columns) => {
                    let mask = parquet::arrow::ProjectionMask::columns(
                        builder.parquet_schema(),
                        columns.iter().copied(),
                    );
                    builder.with_projection(mask)
                }
                None => builder,
            };
            let reader = builder.build()?;
            schema.get_or_insert_with(|| reader.schema());
            for batch in reader {
                batches.push(batch?);
            }
        }
        Ok(schema.map(|s| (s, batches)))
    }

    /// One file of a table (a path relative to `tables/`, as the manifest lists it).
    pub fn read_file(&self, rel: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let path = self.tables_dir.join(rel);
        let file = File::open(&path).at(&path)?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)?
            .with_batch_size(65_536)
            .build()?;
        let schema = reader.schema();
        let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
        Ok((schema, batches))
    }

    pub fn table_files(&self, manifest: &Manifest, table: &str) -> Vec<PathBuf> {
        manifest
            .tables
            .get(table)
            .map(|files| files.iter().map(|f| self.tables_dir.join(f)).collect())
            .unwrap_or_default()
    }

    /// Every committed batch of `table`; `None` when the table does not exist.
    pub fn read_table(&self, table: &str) -> Result<Option<(SchemaRef, Vec<RecordBatch>)>> {
        self.read_at(&self.manifest()?, table)
    }

    /// A committed table row by row with named columns; `None` when it does not exist.
    pub fn read_rows(&self, table: &str) -> Result<Option<crate::value::NamedRows>> {
        self.rows_at(&self.manifest()?, table, None)
    }

    /// Only `columns` of a committed table, row by row; `None` when it does not exist.
    pub fn read_columns(
        &self,
        table: &str,
        columns: &[&str],
    ) -> Result<Option<crate::value::NamedRows>> {
        self.rows_at(&self.manifest()?, table, Some(columns))
    }

    /// `table` as of `manifest` row by row, only `columns` when given.
    fn rows_at(
        &self,
        manifest: &Manifest,
        table: &str,
        columns: Option<&[&str]>,
    ) -> Result<Option<crate::value::NamedRows>> {
        self.read_projected_at(manifest, table, columns)?
            .map(|(schema, batches)| crate::value::NamedRows::from_batches(&schema, &batches))
            .transpose()
    }

    /// Starts a write. Only one writer at a time: a second one fails until the first ends.
    /// Fails with [`CoreError::MissingFiles`] when files the manifest lists are gone.
    pub fn begin(&self) -> Result<Transaction<'_>> {
        let (lock, committed) = self.lock_and_read()?;
        self.check_files(&committed)?;
        Ok(self.transaction(lock, committed))
    }

    /// Commits a manifest that forgets every table but those in `keep` whose files are all
    /// present, every stage record and every ingested-file record, then starts a write on it:
    /// the transaction a rebuild from the sources runs in. The forgetting is its own commit,
    /// so readers that go through the committed manifest (the embedding cache) see the same
    /// tables as the rebuild; if the rebuild then fails, the next run rebuilds. Returns the
    /// transaction with the names of the tables forgotten.
    pub fn begin_rebuild(
        &self,
        keep: &[&str],
        committed_at: String,
    ) -> Result<(Transaction<'_>, Vec<String>)> {
        let (lock, committed) = self.lock_and_read()?;
        let intact = |files: &Vec<String>| files.iter().all(|f| self.tables_dir.join(f).is_file());
        let mut rebuilt = Manifest {
            version: committed.version,
            committed_at: committed.committed_at.clone(),
            ..Manifest::default()
        };
        let mut forgotten = Vec::new();
        for (table, files) in &committed.tables {
            if keep.contains(&table.as_str()) && intact(files) {
                rebuilt.tables.insert(table.clone(), files.clone());
                for f in files {
                    if let Some(sha) = committed.file_sha256.get(f) {
                        rebuilt.file_sha256.insert(f.clone(), sha.clone());
                    }
                }
            } else {
                forgotten.push(table.clone());
            }
        }
        self.transaction(lock, rebuilt).commit(committed_at)?;
        Ok((self.begin()?, forgotten))
    }

    /// The lock, the committed manifest, and the files of a run that died before its commit
    /// cleared (they are unreachable).
    fn lock_and_read(&self) -> Result<(Lock, Manifest)> {
        std::fs::create_dir_all(&self.state_dir).at(&self.state_dir)?;
        std::fs::create_dir_all(&self.tables_dir).at(&self.tables_dir)?;
        let lock = Lock::acquire(self.state_dir.join(LOCK))?;
        let committed = self.manifest()?;
        self.collect_garbage(&committed)?;
        Ok((lock, committed))
    }

    fn transaction(&self, lock: Lock, committed: Manifest) -> Transaction<'_> {
        let mut next = committed;
        next.version += 1;
        Transaction {
            store: self,
            next,
            written: Default::default(),
            _lock: lock,
        }
    }

    /// The error for `missing` files (never empty).
    fn missing_files_error(&self, missing: Vec<PathBuf>) -> CoreError {
        CoreError::MissingFiles {
            manifest: self.state_dir.join(MANIFEST),
            count: missing.len(),
            first: missing.into_iter().next().unwrap_or_default(),
        }
    }

    /// Fails with [`CoreError::MissingFiles`] when a file `manifest` lists is not on disk.
    pub fn check_files(&self, manifest: &Manifest) -> Result<()> {
        let missing = self.missing_files(manifest);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(self.missing_files_error(missing))
        }
    }

    /// Files `manifest` lists that are not on disk.
    pub fn missing_files(&self, manifest: &Manifest) -> Vec<PathBuf> {
        manifest
            .tables
            .values()
            .flatten()
            .map(|f| self.tables_dir.join(f))
            .filter(|p| !p.is_file())
            .collect()
    }

    fn collect_garbage(&self, manifest: &Manifest) -> Result<()> {
        let live: BTreeSet<PathBuf> = manifest
            .tables
            .values()
            .flatten()
            .map(|f| self.tables_dir.join(f))
            .collect();
        let dirs = std::fs::read_dir(&self.tables_dir).at(&self.tables_dir)?;
        for dir in dirs {
            let dir = dir.at(&self.tables_dir)?.path();
            if !dir.is_dir() {
                continue;
            }
            let mut remaining = 0usize;
            for entry in std::fs::read_dir(&dir).at(&dir)? {
                let path = entry.at(&dir)?.path();
                if live.contains(&path) {
                    remaining += 1;
                } else {
                    std::fs::remove_file(&path).at(&path)?;
                }
            }
            if remaining == 0 {
                std::fs::remove_dir(&dir).at(&dir)?;
            }
        }
        Ok(())
    }
}

/// A set of table changes that becomes visible all at once on [`Transaction::commit`], or not
/// at all if the transaction is dropped or the process dies.
pub struct Transaction<'s> {
    store: &'s TableStore,
    /// The manifest as it will be committed.
    pub next: Manifest,
    /// Content hashes of the files this transaction wrote (written from several threads at
    /// once by ingest, hence the lock); moved into `next` as the files join tables.
    written: std::sync::Mutex<BTreeMap<String, String>>,
    _lock: Lock,
}

impl<'s> Transaction<'s> {
    /// The store this transaction writes to.
    pub fn store(&self) -> &'s TableStore {
        self.store
    }

    pub fn version(&self) -> u64 {
        self.next.version
    }

    /// A table as this transaction will commit it, including its own uncommitted writes.
    pub fn read_table(&self, table: &str) -> Result<Option<(SchemaRef, Vec<RecordBatch>)>> {
        self.store.read_at(&self.next, table)
    }

    /// A table as [`Self::read_table`] sees it, row by row with named columns.
    pub fn read_rows(&self, table: &str) -> Result<Option<crate::value::NamedRows>> {
        self.store.rows_at(&self.next, table, None)
    }

    /// Only `columns` of a table as this transaction will commit it, row by row.
    pub fn read_columns(
        &self,
        table: &str,
        columns: &[&str],
    ) -> Result<Option<crate::value::NamedRows>> {
        self.store.rows_at(&self.next, table, Some(columns))
    }

    /// Only `columns` of a table as this transaction will commit it, as Arrow batches (read
    /// them with [`crate::value::TextColumn`] and [`crate::value::IntColumn`]).
    pub fn read_column_batches(
        &self,
        table: &str,
        columns: &[&str],
    ) -> Result<Option<Vec<RecordBatch>>> {
        Ok(self
            .store
            .read_projected_at(&self.next, table, Some(columns))?
            .map(|(_, batches)| batches))
    }

    /// Writes `batches` as a new file of `table` and returns its path relative to `tables/`.
    /// The file is not part of the table until [`Self::add_file`] (or [`Self::replace`]).
    pub fn write_file(
        &self,
        table: &str,
        stem: &str,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<String> {
        self.write_file_streamed(table, stem, schema, batches.iter().cloned().map(Ok), false)
    }

    /// [`Self::write_file`] from batches made one at a time; with `row_group_per_batch` each
    /// is flushed as its own row group before the next is made, so a table larger than memory
    /// allows twice (a million-listing embedding cache) is never held as Arrow and Parquet at
    /// once.
    pub fn write_file_streamed(
        &self,
        table: &str,
        stem: &str,
        schema: &SchemaRef,
        batches: impl Iterator<Item = Result<RecordBatch>>,
        row_group_per_batch: bool,
    ) -> Result<String> {
        let rel = format!("{table}/{stem}.v{}.parquet", self.next.version);
        let path = self.store.tables_dir.join(&rel);
        let dir = path.parent().expect("table dir");
        std::fs::create_dir_all(dir).at(dir)?;
        let tmp = path.with_extension("parquet.tmp");
        {
            let file = File::create(&tmp).at(&tmp)?;
            let props = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .build();
            let hashing = HashingWriter {
                inner: file,
                hasher: sha2::Sha256::default(),
            };
            let mut writer = ArrowWriter::try_new(hashing, schema.clone(), Some(props))?;
            for b in batches {
                writer.write(&b?)?;
                if row_group_per_batch {
                    writer.flush()?;
                }
            }
            let hashing = writer.into_inner()?;
            hashing.inner.sync_all().at(&tmp)?;
            let sha = hex::encode(sha2::Digest::finalize(hashing.hasher));
            self.written
                .lock()
                .expect("no panic while holding the lock")
                .insert(rel.clone(), sha);
        }
        std::fs::rename(&tmp, &path).at(&path)?;
        Ok(rel)
    }

    pub fn add_file(&mut self, table: &str, rel: String) {
        self.next
            .tables
            .entry(table.to_string())
            .or_default()
            .push(rel);
    }

    /// Puts file `new` where `old` was in `table` and in the ingested files' parts (a file
    /// rewritten in place, e.g. with an erased customer's rows left out).
    pub fn replace_file(&mut self, table: &str, old: &str, new: String) {
        if let Some(files) = self.next.tables.get_mut(table) {
            for f in files.iter_mut().filter(|f| *f == old) {
                *f = new.clone();
            }
        }
        for file in self.next.ingested.values_mut().flat_map(|m| m.values_mut()) {
            for part in file.parts.iter_mut().filter(|p| *p == old) {
                *part = new.clone();
            }
        }
    }

    pub fn remove_files(&mut self, table: &str, rels: &[String]) {
        if let Some(files) = self.next.tables.get_mut(table) {
            files.retain(|f| !rels.contains(f));
        }
    }

    /// Appends one file to a table, creating the table if needed.
    pub fn append(
        &mut self,
        table: &str,
        stem: &str,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<String> {
        let rel = self.write_file(table, stem, schema, batches)?;
        self.add_file(table, rel.clone());
        Ok(rel)
    }

    /// Makes `batches` the whole content of `table`.
    pub fn replace(
        &mut self,
        table: &str,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<()> {
        let rel = self.write_file(table, "part", schema, batches)?;
        self.next.tables.insert(table.to_string(), vec![rel]);
        Ok(())
    }

    /// [`Self::replace`] from batches made one at a time, each written out as its own row
    /// group before the next is made: a table of tens of millions of rows (a million-listing
    /// project's candidate pairs) is never in memory whole.
    pub fn replace_streamed(
        &mut self,
        table: &str,
        schema: &SchemaRef,
        batches: impl Iterator<Item = Result<RecordBatch>>,
    ) -> Result<()> {
        let rel = self.write_file_streamed(table, "part", schema, batches, true)?;
        self.next.tables.insert(table.to_string(), vec![rel]);
        Ok(())
    }

    /// Makes the files `rels` (written by [`Self::write_file_streamed`], possibly from
    /// several threads at once) the whole content of `table`.
    pub fn replace_with_files(&mut self, table: &str, rels: Vec<String>) {
        self.next.tables.insert(table.to_string(), rels);
    }

    /// A fingerprint of `table` as this transaction will commit it (see
    /// [`Manifest::table_fingerprint`]), its own writes included.
    pub fn table_fingerprint(&mut self, table: &str) -> Option<String> {
        self.record_hashes();
        self.next.table_fingerprint(table)
    }

    /// Moves the hashes of written files that are now part of a table into `next`, and drops
    /// the hashes of files no table refers to any more.
    fn record_hashes(&mut self) {
        let live: BTreeSet<&String> = self.next.tables.values().flatten().collect();
        let mut written = self
            .written
            .lock()
            .expect("no panic while holding the lock");
        // A file written but not yet added to its table keeps waiting for it.
        let (joined, waiting): (BTreeMap<String, String>, BTreeMap<String, String>) =
            std::mem::take(&mut *written)
                .into_iter()
                .partition(|(f, _)| live.contains(f));
        *written = waiting;
        drop(written);
        self.next.file_sha256.extend(joined);
        let live: BTreeSet<&String> = self.next.tables.values().flatten().collect();
        self.next.file_sha256.retain(|f, _| live.contains(f));
    }

    /// Makes every change visible at once: the manifest is replaced by an atomic rename.
    pub fn commit(mut self, committed_at: String) -> Result<Manifest> {
        if std::env::var_os(CRASH_BEFORE_COMMIT_ENV).is_some() {
            eprintln!("{CRASH_BEFORE_COMMIT_ENV} is set: aborting before commit");
            std::process::abort();
        }
        self.record_hashes();
        self.next.committed_at = Some(committed_at);
        let path = self.store.state_dir.join(MANIFEST);
        let tmp = path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut f = File::create(&tmp).at(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(&self.next)?)
                .at(&tmp)?;
            f.sync_all().at(&tmp)?;
        }
        std::fs::rename(&tmp, &path).at(&path)?;
        if let Ok(dir) = File::open(&self.store.state_dir) {
            let _ = dir.sync_all();
        }
        self.store.collect_garbage(&self.next)?;
        Ok(self.next.clone())
    }
}

/// Passes bytes on to a file and hashes them on the way, so a file's content hash costs no
/// second read.
struct HashingWriter {
    inner: File,
    hasher: sha2::Sha256,
}

impl std::io::Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// An exclusive writer lock; a lock left by a process that no longer runs is taken over.
struct Lock(PathBuf);

impl Lock {
    fn acquire(path: PathBuf) -> Result<Self> {
        use std::io::Write;
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(Lock(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let alive = holder
                        .trim()
                        .parse::<u32>()
                        .map(|pid| Path::new(&format!("/proc/{pid}")).exists())
                        .unwrap_or(false);
                    if alive {
                        return Err(CoreError::Store(format!(
                            "another shopfuse run (pid {}) is writing this project; wait for it to finish",
                            holder.trim()
                        )));
                    }
                    std::fs::remove_file(&path).at(&path)?;
                }
                Err(e) => return Err(CoreError::Io { path, source: e }),
            }
        }
        Err(CoreError::Store(format!(
            "could not take the lock {}",
            path.display()
        )))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(n: i64) -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..n))],
        )
        .unwrap();
        (schema, b)
    }

    fn rows(store: &TableStore, t: &str) -> usize {
        store
            .read_table(t)
            .unwrap()
            .map(|(_, bs)| bs.iter().map(|b| b.num_rows()).sum())
            .unwrap_or(0)
    }

    #[test]
    fn uncommitted_writes_are_invisible_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::at(dir.path());
        let (schema, b) = batch(3);
        let mut tx = store.begin().unwrap();
        tx.append("t", "a", &schema, std::slice::from_ref(&b))
            .unwrap();
        tx.commit("now".into()).unwrap();
        assert_eq!(rows(&store, "t"), 3);

        let mut tx = store.begin().unwrap();
        let (_, b5) = batch(5);
        tx.replace("t", &schema, &[b5]).unwrap();
        drop(tx); // as if the process died here
        assert_eq!(rows(&store, "t"), 3);

        let tx = store.begin().unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("tables/t"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 1, "the dead run's file is collected");
        drop(tx);
    }

    #[test]
    fn streamed_replace_writes_every_batch_and_a_failed_stream_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::at(dir.path());
        let (schema, _) = batch(0);
        let mut tx = store.begin().unwrap();
        tx.replace_streamed("t", &schema, [4, 0, 6].into_iter().map(|n| Ok(batch(n).1)))
            .unwrap();
        tx.commit("now".into()).unwrap();
        assert_eq!(rows(&store, "t"), 10);

        // A batch that cannot be made (the process fails mid-table): the table keeps its rows.
        let mut tx = store.begin().unwrap();
        let batches = [Ok(batch(3).1), Err(CoreError::Schema("bad row".into()))].into_iter();
        let e = tx.replace_streamed("t", &schema, batches).unwrap_err();
        assert!(e.to_string().contains("bad row"), "{e}");
        drop(tx);
        assert_eq!(rows(&store, "t"), 10);
    }

    #[test]
    fn a_table_rewritten_with_the_same_rows_keeps_its_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::at(dir.path());
        let (schema, b) = batch(3);
        let mut tx = store.begin().unwrap();
        tx.replace("t", &schema, std::slice::from_ref(&b)).unwrap();
        let first = tx.table_fingerprint("t").unwrap();
        tx.commit("1".into()).unwrap();

        let mut tx = store.begin().unwrap();
        tx.replace("t", &schema, std::slice::from_ref(&b)).unwrap();
        assert_eq!(
            tx.table_fingerprint("t").unwrap(),
            first,
            "same rows, new file"
        );
        let (_, b4) = batch(4);
        tx.replace("t", &schema, &[b4]).unwrap();
        assert_ne!(tx.table_fingerprint("t").unwrap(), first);
        assert_eq!(tx.table_fingerprint("missing"), None);
        let committed = tx.commit("2".into()).unwrap();
        assert_eq!(
            committed.file_sha256.len(),
            1,
            "hashes of dropped files are dropped"
        );
    }

    #[test]
    fn a_file_added_after_a_fingerprint_keeps_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::at(dir.path());
        let (schema, b) = batch(2);
        let mut tx = store.begin().unwrap();
        let rel = tx.write_file("t", "a", &schema, &[b]).unwrap();
        assert_eq!(tx.table_fingerprint("t"), None);
        tx.add_file("t", rel.clone());
        let committed = tx.commit("1".into()).unwrap();
        assert!(committed.file_sha256.contains_key(&rel));
    }

    #[test]
    fn second_writer_is_refused_while_first_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::at(dir.path());
        let _tx = store.begin().unwrap();
        let e = store.begin().err().unwrap().to_string();
        assert!(e.contains("another shopfuse run"), "{e}");
    }

    #[test]
    fn replace_drops_old_files_after_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::at(dir.path());
        let (schema, b) = batch(2);
        for _ in 0..3 {
            let mut tx = store.begin().unwrap();
            tx.replace("t", &schema, std::slice::from_ref(&b)).unwrap();
            tx.commit("now".into()).unwrap();
        }
        assert_eq!(rows(&store, "t"), 2);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tables/t"))
                .unwrap()
                .count(),
            1
        );
        assert_eq!(store.manifest().unwrap().version, 3);
    }
}
