//! Progress reporting from library code, without tying the stages to a terminal library.

pub trait Progress: Sync {
    /// A new phase of `total` units (rows, files, bytes: the phase says which).
    fn start(&self, phase: &str, total: u64);
    fn advance(&self, n: u64);
    fn finish(&self);
}

/// For tests and scripts: reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
