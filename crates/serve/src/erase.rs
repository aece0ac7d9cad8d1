//! Erasure through the server (`DELETE /api/v1/customers/{id}`) and offline (`shopfuse
//! erase`), both on [`shopfuse_pipeline::erase_customer`]; and the [`ServerPid`] file that
//! keeps the two apart.
//!
//! Why two paths: the event log has one writer. A running server erases through its writer
//! thread (which closes its open segments first); offline, the log is rewritten directly —
//! and refused while a server runs, or the server would go on appending to a segment the
//! erasure had replaced.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use shopfuse_core::Project;
use shopfuse_pipeline::{erase_customer, ErasedIds, ErasureReport};
use utoipa::ToSchema;

use crate::audit::{AuditEntry, AuditLog, AUDIT_FILE};
use crate::{AppState, ServeError};

/// What an erasure removed (the API's view of [`ErasureReport`]).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Erasure {
    pub customer_id: String,
    /// Platform accounts tombstoned.
    pub accounts: usize,
    /// Rows removed per table.
    pub rows_removed: BTreeMap<String, u64>,
    /// Events removed from the event log.
    pub events_removed: u64,
    /// The version committed without the customer.
    pub version: u64,
}

impl From<ErasureReport> for Erasure {
    fn from(r: ErasureReport) -> Self {
        Erasure {
            customer_id: r.customer_id,
            accounts: r.accounts,
            rows_removed: r.rows_removed,
            events_removed: r.events_removed,
            version: r.version,
        }
    }
}

impl AppState {
    /// Erases a customer and serves the version without them at once; `None` when there is
    /// no such customer. Blocking: run it on a blocking thread.
    pub fn erase(&self, customer_id: &str) -> Result<Option<Erasure>, ServeError> {
        let Some(ids) = ErasedIds::of_customer(self.store(), customer_id)? else {
            return Ok(None);
        };
        let report = erase_customer(self.project(), &ids, |accounts| {
            self.event_log().erase_blocking(accounts)
        })?;
        self.live_mut().forget_accounts(&ids.accounts);
        self.reload_if_committed()?;
        Ok(Some(report.into()))
    }
}

/// Erases a customer with no server running (`shopfuse erase`), and audits it under
/// `actor`. `None` when there is no such customer.
pub fn erase_offline(
    project: &Project,
    customer_id: &str,
    actor: &str,
) -> Result<Option<Erasure>, ServeError> {
    if let Some(pid) = ServerPid::running(project) {
        return Err(ServeError::ServerRunning { pid });
    }
    let store = shopfuse_core::TableStore::open(project)?;
    let Some(ids) = ErasedIds::of_customer(&store, customer_id)? else {
        return Ok(None);
    };
    let audit = AuditLog::open(&project.state_dir().join(AUDIT_FILE))?;
    audit
        .record(&AuditEntry {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            key: actor.to_string(),
            role: "admin".into(),
            route: "shopfuse erase".into(),
            customer_id: customer_id.to_string(),
            detail: None,
        })
        .map_err(|source| ServeError::File {
            path: audit.path().to_path_buf(),
            source,
        })?;
    let root = project.root.clone();
    let report = erase_customer(project, &ids, |accounts| {
        shopfuse_core::event_log::erase_accounts(&root, accounts)
    })?;
    Ok(Some(report.into()))
}

/// `.shopfuse/serve.pid`: the process id of the server running on the project, removed when
/// it stops. A file left by a process that no longer runs counts as no server.
pub struct ServerPid(PathBuf);

impl ServerPid {
    const FILE: &'static str = "serve.pid";

    pub fn write(project: &Project) -> Result<Self, ServeError> {
        let path = project.state_dir().join(Self::FILE);
        std::fs::write(&path, std::process::id().to_string()).map_err(|source| {
            ServeError::File {
                path: path.clone(),
                source,
            }
        })?;
        Ok(ServerPid(path))
    }

    /// The pid of a live server on the project other than this process.
    pub fn running(project: &Project) -> Option<u32> {
        let text = std::fs::read_to_string(project.state_dir().join(Self::FILE)).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        (alive && pid != std::process::id()).then_some(pid)
    }
}

impl Drop for ServerPid {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
