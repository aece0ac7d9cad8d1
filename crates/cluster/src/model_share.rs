//! Model files through the object store: the client publishes the encoder's files beside the
//! project's tables, and each executor fetches them once into its model cache, so a cluster
//! whose tables are in a bucket needs no model directory on its machines.
//!
//! Vocabulary:
//! - a **published model** is a folder `<store>/.shopfuse/models/<model id>/<digest>/` holding
//!   the model's files and, written last, `manifest.json` (each file's name, size and
//!   SHA-256). The digest is the manifest's own SHA-256, so a folder's content never changes:
//!   publishing the same files again finds the manifest and uploads nothing, and other files
//!   under the same model id get another folder;
//! - the **model cache** is an executor's local copy, `<cache>/<model id>/<digest>/`, checked
//!   file by file against the manifest when it is fetched and renamed into place whole, so a
//!   folder there is always complete.
//!
//! Why the plan names the folder instead of each executor using what it finds locally: every
//! executor then encodes with exactly the client's weights (the digest pins them), and a model
//! update reaches the cluster with the next run, without touching the machines.

use std::io::Write;
use std::path::{Path, PathBuf};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shopfuse_core::ObjectArea;

use crate::error::ClusterError;

/// The name of the file that lists a published model's files; its presence marks the folder
/// complete.
pub const MANIFEST: &str = "manifest.json";
/// Where an executor keeps fetched models when it is given no `--model-cache`.
pub const MODEL_CACHE_ENV: &str = "SHOPFUSE_MODEL_CACHE";

/// What a published model holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelManifest {
    pub model: String,
    pub files: Vec<ModelFile>,
}

/// One file of a published model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

impl ModelManifest {
    /// The manifest of `files` in `dir`, read and hashed.
    pub fn of_files(model: &str, dir: &Path, files: &[&str]) -> Result<Self, ClusterError> {
        let files = files
            .iter()
            .map(|name| {
                let path = dir.join(name);
                let bytes = std::fs::read(&path).map_err(model_io(&path))?;
                Ok(ModelFile {
                    name: name.to_string(),
                    bytes: bytes.len() as u64,
                    sha256: hex::encode(Sha256::digest(&bytes)),
                })
            })
            .collect::<Result<_, ClusterError>>()?;
        Ok(Self {
            model: model.to_string(),
            files,
        })
    }

    fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest serialises")
    }

    /// The folder name: the first 16 hex digits of the manifest's SHA-256.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.to_bytes()))[..16].to_string()
    }
}

/// Publishes `files` of `dir` as model `model` under `area` (the store's `.shopfuse/models`)
/// unless that exact content is there already; returns the published folder's URL.
pub async fn publish(
    area: &ObjectArea,
    model: &str,
    dir: &Path,
    files: &[&str],
) -> Result<String, ClusterError> {
    let manifest = ModelManifest::of_files(model, dir, files)?;
    let digest = manifest.digest();
    let folder = area.prefix.clone().join(model).join(digest.as_str());
    let url = format!("{}/{model}/{digest}", area.url);
    let manifest_at = folder.clone().join(MANIFEST);
    match area.store.head(&manifest_at).await {
        Ok(_) => return Ok(url),
        Err(object_store::Error::NotFound { .. }) => {}
        Err(source) => return Err(store_error(&url, source)),
    }
    for file in &manifest.files {
        let path = dir.join(&file.name);
        let bytes = std::fs::read(&path).map_err(model_io(&path))?;
        put(
            &*area.store,
            &folder.clone().join(file.name.as_str()),
            bytes,
            &url,
        )
        .await?;
    }
    put(&*area.store, &manifest_at, manifest.to_bytes(), &url).await?;
    Ok(url)
}

async fn put(
    store: &dyn ObjectStore,
    at: &ObjectPath,
    bytes: Vec<u8>,
    url: &str,
) -> Result<(), ClusterError> {
    store
        .put(at, PutPayload::from(bytes))
        .await
        .map(|_| ())
        .map_err(|source| store_error(url, source))
}

/// The model cache of this process: `explicit`, else `$SHOPFUSE_MODEL_CACHE`, else
/// `$HOME/.cache/shopfuse/models`, else a folder under the system's temporary directory.
pub fn model_cache(explicit: Option<&Path>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    if let Some(dir) = std::env::var_os(MODEL_CACHE_ENV) {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache/shopfuse/models"),
        None => std::env::temp_dir().join("shopfuse-models"),
    }
}

/// The local folder holding the published model at `url`: from `cache` when fetched before,
/// else downloaded, checked against its manifest and renamed into place.
pub async fn fetch(url: &str, cache: &Path) -> Result<PathBuf, ClusterError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| ClusterError::ModelShare(format!("{url}: not a URL ({e})")))?;
    let (store, folder) = shopfuse_core::store::open_object_store(&parsed)
        .map_err(|source| store_error(url, source))?;
    let manifest_bytes = get(&*store, &folder.clone().join(MANIFEST), url).await?;
    let manifest: ModelManifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
        ClusterError::ModelShare(format!("{url}/{MANIFEST}: not a model manifest ({e})"))
    })?;
    let local = cache.join(&manifest.model).join(manifest.digest());
    if local.is_dir() {
        return Ok(local);
    }
    let parent = local.parent().expect("a cache folder has a parent");
    let partial = parent.join(format!(
        ".{}.partial-{}",
        manifest.digest(),
        std::process::id()
    ));
    let fetched = download(&*store, &folder, url, &manifest, &partial).await;
    if let Err(e) = fetched {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    // Another process on this machine may have won the race; its folder is as good.
    if std::fs::rename(&partial, &local).is_err() && local.is_dir() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    if !local.is_dir() {
        return Err(ClusterError::ModelShare(format!(
            "{}: the fetched model could not be moved into place",
            local.display()
        )));
    }
    Ok(local)
}

/// Downloads every file of `manifest` into `into`, checking sizes and SHA-256s.
async fn download(
    store: &dyn ObjectStore,
    folder: &ObjectPath,
    url: &str,
    manifest: &ModelManifest,
    into: &Path,
) -> Result<(), ClusterError> {
    std::fs::create_dir_all(into).map_err(model_io(into))?;
    for file in &manifest.files {
        let bytes = get(store, &folder.clone().join(file.name.as_str()), url).await?;
        let found = hex::encode(Sha256::digest(&bytes));
        if found != file.sha256 || bytes.len() as u64 != file.bytes {
            return Err(ClusterError::ModelShare(format!(
                "{url}/{}: {} bytes with SHA-256 {found}, the manifest says {} bytes with {}; \
                 the published copy is damaged: delete {url} and run again to publish it anew",
                file.name,
                bytes.len(),
                file.bytes,
                file.sha256
            )));
        }
        let path = into.join(&file.name);
        let mut out = std::fs::File::create(&path).map_err(model_io(&path))?;
        out.write_all(&bytes).map_err(model_io(&path))?;
        out.sync_all().map_err(model_io(&path))?;
    }
    Ok(())
}

async fn get(store: &dyn ObjectStore, at: &ObjectPath, url: &str) -> Result<Vec<u8>, ClusterError> {
    let found = store
        .get(at)
        .await
        .map_err(|source| store_error(url, source))?;
    let bytes = found
        .bytes()
        .await
        .map_err(|source| store_error(url, source))?;
    Ok(bytes.to_vec())
}

fn store_error(url: &str, source: object_store::Error) -> ClusterError {
    ClusterError::ObjectStore {
        location: url.to_string(),
        source,
    }
}

fn model_io(path: &Path) -> impl FnOnce(std::io::Error) -> ClusterError {
    let path = path.to_path_buf();
    move |source| ClusterError::ModelIo { path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.bin"), vec![7u8; 3000]).unwrap();
        std::fs::write(dir.path().join("b.txt"), "vocabulary").unwrap();
        dir
    }

    fn area(root: &Path) -> ObjectArea {
        let url = format!("file://{}", root.display());
        shopfuse_core::TableStore::at_url(&url)
            .unwrap()
            .object_area("models")
            .unwrap()
    }

    /// A model of two files published on a `file://` store: the model's, the store's and a
    /// cache's folders, the published URL and its folder on disk.
    struct Published {
        model: tempfile::TempDir,
        store: tempfile::TempDir,
        cache: tempfile::TempDir,
        url: String,
        folder: PathBuf,
    }

    async fn published() -> Published {
        let (model, store, cache) = (
            model_dir(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let area = area(store.path());
        let url = publish(&area, "m-1", model.path(), &["a.bin", "b.txt"])
            .await
            .unwrap();
        assert!(url.starts_with(&area.url) && url.contains("/m-1/"), "{url}");
        let folder = store
            .path()
            .join(".shopfuse/models/m-1")
            .join(url.rsplit('/').next().unwrap());
        Published {
            model,
            store,
            cache,
            url,
            folder,
        }
    }

    #[tokio::test]
    async fn a_published_model_is_fetched_whole_and_published_once() {
        let Published {
            model,
            store,
            cache,
            url,
            folder,
        } = published().await;
        let area = area(store.path());
        let manifest_file = folder.join(MANIFEST);
        let written = std::fs::metadata(&manifest_file)
            .unwrap()
            .modified()
            .unwrap();
        // The same files again: the same folder, nothing uploaded.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let again = publish(&area, "m-1", model.path(), &["a.bin", "b.txt"])
            .await
            .unwrap();
        assert_eq!(again, url);
        assert_eq!(
            std::fs::metadata(&manifest_file)
                .unwrap()
                .modified()
                .unwrap(),
            written
        );

        let local = fetch(&url, cache.path()).await.unwrap();
        for name in ["a.bin", "b.txt"] {
            assert_eq!(
                std::fs::read(local.join(name)).unwrap(),
                std::fs::read(model.path().join(name)).unwrap()
            );
        }
        assert!(local.starts_with(cache.path().join("m-1")));
        // Nothing partial is left beside it, and a second fetch uses the cached folder.
        let entries = std::fs::read_dir(local.parent().unwrap()).unwrap().count();
        assert_eq!(entries, 1);
        assert_eq!(fetch(&url, cache.path()).await.unwrap(), local);
    }

    #[tokio::test]
    async fn changed_files_are_published_to_another_folder() {
        let (model, store) = (model_dir(), tempfile::tempdir().unwrap());
        let area = area(store.path());
        let first = publish(&area, "m-1", model.path(), &["a.bin"])
            .await
            .unwrap();
        std::fs::write(model.path().join("a.bin"), vec![8u8; 3000]).unwrap();
        let second = publish(&area, "m-1", model.path(), &["a.bin"])
            .await
            .unwrap();
        assert_ne!(first, second);
    }

    #[tokio::test]
    async fn a_damaged_copy_is_refused_by_name_and_nothing_is_cached() {
        // Every folder bound, so that none is deleted before the end of the test.
        let Published {
            model: _model,
            store: _store,
            cache,
            url,
            folder,
        } = published().await;
        std::fs::write(folder.join("b.txt"), "vocabularY").unwrap();
        let err = fetch(&url, cache.path()).await.unwrap_err().to_string();
        assert!(err.contains("b.txt") && err.contains("SHA-256"), "{err}");
        assert!(err.contains("damaged"), "{err}");
        let left = std::fs::read_dir(cache.path().join("m-1")).unwrap().count();
        assert_eq!(left, 0, "no partial or damaged folder is kept");
    }

    #[tokio::test]
    async fn a_missing_model_names_the_url() {
        let store = tempfile::tempdir().unwrap();
        let url = format!("{}/m-1/0123456789abcdef", area(store.path()).url);
        let err = fetch(&url, store.path()).await.unwrap_err();
        assert!(format!("{err}").contains(&url), "{err}");
    }
}
