//! Progress reporting. The library never prints: long operations report through this trait,
//! which the CLI renders with progress bars and the daemon turns into protocol messages.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Receives progress of a backup or restore. Implementations must be cheap: methods are
/// called from worker threads for every file.
pub trait Progress: Send + Sync {
    /// The amount of work is (now) known: `files` entries totalling `bytes` to process.
    fn set_total(&self, _files: u64, _bytes: u64) {}
    /// `bytes` more were processed.
    fn add_bytes(&self, _bytes: u64) {}
    /// One more file is done.
    fn add_file(&self, _path: &Path) {}
    /// The operation is over (successfully or not).
    fn finish(&self) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// A cancellation flag shared between whoever may stop an operation (a signal handler, the
/// daemon's shutdown) and the operation, which checks it between units of work.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }
    /// Asks the operation to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether `other` is this very token (a clone of it).
    pub fn same_as(&self, other: &CancelToken) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
    /// Whether stopping was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
