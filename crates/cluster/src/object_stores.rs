//! [`EnvObjectStores`]: the object stores a scheduler or executor reads, made on first use
//! from a URL and the process's environment.
//!
//! Why: DataFusion's default registry knows only `file://`; a plan over a project whose tables
//! are in a bucket names `s3://bucket/…` files, and the scheduler (listing the files to plan)
//! and each executor (reading them) must open that bucket themselves. Ballista's own S3
//! registry takes its settings from session options the client would have to send — the
//! credentials with them. Here each process uses its own environment (`AWS_*`), as the client
//! does, so no credential ever travels in a plan.

use std::sync::Arc;

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use object_store::ObjectStore;
use url::Url;

/// See the module docs.
#[derive(Debug, Default)]
pub struct EnvObjectStores {
    known: DefaultObjectStoreRegistry,
}

impl EnvObjectStores {
    /// A runtime environment that reads object stores through this registry, spilling to
    /// `temp_dir` when given.
    pub fn runtime_env(temp_dir: Option<&str>) -> Result<Arc<RuntimeEnv>> {
        let builder = RuntimeEnvBuilder::new()
            .with_object_store_registry(Arc::new(EnvObjectStores::default()));
        let builder = match temp_dir {
            Some(dir) => builder.with_temp_file_path(dir),
            None => builder,
        };
        Ok(Arc::new(builder.build()?))
    }
}

impl ObjectStoreRegistry for EnvObjectStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.known.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.known.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.known.get_store(url) {
            return Ok(store);
        }
        let (store, _) = shopfuse_core::store::open_object_store(url).map_err(|e| {
            DataFusionError::Configuration(format!(
                "{url}: this process cannot open the object store ({e}); start it with the \
                 same AWS_* variables as the client"
            ))
        })?;
        let store: Arc<dyn ObjectStore> = Arc::from(store);
        self.known.register_store(url, store.clone());
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_made_once_from_its_url_and_kept() {
        let stores = EnvObjectStores::default();
        let url = Url::parse("memory:///").unwrap();
        let first = stores.get_store(&url).unwrap();
        let again = stores.get_store(&url).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let local = stores.get_store(&Url::parse("file:///tmp").unwrap());
        assert!(local.is_ok(), "file:// is always there");
        let e = stores
            .get_store(&Url::parse("ftp://host/x").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("ftp://host/x") && e.contains("AWS_"), "{e}");
    }
}
