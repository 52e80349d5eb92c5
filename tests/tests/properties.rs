//! Property test: for generated folders, backup then restore gives the same tree (content,
//! names, modes, mtimes), through the library API.

use crate::scratch;
use proptest::prelude::*;
use sharekeep::{
    BackupOptions, CancelToken, NoProgress, Overwrite, Repository, RestoreOptions, Target,
};
use sharekeep_tests::{assert_same_tree, fingerprint, noise, set_mtime, write};
use std::os::unix::fs::PermissionsExt;

#[derive(Debug, Clone)]
struct Entry {
    path: Vec<String>,
    size: usize,
    seed: u64,
    mode: u32,
    mtime: i64,
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        prop::collection::vec("[a-zA-Z0-9 éà._-]{1,12}", 1..4),
        prop_oneof![Just(0usize), 1usize..5000, 200_000usize..1_500_000],
        any::<u64>(),
        prop_oneof![Just(0o644u32), Just(0o600), Just(0o755), Just(0o440)],
        0i64..2_000_000_000,
    )
        .prop_map(|(path, size, seed, mode, mtime)| Entry {
            path,
            size,
            seed,
            mode,
            mtime,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn backup_then_restore_gives_the_same_tree(entries in prop::collection::vec(entry(), 1..25)) {
        let tmp = scratch();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        for e in &entries {
            let names: Vec<String> = e.path.iter().map(|n| if n == "." || n == ".." { "x".into() } else { n.clone() }).collect();
            let p = names.iter().fold(src.clone(), |p, n| p.join(n));
            // Skip paths that collide with an existing file or directory.
            if p.exists() || p.ancestors().skip(1).any(|a| a.is_file()) {
                continue;
            }
            write(&p, &noise(e.size, e.seed));
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(e.mode)).unwrap();
            set_mtime(&p, e.mtime, 17);
        }
        let repo = Repository::init_local(&tmp.path().join("repo")).unwrap();
        let cancel = CancelToken::new();
        sharekeep::backup(&repo, &src, &BackupOptions::default(), &NoProgress, &cancel).unwrap();
        let snap = repo.find_snapshot("latest").unwrap();
        let out = tmp.path().join("out");
        let opts = RestoreOptions { paths: vec![], target: Target::Dir(out.clone()), overwrite: Overwrite::IfChanged, threads: 2 };
        let plan = sharekeep::plan_restore(&repo, &snap, &opts).unwrap();
        let report = sharekeep::restore(&repo, &plan, 2, &NoProgress, &cancel).unwrap();
        prop_assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        // Directory mtimes depend on creation order in the source; compare files only.
        let strip = |m: std::collections::BTreeMap<String, sharekeep_tests::Facts>| {
            m.into_iter().map(|(k, mut f)| { if f.kind == "dir" { f.mtime_ns = 0; } (k, f) }).collect()
        };
        assert_same_tree(&strip(fingerprint(&src)), &strip(fingerprint(&out)), "restored tree");
    }
}
