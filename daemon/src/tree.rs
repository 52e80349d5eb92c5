//! Trees: one blob per directory listing its entries (nodes) with their metadata, content blob
//! ids (files) or subtree id (directories). The encoding is deterministic (JSON with a fixed
//! field order, entries sorted by name bytes), so an unchanged directory encodes to the same
//! bytes, hashes to the same id, and is stored once.
//!
//! Names, symlink targets and xattr names are byte strings (Unix names need not be UTF-8):
//! they are written as JSON strings when they are UTF-8 and as arrays of bytes otherwise.
//! This module never trusts a name it decodes: [`Node::checked_name`] refuses anything that
//! could escape a restore target.

use crate::id::Id;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::ffi::{OsStr, OsString};
use std::fmt;
#[cfg(unix)]
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// A byte string that serializes as a JSON string when it is UTF-8.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// As an OS string (a file name or path). On Windows names are Unicode: bytes that are
    /// not UTF-8 (a Linux backup's Latin-1 name) read as U+FFFD, and
    /// [`Node::checked_name`] refuses them.
    pub fn as_os_str(&self) -> &OsStr {
        #[cfg(unix)]
        return OsStr::from_bytes(&self.0);
        #[cfg(windows)]
        OsStr::new(std::str::from_utf8(&self.0).unwrap_or("\u{fffd}"))
    }
    /// Lossy text for display.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

impl From<&OsStr> for Bytes {
    fn from(s: &OsStr) -> Bytes {
        Bytes(s.as_encoded_bytes().to_vec())
    }
}

impl From<OsString> for Bytes {
    fn from(s: OsString) -> Bytes {
        #[cfg(unix)]
        return Bytes(s.into_vec());
        #[cfg(windows)]
        Bytes(s.into_encoded_bytes())
    }
}

impl From<&str> for Bytes {
    fn from(s: &str) -> Bytes {
        Bytes(s.as_bytes().to_vec())
    }
}

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => s.collect_seq(self.0.iter()),
        }
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
                Ok(Bytes(v.as_bytes().to_vec()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Bytes(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Hex-encoded byte values (xattr values are binary: ACLs, capabilities).
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        hex::decode(s.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// What kind of filesystem entry a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link (stored, never followed).
    Symlink,
    /// Named pipe.
    Fifo,
    /// Unix socket (recorded; cannot be restored meaningfully).
    Socket,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
}

impl NodeKind {
    /// A word for messages.
    pub fn word(self) -> &'static str {
        match self {
            NodeKind::File => "file",
            NodeKind::Dir => "directory",
            NodeKind::Symlink => "symlink",
            NodeKind::Fifo => "fifo",
            NodeKind::Socket => "socket",
            NodeKind::CharDevice => "character device",
            NodeKind::BlockDevice => "block device",
        }
    }

    /// The letter `ls -l` shows.
    pub fn letter(self) -> char {
        match self {
            NodeKind::File => '-',
            NodeKind::Dir => 'd',
            NodeKind::Symlink => 'l',
            NodeKind::Fifo => 'p',
            NodeKind::Socket => 's',
            NodeKind::CharDevice => 'c',
            NodeKind::BlockDevice => 'b',
        }
    }
}

/// An extended attribute (POSIX ACLs are `system.posix_acl_access` / `_default`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Xattr {
    /// Attribute name.
    pub name: Bytes,
    /// Attribute value.
    #[serde(with = "hex_bytes")]
    pub value: Vec<u8>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One entry of a directory, with everything needed to restore it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Entry name (one path component).
    pub name: Bytes,
    /// Entry kind.
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// Permission bits, with setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
    /// Owner id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Owner name at backup time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Group name at backup time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Status change time, ns since the epoch (change detection only).
    pub ctime_ns: i64,
    /// Inode number (change detection and hard links).
    pub inode: u64,
    /// Device number (hard links).
    pub device: u64,
    /// Link count.
    pub links: u64,
    /// Size in bytes (files).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// Content blobs, in order (files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<Id>,
    /// Subtree (directories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<Id>,
    /// Link target (symlinks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Bytes>,
    /// Device number (devices).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rdev: u64,
    /// Extended attributes, sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xattrs: Vec<Xattr>,
    /// Windows: the owner, group and DACL as SDDL (backups made on Windows; absent elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<String>,
    /// Windows: the file attributes kept (`FILE_ATTRIBUTE_*`: read-only, hidden, system,
    /// archive, not content indexed; backups made on Windows, absent elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<u32>,
}

impl Node {
    /// The name, if it is a single safe path component: not empty, not `.` or `..`, and
    /// without `/` or NUL. Anything else could escape a restore target.
    pub fn checked_name(&self) -> Option<&OsStr> {
        let n = &self.name.0;
        let bad = n.is_empty()
            || n.as_slice() == b"."
            || n.as_slice() == b".."
            || n.iter().any(|&b| b == b'/' || b == 0);
        // On Windows a name is Unicode and holds no `\` (a separator) nor `:` (a stream).
        #[cfg(windows)]
        let bad =
            bad || std::str::from_utf8(n).is_err() || n.iter().any(|&b| b == b'\\' || b == b':');
        (!bad).then(|| self.name.as_os_str())
    }

    /// Whether the content (and kind) is the same as `other`'s.
    pub fn same_content(&self, other: &Node) -> bool {
        self.kind == other.kind
            && self.size == other.size
            && self.content == other.content
            && self.target == other.target
            && self.subtree == other.subtree
            && self.rdev == other.rdev
    }

    /// Whether the restorable metadata is the same (mode, owner, mtime, xattrs).
    pub fn same_metadata(&self, other: &Node) -> bool {
        self.mode == other.mode
            && self.uid == other.uid
            && self.gid == other.gid
            && self.mtime_ns == other.mtime_ns
            && self.xattrs == other.xattrs
            && self.security == other.security
            && self.attributes == other.attributes
    }

    /// A stable id for the file's content (the hash of its blob ids), to group versions.
    pub fn content_id(&self) -> Id {
        let mut buf = Vec::with_capacity(self.content.len() * 32 + 8);
        buf.extend_from_slice(&self.size.to_le_bytes());
        for id in &self.content {
            buf.extend_from_slice(&id.0);
        }
        Id::hash(&buf)
    }
}

/// A directory's entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Tree {
    /// Entries, sorted by name bytes.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The deterministic encoding (sorts the nodes first).
    pub fn encode(&mut self) -> Vec<u8> {
        self.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        serde_json::to_vec(self).expect("a tree always serializes")
    }

    /// Decodes a tree blob.
    pub fn decode(bytes: &[u8]) -> Result<Tree, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The entry with this name.
    pub fn find(&self, name: &[u8]) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.0.as_slice().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &[u8]) -> Node {
        Node {
            name: Bytes(name.to_vec()),
            kind: NodeKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            user: Some("root".into()),
            group: None,
            mtime_ns: 1_700_000_000_123_456_789,
            ctime_ns: 1,
            inode: 2,
            device: 3,
            links: 1,
            size: 5,
            content: vec![Id::hash(b"x")],
            subtree: None,
            target: None,
            rdev: 0,
            xattrs: vec![Xattr {
                name: "system.posix_acl_access".into(),
                value: vec![2, 0, 0, 0, 255],
            }],
            security: None,
            attributes: None,
        }
    }

    #[test]
    fn encoding_is_deterministic_whatever_the_input_order() {
        let mut a = Tree {
            nodes: vec![node(b"b"), node(b"a"), node(b"\xff\xfe")],
        };
        let mut b = Tree {
            nodes: vec![node(b"\xff\xfe"), node(b"a"), node(b"b")],
        };
        assert_eq!(a.encode(), b.encode());
        let back = Tree::decode(&a.encode()).unwrap();
        assert_eq!(back, a);
        assert!(back.find(b"\xff\xfe").is_some());
        assert!(back.find(b"c").is_none());
    }

    #[test]
    fn non_utf8_names_round_trip_and_utf8_names_stay_readable() {
        let mut t = Tree {
            nodes: vec![node("Propositions é".as_bytes()), node(b"bad\xff")],
        };
        let json = String::from_utf8(t.encode()).unwrap();
        assert!(json.contains("\"Propositions é\""), "{json}");
        assert_eq!(Tree::decode(json.as_bytes()).unwrap(), t);
    }

    #[test]
    fn unsafe_names_are_refused() {
        for bad in [&b""[..], b".", b"..", b"../etc", b"a/b", b"/abs", b"nul\0"] {
            assert!(node(bad).checked_name().is_none(), "{bad:?} accepted");
        }
        assert!(node(b"..hidden").checked_name().is_some());
    }
}
