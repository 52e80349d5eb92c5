//! Turns SIGINT/SIGTERM (on Windows Ctrl-C, Ctrl-Break and the console closing) into a
//! cancellation: the first signal asks the running operation to stop cleanly (no partial
//! snapshot, temporary files removed); a second one exits at once.

use sharekeep::CancelToken;
use std::sync::Mutex;

type Hook = Box<dyn FnOnce() + Send>;

/// What else the first signal does (e.g. unmount a mounted folder).
static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// Runs `hook` on the first SIGINT or SIGTERM (after the cancellation): a mount's unmount.
#[cfg(unix)]
pub fn on_signal(hook: Hook) {
    HOOKS.lock().expect("hooks").push(hook);
}

/// The first signal: cancels, runs the hooks.
fn first(token: &CancelToken, what: &str) {
    tracing::warn!("{what} received: stopping cleanly (again to stop at once)");
    token.cancel();
    for hook in std::mem::take(&mut *HOOKS.lock().expect("hooks")) {
        hook();
    }
}

/// Blocks SIGINT and SIGTERM in this thread (and so in every thread started after) and
/// starts a thread that waits for them.
#[cfg(unix)]
pub fn install(token: CancelToken) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        let mut first = true;
        while let Ok(sig) = set.wait() {
            if first {
                self::first(&token, &format!("{sig:?}"));
                first = false;
            } else {
                std::process::exit(130);
            }
        }
    });
}

#[cfg(windows)]
pub use console::install;

/// Windows: a console control handler (`SetConsoleCtrlHandler`), the crate's only unsafe
/// code: one call registering a function that only touches statics.
#[cfg(windows)]
#[allow(unsafe_code)]
mod console {
    use sharekeep::CancelToken;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::OnceLock;
    use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;

    static TOKEN: OnceLock<CancelToken> = OnceLock::new();
    static SEEN: AtomicBool = AtomicBool::new(false);

    /// Runs on a thread Windows starts for each Ctrl-C, Ctrl-Break or console close.
    unsafe extern "system" fn handler(_kind: u32) -> i32 {
        if SEEN.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        if let Some(token) = TOKEN.get() {
            super::first(token, "Ctrl-C");
        }
        1
    }

    /// Registers the handler: the first Ctrl-C cancels `token`.
    pub fn install(token: CancelToken) {
        if TOKEN.set(token).is_ok() {
            // SAFETY: registers a function with the signature Windows calls.
            unsafe { SetConsoleCtrlHandler(Some(handler), 1) };
        }
    }
}
