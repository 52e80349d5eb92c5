//! Test helper: opens N connections to a Unix socket and says nothing on them, as a local user
//! trying to hold sharekeepd would; prints `held N`, then for each connection what the daemon
//! answered before closing it (`busy`, `timeout`, or `open` if it is still open after WAIT
//! seconds), one word a line, and exits.
//!
//! Usage: sk-hold-connections SOCKET N WAIT (Unix only: elsewhere it says so and exits 2)

#[cfg(unix)]
use std::io::{BufRead, BufReader};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
#[cfg(unix)]
use std::time::Duration;

#[cfg(unix)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let socket = &args[1];
    let n: usize = args[2].parse().expect("N");
    let wait: u64 = args[3].parse().expect("WAIT");
    let conns: Vec<UnixStream> = (0..n)
        .map(|_| UnixStream::connect(socket).expect("connect"))
        .collect();
    println!("held {n}");
    for c in conns {
        c.set_read_timeout(Some(Duration::from_secs(wait)))
            .expect("timeout");
        let mut line = String::new();
        let word = match BufReader::new(c).read_line(&mut line) {
            Ok(_) if line.contains("\"busy\"") => "busy",
            Ok(_) if line.contains("\"timeout\"") => "timeout",
            Ok(0) => "closed",
            Ok(_) => "other",
            Err(_) => "open",
        };
        println!("{word}");
    }
}

#[cfg(not(unix))]
fn main() {
    eprintln!("sk-hold-connections holds Unix-socket connections (a Linux scenario's helper); on Windows the pipe is tested by the daemon's windows_pipe tests");
    std::process::exit(2);
}
