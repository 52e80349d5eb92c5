//! `sharekeepctl` on Windows (under Wine in CI): the same commands on a local repository as
//! on Linux: init, backup, snapshots, ls, restore into a new folder (content byte for byte),
//! check; a command for the service says where it looked for it (its named pipe); `share`
//! compares, exports and removes the SMB share of a policy (under Wine, which has no server
//! service, the export is refused naming the call; on Windows it is added, then left alone).
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

/// Runs sharekeepctl without a repository: (exit code, stdout, stderr).
fn run(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sharekeepctl"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Wine translates a Windows path to its Unix one; Windows has no `winepath`.
fn under_wine() -> bool {
    Command::new("winepath")
        .arg("-u")
        .arg(r"C:\")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_policy_s_smb_share_is_compared_exported_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().join("Commercial");
    std::fs::create_dir_all(&share).unwrap();
    let me = std::env::var("USERNAME").unwrap();
    let file = tmp.path().join("commercial.toml");
    let body = format!(
        "[share]\nname = \"commercial\"\npath = '{}'\nowner = '{me}'\ngroup = \"@Users\"\n\n\
         [access]\nread = [\"@Users\"]\nwrite = ['{me}']\n",
        share.display()
    );
    let os = |s: &str| std::ffi::OsString::from(s);
    let (f, name) = (file.clone().into_os_string(), "SkCtlTest");

    // Positive control: a policy that exports nothing has nothing to compare.
    std::fs::write(&file, &body).unwrap();
    let (code, out, err) = run(&[&os("share"), &os("check"), &f]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("no policy exports a share"), "{out}");

    std::fs::write(
        &file,
        format!("{body}\n[samba]\nexport = true\nname = \"{name}\"\n"),
    )
    .unwrap();
    let place = format!("share {name} ({})", share.display());
    // Not there yet: `check` says so with exit 2, a dry run says what it would do.
    let (code, out, err) = run(&[&os("share"), &os("check"), &f]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains(&format!("{place}: would be added")), "{out}");
    let (code, out, err) = run(&[&os("share"), &os("export"), &os("--dry-run"), &f]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("{place}: would be added")), "{out}");

    let (code, out, err) = run(&[&os("share"), &os("export"), &f]);
    if under_wine() {
        // No server service under Wine: refused, naming the policy file, the share and the
        // call; exit 1.
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            err.contains(&file.display().to_string()) && err.contains("NetShareAdd"),
            "{err}"
        );
    } else {
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains(&format!("{place}: added")), "{out}");
        let (code, out, _) = run(&[&os("share"), &os("check"), &f]);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("as the policy says"), "{out}");
        let (code, out, err) = run(&[&os("share"), &os("remove"), &os(name)]);
        assert_eq!(code, 0, "{out}{err}");
        assert!(out.contains("removed (its folder stays)"), "{out}");
        assert!(share.is_dir());
    }
    // Nothing of that name (any more): a clear refusal.
    let (code, _, err) = run(&[&os("share"), &os("remove"), &os(name)]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("there is no share named {name}")),
        "{err}"
    );
}
