//! The guard's record, root's alone: `<state>/guard/<share>.json` (the locks in place and the
//! incidents) and each incident's changes, one JSON line each, in
//! `<state>/guard/<share>/<incident>.jsonl` (what a rollback undoes). A lock lives here, not
//! in the policy file: a restart keeps it, and only an admin's `guard release` lifts it.

use super::detect::Change;
use serde::{Deserialize, Serialize};
use sharekeep::protocol::{GuardLock, Incident};
use sharekeep_policies::{Lockdown, LockedUser};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Locks and incidents of one share.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct GuardState {
    pub(crate) locks: Vec<GuardLock>,
    pub(crate) incidents: Vec<Incident>,
}

fn file(state: &Path, share: &str) -> PathBuf {
    state.join("guard").join(format!("{share}.json"))
}

/// The file of an incident's changes.
pub(crate) fn changes_file(state: &Path, share: &str, id: &str) -> PathBuf {
    state.join("guard").join(share).join(format!("{id}.jsonl"))
}

fn private_dir(dir: &Path) -> std::io::Result<()> {
    sharekeep::sys::private_dirs(dir)
}

/// The share's record (empty when none, or unreadable: logged).
pub(crate) fn load(state: &Path, share: &str) -> GuardState {
    let path = file(state, share);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
            tracing::error!(
                share,
                "{}: unreadable ({e}): no lock restored",
                path.display()
            );
            GuardState::default()
        }),
        Err(_) => GuardState::default(),
    }
}

/// The share's record with each incident's count of changes taken from its changes file
/// (changes recorded after the trigger are only appended there).
pub(crate) fn load_counted(state: &Path, share: &str) -> GuardState {
    let mut st = load(state, share);
    for i in &mut st.incidents {
        if let Ok(f) = std::fs::File::open(changes_file(state, share, &i.id)) {
            use std::io::BufRead;
            i.changes = std::io::BufReader::new(f).split(b'\n').count() as u64;
        }
    }
    st
}

/// Saves the share's record.
pub(crate) fn save(state: &Path, share: &str, s: &GuardState) -> std::io::Result<()> {
    let path = file(state, share);
    private_dir(path.parent().expect("in guard/"))?;
    let text = serde_json::to_vec_pretty(s).map_err(std::io::Error::other)?;
    sharekeep::write_atomic(&path, &text, 0o600)
}

/// Appends changes to an incident's record.
pub(crate) fn append_changes(
    state: &Path,
    share: &str,
    id: &str,
    changes: &[Change],
) -> std::io::Result<()> {
    let path = changes_file(state, share, id);
    private_dir(path.parent().expect("in guard/<share>"))?;
    let mut out = Vec::new();
    for c in changes {
        serde_json::to_writer(&mut out, c).map_err(std::io::Error::other)?;
        out.push(b'\n');
    }
    sharekeep::sys::append_private(&path)?.write_all(&out)
}

/// The lockdown the record imposes on the share's policy: each locked user's write taken
/// away (with the groups they have now), everyone's when a lock names no user or a user that
/// no longer resolves.
pub(crate) fn lockdown(state: &Path, share: &str) -> Lockdown {
    let mut out = Lockdown::default();
    for lock in load(state, share).locks {
        match lock.uid.and_then(sharekeep_policies::user_of_id) {
            Some(user) => {
                let groups = sharekeep_policies::groups_of(&user);
                out.users.push(LockedUser { user, groups });
            }
            None => out.share = true,
        }
    }
    out
}
