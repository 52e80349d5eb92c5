//! Test helper, run as a member: waits until someone opens TRIGGER in DIR (the backup reading
//! it), then at once renames FROM aside and moves REPLACEMENT to FROM's name, as an attacker
//! watching with inotify would; prints `swapped`. On each line read from standard input it
//! puts everything back (`restored`) and waits for the next open. Ends at end of input.
//!
//! Usage: sk-swap-on-open DIR TRIGGER FROM REPLACEMENT (Linux only: elsewhere it says so and
//! exits 2)

#[cfg(target_os = "linux")]
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
#[cfg(target_os = "linux")]
use std::io::BufRead;
#[cfg(target_os = "linux")]
use std::path::Path;

#[cfg(target_os = "linux")]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(&args[1]);
    let (trigger, from, replacement) = (&args[2], &args[3], &args[4]);
    let aside = format!("{from}.aside");
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        let ino = Inotify::init(InitFlags::empty()).expect("inotify");
        ino.add_watch(dir, AddWatchFlags::IN_OPEN).expect("watch");
        println!("armed");
        'wait: loop {
            for ev in ino.read_events().expect("events") {
                if ev.name.as_deref().and_then(|n| n.to_str()) == Some(trigger.as_str()) {
                    break 'wait;
                }
            }
        }
        std::fs::rename(dir.join(from), dir.join(&aside)).expect("aside");
        std::fs::rename(dir.join(replacement), dir.join(from)).expect("swap");
        println!("swapped");
        if lines.next().is_none() {
            return;
        }
        std::fs::rename(dir.join(from), dir.join(replacement)).expect("back");
        std::fs::rename(dir.join(&aside), dir.join(from)).expect("back");
        println!("restored");
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("sk-swap-on-open watches opens with inotify: Linux only");
    std::process::exit(2);
}
