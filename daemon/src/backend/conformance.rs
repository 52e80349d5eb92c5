//! The conformance suite every backend runs (the local directory in this crate's tests, Garage
//! and sshd in the integration tests): what the engine relies on, checked against the real
//! store. Public so that a new backend is checked the same way.
//!
//! Crash atomicity needs a process to kill: [`write_then_hang`] is what the integration tests'
//! helper runs, and [`check_after_crash`] what they check afterwards.

use super::{Backend, FileKind};
use crate::id::Id;
use std::io::Write;
use std::sync::Arc;

/// Objects the listing check writes (more than an S3 listing page of 1,000).
pub const LISTING: usize = 10_000;

fn fail(what: &str, detail: impl std::fmt::Debug) -> String {
    format!("{what}: {detail:?}")
}

/// Runs every check on an empty store; the first failure, described.
pub fn run(b: Arc<dyn Backend>, listing: usize) -> Result<(), String> {
    basics(b.as_ref())?;
    never_replaces(b.as_ref())?;
    two_writers(&b)?;
    many(&b, listing)?;
    Ok(())
}

fn basics(b: &dyn Backend) -> Result<(), String> {
    b.create().map_err(|e| fail("create", e))?;
    b.write(FileKind::Config, "config", b"{}")
        .map_err(|e| fail("write config", e))?;
    if b.create().is_ok() {
        return Err("a second create over an existing repository succeeded".into());
    }
    if !b
        .list(FileKind::Snapshot)
        .map_err(|e| fail("list", e))?
        .is_empty()
    {
        return Err("a new store lists snapshots".into());
    }
    b.write(FileKind::Snapshot, "s1", b"hello")
        .map_err(|e| fail("write", e))?;
    if !b
        .exists(FileKind::Snapshot, "s1")
        .map_err(|e| fail("exists", e))?
    {
        return Err("a written file does not exist".into());
    }
    if b.exists(FileKind::Snapshot, "s2")
        .map_err(|e| fail("exists", e))?
    {
        return Err("a file never written exists".into());
    }
    let got = b
        .read(FileKind::Snapshot, "s1")
        .map_err(|e| fail("read", e))?;
    if got != b"hello" {
        return Err(fail("read back", String::from_utf8_lossy(&got)));
    }
    let part = b
        .read_at(FileKind::Snapshot, "s1", 1, 3)
        .map_err(|e| fail("read_at", e))?;
    if part != b"ell" {
        return Err(fail("read_at 1..4", String::from_utf8_lossy(&part)));
    }
    if b.read_at(FileKind::Snapshot, "s1", 3, 10).is_ok() {
        return Err("a read past the end succeeded".into());
    }
    let mut t = b.create_temp().map_err(|e| fail("create_temp", e))?;
    t.file
        .write_all(b"packdata")
        .map_err(|e| fail("temp write", e))?;
    b.commit_temp(t, FileKind::Pack, "abcdef")
        .map_err(|e| fail("commit_temp", e))?;
    b.sync().map_err(|e| fail("sync", e))?;
    let packs = b.list_sizes(FileKind::Pack).map_err(|e| fail("list", e))?;
    if packs != vec![("abcdef".to_string(), 8)] {
        return Err(fail("pack listing", packs));
    }
    let e = b
        .read(FileKind::Index, "missing")
        .err()
        .ok_or("reading a missing file succeeded")?;
    if !matches!(&e, crate::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    {
        return Err(fail("a missing file is not reported as not found", e));
    }
    b.remove(FileKind::Snapshot, "s1")
        .map_err(|e| fail("remove", e))?;
    if b.exists(FileKind::Snapshot, "s1")
        .map_err(|e| fail("exists", e))?
        || b.read(FileKind::Snapshot, "s1").is_ok()
    {
        return Err("a removed file is still there".into());
    }
    b.remove(FileKind::Pack, "abcdef")
        .map_err(|e| fail("remove", e))?;
    Ok(())
}

/// A key slot (named, not content-addressed) is never replaced.
fn never_replaces(b: &dyn Backend) -> Result<(), String> {
    b.write(FileKind::Key, "i1", b"first")
        .map_err(|e| fail("write", e))?;
    // The same name and size: the same file, a retried upload.
    b.write(FileKind::Key, "i1", b"first")
        .map_err(|e| fail("writing the same file again", e))?;
    if b.write(FileKind::Key, "i1", b"other content").is_ok() {
        return Err("a file was replaced by other content".into());
    }
    let got = b.read(FileKind::Key, "i1").map_err(|e| fail("read", e))?;
    if got != b"first" {
        return Err(fail(
            "after a refused overwrite",
            String::from_utf8_lossy(&got),
        ));
    }
    b.remove(FileKind::Key, "i1")
        .map_err(|e| fail("remove", e))?;
    Ok(())
}

/// Runs `work(0..n)` on `n` threads at once; the first error.
fn in_threads(n: usize, work: impl Fn(usize) -> Result<(), String> + Sync) -> Result<(), String> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                s.spawn({
                    let work = &work;
                    move || work(i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a writer panicked".into())))
            .collect::<Result<Vec<()>, String>>()
    })
    .map(|_| ())
}

fn two_writers(b: &Arc<dyn Backend>) -> Result<(), String> {
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i * 7 + i / 251) as u8).collect();
    let name = Id::hash(&data).to_hex();
    in_threads(2, |w| {
        // The same pack from both, and one of its own each.
        let mut t = b.create_temp().map_err(|e| fail("create_temp", e))?;
        t.file.write_all(&data).map_err(|e| fail("temp", e))?;
        b.commit_temp(t, FileKind::Pack, &name)
            .map_err(|e| fail("commit_temp (two writers)", e))?;
        b.write(FileKind::Lock, &format!("writer{w}"), b"lock")
            .map_err(|e| fail("write (two writers)", e))
    })?;
    let packs = b.list_sizes(FileKind::Pack).map_err(|e| fail("list", e))?;
    if packs != vec![(name.clone(), data.len() as u64)] {
        return Err(fail("two writers of one pack", packs));
    }
    if b.read(FileKind::Pack, &name).map_err(|e| fail("read", e))? != data {
        return Err("two writers of one pack: content differs".into());
    }
    let locks = b.list(FileKind::Lock).map_err(|e| fail("list", e))?;
    if locks != vec!["writer0".to_string(), "writer1".to_string()] {
        return Err(fail("two writers' own files", locks));
    }
    b.remove(FileKind::Pack, &name)
        .map_err(|e| fail("remove", e))?;
    for l in locks {
        b.remove(FileKind::Lock, &l)
            .map_err(|e| fail("remove", e))?;
    }
    Ok(())
}

fn many(b: &Arc<dyn Backend>, n: usize) -> Result<(), String> {
    let threads = 8;
    in_threads(threads, |t| {
        for i in (t..n).step_by(threads) {
            b.write(FileKind::Snapshot, &format!("{i:05}"), &i.to_le_bytes())
                .map_err(|e| fail("write (listing)", e))?;
        }
        Ok(())
    })?;
    let listed = b
        .list_sizes(FileKind::Snapshot)
        .map_err(|e| fail("list", e))?;
    let want: Vec<(String, u64)> = (0..n).map(|i| (format!("{i:05}"), 8)).collect();
    if listed != want {
        return Err(format!(
            "listing {n} files gave {} (first missing: {:?})",
            listed.len(),
            want.iter().find(|w| !listed.contains(w))
        ));
    }
    Ok(())
}

/// The name [`write_then_hang`] writes under.
pub const CRASH_NAME: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";

/// Writes a large pack (`size` bytes) under [`CRASH_NAME`]: the process is meant to be
/// killed while it is being sent. `on_start` is called just before the upload begins.
pub fn write_then_hang(b: &dyn Backend, size: usize, on_start: &dyn Fn()) -> crate::Result<()> {
    let mut t = b.create_temp()?;
    let chunk = vec![0x5au8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        t.file
            .write_all(&chunk[..n])
            .map_err(|e| crate::Error::io(&t.path, e))?;
        left -= n;
    }
    on_start();
    b.commit_temp(t, FileKind::Pack, CRASH_NAME)
}

/// After a writer was killed mid-upload: no file under its name, nothing listed.
pub fn check_after_crash(b: &dyn Backend) -> Result<(), String> {
    if b.exists(FileKind::Pack, CRASH_NAME)
        .map_err(|e| fail("exists", e))?
    {
        let size = b
            .list_sizes(FileKind::Pack)
            .map_err(|e| fail("list", e))?
            .into_iter()
            .find(|(n, _)| n == CRASH_NAME);
        return Err(fail("a file interrupted mid-upload is visible", size));
    }
    if b.list(FileKind::Pack)
        .map_err(|e| fail("list", e))?
        .contains(&CRASH_NAME.to_string())
    {
        return Err("a file interrupted mid-upload is listed".into());
    }
    Ok(())
}
