//! Adding a tag to a snapshot (the guard pins the last good snapshot with [`GUARD_TAG`]): a
//! snapshot file is named by the hash of its content, so the tagged snapshot is written anew
//! and the old file removed, under the repository's exclusive lock; `original` keeps the first
//! id (as a copy's does), so copies already made are still recognised.

use crate::backend::FileKind;
use crate::error::Result;
use crate::lock::{LockKind, RepoLock};
use crate::repo::Repository;
use crate::snapshot::Snapshot;

/// The tag of a snapshot the share's guard pinned: retention never removes it.
pub const GUARD_TAG: &str = "guard";
/// The tag of the backup the guard takes of the damage, when it locks a share.
pub const INCIDENT_TAG: &str = "incident";

/// Adds `tag` to `snap` (nothing to do when it has it); the snapshot as it is now.
pub fn add_tag(repo: &Repository, snap: &Snapshot, tag: &str) -> Result<Snapshot> {
    if snap.has_tag(tag) {
        return Ok(snap.clone());
    }
    let _lock = RepoLock::acquire(repo.backend().clone(), LockKind::Exclusive, "tag")?;
    let mut tagged = snap.clone();
    tagged.tags.push(tag.to_string());
    tagged.original = Some(snap.original.unwrap_or(snap.id));
    repo.save_snapshot(&mut tagged)?;
    if tagged.id != snap.id {
        repo.backend()
            .remove(FileKind::Snapshot, &snap.id.to_hex())?;
        repo.backend().sync()?;
    }
    Ok(tagged)
}
