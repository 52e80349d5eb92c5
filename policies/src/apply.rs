//! Plan, then apply: walk a share and compare every directory and file with the rights the
//! policy gives it; the plan lists the drift (before/after), applying fixes it.
//!
//! The walker runs as root inside a folder that users write to, so it trusts no path:
//!
//! ```text
//! open the share root with O_DIRECTORY|O_NOFOLLOW; note its device
//! visit(dir_fd, rel):
//!     check/fix the directory itself through dir_fd
//!     for each name in dir_fd (read fully first, then processed):
//!         statat(dir_fd, name, AT_SYMLINK_NOFOLLOW)
//!         directory -> openat(O_DIRECTORY|O_NOFOLLOW); another device: refused (mount
//!                      point); swapped for a link meanwhile: the open fails, refused
//!         file      -> openat(O_PATH|O_NOFOLLOW), fstat: still a regular file, else refused;
//!                      more than one hard link: refused (it may be a file outside the share)
//!         symlink, fifo, socket, device -> skipped, never opened
//! ```
//! Only as many descriptors as the tree is deep are open at once.

use crate::acl::linux::PosixAcls;
use crate::acl::{Acl, AclSystem, EntryState, Tag};
use crate::policy::Policy;
use crate::rights::Rights;
use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

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
    /// Now.
    pub before: StateView,
    /// As the policy says.
    pub after: StateView,
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

#[derive(Default)]
struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Names {
    fn user(&mut self, uid: u32) -> String {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(uid.into())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
                    .unwrap_or_else(|| uid.to_string())
            })
            .clone()
    }
    fn group(&mut self, gid: u32) -> String {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(gid.into())
                    .ok()
                    .flatten()
                    .map(|g| g.name)
                    .unwrap_or_else(|| gid.to_string())
            })
            .clone()
    }
    fn acl(&mut self, acl: &Acl) -> String {
        let mut named = HashMap::new();
        for e in acl.entries() {
            match e.tag {
                Tag::User(u) => {
                    named.insert(e.tag, self.user(u));
                }
                Tag::Group(g) => {
                    named.insert(e.tag, self.group(g));
                }
                _ => {}
            }
        }
        acl.text(&|t| named.get(&t).cloned().unwrap_or_default())
    }
    fn view(&mut self, s: &EntryState) -> StateView {
        StateView {
            owner: self.user(s.uid),
            group: self.group(s.gid),
            mode: format!("{:04o}", s.mode),
            acl: self.acl(&s.access),
            default_acl: s.default.as_ref().map(|d| self.acl(d)),
        }
    }
}

fn differences(have: &EntryState, want: &EntryState) -> Vec<&'static str> {
    let mut out = Vec::new();
    if have.uid != want.uid {
        out.push("owner");
    }
    if have.gid != want.gid {
        out.push("group");
    }
    if have.mode != want.mode {
        out.push("mode");
    }
    if have.access != want.access {
        out.push("acl");
    }
    if have.default != want.default {
        out.push("default acl");
    }
    out
}

struct Walker<'a> {
    rights: Rights<'a>,
    mode: WalkMode,
    acls: PosixAcls,
    dev: u64,
    names: Names,
    report: Report,
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

impl Walker<'_> {
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

    fn check(&mut self, fd: &OwnedFd, rel: &str, is_dir: bool) {
        self.report.checked += 1;
        let have = match self.acls.read(fd, is_dir) {
            Ok(h) => h,
            Err(e) => return self.error(rel, e),
        };
        let exec = !is_dir && have.mode & 0o100 != 0;
        let want = self.rights.desired(rel, is_dir, exec);
        let changes = differences(&have, &want);
        if changes.is_empty() {
            return;
        }
        let drift = Drift {
            path: shown(rel),
            kind: if is_dir { "dir" } else { "file" },
            changes,
            before: self.names.view(&have),
            after: self.names.view(&want),
        };
        self.report.drift.push(drift);
        if self.mode == WalkMode::Apply {
            match self.acls.write(fd, is_dir, &have, &want) {
                Ok(()) => self.report.changed += 1,
                Err(e) => self.error(rel, e),
            }
        }
    }

    fn visit(&mut self, dir: OwnedFd, rel: &str) {
        self.check(&dir, rel, true);
        let mut names: Vec<OsString> = Vec::new();
        match rustix::fs::Dir::read_from(&dir) {
            Ok(entries) => {
                for e in entries {
                    match e {
                        Ok(e) => {
                            let n = e.file_name().to_bytes();
                            if n != b"." && n != b".." {
                                names.push(std::ffi::OsStr::from_bytes(n).to_os_string());
                            }
                        }
                        Err(err) => {
                            self.error(rel, err);
                            break;
                        }
                    }
                }
            }
            Err(e) => return self.error(rel, e),
        }
        names.sort();
        for name in names {
            let child = join(rel, &name.to_string_lossy());
            let st = match rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(rustix::io::Errno::NOENT) => continue, // removed meanwhile
                Err(e) => {
                    self.error(&child, e);
                    continue;
                }
            };
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => {
                    let fd = match rustix::fs::openat(
                        &dir,
                        &name,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    ) {
                        Ok(fd) => fd,
                        Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
                            self.refuse(
                                &child,
                                "replaced by a link or a file during the walk; left alone",
                            );
                            continue;
                        }
                        Err(rustix::io::Errno::NOENT) => continue,
                        Err(e) => {
                            self.error(&child, e);
                            continue;
                        }
                    };
                    match rustix::fs::fstat(&fd) {
                        Ok(s) if s.st_dev != self.dev => {
                            self.refuse(&child, "another filesystem is mounted here; left alone");
                        }
                        Ok(_) => self.visit(fd, &child),
                        Err(e) => self.error(&child, e),
                    }
                }
                FileType::RegularFile => {
                    let fd = match rustix::fs::openat(
                        &dir,
                        &name,
                        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    ) {
                        Ok(fd) => fd,
                        Err(rustix::io::Errno::NOENT) => continue,
                        Err(e) => {
                            self.error(&child, e);
                            continue;
                        }
                    };
                    match rustix::fs::fstat(&fd) {
                        Ok(s) if FileType::from_raw_mode(s.st_mode) != FileType::RegularFile => {
                            self.refuse(&child, "replaced during the walk; left alone");
                        }
                        Ok(s) if s.st_nlink > 1 => {
                            self.refuse(&child, format!("has {} hard links (one may be outside the share); left unchanged", s.st_nlink));
                        }
                        Ok(s) if s.st_dev != self.dev => {
                            self.refuse(&child, "on another filesystem; left alone");
                        }
                        Ok(_) => self.check(&fd, &child, false),
                        Err(e) => self.error(&child, e),
                    }
                }
                _ => self.report.skipped += 1,
            }
        }
    }
}

fn shown(rel: &str) -> String {
    if rel.is_empty() {
        ".".into()
    } else {
        rel.to_string()
    }
}

/// Walks `policy`'s share, comparing (and with [`WalkMode::Apply`] fixing) every entry.
pub fn run(policy: &Policy, mode: WalkMode) -> std::io::Result<Report> {
    let root = rustix::fs::open(
        &policy.path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", policy.path.display())))?;
    let dev = rustix::fs::fstat(&root)?.st_dev;
    let mut w = Walker {
        rights: Rights::new(policy),
        mode,
        acls: PosixAcls,
        dev,
        names: Names::default(),
        report: Report {
            share: policy.name.clone(),
            ..Report::default()
        },
    };
    w.visit(root, "");
    Ok(w.report)
}

/// The drift between the share and its policy, changing nothing.
pub fn plan(policy: &Policy) -> std::io::Result<Report> {
    run(policy, WalkMode::Plan)
}

/// Makes the share match its policy.
pub fn apply(policy: &Policy) -> std::io::Result<Report> {
    run(policy, WalkMode::Apply)
}
