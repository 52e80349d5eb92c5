//! The repository a share's backup plan names, and its off-site copy: opened with the key in
//! the plan's `key_file` (a file only its owner, root, may read; never the policy itself) and,
//! for a copy on another machine, the service's credentials.

use crate::backend::{Access, Credentials, Location};
use crate::crypto::Secret;
use crate::error::{Error, Result};
use crate::repo::{IndexScope, Repository};
use sharekeep_policies::BackupPlan;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The secret in the plan's key file, refused when others may read it.
pub fn plan_secret(plan: &BackupPlan) -> Result<Option<Secret>> {
    let Some(path) = &plan.key_file else {
        return Ok(None);
    };
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let me = rustix::process::geteuid().as_raw();
    if meta.mode() & 0o077 != 0 || meta.uid() != me {
        return Err(Error::Invalid(format!(
            "key file {}: others than its owner may read it or it is not ours (owner uid {}, mode {:04o}): `chown {me} {} && chmod 600 {}`",
            path.display(),
            meta.uid(),
            meta.mode() & 0o7777,
            path.display(),
            path.display()
        )));
    }
    Ok(Some(Secret::key_file(path)?))
}

/// Opens the plan's repository (encrypted ones with the plan's key).
pub fn open_plan_repository(
    plan: &BackupPlan,
    scope: IndexScope,
    cache: Option<&Path>,
) -> Result<Repository> {
    let access = Access {
        secret: plan_secret(plan)?,
        credentials: Credentials::default(),
        cache_root: cache.map(Path::to_path_buf),
    };
    Repository::open_at(&Location::Local(plan.repository.clone()), &access, scope)
}

/// Creates the plan's repository: encrypted when the plan names a key file.
pub fn init_plan_repository(plan: &BackupPlan) -> Result<Repository> {
    let access = Access {
        secret: plan_secret(plan)?,
        ..Access::default()
    };
    Repository::init_at(&Location::Local(plan.repository.clone()), &access)
}

/// Opens the plan's copy destination, creating it (encrypted with the plan's key) when it
/// holds no repository yet.
pub fn open_or_init_copy(
    plan: &BackupPlan,
    credentials: Credentials,
    cache: &Path,
) -> Result<Repository> {
    let url = plan
        .copy_to
        .as_deref()
        .ok_or_else(|| Error::Invalid("the plan has no copy_to".into()))?;
    let location: Location = url.parse()?;
    let access = Access {
        secret: plan_secret(plan)?,
        credentials,
        cache_root: Some(cache.to_path_buf()),
    };
    match Repository::open_at(&location, &access, IndexScope::All) {
        Ok(r) => Ok(r),
        Err(Error::NotARepository { .. }) => Repository::init_at(&location, &access),
        Err(Error::Io { path, source })
            if source.kind() == std::io::ErrorKind::NotFound && path.ends_with("config") =>
        {
            Repository::init_at(&location, &access)
        }
        Err(e) => Err(e),
    }
}
