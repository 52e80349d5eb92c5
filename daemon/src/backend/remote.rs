//! A repository on an S3-compatible object store or an SFTP server, through OpenDAL (one
//! well-kept client for many stores; rustic uses it too). Same layout as a local repository:
//! `config`, `keys/`, `data/ab/<pack>`, `index/`, `snapshots/`, `locks/`.
//!
//! How the backend contract holds without a local filesystem:
//! - **Atomic**: on S3 a file is one `PutObject` of the whole file (an object is visible only
//!   complete; a pack is staged in a local file first, then sent in one request); over SFTP a
//!   file is written under `tmp/` and renamed into place.
//! - **Never replaced**: S3 writes carry `If-None-Match: *` where the store honours it (AWS,
//!   MinIO, Ceph; probed once per store and remembered in the cache); where it does not
//!   (Garage 2.5 ignores it), and over SFTP (whose rename replaces), the name is looked up
//!   first, for the config and key slots (the other files are named by the hash of their
//!   content: a second write of one is the same file). A name that exists already with the same size is the same file (names
//!   are hashes of content): a retried upload whose first answer was lost succeeds.
//! - **Retries**: transient errors (connection refused or reset, 5xx, throttling) are retried
//!   with jittered exponential backoff, 6 attempts over about 30 s, then reported.
//! - **Locks**: written, then listed (`lock.rs`): no rename needed, so they work on object
//!   stores.
//! - **Requests**: index, snapshot and key files never change once written: they are kept in
//!   a local cache (as stored: sealed) and read from the store once.
//!
//! OpenDAL is asynchronous; remote backends share one small tokio runtime that lives as long
//! as the process (the HTTP client's pooled connections belong to it: a runtime per backend
//! left dead connections in the pool when a backend was dropped), and block on it, so the
//! engine's threads (and the daemon's blocking pool) use them like the local directory.

use super::location::{Credentials, Location};
use super::{Backend, FileKind, TempFile};
use crate::error::{Error, IoContext, Result};
use opendal::blocking;
use opendal::{BytesRange, ErrorKind as OdErrorKind};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Attempts for a request before its error is reported.
const ATTEMPTS: usize = 6;
/// A read of less than this from a pack fetches the whole pack (a copy, a stream or a mount
/// reads many of a pack's blobs, in any order: one request serves them all, and object
/// stores bill per request; the store answers an open range to the object's end). A restore
/// does not read blob by blob: it streams each pack once ([`Backend::read_stream`]).
const WINDOW: usize = 8 << 20;
/// Windows kept (the most recently fetched; a pack is 16 MiB or a little more): in unlinked
/// files of the staging folder, not in memory, so several readers, each in its own packs, do
/// not fetch them again (at most about 400 MiB of disk, gone with the process).
const WINDOWS: usize = 24;

/// A pack fetched whole, as stored (sealed when the repository is encrypted).
struct Window {
    pack: String,
    len: u64,
    file: std::sync::Arc<std::fs::File>,
}

/// A repository on a remote store.
pub struct RemoteBackend {
    location: Location,
    op: blocking::Operator,
    sftp: bool,
    /// Where packs are staged before their upload.
    staging: PathBuf,
    /// Where immutable files are cached.
    cache: PathBuf,
    counter: AtomicU64,
    /// Whether the S3 store refuses a conditional write over an existing object.
    conditional: std::sync::OnceLock<bool>,
    /// Parts of packs fetched last, newest first.
    windows: std::sync::Mutex<Vec<Window>>,
    /// Packs being fetched now: another reader of one waits for it rather than fetching it
    /// again.
    fetching: std::sync::Mutex<std::collections::HashSet<String>>,
    fetched: std::sync::Condvar,
}

impl std::fmt::Debug for RemoteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteBackend({})", self.location)
    }
}

/// The runtime every remote backend runs on (created on first use, never dropped).
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("sk-remote")
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// Whether an error is a lost or refused connection: worth retrying, though OpenDAL's HTTP
/// transport marks it permanent (a store restarting, a network blip).
/// How streaming a pack failed.
#[derive(Debug)]
enum Streamed {
    /// The request (OpenDAL's error: retried if the connection was lost).
    Store(opendal::Error),
    /// The answer cut off midway (retried).
    Cut(std::io::Error),
    /// Writing the staging file.
    Local(std::io::Error),
    /// The reader's own error (returned as it is).
    Sink(Error),
}

impl Streamed {
    /// Worth asking again: the connection was lost, or the answer cut off.
    fn transient(&self) -> bool {
        match self {
            Streamed::Store(e) => connection_lost(e),
            Streamed::Cut(_) => true,
            Streamed::Local(_) | Streamed::Sink(_) => false,
        }
    }
}

/// Runs `f` until it succeeds, fails for good (`transient` says no) or has failed
/// [`ATTEMPTS`] times, backing off from 0.2 s, doubling up to 8 s. Its last answer.
fn retry<T, E>(
    transient: impl Fn(&E) -> bool,
    mut f: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let mut delay = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match f() {
            Err(e) if attempt < ATTEMPTS && transient(&e) => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(8));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Takes each piece of an answer with its position in the object.
type PieceSink<'a> = dyn FnMut(u64, &[u8]) -> std::result::Result<(), Streamed> + 'a;

fn connection_lost(e: &opendal::Error) -> bool {
    if e.is_temporary() || e.kind() != OdErrorKind::Unexpected {
        return false;
    }
    let c = causes(e).to_ascii_lowercase();
    [
        "connect",
        "connection",
        "broken pipe",
        "reset",
        "closed",
        "timed out",
    ]
    .iter()
    .any(|w| c.contains(w))
}

fn remote_err(location: String, e: opendal::Error) -> Error {
    let kind = match e.kind() {
        OdErrorKind::NotFound => Some(ErrorKind::NotFound),
        OdErrorKind::PermissionDenied => Some(ErrorKind::PermissionDenied),
        _ => None,
    };
    match kind {
        Some(k) => Error::io(location, std::io::Error::new(k, e.to_string())),
        None => Error::Remote {
            location,
            message: format!(
                "{}{} ({})",
                e,
                causes(&e),
                if e.is_temporary() || connection_lost(&e) {
                    "the store did not answer after retries: check it is up and reachable"
                } else {
                    "the store refused: check the address, the bucket and the credentials"
                }
            ),
        },
    }
}

/// The chain of causes below an error (`: cause: cause…`), which OpenDAL's message leaves out
/// ("error sending request" says nothing of a refused connection).
fn causes(e: &opendal::Error) -> String {
    let mut out = String::new();
    let mut next = std::error::Error::source(e);
    let mut depth = 0;
    while let Some(c) = next {
        if depth > 0 {
            out += &format!(": {c}");
        }
        depth += 1;
        next = c.source();
    }
    out
}

impl RemoteBackend {
    /// Connects to the store `location` names (nothing is sent until the first request),
    /// caching immutable files and staging packs under `cache_root` (a local folder, in a
    /// subfolder per repository).
    pub fn open(location: &Location, creds: &Credentials, cache_root: &Path) -> Result<Self> {
        // The HTTP client OpenDAL's S3 service sends requests with (once per process).
        opendal::install_default();
        let _guard = runtime()?.enter();
        let retry = opendal::layers::RetryLayer::new()
            .with_max_times(ATTEMPTS - 1)
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(8))
            .with_factor(2.0)
            .with_jitter();
        let invalid = |e: opendal::Error| Error::Invalid(format!("{location}: {e}"));
        let (op, sftp) = match location {
            Location::S3(s3) => {
                let mut cfg = opendal::services::S3::default()
                    .bucket(&s3.bucket)
                    .root(&format!("/{}", s3.prefix))
                    .region(&s3.region)
                    .disable_config_load();
                if let Some(e) = &s3.endpoint {
                    cfg = cfg.endpoint(e);
                }
                if s3.virtual_host {
                    cfg = cfg.enable_virtual_host_style();
                }
                match (&creds.s3_access_key_id, &creds.s3_secret_access_key) {
                    (Some(id), Some(secret)) => {
                        cfg = cfg.access_key_id(id).secret_access_key(secret);
                    }
                    _ => {
                        return Err(Error::Invalid(format!(
                            "{location}: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (sharekeepd: in the file `remote_credentials` names in sharekeepd.toml)"
                        )))
                    }
                }
                if let Some(t) = &creds.s3_session_token {
                    cfg = cfg.session_token(t);
                }
                (
                    opendal::Operator::new(cfg).map_err(invalid)?.layer(retry),
                    false,
                )
            }
            // OpenDAL's SFTP drives OpenSSH's client over a Unix socket: not on Windows.
            #[cfg(windows)]
            Location::Sftp(_) => {
                return Err(Error::Invalid(format!(
                    "{location}: SFTP repositories are not available on Windows (OpenDAL's SFTP needs OpenSSH's client on Unix); use an s3:// store or a local folder"
                )))
            }
            #[cfg(unix)]
            Location::Sftp(s) => {
                let mut cfg = opendal::services::Sftp::default()
                    .endpoint(&format!("ssh://{}:{}", s.host, s.port))
                    .root(&s.path)
                    .known_hosts_strategy(&s.known_hosts);
                if let Some(u) = &s.user {
                    cfg = cfg.user(u);
                }
                if let Some(k) = &creds.ssh_identity {
                    cfg = cfg.key(&k.display().to_string());
                }
                (
                    opendal::Operator::new(cfg).map_err(invalid)?.layer(retry),
                    true,
                )
            }
            Location::Local(p) => {
                return Err(Error::Invalid(format!(
                    "{}: a local folder is not a remote store",
                    p.display()
                )))
            }
        };
        let op = blocking::Operator::new(op).map_err(invalid)?;
        drop(_guard);
        let key = crate::id::Id::hash(location.to_string().as_bytes()).short();
        let base = cache_root.join(format!("remote-{key}"));
        Ok(RemoteBackend {
            location: location.clone(),
            op,
            sftp,
            staging: base.join("staging"),
            cache: base.join("files"),
            counter: AtomicU64::new(0),
            conditional: std::sync::OnceLock::new(),
            windows: std::sync::Mutex::new(Vec::new()),
            fetching: std::sync::Mutex::new(std::collections::HashSet::new()),
            fetched: std::sync::Condvar::new(),
        })
    }

    /// Runs one request, again after a lost or refused connection (the retry layer already
    /// retries what OpenDAL deems temporary): [`ATTEMPTS`] in all, backing off from 0.2 s.
    fn call<T>(&self, f: impl Fn(&blocking::Operator) -> opendal::Result<T>) -> opendal::Result<T> {
        retry(connection_lost, || f(&self.op))
    }

    fn path(kind: FileKind, name: &str) -> String {
        match kind {
            FileKind::Config => "config".into(),
            FileKind::Pack => format!("data/{}/{name}", name.get(..2).unwrap_or("xx")),
            _ => format!("{}/{name}", kind.dir()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.location.base())
    }

    /// What a streamed request of the object at `path` that failed for good reports.
    fn streamed_err(&self, path: &str, e: Streamed) -> Error {
        match e {
            Streamed::Sink(e) => e,
            Streamed::Store(e) => self.err(path)(e),
            Streamed::Cut(e) | Streamed::Local(e) => Error::io(self.url(path), e),
        }
    }

    fn err(&self, path: &str) -> impl Fn(opendal::Error) -> Error + '_ {
        let url = self.url(path);
        move |e| remote_err(url.clone(), e)
    }

    /// Immutable files are cached locally once read or written.
    fn cached(kind: FileKind) -> bool {
        matches!(kind, FileKind::Index | FileKind::Snapshot | FileKind::Key)
    }

    fn cache_path(&self, kind: FileKind, name: &str) -> PathBuf {
        self.cache.join(kind.dir()).join(name)
    }

    fn cache_put(&self, kind: FileKind, name: &str, data: &[u8]) {
        if Self::cached(kind) {
            // A cache that cannot be written only costs requests.
            let _ = crate::atomic::write_atomic(&self.cache_path(kind, name), data, 0o600);
        }
    }

    /// Whether the object at `path` is there with `len` bytes (a write found it existing).
    fn same_size(&self, path: &str, len: usize) -> Result<bool> {
        match self.call(|op| op.stat(path)) {
            Ok(m) => Ok(m.content_length() == len as u64),
            Err(e) => Err(self.err(path)(e)),
        }
    }

    /// Whether the store honours `If-None-Match: *` (asked once: a probe object written twice,
    /// then removed; the answer kept beside the cache).
    fn conditional_writes(&self) -> bool {
        *self.conditional.get_or_init(|| {
            let memo = self.cache.with_file_name("conditional-writes");
            match std::fs::read_to_string(&memo).as_deref().map(str::trim) {
                Ok("yes") => return true,
                Ok("no") => return false,
                _ => {}
            }
            let probe = format!("locks/probe-{}-{}", std::process::id(), nanos());
            let opts = || opendal::options::WriteOptions {
                if_not_exists: true,
                ..Default::default()
            };
            let answer = match self.call(|op| op.write_options(&probe, b"1".to_vec(), opts())) {
                Ok(_) => match self.call(|op| op.write_options(&probe, b"2".to_vec(), opts())) {
                    Err(e) if e.kind() == OdErrorKind::ConditionNotMatch => Some(true),
                    Ok(_) => Some(false),
                    Err(_) => None,
                },
                Err(_) => None,
            };
            let _ = self.call(|op| op.delete(&probe));
            match answer {
                Some(a) => {
                    let _ = crate::atomic::write_atomic(
                        &memo,
                        if a { b"yes\n" } else { b"no\n" },
                        0o600,
                    );
                    a
                }
                // Unknown (the store is down): look names up first, as when it is not honoured.
                None => false,
            }
        })
    }

    /// The error for a name that exists with other content.
    fn exists_err(&self, path: &str) -> Error {
        Error::io(
            self.url(path),
            std::io::Error::new(
                ErrorKind::AlreadyExists,
                "exists already with other content: not replaced",
            ),
        )
    }

    /// Whether `path` exists: `None` when not, `Some(size)` when it does.
    fn existing(&self, path: &str) -> Result<Option<u64>> {
        match self.call(|op| op.stat(path)) {
            Ok(m) => Ok(Some(m.content_length())),
            Err(e) if e.kind() == OdErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(path)(e)),
        }
    }

    fn put(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.put_owned(kind, name, data.to_vec())
    }

    /// Writes an object from a buffer it takes: OpenDAL's `Buffer` shares it (a retry
    /// re-sends the same bytes, a pack is never copied to be sent).
    fn put_owned(&self, kind: FileKind, name: &str, data: Vec<u8>) -> Result<()> {
        let len = data.len();
        let data = opendal::Buffer::from(data);
        let path = Self::path(kind, name);
        let conditional = !self.sftp && self.conditional_writes();
        // Packs, index, snapshot and lock files are named by the hash of their content:
        // writing one over an existing one of the same name changes nothing, so they are not
        // looked up first (a request fewer each, which object stores bill; a missing name
        // costs OpenDAL two). The config and key slots are.
        if !conditional && !kind.content_addressed() {
            match self.existing(&path)? {
                Some(have) if have == len as u64 => {
                    self.cache_put(kind, name, &data.to_bytes());
                    return Ok(());
                }
                Some(_) => return Err(self.exists_err(&path)),
                None => {}
            }
        }
        if self.sftp {
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            let tmp = format!("tmp/{}-{}-{n}", std::process::id(), nanos());
            self.call(|op| op.write(&tmp, data.clone()))
                .map_err(self.err(&tmp))?;
            if let Err(e) = self.call(|op| op.rename(&tmp, &path)) {
                let _ = self.call(|op| op.delete(&tmp));
                if !self.same_size(&path, len).unwrap_or(false) {
                    return Err(self.err(&path)(e));
                }
            }
        } else {
            let opts = opendal::options::WriteOptions {
                if_not_exists: conditional,
                ..Default::default()
            };
            match self.call(|op| op.write_options(&path, data.clone(), opts.clone())) {
                Ok(_) => {}
                Err(e) if e.kind() == OdErrorKind::ConditionNotMatch => {
                    if !self.same_size(&path, len)? {
                        return Err(self.exists_err(&path));
                    }
                }
                Err(e) => return Err(self.err(&path)(e)),
            }
        }
        self.cache_put(kind, name, &data.to_bytes());
        Ok(())
    }

    /// Reads exactly `len` bytes at `offset`.
    fn fetch(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let data = self.fetch_range(kind, name, offset, len)?;
        if data.len() != len {
            return Err(self.short_read(kind, name, offset, len, data.len()));
        }
        Ok(data)
    }

    /// Fetches a whole pack (one request) into a new file of the staging folder, already
    /// unlinked (only this process holds it, and it goes with the process), copying the
    /// `out.len()` bytes at `offset` on the way. The file, and the pack's length.
    fn fetch_pack(&self, name: &str, offset: u64, out: &mut [u8]) -> Result<(std::fs::File, u64)> {
        let path = Self::path(FileKind::Pack, name);
        let TempFile { file, path: temp } = self.create_temp()?;
        let _ = std::fs::remove_file(&temp);
        // Cut off mid-answer: the whole pack again, over what was written.
        let len = retry(Streamed::transient, || {
            self.stream_pack(&path, &file, offset, out)
        })
        .map_err(|e| match e {
            Streamed::Local(e) => Error::io(&temp, e),
            e => self.streamed_err(&path, e),
        })?;
        let end = offset + out.len() as u64;
        if len < end {
            return Err(self.short_read(
                FileKind::Pack,
                name,
                offset,
                out.len(),
                len.saturating_sub(offset) as usize,
            ));
        }
        Ok((file, len))
    }

    /// One request for the whole pack, its answer written to `file` piece by piece as it
    /// arrives (never the whole pack in memory: a restore runs several fetches at once),
    /// the bytes at `offset` copied to `out` on the way. The pack's length.
    fn stream_pack(
        &self,
        path: &str,
        file: &std::fs::File,
        offset: u64,
        out: &mut [u8],
    ) -> std::result::Result<u64, Streamed> {
        let end = offset + out.len() as u64;
        self.stream_range(path, 0.., &mut |pos, piece| {
            crate::platform::write_all_at(file, piece, pos).map_err(Streamed::Local)?;
            let (from, to) = (pos.max(offset), (pos + piece.len() as u64).min(end));
            if from < to {
                out[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&piece[(from - pos) as usize..(to - pos) as usize]);
            }
            Ok(())
        })
    }

    /// One request for `range` of the object at `path`, each piece of the answer handed to
    /// `sink` with its position in the object as it arrives. Where the answer ended.
    fn stream_range(
        &self,
        path: &str,
        range: impl std::ops::RangeBounds<u64>,
        sink: &mut PieceSink<'_>,
    ) -> std::result::Result<u64, Streamed> {
        let mut pos = match range.start_bound() {
            std::ops::Bound::Included(&p) => p,
            _ => 0,
        };
        let pieces = self
            .op
            .reader(path)
            .and_then(|r| r.into_bytes_iterator(range))
            .map_err(Streamed::Store)?;
        for piece in pieces {
            // The request is sent at the first piece: its refusal (not found…) comes here,
            // as OpenDAL's error inside an I/O one.
            let piece = piece.map_err(|e| {
                if e.get_ref().is_some_and(|i| i.is::<opendal::Error>()) {
                    let inner = e.into_inner().expect("checked");
                    Streamed::Store(*inner.downcast::<opendal::Error>().expect("checked"))
                } else {
                    Streamed::Cut(e)
                }
            })?;
            sink(pos, &piece)?;
            pos += piece.len() as u64;
        }
        Ok(pos)
    }

    fn fetch_range(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let path = Self::path(kind, name);
        let opts = opendal::options::ReadOptions {
            range: BytesRange::new(offset, Some(len as u64)),
            ..Default::default()
        };
        Ok(self
            .call(|op| op.read_options(&path, opts.clone()))
            .map_err(self.err(&path))?
            .to_vec())
    }

    fn short_read(&self, kind: FileKind, name: &str, offset: u64, len: usize, got: usize) -> Error {
        Error::io(
            self.url(&Self::path(kind, name)),
            std::io::Error::new(
                ErrorKind::UnexpectedEof,
                format!("{len} bytes at {offset} asked, {got} read"),
            ),
        )
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

impl Backend for RemoteBackend {
    fn location(&self) -> String {
        self.location.to_string()
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn file_location(&self, kind: FileKind, name: &str) -> PathBuf {
        PathBuf::from(self.url(&Self::path(kind, name)))
    }

    fn create(&self) -> Result<()> {
        if self.exists(FileKind::Config, "config")? {
            return Err(Error::CannotInit {
                path: PathBuf::from(self.location()),
                reason: "a repository already exists here".into(),
            });
        }
        Ok(())
    }

    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        let path = Self::path(kind, name);
        self.call(|op| op.exists(&path)).map_err(self.err(&path))
    }

    fn list(&self, kind: FileKind) -> Result<Vec<String>> {
        Ok(self.list_sizes(kind)?.into_iter().map(|(n, _)| n).collect())
    }

    fn list_sizes(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        let dir = format!("{}/", kind.dir());
        let opts = opendal::options::ListOptions {
            recursive: true,
            ..Default::default()
        };
        let entries = match self.call(|op| op.list_options(&dir, opts.clone())) {
            Ok(e) => e,
            Err(e) if e.kind() == OdErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(self.err(&dir)(e)),
        };
        let mut out: Vec<(String, u64)> = entries
            .into_iter()
            .filter(|e| e.metadata().is_file())
            .map(|e| (e.name().to_string(), e.metadata().content_length()))
            .filter(|(n, _)| !n.is_empty())
            .collect();
        out.sort();
        Ok(out)
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        if Self::cached(kind) {
            if let Ok(data) = std::fs::read(self.cache_path(kind, name)) {
                return Ok(data);
            }
        }
        let path = Self::path(kind, name);
        let data = self
            .call(|op| op.read(&path))
            .map_err(self.err(&path))?
            .to_vec();
        self.cache_put(kind, name, &data);
        Ok(data)
    }

    fn read_at(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut out = vec![0u8; len];
        self.read_at_into(kind, name, offset, &mut out)?;
        Ok(out)
    }

    fn read_at_into(&self, kind: FileKind, name: &str, offset: u64, out: &mut [u8]) -> Result<()> {
        if kind != FileKind::Pack || out.len() >= WINDOW {
            let data = self.fetch(kind, name, offset, out.len())?;
            out.copy_from_slice(&data);
            return Ok(());
        }
        let end = offset + out.len() as u64;
        let find = || {
            let mut windows = self.windows.lock().expect("lock");
            windows
                .iter()
                .position(|w| w.pack == name && end <= w.len)
                .map(|i| {
                    let w = windows.remove(i);
                    let file = w.file.clone();
                    windows.insert(0, w);
                    file
                })
        };
        loop {
            if let Some(file) = find() {
                // Read outside the lock; a window file that cannot be read is fetched again.
                if crate::platform::read_exact_at(&file, out, offset).is_ok() {
                    return Ok(());
                }
            }
            // One fetch of a pack at a time: the others wait for it, then find it above.
            let mut fetching = self.fetching.lock().expect("lock");
            if !fetching.contains(name) {
                fetching.insert(name.to_string());
                break;
            }
            while fetching.contains(name) {
                fetching = self.fetched.wait(fetching).expect("lock");
            }
        }
        // The whole pack in one request (from its start: blobs of a pack are read in any
        // order, as its files are restored by several workers), fetched outside the lock.
        let done = |this: &Self| {
            this.fetching.lock().expect("lock").remove(name);
            this.fetched.notify_all();
        };
        let (file, len) = match self.fetch_pack(name, offset, out) {
            Ok(x) => x,
            Err(e) => {
                done(self);
                return Err(e);
            }
        };
        let mut windows = self.windows.lock().expect("lock");
        windows.insert(
            0,
            Window {
                pack: name.to_string(),
                len,
                file: std::sync::Arc::new(file),
            },
        );
        windows.truncate(WINDOWS);
        drop(windows);
        done(self);
        Ok(())
    }

    fn read_stream(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        let path = Self::path(kind, name);
        let end = offset + len;
        // Where the answer has reached: a transfer cut off is asked again from there.
        let mut done = offset;
        retry(Streamed::transient, || {
            self.stream_range(&path, done..end, &mut |pos, piece| {
                // A store answering more than asked: only the range goes on.
                let piece = &piece[..piece.len().min((end - pos) as usize)];
                done = pos + piece.len() as u64;
                sink(piece).map_err(Streamed::Sink)
            })
        })
        .map_err(|e| self.streamed_err(&path, e))?;
        if done < end {
            return Err(self.short_read(
                kind,
                name,
                offset,
                len as usize,
                (done - offset) as usize,
            ));
        }
        Ok(())
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        self.put(kind, name, data)
    }

    fn journal_dir(&self) -> Option<PathBuf> {
        Some(self.cache.with_file_name("unindexed"))
    }

    fn create_temp(&self) -> Result<TempFile> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let path = self
            .staging
            .join(format!("{}-{}-{n}", std::process::id(), nanos()));
        super::local::create_private_temp(&self.staging, path)
    }

    fn commit_temp(&self, temp: TempFile, kind: FileKind, name: &str) -> Result<()> {
        let TempFile { file, path } = temp;
        drop(file);
        let data = std::fs::read(&path).at(&path);
        let _ = std::fs::remove_file(&path);
        self.put_owned(kind, name, data?)
    }

    fn sync(&self) -> Result<()> {
        // Every write is durable on the store when it returns.
        Ok(())
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        let path = Self::path(kind, name);
        let _ = std::fs::remove_file(self.cache_path(kind, name));
        self.call(|op| op.delete(&path)).map_err(self.err(&path))
    }

    fn clean_temp(&self) -> Result<usize> {
        let mut n = 0;
        if self.sftp {
            let entries = match self.call(|op| op.list("tmp/")) {
                Ok(e) => e,
                Err(e) if e.kind() == OdErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(self.err("tmp/")(e)),
            };
            for e in entries.iter().filter(|e| e.metadata().is_file()) {
                self.call(|op| op.delete(e.path()))
                    .map_err(self.err(e.path()))?;
                n += 1;
            }
        }
        if let Ok(rd) = std::fs::read_dir(&self.staging) {
            for e in rd.flatten() {
                if std::fs::remove_file(e.path()).is_ok() {
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}
