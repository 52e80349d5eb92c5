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

/// Progress kept in counters that another thread reads (the service streams it to clients).
#[derive(Debug, Default)]
pub struct LiveProgress {
    files: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
    total_files: std::sync::atomic::AtomicU64,
    total_bytes: std::sync::atomic::AtomicU64,
}

impl LiveProgress {
    /// Back to zero, for a new operation.
    pub fn reset(&self) {
        for c in [
            &self.files,
            &self.bytes,
            &self.total_files,
            &self.total_bytes,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// (files done, bytes done, files in all, bytes in all); totals are 0 until known.
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.files.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
            self.total_files.load(Ordering::Relaxed),
            self.total_bytes.load(Ordering::Relaxed),
        )
    }

    /// A one-line description, e.g. `120 of 800 files, 45 MiB of 310 MiB`.
    pub fn describe(&self, what: &str) -> String {
        let (f, b, tf, tb) = self.snapshot();
        let mib = |x: u64| x as f64 / 1048576.0;
        if tf == 0 && tb == 0 {
            format!("{what}: {f} files, {:.1} MiB so far", mib(b))
        } else {
            format!(
                "{what}: {f} of {tf} files, {:.1} of {:.1} MiB",
                mib(b),
                mib(tb)
            )
        }
    }
}

impl Progress for LiveProgress {
    fn set_total(&self, files: u64, bytes: u64) {
        self.total_files.store(files, Ordering::Relaxed);
        self.total_bytes.store(bytes, Ordering::Relaxed);
    }
    fn add_bytes(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    fn add_file(&self, _path: &Path) {
        self.files.fetch_add(1, Ordering::Relaxed);
    }
}
