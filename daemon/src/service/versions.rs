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
use sharekeep::Visibility;
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
        let groups = crate::service::server::groups_of_uid(uid, Vec::new());
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

const PRIVATE_NAMESPACE: &str = "sharekeepd runs in a mount namespace of its own (systemd's ProtectSystem=, PrivateDevices=…), whose mounts smbd never sees; install daemon/sharekeepd-previous-versions.conf as /etc/systemd/system/sharekeepd.service.d/previous-versions.conf, then `systemctl daemon-reload && systemctl restart sharekeepd`";

/// Whether this process's mounts stay in a namespace of its own: its root is a slave of
/// another namespace's (`master:N` in mountinfo), as systemd sets up a unit's namespace (even
/// when it is also `shared:` among its own peers, nothing propagates back to the master). A
/// mount there would never reach smbd.
pub(crate) fn mounts_stay_private() -> bool {
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|info| private_root(&info))
}

fn private_root(mountinfo: &str) -> bool {
    // The last mount on / is the one in effect.
    mountinfo
        .lines()
        .rfind(|l| l.split(' ').nth(4) == Some("/"))
        .is_some_and(|l| {
            let optional: Vec<&str> = l
                .split(" - ")
                .next()
                .unwrap_or("")
                .split(' ')
                .skip(6)
                .collect();
            optional.iter().any(|o| o.starts_with("master:"))
        })
}

/// A share's Previous Versions, once mounted.
pub(crate) type Slot = Arc<Mutex<Option<Versions>>>;

/// Mounts the share's Previous Versions if its policy wants them and they are not mounted
/// yet (blocking). A failure is logged, and tried again after the next backup.
pub(crate) fn ensure(state: &Path, env: &sharekeep::PlanEnv, policy: &Arc<Policy>, slot: &Slot) {
    if !policy.samba.previous_versions {
        return;
    }
    let mut s = slot.lock().expect("lock");
    if s.is_some() {
        return;
    }
    match mount(state, env, policy) {
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
pub(crate) fn mount(
    state: &Path,
    env: &sharekeep::PlanEnv,
    policy: &Arc<Policy>,
) -> Result<Option<Versions>, String> {
    let Some(plan) = &policy.backup else {
        return Ok(None);
    };
    if mounts_stay_private() {
        return Err(PRIVATE_NAMESPACE.into());
    }
    let at = mountpoint(state, &policy.name);
    sharekeep::mount::detach_stale(&at);
    // Members (smbd as them) cross versions/ and its mount points: 0755 whatever the umask.
    for dir in [at.parent().unwrap_or(state), at.as_path()] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    // Data blobs' locations stay on disk (the service's cache, root's): the mount's memory
    // does not grow with the repository.
    let Some(repo) =
        sharekeep::open_plan_repository_if_any(plan, sharekeep::IndexScope::Paged, env)
            .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
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
            max_inodes: sharekeep::mount::MAX_INODES,
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_units_own_namespace_is_recognised() {
        let host = "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n";
        let unit = "27 1 254:0 / / rw,relatime master:1 - ext4 /dev/vda rw\n";
        let plain = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n";
        let both = "27 1 254:0 / / rw shared:5 master:1 - ext4 /dev/vda rw\n";
        assert!(!super::private_root(host));
        assert!(super::private_root(unit));
        assert!(!super::private_root(plain));
        assert!(super::private_root(both));
        // The last mount on / counts.
        assert!(super::private_root(&format!("{host}{unit}")));
        assert!(!super::private_root(&format!("{unit}{host}")));
    }
}
