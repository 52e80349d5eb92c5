//! Share policies: the TOML files in which admins say who may read and who may write each part
//! of a service folder, validated whole (every problem located, all at once) into a
//! [`Policy`], then turned into real POSIX ACLs on the folder (plan, then apply), explained per
//! user, and summarised as a matrix.
//!
//! The filesystem side of ACLs is behind [`acl::AclSystem`]: POSIX ACLs on Linux
//! ([`acl::linux`]), NTFS ACLs on Windows (`acl::windows`); the NTFS translation itself
//! ([`acl::ntfs`]) is pure and built everywhere.

#[cfg(windows)]
pub mod accounts;
pub mod acl;
mod apply;
mod explain;
mod policy;
mod principal;
mod problem;
mod raw;
mod rights;
mod samba;
pub mod share;
mod validate;
pub mod walk;
#[cfg(windows)]
mod win32;

pub use apply::{
    apply, plan, run, run_below, run_below_each, run_one, Drift, Refusal, Report, StateView,
    WalkMode,
};
pub use explain::{explain, matrix, Explanation, Matrix, MatrixRow};
pub use policy::{
    is_remote_url, parse_duration, BackupPlan, Guard, GuardAction, Keep, Lockdown, LockedUser,
    Origin, Policy, PrincipalSet, RepositoryAddress, Rule, Samba,
};
#[cfg(unix)]
pub use principal::NameCache;
pub use principal::{
    groups_of, resolve, resolve_group, resolve_user, user_of_id, Group, Principal, ResolveError,
    User,
};
pub use problem::{Locator, Problem, Problems};
pub use raw::RawPolicy;
pub use rights::{Access, Grants, Rights};
pub use samba::{
    compare as samba_compare, export as samba_export, parse_smb_conf, share_of as samba_share_of,
    SambaShare,
};
pub use validate::{load, load_file, policy_files, validate, DEFAULT_POLICY_DIR};
