//! How the CLI reaches a repository: its location (`--repo`: a folder, `s3://…` or
//! `sftp://…`), its key (`--key-file`/`SHAREKEEP_KEY_FILE`, or a passphrase in
//! `SHAREKEEP_PASSWORD`), a remote store's credentials (the environment), and the user's
//! cache folder.

use anyhow::{Context, Result};
use sharekeep::{Access, Credentials, IndexScope, Location, Repository, Secret};
use std::path::{Path, PathBuf};

/// The user's cache folder for sharekeep (paged indexes, a remote repository's files).
pub fn cache_dir() -> PathBuf {
    let home_cache = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".cache"));
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|c| !c.is_empty())
        .map(PathBuf::from)
        .or(home_cache)
        .map(|c| c.join("sharekeep"))
        .unwrap_or_else(|| PathBuf::from("/var/tmp"))
}

/// The secret from `--key-file` (or `SHAREKEEP_KEY_FILE`), else `SHAREKEEP_PASSWORD`.
pub fn secret(key_file: Option<&Path>) -> Result<Option<Secret>> {
    if let Some(f) = key_file {
        return Ok(Some(Secret::key_file(f)?));
    }
    match std::env::var("SHAREKEEP_PASSWORD") {
        Ok(p) if !p.is_empty() => Ok(Some(Secret::passphrase(p)?)),
        _ => Ok(None),
    }
}

/// Everything opening a repository takes besides its location.
pub fn access(key_file: Option<&Path>) -> Result<Access> {
    Ok(Access {
        secret: secret(key_file)?,
        credentials: Credentials::from_env(),
        cache_root: Some(cache_dir()),
    })
}

/// Parses `--repo`.
pub fn location(repo: &str) -> Result<Location> {
    Ok(repo.parse::<Location>()?)
}

/// Opens the repository `repo` names, loading the index `scope` asks for.
pub fn open(repo: &str, key_file: Option<&Path>, scope: IndexScope) -> Result<Repository> {
    let location = location(repo)?;
    let access = access(key_file)?;
    Repository::open_at(&location, &access, scope)
        .with_context(|| format!("opening the repository {location}"))
}
