//! The share's inotify watches (Linux), kept by a thread of their own: one non-recursive watch per
//! folder, added by a descriptor walk that never crosses a symlink or a mount (a member moving
//! in a link to `/` costs one watch, not the whole system's), within a budget.
//!
//! ```text
//! start: walk the share by descriptor (openat O_DIRECTORY|O_NOFOLLOW, same device), one
//!        watch per folder (through /proc/self/fd: the very folder opened)
//! events (IN_CREATE, IN_MOVED_FROM/TO, IN_ATTRIB), per batch read:
//!   a folder created or moved in from outside   -> watches added below it; Walk(path)
//!   a folder renamed within the share (cookie)  -> its watches keep their inodes: only their
//!                                                  paths change (no walk); Moved(from, to)
//!   a folder moved out                          -> its watches removed
//!   anything else created, moved in, chmod-ed   -> One(path) (a file, or the folder itself)
//!   queue overflow                              -> Rescan, watches rebuilt
//! budget reached (or the system's limit)        -> Budget once: the service then reconciles
//!                                                  more often; nothing below is missed for long
//! ```
//! Names are bytes: an event on a name that is not UTF-8 is reported on its folder (walked by
//! raw names).

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags};
use sharekeep_policies::walk;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

use super::{below, join, FsChange, Signal};

/// What the guard's status says it watches with, where fanotify is refused.
pub(crate) const HOW: &str = "inotify";

const MASK: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_ONLYDIR);

/// The watches of one share.
pub(crate) struct Watches {
    ino: Inotify,
    root: PathBuf,
    /// The share's filesystem: watches never cross a mount.
    dev: u64,
    by_wd: HashMap<WatchDescriptor, String>,
    budget: usize,
    over_budget: bool,
    /// Shown by `status`.
    count: Arc<AtomicU64>,
    name: String,
    mask: AddWatchFlags,
    /// Report files' changes too (the guard's watches).
    changes: bool,
}

impl Watches {
    pub(crate) fn new(
        root: &Path,
        budget: usize,
        name: &str,
        count: Arc<AtomicU64>,
    ) -> std::io::Result<Watches> {
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        let dev = rustix::fs::stat(root)?.st_dev;
        Ok(Watches {
            ino,
            root: root.to_path_buf(),
            dev,
            by_wd: HashMap::new(),
            budget,
            over_budget: false,
            count,
            name: name.to_string(),
            mask: MASK,
            changes: false,
        })
    }

    /// Watches that also report files written, made, renamed and removed
    /// ([`Signal::Changes`]): the guard's, where fanotify is refused.
    pub(crate) fn for_guard(mut self) -> Watches {
        self.mask = MASK | AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_DELETE;
        self.changes = true;
        self
    }

    /// Opens the folder `rel` from the share root, one name at a time, never following a link.
    fn open(&self, rel: &str) -> Option<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let root = rustix::fs::open(&self.root, flags, Mode::empty()).ok()?;
        walk::open_dir_beneath(&root, rel).ok()
    }

    /// Adds a watch on `rel` and every folder below it; `false` once the budget is reached.
    pub(crate) fn add_tree(&mut self, rel: &str) -> bool {
        let Some(top) = self.open(rel) else {
            return true;
        };
        let dev = self.dev;
        // (folder, its path): depth costs heap, never stack.
        let mut stack: Vec<(OwnedFd, String)> = vec![(top, rel.to_string())];
        while let Some((fd, rel)) = stack.pop() {
            match rustix::fs::fstat(&fd) {
                Ok(st) if st.st_dev == dev => {}
                _ => continue, // another filesystem: never watched
            }
            if !self.add(&fd, &rel) {
                return false;
            }
            let Ok(list) = walk::list(&fd) else {
                continue;
            };
            for (name, ft) in list {
                let is_dir = match ft {
                    FileType::Directory => true,
                    FileType::Unknown => {
                        rustix::fs::statat(&fd, &name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                            .is_ok_and(|s| {
                                FileType::from_raw_mode(s.st_mode) == FileType::Directory
                            })
                    }
                    _ => false,
                };
                if !is_dir {
                    continue;
                }
                let Ok(sub) = walk::open_dir(&fd, &name, None) else {
                    continue;
                };
                // A name that is not UTF-8: its events are reported on its parent.
                let rel = match name.to_str() {
                    Some(text) => join(&rel, text),
                    None => rel.clone(),
                };
                stack.push((sub, rel));
            }
        }
        true
    }

    fn add(&mut self, fd: &OwnedFd, rel: &str) -> bool {
        if self.by_wd.len() >= self.budget {
            return self.budget_reached(None);
        }
        // The very folder opened by descriptor (a magic link to it, not a path to resolve).
        let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        match self.ino.add_watch(proc_path.as_str(), self.mask) {
            Ok(wd) => {
                self.by_wd.insert(wd, rel.to_string());
                self.count.store(self.by_wd.len() as u64, Ordering::Relaxed);
                true
            }
            Err(nix::errno::Errno::ENOSPC) => {
                self.budget_reached(Some("the system's inotify limit"))
            }
            Err(_) => true, // vanished meanwhile
        }
    }

    fn budget_reached(&mut self, why: Option<&str>) -> bool {
        if !self.over_budget {
            self.over_budget = true;
            tracing::warn!(
                share = %self.name,
                "watch budget reached ({} folders{}): entries in folders beyond it get their rights from the periodic reconcile",
                self.by_wd.len(),
                why.map(|w| format!(", {w}")).unwrap_or_default()
            );
        }
        false
    }

    fn remove_below(&mut self, rel: &str) {
        let gone: Vec<WatchDescriptor> = self
            .by_wd
            .iter()
            .filter(|(_, p)| below(rel, p))
            .map(|(wd, _)| *wd)
            .collect();
        for wd in gone {
            let _ = self.ino.rm_watch(wd);
            self.by_wd.remove(&wd);
        }
        self.count.store(self.by_wd.len() as u64, Ordering::Relaxed);
    }

    /// A folder renamed within the share: its watches (on inodes) stay; their paths change.
    fn rename(&mut self, from: &str, to: &str) {
        for p in self.by_wd.values_mut() {
            if below(from, p) {
                *p = format!("{to}{}", &p[from.len()..]);
            }
        }
    }

    /// Handles one batch of events; returns what to report.
    fn handle(&mut self, events: Vec<nix::sys::inotify::InotifyEvent>) -> Vec<Signal> {
        let mut walk = Vec::new();
        let mut one = Vec::new();
        let mut out = Vec::new();
        let mut moved_from: HashMap<u32, String> = HashMap::new();
        let mut rescan = false;
        let mut changes: Vec<FsChange> = Vec::new();
        // Files renamed: paired by cookie within the batch (unpaired: moved in or out).
        let mut files_from: HashMap<u32, (usize, String)> = HashMap::new();
        for ev in events {
            if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                rescan = true;
                continue;
            }
            if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                self.by_wd.remove(&ev.wd);
                continue;
            }
            let Some(dir) = self.by_wd.get(&ev.wd).cloned() else {
                continue;
            };
            let Some(name) = ev.name.as_ref() else {
                // The watched folder itself (its mode or ACL changed).
                if ev.mask.contains(AddWatchFlags::IN_ATTRIB) {
                    one.push(dir);
                }
                continue;
            };
            let Some(text) = name.to_str() else {
                walk.push(dir);
                continue;
            };
            let rel = join(&dir, text);
            let is_dir = ev.mask.contains(AddWatchFlags::IN_ISDIR);
            if self.changes && !is_dir {
                let m = ev.mask;
                if m.contains(AddWatchFlags::IN_MOVED_FROM) {
                    files_from.insert(ev.cookie, (changes.len(), rel.clone()));
                    changes.push(FsChange::Deleted(rel.clone()));
                } else if m.contains(AddWatchFlags::IN_MOVED_TO) {
                    match files_from.remove(&ev.cookie) {
                        Some((i, from)) => {
                            changes[i] = FsChange::Renamed {
                                from,
                                to: rel.clone(),
                            }
                        }
                        None => changes.push(FsChange::Created(rel.clone())),
                    }
                } else if m.contains(AddWatchFlags::IN_CREATE) {
                    changes.push(FsChange::Created(rel.clone()));
                } else if m.contains(AddWatchFlags::IN_CLOSE_WRITE) {
                    changes.push(FsChange::Written(rel.clone()));
                } else if m.contains(AddWatchFlags::IN_DELETE) {
                    changes.push(FsChange::Deleted(rel.clone()));
                }
                if m.intersects(AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_DELETE) {
                    continue; // nothing for the rights
                }
            }
            if ev.mask.contains(AddWatchFlags::IN_MOVED_FROM) {
                if is_dir {
                    moved_from.insert(ev.cookie, rel);
                }
                continue;
            }
            if ev.mask.contains(AddWatchFlags::IN_MOVED_TO) && is_dir {
                if let Some(from) = moved_from.remove(&ev.cookie) {
                    self.rename(&from, &rel);
                    out.push(Signal::Moved { from, to: rel });
                    continue;
                }
            }
            if is_dir
                && ev
                    .mask
                    .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
            {
                if !self.add_tree(&rel) {
                    out.push(Signal::Budget);
                }
                walk.push(rel);
            } else if ev
                .mask
                .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
            {
                walk.push(rel);
            } else {
                one.push(rel);
            }
        }
        // Folders moved out of the share: their watches go.
        for (_, from) in moved_from {
            self.remove_below(&from);
        }
        if rescan {
            self.remove_below("");
            if !self.add_tree("") {
                out.push(Signal::Budget);
            }
            out.push(Signal::Rescan);
        }
        if !walk.is_empty() {
            out.push(Signal::Walk(walk));
        }
        if !one.is_empty() {
            out.push(Signal::One(one));
        }
        if !changes.is_empty() {
            out.push(Signal::Changes(changes));
        }
        out
    }
}

/// Runs the watcher of one share until `stop` is set or the receiver is gone.
pub(crate) fn run(mut w: Watches, tx: UnboundedSender<Signal>, stop: Arc<AtomicBool>) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    if !w.add_tree("") {
        let _ = tx.send(Signal::Budget);
    }
    tracing::debug!(share = %w.name, "watching {} folders", w.by_wd.len());
    while !stop.load(Ordering::Relaxed) {
        let ready = {
            let mut fds = [PollFd::new(w.ino.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(500u16))
        };
        match ready {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                tracing::error!(share = %w.name, "watching stopped ({e}); relying on periodic reconciles");
                let _ = tx.send(Signal::Budget);
                return;
            }
        }
        let mut events = Vec::new();
        loop {
            match w.ino.read_events() {
                Ok(mut batch) => events.append(&mut batch),
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(_) => break,
            }
            if events.len() > 10_000 {
                break;
            }
        }
        for s in w.handle(events) {
            if tx.send(s).is_err() {
                return;
            }
        }
    }
}
