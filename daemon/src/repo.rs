//! An open repository: its backend, configuration and in-memory index, and the reads every
//! command needs (blobs checked against their hash, trees, snapshots, paths inside a
//! snapshot, file content streamed to any writer). Writing is done by `backup.rs` through the
//! same type, always in the order packs → index → snapshot.

use crate::backend::{self, Access, Backend, FileKind, LocalBackend, Location};
use crate::config::RepoConfig;
use crate::crypto::{self, EncryptedBackend, KeyInfo, Keys, Secret};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::{self, Index, IndexBuilder, IndexedPack};
use crate::pack::{self, BlobType, PackEntry};
use crate::snapshot::{Selector, Snapshot};
use crate::tree::{Node, NodeKind, Tree};
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};

/// A snapshot file that could not be read, and why.
#[derive(Debug)]
pub struct DamagedFile {
    /// The repository file.
    pub path: PathBuf,
    /// What is wrong.
    pub error: Error,
}

/// What a command needs of the repository's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexScope {
    /// Every blob: backups, restores, prune, check, anything that reads file content.
    #[default]
    All,
    /// Tree blobs only, for browsing (`ls`, `versions`, `diff`): a repository of a million
    /// files opens in milliseconds instead of loading a million data blobs' locations. Such a
    /// repository refuses to store, prune, check or read file content.
    Trees,
    /// Trees in memory, data blobs' locations in a sorted file on disk (see
    /// [`IndexBuilder::paged`]): memory that does not grow with the repository, for the
    /// mounts that serve snapshots for as long as the machine runs. Reads file content; refuses
    /// to store, prune or check. Opened with [`Repository::open_paged`].
    Paged,
}

/// Buffers a reader of many blobs reuses ([`Repository::read_blob_into`]).
#[derive(Debug, Default)]
pub(crate) struct BlobBuf {
    /// The stored bytes (its length is the largest read so far).
    stored: Vec<u8>,
    /// Decompressed bytes.
    raw: Vec<u8>,
    /// Where this blob's raw bytes are in `stored` (`None`: in `raw`).
    in_stored: Option<std::ops::Range<usize>>,
}

impl BlobBuf {
    /// The last blob read, verified.
    pub(crate) fn data(&self) -> &[u8] {
        match &self.in_stored {
            Some(r) => &self.stored[r.clone()],
            None => &self.raw,
        }
    }
}

/// An open repository.
#[derive(Debug)]
pub struct Repository {
    /// The store (wrapped so index, snapshot and lock files are sealed when encrypted).
    backend: Arc<dyn Backend>,
    /// The store itself.
    raw_backend: Arc<dyn Backend>,
    keys: Keys,
    /// The key slot that opened it (encrypted repositories).
    key_slot: Option<String>,
    config: RepoConfig,
    index: RwLock<Index>,
    damaged_index: Vec<DamagedFile>,
    scope: IndexScope,
    /// Where a paged index keeps its (anonymous) files.
    cache_dir: Option<PathBuf>,
    /// A remote repository's tree blobs, as stored (sealed), kept on local disk: browsing and
    /// the next backup's comparison with its parent read them without a request each.
    tree_cache: Option<PathBuf>,
}

impl Repository {
    /// Creates a repository in an empty or new local directory.
    pub fn init_local(path: &Path) -> Result<Repository> {
        Repository::init(Arc::new(LocalBackend::new(path)), RepoConfig::new())
    }

    /// Creates a repository on `backend` with `config`.
    pub fn init(backend: Arc<dyn Backend>, config: RepoConfig) -> Result<Repository> {
        Repository::init_with(backend, config, None)
    }

    /// Creates a repository on `backend` with `config`, encrypted when a secret is given (its
    /// first key slot is made from it).
    pub fn init_with(
        backend: Arc<dyn Backend>,
        mut config: RepoConfig,
        secret: Option<&Secret>,
    ) -> Result<Repository> {
        backend.create()?;
        let (keys, key_slot) = match secret {
            None => (Keys::default(), None),
            Some(secret) => {
                let keys = Keys::generate().for_format(config.version);
                let (name, bytes) = keys.new_slot(secret);
                backend.write(FileKind::Key, &name, &bytes)?;
                (keys, Some(name))
            }
        };
        config.encryption = if keys.is_encrypted() {
            crypto::CIPHER.into()
        } else {
            "none".into()
        };
        let json = serde_json::to_vec_pretty(&config).expect("config serializes");
        let bytes = if keys.is_encrypted() {
            keys.seal_config(&json)
        } else {
            json
        };
        backend.write(FileKind::Config, "config", &bytes)?;
        let raw_backend = backend.clone();
        let backend = wrap(backend, &keys);
        Ok(Repository {
            backend,
            raw_backend,
            keys,
            key_slot,
            config,
            index: RwLock::new(Index::default()),
            damaged_index: Vec::new(),
            scope: IndexScope::All,
            cache_dir: None,
            tree_cache: None,
        })
    }

    /// Creates a repository at `location`: encrypted when `access` has a secret (its first
    /// key); one on another machine must be.
    pub fn init_at(location: &Location, access: &Access) -> Result<Repository> {
        backend::require_encryption(location, access.secret.as_ref())?;
        let backend = backend::open_backend(location, access)?;
        let mut repo = Repository::init_with(backend, RepoConfig::new(), access.secret.as_ref())?;
        repo.set_tree_cache(access);
        Ok(repo)
    }

    /// Opens the repository at `location` with `access`, loading the index `scope` asks for.
    pub fn open_at(location: &Location, access: &Access, scope: IndexScope) -> Result<Repository> {
        if let Some(p) = location.as_local() {
            local_config_exists(p)?;
        }
        let backend = backend::open_backend(location, access)?;
        let cache = (scope == IndexScope::Paged).then(|| access.cache_root());
        let mut repo =
            Repository::open_keyed(backend, scope, access.secret.as_ref(), cache.as_deref())?;
        repo.set_tree_cache(access);
        Ok(repo)
    }

    /// Keeps a remote repository's trees in the local cache.
    fn set_tree_cache(&mut self, access: &Access) {
        if self.raw_backend.is_remote() {
            self.tree_cache = Some(
                access
                    .cache_root()
                    .join(format!("trees-{}", &self.config.id)),
            );
        }
    }

    /// Opens the repository in a local directory.
    pub fn open_local(path: &Path) -> Result<Repository> {
        Repository::open_local_with(path, IndexScope::All)
    }

    /// Opens the repository in a local directory, loading the index `scope` asks for.
    pub fn open_local_with(path: &Path, scope: IndexScope) -> Result<Repository> {
        local_config_exists(path)?;
        Repository::open_with(Arc::new(LocalBackend::new(path)), scope)
    }

    /// Opens the repository in a local directory with a paged index (see
    /// [`Repository::open_paged`]).
    pub fn open_local_paged(path: &Path, cache_dir: &Path) -> Result<Repository> {
        local_config_exists(path)?;
        Repository::open_paged(Arc::new(LocalBackend::new(path)), cache_dir)
    }

    /// Opens a repository: reads its config and loads every index file. An index file that
    /// cannot be read is remembered (see [`Repository::damaged_index_files`]), not fatal.
    pub fn open(backend: Arc<dyn Backend>) -> Result<Repository> {
        Repository::open_with(backend, IndexScope::All)
    }

    /// Opens a repository, loading the index `scope` asks for (`Paged`: see
    /// [`Repository::open_paged`]).
    pub fn open_with(backend: Arc<dyn Backend>, scope: IndexScope) -> Result<Repository> {
        Repository::open_keyed(backend, scope, None, None)
    }

    /// Opens a possibly encrypted repository with `secret`, loading the index `scope` asks
    /// for; `cache_dir` is where a paged index keeps its files ([`IndexScope::Paged`] needs
    /// one).
    pub fn open_keyed(
        backend: Arc<dyn Backend>,
        scope: IndexScope,
        secret: Option<&Secret>,
        cache_dir: Option<&Path>,
    ) -> Result<Repository> {
        if scope == IndexScope::Paged && cache_dir.is_none() {
            return Err(Error::Invalid(
                "a paged index needs a cache folder: Repository::open_paged".into(),
            ));
        }
        let (config, keys, key_slot) = read_config(backend.as_ref(), secret)?;
        Repository::load(
            backend,
            Opened {
                config,
                keys,
                key_slot,
            },
            scope,
            cache_dir.map(Path::to_path_buf),
        )
    }

    /// Opens a repository keeping only trees in memory and data blobs' locations in
    /// anonymous files in `cache_dir` (a folder on disk, not the repository's, created if
    /// missing): [`IndexScope::Paged`].
    pub fn open_paged(backend: Arc<dyn Backend>, cache_dir: &Path) -> Result<Repository> {
        Repository::open_keyed(backend, IndexScope::Paged, None, Some(cache_dir))
    }

    /// The same repository opened again, with the same scope and key: index files written
    /// since are loaded.
    pub fn reopen(&self) -> Result<Repository> {
        self.reopen_with(self.scope)
    }

    /// The same repository opened again with the same key, loading the index `scope` asks for.
    pub fn reopen_with(&self, scope: IndexScope) -> Result<Repository> {
        let mut repo = self.reopen_inner(scope)?;
        repo.tree_cache = self.tree_cache.clone();
        Ok(repo)
    }

    fn reopen_inner(&self, scope: IndexScope) -> Result<Repository> {
        let config_path = self.raw_backend.file_location(FileKind::Config, "config");
        let bytes = self.raw_backend.read(FileKind::Config, "config")?;
        let json = open_config(&bytes, &self.keys, &config_path)?;
        let config = RepoConfig::parse(&json, &config_path)?;
        Repository::load(
            self.raw_backend.clone(),
            Opened {
                config,
                keys: self.keys.clone(),
                key_slot: self.key_slot.clone(),
            },
            scope,
            self.cache_dir.clone(),
        )
    }

    fn load(
        raw_backend: Arc<dyn Backend>,
        opened: Opened,
        scope: IndexScope,
        cache_dir: Option<PathBuf>,
    ) -> Result<Repository> {
        let Opened {
            config,
            keys,
            key_slot,
        } = opened;
        let backend = wrap(raw_backend.clone(), &keys);
        let files = backend.list_sizes(FileKind::Index)?;
        // An entry takes 46 bytes in an index file: the table is sized once from the files.
        let entries: usize = files.iter().map(|(_, size)| *size as usize / 46).sum();
        let mut idx = match (scope, &cache_dir) {
            (IndexScope::All, _) => IndexBuilder::with_capacity(entries),
            (IndexScope::Trees, _) => IndexBuilder::default(),
            (IndexScope::Paged, Some(dir)) => {
                IndexBuilder::paged(dir, entries).map_err(|e| Error::io(dir, e))?
            }
            (IndexScope::Paged, None) => unreachable!("open_paged names the folder"),
        };
        let mut damaged = Vec::new();
        for (name, _) in files {
            let path = backend.file_location(FileKind::Index, &name);
            match read_index_file(backend.as_ref(), &name, &path, scope) {
                Ok(packs) => idx.add(packs),
                Err(error) => damaged.push(DamagedFile { path, error }),
            }
        }
        let index = match &cache_dir {
            Some(dir) if scope == IndexScope::Paged => {
                idx.try_finish().map_err(|e| Error::io(dir, e))?
            }
            _ => idx.finish(),
        };
        Ok(Repository {
            backend,
            raw_backend,
            keys,
            key_slot,
            config,
            index: RwLock::new(index),
            damaged_index: damaged,
            scope,
            cache_dir,
            tree_cache: None,
        })
    }

    /// Why others than its owner could read or change this repository (`None`: private).
    /// Every backed-up file is in it, whatever its rights were in the share.
    pub fn exposure(&self) -> Option<String> {
        self.backend.exposure()
    }

    /// The storage backend (index, snapshot and lock files sealed and opened on the way when
    /// the repository is encrypted; packs as stored).
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The repository's keys (none when unencrypted).
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Whether the repository is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.keys.is_encrypted()
    }

    /// The content id of `data` in this repository (keyed when encrypted).
    pub fn blob_id(&self, data: &[u8]) -> Id {
        self.keys.id(data)
    }

    /// The keys of an encrypted repository.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        self.require_encrypted()?;
        crypto::list_slots(
            self.raw_backend.as_ref(),
            self.key_slot.as_deref().unwrap_or(""),
        )
    }

    /// Adds a key made from `secret`; returns its name.
    pub fn add_key(&self, secret: &Secret) -> Result<String> {
        self.require_encrypted()?;
        let (name, bytes) = self.keys.new_slot(secret);
        self.raw_backend.write(FileKind::Key, &name, &bytes)?;
        self.raw_backend.sync()?;
        Ok(name)
    }

    /// Removes a key (by name or unique prefix); refuses the key in use (open the repository
    /// with another key to remove this one), which also keeps the last one.
    pub fn remove_key(&self, prefix: &str) -> Result<String> {
        let keys = self.list_keys()?;
        let found: Vec<&KeyInfo> = keys.iter().filter(|k| k.name.starts_with(prefix)).collect();
        let key = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(Error::Invalid(format!(
                    "no key of {} is named {prefix:?}: `sharekeepctl key list` names them",
                    self.location()
                )))
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "{prefix:?} names {} keys: give more of the name",
                    found.len()
                )))
            }
        };
        if key.current {
            return Err(Error::Invalid(format!(
                "key {} is the one this command opened the repository with: open it with another key to remove this one (a repository always keeps one)",
                &key.name[..8]
            )));
        }
        self.raw_backend.remove(FileKind::Key, &key.name)?;
        self.raw_backend.sync()?;
        Ok(key.name.clone())
    }

    fn require_encrypted(&self) -> Result<()> {
        if self.keys.is_encrypted() {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "{} is not encrypted: it has no keys (create an encrypted repository with `sharekeepctl init --encrypt`)",
                self.location()
            )))
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// Where the repository is, for messages.
    pub fn location(&self) -> String {
        self.backend.location()
    }

    /// Index files that could not be read when the repository was opened.
    pub fn damaged_index_files(&self) -> &[DamagedFile] {
        &self.damaged_index
    }

    /// The part of the index this repository was opened with.
    pub fn scope(&self) -> IndexScope {
        self.scope
    }

    /// Refuses what needs the whole index when only trees were loaded.
    pub(crate) fn require_full_index(&self, what: &str) -> Result<()> {
        match self.scope {
            IndexScope::All => Ok(()),
            IndexScope::Trees => Err(Error::Invalid(format!(
                "{what} needs the whole index; the repository was opened for browsing only"
            ))),
            IndexScope::Paged => Err(Error::Invalid(format!(
                "{what} needs the whole index in memory; the repository was opened for reading only"
            ))),
        }
    }

    /// A read lock on the in-memory index.
    pub fn index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().expect("index lock")
    }

    pub(crate) fn add_to_index(&self, packs: Vec<IndexedPack>) {
        self.index.write().expect("index lock").add(packs);
    }

    /// Writes an index file listing `packs` (which must already be durable).
    pub(crate) fn write_index(&self, packs: &[IndexedPack]) -> Result<Id> {
        let bytes = index::encode(packs);
        let id = Id::hash(&bytes);
        self.backend.write(FileKind::Index, &id.to_hex(), &bytes)?;
        self.backend.sync()?;
        Ok(id)
    }

    /// Where a blob is: its pack (hex name) and entry, its claimed lengths checked.
    pub(crate) fn locate(&self, id: &Id) -> Result<(String, PackEntry)> {
        let found = self.index().get(id);
        let (pack_id, entry) = match found {
            Some(f) => f,
            None => {
                if self.scope == IndexScope::Trees {
                    self.require_full_index("reading file content")?;
                }
                return Err(Error::BlobMissing { id: *id });
            }
        };
        let name = pack_id.to_hex();
        // The index's lengths are claims: checked before allocating.
        if let Some(why) = entry.claim_problem() {
            return Err(Error::Corrupt {
                path: self.backend.file_location(FileKind::Pack, &name),
                reason: why,
            });
        }
        Ok((name, entry))
    }

    /// A read of a pack that failed: a missing pack is named as such.
    pub(crate) fn pack_read_error(id: &Id, e: Error) -> Error {
        match e {
            Error::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::Corrupt {
                    path,
                    reason: format!(
                        "pack is missing (it held blob {}); `sharekeepctl check` lists what is affected",
                        id.short()
                    ),
                }
            }
            e => e,
        }
    }

    /// Where a remote repository keeps tree `id` locally (`None`: a local repository).
    fn tree_cache_path(&self, id: &Id) -> Option<PathBuf> {
        let dir = self.tree_cache.as_ref()?;
        let hex = id.to_hex();
        Some(dir.join(&hex[..2]).join(hex))
    }

    /// Keeps a tree this process stores (its stored bytes, as in the pack) in the local cache
    /// of a remote repository: the next backup compares with it without a request.
    pub(crate) fn cache_tree(&self, id: &Id, stored: &[u8]) {
        if let Some(path) = self.tree_cache_path(id) {
            // A cache that cannot be written only costs requests.
            let _ = crate::atomic::write_atomic(&path, stored, 0o600);
        }
    }

    /// Reads one blob, checking it against its hash.
    pub fn read_blob(&self, id: &Id) -> Result<Vec<u8>> {
        let (name, entry) = self.locate(id)?;
        let cached = match entry.blob_type {
            BlobType::Tree => self.tree_cache_path(id),
            _ => None,
        };
        if let Some(path) = &cached {
            if let Ok(stored) = std::fs::read(path) {
                // Checked like any read: a damaged cache entry is read again from the store.
                if let Ok(raw) = pack::decode_blob(&self.keys, &entry, stored, path) {
                    return Ok(raw);
                }
            }
        }
        let stored = self
            .backend
            .read_at(
                FileKind::Pack,
                &name,
                entry.offset as u64,
                entry.length as usize,
            )
            .map_err(|e| Repository::pack_read_error(id, e))?;
        if let Some(path) = &cached {
            // A cache that cannot be written only costs requests.
            let _ = crate::atomic::write_atomic(path, &stored, 0o600);
        }
        pack::decode_blob(
            &self.keys,
            &entry,
            stored,
            &self.backend.file_location(FileKind::Pack, &name),
        )
    }

    /// Reads one blob into `buf`, checking it against its hash, without allocating once the
    /// buffers have grown to the largest blob (a restore reads every blob once: a fresh
    /// allocation each time costs page faults and zeroing).
    pub(crate) fn read_blob_into(&self, id: &Id, buf: &mut BlobBuf) -> Result<()> {
        let (name, entry) = self.locate(id)?;
        let len = entry.length as usize;
        if buf.stored.len() < len {
            buf.stored.resize(len, 0);
        }
        self.backend
            .read_at_into(
                FileKind::Pack,
                &name,
                entry.offset as u64,
                &mut buf.stored[..len],
            )
            .map_err(|e| Repository::pack_read_error(id, e))?;
        match pack::decode_blob_into(
            &self.keys,
            &entry,
            &mut buf.stored[..len],
            &mut buf.raw,
            pack::IdCheck::UnlessSealed,
        ) {
            Some(pack::Decoded::Raw) => {
                buf.in_stored = None;
                Ok(())
            }
            Some(pack::Decoded::Stored(range)) => {
                buf.in_stored = Some(range);
                Ok(())
            }
            None => Err(Error::BlobMismatch {
                id: entry.id,
                pack: self.backend.file_location(FileKind::Pack, &name),
                files: Vec::new(),
            }),
        }
    }

    /// Reads a blob's stored bytes and drops them: the page cache has them when it is read
    /// for real (prefetching). Errors are for the real read to report.
    pub(crate) fn warm_blob(&self, id: &Id) {
        if let Some(path) = self.tree_cache_path(id) {
            // A remote repository: its tree cache is the warm copy (a read fills it), and a
            // read of the store would cost a request for what the cache may hold already.
            if !path.exists() {
                let _ = self.read_blob(id);
            }
            return;
        }
        let found = self.index().get(id);
        if let Some((pack, e)) = found {
            let _ = self.backend.read_at(
                FileKind::Pack,
                &pack.to_hex(),
                e.offset as u64,
                (e.length as usize).min(crate::pack::MAX_TREE_BLOB as usize),
            );
        }
    }

    /// Reads and decodes a tree blob.
    pub fn read_tree(&self, id: &Id) -> Result<Tree> {
        let bytes = self.read_blob(id)?;
        Tree::decode(&bytes).map_err(|e| Error::Corrupt {
            path: PathBuf::from(format!("tree {}", id.short())),
            reason: e.to_string(),
        })
    }

    /// Whether a blob of this type is indexed.
    pub fn has_blob(&self, id: &Id, blob_type: BlobType) -> bool {
        self.index()
            .get(id)
            .is_some_and(|(_, e)| e.blob_type == blob_type)
    }

    /// Every snapshot, oldest first, and the snapshot files that could not be read.
    pub fn snapshots_with_damage(&self) -> Result<(Vec<Snapshot>, Vec<DamagedFile>)> {
        let mut out = Vec::new();
        let mut damaged = Vec::new();
        for name in self.backend.list(FileKind::Snapshot)? {
            let path = self.backend.file_location(FileKind::Snapshot, &name);
            match self.load_snapshot(&name, &path) {
                Ok(s) => out.push(s),
                Err(error) => damaged.push(DamagedFile { path, error }),
            }
        }
        out.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
        Ok((out, damaged))
    }

    /// Every readable snapshot, oldest first.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>> {
        Ok(self.snapshots_with_damage()?.0)
    }

    fn load_snapshot(&self, name: &str, path: &Path) -> Result<Snapshot> {
        let corrupt = |reason: String| Error::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let id: Id = name
            .parse()
            .map_err(|_| corrupt("file name is not a sha256 id".into()))?;
        let bytes = self.backend.read(FileKind::Snapshot, name)?;
        if Id::hash(&bytes) != id {
            return Err(corrupt("content does not match its name (damaged)".into()));
        }
        let mut snap: Snapshot =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        snap.id = id;
        Ok(snap)
    }

    /// The snapshot named by `selector` (id prefix, `latest`, `@TIME`).
    pub fn find_snapshot(&self, selector: &str) -> Result<Snapshot> {
        let sel = Selector::parse(selector)?;
        let all = self.snapshots()?;
        sel.select(&all, selector).cloned()
    }

    /// Stores the blobs the repository lacks in new packs, then indexes them; returns every
    /// blob's id. For writing trees outside a backup (tools, tests); backups use their own
    /// pipeline.
    pub fn store_blobs(&self, blobs: &[(BlobType, &[u8])]) -> Result<Vec<Id>> {
        self.require_full_index("storing")?;
        let ids: Vec<Id> = blobs.iter().map(|(_, raw)| self.keys.id(raw)).collect();
        let mut writer = crate::pack_writer::PackWriter::new(self);
        let mut packs = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for ((t, raw), id) in blobs.iter().zip(&ids) {
            if self.index().contains(id) || !seen.insert(*id) {
                continue;
            }
            if let Some(full) = writer.add(*t, *id, raw)? {
                packs.push(full.commit(self)?);
            }
        }
        if let Some(last) = writer.flush()? {
            packs.push(last.commit(self)?);
        }
        if packs.is_empty() {
            return Ok(ids);
        }
        self.backend.sync()?;
        self.write_index(&packs)?;
        self.add_to_index(packs);
        Ok(ids)
    }

    /// Writes a snapshot file (after its packs and index are durable); sets and returns its id.
    pub fn save_snapshot(&self, snap: &mut Snapshot) -> Result<Id> {
        let bytes = serde_json::to_vec_pretty(&*snap).expect("snapshot serializes");
        let id = Id::hash(&bytes);
        self.backend
            .write(FileKind::Snapshot, &id.to_hex(), &bytes)?;
        self.backend.sync()?;
        snap.id = id;
        Ok(id)
    }

    /// The path components of `path` inside `snap`: accepts a path relative to the backed-up
    /// root or the original absolute path. `""`, `.` and the root itself give no component.
    pub fn relative_components(&self, snap: &Snapshot, path: &str) -> Result<Vec<String>> {
        let root = Path::new(snap.root());
        let p = Path::new(path);
        let rel = if p.is_absolute() {
            p.strip_prefix(root).map_err(|_| Error::PathNotInSnapshot {
                path: path.to_string(),
                snapshot: snap.id.short(),
                root: snap.root().to_string(),
            })?
        } else {
            p
        };
        let mut out = Vec::new();
        for c in rel.components() {
            match c {
                Component::Normal(n) => out.push(n.to_string_lossy().into_owned()),
                Component::CurDir => {}
                _ => {
                    return Err(Error::Invalid(format!(
                        "{path:?}: give a path inside the snapshot, without `..`"
                    )))
                }
            }
        }
        Ok(out)
    }

    /// Finds the node at `path` in `snap`. `Ok(None)` means the snapshot's root itself.
    pub fn find_node(&self, snap: &Snapshot, path: &str) -> Result<Option<Node>> {
        let comps = self.relative_components(snap, path)?;
        self.find_node_components(snap, &comps, path)
    }

    fn find_node_components(
        &self,
        snap: &Snapshot,
        comps: &[String],
        path: &str,
    ) -> Result<Option<Node>> {
        let not_found = || Error::PathNotInSnapshot {
            path: path.to_string(),
            snapshot: snap.id.short(),
            root: snap.root().to_string(),
        };
        let mut tree_id = snap.tree;
        let mut found = None;
        for (i, c) in comps.iter().enumerate() {
            let tree = self.read_tree(&tree_id)?;
            let node = tree.find(c.as_bytes()).cloned().ok_or_else(not_found)?;
            if i + 1 < comps.len() {
                tree_id = match (node.kind, node.subtree) {
                    (NodeKind::Dir, Some(t)) => t,
                    _ => return Err(not_found()),
                };
            }
            found = Some(node);
        }
        Ok(found)
    }

    /// Streams a file node's content to `out`, blob by blob, each checked against its hash.
    pub fn write_content(&self, node: &Node, out: &mut dyn Write) -> Result<u64> {
        let mut n = 0u64;
        for id in &node.content {
            let data = self.read_blob(id)?;
            out.write_all(&data).map_err(|e| Error::io("<output>", e))?;
            n += data.len() as u64;
        }
        Ok(n)
    }
}

/// What opening a repository's config gives.
struct Opened {
    config: RepoConfig,
    keys: Keys,
    key_slot: Option<String>,
}

/// The backend the engine uses: sealing index, snapshot and lock files when encrypted.
fn wrap(backend: Arc<dyn Backend>, keys: &Keys) -> Arc<dyn Backend> {
    if keys.is_encrypted() {
        Arc::new(EncryptedBackend::new(backend, keys.clone()))
    } else {
        backend
    }
}

/// Reads `config`; an encrypted one is opened with the key `secret` unlocks.
fn read_config(
    backend: &dyn Backend,
    secret: Option<&Secret>,
) -> Result<(RepoConfig, Keys, Option<String>)> {
    let path = backend.file_location(FileKind::Config, "config");
    let bytes = backend.read(FileKind::Config, "config")?;
    if !bytes.starts_with(crypto::CONFIG_MAGIC) {
        let config = RepoConfig::parse(&bytes, &path)?;
        if config.encryption != "none" {
            return Err(Error::Corrupt {
                path,
                reason: "says it is encrypted but is not sealed (tampered with?)".into(),
            });
        }
        return Ok((config, Keys::default(), None));
    }
    let (keys, slot) = crypto::unlock(backend, secret)?;
    let json = open_config(&bytes, &keys, &path)?;
    let config = RepoConfig::parse(&json, &path)?;
    if config.encryption != crypto::CIPHER {
        return Err(Error::Corrupt {
            path,
            reason: format!("sealed, but names encryption {:?}", config.encryption),
        });
    }
    let keys = keys.for_format(config.version);
    Ok((config, keys, Some(slot)))
}

/// The JSON of a config file (opened when sealed).
fn open_config(bytes: &[u8], keys: &Keys, path: &Path) -> Result<Vec<u8>> {
    match bytes.strip_prefix(crypto::CONFIG_MAGIC) {
        None => Ok(bytes.to_vec()),
        Some(sealed) => keys.open(sealed.to_vec()).ok_or_else(|| Error::Corrupt {
            path: path.to_path_buf(),
            reason: "does not open with the repository's key: damaged or tampered with".into(),
        }),
    }
}

fn local_config_exists(path: &Path) -> Result<()> {
    match std::fs::metadata(path.join("config")) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotARepository {
            path: path.to_path_buf(),
        }),
        // Private to someone else: say so, not "no repository".
        Err(e) => Err(Error::io(path, e)),
    }
}

fn read_index_file(
    backend: &dyn Backend,
    name: &str,
    path: &Path,
    scope: IndexScope,
) -> Result<Vec<IndexedPack>> {
    let bytes = backend.read(FileKind::Index, name)?;
    if scope == IndexScope::Trees {
        // Not hashed: every tree read is checked against its own hash, so a damaged index
        // file can only make browsing fail, never show something else.
        return index::decode_trees(&bytes, path);
    }
    if Id::hash(&bytes).to_hex() != name {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            reason: "content does not match its name (damaged)".into(),
        });
    }
    index::decode(&bytes, path)
}

// A backup makes the repository: Unix only until backups build on Windows.
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::progress::{CancelToken, NoProgress};

    #[test]
    fn a_repository_opened_for_browsing_lists_trees_and_refuses_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::write(src.join("d/f.txt"), "content").unwrap();
        let path = tmp.path().join("repo");
        let full = Repository::init_local(&path).unwrap();
        let snap = crate::backup(
            &full,
            &src,
            &crate::BackupOptions::default(),
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap()
        .snapshot;
        let node = full.find_node(&snap, "d/f.txt").unwrap().unwrap();
        let data = node.content[0];

        let browse = Repository::open_local_with(&path, IndexScope::Trees).unwrap();
        assert_eq!(browse.scope(), IndexScope::Trees);
        // Trees only: the root and d/, not the file's content.
        assert_eq!(browse.index().len(), 2);
        assert!(browse
            .index()
            .iter()
            .all(|(_, e)| e.blob_type == BlobType::Tree));
        assert_eq!(browse.find_node(&snap, "d/f.txt").unwrap().unwrap(), node);
        let err = browse.read_blob(&data).unwrap_err().to_string();
        assert!(err.contains("browsing only"), "{err}");
        let err = crate::backup(
            &browse,
            &src,
            &crate::BackupOptions::default(),
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("backup needs the whole index"), "{err}");
        // The positive control: opened in full, the same content reads.
        let reopened = Repository::open_local(&path).unwrap();
        assert_eq!(reopened.read_blob(&data).unwrap(), b"content");
        assert_eq!(reopened.index().len(), 3);
    }
}
