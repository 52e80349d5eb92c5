//! The history of a file: `versions` after several overwrites, `diff` between snapshots, and
//! an in-place restore that keeps what it replaces.

use crate::scratch;
use sharekeep_tests::{ctl, noise, write};
use std::fs;

#[test]
fn versions_lists_each_distinct_content_newest_first() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    let file = src.join("Propositions/devis.docx");
    ctl(&repo, &["init"]).ok();
    let s = src.to_str().unwrap();
    for (i, content) in [&b"v1"[..], b"v2 longer", b"v2 longer", b"v3 final!"]
        .iter()
        .enumerate()
    {
        write(&file, content);
        write(&src.join(format!("autre-{i}.txt")), b"noise");
        ctl(&repo, &["backup", s]).ok();
    }
    let v = ctl(&repo, &["versions", "Propositions/devis.docx", "--json"])
        .ok()
        .json();
    let v = v.as_array().unwrap();
    assert_eq!(v.len(), 3, "three distinct contents: {v:?}");
    let sizes: Vec<u64> = v.iter().map(|x| x["size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, vec![9, 9, 2], "newest first");
    assert_eq!(v[1]["snapshots"], 2, "v2 was in two snapshots");
    assert_ne!(v[1]["first"]["id"], v[1]["last"]["id"]);
    // The absolute original path works too, and the human table names the snapshots.
    let table = ctl(&repo, &["versions", file.to_str().unwrap()])
        .ok()
        .stdout;
    assert!(table.contains("3 version(s)"), "{table}");
    // Each version can be read back from the snapshot `versions` names.
    let first_id = v[2]["first"]["id"].as_str().unwrap();
    assert_eq!(
        ctl(&repo, &["cat", &first_id[..8], "Propositions/devis.docx"])
            .ok()
            .raw,
        b"v1"
    );
    // A directory is not a file.
    let err = ctl(&repo, &["versions", "Propositions"]).expect_code(1);
    assert!(err.stderr.contains("directory"), "{}", err.stderr);
}

#[test]
fn diff_reports_added_removed_modified_and_metadata_changes() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    write(&src.join("garde.txt"), b"same");
    write(&src.join("change.txt"), b"before");
    write(&src.join("supprime/x.txt"), b"x");
    write(&src.join("droits.txt"), b"same");
    ctl(&repo, &["init"]).ok();
    let s = src.to_str().unwrap();
    let a = ctl(&repo, &["backup", "--json", s]).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    write(&src.join("change.txt"), b"after!");
    fs::remove_dir_all(src.join("supprime")).unwrap();
    write(&src.join("nouveau/y.txt"), b"y");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(src.join("droits.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    let b = ctl(&repo, &["backup", "--json", s]).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let changes = ctl(&repo, &["diff", &a[..8], &b[..8], "--json"])
        .ok()
        .json();
    let got: Vec<(String, String)> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().to_string(),
                c["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("modified", "change.txt"),
        ("metadata", "droits.txt"),
        ("added", "nouveau"),
        ("added", "nouveau/y.txt"),
        ("removed", "supprime"),
        ("removed", "supprime/x.txt"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(k, p)| (k.to_string(), p.to_string()))
        .collect();
    assert_eq!(got, want);
    let text = ctl(&repo, &["diff", &a[..8], &b[..8]]).ok().stdout;
    assert!(
        text.contains("M    change.txt") && text.contains("+    nouveau/"),
        "{text}"
    );
}

#[test]
fn in_place_restore_keeps_the_replaced_content_in_a_pre_restore_snapshot() {
    let tmp = scratch();
    let (src, repo) = (tmp.path().join("src"), tmp.path().join("repo"));
    let file = src.join("Propositions/devis.docx");
    let good = noise(200_000, 7);
    write(&file, &good);
    write(&src.join("Propositions/autre.docx"), b"untouched");
    ctl(&repo, &["init"]).ok();
    let s = src.to_str().unwrap();
    let snap = ctl(&repo, &["backup", "--json", s]).ok().json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A member overwrites the proposal by mistake.
    write(&file, b"oops, overwritten");
    write(
        &src.join("Propositions/nouveau.docx"),
        b"created after the backup",
    );

    // The dry run says what would happen and changes nothing.
    let dry = ctl(
        &repo,
        &[
            "restore",
            &snap[..8],
            "Propositions/devis.docx",
            "--dry-run",
        ],
    )
    .ok()
    .stdout;
    assert!(
        dry.contains("replace") && dry.contains("Propositions/devis.docx"),
        "{dry}"
    );
    assert_eq!(fs::read(&file).unwrap(), b"oops, overwritten");

    let run = ctl(
        &repo,
        &["restore", &snap[..8], "Propositions/devis.docx", "--json"],
    )
    .ok()
    .json();
    assert_eq!(run["replaced"], 1, "{run}");
    assert_eq!(fs::read(&file).unwrap(), good, "the good version is back");
    assert_eq!(
        fs::read(src.join("Propositions/nouveau.docx")).unwrap(),
        b"created after the backup"
    );
    // What was replaced is in a pre-restore snapshot, listed by `versions` and restorable.
    let pre = run["pre_restore"]
        .as_str()
        .expect("a pre-restore snapshot")
        .to_string();
    assert_eq!(
        ctl(&repo, &["cat", &pre[..8], "Propositions/devis.docx"])
            .ok()
            .raw,
        b"oops, overwritten"
    );
    let v = ctl(&repo, &["versions", "Propositions/devis.docx", "--json"])
        .ok()
        .json();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|x| x["last"]["tags"][0] == "pre-restore"),
        "{v}"
    );
    // Restoring again changes nothing (already identical): no new pre-restore snapshot.
    let again = ctl(
        &repo,
        &["restore", &snap[..8], "Propositions/devis.docx", "--json"],
    )
    .ok()
    .json();
    assert_eq!(again["replaced"], 0);
    assert!(again["pre_restore"].is_null());
    // And the overwritten content can be brought back elsewhere.
    let elsewhere = tmp.path().join("elsewhere");
    ctl(
        &repo,
        &[
            "restore",
            &pre[..8],
            "Propositions/devis.docx",
            "--to",
            elsewhere.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(
        fs::read(elsewhere.join("Propositions/devis.docx")).unwrap(),
        b"oops, overwritten"
    );
}

#[test]
fn overwrite_never_leaves_existing_files() {
    let tmp = scratch();
    let (src, repo, out) = (
        tmp.path().join("src"),
        tmp.path().join("repo"),
        tmp.path().join("out"),
    );
    write(&src.join("a.txt"), b"from the snapshot");
    write(&src.join("b.txt"), b"b");
    ctl(&repo, &["init"]).ok();
    ctl(&repo, &["backup", src.to_str().unwrap()]).ok();
    write(&out.join("a.txt"), b"already here");
    let run = ctl(
        &repo,
        &[
            "restore",
            "latest",
            "--to",
            out.to_str().unwrap(),
            "--overwrite",
            "never",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(run["created"], 1);
    assert_eq!(fs::read(out.join("a.txt")).unwrap(), b"already here");
    assert_eq!(fs::read(out.join("b.txt")).unwrap(), b"b");
}
