//! Helpers for the integration tests: the department folder generator and crafted repository
//! content (every platform), and on Unix the harness the scenarios use (running the real
//! binaries, scratch folders on ext4, tree fingerprints), real users and groups, and servers
//! on loopback.
//!
//! The scenarios drive Linux's ACLs, users, smbd and FUSE, so they build on Unix only; the
//! Windows counterparts are the daemon's and ctl's own tests, run under Wine.

mod crafted;
pub mod dataset;
#[cfg(unix)]
mod harness;
#[cfg(unix)]
pub mod servers;
#[cfg(unix)]
pub mod users;

pub use crafted::{crafted_snapshot, file_node};
#[cfg(unix)]
pub use harness::*;
