//! `sharekeepctl copy`: snapshots replicated to another repository (an off-site copy on S3 or
//! SFTP), only the blobs it lacks sent, sealed with its own key.

use crate::access;
use crate::args::CopyArgs;
use crate::progress::Bar;
use crate::Outcome;
use anyhow::{bail, Context, Result};
use sharekeep::{Access, CancelToken, IndexScope, Repository};
use std::io::Write;
use std::path::Path;

fn destination_secret(
    a: &CopyArgs,
    source_key: Option<&Path>,
) -> Result<Option<sharekeep::Secret>> {
    if let Some(f) = &a.to_key_file {
        return Ok(Some(sharekeep::Secret::key_file(f)?));
    }
    if let Ok(p) = std::env::var("SHAREKEEP_TO_PASSWORD") {
        if !p.is_empty() {
            return Ok(Some(sharekeep::Secret::passphrase(p)?));
        }
    }
    access::secret(source_key)
}

pub fn run(
    repo: Option<String>,
    key_file: Option<&Path>,
    a: CopyArgs,
    quiet: bool,
    cancel: &CancelToken,
) -> Result<Outcome> {
    let Some(from) = a.from.clone().or(repo) else {
        bail!("give the repository to copy from: --from REPO (or --repo)");
    };
    let src = access::open(&from, key_file, IndexScope::All)?;
    let to = access::location(&a.to)?;
    let dst_access = Access {
        secret: destination_secret(&a, key_file)?,
        credentials: sharekeep::Credentials::from_env(),
        cache_root: Some(access::cache_dir()),
    };
    let dst = match Repository::open_at(&to, &dst_access, IndexScope::All) {
        Ok(r) => r,
        Err(sharekeep::Error::NotARepository { .. }) if a.init => {
            Repository::init_at(&to, &dst_access)?
        }
        Err(e) if a.init && is_missing(&e) => Repository::init_at(&to, &dst_access)?,
        Err(e) => {
            return Err(e)
                .with_context(|| format!("opening the destination {to} (add --init to create it)"))
        }
    };
    let selected = a
        .snapshots
        .iter()
        .map(|s| src.find_snapshot(s))
        .collect::<Result<Vec<_>, _>>()?;
    let bar = Bar::new("copying", quiet);
    let report = sharekeep::copy(&src, &dst, &selected, &bar, cancel)?;
    sharekeep::Progress::finish(&bar);
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else if !quiet {
        for (s, d) in &report.copied {
            writeln!(out, "snapshot {} copied as {}", s.short(), d.short())?;
        }
        writeln!(
            out,
            "{} snapshot(s) copied, {} already there; {} blob(s), {} sent in {} pack(s)",
            report.copied.len(),
            report.already,
            report.blobs_sent,
            crate::output::size(report.bytes_sent),
            report.packs
        )?;
    }
    Ok(Outcome::Ok)
}

/// A remote store without a `config` object yet.
fn is_missing(e: &sharekeep::Error) -> bool {
    matches!(e, sharekeep::Error::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound && path.ends_with("config"))
}
