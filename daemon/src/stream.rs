//! The sending side of a streamed selection: the entries of a snapshot below some paths, in
//! tree order (parents before children), as [`frame`]s, each file's content following its
//! entry. `sharekeepd` sends this to a caller whose copy must be written with the caller's own
//! rights (`receive.rs` writes it); what the caller may not see is never sent, not even a name.
//!
//! ```text
//! for each selected path:
//!   resolve it in the snapshot; every leading directory must be visible (else "not in the
//!   snapshot": a hidden name is never confirmed) and is sent once, marked leading
//!   the entry itself, then its subtree depth-first in name order with an explicit stack
//!   (heap, not recursion: a 10,000-level tree costs memory, never the stack)
//! visibility(rel, is_dir): Hidden (skipped with everything below), PassThrough (a directory
//! the caller may only traverse: sent so that deeper visible entries have a parent), Visible
//! files: their blobs, each read and verified, as D frames, then F; a damaged blob sends W
//! (the receiver drops the file) and the stream goes on
//! ```

use crate::error::{Error, Result};
use crate::progress::CancelToken;
use crate::protocol::frame;
use crate::repo::Repository;
use crate::snapshot::Snapshot;
use crate::tree::{Bytes, Node, NodeKind};
use std::collections::HashSet;

/// What a caller may see of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Never shown, nor anything below it.
    Hidden,
    /// A directory the caller may pass through without listing it.
    PassThrough,
    /// Shown.
    Visible,
}

/// A sink for frames: `(tag, payload)` (owned: content goes to the socket without a copy).
pub type FrameSink<'a> = dyn FnMut(u8, Vec<u8>) -> std::io::Result<()> + 'a;

/// What is sent of a selection.
#[derive(Clone, Copy)]
pub struct StreamOptions<'a> {
    /// Send file content (false: entries only, for a dry run).
    pub with_data: bool,
    /// What the caller may see, by path relative to the snapshot root.
    pub visibility: &'a dyn Fn(&str, bool) -> Visibility,
}

impl std::fmt::Debug for StreamOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamOptions")
            .field("with_data", &self.with_data)
            .finish()
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

fn join_raw(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(prefix.len() + 1 + name.len());
    v.extend_from_slice(prefix);
    if !prefix.is_empty() {
        v.push(b'/');
    }
    v.extend_from_slice(name);
    v
}

struct Sender<'a, 's> {
    repo: &'a Repository,
    opts: StreamOptions<'a>,
    sink: &'a mut FrameSink<'s>,
    cancel: &'a CancelToken,
    end: frame::End,
}

fn gone(e: std::io::Error) -> Error {
    Error::io("<socket>", e)
}

impl Sender<'_, '_> {
    fn entry(&mut self, raw: &[u8], node: &Node, leading: bool) -> Result<()> {
        let mut meta = node.clone();
        meta.content.clear();
        meta.subtree = None;
        let e = frame::Entry {
            path: Bytes(raw.to_vec()),
            node: meta,
            leading,
        };
        let payload = serde_json::to_vec(&e).expect("entries serialize");
        (self.sink)(frame::ENTRY, payload).map_err(gone)?;
        self.end.entries += 1;
        Ok(())
    }

    fn warning(&mut self, rel: &str, message: String) -> Result<()> {
        let w = frame::Warning {
            path: rel.to_string(),
            message,
        };
        let payload = serde_json::to_vec(&w).expect("warnings serialize");
        (self.sink)(frame::WARNING, payload).map_err(gone)
    }

    fn content(&mut self, rel: &str, node: &Node) -> Result<()> {
        for id in &node.content {
            if self.cancel.is_cancelled() {
                return Err(Error::Interrupted);
            }
            match self.repo.read_blob(id) {
                Ok(data) => {
                    self.end.bytes += data.len() as u64;
                    (self.sink)(frame::DATA, data).map_err(gone)?;
                }
                Err(e) => return self.warning(rel, e.to_string()),
            }
        }
        (self.sink)(frame::FILE_END, Vec::new()).map_err(gone)
    }

    /// One node and everything below it, depth-first, without recursion.
    /// `rel` is for display and visibility, `raw` the same path as bytes (names need not be
    /// UTF-8: the receiver must create exactly the recorded name).
    fn node_and_below(&mut self, rel: String, raw: Vec<u8>, node: Node) -> Result<()> {
        let mut stack: Vec<(String, Vec<u8>, std::vec::IntoIter<Node>)> = Vec::new();
        let mut next = Some((rel, raw, node));
        loop {
            if let Some((rel, raw, node)) = next.take() {
                if node.checked_name().is_none() {
                    self.warning(&rel, "unsafe name in the snapshot; refused".into())?;
                } else {
                    let is_dir = node.kind == NodeKind::Dir;
                    match (self.opts.visibility)(&rel, is_dir) {
                        Visibility::Hidden => {}
                        Visibility::PassThrough if !is_dir => {}
                        _ => {
                            self.entry(&raw, &node, false)?;
                            if node.kind == NodeKind::File && self.opts.with_data {
                                self.content(&rel, &node)?;
                            }
                            if let (true, Some(sub)) = (is_dir, node.subtree) {
                                let tree = self.repo.read_tree(&sub)?;
                                stack.push((rel, raw, tree.nodes.into_iter()));
                            }
                        }
                    }
                }
            }
            let Some((prefix, raw_prefix, iter)) = stack.last_mut() else {
                return Ok(());
            };
            match iter.next() {
                Some(child) => {
                    let rel = join(prefix, &child.name.to_string_lossy());
                    let raw = join_raw(raw_prefix, &child.name.0);
                    next = Some((rel, raw, child));
                }
                None => {
                    stack.pop();
                }
            }
        }
    }
}

/// Sends the entries of `snap` below `paths` (everything when empty) through `sink`, ending
/// with an END frame. Selected paths the caller may not see are "not in the snapshot".
pub fn send_selection(
    repo: &Repository,
    snap: &Snapshot,
    paths: &[String],
    opts: StreamOptions<'_>,
    sink: &mut FrameSink<'_>,
    cancel: &CancelToken,
) -> Result<frame::End> {
    let mut s = Sender {
        repo,
        opts,
        sink,
        cancel,
        end: frame::End::default(),
    };
    let selections: Vec<String> = if paths.is_empty() {
        vec![String::new()]
    } else {
        paths.to_vec()
    };
    let mut leading_sent: HashSet<String> = HashSet::new();
    for sel in &selections {
        let not_found = || Error::PathNotInSnapshot {
            path: sel.clone(),
            snapshot: snap.id.short(),
            root: snap.root().to_string(),
        };
        let comps = repo.relative_components(snap, sel)?;
        if comps.is_empty() {
            let tree = repo.read_tree(&snap.tree)?;
            for node in tree.nodes {
                let rel = node.name.to_string_lossy();
                let raw = node.name.0.clone();
                s.node_and_below(rel, raw, node)?;
            }
            continue;
        }
        let mut tree_id = snap.tree;
        let mut rel = String::new();
        for (i, c) in comps.iter().enumerate() {
            let tree = repo.read_tree(&tree_id)?;
            let node = tree.find(c.as_bytes()).cloned().ok_or_else(not_found)?;
            rel = join(&rel, c);
            let is_dir = node.kind == NodeKind::Dir;
            let vis = (opts.visibility)(&rel, is_dir);
            if i + 1 == comps.len() {
                if vis != Visibility::Visible && !(is_dir && vis == Visibility::PassThrough) {
                    return Err(not_found());
                }
                s.node_and_below(rel.clone(), rel.clone().into_bytes(), node)?;
                break;
            }
            if vis == Visibility::Hidden || !is_dir {
                return Err(not_found());
            }
            if leading_sent.insert(rel.clone()) {
                s.entry(rel.as_bytes(), &node, true)?;
            }
            tree_id = node.subtree.ok_or_else(not_found)?;
        }
    }
    let end = s.end.clone();
    let payload = serde_json::to_vec(&end).expect("end serializes");
    (s.sink)(frame::END, payload).map_err(gone)?;
    Ok(end)
}
