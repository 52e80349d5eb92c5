//! The control protocol between `sharekeepctl` and `sharekeepd`: JSON lines over a Unix
//! socket, one typed [`Request`] per line, answered by zero or more [`Response::Progress`]
//! lines and one final response. The client opens with a hello carrying the protocol version;
//! lines longer than [`MAX_LINE`] are refused; errors are `{kind, message, path}`.

use serde::{Deserialize, Serialize};

/// The protocol version both sides must speak.
pub const PROTOCOL_VERSION: u32 = 1;
/// The longest line accepted, in bytes (newline included).
pub const MAX_LINE: usize = 64 * 1024;
/// The default socket path.
pub const DEFAULT_SOCKET: &str = "/run/sharekeep/ctl.sock";

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
}

impl Request {
    /// The share a request is about, if any (for authorisation).
    pub fn share(&self) -> Option<&str> {
        match self {
            Request::Backup { share }
            | Request::Snapshots { share }
            | Request::Versions { share, .. }
            | Request::Diff { share, .. }
            | Request::Restore { share, .. }
            | Request::Forget { share, .. }
            | Request::Check { share, .. } => Some(share),
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
    /// Total size of its files.
    pub total_bytes: u64,
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
            total_bytes: s.summary.total_bytes,
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
    /// A plan (before anything is done).
    pub fn from_plan(plan: &crate::RestorePlan) -> RestoreResult {
        RestoreResult {
            snapshot: plan.snapshot.id.to_hex(),
            target: plan.target_root.display().to_string(),
            entries: plan
                .entries
                .iter()
                .map(|e| PlanEntry {
                    path: e.path.clone(),
                    kind: e.kind,
                    action: e.action,
                    size: e.size,
                })
                .collect(),
            dry_run: true,
            created: 0,
            replaced: 0,
            metadata: 0,
            left: 0,
            bytes_written: 0,
            pre_restore: None,
            warnings: Vec::new(),
        }
    }

    /// What a restore did.
    pub fn from_report(plan: &crate::RestorePlan, r: &crate::RestoreReport) -> RestoreResult {
        RestoreResult {
            entries: Vec::new(),
            dry_run: false,
            created: r.created,
            replaced: r.replaced,
            metadata: r.metadata,
            left: r.left,
            bytes_written: r.bytes_written,
            pre_restore: r.pre_restore.as_ref().map(|s| s.id.to_hex()),
            warnings: r.warnings.clone(),
            ..RestoreResult::from_plan(plan)
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
    /// Retention decisions.
    Forget {
        /// Every snapshot.
        decisions: Vec<DecisionEntry>,
        /// Whether nothing was removed.
        dry_run: bool,
    },
    /// A check report.
    Check(Box<crate::CheckReport>),
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

#[cfg(test)]
mod tests {
    use super::*;

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
