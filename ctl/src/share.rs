//! `sharekeepctl share …` (Windows): the SMB shares this machine exports for the policies,
//! `samba`'s counterpart. Every policy is looked at and every problem reported before the
//! command fails; a share that cannot be added does not stop the others.

use crate::args::ShareCommand;
use crate::policy::{load, source_path};
use crate::Outcome;
use anyhow::{anyhow, bail, Result};
use sharekeep_policies::accounts::Accounts;
use sharekeep_policies::share::{export, share_of, unexport, ShareChange};

/// `sharekeepctl share …`.
pub fn run(cmd: ShareCommand) -> Result<Outcome> {
    match cmd {
        ShareCommand::Export { source, dry_run } => sync(&source_path(&source), dry_run, false),
        ShareCommand::Check { source } => sync(&source_path(&source), true, true),
        ShareCommand::Remove { name } => {
            if unexport(&name).map_err(|e| anyhow!("{e}"))? {
                println!("share {name} removed (its folder stays)");
                Ok(Outcome::Ok)
            } else {
                bail!("there is no share named {name} on this machine (`net share` lists them)")
            }
        }
    }
}

/// Exports (or, `dry_run`, compares) every exported policy's share; `check` turns a
/// difference into exit 2.
fn sync(source: &std::path::Path, dry_run: bool, check: bool) -> Result<Outcome> {
    let list = load(source)?;
    let (mut failed, mut differ, mut exported) = (0, 0, 0);
    for policy in &list {
        let share = match share_of(policy, &Accounts) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                eprintln!(
                    "{}: share `{}`: {e}; nothing was changed for it",
                    policy.file.display(),
                    policy.name
                );
                failed += 1;
                continue;
            }
        };
        exported += 1;
        let place = format!("share {} ({})", share.name, share.path.display());
        match export(&share, dry_run) {
            Ok(ShareChange::Unchanged) => println!("{place}: as the policy says"),
            Ok(change) => {
                differ += 1;
                let verb = match (change, dry_run) {
                    (ShareChange::Added, true) => "would be added",
                    (ShareChange::Added, false) => "added",
                    (_, true) => "would be updated",
                    (_, false) => "updated",
                };
                println!("{place}: {verb}");
            }
            Err(e) => {
                eprintln!("{}: {place}: {e}", policy.file.display());
                failed += 1;
            }
        }
    }
    if exported == 0 && failed == 0 {
        println!(
            "no policy exports a share (`[samba] export = true` in {})",
            source.display()
        );
    }
    if failed > 0 {
        bail!("{failed} share(s) could not be exported or compared (above)");
    }
    if check && differ > 0 {
        println!("{differ} share(s) differ from the policies; update them with `sharekeepctl share export`");
        return Ok(Outcome::Drift);
    }
    Ok(Outcome::Ok)
}
