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
    use sharekeep::{Repository, Snapshot, Tree};
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
            crate::safety::file_node(b"bomb.bin", ids, 1 << 30),
            crate::safety::file_node(b"ok.txt", honest, 2),
        ],
    };
    let bytes = tree.encode();
    let root = repo.store_blobs(&[(BlobType::Tree, &bytes)]).unwrap()[0];
    let mut snap = Snapshot {
        id: Default::default(),
        time: sharekeep::chrono::Local::now(),
        host: "attacker".into(),
        username: "x".into(),
        paths: vec!["/nonexistent/share".into()],
        tags: vec![],
        tree: root,
        parent: None,
        summary: Default::default(),
        program_version: "crafted".into(),
    };
    let id = repo.save_snapshot(&mut snap).unwrap().to_hex();
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
