//! The receiving side of a streamed selection (`stream.rs`): writes the entries under a target
//! directory with the rights of whoever runs it. `sharekeepctl` runs this as the caller for a
//! copy (`restore --share S … --to DIR`): the files are theirs, and the kernel decides where
//! they may write. Same target walk as the offline restore:
//!
//! ```text
//! every directory is reached from the target root by openat(O_DIRECTORY|O_NOFOLLOW), one
//! name at a time, kept open on an explicit stack while its entries arrive (heap, not stack);
//! names are checked (`..`, `/`, NUL, empty refused) and are bytes end to end
//! what is there (fstatat, no follow)     -> Create, Merge/Leading (directories), Unchanged,
//!                                           Metadata, Replace, or SkipExisting (never)
//! files: created O_CREAT|O_EXCL|O_NOFOLLOW (a replacement under a temporary name), content
//!        written as it arrives (holes for zero blocks), metadata on the descriptor
//! Replace never destroys: the entry that was there is renamed aside to
//!        `NAME.before-restore-YYYYMMDD-HHMMSS` (renameat2 NOREPLACE), then the new one moves in
//! a directory's metadata is applied when its last entry has arrived (deepest first)
//! ```
//! A copy made by someone other than root never carries the snapshot's ACLs (`system.posix_acl_*`
//! would give others rights on the caller's copy) nor setuid/setgid bits on files.

use crate::error::{Error, IoContext, Result};
use crate::platform::target::{self as t, Dir, Meta};
use crate::protocol::{frame, PlanEntry, RestoreResult};
use crate::restore::{Action, Overwrite};
use crate::tree::{Node, NodeKind};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// One open directory of the target.
struct Level {
    /// Its name in its parent (empty for the target root).
    name: Vec<u8>,
    /// Its descriptor (`None` in a dry run for a directory that would be created).
    fd: Option<Dir>,
    /// Metadata to apply once its entries are written.
    meta: Option<(String, Node)>,
}

/// The file whose content is arriving.
enum Current {
    /// No file, or content to skip (unchanged, skipped, refused, dry run).
    Discard,
    /// Content to write.
    Write(Box<Incoming>),
}

struct Incoming {
    rel: String,
    dir: Dir,
    /// The name written (the final name for a new file, a temporary one for a replacement).
    written: OsString,
    name: OsString,
    file: std::fs::File,
    offset: u64,
    node: Node,
    replace: bool,
}

/// Writes a streamed selection under a target directory.
pub struct CopyWriter {
    target: PathBuf,
    stack: Vec<Level>,
    overwrite: Overwrite,
    dry_run: bool,
    chown: bool,
    stamp: String,
    current: Current,
    result: RestoreResult,
}

impl std::fmt::Debug for CopyWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyWriter")
            .field("target", &self.target)
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

/// The checked components of a streamed path.
fn components(path: &[u8]) -> Option<Vec<&[u8]>> {
    let comps: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
    let bad = comps
        .iter()
        .any(|c| c.is_empty() || *c == b"." || *c == b".." || c.contains(&0));
    // On Windows a name is Unicode and holds no `\` (a separator) nor `:` (a stream).
    #[cfg(windows)]
    let bad =
        bad || std::str::from_utf8(path).is_err() || path.iter().any(|&b| b == b'\\' || b == b':');
    (!bad).then_some(comps)
}

/// A name of a path [`components`] accepted.
fn os(b: &[u8]) -> &OsStr {
    #[cfg(unix)]
    return std::os::unix::ffi::OsStrExt::from_bytes(b);
    #[cfg(windows)]
    OsStr::new(std::str::from_utf8(b).expect("checked by components"))
}

impl CopyWriter {
    /// A writer into `target` (created if missing, unless `dry_run`), for `snapshot`.
    pub fn new(
        target: &Path,
        snapshot: &str,
        overwrite: Overwrite,
        dry_run: bool,
    ) -> Result<CopyWriter> {
        let target = std::path::absolute(target).at(target)?;
        let root = match t::open_root(&target) {
            Ok(fd) => Some(fd),
            Err(Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && dry_run =>
            {
                None
            }
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&target).at(&target)?;
                Some(t::open_root(&target)?)
            }
            Err(e) => return Err(e),
        };
        let result = RestoreResult::empty(snapshot, &target.display().to_string(), dry_run);
        Ok(CopyWriter {
            target,
            stack: vec![Level {
                name: Vec::new(),
                fd: root,
                meta: None,
            }],
            overwrite,
            dry_run,
            chown: t::can_chown(),
            stamp: chrono::Local::now().format("%Y%m%d-%H%M%S").to_string(),
            current: Current::Discard,
            result,
        })
    }

    fn warn(&mut self, rel: &str, message: impl Into<String>) {
        self.result.warnings.push((rel.to_string(), message.into()));
    }

    /// What a copy keeps of the snapshot's metadata (see the module documentation).
    fn meta_for_copy(&self, node: &Node) -> Node {
        let mut n = node.clone();
        // Windows: the copy inherits its folder's rights, never the snapshot's.
        n.security = None;
        if !self.chown {
            n.xattrs
                .retain(|x| !x.name.0.starts_with(b"system.posix_acl_"));
            if n.kind == NodeKind::File {
                n.mode &= !0o6000;
            }
        }
        n
    }

    /// Closes the levels deeper than `depth` (applying their metadata).
    fn pop_to(&mut self, depth: usize) {
        while self.stack.len() > depth + 1 {
            let level = self.stack.pop().expect("len > 1");
            if let (Some(fd), Some((rel, node))) = (level.fd, level.meta) {
                if !self.dry_run {
                    let node = self.meta_for_copy(&node);
                    if let Err(e) = t::apply_meta(&fd, &node, self.chown) {
                        self.warn(&rel, e.to_string());
                    }
                }
            }
        }
    }

    /// Makes the top of the stack the directory holding `comps`' last component; `false` when
    /// it cannot be reached (its own entry was refused or failed).
    fn reach_parent(&mut self, comps: &[&[u8]]) -> bool {
        let parents = &comps[..comps.len() - 1];
        let mut common = 0;
        while common < parents.len()
            && common + 1 < self.stack.len()
            && self.stack[common + 1].name == parents[common]
        {
            common += 1;
        }
        self.pop_to(common);
        for name in &parents[common..] {
            let fd = match &self.stack.last().expect("root").fd {
                Some(dir) => match t::enter(dir, os(name)) {
                    Ok(fd) => Some(fd),
                    Err(_) if self.dry_run => None,
                    Err(_) => return false,
                },
                None => None,
            };
            self.stack.push(Level {
                name: name.to_vec(),
                fd,
                meta: None,
            });
        }
        true
    }

    fn plan(&mut self, rel: &str, node: &Node, action: Action) {
        if self.dry_run {
            self.result.entries.push(PlanEntry {
                path: rel.to_string(),
                kind: node.kind,
                action,
                size: node.size,
            });
        }
        match action {
            Action::Unchanged | Action::SkipExisting | Action::Leading => self.result.left += 1,
            _ => {}
        }
    }

    /// The next entry of the stream.
    pub fn entry(&mut self, e: frame::Entry) {
        self.abandon_current("its content was not complete");
        let rel = e.path.to_string_lossy();
        let Some(comps) = components(&e.path.0) else {
            self.plan(&rel, &e.node, Action::Refuse);
            self.warn(&rel, "unsafe name in the snapshot; refused");
            return;
        };
        if !self.reach_parent(&comps) {
            self.warn(&rel, "its folder could not be restored; skipped");
            return;
        }
        let name = os(comps[comps.len() - 1]).to_os_string();
        let depth = comps.len();
        let parent = self
            .stack
            .last()
            .and_then(|l| l.fd.as_ref())
            .map(t::dup)
            .transpose();
        let parent = match parent {
            Ok(p) => p,
            Err(err) => {
                self.warn(&rel, err.to_string());
                return;
            }
        };
        let existing = match &parent {
            Some(dir) => match t::stat(dir, &name) {
                Ok(st) => st,
                Err(err) => {
                    self.warn(&rel, err.to_string());
                    return;
                }
            },
            None => None,
        };
        let node = e.node;
        let action = self.decide(parent.as_ref(), &name, &node, existing.as_ref(), e.leading);
        self.plan(&rel, &node, action);
        if action == Action::Unsupported {
            self.warn(&rel, format!("a {} cannot be restored", node.kind.word()));
            return;
        }
        if node.kind == NodeKind::Dir {
            self.directory(&rel, parent, &name, node, action, depth);
            return;
        }
        if self.dry_run || !matches!(action, Action::Create | Action::Replace | Action::Metadata) {
            return;
        }
        let parent = parent.expect("not a dry run: the parent is open");
        let kind = node.kind;
        let r = match (node.kind, action) {
            (NodeKind::File, Action::Metadata) => self.metadata(&parent, &name, &node, &existing),
            (NodeKind::File, _) => self.start_file(&rel, parent, &name, node, action),
            (_, Action::Metadata) => {
                let n = self.meta_for_copy(&node);
                let expect = existing.as_ref().map(|st| st.id);
                t::apply_meta_special(&parent, &name, &n, self.chown, expect).at(&rel)
            }
            _ => self.special(&rel, &parent, &name, &node, action),
        };
        match r {
            Ok(()) => match action {
                Action::Create if kind != NodeKind::File => self.result.created += 1,
                Action::Replace if kind != NodeKind::File => self.result.replaced += 1,
                Action::Metadata => self.result.metadata += 1,
                _ => {}
            },
            Err(err) => self.warn(&rel, err.to_string()),
        }
    }

    fn decide(
        &self,
        dir: Option<&Dir>,
        name: &OsStr,
        node: &Node,
        existing: Option<&Meta>,
        leading: bool,
    ) -> Action {
        let Some(st) = existing else {
            return if t::supported(node.kind) {
                Action::Create
            } else {
                Action::Unsupported
            };
        };
        let ekind = st.kind;
        if node.kind == NodeKind::Dir && ekind == NodeKind::Dir {
            return if leading {
                Action::Leading
            } else {
                Action::Merge
            };
        }
        if !t::supported(node.kind) {
            return Action::Unsupported;
        }
        if self.overwrite == Overwrite::Never {
            return Action::SkipExisting;
        }
        let link_differs =
            node.kind == NodeKind::Symlink && dir.is_none_or(|d| !t::same_link(d, name, node));
        let differs = ekind != node.kind
            || self.overwrite == Overwrite::Always
            || (node.kind == NodeKind::File
                && (st.size != node.size || st.mtime_ns != node.mtime_ns))
            || link_differs;
        // The mode (attributes on Windows) a copy gets; its owner is the caller's.
        let wanted = self.meta_for_copy(node);
        if differs {
            Action::Replace
        } else if st.metadata_differs(&wanted, false) {
            Action::Metadata
        } else {
            Action::Unchanged
        }
    }

    fn directory(
        &mut self,
        rel: &str,
        parent: Option<Dir>,
        name: &OsStr,
        node: Node,
        action: Action,
        depth: usize,
    ) {
        // The directory becomes the top of the stack at `depth` (whatever happens, so that its
        // entries find the right parent, or none).
        self.pop_to(depth - 1);
        let opened = match (&parent, action) {
            (None, _) => Ok(None),
            (Some(_), _)
                if self.dry_run && action != Action::Merge && action != Action::Leading =>
            {
                Ok(None)
            }
            (Some(dir), Action::Merge | Action::Leading) => t::enter(dir, name).map(Some),
            (Some(dir), Action::Create) => t::make_dir(dir, name)
                .and_then(|()| t::enter(dir, name))
                .map(Some),
            (Some(dir), Action::Replace) => self
                .aside(dir, name, rel)
                .and_then(|()| t::make_dir(dir, name))
                .and_then(|()| t::enter(dir, name))
                .map(Some),
            (Some(_), _) => Ok(None),
        };
        let fd = match opened {
            Ok(fd) => fd,
            Err(err) => {
                self.warn(rel, err.to_string());
                None
            }
        };
        if !self.dry_run {
            match action {
                Action::Create => self.result.created += 1,
                Action::Replace => self.result.replaced += 1,
                _ => {}
            }
        }
        let meta = matches!(action, Action::Create | Action::Replace | Action::Merge)
            || (action == Action::Leading && parent.is_none());
        self.stack.push(Level {
            name: name.as_encoded_bytes().to_vec(),
            fd,
            meta: meta.then(|| (rel.to_string(), node)),
        });
    }

    /// Renames what is at `name` aside, keeping it: `NAME.before-restore-STAMP[-N]`.
    fn aside(&mut self, dir: &Dir, name: &OsStr, rel: &str) -> std::io::Result<()> {
        for n in 1..1000 {
            let mut kept = name.to_os_string();
            kept.push(format!(".before-restore-{}", self.stamp));
            if n > 1 {
                kept.push(format!("-{n}"));
            }
            match t::rename_noreplace(dir, name, &kept) {
                Ok(()) => {
                    let shown = match rel.rsplit_once('/') {
                        Some((p, _)) => format!("{p}/{}", kept.to_string_lossy()),
                        None => kept.to_string_lossy().into_owned(),
                    };
                    self.result.kept_aside.push((rel.to_string(), shown));
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other(
            "no free name to keep the existing entry",
        ))
    }

    fn metadata(
        &mut self,
        dir: &Dir,
        name: &OsStr,
        node: &Node,
        planned: &Option<Meta>,
    ) -> Result<()> {
        let fd = t::open_to_change(dir, name).at(name)?;
        // Only the entry that was planned, never another one swapped in since.
        let st = t::meta_of(&fd).at(name)?;
        let same = planned.as_ref().is_some_and(|p| p.id == st.id);
        if !same || st.kind != NodeKind::File {
            return Err(Error::io(
                name,
                std::io::Error::other("changed while restoring; left as is"),
            ));
        }
        let n = self.meta_for_copy(node);
        t::apply_meta(&fd, &n, self.chown).at(name)
    }

    fn start_file(
        &mut self,
        rel: &str,
        dir: Dir,
        name: &OsStr,
        node: Node,
        action: Action,
    ) -> Result<()> {
        let replace = action == Action::Replace;
        let written = if replace {
            crate::restore::temp_name(name)
        } else {
            name.to_os_string()
        };
        let file = t::create_file(&dir, &written).at(rel)?;
        self.current = Current::Write(Box::new(Incoming {
            rel: rel.to_string(),
            dir,
            written,
            name: name.to_os_string(),
            file,
            offset: 0,
            node,
            replace,
        }));
        Ok(())
    }

    fn special(
        &mut self,
        rel: &str,
        dir: &Dir,
        name: &OsStr,
        node: &Node,
        action: Action,
    ) -> Result<()> {
        let tmp = crate::restore::temp_name(name);
        let n = self.meta_for_copy(node);
        t::make_special(dir, &tmp, &n, self.chown)
            .at(rel)
            .and_then(|()| self.move_in(dir, &tmp, name, rel, action == Action::Replace))
            .inspect_err(|_| {
                let _ = t::remove_file(dir, &tmp);
            })
    }

    /// Moves the new entry `tmp` to `name`, keeping what was there aside when replacing.
    fn move_in(
        &mut self,
        dir: &Dir,
        tmp: &OsStr,
        name: &OsStr,
        rel: &str,
        replace: bool,
    ) -> Result<()> {
        if replace {
            self.aside(dir, name, rel).at(rel)?;
        }
        t::rename_noreplace(dir, tmp, name).at(rel)
    }

    /// The next bytes of the current file.
    pub fn data(&mut self, bytes: &[u8]) {
        let Current::Write(f) = &mut self.current else {
            return;
        };
        match crate::restore::write_sparse(&f.file, bytes, f.offset) {
            Ok(_) => f.offset += bytes.len() as u64,
            Err(err) => self.abandon_current(&err.to_string()),
        }
    }

    /// The current file is complete.
    pub fn file_end(&mut self) {
        let Current::Write(f) = std::mem::replace(&mut self.current, Current::Discard) else {
            return;
        };
        let f = *f;
        let node = self.meta_for_copy(&f.node);
        let done = f
            .file
            .set_len(f.offset)
            .and_then(|()| t::apply_meta(&f.file, &node, self.chown))
            .at(&f.rel);
        drop(f.file);
        let done = done.and_then(|()| {
            if f.replace {
                self.move_in(&f.dir, &f.written, &f.name, &f.rel, true)
            } else {
                Ok(())
            }
        });
        match done {
            Ok(()) => {
                self.result.bytes_written += f.offset;
                if f.replace {
                    self.result.replaced += 1;
                } else {
                    self.result.created += 1;
                }
            }
            Err(err) => {
                let _ = t::remove_file(&f.dir, &f.written);
                self.warn(&f.rel, err.to_string());
            }
        }
    }

    /// The current entry failed on the sending side.
    pub fn warning(&mut self, w: frame::Warning) {
        if let Current::Write(f) = std::mem::replace(&mut self.current, Current::Discard) {
            let _ = t::remove_file(&f.dir, &f.written);
        }
        self.warn(&w.path, w.message);
    }

    /// Drops a file being written (what was written of it is removed).
    fn abandon_current(&mut self, why: &str) {
        if let Current::Write(f) = std::mem::replace(&mut self.current, Current::Discard) {
            let _ = t::remove_file(&f.dir, &f.written);
            self.warn(&f.rel, why.to_string());
        }
    }

    /// The end of the stream: the remaining directories get their metadata; what was done.
    pub fn finish(mut self) -> RestoreResult {
        self.abandon_current("its content was not complete");
        self.pop_to(0);
        self.result
    }

    /// The target directory.
    pub fn target(&self) -> &Path {
        &self.target
    }
}
