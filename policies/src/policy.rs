//! The validated policy model: a share with resolved owner, group and admins, its rules with
//! inheritance already applied (each rule knows its effective read and write sets, and where
//! each came from), its backup plan and its Samba export. Built only by `validate.rs`.

use crate::principal::{Group, Principal, User};
use std::path::{Path, PathBuf};

/// Where something was written: file and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    /// Policy file.
    pub file: PathBuf,
    /// Line.
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.file.file_name().map(Path::new).unwrap_or(&self.file);
        write!(f, "{}:{}", name.display(), self.line)
    }
}

/// A set of principals and the line that set it (a rule's own key, or an enclosing one).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PrincipalSet {
    /// Who.
    pub principals: Vec<Principal>,
    /// Where this set was written.
    pub origin: Origin,
    /// Whether the rule inherited it instead of setting it.
    pub inherited: bool,
}

/// A rule, with inheritance applied. The `[access]` table is the rule for the share's root
/// (path `""`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    /// Path relative to the share root, `/`-separated, normalised (`""` for the root).
    pub path: String,
    /// Who may read (and list).
    pub read: PrincipalSet,
    /// Who may write (write implies read).
    pub write: PrincipalSet,
    /// Where the rule is.
    pub origin: Origin,
    /// The admin's comment.
    pub comment: Option<String>,
}

impl Rule {
    /// Whether this rule covers `rel` (its path or below).
    pub fn covers(&self, rel: &str) -> bool {
        self.path.is_empty()
            || rel == self.path
            || (rel.starts_with(&self.path) && rel.as_bytes().get(self.path.len()) == Some(&b'/'))
    }

    /// Path depth (0 for the root).
    pub fn depth(&self) -> usize {
        if self.path.is_empty() {
            0
        } else {
            self.path.split('/').count()
        }
    }
}

/// Retention rules (`keep = { … }`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Keep {
    /// Keep the last N snapshots.
    pub last: Option<u32>,
    /// Keep the last snapshot of each of the last N hours.
    pub hourly: Option<u32>,
    /// … days.
    pub daily: Option<u32>,
    /// … ISO weeks.
    pub weekly: Option<u32>,
    /// … months.
    pub monthly: Option<u32>,
    /// … years.
    pub yearly: Option<u32>,
    /// Keep everything newer than this many seconds.
    pub within_secs: Option<u64>,
    /// Keep snapshots with any of these tags.
    pub tags: Vec<String>,
}

impl Keep {
    /// Whether any rule is set.
    pub fn is_empty(&self) -> bool {
        self.last.is_none()
            && self.hourly.is_none()
            && self.daily.is_none()
            && self.weekly.is_none()
            && self.monthly.is_none()
            && self.yearly.is_none()
            && self.within_secs.is_none()
            && self.tags.is_empty()
    }
}

/// Where a plan's repository is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepositoryAddress {
    /// A local folder (absolute).
    Local(PathBuf),
    /// An object store or an SFTP server (`s3://…`, `sftp://…`), as written; validation refuses
    /// passwords in it, so it holds no secret.
    Remote(String),
}

impl RepositoryAddress {
    /// Parses what a policy wrote: `s3://` and `sftp://` are remote, anything else a path.
    pub fn parse(text: &str) -> RepositoryAddress {
        let t = text.trim();
        if is_remote_url(t) {
            RepositoryAddress::Remote(t.to_string())
        } else {
            RepositoryAddress::Local(PathBuf::from(t))
        }
    }

    /// The folder, for a local repository.
    pub fn local(&self) -> Option<&Path> {
        match self {
            RepositoryAddress::Local(p) => Some(p),
            RepositoryAddress::Remote(_) => None,
        }
    }

    /// Whether it is on another machine.
    pub fn is_remote(&self) -> bool {
        matches!(self, RepositoryAddress::Remote(_))
    }
}

/// Whether `text` names a remote store (`s3://`, `sftp://`).
pub fn is_remote_url(text: &str) -> bool {
    text.starts_with("s3://") || text.starts_with("sftp://")
}

impl std::fmt::Display for RepositoryAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RepositoryAddress::Local(p) => write!(f, "{}", p.display()),
            RepositoryAddress::Remote(u) => f.write_str(u),
        }
    }
}

impl serde::Serialize for RepositoryAddress {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The share's backup plan.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupPlan {
    /// Cron expression with seconds, as written.
    pub schedule_text: String,
    /// Parsed schedule.
    #[serde(skip)]
    pub schedule: cron::Schedule,
    /// The repository: a local folder, or `s3://…` / `sftp://…`.
    pub repository: RepositoryAddress,
    /// Retention; `None` keeps everything.
    pub keep: Option<Keep>,
    /// No snapshot younger than this many days is ever removed.
    pub keep_min_days: u32,
    /// Exclude patterns.
    pub exclude: Vec<String>,
    /// Refuse to back up into a repository that others than root may read (default true).
    pub repository_private: bool,
    /// Restore drills: when (`daily`, `weekly`, `monthly` or a cron expression), as written.
    pub drill_text: Option<String>,
    /// Their schedule.
    #[serde(skip)]
    pub drill: Option<cron::Schedule>,
    /// Files restored by each drill (the largest file is added).
    pub drill_sample: u32,
    /// An alert fires when no backup succeeded for longer than this (seconds).
    pub max_age_secs: Option<u64>,
    /// The key of the repository and of its copies (a root-only file): a repository created
    /// by the service is encrypted with it.
    pub key_file: Option<PathBuf>,
    /// After each successful backup, its snapshots are copied there (`s3://…`, `sftp://…` or
    /// a local folder).
    pub copy_to: Option<String>,
    /// Retention applied to the copies; `None` keeps every copied snapshot.
    pub copy_keep: Option<Keep>,
}

/// The Samba export.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Samba {
    /// Whether to export.
    pub export: bool,
    /// Share name on the network (default: the share's name).
    pub name: String,
    /// Comment shown to clients.
    pub comment: Option<String>,
    /// Whether the share is listed.
    pub browseable: bool,
    /// Whether the share's snapshots are its Previous Versions (Windows Explorer), through
    /// sharekeepd's mount of them and Samba's `shadow_copy2`.
    pub previous_versions: bool,
}

/// What the service does when a user's changes look like an attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GuardAction {
    /// Take write away (from the user, or from everyone when the writer is unknown), pin the
    /// last good snapshot, back up the damage, alert.
    Lock,
    /// Alert only.
    Alert,
}

/// `[guard]`: the share's defence against mass changes (ransomware through a member's PC).
/// Counts are per user over a sliding minute.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Guard {
    /// Existing files rewritten (new files do not count).
    pub rewrites_per_minute: u32,
    /// Files whose new content looks encrypted: random-looking bytes where the extension
    /// promises a format (a `.docx` is a zip, a `.pdf` starts with `%PDF`) or text.
    pub suspicious_per_minute: u32,
    /// Files renamed to one same new extension.
    pub renames_per_minute: u32,
    /// Files deleted.
    pub deletions_per_minute: u32,
    /// One same new file name created in this many folders (a ransom note).
    pub note_folders: u32,
    /// What to do.
    pub action: GuardAction,
}

impl Default for Guard {
    /// Tuned so that a working day of edits run at full speed (the benchmark's "day of edits":
    /// 1 % of the documents rewritten, 150 new, 80 deleted) never triggers.
    fn default() -> Guard {
        Guard {
            rewrites_per_minute: 1000,
            suspicious_per_minute: 20,
            renames_per_minute: 20,
            deletions_per_minute: 1000,
            note_folders: 8,
            action: GuardAction::Lock,
        }
    }
}

/// Write taken away by the service's guard (not written in policy files: kept in the service's
/// state until an admin releases it).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Lockdown {
    /// Users who may only read, wherever the policy lets them write.
    pub users: Vec<LockedUser>,
    /// Everyone may only read (the writer could not be told).
    pub share: bool,
}

/// A user whose write the guard took away.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LockedUser {
    /// The user.
    pub user: User,
    /// Their groups (primary and supplementary) when the lock was read: write they get through
    /// a group is taken away too.
    pub groups: Vec<u32>,
}

impl Lockdown {
    /// Whether anything is locked.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && !self.share
    }
}

/// A validated share policy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Policy {
    /// The file it came from.
    pub file: PathBuf,
    /// Share name.
    pub name: String,
    /// The service folder (absolute).
    pub path: PathBuf,
    /// Owner of the share's files.
    pub owner: User,
    /// Group of the share's files.
    pub group: Group,
    /// Who may manage the share and restore anything.
    pub admins: Vec<Principal>,
    /// Description.
    pub description: Option<String>,
    /// Rules, the root (`[access]`) first, then by increasing depth.
    pub rules: Vec<Rule>,
    /// Backup plan.
    pub backup: Option<BackupPlan>,
    /// Samba export.
    pub samba: Samba,
    /// The share's defence against mass changes (`None`: off).
    pub guard: Option<Guard>,
    /// Write taken away by the guard (empty as loaded from the file).
    pub lockdown: Lockdown,
}

impl Policy {
    /// The most specific rule covering `rel` (a path relative to the share root).
    pub fn rule_for(&self, rel: &str) -> &Rule {
        self.rules
            .iter()
            .filter(|r| r.covers(rel))
            .max_by_key(|r| r.depth())
            .expect("the root rule covers everything")
    }

    /// Whether everything below `a` has the same rights as it would have below `b` (and the
    /// reverse): the same rule covers both and no rule lies inside either. A folder renamed from
    /// `a` to `b` then needs no walk: only the folder itself is checked.
    pub fn same_rights_below(&self, a: &str, b: &str) -> bool {
        let inside = |top: &str, p: &str| {
            top.is_empty()
                || (p.len() > top.len() && p.starts_with(top) && p.as_bytes()[top.len()] == b'/')
        };
        std::ptr::eq(self.rule_for(a), self.rule_for(b))
            && !self.rules.iter().any(|r| {
                !r.path.is_empty()
                    && (inside(a, &r.path) || inside(b, &r.path) || r.path == a || r.path == b)
            })
    }

    /// The path of `abs` relative to the share root, if it is inside the share.
    pub fn relative(&self, abs: &Path) -> Option<String> {
        let rel = abs.strip_prefix(&self.path).ok()?;
        Some(
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/"),
        )
    }
}

/// Parses a duration such as `2d`, `36h`, `1y6m`, `2w` (y = 365 days, m = 30 days).
pub fn parse_duration(text: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut num = String::new();
    let mut any = false;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            'y' => 365 * 86400,
            'm' => 30 * 86400,
            'w' => 7 * 86400,
            'd' => 86400,
            'h' => 3600,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        any = true;
    }
    (num.is_empty() && any).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("2d", Some(2 * 86400)),
            ("36h", Some(36 * 3600)),
            ("1y6m", Some((365 + 180) * 86400)),
            ("2w", Some(14 * 86400)),
            ("", None),
            ("5", None),
            ("3x", None),
            ("d", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), want, "{text:?}");
        }
    }
}
