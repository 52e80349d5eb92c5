//! sharekeep's engine: a content-addressed, deduplicating backup repository (packs of
//! zstd-compressed, sha256-named chunks), the backup that fills it, and the restore, listing
//! and history commands that read it. `sharekeepctl` uses this library directly for offline
//! work; `sharekeepd` (the service) drives it on a schedule.
//!
//! The repository format is described in `pack.rs`, `index.rs`, `tree.rs`, `snapshot.rs` and
//! `backend/local.rs`; the algorithms in `backup.rs` and `restore.rs`.

mod atomic;
pub mod backend;
mod backup;
mod check;
mod chunker;
mod config;
mod copy;
mod crypto;
mod drill;
mod error;
mod history;
mod id;
mod index;
mod lock;
#[cfg(all(unix, feature = "mount"))]
pub mod mount;
pub mod pack;
mod pack_writer;
mod plan_repo;
mod platform;
mod progress;
pub mod protocol;
mod prune;
mod receive;
mod repo;
pub mod report;
mod restore;
mod retention;
mod snapshot;
mod stream;
pub mod sys;
mod tag;
mod tree;
mod undo;

pub use atomic::write_atomic;
pub use backend::{redact_url, Access, Credentials, Location};
pub use backup::{backup, BackupOptions, BackupOutcome, ParentChoice, Warning};
pub use check::{check, repair_index, CheckOptions, CheckReport, Damage, RepairReport};
/// Re-exported: snapshot times are `chrono` types.
pub use chrono;
pub use chunker::Chunker;
pub use config::{ChunkerParams, RepoConfig, FORMAT_VERSION};
pub use copy::{copy, CopyReport};
pub use crypto::{KeyInfo, Keys, Secret, SecretKind, MIN_KEY_FILE};
pub use drill::{drill, DrillOptions, DrillProblem, DrillReport};
pub use error::{Error, Result};
pub use history::{diff, list, versions, Change, ChangeKind, ListedEntry, Version};
pub use id::Id;
pub use index::{Index, IndexBuilder, IndexedPack};
pub use lock::{list_locks, remove_stale_locks, set_lock_wait, LockInfo, LockKind, RepoLock};
pub use plan_repo::{
    init_plan_repository, open_or_init_copy, open_plan_repository, open_plan_repository_if_any,
    plan_location, plan_repository_shown, plan_secret, PlanEnv,
};
pub use platform::raise_open_file_limit;
pub use progress::{CancelToken, LiveProgress, NoProgress, Progress};
pub use prune::{forget, prune, PruneOptions, PruneReport};
pub use receive::CopyWriter;
pub use repo::{DamagedFile, IndexScope, Repository};
pub use restore::{
    plan_restore, restore, Action, Overwrite, PlannedEntry, RestoreOptions, RestorePlan,
    RestoreReport, Target,
};
pub use retention::{apply_rules, Decision, KeepRules};
pub use snapshot::{Selector, Snapshot, Summary, PRE_RESTORE_TAG};
pub use stream::{send_selection, FrameSink, StreamOptions, Visibility};
pub use tag::{add_tag, GUARD_TAG, INCIDENT_TAG};
pub use tree::{Bytes, Node, NodeKind, Tree, Xattr};
pub use undo::{plan_undo, undo, Made, Touched, Undo, UndoAction, UndoPlan, UndoReport, UndoStep};
