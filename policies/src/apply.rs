//! Plan, then apply: walk a share and compare every directory and file with the rights the
//! policy gives it; the plan lists the drift (before/after), applying fixes it.
//!
//! The walk is the same on every platform; what it opens and how it reads and writes rights
//! is the [`AclSystem`] (POSIX ACLs through descriptors on Linux, NTFS ACLs through handles on
//! Windows). It runs as root inside a folder that users write to, so it trusts no path (as on
//! Linux; on Windows, handles opened relative to their parent, reparse points never followed):
//!
//! ```text
//! open the share root with O_DIRECTORY|O_NOFOLLOW; note its device; queue = [""]
//! workers (one per core), for each directory path taken from the queue:
//!     open it from the root, one component at a time, O_DIRECTORY|O_NOFOLLOW: a component
//!     swapped for a link fails to open and is refused; another device: refused (mount point)
//!     check/fix the directory itself through its descriptor
//!     for each entry (type from getdents, statat when unknown):
//!         directory -> queued
//!         file      -> openat(O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_NOCTTY), fstat: still a
//!                      regular file (else refused, closed unread); more than one hard
//!                      link: refused (it may be a file outside the share); checked/fixed
//!                      through the descriptor
//!         symlink, fifo, socket, device -> skipped, never opened
//! ```
//! Descriptors are held only while a directory is processed, so the tree's size or depth never
//! exhausts them.

use crate::acl::AclSystem;
use crate::acl::{Handle, Meta};
use crate::policy::Policy;
use crate::rights::Rights;
use crate::walk::{Kind, Refused, Tree};
use std::ffi::OsString;
use std::sync::{Arc, Condvar, Mutex};

/// Plan only, or change what differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkMode {
    /// Compute the drift, change nothing.
    Plan,
    /// Fix the drift.
    Apply,
}

/// The rights of an entry in words, for plans.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StateView {
    /// Owner name.
    pub owner: String,
    /// Group name.
    pub group: String,
    /// Octal mode (with setgid…).
    pub mode: String,
    /// Access ACL, short text.
    pub acl: String,
    /// Default ACL (directories).
    pub default_acl: Option<String>,
}

/// One entry whose rights differ from the policy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Drift {
    /// Path relative to the share root (`.` for the root).
    pub path: String,
    /// `dir` or `file`.
    pub kind: &'static str,
    /// What differs: owner, group, mode, acl, default acl.
    pub changes: Vec<&'static str>,
    /// Now (in plans).
    pub before: Option<StateView>,
    /// As the policy says (in plans).
    pub after: Option<StateView>,
}

/// An entry left alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    /// Path relative to the share root.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// What a plan or an apply found and did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Report {
    /// Share name.
    pub share: String,
    /// Directories and files checked.
    pub checked: u64,
    /// Entries that differ(ed).
    pub drift: Vec<Drift>,
    /// Entries changed (apply).
    pub changed: u64,
    /// Entries left alone on purpose (hard links, mount points, swapped entries).
    pub refused: Vec<Refusal>,
    /// Symlinks, fifos, sockets and devices (never touched).
    pub skipped: u64,
    /// Entries that could not be read or changed.
    pub errors: Vec<Refusal>,
}

struct Shared<S: AclSystem> {
    rights: Rights,
    mode: WalkMode,
    dev: u64,
    root: Handle<S>,
    work: Mutex<(Vec<Pending<S>>, usize)>,
    wake: Condvar,
}

/// A directory waiting to be walked: opened by its name (bytes, as on disk) in its parent's
/// descriptor, so a folder costs one `openat` whatever its depth, and a name that is not UTF-8
/// (a Latin-1 `é` from an old Windows copy) is opened as it is. `rel` is its path as text, for
/// the rights lookup and messages.
struct Pending<S: AclSystem> {
    /// `None`: open `rel` from the share root, one component at a time (the walk's start).
    parent: Option<Arc<Handle<S>>>,
    name: OsString,
    rel: String,
}

struct Worker<'s, S: AclSystem> {
    shared: &'s Shared<S>,
    sys: &'s S,
    names: S::Names,
    report: Report,
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

fn shown(rel: &str) -> String {
    if rel.is_empty() {
        ".".into()
    } else {
        rel.to_string()
    }
}

impl<S: AclSystem> Worker<'_, S> {
    fn error(&mut self, rel: &str, e: impl std::fmt::Display) {
        self.report.errors.push(Refusal {
            path: shown(rel),
            reason: e.to_string(),
        });
    }

    fn refuse(&mut self, rel: &str, reason: impl Into<String>) {
        self.report.refused.push(Refusal {
            path: shown(rel),
            reason: reason.into(),
        });
    }

    fn check(&mut self, h: &Handle<S>, meta: &Meta<S>, rel: &str, is_dir: bool) {
        self.report.checked += 1;
        let have = match self.sys.read(h, meta, is_dir) {
            Ok(h) => h,
            Err(e) => return self.error(rel, e),
        };
        let want = match self.sys.desired(&self.shared.rights, rel, is_dir, &have) {
            Ok(w) => w,
            Err(e) => return self.error(rel, e),
        };
        let changes = S::differences(&have, &want);
        if changes.is_empty() {
            return;
        }
        let planning = self.shared.mode == WalkMode::Plan;
        let drift = Drift {
            path: shown(rel),
            kind: if is_dir { "dir" } else { "file" },
            changes,
            before: planning.then(|| S::view(&mut self.names, &have)),
            after: planning.then(|| S::view(&mut self.names, &want)),
        };
        self.report.drift.push(drift);
        if !planning {
            match self.sys.write(h, is_dir, &have, &want) {
                Ok(()) => self.report.changed += 1,
                Err(e) => self.error(rel, e),
            }
        }
    }

    /// Sorts an open failure into nothing (gone), a refusal or an error.
    fn opened(&mut self, rel: &str, r: Result<Handle<S>, Refused>) -> Option<Handle<S>> {
        match r {
            Ok(h) => Some(h),
            Err(Refused::Missing) => None,
            Err(Refused::Replaced) => {
                self.refuse(
                    rel,
                    "replaced by a link or a file during the walk; left alone",
                );
                None
            }
            Err(e @ Refused::Other(_)) => {
                self.error(rel, e);
                None
            }
        }
    }

    /// Opens `rel` from the share root, one component at a time, never following a link.
    fn open_dir(&mut self, rel: &str) -> Option<Handle<S>> {
        let r = self.sys.tree().open_beneath(&self.shared.root, rel);
        self.opened(rel, r)
    }

    fn file(&mut self, dir: &Handle<S>, name: &std::ffi::OsStr, rel: &str) {
        let r = self.sys.tree().open_file(dir, name);
        let Some(h) = self.opened(rel, r) else {
            return;
        };
        match self.sys.tree().meta(&h) {
            Ok(m) if <S::Tree as Tree>::kind(&m) != Kind::File => {
                self.refuse(rel, "replaced during the walk; left alone")
            }
            Ok(m) if <S::Tree as Tree>::links(&m) > 1 => self.refuse(
                rel,
                format!(
                    "has {} hard links (one may be outside the share); left unchanged",
                    <S::Tree as Tree>::links(&m)
                ),
            ),
            Ok(m) if <S::Tree as Tree>::volume(&m) != self.shared.dev => {
                self.refuse(rel, "on another filesystem; left alone")
            }
            Ok(m) => self.check(&h, &m, rel, false),
            Err(e) => self.error(rel, e),
        }
    }

    /// Opens a pending directory by name in its parent, never following a link.
    fn open_pending(&mut self, item: &Pending<S>) -> Option<Handle<S>> {
        let Some(parent) = &item.parent else {
            return self.open_dir(&item.rel);
        };
        let r = self.sys.tree().open_dir(parent.as_ref(), &item.name);
        self.opened(&item.rel, r)
    }

    /// Checks an open directory itself; false if it is not to be walked (a mount point).
    fn check_dir(&mut self, dir: &Handle<S>, rel: &str) -> bool {
        match self.sys.tree().meta(dir) {
            Ok(m) if <S::Tree as Tree>::volume(&m) != self.shared.dev => {
                self.refuse(rel, "another filesystem is mounted here; left alone");
                false
            }
            Ok(m) => {
                self.check(dir, &m, rel, true);
                true
            }
            Err(e) => {
                self.error(rel, e);
                false
            }
        }
    }

    /// Checks one directory and its files; returns its subdirectories.
    fn directory(&mut self, item: Pending<S>) -> Vec<Pending<S>> {
        let rel = item.rel.as_str();
        let Some(dir) = self.open_pending(&item) else {
            return Vec::new();
        };
        let dir = Arc::new(dir);
        if !self.check_dir(&dir, rel) {
            return Vec::new();
        }
        let entries = match self.sys.tree().list(dir.as_ref()) {
            Ok(e) => e,
            Err(e) => {
                self.error(rel, e);
                return Vec::new();
            }
        };
        let mut subdirs = Vec::new();
        for (name, mut kind) in entries {
            let child = join(rel, &name.to_string_lossy());
            if kind == Kind::Unknown {
                kind = match self.sys.tree().kind_at(&dir, &name) {
                    Ok(k) => k,
                    Err(Refused::Missing) => continue,
                    Err(e) => {
                        self.error(&child, e);
                        continue;
                    }
                };
            }
            match kind {
                Kind::Dir => subdirs.push(Pending {
                    parent: Some(dir.clone()),
                    name,
                    rel: child,
                }),
                Kind::File => self.file(&dir, &name, &child),
                _ => self.report.skipped += 1,
            }
        }
        subdirs
    }

    fn run(mut self) -> Report {
        let shared = self.shared;
        loop {
            let rel = {
                let mut work = shared.work.lock().expect("lock");
                loop {
                    if let Some(rel) = work.0.pop() {
                        work.1 += 1;
                        break rel;
                    }
                    if work.1 == 0 {
                        shared.wake.notify_all();
                        return self.report;
                    }
                    work = shared.wake.wait(work).expect("lock");
                }
            };
            let subdirs = self.directory(rel);
            let mut work = shared.work.lock().expect("lock");
            work.0.extend(subdirs);
            work.1 -= 1;
            shared.wake.notify_all();
        }
    }
}

/// Walks `policy`'s share, comparing (and with [`WalkMode::Apply`] fixing) every entry.
pub fn run(policy: &Policy, mode: WalkMode) -> std::io::Result<Report> {
    walk(policy, mode, &[""], true)
}

/// Like [`run_below`], for the entry at `rel` alone (a directory's entries are not walked):
/// what the service does when a folder is renamed within rights that do not change.
pub fn run_one(policy: &Policy, mode: WalkMode, rel: &str) -> std::io::Result<Report> {
    walk(policy, mode, &[rel], false)
}

/// Like [`run`], for the entry at `rel` (relative to the share root) and, if it is a
/// directory, everything below it: what the service does when entries appear or change.
pub fn run_below(policy: &Policy, mode: WalkMode, rel: &str) -> std::io::Result<Report> {
    walk(policy, mode, &[rel], true)
}

/// Like [`run_below`], for several entries in one walk (the policy's rights worked out once):
/// what a restore or a rollback applies to what it wrote.
pub fn run_below_each(policy: &Policy, mode: WalkMode, rels: &[&str]) -> std::io::Result<Report> {
    walk(policy, mode, rels, true)
}

fn walk(policy: &Policy, mode: WalkMode, rels: &[&str], below: bool) -> std::io::Result<Report> {
    walk_with(&crate::acl::Native::default(), policy, mode, rels, below)
}

fn walk_with<S: AclSystem>(
    sys: &S,
    policy: &Policy,
    mode: WalkMode,
    rels: &[&str],
    below: bool,
) -> std::io::Result<Report> {
    let root = sys.tree().open_root(&policy.path)?;
    let dev = <S::Tree as Tree>::volume(
        &sys.tree()
            .meta(&root)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", policy.path.display())))?,
    );
    let shared = Shared::<S> {
        rights: Rights::new(policy),
        mode,
        dev,
        root,
        work: Mutex::new((Vec::new(), 0)),
        wake: Condvar::new(),
    };
    // Single entries are checked here; directories below which to walk go to the workers.
    let mut w = Worker {
        shared: &shared,
        sys,
        names: Default::default(),
        report: Report {
            share: policy.name.clone(),
            ..Report::default()
        },
    };
    for rel in rels {
        let rel = rel.trim_matches('/');
        if rel.is_empty() {
            shared.work.lock().expect("lock").0.push(Pending {
                parent: None,
                name: OsString::new(),
                rel: String::new(),
            });
            continue;
        }
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let Some(dir) = w.open_dir(parent) else {
            continue;
        };
        let name = std::ffi::OsStr::new(name);
        match sys.tree().kind_at(&dir, name) {
            Ok(Kind::Dir) if !below => {
                if let Some(d) = w.open_pending(&Pending {
                    parent: Some(Arc::new(dir)),
                    name: name.to_os_string(),
                    rel: rel.to_string(),
                }) {
                    w.check_dir(&d, rel);
                }
            }
            Ok(Kind::Dir) => {
                shared.work.lock().expect("lock").0.push(Pending {
                    parent: None,
                    name: OsString::new(),
                    rel: rel.to_string(),
                });
            }
            Ok(Kind::File) => w.file(&dir, name, rel),
            Ok(_) => w.report.skipped += 1,
            Err(_) => {} // gone meanwhile
        }
    }
    let mut report = w.report;
    if shared.work.lock().expect("lock").0.is_empty() {
        return Ok(report);
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let reports: Vec<Report> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let w = Worker {
                    shared: &shared,
                    sys,
                    names: Default::default(),
                    report: Report::default(),
                };
                s.spawn(move || w.run())
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("walker thread"))
            .collect()
    });
    for r in reports {
        report.checked += r.checked;
        report.changed += r.changed;
        report.skipped += r.skipped;
        report.drift.extend(r.drift);
        report.refused.extend(r.refused);
        report.errors.extend(r.errors);
    }
    report.drift.sort_by(|a, b| a.path.cmp(&b.path));
    report.refused.sort_by(|a, b| a.path.cmp(&b.path));
    report.errors.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(report)
}

/// The drift between the share and its policy, changing nothing.
pub fn plan(policy: &Policy) -> std::io::Result<Report> {
    run(policy, WalkMode::Plan)
}

/// Makes the share match its policy.
pub fn apply(policy: &Policy) -> std::io::Result<Report> {
    run(policy, WalkMode::Apply)
}
