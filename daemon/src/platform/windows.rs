//! Windows: whether a process is alive (a lock's holder), the computer's name. The only
//! unsafe code of the engine on Windows (allowed here alone): one handle opened and closed.
#![allow(unsafe_code)]

use windows_sys::Win32::Foundation::{CloseHandle, STILL_ACTIVE};
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
};

/// Nothing to raise: Windows has no per-process limit on open handles worth raising.
pub fn raise_open_file_limit() {}

/// Whether the process `pid` runs (on this machine).
pub(crate) fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    // SAFETY: a plain call; the handle, if any, is closed below.
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if h.is_null() {
        // Access denied means it exists; any other failure, that it does not.
        return std::io::Error::last_os_error().raw_os_error() == Some(5);
    }
    let mut code = 0u32;
    // SAFETY: `h` is the live handle just opened; `code` a local.
    let ok = unsafe { GetExitCodeProcess(h, &mut code) } != 0;
    // SAFETY: closed once.
    unsafe { CloseHandle(h) };
    !ok || code == STILL_ACTIVE as u32
}

/// The computer's name.
pub(crate) fn hostname() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "localhost".into())
}
