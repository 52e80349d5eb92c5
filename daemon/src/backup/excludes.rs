//! What a backup leaves out: exclude patterns (by name anywhere, or by path from the root)
//! and the `only` selection (a pre-restore save of a few paths).

use crate::error::{Error, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};

/// Compiled exclude patterns.
#[derive(Debug)]
pub(crate) struct Excludes {
    names: GlobSet,
    paths: GlobSet,
}

impl Excludes {
    pub(crate) fn new(patterns: &[String]) -> Result<Excludes> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        for p in patterns {
            let glob = GlobBuilder::new(p.trim_start_matches('/'))
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| Error::Invalid(format!("exclude pattern {p:?}: {e}")))?;
            if p.contains('/') {
                paths.add(glob);
            } else {
                names.add(glob);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build()
                .map_err(|e| Error::Invalid(format!("exclude patterns: {e}")))
        };
        Ok(Excludes {
            names: build(names)?,
            paths: build(paths)?,
        })
    }

    pub(crate) fn excluded(&self, name: &std::ffi::OsStr, rel: &Path) -> bool {
        self.names.is_match(name) || self.paths.is_match(rel)
    }
}

/// Whether an entry is in an `only` selection.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Include {
    /// Everything at and below.
    All,
    /// A directory leading to a selected path.
    Leading,
    /// Nothing.
    No,
}

/// An `only` selection, sorted: where an entry stands is found in O(depth · log n), so a
/// pre-restore save of 10,000 paths does not compare every entry with every path.
#[derive(Debug)]
pub(super) struct Only(BTreeSet<PathBuf>);

impl Only {
    pub(super) fn new(paths: &[PathBuf]) -> Only {
        Only(paths.iter().cloned().collect())
    }

    /// Where `rel` stands with respect to the selection.
    pub(super) fn include(&self, rel: &Path) -> Include {
        if rel.ancestors().any(|a| self.0.contains(a)) {
            Include::All
        } else if self
            .0
            .range::<Path, _>((Bound::Excluded(rel), Bound::Unbounded))
            .next()
            .is_some_and(|p| p.starts_with(rel))
        {
            // Paths are ordered by components: those below `rel` follow it.
            Include::Leading
        } else {
            Include::No
        }
    }
}

/// Where `rel` stands with respect to the selection (`None`: everything).
pub(super) fn include(rel: &Path, only: Option<&Only>) -> Include {
    only.map_or(Include::All, |o| o.include(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_match_names_anywhere_and_paths_from_the_root() {
        let ex = Excludes::new(&[
            "~$*".into(),
            "*.tmp".into(),
            "Thumbs.db".into(),
            "archives/*.img".into(),
        ])
        .unwrap();
        let cases = [
            ("a/b/~$devis.docx", true),
            ("x.tmp", true),
            ("deep/er/Thumbs.db", true),
            ("archives/disk.img", true),
            ("other/archives/disk.img", false),
            ("devis.docx", false),
            ("tmp", false),
        ];
        for (rel, want) in cases {
            let p = Path::new(rel);
            assert_eq!(ex.excluded(p.file_name().unwrap(), p), want, "{rel}");
        }
    }

    #[test]
    fn bad_exclude_pattern_is_named() {
        let err = Excludes::new(&["[oops".into()]).unwrap_err();
        assert!(err.to_string().contains("[oops"), "{err}");
    }

    #[test]
    fn only_filter_includes_the_path_its_contents_and_leading_dirs() {
        let only = Only::new(&[
            PathBuf::from("a/b"),
            PathBuf::from("a/c d/e"),
            PathBuf::from("ab"),
        ]);
        let o = Some(&only);
        let cases = [
            ("a", Include::Leading),
            ("a/b", Include::All),
            ("a/b/c", Include::All),
            ("a/c", Include::No),
            ("a/c d", Include::Leading),
            ("a/c d/e/f", Include::All),
            ("a/c d/ee", Include::No),
            ("a/b c", Include::No),
            ("ab", Include::All),
            ("abc", Include::No),
            ("a/a", Include::No),
            ("b", Include::No),
        ];
        for (rel, want) in cases {
            assert_eq!(include(Path::new(rel), o), want, "{rel}");
        }
        assert_eq!(include(Path::new("z"), None), Include::All);
    }
}
