//! Tombstones: the accounts erased on request (`shopfuse erase`, `DELETE
//! /api/v1/customers/{id}`), kept in `.shopfuse/tombstones.jsonl` so that ingesting the same
//! export again does not bring the person back.
//!
//! A tombstone holds no account id in clear: it is a keyed hash (HMAC-SHA-256 with the
//! project secret) of the platform and the account id, so the file itself is no list of the
//! people who asked to be forgotten. Ingest hashes each row's account the same way and
//! quarantines the rows of a tombstoned account under the reason `erased`, with no raw text,
//! so its row accounting still balances.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{IoContext, Result};
use crate::Project;

pub const TOMBSTONE_FILE: &str = "tombstones.jsonl";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tombstone {
    /// HMAC-SHA-256 of `platform \x1f account_id`, hex.
    account: String,
    /// RFC 3339.
    erased_at: String,
}

/// The erased accounts of a project.
#[derive(Clone)]
pub struct Tombstones {
    mac: Hmac<Sha256>,
    erased: HashSet<String>,
    path: PathBuf,
}

impl Tombstones {
    /// Reads the project's tombstones (none when the file does not exist).
    pub fn load(project: &Project) -> Result<Self> {
        let mac =
            Hmac::<Sha256>::new_from_slice(&project.secret()?).expect("HMAC takes any key length");
        let path = project.state_dir().join(TOMBSTONE_FILE);
        let mut erased = HashSet::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    let t: Tombstone = serde_json::from_str(line).map_err(|e| {
                        crate::CoreError::Store(format!(
                            "{}: not a tombstone line ({e}); restore the file from backup",
                            path.display()
                        ))
                    })?;
                    erased.insert(t.account);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).at(&path),
        }
        Ok(Self { mac, erased, path })
    }

    /// The keyed hash of one account.
    pub fn key(&self, platform: &str, account_id: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(platform.as_bytes());
        mac.update(b"\x1f");
        mac.update(account_id.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    pub fn is_empty(&self) -> bool {
        self.erased.is_empty()
    }

    pub fn is_erased(&self, platform: &str, account_id: &str) -> bool {
        !self.erased.is_empty() && self.erased.contains(&self.key(platform, account_id))
    }

    /// Records `accounts` (platform, account id) as erased; durable when it returns.
    pub fn add<'a>(
        &mut self,
        accounts: impl IntoIterator<Item = (&'a str, &'a str)>,
        erased_at: &str,
    ) -> Result<()> {
        let mut lines = String::new();
        for (platform, account) in accounts {
            let account = self.key(platform, account);
            let line = serde_json::to_string(&Tombstone {
                account: account.clone(),
                erased_at: erased_at.to_string(),
            })?;
            lines.push_str(&line);
            lines.push('\n');
            self.erased.insert(account);
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .at(&self.path)?;
        file.write_all(lines.as_bytes()).at(&self.path)?;
        file.sync_all().at(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_erased_account_stays_erased_and_is_not_stored_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("shopfuse.toml"), "").unwrap();
        let project = Project::open(dir.path()).unwrap();
        let mut tombstones = Tombstones::load(&project).unwrap();
        assert!(!tombstones.is_erased("jd", "u1"));
        tombstones
            .add([("jd", "u1")], "2026-12-01T00:00:00Z")
            .unwrap();
        let again = Tombstones::load(&project).unwrap();
        assert!(again.is_erased("jd", "u1"));
        assert!(!again.is_erased("taobao", "u1"));
        let text = std::fs::read_to_string(project.state_dir().join(TOMBSTONE_FILE)).unwrap();
        assert!(!text.contains("u1"));
    }
}
