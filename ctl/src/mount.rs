//! `sharekeepctl mount`: a repository's snapshots (or one share's) as a read-only folder, served
//! by this process until Ctrl-C, SIGTERM or `umount`.

use crate::args::MountArgs;
use crate::Outcome;
use anyhow::{bail, Context, Result};
use sharekeep::mount::{Layout, MountOptions};
use sharekeep::IndexScope;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Serves the snapshots until unmounted. The paged index keeps its files (anonymous: they
/// vanish with the process) in the user's cache folder, or /var/tmp (on disk, unlike /tmp on
/// many systems).
pub fn run(
    repo: Option<String>,
    key_file: Option<PathBuf>,
    a: MountArgs,
    quiet: bool,
) -> Result<Outcome> {
    let mut key_file = key_file;
    let (repo_path, filter, name) = match (&repo, &a.share) {
        (Some(_), Some(_)) => bail!("give --repo DIR or --share NAME, not both"),
        (None, None) => bail!("give the repository (--repo DIR) or a share (--share NAME)"),
        (Some(r), None) => (r.clone(), None, r.clone()),
        (None, Some(share)) => {
            let source = a
                .policies
                .clone()
                .unwrap_or_else(crate::policy::default_source);
            let all = crate::policy::load(&source)?;
            let Some(policy) = all.into_iter().find(|p| &p.name == share) else {
                bail!("no share `{share}` in {}", source.display());
            };
            let Some(plan) = &policy.backup else {
                bail!(
                    "share `{share}` has no [backup] plan in {}: it has no snapshots",
                    policy.file.display()
                );
            };
            // The plan's key unless another is given (readable by root only, as it should be).
            if key_file.is_none() && std::env::var_os("SHAREKEEP_PASSWORD").is_none() {
                key_file = plan.key_file.clone();
            }
            let root = policy.path.clone();
            let filter: sharekeep::mount::SnapshotFilter =
                Arc::new(move |s: &sharekeep::Snapshot| Path::new(s.root()) == root);
            (plan.repository.to_string(), Some(filter), share.clone())
        }
    };
    // Data blobs' locations stay on disk: the mount's memory does not grow with the repository.
    let repo = crate::access::open(&repo_path, key_file.as_deref(), IndexScope::Paged)?;
    sharekeep::mount::detach_stale(&a.mountpoint);
    let mut session = sharekeep::mount::session(
        repo,
        &a.mountpoint,
        MountOptions {
            layout: Layout::Browse,
            filter,
            gate: None,
            allow_other: false,
            name,
            max_inodes: sharekeep::mount::MAX_INODES,
        },
    )?;
    let mut unmounter = session.unmount_callable();
    crate::signals::on_signal(Box::new(move || {
        let _ = unmounter.unmount();
    }));
    if !quiet {
        eprintln!(
            "snapshots of {} mounted at {}: snapshots/, latest, tags/ (read-only); Ctrl-C unmounts",
            repo_path,
            a.mountpoint.display()
        );
    }
    session
        .run()
        .with_context(|| format!("serving {}", a.mountpoint.display()))?;
    drop(session);
    if !quiet {
        eprintln!("unmounted {}", a.mountpoint.display());
    }
    Ok(Outcome::Ok)
}
