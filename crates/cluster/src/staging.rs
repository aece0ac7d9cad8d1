//! [`Staging`]: where a plan's input tables are written for the engine to read — the
//! project's `.shopfuse/cluster/` folder, or the same folder on the object store the project's
//! tables are on.
//!
//! Why both: executors on other machines must read what the client stages. A project in a
//! directory needs that directory shared at the same path on every machine; a project whose
//! tables are in a bucket stages there too, so the executors need only the bucket (and their
//! own `AWS_*` credentials, see [`crate::object_stores`]).
//!
//! A staging table is a folder `encode-<pid>-<call>/` of Parquet parts. The client holds the
//! project's write lock (or lease) while it stages, so a folder of another pid is a dead run's
//! and is removed.

use std::path::PathBuf;

use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use shopfuse_core::ObjectArea;

use crate::error::ClusterError;

/// See the module docs.
#[derive(Debug, Clone)]
pub enum Staging {
    Dir(PathBuf),
    Objects(ObjectArea),
}

impl Staging {
    /// Where table `name` is, as a plan reads it (a folder path or URL ending in `/`).
    pub fn location(&self, name: &str) -> String {
        match self {
            Staging::Dir(dir) => format!("{}/", dir.join(name).display()),
            Staging::Objects(area) => format!("{}/{name}/", area.url),
        }
    }

    /// Makes the staging area readable by `ctx` (the object store, for a client's context).
    pub fn register(&self, ctx: &SessionContext) {
        if let Staging::Objects(area) = self {
            if let Some(base) = area.registration_url() {
                ctx.register_object_store(&base, area.store.clone());
            }
        }
    }

    /// Writes part `part` of table `name`.
    pub async fn write_part(
        &self,
        name: &str,
        part: usize,
        bytes: Vec<u8>,
    ) -> Result<(), ClusterError> {
        let file = format!("part-{part:05}.parquet");
        match self {
            Staging::Dir(dir) => {
                let folder = dir.join(name);
                std::fs::create_dir_all(&folder).map_err(io(&folder))?;
                let path = folder.join(file);
                std::fs::write(&path, bytes).map_err(io(&path))
            }
            Staging::Objects(area) => {
                let at = area.prefix.clone().join(name).join(file.as_str());
                area.store
                    .put(&at, PutPayload::from(bytes))
                    .await
                    .map(|_| ())
                    .map_err(store_error(&area.url, name))
            }
        }
    }

    /// Removes table `name` (best effort: a leftover is removed by the next run).
    pub async fn remove(&self, name: &str) {
        match self {
            Staging::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir.join(name));
            }
            Staging::Objects(area) => {
                let _ = remove_objects(area, &area.prefix.clone().join(name)).await;
                remove_local_folder(area, name);
            }
        }
    }

    /// Removes every staging table whose name does not start with `ours`.
    pub async fn remove_others(&self, ours: &str) -> Result<(), ClusterError> {
        match self {
            Staging::Dir(dir) => {
                let Ok(entries) = std::fs::read_dir(dir) else {
                    return Ok(());
                };
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.starts_with("encode-") && !name.starts_with(ours) {
                        let path = entry.path();
                        std::fs::remove_dir_all(&path).map_err(io(&path))?;
                    }
                }
                Ok(())
            }
            Staging::Objects(area) => {
                let listed = area
                    .store
                    .list_with_delimiter(Some(&area.prefix))
                    .await
                    .map_err(store_error(&area.url, ""))?;
                for folder in listed.common_prefixes {
                    let name = folder.filename().unwrap_or_default().to_string();
                    if name.starts_with("encode-") && !name.starts_with(ours) {
                        remove_objects(area, &folder)
                            .await
                            .map_err(store_error(&area.url, &name))?;
                        remove_local_folder(area, &name);
                    }
                }
                Ok(())
            }
        }
    }
}

async fn remove_objects(
    area: &ObjectArea,
    folder: &object_store::path::Path,
) -> object_store::Result<()> {
    let objects: Vec<_> = area.store.list(Some(folder)).try_collect().await?;
    for object in objects {
        area.store.delete(&object.location).await?;
    }
    Ok(())
}

/// object_store's local backend (`file://`) leaves a folder behind when its last object is
/// deleted; an object store has no folders. Removed here so a shared mount does not collect
/// one empty folder per plan.
fn remove_local_folder(area: &ObjectArea, name: &str) {
    if let Some(folder) = area.local_folder() {
        let _ = std::fs::remove_dir_all(folder.join(name));
    }
}

fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ClusterError {
    let path = path.to_path_buf();
    move |source| ClusterError::Io { path, source }
}

fn store_error(url: &str, name: &str) -> impl FnOnce(object_store::Error) -> ClusterError {
    let location = format!("{url}/{name}");
    move |source| ClusterError::ObjectStore { location, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both() -> (tempfile::TempDir, Vec<Staging>) {
        let dir = tempfile::tempdir().unwrap();
        let store = shopfuse_core::TableStore::at_url("memory:///shop-a").unwrap();
        let bucket = format!("file://{}/bucket", dir.path().display());
        let on_file = shopfuse_core::TableStore::at_url(&bucket).unwrap();
        let kinds = vec![
            Staging::Dir(dir.path().join("cluster")),
            Staging::Objects(store.object_area("cluster").unwrap()),
            Staging::Objects(on_file.object_area("cluster").unwrap()),
        ];
        (dir, kinds)
    }

    async fn names(staging: &Staging) -> Vec<String> {
        match staging {
            Staging::Dir(dir) => {
                let mut names: Vec<String> = std::fs::read_dir(dir)
                    .map(|d| {
                        d.flatten()
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                names.sort();
                names
            }
            Staging::Objects(area) => area
                .store
                .list_with_delimiter(Some(&area.prefix))
                .await
                .unwrap()
                .common_prefixes
                .iter()
                .map(|p| p.filename().unwrap().to_string())
                .collect(),
        }
    }

    #[tokio::test]
    async fn tables_are_written_removed_and_a_dead_runs_tables_collected() {
        let (dir, kinds) = both();
        for staging in kinds {
            staging
                .write_part("encode-1-0", 0, b"a".to_vec())
                .await
                .unwrap();
            staging
                .write_part("encode-1-0", 1, b"b".to_vec())
                .await
                .unwrap();
            staging
                .write_part("encode-2-0", 0, b"c".to_vec())
                .await
                .unwrap();
            assert_eq!(
                names(&staging).await,
                ["encode-1-0", "encode-2-0"],
                "{staging:?}"
            );
            assert!(staging
                .location("encode-2-0")
                .ends_with("cluster/encode-2-0/"));
            staging.remove_others("encode-2-").await.unwrap();
            assert_eq!(names(&staging).await, ["encode-2-0"]);
            staging.remove("encode-2-0").await;
            assert!(names(&staging).await.is_empty());
        }
        let left = std::fs::read_dir(dir.path().join("bucket/.shopfuse/cluster")).unwrap();
        assert_eq!(
            left.count(),
            0,
            "no empty folder is left on a file:// store"
        );
    }
}
