//! Reading a repository's history without touching file data: listing a snapshot (`ls`),
//! comparing two (`diff`), and the distinct versions a file has had (`versions`). All of them
//! read trees only; identical subtree ids are skipped, and trees shared by many snapshots are
//! read once, so `versions` stays fast with hundreds of snapshots.

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::Repository;
use crate::snapshot::Snapshot;
use crate::tree::{Node, NodeKind, Tree};
use std::collections::HashMap;
use std::sync::Arc;

/// An entry listed by [`list`].
#[derive(Debug, Clone)]
pub struct ListedEntry {
    /// Path relative to the snapshot's root, `/`-separated.
    pub path: String,
    /// The entry.
    pub node: Node,
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Calls `visit` for `path` (the root when empty) and, recursively, everything below it, in
/// name order.
pub fn list(
    repo: &Repository,
    snap: &Snapshot,
    path: &str,
    visit: &mut dyn FnMut(ListedEntry),
) -> Result<()> {
    let comps = repo.relative_components(snap, path)?;
    let start = repo.find_node(snap, path)?;
    let prefix = comps.join("/");
    let subtree = match &start {
        None => Some(snap.tree),
        Some(node) => {
            visit(ListedEntry {
                path: prefix.clone(),
                node: node.clone(),
            });
            node.subtree.filter(|_| node.kind == NodeKind::Dir)
        }
    };
    if let Some(t) = subtree {
        walk(repo, &t, &prefix, visit)?;
    }
    Ok(())
}

/// Visits everything below `tree`, depth first in name order, with an explicit stack (a
/// 10,000-level tree costs heap, never stack).
fn walk(
    repo: &Repository,
    tree: &Id,
    prefix: &str,
    visit: &mut dyn FnMut(ListedEntry),
) -> Result<()> {
    let mut stack: Vec<(String, std::vec::IntoIter<Node>)> =
        vec![(prefix.to_string(), repo.read_tree(tree)?.nodes.into_iter())];
    while let Some((prefix, nodes)) = stack.last_mut() {
        let Some(node) = nodes.next() else {
            stack.pop();
            continue;
        };
        let path = join(prefix, &node.name.to_string_lossy());
        let sub = node.subtree.filter(|_| node.kind == NodeKind::Dir);
        visit(ListedEntry {
            path: path.clone(),
            node,
        });
        if let Some(sub) = sub {
            let nodes = repo.read_tree(&sub)?.nodes.into_iter();
            stack.push((path, nodes));
        }
    }
    Ok(())
}

/// How an entry differs between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Only in the second.
    Added,
    /// Only in the first.
    Removed,
    /// Content differs.
    Modified,
    /// Same content, metadata (mode, owner, mtime, ACLs) differs.
    Metadata,
    /// A different kind of entry (file became a directory…).
    TypeChanged,
}

impl ChangeKind {
    /// The one-letter mark of `diff` output.
    pub fn mark(self) -> char {
        match self {
            ChangeKind::Added => '+',
            ChangeKind::Removed => '-',
            ChangeKind::Modified => 'M',
            ChangeKind::Metadata => 'U',
            ChangeKind::TypeChanged => 'T',
        }
    }
}

/// One difference found by [`diff`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    /// Path relative to the root.
    pub path: String,
    /// What changed.
    pub kind: ChangeKind,
    /// Whether the entry is a directory (in the newer snapshot if present).
    pub dir: bool,
}

/// The differences between snapshots `a` (older) and `b` (newer), in path order. Added and
/// removed directories are listed with everything below them.
pub fn diff(repo: &Repository, a: &Snapshot, b: &Snapshot) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    diff_trees(repo, Some(a.tree), Some(b.tree), "", &mut out)?;
    Ok(out)
}

fn load(repo: &Repository, id: Option<Id>) -> Result<Tree> {
    match id {
        Some(id) => repo.read_tree(&id),
        None => Ok(Tree::default()),
    }
}

/// The work for an added or removed entry.
fn all(n: &Node, path: String, kind: ChangeKind) -> Work {
    Work::All(n.kind == NodeKind::Dir, n.subtree, path, kind)
}

/// Work of a diff, done from an explicit stack (no recursion per directory level).
enum Work {
    /// A change to output.
    Emit(Change),
    /// Compare two subtrees below `prefix`.
    Trees(Option<Id>, Option<Id>, String),
    /// An added or removed entry (whether a folder, its subtree), with everything below it.
    All(bool, Option<Id>, String, ChangeKind),
}

fn diff_trees(
    repo: &Repository,
    a: Option<Id>,
    b: Option<Id>,
    prefix: &str,
    out: &mut Vec<Change>,
) -> Result<()> {
    // Each step expands one item into the items it stands for, in path order; they are
    // pushed reversed so that they come off the stack in that order.
    let mut stack = vec![Work::Trees(a, b, prefix.to_string())];
    while let Some(work) = stack.pop() {
        let mut items = Vec::new();
        match work {
            Work::Emit(c) => {
                out.push(c);
                continue;
            }
            Work::All(dir, subtree, path, kind) => {
                items.push(Work::Emit(Change {
                    path: path.clone(),
                    kind,
                    dir,
                }));
                if let (true, Some(sub)) = (dir, subtree) {
                    for child in repo.read_tree(&sub)?.nodes {
                        let p = join(&path, &child.name.to_string_lossy());
                        items.push(all(&child, p, kind));
                    }
                }
            }
            Work::Trees(a, b, prefix) => {
                if a == b {
                    continue;
                }
                let (ta, tb) = (load(repo, a)?, load(repo, b)?);
                let mut ia = ta.nodes.into_iter().peekable();
                let mut ib = tb.nodes.into_iter().peekable();
                loop {
                    let order = match (ia.peek(), ib.peek()) {
                        (Some(x), Some(y)) => x.name.cmp(&y.name),
                        (Some(_), None) => std::cmp::Ordering::Less,
                        (None, Some(_)) => std::cmp::Ordering::Greater,
                        (None, None) => break,
                    };
                    match order {
                        std::cmp::Ordering::Less => {
                            let n = ia.next().expect("peeked");
                            let path = join(&prefix, &n.name.to_string_lossy());
                            items.push(all(&n, path, ChangeKind::Removed));
                        }
                        std::cmp::Ordering::Greater => {
                            let n = ib.next().expect("peeked");
                            let path = join(&prefix, &n.name.to_string_lossy());
                            items.push(all(&n, path, ChangeKind::Added));
                        }
                        std::cmp::Ordering::Equal => {
                            let (x, y) = (ia.next().expect("peeked"), ib.next().expect("peeked"));
                            let path = join(&prefix, &y.name.to_string_lossy());
                            let dir = y.kind == NodeKind::Dir;
                            let change = |kind| {
                                Work::Emit(Change {
                                    path: path.clone(),
                                    kind,
                                    dir,
                                })
                            };
                            if x.kind != y.kind {
                                items.push(change(ChangeKind::TypeChanged));
                            } else if dir {
                                if !x.same_metadata(&y) {
                                    items.push(change(ChangeKind::Metadata));
                                }
                                items.push(Work::Trees(x.subtree, y.subtree, path.clone()));
                            } else if !x.same_content(&y) {
                                items.push(change(ChangeKind::Modified));
                            } else if !x.same_metadata(&y) {
                                items.push(change(ChangeKind::Metadata));
                            }
                        }
                    }
                }
            }
        }
        stack.extend(items.into_iter().rev());
    }
    Ok(())
}

/// One distinct content a file has had.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Version {
    /// Identifies the content (hash of its size and blob ids).
    pub content: Id,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (ns) when this content was first seen.
    pub mtime_ns: i64,
    /// The oldest snapshot holding it.
    pub first: Snapshot,
    /// The newest snapshot holding it.
    pub last: Snapshot,
    /// How many snapshots hold it.
    pub snapshots: usize,
}

/// The distinct contents the file at `path` has had across `snapshots` (any order), newest
/// first (by the last snapshot holding each). `path` is relative to the snapshots' root or
/// absolute; snapshots that do not hold it are skipped.
pub fn versions(repo: &Repository, snapshots: &[Snapshot], path: &str) -> Result<Vec<Version>> {
    let mut sorted: Vec<&Snapshot> = snapshots.iter().collect();
    sorted.sort_by_key(|s| s.time);
    let mut trees: HashMap<Id, Arc<Tree>> = HashMap::new();
    let mut by_root: HashMap<Id, Option<Node>> = HashMap::new();
    let mut found: Vec<Version> = Vec::new();
    let mut position: HashMap<Id, usize> = HashMap::new();
    let mut seen_dir = None;
    for snap in sorted {
        let Ok(comps) = repo.relative_components(snap, path) else {
            continue;
        };
        if comps.is_empty() {
            return Err(Error::Invalid(format!(
                "{path:?} is the snapshot's root; give a file inside it"
            )));
        }
        let node = match by_root.get(&snap.tree) {
            Some(n) => n.clone(),
            None => {
                let n = resolve(repo, &mut trees, snap.tree, &comps)?;
                by_root.insert(snap.tree, n.clone());
                n
            }
        };
        let Some(node) = node else { continue };
        if node.kind != NodeKind::File {
            seen_dir = Some((snap.id.short(), node.kind.word()));
            continue;
        }
        let content = node.content_id();
        match position.get(&content) {
            Some(&i) => {
                found[i].last = snap.clone();
                found[i].snapshots += 1;
            }
            None => {
                position.insert(content, found.len());
                found.push(Version {
                    content,
                    size: node.size,
                    mtime_ns: node.mtime_ns,
                    first: snap.clone(),
                    last: snap.clone(),
                    snapshots: 1,
                });
            }
        }
    }
    if found.is_empty() {
        if let Some((snapshot, found_kind)) = seen_dir {
            return Err(Error::WrongKind {
                path: path.to_string(),
                snapshot,
                found: found_kind,
                expected: "file",
            });
        }
    }
    found.sort_by(|a, b| {
        b.last
            .time
            .cmp(&a.last.time)
            .then(b.first.time.cmp(&a.first.time))
    });
    Ok(found)
}

fn resolve(
    repo: &Repository,
    trees: &mut HashMap<Id, Arc<Tree>>,
    root: Id,
    comps: &[String],
) -> Result<Option<Node>> {
    let mut tree_id = root;
    for (i, c) in comps.iter().enumerate() {
        let tree = match trees.get(&tree_id) {
            Some(t) => t.clone(),
            None => {
                let t = Arc::new(repo.read_tree(&tree_id)?);
                trees.insert(tree_id, t.clone());
                t
            }
        };
        let Some(node) = tree.find(c.as_bytes()) else {
            return Ok(None);
        };
        if i + 1 == comps.len() {
            return Ok(Some(node.clone()));
        }
        match (node.kind, node.subtree) {
            (NodeKind::Dir, Some(sub)) => tree_id = sub,
            _ => return Ok(None),
        }
    }
    Ok(None)
}
