//! The SMB shares sharekeepd keeps on a Windows workstation (`samba_manage = true`): one per
//! policy with `[samba] export = true`, added or updated at every load of the policies
//! (`NetShareAdd` / `NetShareSetInfo`), and removed once its policy is gone or no longer
//! exports it. Only the shares sharekeepd itself added are ever removed: their names are
//! recorded in `<state>\windows-shares.json`.

use sharekeep_policies::accounts::Accounts;
use sharekeep_policies::share::{export, share_of, unexport, ShareChange};
use sharekeep_policies::Policy;
use std::collections::BTreeSet;
use std::path::Path;

/// Brings this machine's shares to what `policies` say; logs every change and failure.
pub(crate) fn manage(policies: &[Policy], state: &Path) {
    let record = state.join("windows-shares.json");
    let before: BTreeSet<String> = std::fs::read(&record)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut kept = BTreeSet::new();
    for policy in policies {
        let share = match share_of(policy, &Accounts) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(share = %policy.name, "SMB share not exported: {e}");
                continue;
            }
        };
        match export(&share, false) {
            Ok(ShareChange::Unchanged) => {
                kept.insert(share.name);
            }
            Ok(change) => {
                tracing::info!(share = %policy.name, "SMB share {} {change:?} ({})", share.name, share.path.display());
                kept.insert(share.name);
            }
            Err(e) => {
                tracing::error!(share = %policy.name, "SMB share {}: {e}", share.name);
                // Still the policy's: never removed for a failed update.
                if before.contains(&share.name) {
                    kept.insert(share.name);
                }
            }
        }
    }
    let gone: Vec<String> = before.difference(&kept).cloned().collect();
    for gone in gone {
        match unexport(&gone) {
            Ok(_) => tracing::info!("SMB share {gone} removed: no policy exports it any more"),
            Err(e) => {
                tracing::error!("SMB share {gone} not removed: {e}");
                kept.insert(gone);
            }
        }
    }
    if kept != before {
        let text = serde_json::to_vec(&kept).expect("a set of names");
        if let Err(e) = sharekeep::write_atomic(&record, &text, 0o600) {
            tracing::error!("cannot record the SMB shares in {}: {e}", record.display());
        }
    }
}
