//! Encryption at rest and repositories on real remote stores: a single-node Garage (S3) and
//! OpenSSH's sshd (SFTP), both on loopback, driven through the real `sharekeepctl`.

use sharekeep_tests::generate_key;
use sharekeep_tests::servers::{Garage, Sshd};
use sharekeep_tests::{assert_same_tree, ctl_url, fingerprint, noise, write, Run};
use std::fs;
use std::path::{Path, PathBuf};

/// A word that must never appear in a repository's bytes once encrypted.
const MARKER: &[u8] = b"CONFIDENTIAL-SALARY-GRID-2026";

fn source(root: &Path) {
    let mut text = Vec::new();
    for i in 0..200 {
        text.extend_from_slice(MARKER);
        text.extend_from_slice(format!(" line {i}\n").as_bytes());
    }
    write(&root.join("rh/salaires.txt"), &text);
    write(&root.join("rh/notes.md"), MARKER);
    write(&root.join("ventes/big.bin"), &noise(3 << 20, 7));
    write(&root.join("ventes/zeros.bin"), &vec![0u8; 1 << 20]);
}

fn key_env(key: &Path) -> Vec<(String, String)> {
    vec![("SHAREKEEP_KEY_FILE".into(), key.display().to_string())]
}

fn with(mut a: Vec<(String, String)>, b: Vec<(String, String)>) -> Vec<(String, String)> {
    a.extend(b);
    a
}

/// Every byte of every file under `dir`.
fn all_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    walk(dir)
        .into_iter()
        .map(|p| {
            let b = fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn snapshot_ids(repo: &str, env: &[(String, String)]) -> Vec<String> {
    let r = ctl_url(repo, &["snapshots", "--json"], env).ok();
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

fn expect_err(r: Run, needle: &str) -> Run {
    assert_ne!(r.code, 0, "expected failure: {r:?}");
    assert!(
        r.stderr.contains(needle),
        "want {needle:?} in:\n{}",
        r.stderr
    );
    r
}

#[test]
fn an_encrypted_repository_hides_content_detects_tampering_and_manages_keys() {
    let tmp = crate::scratch();
    let src = tmp.path().join("src");
    source(&src);
    let repo_dir = tmp.path().join("repo");
    let repo = repo_dir.display().to_string();
    let key = tmp.path().join("key");
    generate_key(&key);
    let env = key_env(&key);

    // --encrypt needs a key; a key without --encrypt is a mistake.
    expect_err(
        ctl_url(&repo, &["init", "--encrypt"], &[]),
        "--encrypt needs the first key",
    );
    expect_err(ctl_url(&repo, &["init"], &env), "without --encrypt");
    let r = ctl_url(&repo, &["init", "--encrypt"], &env).ok();
    assert!(r.stdout.contains("created encrypted"), "{}", r.stdout);
    ctl_url(&repo, &["backup", src.to_str().unwrap()], &env).ok();
    let second = ctl_url(&repo, &["backup", src.to_str().unwrap(), "--json"], &env).ok();
    assert_eq!(
        second.json()["summary"]["bytes_stored"],
        0,
        "unchanged content deduplicates: {}",
        second.stdout
    );

    // Nothing readable in the repository's files, not even its config; an unencrypted one
    // shows the marker (the positive control).
    for (p, bytes) in all_bytes(&repo_dir) {
        assert!(!contains(&bytes, MARKER), "{} holds plaintext", p.display());
        assert!(
            !contains(&bytes, b"salaires"),
            "{} names a file",
            p.display()
        );
        if p.ends_with("config") {
            assert!(bytes.starts_with(b"SKE1"), "config sealed");
        }
    }
    let plain = tmp.path().join("plain");
    ctl_url(plain.to_str().unwrap(), &["init"], &[]).ok();
    ctl_url(
        plain.to_str().unwrap(),
        &["backup", src.to_str().unwrap()],
        &[],
    )
    .ok();
    assert!(
        all_bytes(&plain).iter().any(|(_, b)| contains(b, MARKER)),
        "an unencrypted repository stores a small file as it is (the control)"
    );

    // Restored identical with the key; refused without it or with another.
    let out = tmp.path().join("out");
    ctl_url(
        &repo,
        &["restore", "latest", "--to", out.to_str().unwrap()],
        &env,
    )
    .ok();
    assert_same_tree(&fingerprint(&src), &fingerprint(&out), "restored");
    expect_err(
        ctl_url(&repo, &["snapshots"], &[]),
        "is encrypted: give its key",
    );
    let other = tmp.path().join("other-key");
    generate_key(&other);
    expect_err(
        ctl_url(&repo, &["snapshots"], &key_env(&other)),
        "opens none of its keys",
    );
    let pass = vec![(
        "SHAREKEEP_PASSWORD".to_string(),
        "correct horse battery".to_string(),
    )];
    expect_err(
        ctl_url(&repo, &["snapshots"], &pass),
        "opens none of its keys",
    );

    // A second key (a passphrase), used alone; the key in use cannot be removed.
    let add = with(
        env.clone(),
        vec![(
            "SHAREKEEP_NEW_PASSWORD".into(),
            "correct horse battery".into(),
        )],
    );
    ctl_url(&repo, &["key", "add"], &add).ok();
    assert_eq!(snapshot_ids(&repo, &pass).len(), 2);
    let list = ctl_url(&repo, &["key", "list"], &pass).ok().stdout;
    assert_eq!(list.lines().count(), 3, "{list}");
    let current = list
        .lines()
        .find(|l| l.starts_with('*'))
        .expect("the key in use is marked");
    assert!(current.contains("passphrase"), "{list}");
    let file_key = list.lines().find(|l| l.contains("key file")).unwrap();
    let file_key_name = file_key.split_whitespace().next().unwrap();
    let in_use = current[1..].split_whitespace().next().unwrap();
    expect_err(
        ctl_url(&repo, &["key", "remove", in_use], &pass),
        "opened the repository with",
    );
    ctl_url(&repo, &["key", "remove", file_key_name], &pass).ok();
    expect_err(
        ctl_url(&repo, &["snapshots"], &env),
        "opens none of its keys",
    );
    assert_eq!(snapshot_ids(&repo, &pass).len(), 2);

    // A changed byte in a pack: found by check, never restored as other content.
    ctl_url(&repo, &["check", "--read-data"], &pass).ok();
    let pack = walk(&repo_dir.join("data"))
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = fs::read(&pack).unwrap();
    bytes[100] ^= 0x01;
    fs::write(&pack, &bytes).unwrap();
    let r = expect_err(ctl_url(&repo, &["check", "--read-data"], &pass), "damaged");
    assert!(
        r.stdout
            .contains(&pack.file_name().unwrap().to_string_lossy().to_string())
            || r.stderr
                .contains(&pack.file_name().unwrap().to_string_lossy().to_string()),
        "{r:?}"
    );
    // A changed snapshot file is refused by name.
    let snap = walk(&repo_dir.join("snapshots")).remove(0);
    let mut bytes = fs::read(&snap).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(&snap, &bytes).unwrap();
    let r = ctl_url(&repo, &["snapshots"], &pass);
    assert!(
        r.stderr.contains("tampered")
            && r.stderr
                .contains(&snap.file_name().unwrap().to_string_lossy().to_string()),
        "{r:?}"
    );
}

/// Format 2 seals each blob with its id as associated data, so a restore, which trusts a
/// seal that opens instead of hashing every byte again, still finds two blobs of one length
/// swapped inside their pack by someone holding no key; format 1 repositories (sealed
/// without it) still back up, restore and check, and their id check finds the same swap.
#[test]
fn each_blob_opens_only_as_itself_and_a_format_1_repository_still_reads() {
    let tmp = crate::scratch();
    let src = tmp.path().join("src");
    // Incompressible and under the smallest chunk: one blob each, sealed to one length.
    let (a, b) = (noise(100_000, 1), noise(100_000, 2));
    write(&src.join("a.bin"), &a);
    write(&src.join("b.bin"), &b);
    write(&src.join("c.txt"), b"untouched");
    let key = tmp.path().join("key");
    generate_key(&key);
    let env = key_env(&key);
    let secret = sharekeep::Secret::key_file(&key).unwrap();
    for format in [1u32, 2] {
        let dir = tmp.path().join(format!("repo{format}"));
        let url = dir.display().to_string();
        let backend = raw_backend(&url, Default::default(), &tmp.path().join("c"));
        if format == 1 {
            let config = sharekeep::RepoConfig {
                version: 1,
                ..sharekeep::RepoConfig::new()
            };
            sharekeep::Repository::init_with(backend.clone(), config, Some(&secret)).unwrap();
        } else {
            ctl_url(&url, &["init", "--encrypt"], &env).ok();
        }
        ctl_url(&url, &["backup", src.to_str().unwrap()], &env).ok();
        let out = tmp.path().join(format!("out{format}"));
        ctl_url(
            &url,
            &["restore", "latest", "--to", out.to_str().unwrap()],
            &env,
        )
        .ok();
        assert_same_tree(&fingerprint(&src), &fingerprint(&out), "format {format}");
        ctl_url(&url, &["check", "--read-data"], &env).ok();

        let repo = sharekeep::Repository::open_keyed(
            backend.clone(),
            sharekeep::IndexScope::All,
            Some(&secret),
            None,
        )
        .unwrap();
        assert_eq!(repo.config().version, format);
        let (pa, ea) = repo.index().get(&repo.blob_id(&a)).unwrap();
        let (pb, eb) = repo.index().get(&repo.blob_id(&b)).unwrap();
        assert_eq!((pa, ea.length), (pb, eb.length), "one pack, one length");
        use sharekeep::backend::FileKind;
        let name = pa.to_hex();
        let mut bytes = backend.read(FileKind::Pack, &name).unwrap();
        let (ra, rb) = (ea.offset as usize, eb.offset as usize);
        let len = ea.length as usize;
        let blob_a = bytes[ra..ra + len].to_vec();
        bytes.copy_within(rb..rb + len, ra);
        bytes[rb..rb + len].copy_from_slice(&blob_a);
        backend.remove(FileKind::Pack, &name).unwrap();
        backend.write(FileKind::Pack, &name, &bytes).unwrap();

        let out = tmp.path().join(format!("swapped{format}"));
        let r = ctl_url(
            &url,
            &["restore", "latest", "--to", out.to_str().unwrap()],
            &env,
        )
        .expect_code(3);
        assert!(
            r.stderr.contains("a.bin") && r.stderr.contains("b.bin"),
            "format {format}: {}",
            r.stderr
        );
        assert!(
            !out.join("a.bin").exists() && !out.join("b.bin").exists(),
            "format {format}: nothing of a swapped blob is restored"
        );
        assert_eq!(fs::read(out.join("c.txt")).unwrap(), b"untouched");
        expect_err(ctl_url(&url, &["check", "--read-data"], &env), "damaged");
    }
}

#[test]
fn backup_restore_check_forget_prune_on_garage() {
    let tmp = crate::scratch();
    let garage = Garage::start(&tmp.path().join("garage"), "sharekeep");
    let src = tmp.path().join("src");
    source(&src);
    let key = tmp.path().join("key");
    generate_key(&key);
    let url = garage.url("sales");
    let env = with(garage.env(), key_env(&key));
    let cache = vec![(
        "XDG_CACHE_HOME".to_string(),
        tmp.path().join("cache").display().to_string(),
    )];
    let env = with(env, cache);

    // A remote repository must be encrypted; without credentials, a clear error.
    expect_err(ctl_url(&url, &["init"], &garage.env()), "must be encrypted");
    expect_err(
        ctl_url(&url, &["init", "--encrypt"], &key_env(&key)),
        "no S3 credentials",
    );
    ctl_url(&url, &["init", "--encrypt"], &env).ok();
    expect_err(
        ctl_url(&url, &["init", "--encrypt"], &env),
        "already exists",
    );

    ctl_url(&url, &["backup", src.to_str().unwrap()], &env).ok();
    // Packs (named by the hash of their bytes) are sent without being looked up first.
    let log = fs::read_to_string(&garage.log).unwrap();
    assert!(log.contains(" PUT /sharekeep/sales/data/"), "packs sent");
    assert!(
        !log.contains(" HEAD /sharekeep/sales/data/"),
        "a pack looked up before being sent"
    );
    write(&src.join("rh/notes.md"), b"changed");
    ctl_url(&url, &["backup", src.to_str().unwrap()], &env).ok();
    let ids = snapshot_ids(&url, &env);
    assert_eq!(ids.len(), 2);
    let ls = ctl_url(&url, &["ls", "latest", "rh"], &env).ok().stdout;
    assert!(ls.contains("salaires.txt"), "{ls}");
    // Trees are kept in the local cache as they are written: the second backup compared with
    // the first, and the listing, read no pack from the store.
    let pack_gets = || {
        fs::read_to_string(&garage.log)
            .unwrap_or_default()
            .matches(" GET /sharekeep/sales/data/")
            .count()
    };
    assert_eq!(pack_gets(), 0, "trees read from the store");
    // Without the cache (another machine), the first listing reads them, the next does not.
    for e in fs::read_dir(tmp.path().join("cache/sharekeep")).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("trees-")
        {
            fs::remove_dir_all(p).unwrap();
        }
    }
    let again = ctl_url(&url, &["ls", "latest", "rh"], &env).ok().stdout;
    assert_eq!(again, ls);
    let before = pack_gets();
    assert!(before > 0, "the listing read trees from the store");
    let again = ctl_url(&url, &["ls", "latest", "rh"], &env).ok().stdout;
    assert_eq!(again, ls);
    assert_eq!(pack_gets(), before, "the second listing read packs again");
    let versions = ctl_url(&url, &["versions", "rh/notes.md"], &env)
        .ok()
        .stdout;
    assert!(
        versions.lines().count() >= 2,
        "two versions of notes.md: {versions}"
    );
    let out = tmp.path().join("out");
    ctl_url(
        &url,
        &["restore", "latest", "--to", out.to_str().unwrap()],
        &env,
    )
    .ok();
    assert_same_tree(&fingerprint(&src), &fingerprint(&out), "restored from S3");
    ctl_url(&url, &["check", "--read-data"], &env).ok();
    let r = ctl_url(&url, &["forget", "--keep-last", "1", "--prune"], &env).ok();
    assert!(r.stdout.contains("remove"), "{}", r.stdout);
    assert_eq!(snapshot_ids(&url, &env).len(), 1);
    ctl_url(&url, &["check", "--read-data"], &env).ok();

    // A tampered object (written through the S3 API by someone holding the bucket's
    // credentials, not the key) is detected.
    let (pack, _) = tamper_largest_pack(&url, &garage, &tmp.path().join("raw-cache"), |_| 64);
    let r = expect_err(ctl_url(&url, &["check", "--read-data"], &env), "damaged");
    assert!(format!("{}{}", r.stdout, r.stderr).contains(&pack), "{r:?}");
    // A restore names the file of the damaged blob, leaves nothing of it, and restores every
    // other file whole.
    let out = tmp.path().join("out-damaged");
    let r = ctl_url(
        &url,
        &["restore", "latest", "--to", out.to_str().unwrap()],
        &env,
    )
    .expect_code(3);
    assert!(r.stderr.contains("does not match"), "{}", r.stderr);
    let files = [
        "rh/salaires.txt",
        "rh/notes.md",
        "ventes/big.bin",
        "ventes/zeros.bin",
    ];
    let damaged: Vec<&str> = files
        .iter()
        .copied()
        .filter(|f| r.stderr.contains(f))
        .collect();
    assert!(!damaged.is_empty(), "a damaged file is named: {}", r.stderr);
    assert!(damaged.len() < files.len(), "{}", r.stderr);
    for f in files {
        if damaged.contains(&f) {
            assert!(
                !out.join(f).exists(),
                "{f}: nothing of a damaged file is left"
            );
        } else {
            assert_eq!(
                fs::read(out.join(f)).unwrap(),
                fs::read(src.join(f)).unwrap(),
                "{f}"
            );
        }
    }
}

#[test]
fn a_backup_cut_off_by_the_store_resumes_and_checks_clean() {
    let tmp = crate::scratch();
    let mut garage = Garage::start(&tmp.path().join("garage"), "sharekeep");
    let src = tmp.path().join("src");
    for i in 0..12 {
        write(&src.join(format!("f{i}.bin")), &noise(16 << 20, i));
    }
    let key = tmp.path().join("key");
    generate_key(&key);
    let url = garage.url("cut");
    let env = with(garage.env(), key_env(&key));
    ctl_url(&url, &["init", "--encrypt"], &env).ok();

    // The backup runs; once enough packs are stored, the store dies.
    let mut cmd = std::process::Command::new(sharekeep_tests::bin("sharekeepctl"));
    cmd.args(["--repo", &url, "backup", src.to_str().unwrap()])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let puts = |g: &Garage| {
        fs::read_to_string(&g.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" PUT /sharekeep/cut/data/"))
            .count()
    };
    let child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    // Six packs sent: none listed in an index file yet (to a remote store, one every 64
    // packs), but each noted in the local journal once stored.
    while puts(&garage) < 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "the backup never stored packs"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    garage.kill();
    let t = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    eprintln!("the cut backup failed after {:?}", t.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(0),
        "the backup cannot succeed: {stderr}"
    );
    assert!(
        stderr.contains("127.0.0.1"),
        "the error names the store: {stderr}"
    );

    garage.restart();
    let t = std::time::Instant::now();
    let r = ctl_url(&url, &["backup", src.to_str().unwrap(), "--json"], &env).ok();
    eprintln!("the next backup took {:?}", t.elapsed());
    let stored = r.json()["summary"]["bytes_added"].as_u64().unwrap();
    let total: u64 = 12 * (16 << 20);
    assert!(
        stored <= total - 4 * (16 << 20),
        "what the cut backup stored (at least 4 of its packs) is not sent again: {stored} of {total}"
    );
    ctl_url(&url, &["check", "--read-data"], &env).ok();
    let out = tmp.path().join("out");
    ctl_url(
        &url,
        &["restore", "latest", "--to", out.to_str().unwrap()],
        &env,
    )
    .ok();
    assert_same_tree(
        &fingerprint(&src),
        &fingerprint(&out),
        "restored after the cut",
    );

    // A restore cut off by the store: its requests, asked again once the store is back, go
    // on from where their answers stopped, and every file comes back whole.
    let gets = |g: &Garage| {
        fs::read_to_string(&g.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" GET /sharekeep/cut/data/"))
            .count()
    };
    let before = gets(&garage);
    let out2 = tmp.path().join("out2");
    let mut cmd = std::process::Command::new(sharekeep_tests::bin("sharekeepctl"));
    cmd.args([
        "--repo",
        &url,
        "restore",
        "latest",
        "--to",
        out2.to_str().unwrap(),
    ])
    .envs(env.iter().map(|(k, v)| (k, v)))
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while gets(&garage) == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the restore never asked for a pack"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    garage.kill();
    assert!(
        child.try_wait().unwrap().is_none(),
        "the restore was over before the store died"
    );
    let cut_at = gets(&garage);
    garage.restart();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "the restore goes on once the store is back: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        gets(&garage) > cut_at,
        "packs were asked for again after the restart"
    );
    assert_same_tree(
        &fingerprint(&src),
        &fingerprint(&out2),
        "restored across the store's restart",
    );
}

#[test]
fn a_remote_restore_goes_batch_by_batch_and_leaves_nothing_of_a_damaged_file() {
    let tmp = crate::scratch();
    let garage = Garage::start(&tmp.path().join("garage"), "sharekeep");
    let src = tmp.path().join("src");
    // 91 files in 3 folders: small ones, empty ones, a large one, and the same content in
    // each folder (one blob written to files of different batches).
    let shared = noise(300_000, 99);
    for d in 0..3 {
        for i in 0..28 {
            write(
                &src.join(format!("d{d}/f{i}.txt")),
                &noise(1000 + 37 * i, (d * 100 + i) as u64),
            );
        }
        write(&src.join(format!("d{d}/empty")), b"");
        write(&src.join(format!("d{d}/shared.bin")), &shared);
    }
    write(&src.join("d1/large.bin"), &noise(6 << 20, 5));
    let key = tmp.path().join("key");
    generate_key(&key);
    let url = garage.url("batches");
    let env = with(garage.env(), key_env(&key));
    ctl_url(&url, &["init", "--encrypt"], &env).ok();
    ctl_url(&url, &["backup", src.to_str().unwrap()], &env).ok();
    // 100 descriptors, fewer than the 88 files with content, their 3 folders and what the
    // process holds besides: batches of 16 (the least), each file closed with its batch.
    let out = tmp.path().join("out");
    let r = std::process::Command::new("prlimit")
        .arg("--nofile=100:100")
        .arg(sharekeep_tests::bin("sharekeepctl"))
        .args([
            "--repo",
            &url,
            "restore",
            "latest",
            "--to",
            out.to_str().unwrap(),
        ])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("prlimit (util-linux)");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_same_tree(
        &fingerprint(&src),
        &fingerprint(&out),
        "restored in batches",
    );

    // A blob damaged in the middle of a file of several: the blobs before it were written
    // already; the file is named, nothing of it is left, the other file restores whole.
    let src2 = tmp.path().join("src2");
    write(&src2.join("only/large.bin"), &noise(6 << 20, 5));
    write(&src2.join("only/note.txt"), b"a note");
    let url2 = garage.url("mid");
    ctl_url(&url2, &["init", "--encrypt"], &env).ok();
    ctl_url(&url2, &["backup", src2.to_str().unwrap()], &env).ok();
    let (_, size) = tamper_largest_pack(&url2, &garage, &tmp.path().join("raw-cache"), |size| {
        (size / 2) as usize
    });
    assert!(size > 6 << 20, "large.bin's pack: {size}");
    let out2 = tmp.path().join("out2");
    let r = ctl_url(
        &url2,
        &["restore", "latest", "--to", out2.to_str().unwrap()],
        &env,
    )
    .expect_code(3);
    assert!(
        r.stderr.contains("large.bin") && r.stderr.contains("does not match"),
        "{}",
        r.stderr
    );
    assert!(
        !out2.join("only/large.bin").exists(),
        "nothing of the damaged file is left"
    );
    assert_eq!(fs::read(out2.join("only/note.txt")).unwrap(), b"a note");
}

#[test]
fn backup_restore_check_forget_prune_over_sftp() {
    let tmp = crate::scratch();
    let sshd = Sshd::start(&tmp.path().join("sshd"));
    let src = tmp.path().join("src");
    source(&src);
    let key = tmp.path().join("key");
    generate_key(&key);
    let store = tmp.path().join("nas/backups/sales");
    let url = sshd.url(&store);
    let env = with(sshd.env(), key_env(&key));

    // A host whose key is not known is refused by default (the positive control follows).
    let strict = url.replace("known_hosts=accept", "known_hosts=strict");
    let r = ctl_url(&strict, &["init", "--encrypt"], &env);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(!store.join("config").exists());

    ctl_url(&url, &["init", "--encrypt"], &env).ok();
    assert!(
        store.join("config").exists(),
        "the repository is on the server's disk"
    );
    ctl_url(&url, &["backup", src.to_str().unwrap()], &env).ok();
    write(&src.join("ventes/new.txt"), b"new");
    ctl_url(&url, &["backup", src.to_str().unwrap()], &env).ok();
    assert_eq!(snapshot_ids(&url, &env).len(), 2);
    for (p, bytes) in all_bytes(&store) {
        assert!(!contains(&bytes, MARKER), "{} holds plaintext", p.display());
    }
    assert!(
        walk(&store)
            .iter()
            .all(|p| !p.starts_with(store.join("tmp"))),
        "no upload left half-done"
    );
    let out = tmp.path().join("out");
    ctl_url(
        &url,
        &["restore", "latest", "--to", out.to_str().unwrap()],
        &env,
    )
    .ok();
    assert_same_tree(&fingerprint(&src), &fingerprint(&out), "restored over SFTP");
    ctl_url(&url, &["check", "--read-data"], &env).ok();
    ctl_url(&url, &["forget", "--keep-last", "1", "--prune"], &env).ok();
    assert_eq!(snapshot_ids(&url, &env).len(), 1);
    ctl_url(&url, &["check", "--read-data"], &env).ok();
}

fn raw_backend(
    url: &str,
    creds: sharekeep::Credentials,
    cache: &Path,
) -> std::sync::Arc<dyn sharekeep::backend::Backend> {
    let location: sharekeep::Location = url.parse().unwrap();
    let access = sharekeep::Access {
        secret: None,
        credentials: creds,
        cache_root: Some(cache.to_path_buf()),
    };
    sharekeep::backend::open_backend(&location, &access).unwrap()
}

fn garage_credentials(garage: &Garage) -> sharekeep::Credentials {
    sharekeep::Credentials {
        s3_access_key_id: Some(garage.key_id.clone()),
        s3_secret_access_key: Some(garage.secret.clone()),
        ..Default::default()
    }
}

/// Flips one bit of the largest pack of the repository at `url`, at the byte `at` picks
/// from the pack's size, through the S3 API (as someone holding the bucket's credentials but
/// not the key would). The pack's name and size.
fn tamper_largest_pack(
    url: &str,
    garage: &Garage,
    cache: &Path,
    at: impl FnOnce(u64) -> usize,
) -> (String, u64) {
    use sharekeep::backend::FileKind;
    let raw = raw_backend(url, garage_credentials(garage), cache);
    let (pack, size) = raw
        .list_sizes(FileKind::Pack)
        .unwrap()
        .into_iter()
        .max_by_key(|(_, s)| *s)
        .unwrap();
    let mut bytes = raw.read(FileKind::Pack, &pack).unwrap();
    bytes[at(size)] ^= 0x80;
    raw.remove(FileKind::Pack, &pack).unwrap();
    raw.write(FileKind::Pack, &pack, &bytes).unwrap();
    (pack, size)
}

/// Starts the helper writing a large pack; returns it once it says the upload begins.
fn start_upload(url: &str, env: &[(String, String)], cache: &Path) -> std::process::Child {
    use std::io::BufRead;
    let mut child = std::process::Command::new(sharekeep_tests::bin("sk-backend-write"))
        .args([url, "256"])
        .arg(cache)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "uploading");
    child
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not after 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn garage_passes_the_backend_conformance_suite() {
    let tmp = crate::scratch();
    let garage = Garage::start(&tmp.path().join("garage"), "conformance");
    let creds = garage_credentials(&garage);
    let b = raw_backend(&garage.url("suite"), creds.clone(), &tmp.path().join("c1"));
    sharekeep::backend::conformance::run(b, sharekeep::backend::conformance::LISTING).unwrap();

    // Killed mid-upload: nothing visible under the name, before or after the store restarts.
    let url = garage.url("crash");
    let mut child = start_upload(&url, &garage.env(), &tmp.path().join("c2"));
    wait_until("the upload reaches the store", || {
        fs::read_to_string(&garage.log)
            .unwrap_or_default()
            .contains("PUT /conformance/crash/data/c0/")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let b = raw_backend(&url, creds, &tmp.path().join("c3"));
    sharekeep::backend::conformance::check_after_crash(b.as_ref()).unwrap();
}

#[test]
fn sftp_passes_the_backend_conformance_suite() {
    let tmp = crate::scratch();
    let sshd = Sshd::start(&tmp.path().join("sshd"));
    let creds = sharekeep::Credentials {
        ssh_identity: Some(sshd.identity.clone()),
        ..Default::default()
    };
    // SFTP costs several round trips a file: the listing check writes 2,000.
    let b = raw_backend(
        &sshd.url(&tmp.path().join("suite")),
        creds.clone(),
        &tmp.path().join("c1"),
    );
    sharekeep::backend::conformance::run(b, 2_000).unwrap();

    let store = tmp.path().join("crash");
    let url = sshd.url(&store);
    let mut child = start_upload(&url, &sshd.env(), &tmp.path().join("c2"));
    wait_until("the upload reaches the server", || {
        fs::read_dir(store.join("tmp"))
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.metadata().is_ok_and(|m| m.len() > 0))
            })
            .unwrap_or(false)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let b = raw_backend(&url, creds, &tmp.path().join("c3"));
    sharekeep::backend::conformance::check_after_crash(b.as_ref()).unwrap();
    assert!(
        !store
            .join("data/c0")
            .join(sharekeep::backend::conformance::CRASH_NAME)
            .exists(),
        "nothing under the final name on the server's disk"
    );
}

fn copy_report(r: &Run) -> serde_json::Value {
    r.json()
}

#[test]
fn snapshots_copied_to_garage_send_only_what_is_missing_and_restore_identical() {
    let tmp = crate::scratch();
    let garage = Garage::start(&tmp.path().join("garage"), "offsite");
    let src = tmp.path().join("src");
    source(&src);
    let local = tmp.path().join("local").display().to_string();
    ctl_url(&local, &["init"], &[]).ok();
    ctl_url(&local, &["backup", src.to_str().unwrap()], &[]).ok();
    let key = tmp.path().join("key");
    generate_key(&key);
    let url = garage.url("copy");
    let env = with(
        garage.env(),
        vec![("SHAREKEEP_TO_KEY_FILE".into(), key.display().to_string())],
    );

    // Unencrypted local → encrypted S3 (other content ids): everything sent once.
    expect_err(ctl_url(&local, &["copy", "--to", &url], &env), "--init");
    let first = ctl_url(&local, &["copy", "--to", &url, "--init", "--json"], &env).ok();
    let first = copy_report(&first);
    assert_eq!(first["copied"].as_array().unwrap().len(), 1, "{first}");
    let sent = first["bytes_sent"].as_u64().unwrap();
    assert!(sent > 4 << 20, "{first}");
    let again = copy_report(&ctl_url(&local, &["copy", "--to", &url, "--json"], &env).ok());
    assert_eq!(
        (again["already"].as_u64(), again["blobs_sent"].as_u64()),
        (Some(1), Some(0)),
        "{again}"
    );

    // A day's change: only its blobs travel.
    write(&src.join("rh/notes.md"), b"one changed file");
    ctl_url(&local, &["backup", src.to_str().unwrap()], &[]).ok();
    let day = copy_report(&ctl_url(&local, &["copy", "--to", &url, "--json"], &env).ok());
    assert_eq!(day["copied"].as_array().unwrap().len(), 1, "{day}");
    assert!(day["bytes_sent"].as_u64().unwrap() < 100_000, "{day}");

    // Restored from S3, identical to the source; check --read-data clean there.
    let s3 = with(garage.env(), key_env(&key));
    ctl_url(&url, &["check", "--read-data"], &s3).ok();
    let out = tmp.path().join("out");
    ctl_url(
        &url,
        &["restore", "latest", "--to", out.to_str().unwrap()],
        &s3,
    )
    .ok();
    assert_same_tree(
        &fingerprint(&src),
        &fingerprint(&out),
        "restored from the copy",
    );

    // S3 → a third repository under another key (re-encrypted); copies of copies keep
    // their origin, so copying the same snapshots again sends nothing.
    let key2 = tmp.path().join("key2");
    generate_key(&key2);
    let third = tmp.path().join("third").display().to_string();
    let env3 = with(
        s3.clone(),
        vec![("SHAREKEEP_TO_KEY_FILE".into(), key2.display().to_string())],
    );
    let r = copy_report(&ctl_url(&url, &["copy", "--to", &third, "--init", "--json"], &env3).ok());
    assert_eq!(r["copied"].as_array().unwrap().len(), 2, "{r}");
    let r = copy_report(&ctl_url(&url, &["copy", "--to", &third, "--json"], &env3).ok());
    assert_eq!(r["already"].as_u64(), Some(2), "{r}");
    let out3 = tmp.path().join("out3");
    ctl_url(
        &third,
        &["restore", "latest", "--to", out3.to_str().unwrap()],
        &key_env(&key2),
    )
    .ok();
    assert_same_tree(
        &fingerprint(&src),
        &fingerprint(&out3),
        "restored from the copy of the copy",
    );
    expect_err(
        ctl_url(&third, &["snapshots"], &key_env(&key)),
        "opens none of its keys",
    );

    // Unencrypted to unencrypted keeps ids: the second copy reads nothing it has.
    let plain2 = tmp.path().join("plain2").display().to_string();
    ctl_url(&local, &["copy", "--to", &plain2, "--init"], &[]).ok();
    let out4 = tmp.path().join("out4");
    ctl_url(
        &plain2,
        &["restore", "latest", "--to", out4.to_str().unwrap()],
        &[],
    )
    .ok();
    assert_same_tree(
        &fingerprint(&src),
        &fingerprint(&out4),
        "restored from the plain copy",
    );
}
