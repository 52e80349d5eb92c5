//! The share's watch on Windows: one recursive ReadDirectoryChangesW watch of the share's
//! root through notify (its Windows backend asks for names, attributes, sizes, write times
//! and security descriptors), read by a thread of its own. ReadDirectoryChangesW reports the
//! changes of the volume's own entries below the root: a junction's target is not watched.
//!
//! ```text
//! events (paths relative to the root), per batch:
//!   created (file or folder)                     -> Walk(path)
//!   renamed within the share (old name, then new) -> a folder: Moved(from, to); a file: Walk(to)
//!   renamed in from outside (a new name alone)   -> Walk(path)
//!   modified (attributes, security, contents)    -> One(path)
//!   an error of the watch (buffer overflow…)     -> Rescan
//! with for_guard: files created, written, renamed, removed -> Changes
//! ```
//! The budget does not apply: one watch covers the share, whatever its folders.

use super::{FsChange, Signal};
use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// What the guard's status says it watches with.
pub(crate) const HOW: &str = "ReadDirectoryChangesW";

/// The watch of one share.
pub(crate) struct Watches {
    root: PathBuf,
    /// Kept alive: dropping it ends the watch.
    watcher: notify::RecommendedWatcher,
    events: Receiver<notify::Result<notify::Event>>,
    count: Arc<AtomicU64>,
    name: String,
    /// Report files' changes too (the guard's watch).
    changes: bool,
}

impl Watches {
    /// Watches the share's root and everything below it (`_budget`: one watch covers it all).
    pub(crate) fn new(
        root: &Path,
        _budget: usize,
        name: &str,
        count: Arc<AtomicU64>,
    ) -> std::io::Result<Watches> {
        let (tx, events) = std::sync::mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |ev| {
            let _ = tx.send(ev);
        })
        .map_err(std::io::Error::other)?;
        watcher
            .watch(root, RecursiveMode::Recursive)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", root.display())))?;
        count.store(1, Ordering::Relaxed);
        Ok(Watches {
            root: root.to_path_buf(),
            watcher,
            events,
            count,
            name: name.to_string(),
            changes: false,
        })
    }

    /// A watch that also reports files written, made, renamed and removed
    /// ([`Signal::Changes`]): the guard's.
    pub(crate) fn for_guard(mut self) -> Watches {
        self.changes = true;
        self
    }

    /// `path` relative to the root, `/`-separated; `None` outside it or not Unicode.
    fn rel(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?;
        let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        Some(parts?.join("/"))
    }

    fn is_dir(&self, rel: &str) -> bool {
        std::fs::symlink_metadata(self.root.join(rel)).is_ok_and(|m| m.is_dir())
    }

    /// Handles one batch of events; returns what to report.
    fn handle(&self, events: Vec<notify::Result<notify::Event>>) -> Vec<Signal> {
        let mut walk = Vec::new();
        let mut one = Vec::new();
        let mut out = Vec::new();
        let mut changes = Vec::new();
        let mut rescan = false;
        // The old name of a rename, waiting for its new one (the next event).
        let mut from: Option<String> = None;
        for ev in events {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::debug!(share = %self.name, "watch: {e}");
                    rescan = true;
                    continue;
                }
            };
            if ev.need_rescan() {
                rescan = true;
            }
            let Some(path) = ev.paths.first() else {
                continue;
            };
            let Some(rel) = self.rel(path) else {
                // Not Unicode: its folder is walked.
                if let Some(parent) = path.parent().and_then(|p| self.rel(p)) {
                    walk.push(parent);
                }
                continue;
            };
            if rel.is_empty() {
                continue;
            }
            let to_new_name =
                matches!(ev.kind, EventKind::Modify(ModifyKind::Name(RenameMode::To)));
            if let Some(old) = from.take() {
                if to_new_name {
                    if self.is_dir(&rel) {
                        out.push(Signal::Moved { from: old, to: rel });
                    } else {
                        if self.changes {
                            changes.push(FsChange::Renamed {
                                from: old,
                                to: rel.clone(),
                            });
                        }
                        walk.push(rel);
                    }
                    continue;
                }
                // Moved out of the share.
                if self.changes {
                    changes.push(FsChange::Deleted(old));
                }
            }
            match ev.kind {
                EventKind::Modify(ModifyKind::Name(RenameMode::From)) => from = Some(rel),
                EventKind::Modify(ModifyKind::Name(_)) | EventKind::Create(_) => {
                    if self.changes && !self.is_dir(&rel) {
                        changes.push(FsChange::Created(rel.clone()));
                    }
                    walk.push(rel);
                }
                EventKind::Modify(_) => {
                    if self.changes && !self.is_dir(&rel) {
                        changes.push(FsChange::Written(rel.clone()));
                    }
                    one.push(rel);
                }
                EventKind::Remove(_) if self.changes => changes.push(FsChange::Deleted(rel)),
                _ => {}
            }
        }
        if let Some(old) = from {
            if self.changes {
                changes.push(FsChange::Deleted(old));
            }
        }
        if rescan {
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

/// Runs the watch of one share until `stop` is set or the receiver is gone.
pub(crate) fn run(w: Watches, tx: UnboundedSender<Signal>, stop: Arc<AtomicBool>) {
    tracing::debug!(share = %w.name, "watching {} and below", w.root.display());
    while !stop.load(Ordering::Relaxed) {
        let first = match w.events.recv_timeout(Duration::from_millis(500)) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                tracing::error!(share = %w.name, "watching stopped; relying on periodic reconciles");
                w.count.store(0, Ordering::Relaxed);
                let _ = tx.send(Signal::Budget);
                return;
            }
        };
        let mut batch = vec![first];
        while batch.len() < 10_000 {
            match w.events.try_recv() {
                Ok(ev) => batch.push(ev),
                // A rename's new name comes right after its old one: wait for it a moment.
                Err(_) if ends_with_old_name(&batch) => {
                    match w.events.recv_timeout(Duration::from_millis(50)) {
                        Ok(ev) => batch.push(ev),
                        Err(_) => break,
                    }
                }
                Err(_) => break,
            }
        }
        for s in w.handle(batch) {
            if tx.send(s).is_err() {
                return;
            }
        }
    }
    drop(w.watcher);
}

fn ends_with_old_name(batch: &[notify::Result<notify::Event>]) -> bool {
    matches!(
        batch.last(),
        Some(Ok(ev)) if matches!(ev.kind, EventKind::Modify(ModifyKind::Name(RenameMode::From)))
    )
}
