//! Test helper: starts writing a large pack to the repository store named by URL (credentials
//! from the environment) and prints `uploading` just before the upload begins, so the test can
//! kill it mid-upload and check that nothing half-written is visible.

use sharekeep::backend::{conformance, open_backend};
use sharekeep::{Access, Credentials, Location};
use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .expect("usage: sk-backend-write URL SIZE_MIB CACHE_DIR");
    let mib: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(256);
    let cache = args.next().map(std::path::PathBuf::from);
    let location: Location = url.parse().expect("a repository URL");
    let access = Access {
        secret: None,
        credentials: Credentials::from_env(),
        cache_root: cache,
    };
    let backend = open_backend(&location, &access).expect("open the store");
    let result = conformance::write_then_hang(backend.as_ref(), mib << 20, &|| {
        println!("uploading");
        let _ = std::io::stdout().flush();
    });
    // Not meant to get here: the test kills it first.
    println!("done: {result:?}");
}
