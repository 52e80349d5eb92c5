//! Crafted repository content for the scenarios and the fuzzer: file nodes and snapshots
//! built by hand (what an attacker with write access to a repository could store), on every
//! platform.

/// A file node for crafted trees (mode 0644, root's, a fixed mtime).
pub fn file_node(name: &[u8], content: Vec<sharekeep::Id>, size: u64) -> sharekeep::Node {
    sharekeep::Node {
        name: sharekeep::Bytes(name.to_vec()),
        kind: sharekeep::NodeKind::File,
        mode: 0o644,
        uid: 0,
        gid: 0,
        user: None,
        group: None,
        mtime_ns: 1_700_000_000_000_000_000,
        ctime_ns: 0,
        inode: 0,
        device: 0,
        links: 1,
        size,
        content,
        subtree: None,
        target: None,
        rdev: 0,
        xattrs: Vec::new(),
        security: None,
        attributes: None,
    }
}

/// Stores `tree` and a snapshot of it (root `/nonexistent/share`, now) in `repo`; its id.
pub fn crafted_snapshot(repo: &sharekeep::Repository, tree: &mut sharekeep::Tree) -> String {
    let bytes = tree.encode();
    let root = repo
        .store_blobs(&[(sharekeep::pack::BlobType::Tree, &bytes)])
        .expect("store the tree")[0];
    let mut snap = sharekeep::Snapshot {
        id: Default::default(),
        time: sharekeep::chrono::Local::now(),
        host: "attacker".into(),
        username: "x".into(),
        paths: vec!["/nonexistent/share".into()],
        tags: vec![],
        tree: root,
        parent: None,
        original: None,
        summary: Default::default(),
        program_version: "crafted".into(),
    };
    repo.save_snapshot(&mut snap).expect("save").to_hex()
}
