//! The audit log: one JSON line per read of per-customer data (`.shopfuse/audit.log`), per
//! SQL query (which may read any customer's rows) and per erasure.
//!
//! Opened for appending only; each line is written with one `write` call so lines of
//! concurrent requests never interleave. Lines are flushed to the OS per request, not
//! fsynced: a power cut may lose the last lines, a crash of the server does not.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::ServeError;

/// One audited read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    /// RFC 3339, UTC.
    pub at: String,
    /// The name of the key that read.
    pub key: String,
    pub role: String,
    /// The route as declared (`/api/v1/customers/{customer_id}`).
    pub route: String,
    /// The customer read or erased; `*` for a SQL query.
    pub customer_id: String,
    /// The SQL text of a query; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
}

pub const AUDIT_FILE: &str = "audit.log";

impl AuditLog {
    pub fn open(path: &Path) -> Result<Self, ServeError> {
        let err = |source| ServeError::File {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn record(&self, entry: &AuditEntry) -> Result<(), std::io::Error> {
        let mut line = serde_json::to_vec(entry).expect("an audit entry serialises");
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&line)
    }

    /// Every entry of the log at `path` (for `shopfuse audit` and tests).
    pub fn read(path: &Path) -> Result<Vec<AuditEntry>, ServeError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ServeError::File {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect())
    }
}
