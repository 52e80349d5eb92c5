//! Snapshots: the record of one backup (when, of what, which root tree, and what it found), and
//! how users name them: an id prefix, `latest`, or `@TIME` (the newest snapshot at or before a
//! local time). Selection is a pure function of the snapshot list.

use crate::error::{Error, Result};
use crate::id::Id;
use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use serde::{Deserialize, Serialize};

/// What a backup found and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    /// Files not in the parent snapshot.
    pub files_new: u64,
    /// Files whose content or metadata changed since the parent.
    pub files_changed: u64,
    /// Files unchanged since the parent (not read again).
    pub files_unchanged: u64,
    /// Directories not in the parent.
    pub dirs_new: u64,
    /// Directories whose tree changed.
    pub dirs_changed: u64,
    /// Directories whose tree did not change.
    pub dirs_unchanged: u64,
    /// Other entries (symlinks, fifos, devices, sockets).
    pub others: u64,
    /// Bytes of file content read.
    pub bytes_read: u64,
    /// Total size of the files in the snapshot.
    pub total_bytes: u64,
    /// Total number of files in the snapshot.
    pub total_files: u64,
    /// Blobs added to the repository.
    pub blobs_added: u64,
    /// Raw bytes of the blobs added.
    pub bytes_added: u64,
    /// Bytes written to the repository (packs, index, snapshot).
    pub bytes_stored: u64,
    /// Entries that could not be read (each logged as a warning with its path).
    pub warnings: u64,
    /// Start of the backup.
    pub started: Option<DateTime<Local>>,
    /// Duration in seconds.
    pub seconds: f64,
}

/// One backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Its id (the sha256 of the file); not stored in the file itself.
    #[serde(skip)]
    pub id: Id,
    /// When it was taken.
    pub time: DateTime<Local>,
    /// Host name.
    pub host: String,
    /// User who took it.
    #[serde(default)]
    pub username: String,
    /// The backed-up root (absolute path).
    pub paths: Vec<String>,
    /// Tags (`pre-restore` for the safety copies restores make).
    #[serde(default)]
    pub tags: Vec<String>,
    /// The backed-up root directory's listing (its tree blob).
    pub tree: Id,
    /// Parent snapshot used for change detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Id>,
    /// For a copy (`sharekeepctl copy`), the snapshot first copied (in the repository the
    /// chain of copies started from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Id>,
    /// What the backup did.
    #[serde(default)]
    pub summary: Summary,
    /// The sharekeep version that wrote it.
    #[serde(default)]
    pub program_version: String,
}

impl Snapshot {
    /// The backed-up root.
    pub fn root(&self) -> &str {
        self.paths.first().map(String::as_str).unwrap_or("/")
    }

    /// The snapshot as `--json` shows it (with its id), for listings and the protocol.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id.to_hex(),
            "short_id": self.id.short(),
            "time": self.time.to_rfc3339(),
            "host": self.host,
            "username": self.username,
            "paths": self.paths,
            "tags": self.tags,
            "tree": self.tree.to_hex(),
            "parent": self.parent.map(|p| p.to_hex()),
            "summary": self.summary,
        })
    }

    /// Whether it carries a tag.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// How a user names a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The newest.
    Latest,
    /// The newest at or before this instant.
    AtOrBefore(DateTime<Local>),
    /// An id prefix (lowercase hex).
    Prefix(String),
}

/// The tag of the snapshots a restore writes of what it replaces.
pub const PRE_RESTORE_TAG: &str = "pre-restore";

impl Selector {
    /// Parses `latest`, `@TIME` or a hex prefix of at least 4 digits.
    ///
    /// `@TIME` is a local date (`@2026-11-28`: the end of that day), or a local date and time
    /// (`@2026-11-28T18:00`, `@2026-11-28 18:00:30`).
    pub fn parse(s: &str) -> Result<Selector> {
        let bad = || Error::BadSelector {
            selector: s.to_string(),
        };
        if s == "latest" {
            return Ok(Selector::Latest);
        }
        if let Some(t) = s.strip_prefix('@') {
            return parse_local_time(t)
                .map(Selector::AtOrBefore)
                .ok_or_else(bad);
        }
        let lower = s.to_ascii_lowercase();
        if lower.len() >= 4 && lower.len() <= 64 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Selector::Prefix(lower));
        }
        Err(bad())
    }

    /// Picks the snapshot this selector names among `snapshots`. `latest` and `@TIME` name
    /// backups of the whole folder: a `pre-restore` snapshot (only what a restore replaced)
    /// is never picked by them, only by its id.
    pub fn select<'a>(&self, snapshots: &'a [Snapshot], text: &str) -> Result<&'a Snapshot> {
        let not_found = || Error::SnapshotNotFound {
            selector: text.to_string(),
        };
        let whole = || snapshots.iter().filter(|s| !s.has_tag(PRE_RESTORE_TAG));
        match self {
            Selector::Latest => whole().max_by_key(|s| s.time).ok_or_else(not_found),
            Selector::AtOrBefore(t) => whole()
                .filter(|s| s.time <= *t)
                .max_by_key(|s| s.time)
                .ok_or_else(not_found),
            Selector::Prefix(p) => {
                let mut matches = snapshots.iter().filter(|s| s.id.to_hex().starts_with(p));
                let first = matches.next().ok_or_else(not_found)?;
                let more = matches.count();
                if more > 0 {
                    return Err(Error::SnapshotAmbiguous {
                        selector: text.to_string(),
                        count: more + 1,
                    });
                }
                Ok(first)
            }
        }
    }
}

fn parse_local_time(t: &str) -> Option<DateTime<Local>> {
    let t = t.trim();
    let naive = if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        d.and_time(NaiveTime::from_hms_nano_opt(23, 59, 59, 999_999_999)?)
    } else {
        let t = t.replacen(' ', "T", 1);
        NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M"))
            .ok()?
    };
    // In a DST gap there is no such local time; take the earliest valid interpretation.
    Local.from_local_datetime(&naive).earliest().or_else(|| {
        Local
            .from_local_datetime(&(naive + chrono::Duration::hours(1)))
            .earliest()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(hex_first: u8, time: &str) -> Snapshot {
        let mut id = [0u8; 32];
        id[0] = hex_first;
        Snapshot {
            id: Id(id),
            time: parse_local_time(time).unwrap(),
            host: "h".into(),
            username: "u".into(),
            paths: vec!["/srv".into()],
            tags: vec![],
            tree: Id::default(),
            parent: None,
            original: None,
            summary: Summary::default(),
            program_version: String::new(),
        }
    }

    #[test]
    fn selectors_pick_the_right_snapshot() {
        let mut pre = snap(0xc4, "2026-11-29T10:00");
        pre.tags = vec![PRE_RESTORE_TAG.into()];
        let list = vec![
            snap(0xa1, "2026-11-27T18:30"),
            snap(0xa2, "2026-11-28T18:30"),
            snap(0xb3, "2026-11-29T09:00"),
            // What a restore replaced: never `latest`, only by its id.
            pre,
        ];
        let cases: &[(&str, Option<u8>)] = &[
            ("latest", Some(0xb3)),
            ("@2026-11-29T11:00", Some(0xb3)),
            ("c400", Some(0xc4)),
            ("@2026-11-28", Some(0xa2)),
            ("@2026-11-28T18:00", Some(0xa1)),
            ("@2026-11-28T18:30", Some(0xa2)),
            ("@2026-11-28 18:30:00", Some(0xa2)),
            ("@2026-11-26", None),
            ("b300", Some(0xb3)),
            ("B300", Some(0xb3)),
            ("c000", None),
        ];
        for (text, want) in cases {
            let sel = Selector::parse(text).unwrap();
            let got = sel.select(&list, text).ok().map(|s| s.id.0[0]);
            assert_eq!(got, *want, "selector {text}");
        }
    }

    #[test]
    fn ambiguous_prefix_is_an_error() {
        let list = vec![
            snap(0xa1, "2026-11-27T18:30"),
            snap(0xa1, "2026-11-28T18:30"),
        ];
        let err = Selector::parse("a100")
            .unwrap()
            .select(&list, "a100")
            .unwrap_err();
        assert!(
            matches!(err, Error::SnapshotAmbiguous { count: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn bad_selectors_say_what_is_accepted() {
        for bad in ["", "abc", "yesterday", "@28/11/2026", "zzzz"] {
            let err = Selector::parse(bad).unwrap_err();
            assert!(err.to_string().contains("latest"), "{bad}: {err}");
        }
    }

    #[test]
    fn empty_repository_has_no_latest() {
        let err = Selector::Latest.select(&[], "latest").unwrap_err();
        assert!(matches!(err, Error::SnapshotNotFound { .. }));
    }
}
