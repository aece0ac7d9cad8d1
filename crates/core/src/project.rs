//! A project is a directory: `shopfuse.toml`, the tables under `tables/`, and private state
//! (the commit manifest and the pseudonymisation secret) under `.shopfuse/`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::ProjectConfig;
use crate::error::{CoreError, IoContext, Result};

pub const CONFIG_FILE: &str = "shopfuse.toml";
pub const STATE_DIR: &str = ".shopfuse";
pub const TABLES_DIR: &str = "tables";
const SECRET_FILE: &str = "secret.key";
/// Overrides the secret file, e.g. when the key is kept in a vault and injected at run time.
pub const SECRET_ENV: &str = "SHOPFUSE_SECRET";

#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub config: ProjectConfig,
}

impl Project {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root: PathBuf = root.into();
        let config_path = root.join(CONFIG_FILE);
        if !config_path.exists() {
            return Err(CoreError::Config {
                path: config_path,
                message: "no shopfuse.toml here; run `shopfuse init` or pass --project DIR".into(),
            });
        }
        let mut config = ProjectConfig::load(&config_path)?;
        // The API's event log is a source of every project that has one; see `event_log`.
        config
            .sources
            .extend(crate::event_log::event_log_sources(&root));
        Ok(Self { root, config })
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.join(STATE_DIR)
    }

    pub fn tables_dir(&self) -> PathBuf {
        self.root.join(TABLES_DIR)
    }

    /// The per-project key for pseudonymisation: from `$SHOPFUSE_SECRET` (hex) if set, else
    /// `.shopfuse/secret.key`, created on first use with owner-only permissions. It is never
    /// written into a table, so a copy of `tables/` alone cannot be re-identified by hashing
    /// guessed phone numbers.
    pub fn secret(&self) -> Result<Vec<u8>> {
        if let Ok(hex_key) = std::env::var(SECRET_ENV) {
            return hex::decode(hex_key.trim()).map_err(|e| CoreError::Config {
                path: PathBuf::from(format!("${SECRET_ENV}")),
                message: format!("the secret must be hex: {e}"),
            });
        }
        let path = self.state_dir().join(SECRET_FILE);
        if path.exists() {
            let text = std::fs::read_to_string(&path).at(&path)?;
            return hex::decode(text.trim()).map_err(|e| CoreError::Config {
                path: path.clone(),
                message: format!("corrupt secret ({e}); restore it from backup — a new one would unlink every pseudonym"),
            });
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| CoreError::Store(format!("no randomness for the project secret: {e}")))?;
        write_private_file(&path, hex::encode(key).as_bytes())?;
        Ok(key.to_vec())
    }
}

/// Writes a file only its owner can read, atomically (temp file then rename).
pub fn write_private_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).at(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).at(&tmp)?;
        f.write_all(bytes).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    std::fs::rename(&tmp, path).at(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_created_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), "").unwrap();
        let p = Project::open(dir.path()).unwrap();
        let a = p.secret().unwrap();
        let b = p.secret().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(p.state_dir().join(SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "secret readable by others: {mode:o}");
        }
    }

    #[test]
    fn missing_config_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let e = Project::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("shopfuse init"), "{e}");
    }
}
