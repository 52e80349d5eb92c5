//! Fuzzes the repository readers with mutated files: builds a small valid repository, then,
//! for a fixed time, copies it, mutates one file (index, pack, snapshot or config: bit flips,
//! huge length fields, truncation, inserted bytes; index and snapshot files are then renamed
//! to their new hash so that the parsers behind the hash check are reached too) and runs what
//! a user would on it: open, snapshots, ls of every snapshot, cat of every file, check
//! --read-data. Errors are expected; a panic, or one allocation larger than the documented
//! caps allow, is a failure. Prints `N runs, E errors, 0 panics, largest allocation X` and
//! exits 1 on any panic or over-cap allocation.
//!
//! Usage: sk-fuzz-repo SECONDS [SEED]

use sharekeep::pack::BlobType;
use sharekeep::{Node, NodeKind, Repository, Tree};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Records the largest single allocation made while armed.
struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);
static ARMED: AtomicBool = AtomicBool::new(false);

// SAFETY: every call is passed unchanged to the system allocator; the wrapper only reads the
// requested size (measuring allocations is what this test tool is for).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            LARGEST.fetch_max(new_size, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// The most one allocation may take while reading a damaged repository: a tree blob's cap
/// (64 MiB) plus its compressed copy's bound; a pack file read whole by `check --read-data`
/// is at most the 16 MiB pack target plus one blob.
const CAP: usize = 64 * 1024 * 1024 + 64 * 1024 * 1024 / 64 + 4096 + 1024 * 1024;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn node(name: &str, kind: NodeKind, content: Vec<sharekeep::Id>, size: u64) -> Node {
    let mut n = sharekeep_tests::file_node(name.as_bytes(), content, size);
    n.kind = kind;
    n
}

/// A small valid repository: two snapshots, a nested folder, compressible and random files.
fn build(path: &Path) {
    let repo = Repository::init_local(path).expect("init");
    let text = b"Devis pour le client Dupont, lignes 1 a 40. ".repeat(200);
    let mut noise = vec![0u8; 300_000];
    let mut r = Rng(7);
    for b in noise.iter_mut() {
        *b = r.next() as u8;
    }
    for round in 0..2u8 {
        let ids = repo
            .store_blobs(&[
                (BlobType::Data, &text),
                (BlobType::Data, &noise),
                (BlobType::Data, &[round; 10]),
            ])
            .expect("blobs");
        let mut inner = Tree {
            nodes: vec![node(
                "b.bin",
                NodeKind::File,
                vec![ids[1]],
                noise.len() as u64,
            )],
        };
        let inner_id = repo
            .store_blobs(&[(BlobType::Tree, &inner.encode())])
            .expect("tree")[0];
        let mut dir = node("sub", NodeKind::Dir, Vec::new(), 0);
        dir.subtree = Some(inner_id);
        let mut root = Tree {
            nodes: vec![
                node(
                    "a.txt",
                    NodeKind::File,
                    vec![ids[0], ids[2]],
                    text.len() as u64 + 10,
                ),
                dir,
            ],
        };
        sharekeep_tests::crafted_snapshot(&repo, &mut root);
    }
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.starts_with(root.join("locks")) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn copy_tree(from: &Path, to: &Path) {
    for f in files(from) {
        let dest = to.join(f.strip_prefix(from).expect("inside"));
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&f, &dest).expect("copy");
    }
    for d in ["locks", "tmp", "index", "snapshots"] {
        let _ = std::fs::create_dir_all(to.join(d));
    }
}

fn mutate(bytes: &mut Vec<u8>, r: &mut Rng) {
    if bytes.is_empty() {
        bytes.push(r.next() as u8);
        return;
    }
    match r.below(5) {
        0 => {
            for _ in 0..=r.below(8) {
                let i = r.below(bytes.len());
                bytes[i] ^= 1 << r.below(8);
            }
        }
        1 => {
            // A length or count field made huge.
            let i = r.below(bytes.len().saturating_sub(4).max(1));
            let v: u32 = match r.below(3) {
                0 => u32::MAX,
                1 => 1 << 30,
                _ => r.next() as u32,
            };
            for (k, b) in v.to_le_bytes().iter().enumerate() {
                if i + k < bytes.len() {
                    bytes[i + k] = *b;
                }
            }
        }
        2 => bytes.truncate(r.below(bytes.len())),
        3 => {
            let i = r.below(bytes.len());
            let junk: Vec<u8> = (0..=r.below(64)).map(|_| r.next() as u8).collect();
            bytes.splice(i..i, junk);
        }
        _ => {
            let i = r.below(bytes.len());
            bytes[i] = r.next() as u8;
        }
    }
}

/// Everything a user would run on the repository; errors are fine.
fn exercise(path: &Path) -> usize {
    let mut errors = 0;
    let repo = match Repository::open_local(path) {
        Ok(r) => r,
        Err(_) => return 1,
    };
    let snaps = repo.snapshots().unwrap_or_else(|_| {
        errors += 1;
        Vec::new()
    });
    for s in &snaps {
        let mut found = Vec::new();
        if sharekeep::list(&repo, s, "", &mut |e| found.push(e)).is_err() {
            errors += 1;
        }
        for e in found.iter().filter(|e| e.node.kind == NodeKind::File) {
            if repo.write_content(&e.node, &mut std::io::sink()).is_err() {
                errors += 1;
            }
        }
    }
    if let Ok(report) = sharekeep::check(
        &repo,
        &sharekeep::CheckOptions {
            read_data: Some(100.0),
        },
    ) {
        errors += report.damage.len();
    } else {
        errors += 1;
    }
    errors
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(30);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0x5eed);
    let work = tempfile::tempdir().expect("tempdir");
    let pristine = work.path().join("pristine");
    build(&pristine);
    let names = files(&pristine);
    std::panic::set_hook(Box::new(|_| {}));
    let mut r = Rng(seed | 1);
    let (mut runs, mut errors, mut panics) = (0u64, 0usize, 0u64);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::time::Instant::now() < deadline {
        let copy = work.path().join(format!("run{}", runs % 2));
        let _ = std::fs::remove_dir_all(&copy);
        copy_tree(&pristine, &copy);
        let victim = copy.join(
            names[r.below(names.len())]
                .strip_prefix(&pristine)
                .expect("inside"),
        );
        let mut bytes = std::fs::read(&victim).expect("read");
        mutate(&mut bytes, &mut r);
        std::fs::write(&victim, &bytes).expect("write");
        // Named by their hash: renamed so the parsers behind the hash check are reached.
        let dir = victim
            .parent()
            .expect("parent")
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        if (dir == "index" || dir == "snapshots") && r.below(2) == 0 {
            let new = victim.with_file_name(sharekeep::Id::hash(&bytes).to_hex());
            std::fs::rename(&victim, new).expect("rename");
        }
        ARMED.store(true, Ordering::Relaxed);
        let outcome = std::panic::catch_unwind(|| exercise(&copy));
        ARMED.store(false, Ordering::Relaxed);
        match outcome {
            Ok(e) => errors += e,
            Err(_) => {
                panics += 1;
                eprintln!("panic on a mutated {}", victim.display());
            }
        }
        runs += 1;
    }
    let largest = LARGEST.load(Ordering::Relaxed);
    println!(
        "{runs} runs, {errors} errors found, {panics} panics, largest allocation {} KiB (cap {} KiB)",
        largest / 1024,
        CAP / 1024
    );
    if panics > 0 || largest > CAP {
        std::process::exit(1);
    }
}
