//! Repository locks. Backups, restores and checks take shared locks; prune, forget and index
//! repair take an exclusive one. A lock is a file in `locks/` (host, pid, time, kind), refreshed
//! while the operation runs. A lock whose process is gone (same host: no such pid) or that was
//! not refreshed for [`STALE_AFTER`] (another host) is stale: it is removed automatically, and
//! logged, so a crash in the night never blocks the next night's backup.
//!
//! ```text
//! acquire(kind):
//!     remove stale locks
//!     write our lock file
//!     list the others: exclusive wants none, shared wants no exclusive one
//!     on conflict: remove ours, fail naming the holder (pid, host, since when)
//! ```
//! Writing first and checking after means two processes racing cannot both win.
//!
//! A process may wait for a conflicting lock to go ([`set_lock_wait`]): sharekeepd does, so a
//! member's restore that arrives while the nightly backup's retention holds the repository
//! alone starts a moment later instead of failing; `sharekeepctl` fails at once, as restic
//! does without `--retry-lock`.

use crate::backend::{Backend, FileKind};
use crate::error::{Error, Result};
use crate::id::Id;
use chrono::{DateTime, Local};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A lock of another host not refreshed for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// How often a held lock is refreshed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

/// How long [`RepoLock::acquire`] waits for a conflicting lock to go, in milliseconds.
static LOCK_WAIT_MS: AtomicU64 = AtomicU64::new(0);

/// Makes every later [`RepoLock::acquire`] of this process wait up to `wait` for a
/// conflicting live lock to be released before failing (none by default).
pub fn set_lock_wait(wait: Duration) {
    LOCK_WAIT_MS.store(wait.as_millis() as u64, Ordering::Relaxed);
}

/// Shared or exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// Backups, restores, checks: many at once.
    Shared,
    /// Prune, forget, repair: alone.
    Exclusive,
}

/// The content of a lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Shared or exclusive.
    pub kind: LockKind,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// When it was taken.
    pub time: DateTime<Local>,
    /// Last refresh.
    pub refreshed: DateTime<Local>,
    /// What holds it (a command name).
    pub purpose: String,
}

impl LockInfo {
    fn describe(&self) -> String {
        format!(
            "{} lock held by `{}` (pid {} on {}) since {}",
            match self.kind {
                LockKind::Shared => "a shared",
                LockKind::Exclusive => "an exclusive",
            },
            self.purpose,
            self.pid,
            self.host,
            self.time.format("%Y-%m-%d %H:%M:%S")
        )
    }

    /// Whether the lock's holder is gone.
    pub fn is_stale(&self, host: &str) -> bool {
        if self.host == host {
            return !pid_alive(self.pid);
        }
        let age = Local::now().signed_duration_since(self.refreshed);
        age.to_std().map(|a| a > STALE_AFTER).unwrap_or(false)
    }
}

#[cfg(unix)]
fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::ESRCH) => false,
        Err(_) => true, // EPERM: it exists
    }
}

#[cfg(windows)]
use crate::platform::{hostname as windows_hostname, pid_alive};

/// The machine's name, recorded in locks.
#[cfg(windows)]
pub(crate) fn hostname() -> String {
    windows_hostname()
}

#[cfg(unix)]
pub(crate) fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

fn write_lock(backend: &dyn Backend, info: &LockInfo) -> Result<String> {
    let bytes = serde_json::to_vec_pretty(info).expect("lock serializes");
    let name = Id::hash(&bytes).to_hex();
    backend.write(FileKind::Lock, &name, &bytes)?;
    Ok(name)
}

/// Every lock file and its content (unreadable ones are skipped: they may be half-written).
pub fn list_locks(backend: &dyn Backend) -> Result<Vec<(String, LockInfo)>> {
    let mut out = Vec::new();
    for name in backend.list(FileKind::Lock)? {
        let Ok(bytes) = backend.read(FileKind::Lock, &name) else {
            continue;
        };
        if let Ok(info) = serde_json::from_slice::<LockInfo>(&bytes) {
            out.push((name, info));
        }
    }
    Ok(out)
}

/// Removes stale locks (logged); returns how many. With `all`, removes every lock.
pub fn remove_stale_locks(backend: &dyn Backend, all: bool) -> Result<usize> {
    let host = hostname();
    let mut n = 0;
    for (name, info) in list_locks(backend)? {
        if all || info.is_stale(&host) {
            tracing::warn!("removing stale lock: {}", info.describe());
            match backend.remove(FileKind::Lock, &name) {
                Ok(()) => n += 1,
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(n)
}

struct Held {
    name: String,
    info: LockInfo,
}

/// A held lock; released (its file removed) on drop. A thread refreshes it meanwhile.
pub struct RepoLock {
    backend: Arc<dyn Backend>,
    held: Arc<Mutex<Option<Held>>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for RepoLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoLock").finish_non_exhaustive()
    }
}

impl RepoLock {
    /// Takes a lock of `kind` for `purpose` (see the module documentation), waiting as long
    /// as [`set_lock_wait`] said for a conflicting one to go.
    pub fn acquire(backend: Arc<dyn Backend>, kind: LockKind, purpose: &str) -> Result<RepoLock> {
        let wait = Duration::from_millis(LOCK_WAIT_MS.load(Ordering::Relaxed));
        RepoLock::acquire_within(backend, kind, purpose, wait)
    }

    fn acquire_within(
        backend: Arc<dyn Backend>,
        kind: LockKind,
        purpose: &str,
        wait: Duration,
    ) -> Result<RepoLock> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            match RepoLock::try_acquire(backend.clone(), kind, purpose) {
                Err(Error::Locked { holder }) if start.elapsed() + delay <= wait => {
                    if delay == Duration::from_millis(100) {
                        tracing::info!(
                            "{purpose} waits up to {} s for the repository: {holder}",
                            wait.as_secs()
                        );
                    }
                    // Jittered, so two waiters that collided do not collide again.
                    let jitter = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.subsec_nanos() % 100);
                    std::thread::sleep(delay + Duration::from_millis(u64::from(jitter)));
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                other => return other,
            }
        }
    }

    fn try_acquire(backend: Arc<dyn Backend>, kind: LockKind, purpose: &str) -> Result<RepoLock> {
        remove_stale_locks(backend.as_ref(), false)?;
        let now = Local::now();
        let info = LockInfo {
            kind,
            host: hostname(),
            pid: std::process::id(),
            time: now,
            refreshed: now,
            purpose: purpose.to_string(),
        };
        let name = write_lock(backend.as_ref(), &info)?;
        let host = hostname();
        for (other, oi) in list_locks(backend.as_ref())? {
            if other == name || oi.is_stale(&host) {
                continue;
            }
            if kind == LockKind::Exclusive || oi.kind == LockKind::Exclusive {
                let _ = backend.remove(FileKind::Lock, &name);
                return Err(Error::Locked {
                    holder: oi.describe(),
                });
            }
        }
        let held = Arc::new(Mutex::new(Some(Held { name, info })));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let refresher = {
            let (backend, held, stop) = (backend.clone(), held.clone(), stop.clone());
            std::thread::spawn(move || refresh_loop(backend, held, stop))
        };
        Ok(RepoLock {
            backend,
            held,
            stop,
            refresher: Some(refresher),
        })
    }
}

fn refresh_loop(
    backend: Arc<dyn Backend>,
    held: Arc<Mutex<Option<Held>>>,
    stop: Arc<(Mutex<bool>, Condvar)>,
) {
    let (flag, cv) = &*stop;
    let mut stopped = flag.lock().expect("lock");
    loop {
        if *stopped {
            return;
        }
        let (s, timeout) = cv.wait_timeout(stopped, REFRESH_EVERY).expect("lock");
        stopped = s;
        if *stopped || !timeout.timed_out() {
            continue;
        }
        let mut h = held.lock().expect("lock");
        if let Some(old) = h.as_mut() {
            let mut info = old.info.clone();
            info.refreshed = Local::now();
            match write_lock(backend.as_ref(), &info) {
                Ok(name) => {
                    let _ = backend.remove(FileKind::Lock, &old.name);
                    *old = Held { name, info };
                }
                Err(e) => tracing::warn!("could not refresh the repository lock: {e}"),
            }
        }
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        {
            let (flag, cv) = &*self.stop;
            *flag.lock().expect("lock") = true;
            cv.notify_all();
        }
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        if let Some(h) = self.held.lock().expect("lock").take() {
            let _ = self.backend.remove(FileKind::Lock, &h.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::LocalBackend;

    fn backend() -> (tempfile::TempDir, Arc<dyn Backend>) {
        let d = tempfile::tempdir().unwrap();
        let b: Arc<dyn Backend> = Arc::new(LocalBackend::new(d.path().join("r")));
        b.create().unwrap();
        (d, b)
    }

    #[test]
    fn shared_locks_coexist_and_exclude_an_exclusive_one() {
        let (_d, b) = backend();
        let s1 = RepoLock::acquire(b.clone(), LockKind::Shared, "backup").unwrap();
        let _s2 = RepoLock::acquire(b.clone(), LockKind::Shared, "restore").unwrap();
        let err = RepoLock::acquire(b.clone(), LockKind::Exclusive, "prune").unwrap_err();
        assert!(err.to_string().contains("shared lock held by `"), "{err}");
        drop(s1);
        drop(_s2);
        assert!(
            b.list(FileKind::Lock).unwrap().is_empty(),
            "locks are removed on drop"
        );
        let _x = RepoLock::acquire(b.clone(), LockKind::Exclusive, "prune").unwrap();
        assert!(RepoLock::acquire(b.clone(), LockKind::Shared, "backup").is_err());
    }

    #[test]
    fn a_waiting_acquire_gets_the_lock_once_the_holder_lets_go_and_only_then() {
        let (_d, b) = backend();
        let held = RepoLock::acquire(b.clone(), LockKind::Exclusive, "forget").unwrap();
        // Without a wait, refused at once (the positive control of the wait below).
        let t = Instant::now();
        let err = RepoLock::acquire_within(b.clone(), LockKind::Shared, "restore", Duration::ZERO)
            .unwrap_err();
        assert!(
            err.to_string().contains("exclusive lock held by `forget`"),
            "{err}"
        );
        assert!(t.elapsed() < Duration::from_secs(1));
        // A wait shorter than the holder's hold: refused, after about that wait.
        let err = RepoLock::acquire_within(
            b.clone(),
            LockKind::Shared,
            "restore",
            Duration::from_millis(400),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Locked { .. }), "{err}");
        // The holder lets go while the waiter waits: it gets the lock.
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let b = b.clone();
            std::thread::spawn(move || {
                tx.send(()).unwrap();
                RepoLock::acquire_within(b, LockKind::Shared, "restore", Duration::from_secs(30))
            })
        };
        rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(!waiter.is_finished(), "waits while the lock is held");
        drop(held);
        let lock = waiter.join().unwrap().unwrap();
        assert_eq!(
            list_locks(b.as_ref()).unwrap().len(),
            1,
            "only the waiter's"
        );
        drop(lock);
    }

    #[test]
    fn lock_of_a_dead_process_is_removed_automatically() {
        let (_d, b) = backend();
        let now = Local::now();
        let dead = LockInfo {
            kind: LockKind::Exclusive,
            host: hostname(),
            pid: 4_000_000, // above pid_max: no such process
            time: now,
            refreshed: now,
            purpose: "prune".into(),
        };
        write_lock(b.as_ref(), &dead).unwrap();
        let _l = RepoLock::acquire(b.clone(), LockKind::Shared, "backup").unwrap();
        assert_eq!(
            list_locks(b.as_ref()).unwrap().len(),
            1,
            "only ours remains"
        );
    }

    #[test]
    fn lock_of_another_host_is_stale_only_when_not_refreshed() {
        let old = Local::now() - chrono::Duration::hours(2);
        let mut info = LockInfo {
            kind: LockKind::Shared,
            host: "elsewhere".into(),
            pid: 1,
            time: old,
            refreshed: old,
            purpose: "backup".into(),
        };
        assert!(info.is_stale("here"));
        info.refreshed = Local::now();
        assert!(!info.is_stale("here"));
    }
}
