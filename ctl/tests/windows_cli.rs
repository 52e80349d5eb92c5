//! `sharekeepctl` on Windows (under Wine in CI): the same commands on a local repository as
//! on Linux: init, backup, snapshots, ls, restore into a new folder (content byte for byte),
//! check; a command for the service says where it looked for it (its named pipe).
#![cfg(windows)]

use std::path::Path;
use std::process::{Command, Output};

fn ctl(repo: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_sharekeepctl"))
        .arg("--repo")
        .arg(repo)
        .args(args)
        .env_remove("SHAREKEEP_KEY_FILE")
        .env_remove("SHAREKEEP_PASSWORD")
        .output()
        .unwrap();
    out
}

fn ok(repo: &Path, args: &[&str]) -> String {
    let out = ctl(repo, args);
    assert!(
        out.status.success(),
        "sharekeepctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_folder_is_backed_up_listed_and_restored_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("Commercial");
    std::fs::create_dir_all(src.join("Tarifs")).unwrap();
    std::fs::create_dir_all(src.join("Propositions")).unwrap();
    std::fs::write(src.join("Tarifs/grille.csv"), "prix;2026").unwrap();
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(src.join("Propositions/devis.docx"), &big).unwrap();
    let repo = tmp.path().join("depot");
    ok(&repo, &["init"]);
    ok(&repo, &["backup", src.to_str().unwrap()]);
    let snaps: serde_json::Value =
        serde_json::from_str(&ok(&repo, &["snapshots", "--json"])).unwrap();
    assert_eq!(snaps.as_array().map(Vec::len), Some(1), "{snaps}");
    let ls = ok(&repo, &["ls", "latest"]);
    assert!(
        ls.contains("grille.csv") && ls.contains("devis.docx"),
        "{ls}"
    );

    let out = tmp.path().join("restaure");
    ok(&repo, &["restore", "latest", "--to", out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(out.join("Tarifs/grille.csv")).unwrap(),
        b"prix;2026"
    );
    assert_eq!(
        std::fs::read(out.join("Propositions/devis.docx")).unwrap(),
        big
    );
    ok(&repo, &["check", "--read-data"]);

    // Positive control of the comparison: a second backup after a change is a new snapshot
    // whose restore differs.
    std::fs::write(src.join("Tarifs/grille.csv"), "prix;2027").unwrap();
    ok(&repo, &["backup", src.to_str().unwrap()]);
    let again = tmp.path().join("restaure2");
    ok(
        &repo,
        &["restore", "latest", "--to", again.to_str().unwrap()],
    );
    assert_eq!(
        std::fs::read(again.join("Tarifs/grille.csv")).unwrap(),
        b"prix;2027"
    );
}

#[test]
fn a_service_command_names_the_pipe_it_tried() {
    let out = Command::new(env!("CARGO_BIN_EXE_sharekeepctl"))
        .args(["--socket", r"\\.\pipe\sharekeepd-absent", "status"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r"\\.\pipe\sharekeepd-absent") && err.contains("cannot reach sharekeepd"),
        "{err}"
    );
}
