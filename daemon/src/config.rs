//! The repository's `config` file: format version, chunker parameters and compression, fixed
//! at `init`. Chunker parameters must never change for a repository, or deduplication against
//! earlier snapshots would be lost. `encryption` is `"none"` or `"aes-256-gcm"` (then the file
//! itself is sealed: [`crate::crypto`]).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The repository format this build writes. Format 2 seals each blob of an encrypted
/// repository with its id as associated data ([`crate::crypto::Keys::seal_blob`]); format 1
/// (sealed without it) is still read, and written where it is.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format this build reads.
pub const OLDEST_FORMAT: u32 = 1;

/// Content-defined chunking parameters (FastCDC 2020, normalization level 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkerParams {
    /// Smallest chunk, in bytes (a file's last chunk may be smaller).
    pub min_size: u32,
    /// Average chunk size aimed for.
    pub avg_size: u32,
    /// Largest chunk.
    pub max_size: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        ChunkerParams {
            min_size: 256 * 1024,
            avg_size: 1024 * 1024,
            max_size: 4 * 1024 * 1024,
        }
    }
}

/// The contents of `config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfig {
    /// Repository format version.
    pub version: u32,
    /// Random repository id (hex).
    pub id: String,
    /// Chunker parameters.
    pub chunker: ChunkerParams,
    /// zstd level for blobs (a blob is stored raw when compression does not pay).
    pub zstd_level: i32,
    /// Pack files are closed once they reach this size.
    pub pack_size: u64,
    /// `"none"`, or `"aes-256-gcm"` for an encrypted repository.
    pub encryption: String,
}

impl RepoConfig {
    /// A new configuration with a fresh random id.
    pub fn new() -> RepoConfig {
        let mut raw = [0u8; 16];
        getrandom::getrandom(&mut raw).expect("the system random source works");
        RepoConfig {
            version: FORMAT_VERSION,
            id: hex::encode(raw),
            chunker: ChunkerParams::default(),
            zstd_level: 1,
            pack_size: 16 * 1024 * 1024,
            encryption: "none".into(),
        }
    }

    /// Parses and validates `config` (read from `path`, named in errors).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<RepoConfig> {
        let corrupt = |reason: String| Error::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let cfg: RepoConfig = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        if !(OLDEST_FORMAT..=FORMAT_VERSION).contains(&cfg.version) {
            return Err(corrupt(format!(
                "format version {} is not supported by this sharekeep (which reads versions {OLDEST_FORMAT} to {FORMAT_VERSION}); use a matching sharekeep",
                cfg.version
            )));
        }
        if cfg.encryption != "none" && cfg.encryption != crate::crypto::CIPHER {
            return Err(corrupt(format!(
                "encryption {:?} is not supported by this sharekeep",
                cfg.encryption
            )));
        }
        let c = cfg.chunker;
        if !(64 <= c.min_size && c.min_size <= c.avg_size && c.avg_size <= c.max_size)
            || c.max_size > 16 * 1024 * 1024
            || c.avg_size > 4 * 1024 * 1024
        {
            return Err(corrupt(format!("invalid chunker parameters {c:?}")));
        }
        if !(1..=22).contains(&cfg.zstd_level) {
            return Err(corrupt(format!("invalid zstd level {}", cfg.zstd_level)));
        }
        Ok(cfg)
    }
}

impl Default for RepoConfig {
    fn default() -> Self {
        RepoConfig::new()
    }
}
