//! The table store: Parquet files under `tables/<table>/`, made visible all at once by
//! committing the next version of the manifest.
//!
//! Why a manifest instead of "every file in the directory": a run that is killed half-way
//! leaves new Parquet files behind; readers that follow the manifest never see them, and the
//! next writer deletes them. Files are never overwritten in place (each carries the version
//! that wrote it), so a committed file is immutable until a later commit drops it. After each
//! commit the tables hold exactly the committed files again, so DuckDB, pandas or Spark can
//! read `tables/<table>/*.parquet` directly.
//!
//! The store lives in the project directory, or on any object store a URL names (`[store] url`
//! in `shopfuse.toml`; see [`objects`]). Both commit the same way: version *N* of the manifest
//! is the object `.shopfuse/manifests/<N>.json`, created only if absent, so of two writers that
//! both read version *N−1* exactly one commits; the current state is the highest version.
//! `.shopfuse/manifest.json` is a copy of the latest, for tools that read one file.

mod objects;
mod writer_lock;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{RecordBatch, RecordBatchReader};
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::ChunkReader;
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, IoContext, Result};
use crate::project::{Project, STATE_DIR, TABLES_DIR};
pub use objects::open_object_store;
use objects::{Created, Fetched, Objects};
use writer_lock::WriterLock;

/// The copy of the latest manifest, under [`STATE_DIR`].
const MANIFEST: &str = "manifest.json";
/// The manifest's versions, under [`STATE_DIR`].
const MANIFESTS: &str = "manifests";
const LOCK: &str = "lock";
/// Manifest versions kept behind the latest (for inspecting what a run changed).
const MANIFEST_HISTORY: u64 = 10;
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

/// A folder on the object store a project's tables are on, for what other processes must
/// read from there (a cluster's staging tables).
#[derive(Debug, Clone)]
pub struct ObjectArea {
    /// The folder as a URL, without a trailing `/` (`s3://bucket/shop-a/.shopfuse/cluster`).
    pub url: String,
    pub store: std::sync::Arc<dyn object_store::ObjectStore>,
    /// The folder's path on `store`.
    pub prefix: object_store::path::Path,
}

impl ObjectArea {
    /// The URL the area's object store is registered under in DataFusion.
    pub fn registration_url(&self) -> Option<url::Url> {
        objects::registration_url(&self.url)
    }

    /// The local folder of a `file://` area (object_store's local backend leaves folders
    /// behind that object stores do not have); `None` for any other scheme.
    pub fn local_folder(&self) -> Option<PathBuf> {
        objects::local_folder(&self.url)
    }
}

#[derive(Debug, Clone)]
pub struct TableStore {
    objects: Objects,
}

/// The key of a table file (as the manifest lists it, relative to `tables/`).
fn table_key(rel: &str) -> String {
    format!("{TABLES_DIR}/{rel}")
}

fn state_key(name: &str) -> String {
    format!("{STATE_DIR}/{name}")
}

fn version_key(version: u64) -> String {
    format!("{STATE_DIR}/{MANIFESTS}/{version:020}.json")
}

/// Every batch of a Parquet file, only `columns` when given.
fn read_parquet<R: ChunkReader + 'static>(
    reader: R,
    columns: Option<&[&str]>,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(reader)?.with_batch_size(65_536);
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
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

impl TableStore {
    /// The project's store: on the object store its `[store] url` names, else in its
    /// directory.
    pub fn open(project: &Project) -> Result<Self> {
        match &project.config.store.url {
            Some(url) => Self::at_url(url),
            None => Ok(Self::at(&project.root)),
        }
    }

    /// A store on the object store `url` names (see [`objects`] for the schemes).
    pub fn at_url(url: &str) -> Result<Self> {
        Ok(Self {
            objects: Objects::from_url(url)?,
        })
    }

    /// A store in the directory `root`.
    pub fn at(root: &Path) -> Self {
        Self {
            objects: Objects::Dir(root.to_path_buf()),
        }
    }

    /// Where the tables are, for messages: a directory, or a URL on an object store.
    pub fn tables_dir(&self) -> PathBuf {
        self.objects.location(TABLES_DIR)
    }

    /// The object store and the URL it is registered under (`scheme://authority`) when the
    /// tables are on one, for a query engine that reads them; `None` for a directory.
    pub fn object_store(
        &self,
    ) -> Option<(url::Url, std::sync::Arc<dyn object_store::ObjectStore>)> {
        let remote = self.objects.remote()?;
        Some((
            objects::registration_url(&remote.url)?,
            remote.store.clone(),
        ))
    }

    /// The folder `.shopfuse/<name>` of the store when it is an object store; `None` for a
    /// directory.
    pub fn object_area(&self, name: &str) -> Option<ObjectArea> {
        let remote = self.objects.remote()?;
        let key = state_key(name);
        Some(ObjectArea {
            url: format!("{}/{key}", remote.url),
            store: remote.store.clone(),
            prefix: remote.key(&key),
        })
    }

    /// The last committed state; empty for a project that never ran.
    pub fn manifest(&self) -> Result<Manifest> {
        let versions = self.objects.list(&state_key(MANIFESTS))?;
        // Zero-padded names sort by version; a project from before versioned manifests has
        // only the single file.
        let key = match versions.iter().rev().find(|k| k.ends_with(".json")) {
            Some(latest) => latest.clone(),
            None => state_key(MANIFEST),
        };
        match self.objects.get(&key)? {
            Some(found) => serde_json::from_slice(&found.bytes).map_err(|e| {
                CoreError::Store(format!(
                    "{}: unreadable manifest ({e}); restore it from backup",
                    self.objects.describe(&key)
                ))
            }),
            None => Ok(Manifest::default()),
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
        let Some(files) = manifest.tables.get(table) else {
            return Ok(None);
        };
        let mut schema = None;
        let mut batches = Vec::new();
        for rel in files {
            let (file_schema, file_batches) = match self.read_key(&table_key(rel), columns)? {
                Some(read) => read,
                None => {
                    // Say how many more are gone, so the message covers the whole damage.
                    let mut missing = self.missing_files(manifest)?;
                    if missing.is_empty() {
                        missing.push(self.objects.location(&table_key(rel)));
                    }
                    return Err(self.missing_files_error(missing));
                }
            };
            schema.get_or_insert(file_schema);
            batches.extend(file_batches);
        }
        Ok(schema.map(|s| (s, batches)))
    }

    /// A Parquet file of the store, `None` when it is not there.
    fn read_key(
        &self,
        key: &str,
        columns: Option<&[&str]>,
    ) -> Result<Option<(SchemaRef, Vec<RecordBatch>)>> {
        match self.objects.fetch(key)? {
            Some(Fetched::File(file)) => read_parquet(file, columns).map(Some),
            Some(Fetched::Bytes(bytes)) => read_parquet(bytes, columns).map(Some),
            None => Ok(None),
        }
    }

    /// One file of a table (a path relative to `tables/`, as the manifest lists it).
    pub fn read_file(&self, rel: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let key = table_key(rel);
        self.read_key(&key, None)?.ok_or_else(|| CoreError::Io {
            path: self.objects.location(&key),
            source: std::io::ErrorKind::NotFound.into(),
        })
    }

    /// Where each file of `table` is: paths for a directory, URLs on an object store.
    pub fn table_files(&self, manifest: &Manifest, table: &str) -> Vec<PathBuf> {
        manifest
            .tables
            .get(table)
            .map(|files| {
                files
                    .iter()
                    .map(|f| self.objects.location(&table_key(f)))
                    .collect()
            })
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
        let (lock, committed, present) = self.lock_and_read()?;
        let missing = self.missing_among(&committed, &present);
        if !missing.is_empty() {
            return Err(self.missing_files_error(missing));
        }
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
        let (lock, committed, present) = self.lock_and_read()?;
        let intact = |files: &Vec<String>| files.iter().all(|f| present.contains(&table_key(f)));
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

    /// The lock, the committed manifest, and the table files there, once the files of a run
    /// that died before its commit are cleared (they are unreachable).
    fn lock_and_read(&self) -> Result<(WriterLock, Manifest, BTreeSet<String>)> {
        if let Some(root) = self.objects.local_root() {
            let state = root.join(STATE_DIR);
            std::fs::create_dir_all(&state).at(&state)?;
        }
        let lock = WriterLock::acquire(&self.objects, &state_key(LOCK))?;
        let committed = self.manifest()?;
        let present = self.collect_garbage(&committed)?;
        Ok((lock, committed, present))
    }

    fn transaction(&self, lock: WriterLock, committed: Manifest) -> Transaction<'_> {
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
            manifest: self.objects.location(&state_key(MANIFEST)),
            count: missing.len(),
            first: missing.into_iter().next().unwrap_or_default(),
        }
    }

    /// Fails with [`CoreError::MissingFiles`] when a file `manifest` lists is not there.
    pub fn check_files(&self, manifest: &Manifest) -> Result<()> {
        let missing = self.missing_files(manifest)?;
        if missing.is_empty() {
            Ok(())
        } else {
            Err(self.missing_files_error(missing))
        }
    }

    /// Files `manifest` lists that are not there.
    pub fn missing_files(&self, manifest: &Manifest) -> Result<Vec<PathBuf>> {
        Ok(self.missing_among(manifest, &self.objects.list(TABLES_DIR)?))
    }

    /// Files `manifest` lists that are not among the table files `present`.
    fn missing_among(&self, manifest: &Manifest, present: &BTreeSet<String>) -> Vec<PathBuf> {
        manifest
            .tables
            .values()
            .flatten()
            .map(|f| table_key(f))
            .filter(|k| !present.contains(k))
            .map(|k| self.objects.location(&k))
            .collect()
    }

    /// Deletes every table file `manifest` does not list (a dead run's, a replaced table's),
    /// then the folders left empty; returns the table files left, so the caller needs no
    /// second listing (on an object store, each is a request per thousand files).
    fn collect_garbage(&self, manifest: &Manifest) -> Result<BTreeSet<String>> {
        let live: BTreeSet<String> = manifest
            .tables
            .values()
            .flatten()
            .map(|f| table_key(f))
            .collect();
        let (kept, dead): (BTreeSet<String>, BTreeSet<String>) = self
            .objects
            .list(TABLES_DIR)?
            .into_iter()
            .partition(|key| live.contains(key));
        for key in dead {
            self.objects.delete(&key)?;
        }
        self.objects.remove_empty_dirs(TABLES_DIR)?;
        Ok(kept)
    }

    /// Makes `next` the committed state: creates its version (refused if another writer
    /// committed that version first), refreshes the copy, and drops old versions.
    fn publish_manifest(&self, next: &Manifest) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(next)?;
        let key = version_key(next.version);
        if self.objects.create(&key, &bytes)? == Created::AlreadyThere {
            return Err(CoreError::Store(format!(
                "{}: another writer committed version {} while this run wrote it; nothing of \
                 this run was committed, run it again",
                self.objects.describe(&key),
                next.version
            )));
        }
        self.objects.put(&state_key(MANIFEST), &bytes)?;
        let oldest_kept = next.version.saturating_sub(MANIFEST_HISTORY);
        for old in self.objects.list(&state_key(MANIFESTS))? {
            let version = old
                .rsplit('/')
                .next()
                .and_then(|name| name.strip_suffix(".json"))
                .and_then(|v| v.parse::<u64>().ok());
            if version.is_some_and(|v| v < oldest_kept) {
                self.objects.delete(&old)?;
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
    _lock: WriterLock,
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
        let key = table_key(&rel);
        let spool = self.store.objects.spool_path(&key)?;
        {
            let file = File::create(&spool).at(&spool)?;
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
            hashing.inner.sync_all().at(&spool)?;
            let sha = hex::encode(sha2::Digest::finalize(hashing.hasher));
            self.written
                .lock()
                .expect("no panic while holding the lock")
                .insert(rel.clone(), sha);
        }
        self.store.objects.publish(&spool, &key)?;
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

    /// Makes every change visible at once: the next manifest version is created, only if no
    /// other writer created it first.
    pub fn commit(mut self, committed_at: String) -> Result<Manifest> {
        if std::env::var_os(CRASH_BEFORE_COMMIT_ENV).is_some() {
            eprintln!("{CRASH_BEFORE_COMMIT_ENV} is set: aborting before commit");
            std::process::abort();
        }
        self.record_hashes();
        self.next.committed_at = Some(committed_at);
        self.store.publish_manifest(&self.next)?;
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

    /// A store in a directory and the same on object_store's two local backends.
    fn every_kind() -> (tempfile::TempDir, Vec<TableStore>) {
        let (dir, backends) = objects::tests::every_backend();
        let stores = backends
            .into_iter()
            .map(|objects| TableStore { objects })
            .collect();
        (dir, stores)
    }

    #[test]
    fn every_kind_of_store_commits_reads_and_collects_alike() {
        let (_dir, stores) = every_kind();
        for store in stores {
            let (schema, b) = batch(3);
            let mut tx = store.begin().unwrap();
            tx.append("t", "a", &schema, std::slice::from_ref(&b))
                .unwrap();
            tx.commit("1".into()).unwrap();
            let mut tx = store.begin().unwrap();
            tx.replace("t", &schema, &[batch(5).1]).unwrap();
            drop(tx); // as if the process died here
            assert_eq!(rows(&store, "t"), 3, "{store:?}");
            let mut tx = store.begin().unwrap();
            tx.replace("t", &schema, &[batch(4).1]).unwrap();
            let committed = tx.commit("2".into()).unwrap();
            assert_eq!((committed.version, rows(&store, "t")), (2, 4));
            assert_eq!(store.manifest().unwrap(), committed);
            let files = store.objects.list(TABLES_DIR).unwrap();
            assert_eq!(
                files.len(),
                1,
                "the dead run's file and the replaced one are gone"
            );
            assert!(store.table_files(&committed, "t")[0]
                .display()
                .to_string()
                .ends_with("tables/t/part.v2.parquet"));
        }
    }

    #[test]
    fn a_version_committed_by_another_writer_wins_and_this_run_commits_nothing() {
        let (_dir, stores) = every_kind();
        for store in stores {
            let (schema, b) = batch(2);
            let mut tx = store.begin().unwrap();
            tx.replace("t", &schema, std::slice::from_ref(&b)).unwrap();
            // Another writer (one that took a lease it thought expired) commits version 1.
            let theirs = Manifest {
                version: 1,
                ..Manifest::default()
            };
            store
                .objects
                .create(&version_key(1), &serde_json::to_vec(&theirs).unwrap())
                .unwrap();
            let e = tx.commit("mine".into()).unwrap_err().to_string();
            assert!(e.contains("another writer committed version 1"), "{e}");
            assert_eq!(store.manifest().unwrap(), theirs, "{store:?}");
        }
    }

    #[test]
    fn a_project_from_before_versioned_manifests_reads_and_moves_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::at(dir.path());
        let (schema, b) = batch(3);
        let mut tx = store.begin().unwrap();
        tx.replace("t", &schema, &[b]).unwrap();
        let committed = tx.commit("1".into()).unwrap();
        std::fs::remove_dir_all(dir.path().join(STATE_DIR).join(MANIFESTS)).unwrap();
        assert_eq!(
            store.manifest().unwrap(),
            committed,
            "the single file is read"
        );
        let tx = store.begin().unwrap();
        assert_eq!(tx.commit("2".into()).unwrap().version, 2);
        assert_eq!(store.manifest().unwrap().version, 2);
        assert_eq!(rows(&store, "t"), 3);
    }

    #[test]
    fn old_manifest_versions_are_dropped_past_the_history() {
        let store = TableStore::at_url("memory:///").unwrap();
        for i in 0..(MANIFEST_HISTORY + 5) {
            store.begin().unwrap().commit(i.to_string()).unwrap();
        }
        let kept = store.objects.list(&state_key(MANIFESTS)).unwrap();
        assert_eq!(kept.len() as u64, MANIFEST_HISTORY + 1);
        assert!(kept.contains(&version_key(MANIFEST_HISTORY + 5)));
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
