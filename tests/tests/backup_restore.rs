//! Backup then restore reproduces a folder byte for byte and metadata for metadata; backups
//! after edits read only what changed; a FIFO never blocks; unreadable files are warnings.

use crate::scratch;
use sharekeep_tests::{assert_same_tree, ctl, ctl_as, fingerprint, noise, set_mtime, sh, write};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, FileTypeExt, PermissionsExt};
use std::path::Path;

/// A folder with every kind of entry and metadata a service folder can hold.
pub(crate) fn rich_folder(src: &Path) {
    write(&src.join("Tarifs/grille 2026.csv"), b"produit;prix\nA;10\n");
    write(
        &src.join("Propositions/devis-dupont.docx"),
        &noise(300_000, 1),
    );
    write(&src.join("Propositions/brouillons/vide.txt"), b"");
    write(&src.join("archives/gros.bin"), &noise(9_000_000, 2));
    fs::create_dir_all(src.join("vide/encore plus vide")).unwrap();
    // Non-UTF-8 name.
    let odd = std::ffi::OsStr::from_bytes(b"facture-\xe9t\xe9.txt");
    write(&src.join("Tarifs").join(odd), b"latin-1 name");
    // Modes, owners, ns mtimes.
    fs::set_permissions(
        src.join("Propositions/devis-dupont.docx"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    fs::set_permissions(src.join("Propositions"), fs::Permissions::from_mode(0o2770)).unwrap();
    nix::unistd::chown(
        &src.join("Tarifs/grille 2026.csv"),
        Some(65534.into()),
        Some(65534.into()),
    )
    .unwrap();
    set_mtime(
        &src.join("Tarifs/grille 2026.csv"),
        1_700_000_000,
        123_456_789,
    );
    // Symlinks (relative, absolute, dangling): stored, never followed.
    symlink(
        "../Tarifs/grille 2026.csv",
        src.join("Propositions/lien-tarifs"),
    )
    .unwrap();
    symlink("/etc/shadow", src.join("lien-absolu")).unwrap();
    symlink("nulle-part", src.join("lien-casse")).unwrap();
    // Hard links.
    write(&src.join("commun/original.txt"), b"shared by two names");
    fs::hard_link(
        src.join("commun/original.txt"),
        src.join("commun/second-nom.txt"),
    )
    .unwrap();
    // A FIFO: must neither block nor fail the backup.
    nix::unistd::mkfifo(
        &src.join("commun/tube"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    // Sparse file: 64 MiB with 4 KiB of data in the middle.
    let f = fs::File::create(src.join("archives/disque.img")).unwrap();
    f.set_len(64 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &noise(4096, 3), 32 << 20).unwrap();
    // xattrs and POSIX ACLs (access and default).
    sh(
        "setfattr",
        &[
            "-n",
            "user.projet",
            "-v",
            "dupont",
            src.join("Propositions/devis-dupont.docx").to_str().unwrap(),
        ],
    );
    sh(
        "setfacl",
        &[
            "-m",
            "u:nobody:rw,g:nogroup:r",
            src.join("Propositions/devis-dupont.docx").to_str().unwrap(),
        ],
    );
    sh(
        "setfacl",
        &[
            "-d",
            "-m",
            "u:nobody:rwx",
            src.join("Propositions").to_str().unwrap(),
        ],
    );
    // Directory mtimes last (creating entries changed them).
    set_mtime(&src.join("vide"), 1_600_000_000, 5);
}

#[test]
fn backup_then_restore_reproduces_content_and_metadata() {
    let tmp = scratch();
    let (src, repo, out) = (
        tmp.path().join("src"),
        tmp.path().join("repo"),
        tmp.path().join("out"),
    );
    rich_folder(&src);
    ctl(&repo, &["init"]).ok();
    ctl(&repo, &["backup", src.to_str().unwrap()]).ok();
    let run = ctl(
        &repo,
        &["restore", "latest", "--to", out.to_str().unwrap(), "--json"],
    )
    .ok();
    let expected = fingerprint(&src);
    // Every entry below the root was created (the target did not exist), nothing replaced.
    let report = run.json();
    assert_eq!(
        report["created"].as_u64(),
        Some(expected.len() as u64),
        "{report}"
    );
    assert_eq!(report["replaced"], 0, "{report}");
    let got = fingerprint(&out);
    assert_same_tree(&expected, &got, "restored tree");
    // POSIX ACLs came back as ACLs, not just as bytes.
    let acl = sh(
        "getfacl",
        &[
            "-c",
            out.join("Propositions/devis-dupont.docx").to_str().unwrap(),
        ],
    )
    .stdout;
    assert!(acl.contains("user:nobody:rw-"), "ACL lost:\n{acl}");
    let dacl = sh(
        "getfacl",
        &["-c", "-d", out.join("Propositions").to_str().unwrap()],
    )
    .stdout;
    assert!(
        dacl.contains("user:nobody:rwx"),
        "default ACL lost:\n{dacl}"
    );
    // The sparse image was not inflated.
    let blocks = got["archives/disque.img"].blocks;
    assert!(
        blocks * 512 < 1 << 20,
        "sparse file takes {} KiB on disk after restore",
        blocks / 2
    );
}

#[test]
fn fifo_and_socket_in_the_tree_do_not_block_the_backup() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    write(&src.join("a.txt"), b"a");
    nix::unistd::mkfifo(
        &src.join("tube"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(src.join("prise.sock")).unwrap();
    ctl(&repo, &["init"]).ok();
    ctl(&repo, &["backup", src.to_str().unwrap()]).ok();
    let ls = ctl(&repo, &["ls", "latest", "-l"]).ok().stdout;
    assert!(
        ls.lines()
            .any(|l| l.starts_with('p') && l.ends_with("/tube")),
        "{ls}"
    );
    assert!(
        ls.lines()
            .any(|l| l.starts_with('s') && l.ends_with("/prise.sock")),
        "{ls}"
    );
    // Restoring says the socket cannot be restored (exit 3), and restores the rest.
    let out = tmp.path().join("out");
    let run = ctl(&repo, &["restore", "latest", "--to", out.to_str().unwrap()]).expect_code(3);
    assert!(
        run.stderr.contains("prise.sock") && run.stderr.contains("socket"),
        "{}",
        run.stderr
    );
    assert_eq!(fs::read(out.join("a.txt")).unwrap(), b"a");
    assert!(fs::symlink_metadata(out.join("tube"))
        .unwrap()
        .file_type()
        .is_fifo());
}

#[test]
fn incremental_backup_reads_only_changed_files() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    for i in 0..50 {
        write(
            &src.join(format!("dossier-{}/doc-{i}.bin", i % 5)),
            &noise(20_000 + i, i as u64),
        );
    }
    ctl(&repo, &["init"]).ok();
    let first = ctl(&repo, &["backup", "--json", src.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(first["summary"]["files_new"], 50);
    // Edit one file, touch nothing else.
    write(&src.join("dossier-3/doc-3.bin"), &noise(7_777, 99));
    let second = ctl(&repo, &["backup", "--json", src.to_str().unwrap()])
        .ok()
        .json();
    let s = &second["summary"];
    assert_eq!(s["files_changed"], 1, "{s}");
    assert_eq!(s["files_unchanged"], 49, "{s}");
    assert_eq!(s["bytes_read"], 7_777, "only the edited file is read: {s}");
    assert_eq!(s["dirs_unchanged"], 4, "{s}");
    assert_eq!(second["parent"], first["id"]);
    // Nothing changed at all: nothing read, nothing added.
    let third = ctl(&repo, &["backup", "--json", src.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(third["summary"]["bytes_read"], 0);
    assert_eq!(third["summary"]["blobs_added"], 0);
    assert_eq!(
        third["tree"], second["tree"],
        "same content, same root tree"
    );
}

#[test]
fn unreadable_file_is_a_warning_and_the_snapshot_is_still_written() {
    // `nobody` must reach the folder: under /tmp, not under the checkout.
    let tmp = sharekeep_tests::open_scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    write(&src.join("lisible.txt"), b"ok");
    write(&src.join("secret.txt"), b"root only");
    fs::set_permissions(src.join("secret.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    ctl(&repo, &["init"]).ok();
    // The repository and folder belong to `nobody`, who cannot read secret.txt (root's).
    sh("chown", &["-R", "nobody:nogroup", repo.to_str().unwrap()]);
    sh(
        "chown",
        &[
            "nobody:nogroup",
            src.to_str().unwrap(),
            src.join("lisible.txt").to_str().unwrap(),
        ],
    );
    let run = ctl_as(65534, 65534, &repo, &["backup", src.to_str().unwrap()]).expect_code(3);
    assert!(
        run.stderr.contains("secret.txt"),
        "the warning names the file: {}",
        run.stderr
    );
    assert!(
        run.stdout.contains("1 entries could not be read"),
        "{}",
        run.stdout
    );
    let snaps = ctl(&repo, &["snapshots", "--json"]).ok().json();
    assert_eq!(
        snaps.as_array().unwrap().len(),
        1,
        "the snapshot is written"
    );
    assert_eq!(snaps[0]["summary"]["warnings"], 1);
    let ls = ctl(&repo, &["ls", "latest"]).ok().stdout;
    assert!(
        ls.contains("lisible.txt") && !ls.contains("secret.txt"),
        "{ls}"
    );
}

#[test]
fn excludes_leave_out_matching_names_and_paths() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    for p in [
        "a/~$devis.docx",
        "a/devis.docx",
        "b/x.tmp",
        "b/Thumbs.db",
        "archives/disque.img",
        "c/archives/disque.img",
    ] {
        write(&src.join(p), b"x");
    }
    ctl(&repo, &["init"]).ok();
    let s = src.to_str().unwrap();
    ctl(
        &repo,
        &[
            "backup",
            s,
            "--exclude",
            "~$*",
            "--exclude",
            "*.tmp",
            "--exclude",
            "Thumbs.db",
            "--exclude",
            "archives/*.img",
        ],
    )
    .ok();
    let ls = ctl(&repo, &["ls", "latest"]).ok().stdout;
    let files: Vec<&str> = ls.lines().filter_map(|l| l.strip_prefix(s)).collect();
    assert!(files.contains(&"/a/devis.docx"), "{ls}");
    assert!(
        files.contains(&"/c/archives/disque.img"),
        "only the path from the root is excluded: {ls}"
    );
    for gone in ["~$devis.docx", "x.tmp", "Thumbs.db", "/archives/disque.img"] {
        assert!(
            !files
                .iter()
                .any(|f| f.ends_with(gone) && !f.starts_with("/c/")),
            "{gone} not excluded: {ls}"
        );
    }
}

#[test]
fn cat_streams_a_file_and_selectors_pick_by_time() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    write(&src.join("rapport.txt"), b"version 1");
    ctl(&repo, &["init"]).ok();
    // Snapshots dated an hour apart (as a user types times: local, to the second).
    ctl(
        &repo,
        &[
            "backup",
            src.to_str().unwrap(),
            "--time",
            "2026-03-02 09:00:00",
        ],
    )
    .ok();
    let between = "2026-03-02T09:30:00";
    write(&src.join("rapport.txt"), b"version 2");
    ctl(
        &repo,
        &[
            "backup",
            src.to_str().unwrap(),
            "--time",
            "2026-03-02 10:00:00",
        ],
    )
    .ok();
    // Just before the first: nothing.
    let err = ctl(&repo, &["cat", "@2026-03-02T08:59:59", "rapport.txt"]).expect_code(1);
    assert!(err.stderr.contains("no snapshot matches"), "{}", err.stderr);
    assert_eq!(
        ctl(&repo, &["cat", "@2026-03-02T10:00:00", "rapport.txt"])
            .ok()
            .raw,
        b"version 2"
    );
    assert_eq!(
        ctl(&repo, &["cat", "latest", "rapport.txt"]).ok().raw,
        b"version 2"
    );
    let abs = src.join("rapport.txt");
    assert_eq!(
        ctl(
            &repo,
            &["cat", &format!("@{between}"), abs.to_str().unwrap()]
        )
        .ok()
        .raw,
        b"version 1"
    );
    let err = ctl(&repo, &["cat", "@2001-01-01", "rapport.txt"]).expect_code(1);
    assert!(err.stderr.contains("no snapshot matches"), "{}", err.stderr);
    let err = ctl(&repo, &["cat", "yesterday", "rapport.txt"]).expect_code(1);
    assert!(err.stderr.contains("@TIME"), "{}", err.stderr);
}

/// A share of many small files (scans, mail exports): a hundred thousand of 1–8 KiB in a
/// thousand folders come back byte for byte, and a second backup reads none of them. (Memory
/// and speed at a million files are measured by `bench/scale.sh`.)
#[test]
fn a_hundred_thousand_small_files_back_up_and_restore_byte_for_byte() {
    let dir = scratch();
    let src = dir.path().join("src");
    let made = sharekeep_tests::dataset::create_small(&src, 100_000, 7).unwrap();
    assert_eq!(made.files, 100_000);
    let repo = dir.path().join("repo");
    ctl(&repo, &["init"]).ok();
    let first = ctl(&repo, &["backup", "--json", src.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(first["summary"]["files_new"], 100_000, "{first}");
    assert_eq!(first["summary"]["warnings"], 0, "{first}");
    let again = ctl(&repo, &["backup", "--json", src.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(again["summary"]["files_unchanged"], 100_000, "{again}");
    assert_eq!(again["summary"]["bytes_read"], 0, "{again}");
    // The unchanged tree is the same tree: nothing new stored.
    assert_eq!(again["tree"], first["tree"], "{again}");
    assert_eq!(again["summary"]["blobs_added"], 0, "{again}");
    let out = dir.path().join("out");
    ctl(&repo, &["restore", "latest", "--to", out.to_str().unwrap()]).ok();
    assert_same_tree(&fingerprint(&src), &fingerprint(&out), "100k small files");
    ctl(&repo, &["check", "--read-data"]).ok();
}

/// Large files are read on a second thread while they are written (from 16 blobs on): they
/// come back byte for byte, zero stretches as holes — including a file whose zero chunk the
/// worker learnt from an earlier file, so that the reading thread skips it.
#[test]
fn large_files_restored_through_the_read_ahead_thread_are_identical() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    // 40 MiB of noise: about 40 chunks.
    write(&src.join("big/a-noise.bin"), &noise(40 << 20, 11));
    // 16 MiB of zeros: 4 chunks (fewer than 16 blobs: written directly), the same zero chunk
    // the next file holds.
    write(&src.join("big/a0-zeros.bin"), &vec![0u8; 16 << 20]);
    // Noise, then 24 MiB of zeros, then noise: read ahead, its zero chunks already known.
    let mut mixed = noise(8 << 20, 12);
    mixed.extend(std::iter::repeat_n(0u8, 24 << 20));
    mixed.extend(noise(8 << 20, 13));
    write(&src.join("big/b-mixed.bin"), &mixed);
    let out = tmp.path().join("out");
    ctl(&repo, &["init"]).ok();
    ctl(&repo, &["backup", src.to_str().unwrap()]).ok();
    // The three files are in one folder: one worker restores them in name order.
    ctl(&repo, &["restore", "latest", "--to", out.to_str().unwrap()]).ok();
    assert_same_tree(&fingerprint(&src), &fingerprint(&out), "large files");
    let got = fingerprint(&out);
    assert!(
        got["big/b-mixed.bin"].blocks * 512 < 20 << 20,
        "the zeros of b-mixed.bin were written out: {} KiB on disk",
        got["big/b-mixed.bin"].blocks / 2
    );
}
