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
}

impl Request {
    /// The share a request is about, if any (for authorisation).
    pub fn share(&self) -> Option<&str> {
        match self {
            Request::Backup { share } | Request::Snapshots { share } => Some(share),
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
    /// A backup finished.
    BackupDone {
        /// The snapshot written.
        snapshot: String,
        /// Entries that could not be read.
        warnings: u64,
        /// One-line summary.
        summary: String,
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
