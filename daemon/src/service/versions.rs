//! Previous Versions: for a share whose policy says `[samba] previous_versions = true`,
//! sharekeepd keeps the share's snapshots mounted (read-only FUSE, `allow_other`) at
//! `<state>/versions/<share>`, one `@GMT-YYYY.MM.DD-HH.MM.SS` folder per snapshot, which
//! Samba's `shadow_copy2` turns into Windows Explorer's Previous Versions tab.
//!
//! ```text
//! who sees what: each request is answered for its uid (smbd serves each member as that
//!   member) with the share's policy of today: Hidden paths do not exist for them, folders
//!   they may only traverse cannot be listed, nothing is writable; root sees everything
//! groups: from NSS, cached a minute per uid (NSS may be slow; membership changes show
//!   within the minute)
//! when: mounted when the share starts (or after its first backup, when the repository did
//!   not exist yet); unmounted (detached) when the share stops or its policy changes
//! ```

use crate::service::server::authz::visibility;
use crate::service::server::Caller;
use sharekeep::mount::{Gate, Layout, MountOptions};
use sharekeep::{Repository, Visibility};
use sharekeep_policies::{Policy, Rights};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const GROUPS_TTL: Duration = Duration::from_secs(60);

/// Where a share's Previous Versions are mounted.
pub(crate) fn mountpoint(state: &Path, share: &str) -> PathBuf {
    state.join("versions").join(share)
}

/// A share's mounted Previous Versions; dropping it unmounts them.
pub(crate) struct Versions {
    session: Option<fuser::BackgroundSession>,
    at: PathBuf,
}

impl Drop for Versions {
    fn drop(&mut self) {
        drop(self.session.take());
        // Still there when a member (smbd) had a file open: detached, so it cannot keep it.
        let _ = nix::mount::umount2(&self.at, nix::mount::MntFlags::MNT_DETACH);
        tracing::info!(at = %self.at.display(), "Previous Versions unmounted");
    }
}

/// The groups of a uid, cached.
#[derive(Default)]
struct Groups(Mutex<HashMap<u32, (Instant, Vec<u32>)>>);

impl Groups {
    fn of(&self, uid: u32) -> Vec<u32> {
        if let Some((t, g)) = self.0.lock().expect("lock").get(&uid) {
            if t.elapsed() < GROUPS_TTL {
                return g.clone();
            }
        }
        let groups = match nix::unistd::User::from_uid(uid.into()) {
            Ok(Some(u)) => sharekeep_policies::groups_of(&sharekeep_policies::User {
                name: u.name,
                uid,
                gid: u.gid.as_raw(),
            }),
            _ => Vec::new(),
        };
        self.0
            .lock()
            .expect("lock")
            .insert(uid, (Instant::now(), groups.clone()));
        groups
    }
}

/// What each uid may see, by today's `policy`.
fn gate(policy: Arc<Policy>) -> Gate {
    let rights = Rights::from_arc(policy);
    let groups = Groups::default();
    Arc::new(move |uid: u32, rel: &str, is_dir: bool| {
        if uid == 0 {
            return Visibility::Visible;
        }
        let caller = Caller {
            uid,
            groups: groups.of(uid),
        };
        visibility(caller.access(&rights, rel, is_dir), is_dir)
    })
}

/// A share's Previous Versions, once mounted.
pub(crate) type Slot = Arc<Mutex<Option<Versions>>>;

/// Mounts the share's Previous Versions if its policy wants them and they are not mounted
/// yet (blocking). A failure is logged, and tried again after the next backup.
pub(crate) fn ensure(state: &Path, policy: &Arc<Policy>, slot: &Slot) {
    if !policy.samba.previous_versions {
        return;
    }
    let mut s = slot.lock().expect("lock");
    if s.is_some() {
        return;
    }
    match mount(state, policy) {
        Ok(Some(v)) => *s = Some(v),
        Ok(None) => {
            tracing::info!(share = %policy.name, "Previous Versions: mounted after the first backup")
        }
        Err(e) => {
            tracing::error!(share = %policy.name, "Previous Versions cannot be mounted: {e}")
        }
    }
}

/// Mounts `policy`'s snapshots under `state` (blocking: opens the repository). `Ok(None)`:
/// nothing to mount yet (no repository before the first backup).
pub(crate) fn mount(state: &Path, policy: &Arc<Policy>) -> Result<Option<Versions>, String> {
    let Some(plan) = &policy.backup else {
        return Ok(None);
    };
    let at = mountpoint(state, &policy.name);
    sharekeep::mount::detach_stale(&at);
    std::fs::create_dir_all(&at).map_err(|e| format!("{}: {e}", at.display()))?;
    if !plan.repository.join("config").exists() {
        return Ok(None);
    }
    let repo = Repository::open_local(&plan.repository).map_err(|e| e.to_string())?;
    let root = policy.path.clone();
    let session = sharekeep::mount::session(
        repo,
        &at,
        MountOptions {
            layout: Layout::Shadow,
            filter: Some(Arc::new(move |s: &sharekeep::Snapshot| {
                Path::new(s.root()) == root
            })),
            gate: Some(gate(policy.clone())),
            allow_other: true,
            name: policy.name.clone(),
        },
    )
    .map_err(|e| e.to_string())?;
    let session = session
        .spawn()
        .map_err(|e| format!("{}: {e}", at.display()))?;
    tracing::info!(share = %policy.name, at = %at.display(), "Previous Versions mounted");
    Ok(Some(Versions {
        session: Some(session),
        at,
    }))
}
