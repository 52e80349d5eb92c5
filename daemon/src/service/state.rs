//! What the service remembers across restarts, per share, in the state directory: the last
//! successful backup (for catch-up), its snapshot, the last prune, and one JSON report per run.

use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A share's persisted state (`<state>/<share>.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ShareState {
    /// When the last successful backup started.
    pub last_success: Option<DateTime<Local>>,
    /// Its snapshot.
    pub last_snapshot: Option<String>,
    /// The last run's outcome.
    pub last_result: Option<String>,
    /// When the repository was last pruned.
    pub last_prune: Option<DateTime<Local>>,
    /// When the service first managed the share (catch-up starts from there).
    pub first_seen: Option<DateTime<Local>>,
    /// The last off-site copy's outcome (`ok: …` / `failed: …`).
    #[serde(default)]
    pub last_copy: Option<String>,
}

fn file(dir: &Path, share: &str) -> PathBuf {
    dir.join(format!("{share}.json"))
}

/// Reads a share's state (default when none was saved yet).
pub fn load(dir: &Path, share: &str) -> ShareState {
    std::fs::read(file(dir, share))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Writes a state file or report: private to root (`0600`), atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    sharekeep::write_atomic(path, bytes, 0o600)
}

/// Saves a share's state.
pub fn save(dir: &Path, share: &str, state: &ShareState) -> std::io::Result<()> {
    write_atomic(
        &file(dir, share),
        &serde_json::to_vec_pretty(state).expect("state serializes"),
    )
}

/// One backup run, as written to `<state>/reports/<share>/<start>.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Share.
    pub share: String,
    /// Start.
    pub start: DateTime<Local>,
    /// End.
    pub end: DateTime<Local>,
    /// Why it ran: `schedule`, `catch-up`, `request`.
    pub trigger: String,
    /// The snapshot written, if any.
    pub snapshot: Option<String>,
    /// The backup's summary.
    pub summary: Option<sharekeep::Summary>,
    /// Repository growth in bytes (packs, index, snapshot).
    pub repository_growth: u64,
    /// The repository's size after the run (packs, index, snapshots).
    pub repository_bytes: Option<u64>,
    /// Entries that could not be read, with why.
    pub warnings: Vec<String>,
    /// The error that stopped the run, if any.
    pub error: Option<String>,
    /// Snapshots kept and removed by retention.
    pub kept: usize,
    /// Removed.
    pub removed: usize,
    /// Whether the repository was pruned.
    pub pruned: bool,
    /// The off-site copy after the backup (`ok: …` / `failed: …`), when the plan has one.
    #[serde(default)]
    pub copy: Option<String>,
    /// Entries whose rights the service fixed since it started (drift found and corrected).
    pub rights_fixed_since_start: u64,
    /// Entries it checked since it started.
    pub rights_checked_since_start: u64,
}

/// Saves a run report.
pub fn save_report(dir: &Path, r: &RunReport) -> std::io::Result<PathBuf> {
    let path = dir
        .join("reports")
        .join(&r.share)
        .join(format!("{}.json", r.start.format("%Y%m%dT%H%M%S%.3f")));
    write_atomic(
        &path,
        &serde_json::to_vec_pretty(r).expect("report serializes"),
    )?;
    Ok(path)
}
