//! The API's event log: behaviour events posted to `shopfuse serve`, kept as JSON Lines
//! under `.shopfuse/events/<platform>/<segment>.jsonl`, one canonical event per line.
//!
//! The server appends a batch and fsyncs it before it answers `202`; a crash can leave at
//! most a torn last line, which the server cuts off when it starts again (that batch was
//! never acknowledged). The pipeline reads the log as one more source per platform
//! ([`event_log_sources`]), added to the declared ones by [`crate::Project::open`]: ingest
//! treats each segment like any other file (content hash, quarantine, row accounting) and
//! reads only its whole lines, so a segment still being written is folded up to its last
//! complete event and again, replacing that, once it has grown. Clean drops a repeated
//! `event_id` of one platform, so an event retried by a client lands once.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{FileFormat, SourceConfig};
use crate::project::STATE_DIR;
use crate::EntityKind;

/// The log's folder under the state directory.
pub const EVENT_LOG_DIR: &str = "events";
/// The prefix of the sources the log adds; the rest is the platform.
pub const EVENT_SOURCE_PREFIX: &str = "api_events_";

/// One line of the log: the canonical event fields (`preset = "canonical"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggedEvent {
    /// The client's id for the event; the same id twice on one platform is one event.
    pub event_id: String,
    pub account_id: String,
    pub listing_id: String,
    /// view, favorite, cart or purchase.
    pub event_type: String,
    /// RFC 3339, UTC.
    pub occurred_at: String,
    pub session_id: Option<String>,
}

/// `<project>/.shopfuse/events`.
pub fn event_log_dir(root: &Path) -> PathBuf {
    root.join(STATE_DIR).join(EVENT_LOG_DIR)
}

/// The source of one platform's segments, as ingest sees it.
pub fn event_log_source(platform: &str) -> SourceConfig {
    SourceConfig {
        name: format!("{EVENT_SOURCE_PREFIX}{platform}"),
        platform: platform.to_string(),
        kind: EntityKind::Events,
        path: format!("{STATE_DIR}/{EVENT_LOG_DIR}/{platform}/*.jsonl"),
        format: Some(FileFormat::Jsonl),
        encoding: None,
        preset: Some("canonical".into()),
        timezone: Some("UTC".into()),
        currency: None,
        fields: Default::default(),
        values: Default::default(),
        append_only: true,
    }
}

/// One source per platform folder in the log, in name order; none when nothing was posted.
pub fn event_log_sources(root: &Path) -> Vec<SourceConfig> {
    let Ok(entries) = std::fs::read_dir(event_log_dir(root)) else {
        return Vec::new();
    };
    let mut platforms: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|p| is_platform_name(p))
        .collect();
    platforms.sort();
    platforms.iter().map(|p| event_log_source(p)).collect()
}

/// Platform names the log accepts as folder names: lower-case letters, digits and `_`.
pub fn is_platform_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The bytes up to and including the last newline: the whole lines of a log being written.
pub fn whole_lines(bytes: &[u8]) -> &[u8] {
    match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..=end],
        None => &[],
    }
}

/// Rewrites the log without the events of `accounts` (platform, account id) and returns how
/// many it removed. A changed segment is replaced whole (a new file, synced, renamed over
/// the old one), so a crash leaves either the old segment or the new one. The caller makes
/// sure no writer has a segment open (the server erases through its writer thread).
pub fn erase_accounts(
    root: &Path,
    accounts: &std::collections::HashSet<(String, String)>,
) -> std::io::Result<u64> {
    let mut removed = 0;
    let platforms: std::collections::BTreeSet<&str> =
        accounts.iter().map(|(p, _)| p.as_str()).collect();
    for platform in platforms {
        let dir = event_log_dir(root).join(platform);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "jsonl") {
                removed += erase_in_segment(&path, platform, accounts)?;
            }
        }
    }
    Ok(removed)
}

fn erase_in_segment(
    path: &Path,
    platform: &str,
    accounts: &std::collections::HashSet<(String, String)>,
) -> std::io::Result<u64> {
    let bytes = std::fs::read(path)?;
    let mut kept = Vec::with_capacity(bytes.len());
    let mut removed = 0;
    for line in whole_lines(&bytes).split_inclusive(|&b| b == b'\n') {
        let erased = serde_json::from_slice::<LoggedEvent>(line)
            .is_ok_and(|e| accounts.contains(&(platform.to_string(), e.account_id)));
        if erased {
            removed += 1;
        } else {
            kept.extend_from_slice(line);
        }
    }
    if removed > 0 {
        let tmp = path.with_extension("jsonl.tmp");
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&kept)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_follow_the_platform_folders() {
        let dir = tempfile::tempdir().unwrap();
        assert!(event_log_sources(dir.path()).is_empty());
        for p in ["jd", "taobao", "Bad Name"] {
            std::fs::create_dir_all(event_log_dir(dir.path()).join(p)).unwrap();
        }
        let names: Vec<String> = event_log_sources(dir.path())
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["api_events_jd", "api_events_taobao"]);
    }

    #[test]
    fn a_torn_last_line_is_not_read() {
        assert_eq!(whole_lines(b"{\"a\":1}\n{\"a\""), b"{\"a\":1}\n");
        assert_eq!(whole_lines(b"{\"a\":1}\n"), b"{\"a\":1}\n");
        assert_eq!(whole_lines(b"{\"a\""), b"");
    }
}
