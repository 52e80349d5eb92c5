//! One integration-test binary (as ripgrep does): every scenario drives the real
//! `sharekeepctl` on real files in scratch folders on ext4. Unix only (Linux's ACLs, users,
//! smbd, FUSE): Windows is tested by the daemon's and ctl's own tests, under Wine.
#![cfg(unix)]

mod backup_restore;
mod crash;
mod daemon;
mod debian;
mod guard;
mod history;
mod hostile;
mod maintenance;
mod mount;
mod policies;
mod properties;
mod remote;
mod report;
mod safety;
mod samba;
mod self_service;

/// A scratch folder under the target directory (same filesystem as the checkout).
pub fn scratch() -> tempfile::TempDir {
    sharekeep_tests::scratch(env!("CARGO_TARGET_TMPDIR"))
}
