//! A repository in a local directory.
//!
//! Layout: `config`, `data/<first two hex digits>/<pack id>`, `index/<id>`, `snapshots/<id>`,
//! `locks/<id>`, and `tmp/` for files being written. Every write goes to `tmp/`, is fsynced,
//! then renamed into place; the parent directory is fsynced before anything that refers to the
//! file is written, so a crash at any instant leaves either no file or a complete one.

use super::{Backend, FileKind, TempFile};
use crate::error::{Error, IoContext, Result};
use crate::platform;
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Pack files kept open for reads: a restore of small files reads a few blobs from each
/// pack in turn, and opening the pack for every blob doubled its system calls.
const OPEN_PACKS: usize = 8;

/// A repository stored in a local directory.
#[derive(Debug)]
pub struct LocalBackend {
    root: PathBuf,
    /// Directories that received a rename since the last `sync`.
    dirty: Mutex<HashSet<PathBuf>>,
    counter: AtomicU64,
    /// The packs read last, most recent first (a pack's content never changes: it is named
    /// by its hash).
    open_packs: Mutex<Vec<(String, Arc<File>)>>,
}

impl LocalBackend {
    /// A backend over `root` (not created until [`Backend::create`]).
    pub fn new(root: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend {
            root: root.into(),
            dirty: Mutex::new(HashSet::new()),
            counter: AtomicU64::new(0),
            open_packs: Mutex::new(Vec::new()),
        }
    }

    /// An open pack, from the cache or opened now.
    fn open_pack(&self, name: &str) -> Result<Arc<File>> {
        {
            let mut cache = self.open_packs.lock().expect("lock");
            if let Some(i) = cache.iter().position(|(n, _)| n == name) {
                let hit = cache.remove(i);
                let file = hit.1.clone();
                cache.insert(0, hit);
                return Ok(file);
            }
        }
        let p = self.path(FileKind::Pack, name);
        let file = Arc::new(File::open(&p).at(&p)?);
        let mut cache = self.open_packs.lock().expect("lock");
        cache.insert(0, (name.to_string(), file.clone()));
        cache.truncate(OPEN_PACKS);
        Ok(file)
    }

    /// The repository directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, kind: FileKind, name: &str) -> PathBuf {
        match kind {
            FileKind::Config => self.root.join("config"),
            FileKind::Pack => {
                let sub = name.get(..2).unwrap_or("xx");
                self.root.join("data").join(sub).join(name)
            }
            _ => self.root.join(kind.dir()).join(name),
        }
    }

    fn temp_path(&self) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("tmp")
            .join(format!("{}-{}-{n}", std::process::id(), nanos_now()))
    }

    /// Renames `from` to `to` without ever replacing a file there; an existing `to` of the
    /// same size is the same file (names are hashes of content): `from` is dropped.
    fn rename_durably(&self, from: &Path, to: &Path) -> Result<()> {
        let parent = to.parent().expect("repository files have a parent");
        let rename = || platform::rename_noreplace(from, to);
        match rename() {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound && !parent.exists() => {
                private_dirs(parent).at(parent)?;
                self.dirty
                    .lock()
                    .expect("lock")
                    .insert(parent.parent().unwrap_or(parent).to_path_buf());
                rename().at(to)?;
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let same = fs::metadata(from).at(from)?.len() == fs::metadata(to).at(to)?.len();
                let _ = fs::remove_file(from);
                if !same {
                    return Err(Error::io(
                        to,
                        std::io::Error::new(
                            ErrorKind::AlreadyExists,
                            "exists already with other content: not replaced",
                        ),
                    ));
                }
            }
            Err(e) => return Err(Error::io(to, e)),
        }
        self.dirty
            .lock()
            .expect("lock")
            .insert(parent.to_path_buf());
        Ok(())
    }
}

fn nanos_now() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Creates `dir` and its missing parents with mode 0700.
/// A new file at `path` (in `dir`) only its owner may read (0600), `dir` created (0700) when
/// missing.
pub(super) fn create_private_temp(dir: &Path, path: PathBuf) -> Result<TempFile> {
    let open = || platform::create_new_private(&path);
    let file = match open() {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            private_dirs(dir).at(dir)?;
            open().at(&path)?
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    Ok(TempFile { file, path })
}

fn private_dirs(dir: &Path) -> std::io::Result<()> {
    platform::private_dirs(dir)
}

fn fsync_dir(dir: &Path) -> Result<()> {
    platform::sync_dir(dir).at(dir)
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    #[cfg(unix)]
    fn exposure(&self) -> Option<String> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let m = fs::metadata(&self.root).ok()?;
        let me = rustix::process::geteuid().as_raw();
        if m.uid() != me {
            return Some(format!(
                "{} belongs to uid {}, not to this user (uid {me}): its owner can read and change every backup",
                self.root.display(),
                m.uid()
            ));
        }
        let mode = m.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "{} is open to others (mode {mode:04o}): anyone on this machine may read every backed-up file, whatever its rights in the share; make it private with `chmod -R go-rwx {}`",
                self.root.display(),
                self.root.display()
            )
        })
    }

    #[cfg(windows)]
    fn exposure(&self) -> Option<String> {
        let why = platform::open_to_others(&self.root).ok()??;
        Some(format!(
            "{} {why}: they may read every backed-up file, whatever its rights in the share; {}",
            self.root.display(),
            platform::private_hint(&self.root, true)
        ))
    }

    fn file_location(&self, kind: FileKind, name: &str) -> PathBuf {
        self.path(kind, name)
    }

    fn create(&self) -> Result<()> {
        if self.root.join("config").exists() {
            return Err(Error::CannotInit {
                path: self.root.clone(),
                reason: "a repository already exists here".into(),
            });
        }
        if let Ok(mut entries) = fs::read_dir(&self.root) {
            if entries.next().is_some() {
                return Err(Error::CannotInit {
                    path: self.root.clone(),
                    reason: "the directory is not empty; give an empty or new directory".into(),
                });
            }
        }
        // A repository holds every backed-up file, whatever its rights were: private to its
        // owner whatever the umask.
        private_dirs(&self.root).at(&self.root)?;
        platform::make_private(&self.root).at(&self.root)?;
        for dir in ["data", "index", "snapshots", "locks", "keys", "tmp"] {
            private_dirs(&self.root.join(dir)).at(self.root.join(dir))?;
        }
        for i in 0..=255u8 {
            let d = self.root.join("data").join(format!("{i:02x}"));
            platform::private_dir(&d).at(&d)?;
        }
        fsync_dir(&self.root.join("data"))?;
        fsync_dir(&self.root)?;
        Ok(())
    }

    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        let p = self.path(kind, name);
        match fs::symlink_metadata(&p) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(p, e)),
        }
    }

    fn list(&self, kind: FileKind) -> Result<Vec<String>> {
        Ok(self.list_sizes(kind)?.into_iter().map(|(n, _)| n).collect())
    }

    fn list_sizes(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        let dir = self.root.join(kind.dir());
        let mut out = Vec::new();
        let push_dir = |d: &Path, out: &mut Vec<(String, u64)>| -> Result<()> {
            let rd = match fs::read_dir(d) {
                Ok(rd) => rd,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(Error::io(d, e)),
            };
            for entry in rd {
                let entry = entry.at(d)?;
                let meta = entry.metadata().at(entry.path())?;
                if meta.is_file() {
                    if let Some(name) = entry.file_name().to_str() {
                        out.push((name.to_string(), meta.len()));
                    }
                }
            }
            Ok(())
        };
        if kind == FileKind::Pack {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(Error::io(&dir, e)),
            };
            for sub in rd {
                let sub = sub.at(&dir)?;
                if sub.file_type().at(sub.path())?.is_dir() {
                    push_dir(&sub.path(), &mut out)?;
                }
            }
        } else {
            push_dir(&dir, &mut out)?;
        }
        out.sort();
        Ok(out)
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let p = self.path(kind, name);
        fs::read(&p).at(p)
    }

    fn read_at(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.read_at_into(kind, name, offset, &mut buf)?;
        Ok(buf)
    }

    fn read_at_into(&self, kind: FileKind, name: &str, offset: u64, out: &mut [u8]) -> Result<()> {
        let f = match kind {
            FileKind::Pack => self.open_pack(name)?,
            _ => {
                let p = self.path(kind, name);
                Arc::new(File::open(&p).at(&p)?)
            }
        };
        platform::read_exact_at(&f, out, offset).map_err(|e| Error::io(self.path(kind, name), e))
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        let mut temp = self.create_temp()?;
        temp.file.write_all(data).at(&temp.path)?;
        self.commit_temp(temp, kind, name)
    }

    fn create_temp(&self) -> Result<TempFile> {
        create_private_temp(&self.root.join("tmp"), self.temp_path())
    }

    fn commit_temp(&self, temp: TempFile, kind: FileKind, name: &str) -> Result<()> {
        let TempFile { file, path } = temp;
        file.sync_all().at(&path)?;
        drop(file);
        let dest = self.path(kind, name);
        if let Err(e) = self.rename_durably(&path, &dest) {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        if matches!(kind, FileKind::Config) {
            self.sync()?;
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        let dirs: Vec<PathBuf> = self.dirty.lock().expect("lock").drain().collect();
        for d in dirs {
            fsync_dir(&d)?;
        }
        Ok(())
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        if kind == FileKind::Pack {
            self.open_packs
                .lock()
                .expect("lock")
                .retain(|(n, _)| n != name);
        }
        let p = self.path(kind, name);
        fs::remove_file(&p).at(&p)
    }

    fn clean_temp(&self) -> Result<usize> {
        let tmp = self.root.join("tmp");
        let rd = match fs::read_dir(&tmp) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io(&tmp, e)),
        };
        let mut n = 0;
        for e in rd {
            let p = e.at(&tmp)?.path();
            fs::remove_file(&p).at(&p)?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    //! The conformance suite every backend must pass (run here on the local directory).
    use super::*;

    #[test]
    fn local_backend_passes_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path().join("repo")));
        crate::backend::conformance::run(b, crate::backend::conformance::LISTING).unwrap();
    }

    #[test]
    fn an_interrupted_write_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("repo"));
        b.create().unwrap();
        // Written to tmp/ but never committed (the process died).
        let mut t = b.create_temp().unwrap();
        t.file.write_all(b"half a pack").unwrap();
        drop(t);
        crate::backend::conformance::check_after_crash(&b).unwrap();
        assert_eq!(b.clean_temp().unwrap(), 1);
    }

    #[test]
    fn create_refuses_non_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("x"), b"x").unwrap();
        let err = LocalBackend::new(dir.path()).create().unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
    }
}
