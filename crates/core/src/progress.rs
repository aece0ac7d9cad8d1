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

/// The process's peak resident set size (VmHWM), MiB; `None` where /proc is not there. What
/// the benches report for a stage run in a process of its own.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
