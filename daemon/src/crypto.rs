//! Encryption at rest: the master key of an encrypted repository, the key slots in `keys/`
//! that wrap it, and the sealing of blobs and whole files with it.
//!
//! ```text
//! master key  = data key:[u8;32] id key:[u8;32]          (random, made by `init --encrypt`)
//! sealed      = nonce:[u8;12] ciphertext tag:[u8;16]      (AES-256-GCM under the data key)
//! config      = "SKE1" sealed(config JSON)
//! keys/<id>   = KeySlot JSON: how to derive a key-encryption key from a secret (Argon2id for
//!               a passphrase, HMAC-SHA256 for a key file of 32 random bytes or more), a salt,
//!               and the master key sealed under it
//! blob id     = HMAC-SHA256(id key, plaintext)            (plain sha256 when unencrypted)
//! blob        = sealed(compressed), its id the associated data   (format 2; none in format 1)
//! ```
//! Blobs are sealed one by one inside packs (a restore reads one blob without the rest of its
//! pack), after compression; a pack's header is sealed too. From format 2 on, a blob's seal
//! authenticates its id, so a blob opens only as itself: whoever can write the store but holds
//! no key cannot put one sealed blob in another's place, and a restore need not hash what it
//! opened to know which blob it is (`check --read-data` still does). Index, snapshot and lock files are
//! sealed whole by [`EncryptedBackend`]. Content ids are keyed, so equal content still gives
//! equal ids (deduplication works) but an id says nothing about the content to whoever lacks
//! the key. Nonces are random (96 bits); AES-GCM's authentication tag makes any change to a
//! sealed byte an error, never different content.

use crate::backend::{Backend, FileKind, TempFile};
use crate::error::{Error, Result};
use crate::id::Id;
use chrono::{DateTime, Local};
use hmac::{Hmac, Mac};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Bytes a sealed blob or file takes beyond its plaintext (nonce and tag).
pub const OVERHEAD: usize = 12 + 16;
/// What opens an encrypted `config`.
pub(crate) const CONFIG_MAGIC: &[u8; 4] = b"SKE1";
/// The shortest key file accepted: a key file is not stretched like a passphrase, so it must
/// hold a key's worth of randomness.
pub const MIN_KEY_FILE: usize = 32;
/// The AEAD named in an encrypted repository's config.
pub const CIPHER: &str = "aes-256-gcm";
const SLOT_AAD: &[u8] = b"sharekeep key slot v1";

/// A secret that opens an encrypted repository: a passphrase, or the content of a key file.
pub enum Secret {
    /// A passphrase (stretched with Argon2id).
    Passphrase(Zeroizing<Vec<u8>>),
    /// The bytes of a key file (at least [`MIN_KEY_FILE`]), and where they came from.
    KeyFile {
        /// The file, for messages.
        path: PathBuf,
        /// Its content.
        bytes: Zeroizing<Vec<u8>>,
    },
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Passphrase(_) => f.write_str("Secret::Passphrase(..)"),
            Secret::KeyFile { path, .. } => write!(f, "Secret::KeyFile({})", path.display()),
        }
    }
}

impl Secret {
    /// A passphrase; refuses an empty one.
    pub fn passphrase(p: impl Into<Vec<u8>>) -> Result<Secret> {
        let p = Zeroizing::new(p.into());
        if p.is_empty() {
            return Err(Error::Invalid("the passphrase is empty".into()));
        }
        Ok(Secret::Passphrase(p))
    }

    /// The content of the key file at `path`; refuses one shorter than [`MIN_KEY_FILE`].
    pub fn key_file(path: &Path) -> Result<Secret> {
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| Error::io(path, e))?);
        if bytes.len() < MIN_KEY_FILE {
            return Err(Error::Invalid(format!(
                "key file {}: {} bytes; a key file holds at least {MIN_KEY_FILE} random bytes \
                 (make one with `sharekeepctl key generate FILE`, or use a passphrase in \
                 SHAREKEEP_PASSWORD)",
                path.display(),
                bytes.len()
            )));
        }
        Ok(Secret::KeyFile {
            path: path.to_path_buf(),
            bytes,
        })
    }

    /// Writes a new key file at `path` (32 random bytes as hex, mode 0600; never overwrites).
    pub fn generate_key_file(path: &Path) -> Result<()> {
        use std::io::Write;
        let mut raw = Zeroizing::new([0u8; 32]);
        random(&mut raw[..]);
        let text = Zeroizing::new(format!("{}\n", hex::encode(&raw[..])));
        let mut f =
            crate::platform::create_new_with_mode(path, 0o600).map_err(|e| Error::io(path, e))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(path, e))
    }

    fn kind(&self) -> SecretKind {
        match self {
            Secret::Passphrase(_) => SecretKind::Passphrase,
            Secret::KeyFile { .. } => SecretKind::KeyFile,
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Secret::Passphrase(b) => b,
            Secret::KeyFile { bytes, .. } => bytes,
        }
    }

    /// How this secret was given, for messages.
    pub fn describe(&self) -> String {
        match self {
            Secret::Passphrase(_) => "the passphrase given".into(),
            Secret::KeyFile { path, .. } => format!("key file {}", path.display()),
        }
    }
}

/// What a key slot was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretKind {
    /// A passphrase.
    Passphrase,
    /// A key file.
    KeyFile,
}

/// How a slot's key-encryption key is derived from its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "kebab-case")]
enum Kdf {
    /// Argon2id (RFC 9106), for passphrases.
    Argon2id {
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
    },
    /// HMAC-SHA256(salt, file content), for key files of full-entropy bytes.
    HmacSha256,
}

/// A `keys/` file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeySlot {
    version: u32,
    kind: SecretKind,
    created: DateTime<Local>,
    host: String,
    kdf: Kdf,
    salt: String,
    nonce: String,
    wrapped: String,
}

/// One key of a repository, as `key list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The slot's file name in `keys/`.
    pub name: String,
    /// Passphrase or key file.
    pub kind: SecretKind,
    /// When it was added.
    pub created: DateTime<Local>,
    /// On which host.
    pub host: String,
    /// Whether it is the key this repository was opened with.
    pub current: bool,
}

/// Argon2id cost for passphrases: 64 MiB, 3 passes (RFC 9106's second recommended setting,
/// on one lane).
const ARGON2: Kdf = Kdf::Argon2id {
    memory_kib: 64 * 1024,
    iterations: 3,
    parallelism: 1,
};

fn derive_kek(secret: &Secret, kdf: &Kdf, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let mut out = Zeroizing::new([0u8; 32]);
    match kdf {
        Kdf::Argon2id {
            memory_kib,
            iterations,
            parallelism,
        } => {
            let params = argon2::Params::new(*memory_kib, *iterations, *parallelism, Some(32))
                .map_err(|e| Error::Invalid(format!("key slot: Argon2id parameters: {e}")))?;
            if *memory_kib > 4 * 1024 * 1024 || *iterations > 64 {
                return Err(Error::Invalid(format!(
                    "key slot: Argon2id costs {memory_kib} KiB x {iterations}: more than sharekeep ever writes (forged?)"
                )));
            }
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(secret.bytes(), salt, &mut out[..])
                .map_err(|e| Error::Invalid(format!("key derivation: {e}")))?;
        }
        Kdf::HmacSha256 => {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(salt).expect("any key length");
            mac.update(secret.bytes());
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
    }
    Ok(out)
}

fn random(buf: &mut [u8]) {
    getrandom::getrandom(buf).expect("the system random source works");
}

/// AES-256-GCM under one key, from ring: its x86-64 code (AES-NI or VAES with carry-less
/// multiplication over several blocks at once) opens data several times faster than the
/// RustCrypto crates' one-block-at-a-time GHASH, which took a fifth of a restore's CPU; the
/// format is the standard one either way.
struct Aead(LessSafeKey);

impl Aead {
    fn new(key: &[u8]) -> Aead {
        Aead(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key"),
        ))
    }

    /// Encrypts `body` in place; its tag.
    fn seal(&self, nonce: [u8; 12], aad: &[u8], body: &mut [u8]) -> [u8; 16] {
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), body)
            .expect("AES-GCM seals any length a pack holds");
        tag.as_ref().try_into().expect("a 16-byte tag")
    }

    /// Decrypts `sealed` (ciphertext then its 16-byte tag) in place, `None` when it was
    /// changed or sealed under another key; the plaintext is the first `len - 16` bytes.
    fn open(&self, nonce: &[u8], aad: &[u8], sealed: &mut [u8]) -> Option<()> {
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        self.0
            .open_in_place(nonce, Aad::from(aad), sealed)
            .ok()
            .map(|_| ())
    }
}

/// The keys of an open encrypted repository.
struct Crypto {
    aead: Aead,
    ids: Hmac<Sha256>,
    /// The master key, to wrap it again for a new slot.
    master: Zeroizing<[u8; 64]>,
}

/// The keys of an open repository: none for an unencrypted one.
#[derive(Clone, Default)]
pub struct Keys {
    crypto: Option<Arc<Crypto>>,
    /// Each blob's seal authenticates its id (format 2): see [`Keys::seal_blob`].
    bound_ids: bool,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.crypto.is_some() {
            "Keys(encrypted)"
        } else {
            "Keys(none)"
        })
    }
}

impl Keys {
    fn from_master(master: Zeroizing<[u8; 64]>) -> Keys {
        let aead = Aead::new(&master[..32]);
        let ids = <Hmac<Sha256> as Mac>::new_from_slice(&master[32..]).expect("any key length");
        Keys {
            crypto: Some(Arc::new(Crypto { aead, ids, master })),
            bound_ids: false,
        }
    }

    /// A fresh random master key.
    pub(crate) fn generate() -> Keys {
        let mut master = Zeroizing::new([0u8; 64]);
        random(&mut master[..]);
        Keys::from_master(master)
    }

    /// These keys for a repository of format `version`: from format 2 on, an encrypted
    /// repository's blobs are sealed with their id as associated data.
    pub(crate) fn for_format(mut self, version: u32) -> Keys {
        self.bound_ids = self.crypto.is_some() && version >= 2;
        self
    }

    /// Whether each blob's seal authenticates its id: a blob that opens is the one a holder
    /// of the key sealed under that id, so a read need not hash it again to know it.
    pub(crate) fn binds_ids(&self) -> bool {
        self.bound_ids
    }

    /// Whether the repository is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.crypto.is_some()
    }

    /// Bytes sealing adds.
    pub(crate) fn overhead(&self) -> usize {
        if self.crypto.is_some() {
            OVERHEAD
        } else {
            0
        }
    }

    /// The content id of `data`: keyed when encrypted.
    pub fn id(&self, data: &[u8]) -> Id {
        match &self.crypto {
            None => Id::hash(data),
            Some(c) => {
                let mut mac = c.ids.clone();
                mac.update(data);
                Id(mac.finalize().into_bytes().into())
            }
        }
    }

    /// Whether two repositories' content ids agree (both unencrypted, or the same id key).
    pub fn same_ids(&self, other: &Keys) -> bool {
        match (&self.crypto, &other.crypto) {
            (None, None) => true,
            (Some(a), Some(b)) => a.master[32..] == b.master[32..],
            _ => false,
        }
    }

    /// Whether two repositories seal with the same data key (a sealed blob of one opens in
    /// the other).
    #[allow(dead_code)] // for `copy` (next)
    pub(crate) fn same_data_key(&self, other: &Keys) -> bool {
        match (&self.crypto, &other.crypto) {
            (None, None) => true,
            (Some(a), Some(b)) => a.master[..32] == b.master[..32],
            _ => false,
        }
    }

    /// Appends `plain` sealed (or as is, unencrypted) to `out`.
    pub(crate) fn seal_into(&self, plain: &[u8], out: &mut Vec<u8>) {
        self.seal_with(b"", plain, out)
    }

    /// The stored form of blob `id`'s (compressed) bytes `plain`: sealed with the id as
    /// associated data where the format binds ids, so that no blob of the repository opens
    /// in another's place (someone who can write the store but holds no key cannot swap
    /// two sealed blobs of one length unnoticed).
    pub(crate) fn seal_blob(&self, id: &Id, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plain.len() + self.overhead());
        self.seal_with(self.blob_aad(id), plain, &mut out);
        out
    }

    /// Opens blob `id`'s stored bytes in place, as [`Keys::open_in_place`] does.
    pub(crate) fn open_blob_in_place(
        &self,
        id: &Id,
        buf: &mut [u8],
    ) -> Option<std::ops::Range<usize>> {
        self.open_with(self.blob_aad(id), buf)
    }

    fn blob_aad<'a>(&self, id: &'a Id) -> &'a [u8] {
        if self.bound_ids {
            &id.0
        } else {
            b""
        }
    }

    fn seal_with(&self, aad: &[u8], plain: &[u8], out: &mut Vec<u8>) {
        let Some(c) = &self.crypto else {
            out.extend_from_slice(plain);
            return;
        };
        let mut nonce = [0u8; 12];
        random(&mut nonce);
        out.reserve(plain.len() + OVERHEAD);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = c.aead.seal(nonce, aad, &mut out[start..]);
        out.extend_from_slice(&tag);
    }

    /// `plain` sealed (a copy, unencrypted).
    pub(crate) fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(plain.len() + self.overhead());
        self.seal_into(plain, &mut out);
        out
    }

    /// Opens a sealed buffer in place; the plaintext's range in `buf`, `None` when it was
    /// changed or sealed under another key.
    pub(crate) fn open_in_place(&self, buf: &mut [u8]) -> Option<std::ops::Range<usize>> {
        self.open_with(b"", buf)
    }

    fn open_with(&self, aad: &[u8], buf: &mut [u8]) -> Option<std::ops::Range<usize>> {
        let Some(c) = &self.crypto else {
            return Some(0..buf.len());
        };
        if buf.len() < OVERHEAD {
            return None;
        }
        let (nonce, rest) = buf.split_at_mut(12);
        c.aead.open(nonce, aad, rest)?;
        Some(12..buf.len() - 16)
    }

    /// Opens a sealed file's bytes; `None` when changed or sealed under another key.
    pub(crate) fn open(&self, mut sealed: Vec<u8>) -> Option<Vec<u8>> {
        let range = self.open_in_place(&mut sealed)?;
        sealed.truncate(range.end);
        sealed.drain(..range.start);
        Some(sealed)
    }

    /// The `config` file's bytes for `json`.
    pub(crate) fn seal_config(&self, json: &[u8]) -> Vec<u8> {
        let mut out = CONFIG_MAGIC.to_vec();
        self.seal_into(json, &mut out);
        out
    }

    /// A new key slot for `secret` wrapping this master key: its file name and bytes.
    pub(crate) fn new_slot(&self, secret: &Secret) -> (String, Vec<u8>) {
        let c = self.crypto.as_ref().expect("an encrypted repository");
        let kdf = match secret.kind() {
            SecretKind::Passphrase => ARGON2,
            SecretKind::KeyFile => Kdf::HmacSha256,
        };
        let mut salt = [0u8; 32];
        random(&mut salt);
        let kek = derive_kek(secret, &kdf, &salt).expect("sharekeep's own parameters are valid");
        let wrapper = Keys::from_master({
            let mut m = Zeroizing::new([0u8; 64]);
            m[..32].copy_from_slice(&kek[..]);
            m
        });
        let mut nonce = [0u8; 12];
        random(&mut nonce);
        let mut body = c.master.to_vec();
        let w = wrapper.crypto.as_ref().expect("keyed");
        let tag = w.aead.seal(nonce, SLOT_AAD, &mut body);
        body.extend_from_slice(&tag);
        let slot = KeySlot {
            version: 1,
            kind: secret.kind(),
            created: Local::now(),
            host: crate::lock::hostname(),
            kdf,
            salt: hex::encode(salt),
            nonce: hex::encode(nonce),
            wrapped: hex::encode(&body),
        };
        let bytes = serde_json::to_vec_pretty(&slot).expect("slot serializes");
        (Id::hash(&bytes).to_hex(), bytes)
    }
}

/// Parses a key slot's file.
fn parse_slot(bytes: &[u8], path: &Path) -> Result<KeySlot> {
    serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        reason: format!("not a key slot: {e}"),
    })
}

/// Tries `secret` on one slot: the master key it wraps, `Ok(None)` when the secret is not
/// this slot's.
fn unwrap_slot(slot: &KeySlot, secret: &Secret, path: &Path) -> Result<Option<Keys>> {
    let corrupt = |reason: &str| Error::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    if slot.kind != secret.kind() {
        return Ok(None);
    }
    let salt = hex::decode(&slot.salt).map_err(|_| corrupt("salt is not hex"))?;
    let nonce = hex::decode(&slot.nonce).map_err(|_| corrupt("nonce is not hex"))?;
    let mut body = hex::decode(&slot.wrapped).map_err(|_| corrupt("wrapped key is not hex"))?;
    if nonce.len() != 12 || body.len() != 64 + 16 || salt.len() < 16 {
        return Err(corrupt("wrong field lengths"));
    }
    let kek = derive_kek(secret, &slot.kdf, &salt)?;
    let aead = Aead::new(&kek[..]);
    if aead.open(&nonce, SLOT_AAD, &mut body).is_none() {
        return Ok(None);
    }
    let mut master = Zeroizing::new([0u8; 64]);
    master.copy_from_slice(&body[..64]);
    body.fill(0);
    Ok(Some(Keys::from_master(master)))
}

/// Opens an encrypted repository's key: tries `secret` on every slot in `keys/`; returns the
/// keys and the name of the slot that opened.
pub(crate) fn unlock(backend: &dyn Backend, secret: Option<&Secret>) -> Result<(Keys, String)> {
    let location = backend.location();
    let Some(secret) = secret else {
        return Err(Error::KeyNeeded { repo: location });
    };
    let names = backend.list(FileKind::Key)?;
    let mut tried = 0;
    for name in &names {
        let path = backend.file_location(FileKind::Key, name);
        let slot = parse_slot(&backend.read(FileKind::Key, name)?, &path)?;
        if slot.kind != secret.kind() {
            continue;
        }
        tried += 1;
        if let Some(keys) = unwrap_slot(&slot, secret, &path)? {
            return Ok((keys, name.clone()));
        }
    }
    Err(Error::WrongKey {
        repo: location,
        secret: secret.describe(),
        tried,
        slots: names.len(),
    })
}

/// Every key slot of the repository.
pub(crate) fn list_slots(backend: &dyn Backend, current: &str) -> Result<Vec<KeyInfo>> {
    let mut out = Vec::new();
    for name in backend.list(FileKind::Key)? {
        let path = backend.file_location(FileKind::Key, &name);
        let slot = parse_slot(&backend.read(FileKind::Key, &name)?, &path)?;
        out.push(KeyInfo {
            current: name == current,
            name,
            kind: slot.kind,
            created: slot.created,
            host: slot.host,
        });
    }
    out.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// A backend that seals index, snapshot and lock files whole on write and opens them on
/// read; packs (sealed blob by blob by the pack writer), `config` and `keys/` pass through.
#[derive(Debug)]
pub(crate) struct EncryptedBackend {
    inner: Arc<dyn Backend>,
    keys: Keys,
}

impl EncryptedBackend {
    pub(crate) fn new(inner: Arc<dyn Backend>, keys: Keys) -> EncryptedBackend {
        EncryptedBackend { inner, keys }
    }

    fn sealed(kind: FileKind) -> bool {
        matches!(kind, FileKind::Index | FileKind::Snapshot | FileKind::Lock)
    }
}

impl Backend for EncryptedBackend {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn exposure(&self) -> Option<String> {
        self.inner.exposure()
    }
    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }
    fn journal_dir(&self) -> Option<PathBuf> {
        self.inner.journal_dir()
    }
    fn file_location(&self, kind: FileKind, name: &str) -> PathBuf {
        self.inner.file_location(kind, name)
    }
    fn create(&self) -> Result<()> {
        self.inner.create()
    }
    fn exists(&self, kind: FileKind, name: &str) -> Result<bool> {
        self.inner.exists(kind, name)
    }
    fn list(&self, kind: FileKind) -> Result<Vec<String>> {
        self.inner.list(kind)
    }
    fn list_sizes(&self, kind: FileKind) -> Result<Vec<(String, u64)>> {
        self.inner.list_sizes(kind)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>> {
        let bytes = self.inner.read(kind, name)?;
        if !Self::sealed(kind) {
            return Ok(bytes);
        }
        self.keys.open(bytes).ok_or_else(|| Error::Corrupt {
            path: self.inner.file_location(kind, name),
            reason: "does not open with this repository's key: damaged or tampered with".into(),
        })
    }
    fn read_at(&self, kind: FileKind, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        self.inner.read_at(kind, name, offset, len)
    }
    fn read_at_into(&self, kind: FileKind, name: &str, offset: u64, out: &mut [u8]) -> Result<()> {
        self.inner.read_at_into(kind, name, offset, out)
    }
    fn read_stream(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        // Only packs are streamed: their blobs are sealed one by one, opened by the reader.
        debug_assert!(!Self::sealed(kind));
        self.inner.read_stream(kind, name, offset, len, sink)
    }
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<()> {
        if Self::sealed(kind) {
            self.inner.write(kind, name, &self.keys.seal(data))
        } else {
            self.inner.write(kind, name, data)
        }
    }
    fn create_temp(&self) -> Result<TempFile> {
        self.inner.create_temp()
    }
    fn commit_temp(&self, temp: TempFile, kind: FileKind, name: &str) -> Result<()> {
        self.inner.commit_temp(temp, kind, name)
    }
    fn sync(&self) -> Result<()> {
        self.inner.sync()
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<()> {
        self.inner.remove(kind, name)
    }
    fn clean_temp(&self) -> Result<usize> {
        self.inner.clean_temp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bytes_open_and_any_change_is_refused() {
        let keys = Keys::generate();
        let sealed = keys.seal(b"hello world");
        assert_eq!(sealed.len(), 11 + OVERHEAD);
        assert!(!sealed.windows(5).any(|w| w == b"hello"), "no plaintext");
        assert_eq!(keys.open(sealed.clone()).unwrap(), b"hello world");
        for i in [0, 5, 12, 20, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(keys.open(bad).is_none(), "byte {i} changed");
        }
        // Another key opens nothing.
        assert!(Keys::generate().open(sealed).is_none());
        // Unencrypted keys pass bytes through.
        assert_eq!(Keys::default().seal(b"x"), b"x");
    }

    #[test]
    fn ids_are_keyed_and_deterministic() {
        let a = Keys::generate();
        let b = Keys::generate();
        assert_eq!(a.id(b"content"), a.id(b"content"), "dedup works");
        assert_ne!(a.id(b"content"), Id::hash(b"content"));
        assert_ne!(a.id(b"content"), b.id(b"content"));
        assert_eq!(Keys::default().id(b"content"), Id::hash(b"content"));
        assert!(a.same_ids(&a.clone()));
        assert!(!a.same_ids(&b));
    }

    #[test]
    fn a_slot_opens_with_its_secret_only() {
        let keys = Keys::generate();
        let tmp = tempfile::tempdir().unwrap();
        let kf = tmp.path().join("key");
        Secret::generate_key_file(&kf).unwrap();
        assert!(Secret::generate_key_file(&kf).is_err(), "never overwrites");
        let file = Secret::key_file(&kf).unwrap();
        let (_, bytes) = keys.new_slot(&file);
        let slot = parse_slot(&bytes, Path::new("k")).unwrap();
        let opened = unwrap_slot(&slot, &file, Path::new("k")).unwrap().unwrap();
        assert!(opened.same_ids(&keys) && opened.same_data_key(&keys));

        std::fs::write(tmp.path().join("other"), [7u8; 40]).unwrap();
        let other = Secret::key_file(&tmp.path().join("other")).unwrap();
        assert!(unwrap_slot(&slot, &other, Path::new("k"))
            .unwrap()
            .is_none());

        std::fs::write(tmp.path().join("short"), "secret").unwrap();
        let err = Secret::key_file(&tmp.path().join("short")).unwrap_err();
        assert!(err.to_string().contains("at least 32"), "{err}");
    }

    #[test]
    fn a_passphrase_slot_uses_argon2id() {
        let keys = Keys::generate();
        let pass = Secret::passphrase("correct horse").unwrap();
        let (_, bytes) = keys.new_slot(&pass);
        let slot = parse_slot(&bytes, Path::new("k")).unwrap();
        assert!(matches!(slot.kdf, Kdf::Argon2id { .. }));
        assert!(unwrap_slot(&slot, &pass, Path::new("k")).unwrap().is_some());
        let wrong = Secret::passphrase("wrong horse").unwrap();
        assert!(unwrap_slot(&slot, &wrong, Path::new("k"))
            .unwrap()
            .is_none());
        assert!(Secret::passphrase("").is_err());
    }
}
