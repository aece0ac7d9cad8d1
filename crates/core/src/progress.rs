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

/// CPU seconds the process has used so far, user and system, summed over its threads;
/// `None` where the system cannot say. A phase's CPU seconds over its wall seconds is the
/// average number of cores it kept busy, the figure that shows a serial phase.
pub fn process_cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is valid for writes of one `rusage`, which getrusage fills on success.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: getrusage returned 0, so it wrote the whole struct (and it was zeroed before).
    let usage = unsafe { usage.assume_init() };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// The process's peak resident set size (VmHWM), MiB; `None` where /proc is not there. What
/// the benches report for a stage run in a process of its own.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
