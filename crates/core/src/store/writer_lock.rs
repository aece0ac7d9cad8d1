//! The one-writer-at-a-time lock of a table store.
//!
//! In a project directory it is a file holding the writer's pid, taken over when that process
//! is gone. On an object store, writers may run on different machines, so a pid says nothing:
//! the lock is a *lease*, an object naming its holder (host and pid) and a time it expires,
//! created with a conditional put and renewed by a thread while the writer runs. A lease that
//! has expired, or whose holder ran on this host and is gone, is taken over with a conditional
//! overwrite where the backend has one (of two takers exactly one wins), else by delete and
//! create. The lock keeps writers from collecting each other's files; even if two writers
//! ever held it, the commit's create-if-absent of the next manifest version lets only one of
//! them commit.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::objects::{Created, Objects};
use crate::error::{CoreError, IoContext, Result};

/// How long a lease lasts without renewal; renewed every third of it.
const LEASE_SECONDS: u64 = 120;

// Each variant is held only for what its `Drop` releases.
#[allow(dead_code)]
pub(crate) enum WriterLock {
    Pid(PidLock),
    Lease(Lease),
}

impl WriterLock {
    pub fn acquire(objects: &Objects, key: &str) -> Result<Self> {
        match objects.local_root() {
            Some(root) => PidLock::acquire(root.join(key)).map(WriterLock::Pid),
            None => Lease::acquire(objects.clone(), key, LEASE_SECONDS).map(WriterLock::Lease),
        }
    }
}

/// An exclusive writer lock; a lock left by a process that no longer runs is taken over.
pub(crate) struct PidLock(PathBuf);

impl PidLock {
    fn acquire(path: PathBuf) -> Result<Self> {
        use std::io::Write;
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(PidLock(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let alive = holder
                        .trim()
                        .parse::<u32>()
                        .map(process_alive)
                        .unwrap_or(false);
                    if alive {
                        return Err(CoreError::Store(format!(
                            "another shopfuse run (pid {}) is writing this project; wait for it to finish",
                            holder.trim()
                        )));
                    }
                    std::fs::remove_file(&path).at(&path)?;
                }
                Err(e) => return Err(CoreError::Io { path, source: e }),
            }
        }
        Err(CoreError::Store(format!(
            "could not take the lock {}",
            path.display()
        )))
    }
}

impl Drop for PidLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What a lease object holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LeaseRecord {
    host: String,
    pid: u32,
    /// Seconds since the Unix epoch.
    expires_at: u64,
}

impl LeaseRecord {
    fn mine(ttl: u64) -> Self {
        LeaseRecord {
            host: host_name(),
            pid: std::process::id(),
            expires_at: unix_now() + ttl,
        }
    }

    fn is_mine(&self) -> bool {
        self.host == host_name() && self.pid == std::process::id()
    }

    /// Whether a writer may take the lease over.
    fn is_stale(&self) -> bool {
        self.expires_at <= unix_now() || (self.host == host_name() && !process_alive(self.pid))
    }

    fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a lease serialises")
    }
}

/// A lease on an object store, renewed until dropped.
pub(crate) struct Lease {
    objects: Objects,
    key: String,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl Lease {
    fn acquire(objects: Objects, key: &str, ttl: u64) -> Result<Self> {
        for _ in 0..3 {
            let mine = LeaseRecord::mine(ttl);
            if objects.create(key, &mine.bytes())? == Created::Yes {
                return Ok(Self::hold(objects, key, ttl));
            }
            let Some(current) = objects.get(key)? else {
                continue; // released between the two calls: try again
            };
            let held: Option<LeaseRecord> = serde_json::from_slice(&current.bytes).ok();
            if let Some(held) = held.as_ref().filter(|h| !h.is_stale()) {
                return Err(busy(&objects, key, held));
            }
            let taken = match &current.version {
                Some(v) => objects.replace_if(key, &mine.bytes(), v)?,
                None => None,
            };
            match taken {
                Some(Created::Yes) => return Ok(Self::hold(objects, key, ttl)),
                Some(Created::AlreadyThere) => {} // another writer took it first: look again
                None => objects.delete(key)?,
            }
        }
        Err(CoreError::Store(format!(
            "could not take the lease {}: other writers keep taking it",
            objects.describe(key)
        )))
    }

    fn hold(objects: Objects, key: &str, ttl: u64) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let renewing = objects.clone();
        let lease_key = key.to_string();
        let renewer = std::thread::Builder::new()
            .name("shopfuse-lease".into())
            .spawn(move || renew_until_stopped(&renewing, &lease_key, ttl, &stopped))
            .ok();
        Lease {
            objects,
            key: key.to_string(),
            stop: Some(stop),
            renewer,
        }
    }
}

/// Extends the lease every third of its lifetime, as long as it is still this process's (a
/// writer that lost it, say after its machine slept past the expiry, does not take it back).
fn renew_until_stopped(objects: &Objects, key: &str, ttl: u64, stopped: &mpsc::Receiver<()>) {
    let every = Duration::from_secs((ttl / 3).max(1));
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
        if !held_by_this_process(objects, key) {
            return;
        }
        let _ = objects.put(key, &LeaseRecord::mine(ttl).bytes());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
        if held_by_this_process(&self.objects, &self.key) {
            let _ = self.objects.delete(&self.key);
        }
    }
}

/// Whether the lease at `key` is this process's (an unreadable one is not).
fn held_by_this_process(objects: &Objects, key: &str) -> bool {
    objects
        .get(key)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_slice::<LeaseRecord>(&v.bytes).ok())
        .is_some_and(|held| held.is_mine())
}

fn busy(objects: &Objects, key: &str, held: &LeaseRecord) -> CoreError {
    let left = held.expires_at.saturating_sub(unix_now());
    CoreError::Store(format!(
        "another shopfuse run (pid {} on {}) is writing this store ({}); wait for it to finish — \
         if it died, its lease expires in {left} s",
        held.pid,
        held.host,
        objects.describe(key)
    ))
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it or
    // truncates, and we read only up to the first NUL.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Objects {
        Objects::from_url("memory:///").unwrap()
    }

    #[test]
    fn a_live_lease_refuses_a_second_writer_and_is_released_on_drop() {
        let objects = memory();
        let first = Lease::acquire(objects.clone(), "lock", 60).unwrap();
        let e = Lease::acquire(objects.clone(), "lock", 60)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("another shopfuse run") && e.contains("lease expires"),
            "{e}"
        );
        drop(first);
        assert!(objects.get("lock").unwrap().is_none());
        let _again = Lease::acquire(objects, "lock", 60).unwrap();
    }

    #[test]
    fn an_expired_lease_of_another_host_is_taken_over() {
        for objects in [memory(), {
            let dir = tempfile::tempdir().unwrap().keep();
            Objects::from_url(&format!("file://{}", dir.display())).unwrap()
        }] {
            let dead = LeaseRecord {
                host: "another-machine".into(),
                pid: 1,
                expires_at: unix_now() - 1,
            };
            objects.put("lock", &dead.bytes()).unwrap();
            let lease = Lease::acquire(objects.clone(), "lock", 60).unwrap();
            let held: LeaseRecord =
                serde_json::from_slice(&objects.get("lock").unwrap().unwrap().bytes).unwrap();
            assert!(held.is_mine(), "{held:?}");
            drop(lease);

            let alive = LeaseRecord {
                expires_at: unix_now() + 60,
                ..dead
            };
            objects.put("lock", &alive.bytes()).unwrap();
            let e = Lease::acquire(objects.clone(), "lock", 60)
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains("another-machine"), "{e}");
        }
    }

    #[test]
    fn a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once() {
        let objects = memory();
        let dead = LeaseRecord {
            host: host_name(),
            pid: u32::MAX - 1,
            expires_at: unix_now() + 3600,
        };
        objects.put("lock", &dead.bytes()).unwrap();
        assert!(Lease::acquire(objects, "lock", 60).is_ok());
    }

    #[test]
    fn the_lease_is_renewed_while_held() {
        let objects = memory();
        let lease = Lease::acquire(objects.clone(), "lock", 3).unwrap();
        let read = || -> LeaseRecord {
            serde_json::from_slice(&objects.get("lock").unwrap().unwrap().bytes).unwrap()
        };
        let first = read().expires_at;
        std::thread::sleep(Duration::from_millis(2_200));
        assert!(
            read().expires_at > first,
            "renewed after a third of its life"
        );
        drop(lease);
    }
}
