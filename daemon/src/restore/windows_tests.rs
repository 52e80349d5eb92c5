//! Restore on Windows (under Wine in CI), by handle: a tree backed up comes back with its
//! content, holes, times, attributes and hard links, each recorded security descriptor
//! applied; in place, what a restore replaces is saved first and an entry whose attributes
//! alone differ gets them back; a link planted in the target is never followed; names
//! Windows cannot hold and kinds it cannot make are refused, not written.
//!
//! What Wine cannot show: it keeps no DACL (a descriptor written is accepted, not read back),
//! so rights restored are checked on Windows only (README, "Windows").

use super::*;
use crate::progress::NoProgress;
use crate::tree::Tree;
use std::fs;
use std::os::windows::fs::{MetadataExt, OpenOptionsExt};

const READONLY: u32 = 0x1;
const HIDDEN: u32 = 0x2;

fn snapshot_of(repo: &Repository, src: &Path) -> Snapshot {
    let out = backup(
        repo,
        src,
        &BackupOptions::default(),
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap();
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    out.snapshot
}

fn options(target: Target) -> RestoreOptions {
    RestoreOptions {
        paths: Vec::new(),
        target,
        overwrite: Overwrite::IfChanged,
        threads: 2,
    }
}

fn run(repo: &Repository, plan: &RestorePlan) -> RestoreReport {
    restore(repo, plan, 2, &NoProgress, &CancelToken::new()).unwrap()
}

/// (path, action) of every planned entry, sorted.
fn actions(repo: &Repository, plan: &RestorePlan) -> Vec<(String, Action)> {
    let mut v: Vec<_> = plan
        .entries(repo)
        .unwrap()
        .into_iter()
        .map(|e| (e.path.replace('\\', "/"), e.action))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn attributes(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().file_attributes() & (READONLY | HIDDEN)
}

fn identity(p: &Path) -> (u64, u64) {
    t::meta_of(&fs::File::open(p).unwrap()).unwrap().id
}

#[test]
fn a_tree_comes_back_with_content_times_attributes_and_links() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("Commercial");
    for d in ["Tarifs", "Propositions/2026", "Vide"] {
        fs::create_dir_all(src.join(d)).unwrap();
    }
    // Pseudo-random data around 200 KiB of zeros (a hole where the disk allows one).
    let mut big: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    big.extend(std::iter::repeat_n(0u8, 200_000));
    big.extend(b"fin");
    let files: [(&str, &[u8]); 5] = [
        ("Tarifs/grille.csv", b"prix"),
        ("Tarifs/vide.txt", b""),
        ("Tarifs/archive.pdf", b"archive"),
        ("Propositions/2026/devis.docx", &big),
        ("Propositions/note-cachee.txt", b"cachee"),
    ];
    for (p, data) in files {
        if p.ends_with("cachee.txt") {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .attributes(HIDDEN)
                .open(src.join(p))
                .unwrap();
            std::io::Write::write_all(&mut f, data).unwrap();
        } else {
            fs::write(src.join(p), data).unwrap();
        }
    }
    fs::hard_link(
        src.join("Tarifs/grille.csv"),
        src.join("Propositions/grille.csv"),
    )
    .unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    fs::File::options()
        .write(true)
        .open(src.join("Tarifs/archive.pdf"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let mut ro = fs::metadata(src.join("Tarifs/archive.pdf"))
        .unwrap()
        .permissions();
    ro.set_readonly(true);
    fs::set_permissions(src.join("Tarifs/archive.pdf"), ro).unwrap();

    let repo = Repository::init_local(&tmp.path().join("repo")).unwrap();
    let snap = snapshot_of(&repo, &src);
    let node = repo
        .find_node(&snap, "Tarifs/archive.pdf")
        .unwrap()
        .unwrap();
    assert_eq!(node.attributes.map(|a| a & READONLY), Some(READONLY));

    let out = tmp.path().join("restored");
    let plan = plan_restore(&repo, &snap, &options(Target::Dir(out.clone()))).unwrap();
    assert_eq!(
        plan.count(Action::Create),
        plan.len(),
        "{:?}",
        actions(&repo, &plan)
    );
    let report = run(&repo, &plan);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.created, plan.len());

    let all = files
        .iter()
        .map(|(p, _)| *p)
        .chain(["Propositions/grille.csv"]);
    for p in all {
        let (a, b) = (src.join(p), out.join(p));
        assert_eq!(fs::read(&b).unwrap(), fs::read(&a).unwrap(), "{p}");
        let (ma, mb) = (fs::metadata(&a).unwrap(), fs::metadata(&b).unwrap());
        assert_eq!(mb.modified().unwrap(), ma.modified().unwrap(), "{p}");
        assert_eq!(attributes(&b), attributes(&a), "{p}");
    }
    assert_eq!(attributes(&out.join("Tarifs/archive.pdf")), READONLY);
    assert_eq!(
        attributes(&out.join("Propositions/note-cachee.txt")),
        HIDDEN
    );
    assert_eq!(
        fs::metadata(out.join("Tarifs/archive.pdf"))
            .unwrap()
            .modified()
            .unwrap(),
        old
    );
    // One file, two names, as in the source.
    assert_eq!(
        identity(&out.join("Tarifs/grille.csv")),
        identity(&out.join("Propositions/grille.csv"))
    );
    assert_ne!(
        identity(&out.join("Tarifs/grille.csv")),
        identity(&out.join("Tarifs/vide.txt"))
    );
    // Folders too, their times set last (creating their entries changed them).
    assert!(out.join("Vide").is_dir());
    for d in ["Tarifs", "Propositions", "Propositions/2026", "Vide"] {
        assert_eq!(
            fs::metadata(out.join(d)).unwrap().modified().unwrap(),
            fs::metadata(src.join(d)).unwrap().modified().unwrap(),
            "{d}"
        );
    }

    // Restored again: nothing differs, nothing is written.
    let again = plan_restore(&repo, &snap, &options(Target::Dir(out.clone()))).unwrap();
    let changed: Vec<_> = actions(&repo, &again)
        .into_iter()
        .filter(|(_, a)| !matches!(a, Action::Unchanged | Action::Merge))
        .collect();
    assert!(changed.is_empty(), "{changed:?}");
}

#[test]
fn in_place_what_is_replaced_is_saved_first_and_attributes_come_back() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("Compta");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("bilan.txt"), "v1").unwrap();
    fs::write(src.join("stable.txt"), "stable").unwrap();
    fs::write(src.join("fige.txt"), "fige").unwrap();
    let mut ro = fs::metadata(src.join("fige.txt")).unwrap().permissions();
    ro.set_readonly(true);
    fs::set_permissions(src.join("fige.txt"), ro.clone()).unwrap();
    let repo = Repository::init_local(&tmp.path().join("repo")).unwrap();
    let snap = snapshot_of(&repo, &src);

    // After the backup: one file rewritten, another made writable (its data and time kept).
    fs::write(src.join("bilan.txt"), "v2, plus long").unwrap();
    #[allow(clippy::permissions_set_readonly_false)]
    ro.set_readonly(false);
    fs::set_permissions(src.join("fige.txt"), ro).unwrap();

    let plan = plan_restore(&repo, &snap, &options(Target::InPlace)).unwrap();
    assert_eq!(
        actions(&repo, &plan),
        vec![
            ("bilan.txt".to_string(), Action::Replace),
            ("fige.txt".to_string(), Action::Metadata),
            ("stable.txt".to_string(), Action::Unchanged),
        ]
    );
    let report = run(&repo, &plan);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(fs::read(src.join("bilan.txt")).unwrap(), b"v1");
    assert_eq!(attributes(&src.join("fige.txt")), READONLY);
    assert_eq!(fs::read(src.join("stable.txt")).unwrap(), b"stable");
    // Nothing lost: the version replaced is in the pre-restore snapshot.
    let saved = report.pre_restore.expect("a pre-restore snapshot");
    assert!(saved
        .tags
        .iter()
        .any(|t| t == crate::snapshot::PRE_RESTORE_TAG));
    let node = repo.find_node(&saved, "bilan.txt").unwrap().unwrap();
    let data: Vec<u8> = node
        .content
        .iter()
        .flat_map(|id| repo.read_blob(id).unwrap())
        .collect();
    assert_eq!(data, b"v2, plus long");
    // A read-only file replaced in place too (Windows refuses to replace one as it is; Wine,
    // on Unix rights, does not: that refusal is met on Windows only).
    fs::write(src.join("stable.txt"), "modifie").unwrap();
    let mut ro = fs::metadata(src.join("stable.txt")).unwrap().permissions();
    ro.set_readonly(true);
    fs::set_permissions(src.join("stable.txt"), ro).unwrap();
    let plan = plan_restore(&repo, &snap, &options(Target::InPlace)).unwrap();
    let report = run(&repo, &plan);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(fs::read(src.join("stable.txt")).unwrap(), b"stable");
    assert_eq!(attributes(&src.join("stable.txt")), 0);
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

/// Plants a folder link at `link`: on Windows a symbolic link; under Wine (which only
/// pretends to make those) a Unix one, which it lists as a reparse point.
fn plant_link(target: &Path, link: &Path) {
    match (under_wine(target), under_wine(link)) {
        (Some(to), Some(at)) => {
            let status = std::process::Command::new("cmd")
                .args(["/c", "start", "/wait", "/unix", "/bin/ln", "-s", &to, &at])
                .status()
                .unwrap();
            assert!(status.success());
        }
        _ => std::os::windows::fs::symlink_dir(target, link)
            .expect("a symbolic link (an administrator, or developer mode)"),
    }
    // Synchronised on what the folder lists, not on time.
    let (parent, name) = (link.parent().unwrap(), link.file_name().unwrap());
    for _ in 0..1000 {
        if fs::read_dir(parent)
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
fn a_link_planted_in_the_target_is_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("Commercial");
    fs::create_dir_all(src.join("Tarifs")).unwrap();
    fs::write(src.join("Tarifs/grille.csv"), "prix").unwrap();
    let repo = Repository::init_local(&tmp.path().join("repo")).unwrap();
    let snap = snapshot_of(&repo, &src);
    let outside = tmp.path().join("dehors");
    fs::create_dir_all(&outside).unwrap();
    let out = tmp.path().join("cible");
    fs::create_dir_all(&out).unwrap();
    plant_link(&outside, &out.join("Tarifs"));

    // A selection below the link: its way in is refused, with what to do.
    let mut opts = options(Target::Dir(out.clone()));
    opts.paths = vec!["Tarifs/grille.csv".into()];
    let e = plan_restore(&repo, &snap, &opts).unwrap_err().to_string();
    assert!(
        e.contains("Tarifs") && e.contains("restore with --to"),
        "{e}"
    );
    // Everything: on Windows the link is seen as one, to be replaced by the folder, but a
    // link cannot be saved first (a Windows backup never follows one), so nothing is
    // restored. Under Wine, whose opens follow Unix links, the folder listing sees it and
    // the planner refuses to enter it.
    match plan_restore(&repo, &snap, &options(Target::Dir(out.clone()))) {
        Ok(plan) => {
            assert_eq!(
                actions(&repo, &plan),
                vec![
                    ("Tarifs".to_string(), Action::Replace),
                    ("Tarifs/grille.csv".to_string(), Action::Create),
                ]
            );
            let e = restore(&repo, &plan, 2, &NoProgress, &CancelToken::new())
                .unwrap_err()
                .to_string();
            assert!(e.contains("could not be saved"), "{e}");
        }
        Err(e) => {
            let e = e.to_string();
            assert!(e.contains("Tarifs") && e.contains("never followed"), "{e}");
        }
    }
    assert_eq!(
        fs::read_dir(&outside).unwrap().count(),
        0,
        "nothing went through the link"
    );
    // Positive control: where no link is, the same selection is restored.
    let clean = tmp.path().join("propre");
    fs::create_dir_all(clean.join("Tarifs")).unwrap();
    opts.target = Target::Dir(clean.clone());
    let report = run(&repo, &plan_restore(&repo, &snap, &opts).unwrap());
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(fs::read(clean.join("Tarifs/grille.csv")).unwrap(), b"prix");
}

#[test]
fn names_and_kinds_windows_cannot_hold_are_refused_and_rights_are_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("Commercial");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("ok.txt"), "ok").unwrap();
    let repo = Repository::init_local(&tmp.path().join("repo")).unwrap();
    let mut snap = snapshot_of(&repo, &src);
    let ok = repo.find_node(&snap, "ok.txt").unwrap().unwrap();
    let node = |name: &str, kind: NodeKind, security: Option<&str>| {
        let mut n = ok.clone();
        n.name = crate::tree::Bytes(name.as_bytes().to_vec());
        n.kind = kind;
        n.security = security.map(str::to_string);
        n
    };
    // A tree as a crafted (or Unix) snapshot could hold it.
    let mut tree = Tree {
        nodes: vec![
            node("a\\b", NodeKind::File, None),
            node("flux:secret", NodeKind::File, None),
            node("lien", NodeKind::Symlink, None),
            node("tube", NodeKind::Fifo, None),
            node("ok.txt", NodeKind::File, ok.security.as_deref()),
            node("droits.txt", NodeKind::File, Some("D:(A;;FA;;;S-1-5-NOPE)")),
        ],
    };
    let id = repo
        .store_blobs(&[(crate::pack::BlobType::Tree, &tree.encode())])
        .unwrap()[0];
    snap.tree = id;
    repo.save_snapshot(&mut snap).unwrap();
    let out = tmp.path().join("out");
    let plan = plan_restore(&repo, &snap, &options(Target::Dir(out.clone()))).unwrap();
    let got = actions(&repo, &plan);
    let of = |name: &str| got.iter().find(|(p, _)| p.ends_with(name)).map(|(_, a)| *a);
    assert_eq!(of("b"), Some(Action::Refuse), "{got:?}");
    assert_eq!(of("secret"), Some(Action::Refuse), "{got:?}");
    assert_eq!(of("lien"), Some(Action::Unsupported), "{got:?}");
    assert_eq!(of("tube"), Some(Action::Unsupported), "{got:?}");
    assert_eq!(of("ok.txt"), Some(Action::Create), "{got:?}");
    assert_eq!(of("droits.txt"), Some(Action::Create), "{got:?}");
    let report = run(&repo, &plan);
    // The recorded descriptor is applied: one Windows refuses is a warning naming the file,
    // and the file is not left half restored.
    let bad: Vec<_> = report
        .warnings
        .iter()
        .filter(|(p, _)| p.contains("droits.txt"))
        .collect();
    assert_eq!(bad.len(), 1, "{:?}", report.warnings);
    assert!(!out.join("droits.txt").exists());
    assert_eq!(fs::read(out.join("ok.txt")).unwrap(), b"ok");
    let mut names: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ok.txt"]);
}

#[test]
fn a_drill_restores_a_sample_and_finds_it_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("Commercial");
    fs::create_dir_all(src.join("Tarifs")).unwrap();
    for i in 0..20 {
        fs::write(src.join(format!("Tarifs/{i}.csv")), format!("ligne {i}")).unwrap();
    }
    let mut ro = fs::metadata(src.join("Tarifs/3.csv"))
        .unwrap()
        .permissions();
    ro.set_readonly(true);
    fs::set_permissions(src.join("Tarifs/3.csv"), ro).unwrap();
    let repo = Repository::init_local(&tmp.path().join("repo")).unwrap();
    let snap = snapshot_of(&repo, &src);
    let opts = crate::drill::DrillOptions {
        sample: 50,
        seed: 7,
    };
    let scratch = tmp.path().join("exercice");
    let r = crate::drill::drill(&repo, &snap, &scratch, opts, &CancelToken::new()).unwrap();
    assert!(r.ok(), "{:?}", r.problems);
    assert_eq!(r.files_checked, 20);
    // Its copy removed, the read-only file too.
    assert_eq!(fs::read_dir(&scratch).unwrap().count(), 0);
}

#[test]
fn long_paths_and_absolute_selections_with_a_drive_letter() {
    let tmp = tempfile::tempdir().unwrap();
    // Past MAX_PATH (260): the root is opened with a `\\?\` prefix, the rest by handle.
    let deep = (0..6).fold(tmp.path().to_path_buf(), |p, i| {
        p.join(format!(
            "{i}-dossier-au-nom-assez-long-pour-depasser-max-path"
        ))
    });
    let src = deep.join("Commercial");
    fs::create_dir_all(src.join("Tarifs")).unwrap();
    fs::write(src.join("Tarifs/grille.csv"), "prix").unwrap();
    fs::write(src.join("Tarifs/autre.csv"), "autre").unwrap();
    assert!(src.join("Tarifs/grille.csv").as_os_str().len() > 300);
    let repo = Repository::init_local(&tmp.path().join("repo")).unwrap();
    let snap = snapshot_of(&repo, &src);
    assert!(
        snap.root().starts_with(|c: char| c.is_ascii_uppercase()),
        "{}",
        snap.root()
    );
    assert_eq!(&snap.root()[1..3], ":\\", "{}", snap.root());

    // One file named by its absolute path, drive letter and all, into a long target.
    let out = deep.join("Restaure");
    let mut opts = options(Target::Dir(out.clone()));
    opts.paths = vec![src.join("Tarifs").join("grille.csv").display().to_string()];
    let plan = plan_restore(&repo, &snap, &opts).unwrap();
    let report = run(&repo, &plan);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(fs::read(out.join("Tarifs/grille.csv")).unwrap(), b"prix");
    assert!(!out.join("Tarifs/autre.csv").exists(), "only the selection");
    // A path outside the snapshot's root is refused, naming it.
    opts.paths = vec![r"D:\Ailleurs\grille.csv".into()];
    let e = plan_restore(&repo, &snap, &opts).unwrap_err().to_string();
    assert!(e.contains(r"D:\Ailleurs\grille.csv"), "{e}");
}
