//! Watching a share for what the enforcement (and the guard, where fanotify is refused) must
//! look at: what is reported ([`Signal`], [`FsChange`]) is the same on every platform; how it
//! is watched is not: inotify by descriptor on Linux (`inotify.rs`), one recursive
//! ReadDirectoryChangesW watch through notify on Windows (`windows.rs`).

#[cfg(unix)]
mod inotify;
#[cfg(unix)]
pub(crate) use inotify::{run, Watches, HOW};
#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{run, Watches, HOW};

/// What the watcher reports to the enforcement task (paths relative to the share root).
#[derive(Debug)]
pub(crate) enum Signal {
    /// Apply the policy to these entries and everything below them.
    Walk(Vec<String>),
    /// Check these entries alone.
    One(Vec<String>),
    /// A folder renamed within the share.
    Moved { from: String, to: String },
    /// Events were lost: reconcile the whole share.
    Rescan,
    /// The watch budget is reached: reconcile periodically.
    Budget,
    /// Files written, made, renamed, removed (only from watches made [`Watches::for_guard`]).
    Changes(Vec<FsChange>),
}

/// A change to an entry, as the watcher tells it: what, not who.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FsChange {
    Created(String),
    Written(String),
    Deleted(String),
    Renamed { from: String, to: String },
}

#[cfg(unix)]
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

#[cfg(unix)]
fn below(top: &str, p: &str) -> bool {
    top.is_empty() || p == top || (p.starts_with(top) && p.as_bytes().get(top.len()) == Some(&b'/'))
}
