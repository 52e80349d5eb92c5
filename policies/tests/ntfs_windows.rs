//! On Windows (under Wine in CI): a policy file naming real accounts is loaded, planned and
//! applied to a real tree through handles; every descriptor sharekeep writes is accepted by
//! `SetSecurityInfo` and read by Windows' own SDDL parser exactly as the translation meant
//! it; a link planted in the share is skipped, never walked through; `explain` reads the
//! rights on disk through handles.
//!
//! What Wine cannot show (listed in the README as verified only on Windows): Debian's Wine 8
//! keeps no DACL on files (its wineserver is built without the xattr store: a DACL written is
//! accepted and turned into mode bits only), so a written DACL is not read back here, and
//! NTFS inheritance is not computed; it creates neither junctions nor symbolic links (the
//! calls succeed and make nothing), so the planted link is a Unix one, which Wine lists as a
//! reparse point.
#![cfg(windows)]

use sharekeep_policies::acl::ntfs::{self, NtfsState, Security};
use sharekeep_policies::acl::windows::as_windows_reads;
use sharekeep_policies::{apply, explain, load_file, plan, resolve_user, Access, Rights};
use std::path::{Path, PathBuf};

struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("Commercial");
        std::fs::create_dir_all(s.join("Tarifs")).unwrap();
        std::fs::create_dir_all(s.join("Propositions/2026")).unwrap();
        std::fs::create_dir_all(s.join("Direction/Confidentiel")).unwrap();
        std::fs::write(s.join("Tarifs/grille.csv"), "prix").unwrap();
        std::fs::write(s.join("Propositions/2026/devis.docx"), "devis").unwrap();
        std::fs::write(s.join("Direction/Confidentiel/bilan.pdf"), "bilan").unwrap();
        Scene { dir }
    }

    fn share(&self) -> PathBuf {
        self.dir.path().join("Commercial")
    }

    /// The account running the test owns the share, BUILTIN\Users read it and write
    /// Propositions, Direction/Confidentiel is for Administrators only.
    fn policy(&self) -> PathBuf {
        let me = sharekeep_policies::accounts::current_user().expect("current user");
        let body = format!(
            "[share]\nname = \"commercial\"\npath = '{}'\nowner = '{me}'\ngroup = \"@Users\"\n\n\
             [access]\nread = [\"@Users\"]\nwrite = ['{me}']\n\n\
             [[rule]]\npath = \"Propositions\"\nwrite = [\"@Users\"]\n\n\
             [[rule]]\npath = \"Direction/Confidentiel\"\nread = []\nwrite = [\"@Administrators\"]\n",
            self.share().display()
        );
        let file = self.dir.path().join("commercial.toml");
        std::fs::write(&file, body).unwrap();
        file
    }
}

const USERS: &str = "S-1-5-32-545";
const ADMINS: &str = "S-1-5-32-544";

#[test]
fn a_policy_is_planned_and_applied_through_handles_as_windows_reads_it() {
    let scene = Scene::new();
    let policy = load_file(&scene.policy()).unwrap_or_else(|e| panic!("{e}"));
    let me = resolve_user(&sharekeep_policies::accounts::current_user().unwrap()).unwrap();

    let before = plan(&policy).unwrap();
    assert!(before.errors.is_empty(), "{:?}", before.errors);
    assert_eq!(before.checked, 9, "6 folders and 3 files: {before:?}");
    let root = before.drift.iter().find(|d| d.path == ".").expect("root");
    let after = root.after.as_ref().unwrap();
    assert_eq!(after.mode, "protected");
    assert!(after.acl.contains("Users:read"), "{}", after.acl);
    assert!(after.acl.contains(&format!("{}:modify", me.name)) || after.acl.contains(":modify"));
    let conf = before
        .drift
        .iter()
        .find(|d| d.path == "Direction/Confidentiel")
        .expect("Confidentiel");
    let conf_after = conf.after.as_ref().unwrap();
    assert_eq!(conf_after.mode, "protected");
    assert!(!conf_after.acl.contains("Users"), "{}", conf_after.acl);

    let done = apply(&policy).unwrap();
    assert!(
        done.errors.is_empty(),
        "SetSecurityInfo refused: {:?}",
        done.errors
    );
    assert_eq!(done.changed as usize, done.drift.len());
    assert_eq!(done.drift.len(), before.drift.len());

    // Each descriptor, as Windows' own parser reads it, is what the translation meant.
    let rights = Rights::new(&policy);
    let accounts = sharekeep_policies::accounts::Accounts;
    for (rel, is_dir) in [
        ("", true),
        ("Tarifs", true),
        ("Tarifs/grille.csv", false),
        ("Propositions", true),
        ("Direction", true),
        ("Direction/Confidentiel", true),
    ] {
        let want = ntfs::desired(&rights, rel, is_dir, &accounts).unwrap();
        let sddl = want.to_security().to_sddl();
        let read = as_windows_reads(&sddl).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(NtfsState::of(&read), want, "{rel}: {sddl}");
    }
    let root = ntfs::desired(&rights, "", true, &accounts).unwrap();
    let sids: Vec<&str> = root.explicit.iter().map(|a| a.sid.as_str()).collect();
    assert!(sids.contains(&USERS) && sids.contains(&ADMINS), "{sids:?}");
    let props = ntfs::desired(&rights, "Propositions", true, &accounts).unwrap();
    assert!(!props.protected);
    assert_eq!(props.explicit.len(), 1, "Users' Modify only: {props:?}");
    assert_eq!(props.explicit[0].mask, ntfs::mask::MODIFY);

    // explain reads the rights on disk through handles.
    let e = explain(&policy, &me, Path::new("Propositions")).unwrap();
    assert_eq!(e.access, Access::Write);
    assert_eq!(e.on_disk, Some(Access::Write));
}

/// Under Wine, a path's Unix form (Wine is recognised by its `winepath`).
fn under_wine(p: &Path) -> Option<String> {
    let out = std::process::Command::new("winepath")
        .arg("-u")
        .arg(p)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Plants a directory link: on Windows a symbolic link; under Wine, which only pretends to
/// make those, a Unix one through `start /unix` (Wine lists it as a reparse point). Waits
/// until the folder lists it.
fn plant_link(target: &str, link: &Path) {
    match under_wine(link) {
        Some(unix) => {
            let status = std::process::Command::new("cmd")
                .args([
                    "/c", "start", "/wait", "/unix", "/bin/ln", "-s", target, &unix,
                ])
                .status()
                .unwrap();
            assert!(status.success());
        }
        None => std::os::windows::fs::symlink_dir(target.replace('/', "\\"), link)
            .expect("a symbolic link (an administrator, or developer mode)"),
    }
    let parent = link.parent().unwrap();
    let name = link.file_name().unwrap();
    for _ in 0..1000 {
        if std::fs::read_dir(parent)
            .unwrap()
            .any(|e| e.unwrap().file_name() == name)
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{} never appeared", link.display());
}

#[test]
fn a_link_planted_in_the_share_is_skipped_never_walked_through() {
    let scene = Scene::new();
    let outside = scene.dir.path().join("dehors");
    std::fs::create_dir_all(outside.join("profond")).unwrap();
    std::fs::write(outside.join("secret.txt"), "x").unwrap();
    plant_link("../../dehors", &scene.share().join("Tarifs/raccourci"));
    let policy = load_file(&scene.policy()).unwrap();
    let report = apply(&policy).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.skipped, 1, "the link: {report:?}");
    assert_eq!(
        report.checked, 9,
        "nothing behind the link was checked: {report:?}"
    );
    assert!(
        report.drift.iter().all(|d| !d.path.contains("raccourci")),
        "{:?}",
        report.drift
    );
    // Positive control: the folder holding the link and its file got their rights.
    assert!(report.drift.iter().any(|d| d.path == "Tarifs"));
    assert!(report.drift.iter().any(|d| d.path == "Tarifs/grille.csv"));
}

#[test]
fn sddl_windows_would_refuse_is_caught_before_any_write() {
    // The system's parser is the judge: a positive control and a malformed text.
    let ok = Security::from_sddl("O:BAD:PAI(A;OICI;FA;;;SY)").unwrap();
    assert!(as_windows_reads(&ok.to_sddl()).unwrap().protected);
    let e = as_windows_reads("D:PAI(A;OICI;FA;;;S-1-5-NOPE)").unwrap_err();
    assert!(e.to_string().contains("S-1-5-NOPE"), "{e}");
}

#[test]
fn the_share_is_added_then_left_alone_then_updated() {
    use sharekeep_policies::share::{export, share_of, unexport, ShareChange};
    let scene = Scene::new();
    let file = scene.policy();
    let body = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        format!("{body}\n[samba]\nexport = true\nname = \"SkTest\"\n"),
    )
    .unwrap();
    let policy = load_file(&file).unwrap();
    let mut share = share_of(&policy, &sharekeep_policies::accounts::Accounts)
        .unwrap()
        .expect("exported");
    // The permissions read by Windows' own parser as meant: Users Change (they write in
    // Propositions), Administrators Full Control.
    let read = as_windows_reads(&share.permissions.to_sddl()).unwrap();
    assert_eq!(NtfsState::of(&read), NtfsState::of(&share.permissions));
    assert!(share
        .permissions
        .aces
        .iter()
        .any(|a| a.sid.as_str() == USERS && a.mask == ntfs::mask::MODIFY));
    // A dry run looks the share up and changes nothing.
    assert_eq!(export(&share, true).unwrap(), ShareChange::Added);
    assert_eq!(export(&share, true).unwrap(), ShareChange::Added);
    if under_wine(&scene.share()).is_some() {
        // Wine has no server service: the refusal names the share and the call.
        let e = export(&share, false).unwrap_err().to_string();
        assert!(e.contains("SkTest") && e.contains("NetShareAdd"), "{e}");
        return;
    }
    assert_eq!(export(&share, false).unwrap(), ShareChange::Added);
    assert_eq!(export(&share, false).unwrap(), ShareChange::Unchanged);
    share.remark = "Service commercial".into();
    assert_eq!(export(&share, false).unwrap(), ShareChange::Updated);
    assert_eq!(export(&share, true).unwrap(), ShareChange::Unchanged);
    assert!(unexport("SkTest").unwrap());
    assert!(!unexport("SkTest").unwrap());
}
