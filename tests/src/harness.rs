//! The Unix harness: running the real binaries, scratch folders on the repository's
//! filesystem (ext4, so ACLs and xattrs are real), and a fingerprint of a folder (content,
//! kind, mode, owner, ns mtime, xattrs, hard-link structure) to compare trees.

use crate::users;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The directory holding the workspace's built binaries (`target/debug`), or
/// `$SHAREKEEP_BIN_DIR` (to run the scenarios against other binaries, e.g. an older build, to
/// check that a test fails without the behaviour it names).
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SHAREKEEP_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// The newest modification time of the sources binary `name` is built from: `sharekeepd`
/// from the engine (with its service) and the policies crate, `sharekeepctl` from its own
/// crate, the engine's library (not the service) and the policies crate, and their manifests.
fn newest_source(name: &str) -> std::time::SystemTime {
    let top = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let daemon = top.join("daemon/src");
    let service_only = [daemon.join("service"), daemon.join("main.rs")];
    let mut stack: Vec<PathBuf> = vec![
        top.join("Cargo.toml"),
        top.join("daemon/Cargo.toml"),
        top.join("policies/Cargo.toml"),
        top.join("policies/src"),
        daemon.clone(),
    ];
    if name == "sharekeepctl" {
        stack.push(top.join("ctl/Cargo.toml"));
        stack.push(top.join("ctl/src"));
    }
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    while let Some(p) = stack.pop() {
        if name == "sharekeepctl" && service_only.contains(&p) {
            continue;
        }
        let Ok(m) = std::fs::metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            stack.extend(
                std::fs::read_dir(&p)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
        } else if let Ok(t) = m.modified() {
            newest = newest.max(t);
        }
    }
    newest
}

/// The path of a workspace binary; fails with a hint when it was not built, or was built
/// before its sources last changed (`cargo test -p sharekeep-tests` does not rebuild the
/// other crates' binaries: a stale one would be tested).
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --workspace --bins` before `cargo test` (the README's test command does)",
        p.display()
    );
    let ours = matches!(name, "sharekeepd" | "sharekeepctl");
    if ours && std::env::var_os("SHAREKEEP_BIN_DIR").is_none() {
        let built = std::fs::metadata(&p)
            .and_then(|m| m.modified())
            .expect("mtime");
        assert!(
            built >= newest_source(name),
            "{} is older than its sources: run `cargo build --workspace --bins` first (the README's test command does)",
            p.display()
        );
    }
    p
}

/// A scratch directory under `base` (pass `env!("CARGO_TARGET_TMPDIR")`), removed on drop.
pub fn scratch(base: &str) -> tempfile::TempDir {
    fs::create_dir_all(base).expect("target tmp dir");
    tempfile::Builder::new()
        .prefix("sk-")
        .tempdir_in(base)
        .expect("scratch dir")
}

/// A scratch directory under /tmp that every user can traverse (tests that run commands as
/// other users need to reach it; the checkout may sit under a private home), removed on drop.
pub fn open_scratch() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::Builder::new()
        .prefix("sk-share-")
        .tempdir_in("/tmp")
        .expect("scratch dir in /tmp");
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o755)).expect("chmod scratch");
    d
}

/// A finished command.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 for a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Raw standard output.
    pub raw: Vec<u8>,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            raw: out.stdout,
        }
    }

    /// Asserts the exit code, showing the output otherwise.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit code {code}, got {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Asserts success.
    pub fn ok(self) -> Run {
        self.expect_code(0)
    }

    /// Parses stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// `sharekeepctl --repo REPO ARGS...`.
pub fn ctl(repo: &Path, args: &[&str]) -> Run {
    ctl_cmd(repo, args, None)
}

/// `sharekeepctl` run as another user through `setpriv` (uid, gid, no supplementary groups).
pub fn ctl_as(uid: u32, gid: u32, repo: &Path, args: &[&str]) -> Run {
    ctl_cmd(repo, args, Some((uid, gid)))
}

/// `sharekeepctl --repo REPO ARGS...` for a repository named by URL (or path), with extra
/// environment (keys, credentials); `SHAREKEEP_*` and AWS variables of the test's own
/// environment are not passed on.
pub fn ctl_url(repo: &str, args: &[&str], env: &[(String, String)]) -> Run {
    let mut cmd = Command::new(bin("sharekeepctl"));
    cmd.arg("--repo").arg(repo).args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("SHAREKEEP_") || k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    Run::from(cmd.output().expect("run sharekeepctl"))
}

/// `sharekeepctl key generate PATH`: a new random key file (0600).
/// The bytes of a lock file of this host's process `pid` (`kind` "shared" or "exclusive",
/// taken for `purpose`), as a running sharekeep writes one in `locks/`.
pub fn lock_file(pid: u32, kind: &str, purpose: &str) -> String {
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    format!("{{\"kind\":\"{kind}\",\"host\":\"{host}\",\"pid\":{pid},\"time\":\"2026-01-01T00:00:00+00:00\",\"refreshed\":\"2026-01-01T00:00:00+00:00\",\"purpose\":\"{purpose}\"}}")
}

pub fn generate_key(path: &Path) {
    ctl_url("/", &["key", "generate", path.to_str().unwrap()], &[]).ok();
}

fn ctl_cmd(repo: &Path, args: &[&str], user: Option<(u32, u32)>) -> Run {
    let mut cmd = match user {
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg(bin("sharekeepctl"));
            c
        }
        None => Command::new(bin("sharekeepctl")),
    };
    cmd.arg("--repo").arg(repo).args(args);
    cmd.env_remove("SHAREKEEP_REPO").stdin(Stdio::null());
    Run::from(cmd.output().expect("run sharekeepctl"))
}

/// Runs a system command, asserting success.
pub fn sh(program: &str, args: &[&str]) -> Run {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Run::from(out).ok()
}

/// Everything a restore must reproduce about one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// `file`, `dir`, `symlink`, `fifo`, `socket`, `other`.
    pub kind: &'static str,
    /// Mode bits (`& 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// mtime in ns (not for directories and symlinks' parents… kept for all but the root).
    pub mtime_ns: i64,
    /// Content (files) or link target (symlinks).
    pub content: Vec<u8>,
    /// Extended attributes, sorted.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Size in blocks of 512 bytes actually allocated (to check sparseness), files only.
    pub blocks: u64,
    /// Index of the first path sharing this inode (hard links), if any.
    pub link_group: Option<String>,
}

/// Fingerprints every entry below `root` (relative paths), not following symlinks.
pub fn fingerprint(root: &Path) -> BTreeMap<String, Facts> {
    let mut out = BTreeMap::new();
    let mut inodes: HashMap<(u64, u64), String> = HashMap::new();
    walk(root, root, &mut out, &mut inodes);
    out
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<String, Facts>,
    inodes: &mut HashMap<(u64, u64), String>,
) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let m = fs::symlink_metadata(&p).expect("lstat");
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let ft = m.file_type();
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_file() {
            "file"
        } else if ft.is_fifo() {
            "fifo"
        } else if ft.is_socket() {
            "socket"
        } else {
            "other"
        };
        let content = match kind {
            "file" => fs::read(&p).expect("read"),
            "symlink" => fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec(),
            _ => Vec::new(),
        };
        let link_group = if kind == "file" && m.nlink() > 1 {
            Some(
                inodes
                    .entry((m.dev(), m.ino()))
                    .or_insert_with(|| rel.clone())
                    .clone(),
            )
        } else {
            None
        };
        let mut xattrs = Vec::new();
        if let Ok(names) = xattr_list(&p) {
            for n in names {
                if let Some(v) = xattr_get(&p, &n) {
                    xattrs.push((n, v));
                }
            }
        }
        xattrs.sort();
        out.insert(
            rel,
            Facts {
                kind,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                content,
                xattrs,
                blocks: if kind == "file" { m.blocks() } else { 0 },
                link_group,
            },
        );
        if kind == "dir" {
            walk(root, &p, out, inodes);
        }
    }
}

fn xattr_list(p: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(p, &mut buf)?;
    Ok(buf[..n]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

fn xattr_get(p: &Path, name: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    let n = rustix::fs::lgetxattr(p, std::ffi::OsStr::from_bytes(name), &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// Compares two fingerprints; the message lists every difference.
pub fn assert_same_tree(
    expected: &BTreeMap<String, Facts>,
    got: &BTreeMap<String, Facts>,
    what: &str,
) {
    let mut problems = Vec::new();
    for (path, e) in expected {
        match got.get(path) {
            None => problems.push(format!("{path}: missing")),
            Some(g) => {
                let mut g = g.clone();
                let mut e = e.clone();
                // Allocation depends on the filesystem; compared separately where it matters.
                g.blocks = 0;
                e.blocks = 0;
                if g != e {
                    problems.push(format!("{path}:\n  expected {e:?}\n  got      {g:?}"));
                }
            }
        }
    }
    for path in got.keys() {
        if !expected.contains_key(path) {
            problems.push(format!("{path}: unexpected"));
        }
    }
    assert!(
        problems.is_empty(),
        "{what}: {} differences:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Writes `content` to `path`, creating parents.
pub fn write(path: &Path, content: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, content).unwrap();
}

/// Sets a file's mtime (ns precision) without following symlinks.
pub fn set_mtime(path: &Path, secs: i64, nanos: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: nanos,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    // Eight bytes a step: fast enough unoptimised for the hundreds of MiB some tests need.
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `policies/examples/commercial.toml` with its names prefixed to the test accounts of `a`
/// (`adjoint`, `@commercial`, `@dsi`) and its paths redirected to `share` and `repo`.
pub fn example_commercial(a: &users::Accounts, share: &Path, repo: &Path) -> String {
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/examples/commercial.toml");
    fs::read_to_string(example)
        .expect("the example policy")
        .replace(
            "\"/srv/partages/commercial\"",
            &format!("{:?}", share.display().to_string()),
        )
        .replace(
            "\"/var/backups/sharekeep/commercial\"",
            &format!("{:?}", repo.display().to_string()),
        )
        .replace("\"adjoint\"", &format!("\"{}\"", a.name("adjoint")))
        .replace("\"@commercial\"", &format!("\"@{}\"", a.name("commercial")))
        .replace(
            "group = \"commercial\"",
            &format!("group = \"{}\"", a.name("commercial")),
        )
        .replace("\"@dsi\"", &format!("\"@{}\"", a.name("dsi")))
}

/// Where a file's data lives, as the repository's own index says: for each content blob of
/// `path` in `snapshot`, the pack file (under `data/`), and the blob's offset and stored length
/// in it. Tests damage exactly these bytes instead of guessing a pack by size or position.
pub fn blobs_of(repo: &Path, snapshot: &str, path: &str) -> Vec<(PathBuf, u64, u64)> {
    let r = sharekeep::Repository::open_local(repo).expect("open the repository");
    let snap = r.find_snapshot(snapshot).expect("the snapshot");
    let node = r
        .find_node(&snap, path)
        .expect("read the snapshot's trees")
        .unwrap_or_else(|| panic!("{path} is not in snapshot {snapshot}"));
    let index = r.index();
    node.content
        .iter()
        .map(|id| {
            let (pack, entry) = index
                .get(id)
                .unwrap_or_else(|| panic!("blob {} of {path} is not indexed", id.short()));
            let name = pack.to_hex();
            (
                repo.join("data").join(&name[..2]).join(&name),
                u64::from(entry.offset),
                u64::from(entry.length),
            )
        })
        .collect()
}

/// Flips one byte in the middle of a blob located by [`blobs_of`].
pub fn flip_byte_in(blob: &(PathBuf, u64, u64)) {
    let (pack, offset, length) = blob;
    let mut bytes = fs::read(pack).unwrap();
    bytes[(offset + length / 2) as usize] ^= 0x55;
    fs::write(pack, bytes).unwrap();
}
