//! [`EventLog`]: the write-ahead log of posted events (the layout is
//! [`shopfuse_core::event_log`]'s, which the pipeline reads back as a source).
//!
//! Durability: a batch is answered `202` only after its lines are written and `fsync`ed.
//! One writer thread owns the segment files and commits in groups: it takes every batch
//! waiting, writes them, syncs each file it touched once and then answers them all, so
//! sixty-four concurrent clients cost one `fsync` per file per round, not sixty-four. A write
//! that fails is cut back to the segment's last committed length and every batch of that
//! round is refused (`503`), so the log never holds a half-acknowledged batch.
//!
//! Recovery: on open every segment is read; a torn last line (a crash mid-write, never
//! acknowledged) is cut off, and the events become the server's starting state. Each start
//! writes to new segments, so a segment the pipeline has already ingested whole stays as it
//! was.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use shopfuse_core::event_log::EVENT_LOG_DIR;
use shopfuse_core::event_log::{event_log_dir, is_platform_name, whole_lines, LoggedEvent};
use shopfuse_core::project::STATE_DIR;
use tokio::sync::oneshot;

use crate::ServeError;

/// A segment is closed and a new one begun past this size, so a run re-reads little.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// An event in the log and where it is: the pipeline has folded it once the committed
/// version's ingest read `line` lines of `segment`.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub platform: String,
    /// The segment's path relative to the project, as ingest records it.
    pub segment: Arc<str>,
    /// 1-based line in the segment.
    pub line: u64,
    pub event: LoggedEvent,
}

/// Where one platform's part of a batch landed.
#[derive(Debug, Clone)]
pub struct Placement {
    pub segment: Arc<str>,
    pub first_line: u64,
}

struct Job {
    /// Platform → the batch's lines of that platform, serialised.
    chunks: BTreeMap<String, Vec<u8>>,
    lines: BTreeMap<String, u64>,
    done: oneshot::Sender<Result<BTreeMap<String, Placement>, String>>,
}

/// Accounts whose events are to leave the log (an erasure).
struct Erasure {
    accounts: HashSet<(String, String)>,
    done: mpsc::Sender<std::io::Result<u64>>,
}

enum Request {
    Append(Job),
    Erase(Erasure),
}

/// The writer's handle; cheap to share.
pub struct EventLog {
    jobs: mpsc::Sender<Request>,
}

impl EventLog {
    /// Recovers the log of the project at `root` and starts its writer thread. Returns the
    /// events the log holds, oldest segment first.
    pub fn open(root: &Path) -> Result<(EventLog, Vec<StoredEvent>), ServeError> {
        let dir = event_log_dir(root);
        let mut stored = Vec::new();
        let mut next_segment = 1u64;
        for (platform, segments) in existing_segments(&dir)? {
            for (number, path) in segments {
                next_segment = next_segment.max(number + 1);
                stored.extend(recover_segment(root, &platform, &path)?);
            }
        }
        let (jobs, receiver) = mpsc::channel();
        let writer = Writer {
            root: root.to_path_buf(),
            next_segment,
            open: HashMap::new(),
        };
        std::thread::Builder::new()
            .name("event-log".into())
            .spawn(move || writer.run(receiver))
            .map_err(|source| ServeError::EventLog {
                path: dir.clone(),
                source,
            })?;
        Ok((EventLog { jobs }, stored))
    }

    /// Appends `events` (platform, event) durably; returns each platform's placement.
    pub async fn append(
        &self,
        events: &[(String, LoggedEvent)],
    ) -> Result<BTreeMap<String, Placement>, String> {
        let mut chunks: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut lines: BTreeMap<String, u64> = BTreeMap::new();
        for (platform, event) in events {
            let chunk = chunks.entry(platform.clone()).or_default();
            serde_json::to_writer(&mut *chunk, event).map_err(|e| e.to_string())?;
            chunk.push(b'\n');
            *lines.entry(platform.clone()).or_default() += 1;
        }
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Request::Append(Job {
                chunks,
                lines,
                done,
            }))
            .map_err(|_| "the event log's writer has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the event log's writer has stopped".to_string())?
    }
}

impl EventLog {
    /// Removes the events of `accounts` from every segment, through the writer (which closes
    /// its open segments first, so later batches go to new ones); blocks until done.
    pub fn erase_blocking(&self, accounts: &HashSet<(String, String)>) -> std::io::Result<u64> {
        let stopped = || std::io::Error::other("the event log's writer has stopped");
        let (done, answer) = mpsc::channel();
        self.jobs
            .send(Request::Erase(Erasure {
                accounts: accounts.clone(),
                done,
            }))
            .map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }
}

/// Platform → its segments (number, path) in order.
fn existing_segments(dir: &Path) -> Result<BTreeMap<String, Vec<(u64, PathBuf)>>, ServeError> {
    let mut out: BTreeMap<String, Vec<(u64, PathBuf)>> = BTreeMap::new();
    let Ok(platforms) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for entry in platforms.filter_map(|e| e.ok()) {
        let Some(platform) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !is_platform_name(&platform) || !entry.path().is_dir() {
            continue;
        }
        let files = std::fs::read_dir(entry.path()).map_err(|source| ServeError::EventLog {
            path: entry.path(),
            source,
        })?;
        let segments = out.entry(platform).or_default();
        for file in files.filter_map(|e| e.ok()) {
            let name = file.file_name();
            let number = name
                .to_str()
                .and_then(|n| n.strip_suffix(".jsonl"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(number) = number {
                segments.push((number, file.path()));
            }
        }
        segments.sort();
    }
    Ok(out)
}

/// Reads one segment, cutting off a torn last line.
fn recover_segment(
    root: &Path,
    platform: &str,
    path: &Path,
) -> Result<Vec<StoredEvent>, ServeError> {
    let io = |source| ServeError::EventLog {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    let whole = whole_lines(&bytes);
    if whole.len() < bytes.len() {
        let file = OpenOptions::new().write(true).open(path).map_err(io)?;
        file.set_len(whole.len() as u64).map_err(io)?;
        file.sync_all().map_err(io)?;
        eprintln!(
            "serve: cut a torn last line ({} bytes, never acknowledged) off {}",
            bytes.len() - whole.len(),
            path.display()
        );
    }
    let segment: Arc<str> = relative(root, path).into();
    let mut events = Vec::new();
    for (i, line) in whole.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<LoggedEvent>(line) {
            Ok(event) => events.push(StoredEvent {
                platform: platform.to_string(),
                segment: segment.clone(),
                line: i as u64 + 1,
                event,
            }),
            Err(e) => eprintln!(
                "serve: {}:{}: not an event ({e}); left for ingest to quarantine",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(events)
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

struct Segment {
    file: File,
    rel: Arc<str>,
    bytes: u64,
    lines: u64,
}

struct Writer {
    root: PathBuf,
    next_segment: u64,
    open: HashMap<String, Segment>,
}

impl Writer {
    fn run(mut self, requests: mpsc::Receiver<Request>) {
        while let Ok(first) = requests.recv() {
            // Appends waiting together commit as one group; an erasure waits for the group
            // before it and runs alone.
            let mut group = Vec::new();
            let mut erasure = None;
            for request in std::iter::once(first).chain(requests.try_iter()) {
                match request {
                    Request::Append(job) => group.push(job),
                    Request::Erase(e) => {
                        erasure = Some(e);
                        break;
                    }
                }
            }
            self.answer(group);
            if let Some(e) = erasure {
                self.open.clear();
                let removed = shopfuse_core::event_log::erase_accounts(&self.root, &e.accounts);
                let _ = e.done.send(removed);
            }
        }
    }

    fn answer(&mut self, group: Vec<Job>) {
        if group.is_empty() {
            return;
        }
        let outcome = self.commit(&group);
        for (job, answer) in group.into_iter().zip(outcome) {
            let _ = job.done.send(answer);
        }
    }

    /// Writes every job of the group, syncs each touched segment once, and answers.
    fn commit(&mut self, group: &[Job]) -> Vec<Result<BTreeMap<String, Placement>, String>> {
        let mut placements = Vec::with_capacity(group.len());
        let mut committed: HashMap<String, (u64, u64)> = HashMap::new();
        let result = (|| -> Result<(), String> {
            for job in group {
                let mut placed = BTreeMap::new();
                for (platform, chunk) in &job.chunks {
                    let segment = self.segment(platform)?;
                    committed
                        .entry(platform.clone())
                        .or_insert((segment.bytes, segment.lines));
                    segment
                        .file
                        .write_all(chunk)
                        .map_err(|e| format!("{}: {e}", segment.rel))?;
                    let first_line = segment.lines + 1;
                    segment.bytes += chunk.len() as u64;
                    segment.lines += job.lines[platform];
                    placed.insert(
                        platform.clone(),
                        Placement {
                            segment: segment.rel.clone(),
                            first_line,
                        },
                    );
                }
                placements.push(placed);
            }
            for platform in committed.keys() {
                let segment = &self.open[platform];
                segment
                    .file
                    .sync_data()
                    .map_err(|e| format!("{}: {e}", segment.rel))?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => placements.into_iter().map(Ok).collect(),
            Err(e) => {
                self.roll_back(&committed);
                group
                    .iter()
                    .map(|_| Err(format!("the event log could not be written: {e}")))
                    .collect()
            }
        }
    }

    /// Cuts each touched segment back to its length before the failed group.
    fn roll_back(&mut self, committed: &HashMap<String, (u64, u64)>) {
        for (platform, &(bytes, lines)) in committed {
            if let Some(segment) = self.open.get_mut(platform) {
                let cut = segment
                    .file
                    .set_len(bytes)
                    .and_then(|_| segment.file.sync_all());
                if cut.is_err() {
                    // Unknown state: begin a fresh segment; recovery trims a torn line.
                    self.open.remove(platform);
                } else {
                    segment.bytes = bytes;
                    segment.lines = lines;
                }
            }
        }
    }

    /// The platform's open segment, a new one when there is none or it is full.
    fn segment(&mut self, platform: &str) -> Result<&mut Segment, String> {
        let full = self
            .open
            .get(platform)
            .is_none_or(|s| s.bytes >= SEGMENT_BYTES);
        if full {
            let segment = self.create(platform)?;
            self.open.insert(platform.to_string(), segment);
        }
        Ok(self.open.get_mut(platform).expect("just opened"))
    }

    fn create(&mut self, platform: &str) -> Result<Segment, String> {
        let dir = event_log_dir(&self.root).join(platform);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // Never reuse a name: another writer (a second server on the project) may hold it.
        let (name, file) = loop {
            let name = format!("{:010}.jsonl", self.next_segment);
            self.next_segment += 1;
            let path = dir.join(&name);
            match OpenOptions::new().create_new(true).append(true).open(&path) {
                Ok(file) => break (name, file),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        };
        // The new name must survive a crash as well as the lines written under it.
        for d in [
            &dir,
            &dir.parent().map(Path::to_path_buf).unwrap_or_default(),
        ] {
            if let Ok(handle) = File::open(d) {
                let _ = handle.sync_all();
            }
        }
        Ok(Segment {
            file,
            rel: format!("{STATE_DIR}/{EVENT_LOG_DIR}/{platform}/{name}").into(),
            bytes: 0,
            lines: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> LoggedEvent {
        LoggedEvent {
            event_id: id.into(),
            account_id: "a".into(),
            listing_id: "l".into(),
            event_type: "view".into(),
            occurred_at: "2026-11-30T10:00:00Z".into(),
            session_id: None,
        }
    }

    #[tokio::test]
    async fn appended_events_are_recovered_and_a_torn_line_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, stored) = EventLog::open(dir.path()).unwrap();
            assert!(stored.is_empty());
            let batch = vec![
                ("jd".to_string(), event("e1")),
                ("taobao".to_string(), event("e2")),
                ("jd".to_string(), event("e3")),
            ];
            let placed = log.append(&batch).await.unwrap();
            assert_eq!(placed["jd"].first_line, 1);
            let placed = log
                .append(&[("jd".to_string(), event("e4"))])
                .await
                .unwrap();
            assert_eq!(placed["jd"].first_line, 3);
        }
        let jd = event_log_dir(dir.path())
            .join("jd")
            .join("0000000001.jsonl");
        let mut file = OpenOptions::new().append(true).open(&jd).unwrap();
        file.write_all(b"{\"event_id\":\"torn").unwrap();
        let (log, stored) = EventLog::open(dir.path()).unwrap();
        let ids: Vec<&str> = stored.iter().map(|s| s.event.event_id.as_str()).collect();
        assert_eq!(ids, ["e1", "e3", "e4", "e2"]);
        assert_eq!(stored[2].line, 3);
        assert!(std::fs::read(&jd).unwrap().ends_with(b"\n"));
        // A new start writes a new segment.
        let placed = log
            .append(&[("jd".to_string(), event("e5"))])
            .await
            .unwrap();
        assert_eq!(
            &*placed["jd"].segment,
            ".shopfuse/events/jd/0000000003.jsonl"
        );
    }
}
