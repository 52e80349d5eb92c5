//! Hostile members, damaged repositories, careless policies: each attack of the issue as a
//! test, run as a real unprivileged user where it is one, with its positive control.

use crate::daemon::Daemon;
use sharekeep_tests::users::Accounts;
use sharekeep_tests::{ctl, ctl_as, open_scratch, write};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn an_outsider_cannot_read_any_file_of_a_repository_whatever_the_umask() {
    let mut a = Accounts::new();
    a.user("outsider", &[]);
    let uid = a.uid("outsider");
    let dir = open_scratch();
    let src = dir.path().join("Paie");
    write(&src.join("bulletin.txt"), b"salaire confidentiel");
    fs::set_permissions(&src, fs::Permissions::from_mode(0o700)).unwrap();
    let repo = dir.path().join("repo");
    // A permissive umask, as an admin's shell may have.
    let init = Command::new("sh")
        .args([
            "-c",
            &format!(
                "umask 000; '{}' --repo '{}' init && '{}' --repo '{}' backup '{}'",
                sharekeep_tests::bin("sharekeepctl").display(),
                repo.display(),
                sharekeep_tests::bin("sharekeepctl").display(),
                repo.display(),
                src.display()
            ),
        ])
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    // Nothing in the repository is open to group or others.
    let open = Command::new("find")
        .arg(&repo)
        .args(["-perm", "/077"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&open.stdout), "", "open to others");
    let r = ctl_as(uid, uid, &repo, &["cat", "latest", "bulletin.txt"]);
    assert_ne!(r.code, 0);
    assert!(!r.stdout.contains("salaire"), "{}", r.stdout);
    assert!(r.stderr.contains("Permission denied"), "{}", r.stderr);
    // Positive control: root reads it.
    let r = ctl(&repo, &["cat", "latest", "bulletin.txt"]).ok();
    assert_eq!(r.stdout, "salaire confidentiel");
    // Made readable by hand: every command warns, and check says so.
    fs::set_permissions(&repo, fs::Permissions::from_mode(0o755)).unwrap();
    let r = ctl(&repo, &["check"]).ok();
    assert!(r.stdout.contains("not private"), "{}", r.stdout);
    assert!(r.stderr.contains("repository not private"), "{}", r.stderr);
}

#[test]
fn sharekeepd_refuses_to_back_up_into_a_repository_others_may_read() {
    let dir = open_scratch();
    let share = dir.path().join("share");
    write(&share.join("a.txt"), b"a");
    let repo = dir.path().join("repo");
    fs::create_dir_all(dir.path().join("policies")).unwrap();
    let policy = |extra: &str| {
        fs::write(
            dir.path().join("policies/s.toml"),
            format!(
                "[share]\nname = \"s\"\npath = {:?}\nowner = \"root\"\ngroup = \"root\"\n\n[access]\nread = [\"root\"]\n\n[backup]\nschedule = \"0 0 0 1 1 *\"\nrepository = {:?}\n{extra}",
                share.display().to_string(),
                repo.display().to_string()
            ),
        )
        .unwrap();
    };
    policy("");
    let d = Daemon::start(dir.path());
    // Created by the service: private, and backed up.
    let r = d.ctl(&["backup", "--share", "s"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        fs::metadata(&repo).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // Opened to others by hand: refused, with what to do.
    fs::set_permissions(&repo, fs::Permissions::from_mode(0o755)).unwrap();
    let r = d.ctl(&["backup", "--share", "s"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("refusing to back up") && r.stderr.contains("chmod -R go-rwx"),
        "{}",
        r.stderr
    );
    // The policy may allow it explicitly.
    policy("repository_private = false\n");
    assert_eq!(d.ctl(&["reload"]).code, 0);
    let r = d.ctl(&["backup", "--share", "s"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn a_zstd_bomb_within_a_declared_length_is_damage_not_a_gigabyte() {
    use sharekeep::pack::BlobType;
    use sharekeep::{Repository, Tree};
    let tmp = crate::scratch();
    let path = tmp.path().join("repo");
    let repo = Repository::init_local(&path).unwrap();
    // 1 GiB of zeros: a few dozen KiB once compressed, and a valid blob by its hash.
    let bomb = vec![0u8; 1 << 30];
    let ids = repo.store_blobs(&[(BlobType::Data, &bomb)]).unwrap();
    drop(bomb);
    let honest = repo.store_blobs(&[(BlobType::Data, b"ok")]).unwrap();
    let mut tree = Tree {
        nodes: vec![
            sharekeep_tests::file_node(b"bomb.bin", ids, 1 << 30),
            sharekeep_tests::file_node(b"ok.txt", honest, 2),
        ],
    };
    let id = sharekeep_tests::crafted_snapshot(&repo, &mut tree);
    let r = ctl(&path, &["cat", &id[..8], "bomb.bin"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("claims 1073741824 bytes"), "{}", r.stderr);
    // Positive control: the honest file of the same snapshot reads.
    assert_eq!(ctl(&path, &["cat", &id[..8], "ok.txt"]).ok().stdout, "ok");
    let c = ctl(&path, &["check", "--read-data"]);
    assert_eq!(c.code, 1, "{}{}", c.stdout, c.stderr);
    assert!(
        c.stdout.contains("damaged") && c.stdout.contains("claims"),
        "{}",
        c.stdout
    );
}

/// The member's inotify swapper (`sk-swap-on-open`), running as `uid`.
struct Swapper {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl Swapper {
    fn start(uid: u32, dir: &std::path::Path, trigger: &str, from: &str, with: &str) -> Swapper {
        let mut child = Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups")
            .arg(sharekeep_tests::bin("sk-swap-on-open"))
            .arg(dir)
            .args([trigger, from, with])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut s = Swapper { child, out };
        assert_eq!(s.line(), "armed");
        s
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        std::io::BufRead::read_line(&mut self.out, &mut l).unwrap();
        l.trim().to_string()
    }

    /// Puts things back after a backup that triggered the swap; re-arms.
    fn restore(&mut self) {
        assert_eq!(self.line(), "swapped", "the backup opened the trigger file");
        std::io::Write::write_all(self.child.stdin.as_mut().unwrap(), b"\n").unwrap();
        assert_eq!(self.line(), "restored");
        assert_eq!(self.line(), "armed");
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A forced backup (every file read) of `src` into `repo` that must finish within a minute:
/// (exit code, stderr).
fn bounded_backup(repo: &std::path::Path, src: &std::path::Path) -> (i32, String) {
    // Killed 5 s after the TERM if it does not stop (a worker stuck in open() never would).
    let out = Command::new("timeout")
        .args(["-k", "5", "60"])
        .arg(sharekeep_tests::bin("sharekeepctl"))
        .arg("--repo")
        .arg(repo)
        .arg("backup")
        .arg("--force")
        .arg(src)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The member's folder `m` in a fresh share: `b-trigger.txt` (opened first by the backup),
/// then `files` more files so that the scan still has work when the swap happens.
fn member_folder(uid: u32, files: usize, big: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = open_scratch();
    let share = dir.path().join("share");
    write(&share.join("ok.txt"), b"shared");
    let m = share.join("m");
    write(&m.join("b-trigger.txt"), &vec![b'b'; big]);
    for i in 0..files {
        write(&m.join(format!("c{i:05}.txt")), b"c");
    }
    Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}")])
        .arg(&m)
        .status()
        .unwrap();
    (dir, share)
}

#[test]
fn a_members_symlink_swap_never_gets_an_outside_file_into_a_snapshot() {
    let mut a = Accounts::new();
    a.user("member", &[]);
    let uid = a.uid("member");
    let (dir, share) = member_folder(uid, 3000, 1);
    let m = share.join("m");
    let secret = dir.path().join("secret");
    write(
        &secret.join("id_rsa"),
        b"-----BEGIN OPENSSH PRIVATE KEY-----",
    );
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o700)).unwrap();
    // `a` is the member's folder; `link` points at a root-only folder.
    write(&m.join("a/mine.txt"), b"mine");
    std::os::unix::fs::symlink(&secret, m.join("link")).unwrap();
    Command::new("chown")
        .args(["-R", "-h", &format!("{uid}:{uid}")])
        .arg(&m)
        .status()
        .unwrap();
    let repo = dir.path().join("repo");
    ctl(&repo, &["init"]).ok();
    // When the backup opens b-trigger.txt, `a` has been listed as a folder: the member swaps
    // it for the link before the scan enters it.
    let mut swapper = Swapper::start(uid, &m, "b-trigger.txt", "a", "link");
    for round in 0..5 {
        let (code, err) = bounded_backup(&repo, &share);
        swapper.restore();
        assert!(code == 0 || code == 3, "backup failed ({code}): {err}");
        let ls = ctl(&repo, &["ls", "latest", "-l"]).ok().stdout;
        assert!(
            !ls.contains("id_rsa"),
            "round {round}: a root-only file got into a snapshot:\n{}",
            ls.lines()
                .filter(|l| l.contains("/a"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        // Positive control: the rest of the share is there.
        assert!(ls.contains("ok.txt") && ls.contains("c02999.txt"), "{ls}");
    }
    // And once the member stops, their folder is backed up as it is.
    drop(swapper);
    bounded_backup(&repo, &share);
    let ls = ctl(&repo, &["ls", "latest"]).ok().stdout;
    assert!(ls.contains("m/a/mine.txt"), "{ls}");
}

#[test]
fn a_file_swapped_for_a_fifo_during_a_backup_never_blocks_it() {
    let mut a = Accounts::new();
    a.user("member", &[]);
    let uid = a.uid("member");
    // Big files before it keep both workers reading while the swap happens; the scan (which
    // reads nothing) has long recorded f.txt as a file by then.
    let (dir, share) = member_folder(uid, 0, 64 << 20);
    let m = share.join("m");
    for i in 0..4 {
        write(&m.join(format!("c{i}.bin")), &vec![b'c'; 16 << 20]);
    }
    write(&m.join("f.txt"), b"a plain file");
    let fifo = m.join("p");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}")])
        .arg(&m)
        .status()
        .unwrap();
    let repo = dir.path().join("repo");
    ctl(&repo, &["init"]).ok();
    let mut swapper = Swapper::start(uid, &m, "b-trigger.txt", "f.txt", "p");
    for _ in 0..3 {
        let (code, err) = bounded_backup(&repo, &share);
        swapper.restore();
        assert!(
            code != 124 && code != 137,
            "the backup blocked on the FIFO: {err}"
        );
        assert_eq!(code, 3, "the backup warns: {err}");
        assert!(
            err.contains("f.txt") && err.contains("replaced during the backup"),
            "the warning names the entry: {err}"
        );
        let ls = ctl(&repo, &["ls", "latest"]).ok().stdout;
        assert!(
            ls.contains("b-trigger.txt") && ls.contains("ok.txt"),
            "{ls}"
        );
    }
}

/// Makes a chain of `depth` folders named `d` under `top` (deeper than PATH_MAX: by
/// descriptor), with `deep.txt` at the bottom; returns the chain's relative path.
fn deep_chain(top: &std::path::Path, depth: usize, content: &[u8]) -> String {
    use rustix::fs::{mkdirat, openat, Mode, OFlags};
    let mut fd = rustix::fs::open(top, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    for _ in 0..depth {
        match mkdirat(&fd, "d", Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => panic!("mkdirat: {e}"),
        }
        fd = openat(&fd, "d", OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap();
    }
    let f = openat(
        &fd,
        "deep.txt",
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC,
        Mode::from_raw_mode(0o644),
    )
    .unwrap();
    rustix::io::write(&f, content).unwrap();
    let mut rel = "d/".repeat(depth);
    rel.push_str("deep.txt");
    rel
}

/// Reads `rel` below `top` by descriptor (the path is longer than PATH_MAX).
fn read_deep(top: &std::path::Path, rel: &str) -> Option<Vec<u8>> {
    use rustix::fs::{openat, Mode, OFlags};
    let mut fd = rustix::fs::open(top, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).ok()?;
    let parts: Vec<&str> = rel.split('/').collect();
    for p in &parts[..parts.len() - 1] {
        fd = openat(
            &fd,
            *p,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .ok()?;
    }
    let f = openat(&fd, parts[parts.len() - 1], OFlags::RDONLY, Mode::empty()).ok()?;
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(f), &mut out).ok()?;
    Some(out)
}

fn rm_rf(p: &std::path::Path) {
    let _ = Command::new("rm").arg("-rf").arg(p).status();
}

#[test]
fn a_ten_thousand_level_tree_is_backed_up_listed_compared_and_restored() {
    let dir = open_scratch();
    let share = dir.path().join("share");
    fs::create_dir_all(&share).unwrap();
    let rel = deep_chain(&share, 10_000, b"tout au fond v1");
    assert!(rel.len() > 4096, "deeper than PATH_MAX");
    let repo = dir.path().join("repo");
    ctl(&repo, &["init"]).ok();
    let first = ctl(&repo, &["backup", &share.display().to_string(), "--json"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()[..8]
        .to_string();
    deep_chain(&share, 10_000, b"tout au fond, v2");
    let second = ctl(&repo, &["backup", &share.display().to_string(), "--json"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()[..8]
        .to_string();
    let ls = ctl(&repo, &["ls", &second]).ok().stdout;
    assert!(ls.contains("/deep.txt"), "ls lists the bottom");
    let diff = ctl(&repo, &["diff", &first, &second]).ok().stdout;
    assert!(
        diff.contains("M    ") && diff.contains("/deep.txt"),
        "{}",
        &diff[..diff.len().min(300)]
    );
    let versions = ctl(&repo, &["versions", &rel]).ok().stdout;
    assert!(
        versions.contains(&first) && versions.contains(&second),
        "{versions}"
    );
    // Restore into an empty folder, then in place over the changed file.
    let target = dir.path().join("target");
    ctl(
        &repo,
        &["restore", &first, "--to", &target.display().to_string()],
    )
    .ok();
    assert_eq!(read_deep(&target, &rel).unwrap(), b"tout au fond v1");
    let r = ctl(&repo, &["restore", &first, &rel]).ok();
    assert!(r.stdout.contains("1 replaced"), "{}", r.stdout);
    assert_eq!(read_deep(&share, &rel).unwrap(), b"tout au fond v1");
    // The service on that share: its rights walk, a backup and a dry-run restore (which
    // overflowed a 2 MiB thread stack when planning recursed per level).
    fs::create_dir_all(dir.path().join("policies")).unwrap();
    fs::write(
        dir.path().join("policies/deep.toml"),
        format!(
            "[share]\nname = \"deep\"\npath = {:?}\nowner = \"root\"\ngroup = \"root\"\n\n[access]\nread = [\"root\"]\n\n[backup]\nschedule = \"0 0 0 1 1 *\"\nrepository = {:?}\n",
            share.display().to_string(),
            repo.display().to_string()
        ),
    )
    .unwrap();
    let d = Daemon::start(dir.path());
    let b = d.ctl(&["backup", "--share", "deep"]);
    assert_eq!(b.code, 0, "{}{}", b.stdout, b.stderr);
    let r = d.ctl(&["restore", "--share", "deep", &first, "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("deep.txt"));
    assert_eq!(d.ctl(&["status"]).code, 0, "the service is still there");
    drop(d);
    rm_rf(&target);
    rm_rf(&share);
}

#[test]
fn a_hard_link_swapped_in_during_a_restore_never_gets_the_snapshots_metadata() {
    let mut a = Accounts::new();
    a.user("member", &[]);
    let uid = a.uid("member");
    let dir = open_scratch();
    let share = dir.path().join("share");
    let m = share.join("m");
    write(&m.join("doc.txt"), b"shared document");
    write(&m.join("other.txt"), b"the member's private notes");
    Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}")])
        .arg(&m)
        .status()
        .unwrap();
    fs::set_permissions(m.join("doc.txt"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(m.join("other.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    let repo = dir.path().join("repo");
    ctl(&repo, &["init"]).ok();
    let snap = ctl(&repo, &["backup", &share.display().to_string(), "--json"])
        .ok()
        .json()["id"]
        .as_str()
        .unwrap()[..8]
        .to_string();
    // The document's mode changes: a restore will put 0644 back on it.
    fs::set_permissions(m.join("doc.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, out) = a.sh_as(
        "member",
        &format!(
            "ln '{}' '{}'",
            m.join("other.txt").display(),
            m.join("hl").display()
        ),
    );
    assert!(ok, "{out}");
    // When the restore saves doc.txt (pre-restore), the member swaps in a hard link to
    // other.txt under its name.
    let mut swapper = Swapper::start(uid, &m, "doc.txt", "doc.txt", "hl");
    let r = ctl(&repo, &["restore", &snap, "m/doc.txt"]);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("replaced since the restore was planned"),
        "{}",
        r.stderr
    );
    let mode = |n: &str| fs::metadata(m.join(n)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        mode("other.txt"),
        0o600,
        "the other file got the snapshot's metadata"
    );
    swapper.restore();
    drop(swapper);
    // Positive control: with nobody swapping, the document gets its mode back.
    ctl(&repo, &["restore", &snap, "m/doc.txt"]).ok();
    assert_eq!(mode("doc.txt"), 0o644);
    assert_eq!(mode("other.txt"), 0o600);
}

/// A share of `team` read by the member, run by the real service.
fn watched_share(a: &mut Accounts) -> (tempfile::TempDir, std::path::PathBuf, Daemon) {
    watched_share_with(a, None)
}

fn watched_share_with(
    a: &mut Accounts,
    config: Option<&str>,
) -> (tempfile::TempDir, std::path::PathBuf, Daemon) {
    a.group("team");
    a.user("member", &["team"]);
    let dir = open_scratch();
    let share = dir.path().join("share");
    fs::create_dir_all(share.join("Docs")).unwrap();
    fs::create_dir_all(dir.path().join("policies")).unwrap();
    fs::write(
        dir.path().join("policies/team.toml"),
        format!(
            "[share]\nname = \"team\"\npath = {:?}\nowner = \"root\"\ngroup = \"root\"\n\n[access]\nread = [\"@{}\"]\nwrite = [\"root\"]\n\n[[rule]]\npath = \"Docs\"\nwrite = [\"@{}\"]\n",
            share.display().to_string(),
            a.name("team"),
            a.name("team"),
        ),
    )
    .unwrap();
    let d = Daemon::start_with(dir.path(), config);
    (dir, share, d)
}

fn watches(d: &Daemon) -> u64 {
    let r = d.ctl(&["status", "--json"]);
    r.json()[0]["watches"].as_u64().unwrap()
}

#[test]
fn a_link_to_the_root_moved_into_the_share_costs_one_watch_not_the_system() {
    let mut a = Accounts::new();
    let (dir, share, d) = watched_share(&mut a);
    let s = share.display().to_string();
    crate::daemon::eventually("the first watches", crate::daemon::PATIENCE, || {
        watches(&d) == 2
    });
    // A folder holding links to / and /usr/share, and one real subfolder, moved in.
    let outside = dir.path().join("outside");
    fs::create_dir_all(outside.join("sub")).unwrap();
    std::os::unix::fs::symlink("/", outside.join("root")).unwrap();
    std::os::unix::fs::symlink("/usr/share", outside.join("usr-share")).unwrap();
    write(&outside.join("sub/note.txt"), b"note");
    fs::set_permissions(
        outside.join("sub/note.txt"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fs::rename(&outside, share.join("Docs/moved")).unwrap();
    crate::daemon::eventually(
        "rights below the moved folder",
        crate::daemon::PATIENCE,
        || {
            a.sh_as("member", &format!("cat '{s}/Docs/moved/sub/note.txt'"))
                .0
        },
    );
    assert_eq!(
        watches(&d),
        4,
        "the moved folder and its subfolder, nothing through the links"
    );
    // A folder made inside the moved one is watched too: a file in it gets its rights.
    fs::create_dir(share.join("Docs/moved/sub/new")).unwrap();
    write(&share.join("Docs/moved/sub/new/late.txt"), b"late");
    fs::set_permissions(
        share.join("Docs/moved/sub/new/late.txt"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    crate::daemon::eventually(
        "rights in a folder made later",
        crate::daemon::PATIENCE,
        || {
            a.sh_as("member", &format!("cat '{s}/Docs/moved/sub/new/late.txt'"))
                .0
        },
    );
    assert_eq!(watches(&d), 5);
}

#[test]
fn a_members_rename_storm_costs_the_service_little() {
    let mut a = Accounts::new();
    let (_dir, share, d) = watched_share(&mut a);
    let big = share.join("Docs/a");
    fs::create_dir_all(&big).unwrap();
    for i in 0..2200 {
        fs::write(big.join(format!("f{i:04}.txt")), "x").unwrap();
    }
    let s = share.display().to_string();
    crate::daemon::eventually("rights on the big folder", crate::daemon::PATIENCE, || {
        a.sh_as("member", &format!("cat '{s}/Docs/a/f2199.txt'")).0
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    // The member renames it back and forth for 5 seconds.
    let before = d.cpu_seconds();
    let start = std::time::Instant::now();
    let (ok, out) = a.sh_as(
        "member",
        &format!(
            "cd '{s}/Docs' && end=$(( $(date +%s) + 5 )); n=0; while [ $(date +%s) -lt $end ]; do mv -T a b && mv -T b a; n=$((n+2)); done; echo $n"
        ),
    );
    assert!(ok, "{out}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let used = d.cpu_seconds() - before;
    let share_of_core = used / start.elapsed().as_secs_f64();
    eprintln!(
        "{} renames: the service used {used:.2} CPU-s ({:.1}% of a core)",
        out.trim(),
        share_of_core * 100.0
    );
    assert!(
        share_of_core < 0.3,
        "{:.0}% of a core for a rename storm",
        share_of_core * 100.0
    );
    // Positive control: the folder still gets its rights after the storm.
    write(&big.join("after.txt"), b"after");
    fs::set_permissions(big.join("after.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    crate::daemon::eventually("rights after the storm", crate::daemon::PATIENCE, || {
        a.sh_as("member", &format!("cat '{s}/Docs/a/after.txt'")).0
    });
}

#[test]
fn mutated_repository_files_give_errors_never_panics_or_huge_allocations() {
    // A short run of the fuzzer (bench/fuzz.sh runs it longer).
    let out = Command::new(sharekeep_tests::bin("sk-fuzz-repo"))
        .args(["5", "42"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(" 0 panics"), "{text}");
}

#[test]
fn beyond_its_watch_budget_the_service_says_so_and_watches_no_more() {
    let mut a = Accounts::new();
    // Root and Docs, plus three more folders: a budget of 3.
    let (_dir, share, d) = {
        let (dir, share, d) = watched_share_with(&mut a, Some("max_watches = 3\n"));
        drop(d);
        for f in ["Docs/x", "Docs/y", "Docs/z"] {
            fs::create_dir_all(share.join(f)).unwrap();
        }
        let d = Daemon::start_with(dir.path(), Some("max_watches = 3\n"));
        (dir, share, d)
    };
    crate::daemon::eventually("the budget reached", crate::daemon::PATIENCE, || {
        d.log().contains("watch budget reached (3 folders)")
    });
    assert_eq!(watches(&d), 3);
    // Positive control: what is watched still gets its rights at once.
    let s = share.display().to_string();
    write(&share.join("Docs/n.txt"), b"n");
    fs::set_permissions(share.join("Docs/n.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    crate::daemon::eventually(
        "rights in a watched folder",
        crate::daemon::PATIENCE,
        || a.sh_as("member", &format!("cat '{s}/Docs/n.txt'")).0,
    );
}
