//! Problems found in policy files, each located (file:line:column) with a hint saying what to
//! do. Validation collects every problem before reporting, so an admin fixes them in one pass.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The policy file.
    pub file: PathBuf,
    /// 1-based line (0 when the problem is about the whole file).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )?;
        }
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

/// Turns byte offsets of one file into line:column.
#[derive(Debug, Clone)]
pub struct Locator {
    file: PathBuf,
    line_starts: Vec<usize>,
    text_len: usize,
}

impl Locator {
    /// A locator for `text`, read from `file`.
    pub fn new(file: &Path, text: &str) -> Locator {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Locator {
            file: file.to_path_buf(),
            line_starts,
            text_len: text.len(),
        }
    }

    /// The file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// 1-based (line, column) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text_len);
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let col = offset - self.line_starts[line - 1] + 1;
        (line, col)
    }

    /// A problem at a byte span (or the whole file).
    pub fn problem(
        &self,
        span: Option<std::ops::Range<usize>>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Problem {
        let (line, column) = span.map(|s| self.position(s.start)).unwrap_or((0, 0));
        Problem {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// Every problem found, in file and line order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds one.
    pub fn push(&mut self, p: Problem) {
        self.0.push(p);
    }

    /// Sorts by file, line, column.
    pub fn sort(&mut self) {
        self.0
            .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_columns() {
        let l = Locator::new(Path::new("p.toml"), "ab\ncd\n\nefg");
        assert_eq!(l.position(0), (1, 1));
        assert_eq!(l.position(1), (1, 2));
        assert_eq!(l.position(3), (2, 1));
        assert_eq!(l.position(6), (3, 1));
        assert_eq!(l.position(9), (4, 3));
    }
}
