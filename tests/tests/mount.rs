//! `sharekeepctl mount`: a snapshot mounted read-only is the original tree (content, kinds,
//! modes, owners, mtimes, link targets), byte for byte; new snapshots appear and forgotten ones
//! go without remounting; nothing can be written; SIGTERM unmounts.

use crate::backup_restore::rich_folder;
use crate::daemon::{eventually, PATIENCE};
use crate::scratch;
use sharekeep_tests::{bin, ctl, fingerprint, write};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn mounted(at: &Path) -> bool {
    let at = fs::canonicalize(at).unwrap_or(at.to_path_buf());
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(at.to_str().unwrap()))
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn a_mounted_snapshot_is_the_original_tree_and_follows_the_repository() {
    let tmp = scratch();
    let (src, repo, mnt) = (
        tmp.path().join("src"),
        tmp.path().join("repo"),
        tmp.path().join("mnt"),
    );
    rich_folder(&src);
    fs::create_dir(&mnt).unwrap();
    ctl(&repo, &["init"]).ok();
    let s = src.to_str().unwrap();
    ctl(&repo, &["backup", s]).ok();
    let mut child = Command::new(bin("sharekeepctl"))
        .arg("--repo")
        .arg(&repo)
        .arg("mount")
        .arg(&mnt)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(self.0).status();
        }
    }
    let _guard = Unmount(&mnt);
    eventually("the mount", PATIENCE, || mnt.join("latest").exists());
    assert_eq!(entries(&mnt), ["latest", "snapshots", "tags"]);

    // Everything the tree records, as recorded (xattrs, ACLs, sparseness and hard links are
    // not shown through the mount: `restore` brings those back).
    let want = fingerprint(&src);
    let got = fingerprint(&mnt.join("latest"));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "the same entries"
    );
    for (path, w) in &want {
        let g = &got[path];
        assert_eq!(
            (w.kind, w.mode, w.uid, w.gid, &w.content),
            (g.kind, g.mode, g.uid, g.gid, &g.content),
            "{path}"
        );
        if w.kind != "dir" {
            assert_eq!(w.mtime_ns, g.mtime_ns, "{path}: mtime");
        }
    }

    // Read-only.
    let err = fs::write(mnt.join("latest/nouveau.txt"), "x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(30), "EROFS: {err}");
    let some_file = want.iter().find(|(_, f)| f.kind == "file").unwrap().0;
    let err = fs::OpenOptions::new()
        .write(true)
        .open(mnt.join("latest").join(some_file))
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(30), "EROFS: {err}");

    // A new snapshot appears, tagged; a forgotten one goes.
    write(&src.join("nouveau.txt"), b"du jour");
    ctl(&repo, &["backup", s, "--tag", "soir"]).ok();
    eventually("the new snapshot", PATIENCE, || {
        entries(&mnt.join("snapshots")).len() == 2
    });
    assert_eq!(entries(&mnt.join("tags")), ["soir"]);
    assert_eq!(entries(&mnt.join("tags/soir")).len(), 1);
    assert_eq!(
        fs::read(mnt.join("latest/nouveau.txt")).unwrap(),
        b"du jour"
    );
    let tagged = &entries(&mnt.join("tags/soir"))[0];
    assert_eq!(
        fs::read(mnt.join("tags/soir").join(tagged).join("nouveau.txt")).unwrap(),
        b"du jour"
    );
    ctl(&repo, &["forget", "--keep-last", "1"]).ok();
    eventually("the forgotten snapshot gone", PATIENCE, || {
        entries(&mnt.join("snapshots")).len() == 1
    });

    // SIGTERM unmounts and exits 0.
    assert!(mounted(&mnt));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut waited = Duration::ZERO;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(waited < PATIENCE, "the mount did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
        waited += Duration::from_millis(20);
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.contains("unmounted"), "{err}");
    assert!(!mounted(&mnt), "still mounted");
    assert!(entries(&mnt).is_empty());
}
