//! Where a table store's files live: a directory of the project (the default) or an
//! `object_store` backend named by a URL (`[store] url`): `s3://bucket/prefix` (AWS S3 or any
//! S3-compatible server with conditional puts), `file:///path` (object_store's local backend,
//! e.g. on a mount shared by several machines), `memory:///` (tests).
//!
//! Vocabulary: a *key* is a file's path relative to the store's root, `/`-separated
//! (`tables/golden_products/part.v7.parquet`, `manifests/00000000000000000007.json`). The
//! table store speaks only in keys; this module turns them into files or objects.
//!
//! Why two kinds and not `object_store`'s `LocalFileSystem` for the project directory too:
//! a local Parquet file is read straight from its file descriptor, a page at a time, and
//! written through one rename; going through `object_store` would read every file whole into
//! memory first (a million-listing embedding cache is gigabytes). Both kinds give the store the
//! three guarantees it builds its commit on: a written file appears whole or not at all, a
//! create-if-absent that exactly one of two racing writers wins, and a listing by prefix.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use crate::error::{CoreError, IoContext, Result};

/// A file's bytes as a reader can take them: a local file is read in place.
pub(crate) enum Fetched {
    File(File),
    Bytes(Bytes),
}

/// The outcome of a create-if-absent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Created {
    Yes,
    AlreadyThere,
}

/// An object's content with the version a conditional overwrite must name.
pub(crate) struct Versioned {
    pub bytes: Bytes,
    pub version: Option<UpdateVersion>,
}

#[derive(Clone)]
pub(crate) enum Objects {
    /// A local directory; keys are relative paths under it.
    Dir(PathBuf),
    /// An `object_store` backend; keys are relative to `prefix`.
    Remote(Remote),
}

#[derive(Clone)]
pub(crate) struct Remote {
    pub url: String,
    pub store: Arc<dyn ObjectStore>,
    pub prefix: ObjectPath,
}

impl std::fmt::Debug for Objects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.describe(""))
    }
}

/// Spool files above this size are uploaded in parts of this size.
const PART_BYTES: usize = 16 << 20;

impl Objects {
    /// The backend `url` names (`s3://bucket/shop-a`, `file:///srv/shopfuse/shop-a`,
    /// `memory:///`); its root is the URL's path.
    pub fn from_url(url: &str) -> Result<Self> {
        let parsed = url::Url::parse(url).map_err(|e| {
            CoreError::Store(format!(
                "[store] url = {url:?} is not a URL ({e}); write e.g. \"file:///srv/shopfuse/shop-a\""
            ))
        })?;
        let (store, prefix) = open_object_store(&parsed).map_err(|e| {
            CoreError::Store(format!(
                "[store] url = {url:?}: {e}; shopfuse reads s3://, file:// and memory:// URLs"
            ))
        })?;
        Ok(Objects::Remote(Remote {
            url: url.trim_end_matches('/').to_string(),
            store: Arc::from(store),
            prefix,
        }))
    }

    /// Where `key` is, for messages: a path for a directory, a URL for an object store.
    pub fn describe(&self, key: &str) -> String {
        self.location(key).display().to_string()
    }

    /// [`Self::describe`] as the `PathBuf` the store's errors carry.
    pub fn location(&self, key: &str) -> PathBuf {
        match self {
            Objects::Dir(root) if key.is_empty() => root.clone(),
            Objects::Dir(root) => root.join(key),
            Objects::Remote(r) if key.is_empty() => PathBuf::from(&r.url),
            Objects::Remote(r) => PathBuf::from(format!("{}/{key}", r.url)),
        }
    }

    /// The local directory, when the store is one.
    pub fn local_root(&self) -> Option<&Path> {
        match self {
            Objects::Dir(root) => Some(root),
            Objects::Remote(_) => None,
        }
    }

    /// The backend and its root URL, when the store is an object store (what a query engine
    /// registers to read the tables).
    pub fn remote(&self) -> Option<&Remote> {
        match self {
            Objects::Dir(_) => None,
            Objects::Remote(r) => Some(r),
        }
    }

    /// The bytes of `key`, `None` when it is not there.
    pub fn fetch(&self, key: &str) -> Result<Option<Fetched>> {
        match self {
            Objects::Dir(root) => {
                let path = root.join(key);
                match File::open(&path) {
                    Ok(f) => Ok(Some(Fetched::File(f))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(CoreError::Io { path, source: e }),
                }
            }
            Objects::Remote(_) => Ok(self.get(key)?.map(|v| Fetched::Bytes(v.bytes))),
        }
    }

    /// The content of `key` with its version; `None` when it is not there.
    pub fn get(&self, key: &str) -> Result<Option<Versioned>> {
        match self {
            Objects::Dir(root) => {
                let path = root.join(key);
                match std::fs::read(&path) {
                    Ok(b) => Ok(Some(Versioned {
                        bytes: Bytes::from(b),
                        version: None,
                    })),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(CoreError::Io { path, source: e }),
                }
            }
            Objects::Remote(r) => {
                let at = r.key(key);
                let got = block_on(async {
                    let result = r.store.get(&at).await?;
                    let version = UpdateVersion {
                        e_tag: result.meta.e_tag.clone(),
                        version: result.meta.version.clone(),
                    };
                    Ok::<_, object_store::Error>((result.bytes().await?, version))
                });
                match got {
                    Ok((bytes, version)) => Ok(Some(Versioned {
                        bytes,
                        version: Some(version),
                    })),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(r.error(key, e)),
                }
            }
        }
    }

    /// Writes `bytes` as `key` unless something is there already; of two writers racing for
    /// the same key exactly one gets [`Created::Yes`].
    pub fn create(&self, key: &str, bytes: &[u8]) -> Result<Created> {
        match self {
            Objects::Dir(root) => {
                let path = root.join(key);
                let tmp = write_temp(&path, bytes)?;
                // A hard link fails when the name exists: create-if-absent with the content
                // already complete, which `create_new` + write would not give a reader.
                let linked = std::fs::hard_link(&tmp, &path);
                let _ = std::fs::remove_file(&tmp);
                match linked {
                    Ok(()) => {
                        sync_dir(&path);
                        Ok(Created::Yes)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Ok(Created::AlreadyThere)
                    }
                    Err(e) => Err(CoreError::Io { path, source: e }),
                }
            }
            Objects::Remote(r) => match r.put(key, bytes.to_vec(), PutMode::Create) {
                Ok(()) => Ok(Created::Yes),
                Err(object_store::Error::AlreadyExists { .. }) => Ok(Created::AlreadyThere),
                Err(e) => Err(r.error(key, e)),
            },
        }
    }

    /// Replaces `key` with `bytes` only if it still holds `version` (as [`Self::get`] returned
    /// it). Backends without conditional overwrites (a local directory, object_store's
    /// `LocalFileSystem`) return `Ok(None)`: the caller falls back to delete-then-create.
    pub fn replace_if(
        &self,
        key: &str,
        bytes: &[u8],
        version: &UpdateVersion,
    ) -> Result<Option<Created>> {
        let Objects::Remote(r) = self else {
            return Ok(None);
        };
        match r.put(key, bytes.to_vec(), PutMode::Update(version.clone())) {
            Ok(()) => Ok(Some(Created::Yes)),
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::AlreadyExists { .. }) => Ok(Some(Created::AlreadyThere)),
            Err(object_store::Error::NotImplemented { .. }) => Ok(None),
            Err(e) => Err(r.error(key, e)),
        }
    }

    /// Writes `bytes` as `key`, replacing what is there, all at once.
    pub fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        match self {
            Objects::Dir(root) => {
                let path = root.join(key);
                let tmp = write_temp(&path, bytes)?;
                std::fs::rename(&tmp, &path).at(&path)?;
                sync_dir(&path);
                Ok(())
            }
            Objects::Remote(r) => r
                .put(key, bytes.to_vec(), PutMode::Overwrite)
                .map_err(|e| r.error(key, e)),
        }
    }

    /// Makes the finished local file `spooled` the content of `key` (renamed into place in a
    /// directory; uploaded, in parts when large, to an object store, then removed).
    pub fn publish(&self, spooled: &Path, key: &str) -> Result<()> {
        match self {
            Objects::Dir(root) => {
                let path = root.join(key);
                std::fs::rename(spooled, &path).at(&path)
            }
            Objects::Remote(r) => {
                let uploaded = r.upload(spooled, key);
                let _ = std::fs::remove_file(spooled);
                uploaded
            }
        }
    }

    /// A local file to write `key`'s content to before [`Self::publish`]: beside the final
    /// file in a directory (so the rename stays on one file system), in the system's
    /// temporary directory for an object store.
    pub fn spool_path(&self, key: &str) -> Result<PathBuf> {
        match self {
            Objects::Dir(root) => {
                let path = root.join(key);
                let dir = path.parent().expect("a key names a file");
                std::fs::create_dir_all(dir).at(dir)?;
                Ok(path.with_extension("parquet.tmp"))
            }
            Objects::Remote(_) => {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let name = format!("shopfuse-upload-{}-{n}.tmp", std::process::id());
                Ok(std::env::temp_dir().join(name))
            }
        }
    }

    /// Removes `key`; one that is already gone is not an error.
    pub fn delete(&self, key: &str) -> Result<()> {
        match self {
            Objects::Dir(root) => {
                let path = root.join(key);
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        Err(CoreError::Io { path, source: e })
                    }
                    _ => Ok(()),
                }
            }
            Objects::Remote(r) => match block_on(r.store.delete(&r.key(key))) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(r.error(key, e)),
            },
        }
    }

    /// Every key under `dir` (a key prefix without the trailing `/`), at any depth.
    pub fn list(&self, dir: &str) -> Result<BTreeSet<String>> {
        match self {
            Objects::Dir(root) => {
                let mut keys = BTreeSet::new();
                list_dir(root, dir, &mut keys)?;
                Ok(keys)
            }
            Objects::Remote(r) => {
                let at = r.key(dir);
                let metas: Vec<_> =
                    block_on(r.store.list(Some(&at)).try_collect()).map_err(|e| r.error(dir, e))?;
                Ok(metas
                    .into_iter()
                    .filter_map(|m| {
                        let full = m.location.as_ref();
                        let root = r.prefix.as_ref();
                        let rel = if root.is_empty() {
                            full
                        } else {
                            full.strip_prefix(root)?.strip_prefix('/')?
                        };
                        Some(rel.to_string())
                    })
                    .collect())
            }
        }
    }

    /// Removes directories under `dir` that are left empty: in a directory store, and on
    /// object_store's local backend (`file://`), which leaves a folder behind when its last
    /// object is deleted. Other object stores have no directories.
    pub fn remove_empty_dirs(&self, dir: &str) -> Result<()> {
        let root = match self {
            Objects::Dir(root) => root.clone(),
            Objects::Remote(r) => match local_folder(&r.url) {
                Some(root) => root,
                None => return Ok(()),
            },
        };
        let top = root.join(dir);
        let Ok(entries) = std::fs::read_dir(&top) else {
            return Ok(());
        };
        for entry in entries {
            let path = entry.at(&top)?.path();
            if path.is_dir() && std::fs::read_dir(&path).at(&path)?.next().is_none() {
                std::fs::remove_dir(&path).at(&path)?;
            }
        }
        Ok(())
    }
}

impl Remote {
    /// The object path of `key` on the backend.
    pub(crate) fn key(&self, key: &str) -> ObjectPath {
        key.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.prefix.clone(), |at, part| at.join(part))
    }

    fn error(&self, key: &str, source: object_store::Error) -> CoreError {
        CoreError::ObjectStore {
            location: format!("{}/{key}", self.url),
            source: Box::new(source),
        }
    }

    fn put(&self, key: &str, bytes: Vec<u8>, mode: PutMode) -> object_store::Result<()> {
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        block_on(
            self.store
                .put_opts(&self.key(key), PutPayload::from(bytes), opts),
        )
        .map(|_| ())
    }

    /// Uploads a local file as `key`: one put when small, parts of [`PART_BYTES`] otherwise,
    /// so a table larger than memory is never read whole.
    fn upload(&self, spooled: &Path, key: &str) -> Result<()> {
        let mut file = File::open(spooled).at(spooled)?;
        let size = file.metadata().at(spooled)?.len() as usize;
        if size <= PART_BYTES {
            let mut bytes = Vec::with_capacity(size);
            file.read_to_end(&mut bytes).at(spooled)?;
            return self
                .put(key, bytes, PutMode::Overwrite)
                .map_err(|e| self.error(key, e));
        }
        let at = self.key(key);
        let store = self.store.clone();
        block_on(async move {
            let upload = store.put_multipart(&at).await?;
            let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let mut buf = vec![0u8; PART_BYTES];
            loop {
                let n = file
                    .read(&mut buf)
                    .map_err(|e| object_store::Error::Generic {
                        store: "spool",
                        source: Box::new(e),
                    })?;
                if n == 0 {
                    break;
                }
                writer.wait_for_capacity(4).await?;
                writer.write(&buf[..n]);
            }
            writer.finish().await.map(|_| ())
        })
        .map_err(|e| self.error(key, e))
    }
}

/// The backend `url` names and the path inside it. Its settings and credentials come from the
/// environment (`AWS_*` for S3: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
/// AWS_ENDPOINT for an S3-compatible server, AWS_ALLOW_HTTP=true for one without TLS), never
/// the config: every process that opens a project's store (the client, a cluster's scheduler
/// and executors) opens it this way.
pub fn open_object_store(
    url: &url::Url,
) -> object_store::Result<(Box<dyn ObjectStore>, ObjectPath)> {
    let env = std::env::vars().filter(|(k, _)| k.starts_with("AWS_"));
    object_store::parse_url_opts(url, env)
}

/// `scheme://authority` of `url`: what DataFusion's registry keys an object store by.
pub(crate) fn registration_url(url: &str) -> Option<url::Url> {
    let url = url::Url::parse(url).ok()?;
    url::Url::parse(&format!("{}://{}", url.scheme(), url.authority())).ok()
}

/// The local folder a `file://` URL names; `None` for any other scheme.
pub(crate) fn local_folder(url: &str) -> Option<PathBuf> {
    url::Url::parse(url)
        .ok()
        .filter(|u| u.scheme() == "file")
        .and_then(|u| u.to_file_path().ok())
}

/// Runs `fut` to completion from synchronous code. The store's callers are synchronous, but
/// some run on a thread of another runtime (the API's blocking pool, the plan encoder's
/// caller), where entering a runtime panics; a scoped thread keeps them apart. A store call
/// is a file's worth of I/O, so a thread per call costs nothing measurable.
fn block_on<F>(fut: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("shopfuse-store")
            .enable_all()
            .build()
            .expect("the store's I/O runtime starts")
    });
    std::thread::scope(|s| {
        s.spawn(|| runtime.block_on(fut))
            .join()
            .expect("store I/O does not panic")
    })
}

/// Writes `bytes` to a temporary file beside `path` and flushes it to disk.
fn write_temp(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let dir = path.parent().expect("a key names a file");
    std::fs::create_dir_all(dir).at(dir)?;
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    let mut f = File::create(&tmp).at(&tmp)?;
    f.write_all(bytes).at(&tmp)?;
    f.sync_all().at(&tmp)?;
    Ok(tmp)
}

/// Flushes the directory entry of `path` (best effort: not every file system allows it).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

fn list_dir(root: &Path, rel: &str, keys: &mut BTreeSet<String>) -> Result<()> {
    let dir = root.join(rel);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(CoreError::Io {
                path: dir,
                source: e,
            })
        }
    };
    for entry in entries {
        let entry = entry.at(&dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if entry.file_type().at(entry.path())?.is_dir() {
            list_dir(root, &key, keys)?;
        } else {
            keys.insert(key);
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A directory, object_store's local backend (`file://`) and its in-memory one: every
    /// kind of backend the store's tests run on.
    pub(crate) fn every_backend() -> (tempfile::TempDir, Vec<Objects>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/bucket", dir.path().display());
        std::fs::create_dir_all(dir.path().join("bucket")).unwrap();
        let kinds = vec![
            Objects::Dir(dir.path().join("plain")),
            Objects::from_url(&url).unwrap(),
            Objects::from_url("memory:///").unwrap(),
        ];
        (dir, kinds)
    }

    #[test]
    fn create_is_won_once_and_keeps_the_first_content() {
        let (_dir, kinds) = every_backend();
        for objects in kinds {
            assert_eq!(objects.create("m/1.json", b"first").unwrap(), Created::Yes);
            assert_eq!(
                objects.create("m/1.json", b"second").unwrap(),
                Created::AlreadyThere,
                "{objects:?}"
            );
            let got = objects.get("m/1.json").unwrap().unwrap();
            assert_eq!(&got.bytes[..], b"first");
            assert!(objects.get("m/2.json").unwrap().is_none());
        }
    }

    #[test]
    fn list_put_publish_and_delete_agree_across_backends() {
        let (dir, kinds) = every_backend();
        for objects in kinds {
            objects.put("tables/a/x.parquet", b"x").unwrap();
            let spool = objects.spool_path("tables/b/y.parquet").unwrap();
            std::fs::write(&spool, b"y").unwrap();
            objects.publish(&spool, "tables/b/y.parquet").unwrap();
            assert!(!spool.exists(), "the spool file is gone once published");
            let keys: Vec<_> = objects.list("tables").unwrap().into_iter().collect();
            assert_eq!(
                keys,
                ["tables/a/x.parquet", "tables/b/y.parquet"],
                "{objects:?}"
            );
            objects.delete("tables/a/x.parquet").unwrap();
            objects.delete("tables/a/x.parquet").unwrap();
            objects.remove_empty_dirs("tables").unwrap();
            assert_eq!(objects.list("tables").unwrap().len(), 1);
            assert!(objects.list("nothing").unwrap().is_empty());
        }
        assert!(!dir.path().join("plain/tables/a").exists());
        assert!(!dir.path().join("bucket/tables/a").exists());
    }

    #[test]
    fn a_large_file_is_uploaded_in_parts_and_arrives_whole() {
        let objects = Objects::from_url("memory:///root").unwrap();
        let spool = objects.spool_path("big").unwrap();
        let bytes: Vec<u8> = (0..PART_BYTES * 2 + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&spool, &bytes).unwrap();
        objects.publish(&spool, "tables/t/big.parquet").unwrap();
        let got = objects.get("tables/t/big.parquet").unwrap().unwrap();
        assert_eq!(got.bytes.len(), bytes.len());
        assert!(got.bytes[..] == bytes[..]);
    }

    #[test]
    fn a_conditional_replace_loses_to_a_change_in_between() {
        let objects = Objects::from_url("memory:///").unwrap();
        objects.put("lock", b"old").unwrap();
        let seen = objects.get("lock").unwrap().unwrap().version.unwrap();
        objects.put("lock", b"someone else").unwrap();
        assert_eq!(
            objects.replace_if("lock", b"mine", &seen).unwrap(),
            Some(Created::AlreadyThere)
        );
        let now = objects.get("lock").unwrap().unwrap().version.unwrap();
        assert_eq!(
            objects.replace_if("lock", b"mine", &now).unwrap(),
            Some(Created::Yes)
        );
        let dir = tempfile::tempdir().unwrap();
        let local = Objects::Dir(dir.path().to_path_buf());
        assert_eq!(local.replace_if("lock", b"x", &now).unwrap(), None);
    }

    #[test]
    fn a_bad_url_names_the_setting() {
        let e = Objects::from_url("not a url").unwrap_err().to_string();
        assert!(e.contains("[store] url"), "{e}");
        let e = Objects::from_url("ftp://host/x").unwrap_err().to_string();
        assert!(e.contains("[store] url") && e.contains("s3://"), "{e}");
    }
}
