use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use shopfuse_cluster::{Engine, PlanEncoder, SchedulerUrl, Staging};
use shopfuse_core::project::STATE_DIR;
use shopfuse_core::{Encoder, EncoderError, Project, TableStore};
use shopfuse_embed::{MiniLm, UseM3};

/// Pieces a cluster plan's input is cut into: enough for every slot of a few executors to
/// take several, so a slow or lost executor's share is small.
const CLUSTER_PARTITIONS: usize = 16;
/// The folder under `.shopfuse/` (of the project or of its object store) plans stage in.
const STAGING: &str = "cluster";
/// The folder of the store where the encoder is published for a cluster.
const MODELS: &str = "models";

/// What every stage of one run shares: the project, the text encoder, loaded the first time a
/// stage asks for it (a run whose resolve and recs stages are skipped never loads it), and the
/// engine its bulk encoding runs on (this process, or a cluster).
pub struct StageContext<'p> {
    pub project: &'p Project,
    encoder: OnceLock<Arc<UseM3>>,
    cluster: Option<SchedulerUrl>,
    plan_encoder: OnceLock<PlanEncoder>,
}

impl<'p> StageContext<'p> {
    pub fn new(project: &'p Project) -> Self {
        Self {
            project,
            encoder: OnceLock::new(),
            cluster: None,
            plan_encoder: OnceLock::new(),
        }
    }

    /// Sends the stages' bulk encoding ([`Self::bulk_encoder`]) to `cluster`.
    pub fn on_cluster(mut self, cluster: Option<SchedulerUrl>) -> Self {
        self.cluster = cluster;
        self
    }

    /// The project's text encoder in this process: `$SHOPFUSE_MODELS`, the project's or the
    /// working directory's `models/`, or the source tree's.
    pub fn encoder(&self) -> Result<&UseM3, EncoderError> {
        self.shared_encoder().map(|e| e.as_ref())
    }

    fn shared_encoder(&self) -> Result<&Arc<UseM3>, EncoderError> {
        if let Some(encoder) = self.encoder.get() {
            return Ok(encoder);
        }
        let encoder = Arc::new(project_encoder(self.project)?);
        Ok(self.encoder.get_or_init(|| encoder))
    }

    /// The encoder for a stage's bulk encoding (every listing, document or product at once):
    /// a [`PlanEncoder`], whose batches are one plan — run in this process, or on the
    /// cluster's executors when the run has one. One code path either way.
    pub fn bulk_encoder(&self) -> Result<&dyn Encoder, EncoderError> {
        if let Some(encoder) = self.plan_encoder.get() {
            return Ok(encoder);
        }
        let engine = match &self.cluster {
            Some(scheduler) => Engine::cluster(scheduler.clone(), CLUSTER_PARTITIONS),
            None => Engine::in_process(),
        };
        let failed = |e: Box<dyn std::error::Error + Send + Sync>| EncoderError::Encode {
            model: shopfuse_embed::usem3::MODEL_ID.to_string(),
            source: e,
        };
        // Staged beside the tables: in the project, or in its bucket, so that executors
        // elsewhere need the bucket and not a shared directory.
        let store = TableStore::open(self.project).map_err(|e| failed(Box::new(e)))?;
        let staging = match store.object_area(STAGING) {
            Some(area) => Staging::Objects(area),
            None => Staging::Dir(self.project.root.join(STATE_DIR).join(STAGING)),
        };
        let mut encoder = PlanEncoder::new(self.shared_encoder()?.clone(), engine, staging)
            .map_err(|e| failed(Box::new(e)))?;
        // And the model too, so the executors need no model directory of their own.
        if let Some(area) = store.object_area(MODELS) {
            encoder = encoder.with_published_model(area);
        }
        Ok(self.plan_encoder.get_or_init(|| encoder))
    }
}

/// The USE multilingual encoder for `project` (see [`StageContext::encoder`]).
pub fn project_encoder(project: &Project) -> Result<UseM3, EncoderError> {
    usem3_encoder(None, &project.root)
}

/// The USE multilingual encoder from `dir`, else from the first of `$SHOPFUSE_MODELS/usem3`
/// and `models/usem3` under `project_root`, the working directory or the source tree.
pub fn usem3_encoder(dir: Option<&Path>, project_root: &Path) -> Result<UseM3, EncoderError> {
    UseM3::open(&model_dir(
        dir,
        project_root,
        shopfuse_embed::find_usem3_dir,
    )?)
}

/// The English MiniLM encoder, found like [`usem3_encoder`] (`models/minilm`).
pub fn minilm_encoder(dir: Option<&Path>, project_root: &Path) -> Result<MiniLm, EncoderError> {
    MiniLm::load(&model_dir(
        dir,
        project_root,
        shopfuse_embed::minilm::find_dir,
    )?)
}

/// The directory of the MiniLM files ([`minilm_encoder`]'s search), for the cross-encoder,
/// which reads them as its base.
pub fn minilm_dir(dir: Option<&Path>, project_root: &Path) -> Result<PathBuf, EncoderError> {
    model_dir(dir, project_root, shopfuse_embed::minilm::find_dir)
}

/// `given`, else the first of the encoder's default places (`find`) under the project or
/// the working directory.
fn model_dir(
    given: Option<&Path>,
    project_root: &Path,
    find: fn(&[&Path]) -> Result<PathBuf, EncoderError>,
) -> Result<PathBuf, EncoderError> {
    match given {
        Some(d) => Ok(d.to_path_buf()),
        None => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            find(&[project_root, &cwd])
        }
    }
}
