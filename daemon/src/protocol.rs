//! The control protocol between `sharekeepctl` and `sharekeepd`: JSON lines over a Unix
//! socket, one typed [`Request`] per line, answered by zero or more [`Response::Progress`]
//! lines and one final response. The client opens with a hello carrying the protocol version;
//! lines longer than [`MAX_LINE`] are refused; errors are `{kind, message, path}`.
//!
//! Content (a restore copy written by the caller, `cat`) follows a [`Response::Stream`] line
//! as length-prefixed binary frames (see [`frame`]), not base64 in JSON: a member's copy of a
//! folder goes at socket speed with bounded memory on both sides.
//!
//! This module has no async code: `sharekeepctl` uses it without compiling the service.

use serde::{Deserialize, Serialize};

/// The protocol version both sides must speak.
pub const PROTOCOL_VERSION: u32 = 2;
/// The longest line accepted, in bytes (newline included).
pub const MAX_LINE: usize = 64 * 1024;
/// The default socket path.
#[cfg(unix)]
pub const DEFAULT_SOCKET: &str = "/run/sharekeep/ctl.sock";
/// The default control channel: sharekeepd's named pipe.
#[cfg(windows)]
pub const DEFAULT_SOCKET: &str = r"\\.\pipe\sharekeepd";

/// A request from the client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// First line of every connection.
    Hello {
        /// The client's protocol version.
        version: u32,
    },
    /// Every share: policy state, drift, last and next backup.
    Status,
    /// Reload the policies now.
    Reload,
    /// Back up a share now (merged with a running or queued backup of it).
    Backup {
        /// Share name.
        share: String,
    },
    /// A share's snapshots.
    Snapshots {
        /// Share name.
        share: String,
    },
    /// The versions of a file of a share.
    Versions {
        /// Share name.
        share: String,
        /// Path, relative to the share or absolute.
        path: String,
    },
    /// What changed between two snapshots of a share.
    Diff {
        /// Share name.
        share: String,
        /// Older snapshot (id prefix, latest, @TIME).
        from: String,
        /// Newer snapshot.
        to: String,
    },
    /// Restore from a share's snapshot (in place, or under `to`).
    Restore {
        /// Share name.
        share: String,
        /// Snapshot (id prefix, latest, @TIME).
        snapshot: String,
        /// Paths inside the snapshot (empty: everything).
        paths: Vec<String>,
        /// Target directory (`None`: in place).
        to: Option<String>,
        /// `never`, `if-changed` or `always`.
        overwrite: String,
        /// Plan only.
        dry_run: bool,
        /// Stream the entries back so that the caller writes them (a copy `--to DIR` by anyone
        /// but root must be written by the caller: the kernel checks their rights).
        #[serde(default)]
        stream: bool,
    },
    /// The entries of a snapshot of a share below a path.
    Ls {
        /// Share name.
        share: String,
        /// Snapshot (id prefix, latest, @TIME).
        snapshot: String,
        /// Path inside the snapshot (empty: everything).
        #[serde(default)]
        path: String,
    },
    /// A file's content from a snapshot of a share (streamed).
    Cat {
        /// Share name.
        share: String,
        /// Snapshot (id prefix, latest, @TIME).
        snapshot: String,
        /// Path inside the snapshot.
        path: String,
    },
    /// Apply the share's retention rules (its policy's `keep`).
    Forget {
        /// Share name.
        share: String,
        /// List only.
        dry_run: bool,
    },
    /// Check the share's repository.
    Check {
        /// Share name.
        share: String,
        /// Read data: percentage of packs.
        read_data: Option<f64>,
    },
    /// The report for the client (`sharekeep::report`).
    Report {
        /// Share name.
        share: String,
        /// First day.
        from: chrono::NaiveDate,
        /// Last day.
        to: chrono::NaiveDate,
    },
    /// A restore drill of the share's latest snapshot, now.
    Drill {
        /// Share name.
        share: String,
        /// Files drawn (default: the policy's `drill_sample`).
        sample: Option<usize>,
    },
    /// The share's guard: locks in place, incidents.
    Guard {
        /// Share name.
        share: String,
    },
    /// Gives write back: every lock of the share, or the one of `user`.
    GuardRelease {
        /// Share name.
        share: String,
        /// A user name or uid; `None`: every lock.
        user: Option<String>,
    },
    /// Undoes what an incident's user changed, from the snapshot the guard pinned.
    Rollback {
        /// Share name.
        share: String,
        /// The incident's id (`guard status` lists them).
        incident: String,
        /// Plan only.
        dry_run: bool,
    },
}

impl Request {
    /// The request's name (`op`), for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Hello { .. } => "hello",
            Request::Status => "status",
            Request::Reload => "reload",
            Request::Backup { .. } => "backup",
            Request::Snapshots { .. } => "snapshots",
            Request::Versions { .. } => "versions",
            Request::Diff { .. } => "diff",
            Request::Restore { .. } => "restore",
            Request::Ls { .. } => "ls",
            Request::Cat { .. } => "cat",
            Request::Forget { .. } => "forget",
            Request::Check { .. } => "check",
            Request::Drill { .. } => "drill",
            Request::Report { .. } => "report",
            Request::Guard { .. } => "guard",
            Request::GuardRelease { .. } => "guard_release",
            Request::Rollback { .. } => "rollback",
        }
    }

    /// The share a request is about, if any (for authorisation).
    pub fn share(&self) -> Option<&str> {
        match self {
            Request::Backup { share }
            | Request::Snapshots { share }
            | Request::Versions { share, .. }
            | Request::Diff { share, .. }
            | Request::Restore { share, .. }
            | Request::Ls { share, .. }
            | Request::Cat { share, .. }
            | Request::Forget { share, .. }
            | Request::Check { share, .. }
            | Request::Drill { share, .. }
            | Request::Report { share, .. }
            | Request::Guard { share }
            | Request::GuardRelease { share, .. }
            | Request::Rollback { share, .. } => Some(share),
            _ => None,
        }
    }
}

/// One share's state, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareStatus {
    /// Share name.
    pub name: String,
    /// The share's folder.
    pub path: String,
    /// The policy file.
    pub file: String,
    /// `ok`, `stale` (the file is broken: the last good version is enforced) or `unmanaged`
    /// (broken and never loaded).
    pub policy: String,
    /// The current problems of the policy file, if any.
    pub problems: Vec<String>,
    /// Entries whose rights were fixed since the service started.
    pub drift_fixed: u64,
    /// Entries checked since the service started.
    pub checked: u64,
    /// Folders of the share watched for changes.
    #[serde(default)]
    pub watches: u64,
    /// The last full reconcile (RFC 3339).
    pub last_reconcile: Option<String>,
    /// The last successful backup (RFC 3339) and its snapshot.
    pub last_backup: Option<String>,
    /// Its snapshot id.
    pub last_snapshot: Option<String>,
    /// The last backup's outcome (`ok`, `warnings`, or the error).
    pub last_result: Option<String>,
    /// The next scheduled backup (RFC 3339).
    pub next_backup: Option<String>,
    /// Whether a backup is running.
    pub running: bool,
    /// The last restore drill (RFC 3339).
    #[serde(default)]
    pub last_drill: Option<String>,
    /// Its outcome in words (`ok: 51 of 16013 files` / `FAILED: …`).
    #[serde(default)]
    pub last_drill_result: Option<String>,
    /// When the next drill is due (RFC 3339).
    #[serde(default)]
    pub next_drill: Option<String>,
    /// Where the share's snapshots are copied (`copy_to`), and the last copy's outcome in
    /// words (`ok: …` / `failed: …`).
    #[serde(default)]
    pub copy_to: Option<String>,
    /// The last copy's outcome.
    #[serde(default)]
    pub last_copy: Option<String>,
    /// Write taken away by the guard (empty: none).
    #[serde(default)]
    pub locks: Vec<GuardLock>,
}

/// Write the guard took away, until an admin gives it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardLock {
    /// The user (`None`: everyone, the writer could not be told).
    pub user: Option<String>,
    /// Their uid.
    pub uid: Option<u32>,
    /// Since when (RFC 3339).
    pub since: String,
    /// The incident that caused it.
    pub incident: String,
}

/// What the guard saw: one attack (or what looked like one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// `YYYYMMDD-HHMMSS-user`.
    pub id: String,
    /// Whose changes (`None`: a process that could not be attributed).
    pub user: Option<String>,
    /// Their uid.
    pub uid: Option<u32>,
    /// The signal, in words.
    pub reason: String,
    /// The first change of the window that triggered (RFC 3339).
    pub started: String,
    /// When it triggered (RFC 3339).
    pub detected: String,
    /// Whether write was taken away (`[guard] action = "lock"`).
    pub locked: bool,
    /// Entries the user changed, recorded so far.
    pub changes: u64,
    /// A few of them.
    pub examples: Vec<String>,
    /// When an admin gave write back (RFC 3339).
    #[serde(default)]
    pub released: Option<String>,
    /// The last snapshot before the attack, tagged `guard`: retention keeps it.
    #[serde(default)]
    pub pinned: Option<String>,
    /// When an admin rolled it back (RFC 3339).
    #[serde(default)]
    pub rolled_back: Option<String>,
}

/// What a rollback did (or, dry, will do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackResult {
    /// Share name.
    pub share: String,
    /// The incident.
    pub incident: String,
    /// The snapshot entries are brought back from (full id).
    pub snapshot: String,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Entries to bring back / brought back.
    pub restore: usize,
    /// Entries to remove / removed.
    pub remove: usize,
    /// Entries left as they are, with why.
    pub left: Vec<crate::UndoStep>,
    /// Every step (dry run only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<crate::UndoStep>,
    /// Bytes written.
    pub bytes_written: u64,
    /// The snapshot holding what was replaced or removed.
    pub pre_restore: Option<String>,
    /// (path, why) of what could not be done.
    pub warnings: Vec<(String, String)>,
    /// Entries given today's policy rights after the restore.
    pub rights_applied: u64,
}

/// A share's guard, as `guard status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardReport {
    /// Share name.
    pub share: String,
    /// Whether the policy has `[guard]`.
    pub enabled: bool,
    /// How the share is watched (`fanotify`, or why it is not).
    pub watching: String,
    /// Locks in place.
    pub locks: Vec<GuardLock>,
    /// Incidents, oldest first.
    pub incidents: Vec<Incident>,
}

/// A snapshot as listed through the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotEntry {
    /// Full id.
    pub id: String,
    /// RFC 3339 time.
    pub time: String,
    /// Host.
    pub host: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Backed-up folder.
    pub paths: Vec<String>,
    /// Total size of its files (not shown to members: it counts files they may not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
}

/// An entry of a snapshot, as `ls` through the daemon lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LsEntry {
    /// Path relative to the snapshot's root.
    pub path: String,
    /// The entry (content and subtree ids left out).
    pub node: crate::Node,
}

/// One version of a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionEntry {
    /// Content id (hex).
    pub content: String,
    /// Size.
    pub size: u64,
    /// mtime (ns) when first seen.
    pub mtime_ns: i64,
    /// Oldest snapshot holding it.
    pub first: SnapshotEntry,
    /// Newest snapshot holding it.
    pub last: SnapshotEntry,
    /// How many snapshots hold it.
    pub snapshots: usize,
}

/// One entry of a restore plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// Path relative to the target.
    pub path: String,
    /// `file`, `dir`…
    #[serde(rename = "type")]
    pub kind: crate::NodeKind,
    /// What happens to it.
    pub action: crate::Action,
    /// Bytes to write.
    pub size: u64,
}

/// A restore plan, or what a restore did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreResult {
    /// The snapshot (full id).
    pub snapshot: String,
    /// The target directory.
    pub target: String,
    /// The plan (dry run).
    pub entries: Vec<PlanEntry>,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Entries created.
    pub created: usize,
    /// Replaced.
    pub replaced: usize,
    /// Metadata restored.
    pub metadata: usize,
    /// Left as they were.
    pub left: usize,
    /// Bytes written.
    pub bytes_written: u64,
    /// The pre-restore snapshot, if one was written.
    pub pre_restore: Option<String>,
    /// (path, message) of what could not be restored.
    pub warnings: Vec<(String, String)>,
    /// Entries of a managed share given today's policy rights after an in-place restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rights_applied: Option<u64>,
    /// (path, kept as) of entries a copy replaced: the previous entry is kept beside it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept_aside: Vec<(String, String)>,
}

/// Retention's decision on one snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionEntry {
    /// Full id.
    pub id: String,
    /// RFC 3339 time.
    pub time: String,
    /// Kept.
    pub keep: bool,
    /// The rules keeping it.
    pub reasons: Vec<String>,
}

impl SnapshotEntry {
    /// From a snapshot.
    pub fn from_snapshot(s: &crate::Snapshot) -> SnapshotEntry {
        SnapshotEntry {
            id: s.id.to_hex(),
            time: s.time.to_rfc3339(),
            host: s.host.clone(),
            tags: s.tags.clone(),
            paths: s.paths.clone(),
            total_bytes: Some(s.summary.total_bytes),
        }
    }
}

impl VersionEntry {
    /// From a version found by `versions`.
    pub fn from_version(v: &crate::Version) -> VersionEntry {
        VersionEntry {
            content: v.content.to_hex(),
            size: v.size,
            mtime_ns: v.mtime_ns,
            first: SnapshotEntry::from_snapshot(&v.first),
            last: SnapshotEntry::from_snapshot(&v.last),
            snapshots: v.snapshots,
        }
    }
}

impl DecisionEntry {
    /// From a retention decision.
    pub fn from_decision(d: &crate::Decision) -> DecisionEntry {
        DecisionEntry {
            id: d.id.to_hex(),
            time: d.time.to_rfc3339(),
            keep: d.keep,
            reasons: d.reasons.clone(),
        }
    }
}

impl RestoreResult {
    /// Nothing done yet.
    pub fn empty(snapshot: &str, target: &str, dry_run: bool) -> RestoreResult {
        RestoreResult {
            snapshot: snapshot.to_string(),
            target: target.to_string(),
            entries: Vec::new(),
            dry_run,
            created: 0,
            replaced: 0,
            metadata: 0,
            left: 0,
            bytes_written: 0,
            pre_restore: None,
            warnings: Vec::new(),
            rights_applied: None,
            kept_aside: Vec::new(),
        }
    }

    /// A plan (before anything is done), every entry listed.
    pub fn from_plan(
        plan: &crate::RestorePlan,
        repo: &crate::Repository,
    ) -> crate::Result<RestoreResult> {
        Ok(RestoreResult {
            entries: plan
                .entries(repo)?
                .into_iter()
                .map(|e| PlanEntry {
                    path: e.path,
                    kind: e.kind,
                    action: e.action,
                    size: e.size,
                })
                .collect(),
            ..RestoreResult::empty(
                &plan.snapshot.id.to_hex(),
                &plan.target_root.display().to_string(),
                true,
            )
        })
    }

    /// What a restore did (the entries are not listed again).
    pub fn from_report(plan: &crate::RestorePlan, r: &crate::RestoreReport) -> RestoreResult {
        RestoreResult {
            dry_run: false,
            created: r.created,
            replaced: r.replaced,
            metadata: r.metadata,
            left: r.left,
            bytes_written: r.bytes_written,
            pre_restore: r.pre_restore.as_ref().map(|s| s.id.to_hex()),
            warnings: r.warnings.clone(),
            ..RestoreResult::empty(
                &plan.snapshot.id.to_hex(),
                &plan.target_root.display().to_string(),
                false,
            )
        }
    }
}

/// A response line from the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    /// Answer to the hello.
    Hello {
        /// The service's protocol version.
        version: u32,
        /// The service's version.
        server: String,
    },
    /// Progress of a long operation (more lines follow).
    Progress {
        /// What is happening.
        message: String,
    },
    /// Status of every share the caller may see.
    Status {
        /// Shares.
        shares: Vec<ShareStatus>,
    },
    /// Snapshots of a share.
    Snapshots {
        /// Oldest first.
        snapshots: Vec<SnapshotEntry>,
    },
    /// The versions of a file.
    Versions {
        /// Newest first.
        versions: Vec<VersionEntry>,
    },
    /// Differences between two snapshots.
    Diff {
        /// Older snapshot id.
        from: String,
        /// Newer snapshot id.
        to: String,
        /// Changes in path order.
        changes: Vec<crate::Change>,
    },
    /// A restore plan or result.
    Restore(Box<RestoreResult>),
    /// Entries of a snapshot.
    Ls {
        /// The snapshot (full id).
        snapshot: String,
        /// Its root (the backed-up folder).
        root: String,
        /// Entries in path order.
        entries: Vec<LsEntry>,
    },
    /// Binary frames follow (see [`frame`]) until an end or error frame.
    Stream {
        /// The snapshot (full id).
        snapshot: String,
        /// Its root (the backed-up folder).
        root: String,
    },
    /// Retention decisions.
    Forget {
        /// Every snapshot.
        decisions: Vec<DecisionEntry>,
        /// Whether nothing was removed.
        dry_run: bool,
    },
    /// A check report.
    Check(Box<crate::CheckReport>),
    /// A drill's result.
    Drill(Box<crate::DrillReport>),
    /// A share's report.
    Report(Box<crate::report::Report>),
    /// A share's guard.
    Guard(Box<GuardReport>),
    /// A rollback's result.
    Rollback(Box<RollbackResult>),
    /// A backup finished.
    BackupDone {
        /// The snapshot written, as `Snapshot::to_json` gives it.
        snapshot: serde_json::Value,
        /// Entries that could not be read (`path: why`).
        warnings: Vec<String>,
    },
    /// Done, nothing more to say.
    Ok {
        /// A short message.
        message: String,
    },
    /// The request failed.
    Error {
        /// Machine-readable kind (`refused`, `bad_request`, `not_found`, `busy`, `io`…).
        kind: String,
        /// What went wrong and what to do.
        message: String,
        /// The path concerned, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
}

impl Response {
    /// An error response.
    pub fn error(kind: &str, message: impl Into<String>) -> Response {
        Response::Error {
            kind: kind.into(),
            message: message.into(),
            path: None,
        }
    }
}

/// The binary frames that follow a [`Response::Stream`] line: one tag byte, a little-endian
/// `u32` payload length, the payload. Lengths are claims: a reader refuses anything longer than
/// [`frame::MAX_PAYLOAD`] before allocating.
///
/// ```text
/// E {path, node, leading}   an entry (JSON); a file's content follows as D frames, then F
/// D bytes                   the next bytes of the current file
/// F                         the current file is complete
/// W {path, message}         the current entry failed (damaged data…): drop what was written
/// Z {entries, bytes}        the end (JSON)
/// X {kind, message, path}   the request failed midway (JSON error); nothing more follows
/// ```
pub mod frame {
    use serde::{Deserialize, Serialize};
    use std::io::{Read, Write};

    /// The largest payload a frame may claim (a blob is at most 16 MiB, see `config.rs`).
    pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;
    /// An entry.
    pub const ENTRY: u8 = b'E';
    /// File content.
    pub const DATA: u8 = b'D';
    /// End of a file's content.
    pub const FILE_END: u8 = b'F';
    /// The current entry failed.
    pub const WARNING: u8 = b'W';
    /// End of the stream.
    pub const END: u8 = b'Z';
    /// The request failed.
    pub const ERROR: u8 = b'X';

    /// An entry of a streamed selection.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Entry {
        /// Path relative to the target, `/`-separated components (bytes).
        pub path: crate::Bytes,
        /// The entry's metadata (content and subtree ids left out).
        pub node: crate::Node,
        /// A leading directory of a selected path: created if missing, left as is otherwise.
        #[serde(default)]
        pub leading: bool,
    }

    /// A failed entry.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct Warning {
        /// Its path relative to the target.
        pub path: String,
        /// Why.
        pub message: String,
    }

    /// The end of a stream.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    pub struct End {
        /// Entries sent.
        pub entries: u64,
        /// Content bytes sent.
        pub bytes: u64,
    }

    /// The 5-byte header of a frame.
    pub fn header(tag: u8, len: usize) -> [u8; 5] {
        let n = u32::try_from(len).expect("frames are smaller than 4 GiB");
        let b = n.to_le_bytes();
        [tag, b[0], b[1], b[2], b[3]]
    }

    /// A whole frame (header and payload) in one buffer.
    pub fn encode(tag: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(5 + payload.len());
        v.extend_from_slice(&header(tag, payload.len()));
        v.extend_from_slice(payload);
        v
    }

    /// A frame whose payload is `value` as JSON.
    pub fn encode_json<T: Serialize>(tag: u8, value: &T) -> Vec<u8> {
        encode(tag, &serde_json::to_vec(value).expect("frames serialize"))
    }

    /// Writes one frame.
    pub fn write(w: &mut dyn Write, tag: u8, payload: &[u8]) -> std::io::Result<()> {
        w.write_all(&header(tag, payload.len()))?;
        w.write_all(payload)
    }

    /// Reads one frame into `buf` (reused); returns its tag. A claimed length over
    /// [`MAX_PAYLOAD`] is an error before anything is allocated.
    pub fn read(r: &mut dyn Read, buf: &mut Vec<u8>) -> std::io::Result<u8> {
        let mut h = [0u8; 5];
        r.read_exact(&mut h)?;
        let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("a frame claims {len} bytes (at most {MAX_PAYLOAD}): refused"),
            ));
        }
        buf.clear();
        buf.resize(len, 0);
        r.read_exact(buf)?;
        Ok(h[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_claims_are_refused() {
        let mut wire = Vec::new();
        frame::write(&mut wire, frame::DATA, b"hello").unwrap();
        wire.extend(frame::encode_json(
            frame::END,
            &frame::End {
                entries: 1,
                bytes: 5,
            },
        ));
        let mut r = &wire[..];
        let mut buf = Vec::new();
        assert_eq!(frame::read(&mut r, &mut buf).unwrap(), frame::DATA);
        assert_eq!(buf, b"hello");
        assert_eq!(frame::read(&mut r, &mut buf).unwrap(), frame::END);
        let end: frame::End = serde_json::from_slice(&buf).unwrap();
        assert_eq!(end.bytes, 5);
        let huge = frame::header(frame::DATA, frame::MAX_PAYLOAD + 1);
        let err = frame::read(&mut &huge[..], &mut buf).unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
    }

    #[test]
    fn requests_are_json_lines_with_an_op() {
        let r = Request::Backup {
            share: "commercial".into(),
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(line, r#"{"op":"backup","share":"commercial"}"#);
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
        assert!(
            serde_json::from_str::<Request>(r#"{"op":"backup","share":"x","extra":1}"#).is_err()
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"format_disk"}"#).is_err());
    }

    #[test]
    fn errors_carry_kind_message_and_path() {
        let e = Response::Error {
            kind: "refused".into(),
            message: "m".into(),
            path: Some("/p".into()),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"type":"error","kind":"refused","message":"m","path":"/p"}"#
        );
    }
}
