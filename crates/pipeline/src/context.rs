use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use shopfuse_core::{EncoderError, Project};
use shopfuse_embed::{MiniLm, UseM3};

/// What every stage of one run shares: the project, and the text encoder, loaded the first
/// time a stage asks for it (a run whose resolve and recs stages are skipped never loads it).
pub struct StageContext<'p> {
    pub project: &'p Project,
    encoder: OnceLock<UseM3>,
}

impl<'p> StageContext<'p> {
    pub fn new(project: &'p Project) -> Self {
        Self {
            project,
            encoder: OnceLock::new(),
        }
    }

    /// The project's text encoder: `$SHOPFUSE_MODELS`, the project's or the working
    /// directory's `models/`, or the source tree's.
    pub fn encoder(&self) -> Result<&UseM3, EncoderError> {
        if let Some(encoder) = self.encoder.get() {
            return Ok(encoder);
        }
        let encoder = project_encoder(self.project)?;
        Ok(self.encoder.get_or_init(|| encoder))
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
