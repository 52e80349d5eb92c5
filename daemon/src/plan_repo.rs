//! The repository a share's backup plan names (a local folder, `s3://…` or `sftp://…`) and
//! its off-site copy: opened with the key in the plan's `key_file` (a file only its owner,
//! root, may read; never the policy itself) and, for a store on another machine, the
//! service's credentials.

use crate::backend::{require_private, Access, Credentials, Location};
use crate::crypto::Secret;
use crate::error::{Error, Result};
use crate::repo::{IndexScope, Repository};
use sharekeep_policies::{BackupPlan, RepositoryAddress};
use std::path::PathBuf;

/// What opening a plan's repositories takes besides the plan: where the remote stores'
/// credentials are, and a local folder for caches.
#[derive(Debug, Clone, Default)]
pub struct PlanEnv {
    /// A private `NAME=VALUE` file (sharekeepd.toml's `remote_credentials`); `None`: the
    /// environment. Read only when a store on another machine is opened.
    pub credentials: Option<PathBuf>,
    /// Caches: a remote repository's immutable files and staged uploads, a paged index.
    pub cache: Option<PathBuf>,
}

impl PlanEnv {
    fn access(&self, plan: &BackupPlan, location: &Location) -> Result<Access> {
        let credentials = match (&self.credentials, location.is_remote()) {
            (_, false) => Credentials::default(),
            (Some(f), true) => Credentials::from_file(f)?,
            (None, true) => Credentials::from_env(),
        };
        Ok(Access {
            secret: plan_secret(plan)?,
            credentials,
            cache_root: self.cache.clone(),
        })
    }
}

/// The secret in the plan's key file, refused when others may read it.
pub fn plan_secret(plan: &BackupPlan) -> Result<Option<Secret>> {
    let Some(path) = &plan.key_file else {
        return Ok(None);
    };
    require_private(path, "key file")?;
    Ok(Some(Secret::key_file(path)?))
}

/// Where the plan's repository is.
pub fn plan_location(plan: &BackupPlan) -> Result<Location> {
    match &plan.repository {
        RepositoryAddress::Local(p) => Ok(Location::Local(p.clone())),
        RepositoryAddress::Remote(url) => url.parse(),
    }
}

/// Whether `e` says there is no repository there yet (as opposed to one that cannot be read).
fn is_missing(e: &Error) -> bool {
    match e {
        Error::NotARepository { .. } => true,
        Error::Io { path, source } => {
            source.kind() == std::io::ErrorKind::NotFound && path.ends_with("config")
        }
        _ => false,
    }
}

/// Opens the plan's repository (encrypted ones with the plan's key).
pub fn open_plan_repository(
    plan: &BackupPlan,
    scope: IndexScope,
    env: &PlanEnv,
) -> Result<Repository> {
    let location = plan_location(plan)?;
    Repository::open_at(&location, &env.access(plan, &location)?, scope)
}

/// Opens the plan's repository, or `None` when nothing has been backed up there yet.
pub fn open_plan_repository_if_any(
    plan: &BackupPlan,
    scope: IndexScope,
    env: &PlanEnv,
) -> Result<Option<Repository>> {
    let location = plan_location(plan)?;
    if let Location::Local(p) = &location {
        if !p.join("config").exists() {
            return Ok(None);
        }
    }
    match Repository::open_at(&location, &env.access(plan, &location)?, scope) {
        Ok(r) => Ok(Some(r)),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates the plan's repository: encrypted when the plan names a key file.
pub fn init_plan_repository(plan: &BackupPlan, env: &PlanEnv) -> Result<Repository> {
    let location = plan_location(plan)?;
    Repository::init_at(&location, &env.access(plan, &location)?)
}

/// Opens the plan's copy destination, creating it (encrypted with the plan's key) when it
/// holds no repository yet.
pub fn open_or_init_copy(plan: &BackupPlan, env: &PlanEnv) -> Result<Repository> {
    let url = plan
        .copy_to
        .as_deref()
        .ok_or_else(|| Error::Invalid("the plan has no copy_to".into()))?;
    let location: Location = url.parse()?;
    let access = env.access(plan, &location)?;
    match Repository::open_at(&location, &access, IndexScope::All) {
        Ok(r) => Ok(r),
        Err(e) if is_missing(&e) => Repository::init_at(&location, &access),
        Err(e) => Err(e),
    }
}

/// The plan's repository as it may be shown (logs, `status`, alerts).
pub fn plan_repository_shown(plan: &BackupPlan) -> String {
    match &plan.repository {
        RepositoryAddress::Local(p) => p.display().to_string(),
        RepositoryAddress::Remote(url) => crate::backend::redact_url(url),
    }
}
