//! Turns SIGINT/SIGTERM into a cancellation: the first signal asks the running operation to
//! stop cleanly (no partial snapshot, temporary files removed); a second one exits at once.

use nix::sys::signal::{SigSet, Signal};
use sharekeep::CancelToken;
use std::sync::Mutex;

type Hook = Box<dyn FnOnce() + Send>;

/// What else the first signal does (e.g. unmount a mounted folder).
static HOOKS: Mutex<Vec<Hook>> = Mutex::new(Vec::new());

/// Runs `hook` on the first SIGINT or SIGTERM (after the cancellation).
pub fn on_signal(hook: Hook) {
    HOOKS.lock().expect("hooks").push(hook);
}

/// Blocks SIGINT and SIGTERM in this thread (and so in every thread started after) and
/// starts a thread that waits for them.
pub fn install(token: CancelToken) {
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
                tracing::warn!("{sig:?} received: stopping cleanly (again to stop at once)");
                token.cancel();
                for hook in std::mem::take(&mut *HOOKS.lock().expect("hooks")) {
                    hook();
                }
                first = false;
            } else {
                std::process::exit(130);
            }
        }
    });
}
