//! [`AppState`]: the current index, the keys and the audit log, shared by every request; and
//! [`watch`], which swaps in a new index when a pipeline run commits.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use shopfuse_core::config::RecsConfig;
use shopfuse_core::{Project, TableStore};
use shopfuse_query::{QueryEngine, QueryError};

use crate::audit::{AuditLog, AUDIT_FILE};
use crate::event_log::EventLog;
use crate::limit::RateLimiter;
use crate::live::LiveEvents;
use crate::metrics::Metrics;
use crate::{KeyStore, ServeError, ServeIndex};

/// How the server treats its callers.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Requests per second each API key may make (bursts of two seconds' worth).
    pub requests_per_second_per_key: u32,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            requests_per_second_per_key: 5_000,
        }
    }
}

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    project: Project,
    store: TableStore,
    /// The SQL session over the newest committed version, opened on the first query.
    sql: std::sync::Mutex<Option<Arc<QueryEngine>>>,
    recs: RecsConfig,
    /// Swapped only while `live` is write-locked, so that a request that takes `live` first
    /// and then the index sees the overlay that belongs to that index.
    index: RwLock<Arc<ServeIndex>>,
    live: RwLock<LiveEvents>,
    events: EventLog,
    key_path: PathBuf,
    keys: RwLock<(Option<SystemTime>, Arc<KeyStore>)>,
    audit: AuditLog,
    metrics: Metrics,
    limiter: RateLimiter,
    /// The search index and policies of the version last searched (loaded on first use).
    search: std::sync::Mutex<Option<Arc<crate::api::search::SearchService>>>,
    /// The project's encoder for query vectors; `None` inside when its files are missing.
    encoder: std::sync::OnceLock<Option<Box<dyn shopfuse_core::Encoder>>>,
}

impl AppState {
    /// [`Self::with_options`] with the default options.
    pub fn open(project: &Project) -> Result<Self, ServeError> {
        Self::with_options(project, &ServeOptions::default())
    }

    /// Builds the index of the project's committed version and opens its keys and audit log.
    pub fn with_options(project: &Project, options: &ServeOptions) -> Result<Self, ServeError> {
        let store = TableStore::open(project)?;
        let manifest = store.manifest()?;
        let recs = project.config.recs.clone();
        let index = ServeIndex::build(&store, &manifest, &recs)?;
        let (events, logged) = EventLog::open(&project.root)?;
        let live = LiveEvents::from_log(logged, &manifest, &index);
        let key_path = KeyStore::path(project);
        let keys = (modified(&key_path), Arc::new(KeyStore::load(&key_path)?));
        let audit = AuditLog::open(&project.state_dir().join(AUDIT_FILE))?;
        Ok(Self {
            inner: Arc::new(Inner {
                project: project.clone(),
                store,
                sql: Default::default(),
                recs,
                index: RwLock::new(Arc::new(index)),
                live: RwLock::new(live),
                events,
                key_path,
                keys: RwLock::new(keys),
                audit,
                metrics: Metrics::default(),
                limiter: RateLimiter::new(options.requests_per_second_per_key),
                search: Default::default(),
                encoder: Default::default(),
            }),
        })
    }

    /// The index as of the latest version loaded; a request holds it for its whole life.
    pub fn index(&self) -> Arc<ServeIndex> {
        self.inner
            .index
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn project(&self) -> &Project {
        &self.inner.project
    }

    pub fn store(&self) -> &TableStore {
        &self.inner.store
    }

    pub(crate) fn search(
        &self,
    ) -> &std::sync::Mutex<Option<Arc<crate::api::search::SearchService>>> {
        &self.inner.search
    }

    pub(crate) fn encoder(&self) -> &std::sync::OnceLock<Option<Box<dyn shopfuse_core::Encoder>>> {
        &self.inner.encoder
    }

    /// The overlay of accepted events the served version does not hold yet. Take it before
    /// [`Self::index`] when a request needs both.
    pub fn live(&self) -> std::sync::RwLockReadGuard<'_, LiveEvents> {
        self.inner.live.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn live_mut(&self) -> std::sync::RwLockWriteGuard<'_, LiveEvents> {
        self.inner.live.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The SQL session over the newest committed version (a blocking call: it opens one
    /// when a newer version was committed since the last query).
    pub fn sql_engine(&self) -> Result<Arc<QueryEngine>, QueryError> {
        let version = self.inner.store.manifest()?.version;
        let mut cached = self.inner.sql.lock().unwrap_or_else(|e| e.into_inner());
        match cached.as_ref() {
            Some(engine) if engine.version() == version => Ok(engine.clone()),
            _ => {
                let engine = Arc::new(QueryEngine::open(&self.inner.project)?);
                *cached = Some(engine.clone());
                Ok(engine)
            }
        }
    }

    pub fn event_log(&self) -> &EventLog {
        &self.inner.events
    }

    pub fn keys(&self) -> Arc<KeyStore> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    pub fn audit(&self) -> &AuditLog {
        &self.inner.audit
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// Loads the committed version if it is newer than the one served; returns whether it
    /// swapped. Runs on a blocking thread (it reads every table the index needs).
    pub fn reload_if_committed(&self) -> Result<bool, ServeError> {
        let manifest = self.inner.store.manifest()?;
        if manifest.version == self.index().version {
            return Ok(false);
        }
        let index = ServeIndex::build(&self.inner.store, &manifest, &self.inner.recs)?;
        let mut live = self.live_mut();
        live.fold_out(&manifest, &index);
        *self.inner.index.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(index);
        Ok(true)
    }

    /// Re-reads the key file when it changed (a key created or revoked).
    pub fn reload_keys_if_changed(&self) -> Result<bool, ServeError> {
        let stamp = modified(&self.inner.key_path);
        if stamp == self.inner.keys.read().unwrap_or_else(|e| e.into_inner()).0 {
            return Ok(false);
        }
        let keys = Arc::new(KeyStore::load(&self.inner.key_path)?);
        *self.inner.keys.write().unwrap_or_else(|e| e.into_inner()) = (stamp, keys);
        Ok(true)
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Every `poll`, loads a newly committed version and a changed key file. A version that fails
/// to load — a second commit removed its files while they were read, or a disk error — is
/// reported, the old index kept, and the newest version tried again at the next poll.
pub async fn watch(state: AppState, poll: Duration) {
    loop {
        tokio::time::sleep(poll).await;
        let s = state.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            (s.reload_if_committed(), s.reload_keys_if_changed())
        })
        .await;
        match outcome {
            Ok((Ok(true), _)) => eprintln!("serve: now serving version {}", state.index().version),
            Ok((Err(e), _)) | Ok((_, Err(e))) => {
                eprintln!("serve: keeping the loaded version: {e}")
            }
            Ok(_) => {}
            Err(e) => eprintln!("serve: reload task failed: {e}"),
        }
    }
}
