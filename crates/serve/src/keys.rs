//! API keys: who may call the server, and with which [`Role`].
//!
//! `shopfuse keys create --role analyst --name crm` prints a new key once; the project keeps
//! only its SHA-256 (in `.shopfuse/keys.json`, owner-only), so a copy of the project does not
//! hold usable keys. A revoked key stays listed, with when it was revoked.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shopfuse_core::Project;

use crate::ServeError;

/// What a key may see, each role including the ones before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Products, offers and aggregates: nothing about one customer.
    Viewer,
    /// Per-customer data as the tables hold it (pseudonyms, never raw contact data).
    Analyst,
    /// Everything, and the endpoints that change data.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "analyst" => Some(Role::Analyst),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One key as stored: never the key itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of the key.
    pub sha256: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// The project's keys.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyStore {
    pub keys: Vec<ApiKey>,
}

const KEY_FILE: &str = "keys.json";
/// Prefix of every key, so that a leaked one is recognisable in logs and scanners.
const KEY_PREFIX: &str = "sfk_";

impl KeyStore {
    pub fn path(project: &Project) -> PathBuf {
        project.state_dir().join(KEY_FILE)
    }

    /// The project's keys; none when no key was ever created.
    pub fn load(path: &Path) -> Result<Self, ServeError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| ServeError::KeyFile {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ServeError::File {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn save(&self, path: &Path) -> Result<(), ServeError> {
        let bytes = serde_json::to_vec_pretty(self).expect("keys serialise");
        shopfuse_core::project::write_private_file(path, &bytes)?;
        Ok(())
    }

    /// Creates a key, saves the store and returns the key: the only time it is shown.
    pub fn create(path: &Path, name: &str, role: Role, now: &str) -> Result<String, ServeError> {
        let mut store = Self::load(path)?;
        if store.keys.iter().any(|k| k.name == name) {
            return Err(ServeError::DuplicateKey(name.to_string()));
        }
        let mut secret = [0u8; 24];
        getrandom::fill(&mut secret).map_err(|e| ServeError::File {
            path: path.to_path_buf(),
            source: std::io::Error::other(format!("no randomness for a key: {e}")),
        })?;
        let key = format!("{KEY_PREFIX}{}", hex::encode(secret));
        store.keys.push(ApiKey {
            name: name.to_string(),
            role,
            sha256: digest(&key),
            created_at: now.to_string(),
            revoked_at: None,
        });
        store.save(path)?;
        Ok(key)
    }

    /// Marks the key revoked; a running server stops accepting it within a poll.
    pub fn revoke(path: &Path, name: &str, now: &str) -> Result<(), ServeError> {
        let mut store = Self::load(path)?;
        let key = store
            .keys
            .iter_mut()
            .find(|k| k.name == name)
            .ok_or_else(|| ServeError::NoSuchKey(name.to_string()))?;
        key.revoked_at.get_or_insert_with(|| now.to_string());
        store.save(path)
    }

    /// The live key whose hash `presented` has.
    pub fn find(&self, presented: &str) -> Option<&ApiKey> {
        let hash = digest(presented.trim());
        self.keys
            .iter()
            .find(|k| k.revoked_at.is_none() && k.sha256 == hash)
    }

    /// A name not taken yet: `role-N`.
    pub fn next_name(&self, role: Role) -> String {
        (1..)
            .map(|n| format!("{role}-{n}"))
            .find(|name| self.keys.iter().all(|k| &k.name != name))
            .expect("a free name")
    }
}

fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_stored_as_its_hash_and_stops_working_when_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let key = KeyStore::create(&path, "crm", Role::Analyst, "t0").unwrap();
        let stored = std::fs::read_to_string(&path).unwrap();
        assert!(!stored.contains(&key), "the key itself is never written");
        let store = KeyStore::load(&path).unwrap();
        assert_eq!(store.find(&key).map(|k| k.role), Some(Role::Analyst));
        assert!(store.find("sfk_guess").is_none());
        assert!(matches!(
            KeyStore::create(&path, "crm", Role::Viewer, "t1"),
            Err(ServeError::DuplicateKey(_))
        ));
        KeyStore::revoke(&path, "crm", "t2").unwrap();
        assert!(KeyStore::load(&path).unwrap().find(&key).is_none());
    }
}
