//! SIGKILL at random instants during backups and prunes (12 kills here; `SHAREKEEP_KILLS=100`
//! for the benchmark record, see bench/kill.sh). A run counts as killed only when it died of
//! SIGKILL (one that failed any other way fails the test). After each kill: `check` passes, a
//! sample of the finished snapshots restores byte for byte — the newest ones (the one or two
//! the interrupted operation could have touched) plus two others drawn by the test's seeded
//! PRNG (the seed is printed, so a failure can be replayed) — and the next backup succeeds,
//! reusing what the killed one had indexed. At the end every snapshot is restored.

use crate::scratch;
use sha2::{Digest, Sha256};
use sharekeep_tests::{bin, ctl, Run};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FILES: usize = 12;
/// Files rewritten before each killed backup: all of them, 144 MiB in 9 packs, so that indexes
/// are written after the 4th and 8th pack and kills land before and after them.
const CHANGED: usize = FILES;
const FILE_SIZE: usize = 12 << 20;

fn kills() -> usize {
    std::env::var("SHAREKEEP_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() % 1_000_000) as f64 / 1_000_000.0
    }
}

fn random_file(path: &Path, len: usize) {
    let mut f = fs::File::open("/dev/urandom").unwrap();
    let mut v = vec![0u8; len];
    std::io::Read::read_exact(&mut f, &mut v).unwrap();
    fs::write(path, v).unwrap();
}

/// Content hash of every file below `root`.
fn fingerprint(root: &Path) -> BTreeMap<String, [u8; 32]> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        out.insert(name, Sha256::digest(fs::read(&p).unwrap()).into());
    }
    out
}

/// Runs sharekeepctl and kills it with SIGKILL after `after`; returns the run if it ended
/// first, `None` if it died of the SIGKILL. Any other failure fails the test.
fn run_and_kill(repo: &Path, args: &[&str], after: Duration) -> Option<Run> {
    let child = Command::new(bin("sharekeepctl"))
        .arg("--repo")
        .arg(repo)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    std::thread::sleep(after);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let out = child.wait_with_output().unwrap();
    if std::os::unix::process::ExitStatusExt::signal(&out.status) == Some(libc_sigkill()) {
        return None;
    }
    assert!(
        out.status.success(),
        "sharekeepctl {args:?} failed on its own ({:?}) before the kill:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(Run {
        code: 0,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        raw: out.stdout,
    })
}

fn libc_sigkill() -> i32 {
    nix::sys::signal::Signal::SIGKILL as i32
}

fn index_files(repo: &Path) -> usize {
    fs::read_dir(repo.join("index")).unwrap().count()
}

/// `check` passes and the newest `last` snapshots plus `others` drawn by `rng` among the older
/// ones (all with `usize::MAX`) restore byte for byte.
fn verify(
    repo: &Path,
    expected: &BTreeMap<String, BTreeMap<String, [u8; 32]>>,
    scratch: &Path,
    what: &str,
    (last, others, rng): (usize, usize, &mut Rng),
) {
    let c = ctl(repo, &["check"]);
    assert_eq!(c.code, 0, "{what}: check failed:\n{}{}", c.stdout, c.stderr);
    let present: Vec<String> = ctl(repo, &["snapshots", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    let mut chosen: Vec<&String> = present.iter().rev().take(last).collect();
    let older: Vec<&String> = present.iter().rev().skip(last).collect();
    for _ in 0..others.min(older.len()) {
        let pick = older[(rng.next() % older.len() as u64) as usize];
        if !chosen.contains(&pick) {
            chosen.push(pick);
        }
    }
    for id in chosen {
        let want = expected
            .get(id)
            .unwrap_or_else(|| panic!("{what}: unknown snapshot {id} appeared"));
        let out = scratch.join(format!("verify-{}", &id[..8]));
        let _ = fs::remove_dir_all(&out);
        ctl(repo, &["restore", &id[..8], "--to", out.to_str().unwrap()]).ok();
        assert_eq!(
            &fingerprint(&out),
            want,
            "{what}: snapshot {} does not restore byte for byte",
            &id[..8]
        );
        fs::remove_dir_all(&out).unwrap();
    }
}

#[test]
fn sigkill_during_backup_and_prune_never_damages_the_repository() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    fs::create_dir_all(&src).unwrap();
    for i in 0..FILES {
        random_file(&src.join(format!("f{i}.bin")), FILE_SIZE);
    }
    ctl(&repo, &["init"]).ok();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill test seed {seed}");
    let mut rng = Rng(seed);
    let mut expected: BTreeMap<String, BTreeMap<String, [u8; 32]>> = BTreeMap::new();
    let s = src.to_str().unwrap();

    let started = Instant::now();
    let first = ctl(&repo, &["backup", "--json", s]).ok();
    let full = started.elapsed();
    expected.insert(
        first.json()["id"].as_str().unwrap().to_string(),
        fingerprint(&src),
    );

    let n = kills();
    // Half the kills interrupt backups, half prunes. An operation that ends before its kill
    // does not count: the window shrinks and another try is made.
    let (backups, prunes) = (n / 2, n - n / 2);
    let (mut reused, mut killed_after_index) = (0, 0);
    let mut window = full;
    let (mut i, mut killed) = (0, 0);
    while killed < backups {
        assert!(i < backups * 4, "could not interrupt {backups} backups");
        // New data for the backup to chew on: a third of the files.
        for f in 0..CHANGED {
            random_file(
                &src.join(format!("f{}.bin", (i * CHANGED + f) % FILES)),
                FILE_SIZE,
            );
        }
        let fp = fingerprint(&src);
        let indexes = index_files(&repo);
        // Stratified random instants over the backup's duration.
        let at = window.mul_f64((killed as f64 + rng.unit()) / backups as f64);
        let finished = run_and_kill(&repo, &["backup", "--force", "--json", s], at);
        let killed_indexed = finished.is_none() && index_files(&repo) > indexes;
        eprintln!(
            "backup kill {i} at {at:?}: {}",
            match (&finished, killed_indexed) {
                (Some(_), _) => "finished first",
                (None, true) => "killed after writing an index",
                (None, false) => "killed before writing an index",
            }
        );
        match finished {
            Some(done) => {
                expected.insert(done.json()["id"].as_str().unwrap().to_string(), fp.clone());
                window = window.mul_f64(0.8);
            }
            None => killed += 1,
        }
        killed_after_index += usize::from(killed_indexed);
        verify(
            &repo,
            &expected,
            tmp.path(),
            &format!("after backup kill {i} at {at:?}"),
            (1, 2, &mut rng),
        );
        let next = ctl(&repo, &["backup", "--force", "--json", s]).ok().json();
        let added = next["summary"]["bytes_added"].as_u64().unwrap();
        if killed_indexed && added < (CHANGED * FILE_SIZE) as u64 {
            reused += 1;
        }
        expected.insert(next["id"].as_str().unwrap().to_string(), fp);
        i += 1;
    }
    eprintln!("{reused} of {killed_after_index} backup(s) after a kill that followed an index reused its data");
    assert_eq!(
        reused, killed_after_index,
        "every backup after a kill that followed an index reuses the indexed data"
    );
    // And one kill placed right after a killed backup wrote its first index: the next backup
    // must reuse that data instead of storing it again.
    for f in 0..CHANGED {
        random_file(&src.join(format!("f{f}.bin")), FILE_SIZE);
    }
    let fp = fingerprint(&src);
    let indexes = index_files(&repo);
    let mut child = Command::new(bin("sharekeepctl"))
        .arg("--repo")
        .arg(&repo)
        .args(["backup", "--force", s])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while index_files(&repo) == indexes && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_micros(200));
    }
    let _ = child.kill();
    let finished_first = child.wait().unwrap().success();
    assert!(
        !finished_first,
        "the backup ended before writing an intermediate index"
    );
    verify(
        &repo,
        &expected,
        tmp.path(),
        "after the kill following an index",
        (1, 2, &mut rng),
    );
    let next = ctl(&repo, &["backup", "--force", "--json", s]).ok().json();
    let added = next["summary"]["bytes_added"].as_u64().unwrap();
    assert!(
        added <= ((CHANGED - 4) * FILE_SIZE) as u64,
        "the next backup stored {added} bytes again instead of reusing the 4 indexed packs"
    );
    expected.insert(next["id"].as_str().unwrap().to_string(), fp);

    let mut window: Option<Duration> = None;
    let (mut j, mut killed) = (0, 0);
    while killed < prunes {
        assert!(j < prunes * 4 + 1, "could not interrupt {prunes} prunes");
        // Garbage for prune: replace files, then forget all but the two newest snapshots.
        for f in 0..2 {
            random_file(
                &src.join(format!("f{}.bin", (j * 2 + f) % FILES)),
                FILE_SIZE,
            );
        }
        j += 1;
        let fp = fingerprint(&src);
        let done = ctl(&repo, &["backup", "--json", s]).ok().json();
        expected.insert(done["id"].as_str().unwrap().to_string(), fp);
        ctl(&repo, &["forget", "--keep-last", "2"]).ok();
        let Some(w) = window else {
            // The first prune runs to the end, to measure how long one takes.
            let t = Instant::now();
            ctl(&repo, &["prune", "--repack-threshold", "0"]).ok();
            window = Some(t.elapsed());
            continue;
        };
        let at = w.mul_f64((killed as f64 + rng.unit()) / prunes as f64);
        let finished = run_and_kill(&repo, &["prune", "--repack-threshold", "0"], at);
        eprintln!(
            "prune kill {j} at {at:?}: {}",
            if finished.is_some() {
                "finished first"
            } else {
                "killed"
            }
        );
        match finished {
            Some(_) => window = Some(w.mul_f64(0.8)),
            None => killed += 1,
        }
        verify(
            &repo,
            &expected,
            tmp.path(),
            &format!("after prune kill {j} at {at:?}"),
            (2, 2, &mut rng),
        );
        ctl(&repo, &["backup", s]).ok();
        let last = ctl(&repo, &["snapshots", "--json"]).ok().json();
        let newest = last.as_array().unwrap().last().unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        expected.insert(newest, fingerprint(&src));
    }
    // A prune that completes leaves a repository that checks clean with data verified.
    ctl(&repo, &["prune"]).ok();
    let c = ctl(&repo, &["check", "--read-data"]).ok();
    assert!(c.stdout.contains("no damage found"), "{}", c.stdout);
    verify(
        &repo,
        &expected,
        tmp.path(),
        "at the end",
        (usize::MAX, 0, &mut rng),
    );
}
