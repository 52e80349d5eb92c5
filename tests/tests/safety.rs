//! A restore never leaves its target: crafted names (`..`, `/`) are refused, and a symlink
//! planted in the target is never followed. A damaged pack is reported with the pack and the
//! file it affects.

use crate::scratch;
use sharekeep::{NodeKind, Repository, Tree};
use sharekeep_tests::{ctl, file_node, write};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

/// Writes a snapshot whose tree holds hostile names next to an honest file.
fn crafted_repo(repo_path: &Path) -> String {
    let repo = Repository::init_local(repo_path).unwrap();
    let data = b"pwned".to_vec();
    let ids = repo
        .store_blobs(&[(sharekeep::pack::BlobType::Data, &data)])
        .unwrap();
    let mut inner = Tree {
        nodes: vec![
            file_node(b"..", ids.clone(), 5),
            file_node(b"inner-ok.txt", ids.clone(), 5),
        ],
    };
    let inner_bytes = inner.encode();
    let inner_id = repo
        .store_blobs(&[(sharekeep::pack::BlobType::Tree, &inner_bytes)])
        .unwrap()[0];
    let mut dir = file_node(b"sub", Vec::new(), 0);
    dir.kind = NodeKind::Dir;
    dir.mode = 0o755;
    dir.subtree = Some(inner_id);
    let mut root = Tree {
        nodes: vec![
            file_node(b"../escaped.txt", ids.clone(), 5),
            file_node(b"/abs.txt", ids.clone(), 5),
            file_node(b"a/../../b.txt", ids.clone(), 5),
            file_node(b"ok.txt", ids, 5),
            dir,
        ],
    };
    sharekeep_tests::crafted_snapshot(&repo, &mut root)
}

#[test]
fn crafted_snapshot_with_dotdot_names_cannot_escape_the_target() {
    let tmp = scratch();
    let repo = tmp.path().join("repo");
    let id = crafted_repo(&repo);
    let target = tmp.path().join("deep/target");
    fs::create_dir_all(&target).unwrap();
    let run = ctl(
        &repo,
        &["restore", &id[..8], "--to", target.to_str().unwrap()],
    )
    .expect_code(3);
    assert!(
        run.stderr.contains("unsafe name"),
        "refusals are reported: {}",
        run.stderr
    );
    assert_eq!(fs::read(target.join("ok.txt")).unwrap(), b"pwned");
    assert_eq!(fs::read(target.join("sub/inner-ok.txt")).unwrap(), b"pwned");
    // Nothing outside the target.
    let mut outside: Vec<String> = Vec::new();
    for dir in [tmp.path().to_path_buf(), tmp.path().join("deep")] {
        for e in fs::read_dir(&dir).unwrap() {
            outside.push(e.unwrap().file_name().to_string_lossy().into_owned());
        }
    }
    outside.sort();
    assert_eq!(
        outside,
        vec!["deep", "repo", "target"],
        "entries appeared outside the target"
    );
    assert!(!Path::new("/abs.txt").exists());
    let listing: Vec<String> = fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listing.len(), 2, "only ok.txt and sub: {listing:?}");
}

#[test]
fn symlink_planted_in_the_target_is_never_followed() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    write(&src.join("Propositions/devis.docx"), b"from the snapshot");
    ctl(&repo, &["init"]).ok();
    ctl(&repo, &["backup", src.to_str().unwrap()]).ok();
    // In the live share, Propositions is replaced by a link to a folder outside it.
    let outside = tmp.path().join("outside");
    write(&outside.join("devis.docx"), b"outside, must not change");
    fs::remove_dir_all(src.join("Propositions")).unwrap();
    symlink(&outside, src.join("Propositions")).unwrap();

    let run = ctl(&repo, &["restore", "latest", "Propositions/devis.docx"]);
    // Either refused or the link is replaced by a real folder; never written through.
    assert_eq!(
        fs::read(outside.join("devis.docx")).unwrap(),
        b"outside, must not change"
    );
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        1,
        "nothing added outside"
    );
    assert_eq!(run.code, 1, "refused: {}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("Propositions"), "{}", run.stderr);

    // Restoring the whole folder replaces the planted link by the real directory (the link
    // itself is kept in the pre-restore snapshot).
    let run = ctl(&repo, &["restore", "latest", "--json"]).ok().json();
    assert!(!run["pre_restore"].is_null(), "{run}");
    assert!(fs::symlink_metadata(src.join("Propositions"))
        .unwrap()
        .is_dir());
    assert_eq!(
        fs::read(src.join("Propositions/devis.docx")).unwrap(),
        b"from the snapshot"
    );
    assert_eq!(
        fs::read(outside.join("devis.docx")).unwrap(),
        b"outside, must not change"
    );
}

#[test]
fn damaged_pack_is_reported_with_the_pack_and_the_file() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    write(&src.join("intact.txt"), b"a small file that is fine");
    write(&src.join("gros.bin"), &sharekeep_tests::noise(2_000_000, 5));
    ctl(&repo, &["init"]).ok();
    ctl(&repo, &["backup", src.to_str().unwrap()]).ok();
    // Flip a byte inside gros.bin's first blob, located by the repository's index.
    let blob = sharekeep_tests::blobs_of(&repo, "latest", "gros.bin")[0].clone();
    sharekeep_tests::flip_byte_in(&blob);
    let flipped = [blob.0.file_name().unwrap().to_string_lossy().into_owned()];
    let err = ctl(&repo, &["cat", "latest", "gros.bin"]).expect_code(1);
    assert!(
        err.stderr.contains(&flipped[0]) && err.stderr.contains("does not match"),
        "{}",
        err.stderr
    );
    let out = tmp.path().join("out");
    let run = ctl(&repo, &["restore", "latest", "--to", out.to_str().unwrap()]);
    // The damaged file is named; the tree blobs live later in the pack and are intact.
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("gros.bin") && run.stderr.contains(&flipped[0]),
        "{}",
        run.stderr
    );
}
