//! The source files of one program: the user's files and the embedded standard library.
//!
//! Invariants:
//! - the core never reads files: a [`SourceLoader`] supplied by the caller (the CLI reads the
//!   disk, the language server answers from its overlay of unsaved buffers) provides text;
//! - [`FileId`]s are dense indices into [`Sources::files`], stable for one analysis.

use crate::span::{FileId, LineCol, LineIndex, Span};

/// Where a source file came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A user file, by the path the loader gave it.
    User,
    /// An embedded standard-library module (`std.torch`, or `prelude`).
    Std(&'static str),
}

/// One source file.
#[derive(Clone, Debug)]
pub struct Source {
    /// Its id.
    pub id: FileId,
    /// The path (as the loader named it) or `<std>/torch.sflow` for stdlib modules.
    pub path: String,
    /// The full text.
    pub text: String,
    /// User file or stdlib module.
    pub origin: Origin,
    /// Line starts, for positions.
    pub lines: LineIndex,
}

impl Source {
    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> LineCol {
        self.lines.line_col(&self.text, offset)
    }

    /// The text covered by `span`.
    pub fn slice(&self, span: Span) -> &str {
        span.text(&self.text)
    }
}

/// All files of a program.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// Indexed by `FileId.0`.
    pub files: Vec<Source>,
}

impl Sources {
    /// Adds a file and returns its id.
    pub fn add(
        &mut self,
        path: impl Into<String>,
        text: impl Into<String>,
        origin: Origin,
    ) -> FileId {
        let id = FileId(self.files.len() as u32);
        let text = text.into();
        let lines = LineIndex::new(&text);
        self.files.push(Source {
            id,
            path: path.into(),
            text,
            origin,
            lines,
        });
        id
    }

    /// The file with id `id`.
    ///
    /// Ids are only made by [`Sources::add`], so an unknown id is a bug in the caller.
    pub fn get(&self, id: FileId) -> &Source {
        &self.files[id.0 as usize]
    }

    /// The user file with this path, if loaded.
    pub fn find(&self, path: &str) -> Option<&Source> {
        self.files
            .iter()
            .find(|f| f.origin == Origin::User && f.path == path)
    }
}

/// A file's text as a loader returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedText {
    /// The path by which the file is known from now on (normalised by the loader, so that two
    /// imports of the same file are recognised as one).
    pub path: String,
    /// The text.
    pub text: String,
}

/// Supplies the text of imported files.
pub trait SourceLoader {
    /// Loads `relative` (as written in `use "…"`) imported from the file at `from`.
    ///
    /// The error is a human-readable reason ("no such file"), reported at the `use`.
    fn load(&self, from: &str, relative: &str) -> Result<LoadedText, String>;
}

/// A loader that knows no files: every `use "…"` of a file fails. For single-file analysis
/// and tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFiles;

impl SourceLoader for NoFiles {
    fn load(&self, _from: &str, relative: &str) -> Result<LoadedText, String> {
        Err(format!(
            "cannot import `{relative}`: no file loader was given"
        ))
    }
}

/// An in-memory loader: a map from normalised path to text. Paths are joined to the
/// importing file's directory and normalised (`./`, `../`).
#[derive(Clone, Debug, Default)]
pub struct MemoryFiles {
    /// Path → text.
    pub files: std::collections::BTreeMap<String, String>,
}

impl SourceLoader for MemoryFiles {
    fn load(&self, from: &str, relative: &str) -> Result<LoadedText, String> {
        let path = join_relative(from, relative);
        self.files
            .get(&path)
            .map(|text| LoadedText {
                path: path.clone(),
                text: text.clone(),
            })
            .ok_or_else(|| format!("no such file: {path}"))
    }
}

/// Joins `relative` to the directory of `from` and normalises `.` and `..` segments, with
/// `/` separators. Pure string work: no file system access.
pub fn join_relative(from: &str, relative: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if !relative.starts_with('/') {
        parts.extend(from.split('/'));
        parts.pop(); // the importing file's own name
    }
    for segment in relative.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if matches!(parts.last(), Some(&p) if p != ".." && !p.is_empty()) {
                    parts.pop();
                } else {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if relative.starts_with('/') || from.starts_with('/') {
        format!("/{}", joined.trim_start_matches('/'))
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_relative_normalises() {
        assert_eq!(
            join_relative("app/main.sflow", "./common.sflow"),
            "app/common.sflow"
        );
        assert_eq!(
            join_relative("app/main.sflow", "../lib/x.sflow"),
            "lib/x.sflow"
        );
        assert_eq!(
            join_relative("/a/b/main.sflow", "./c.sflow"),
            "/a/b/c.sflow"
        );
        assert_eq!(join_relative("main.sflow", "x.sflow"), "x.sflow");
        assert_eq!(join_relative("main.sflow", "../x.sflow"), "../x.sflow");
    }
}
