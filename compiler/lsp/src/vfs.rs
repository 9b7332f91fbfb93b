//! The editor's view of the files: open documents (unsaved buffers are the truth) over the
//! disk, the URIs of files and of the embedded standard library, and how a file finds the
//! program it belongs to.
//!
//! Paths: the core names files by strings; here a `file:` URI maps to its file system path
//! (with `/` separators), a standard-library module to its core path `<std>/NAME.sflow` and the
//! URI `sflow-std:///NAME.sflow` (served read-only by the `sflow/stdlibSource` request), and
//! any other URI (`untitled:`) to its own text.

use lsp_types::Url;
use sflow_compiler::sources::{join_relative, LoadedText, SourceLoader};
use sflow_compiler::span::{FileId, LineIndex};
use sflow_compiler::stdlib;
use sflow_compiler::syntax::ast::{Item, UseTarget};
use sflow_compiler::syntax::parse;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The URI scheme of the embedded standard library.
pub const STD_SCHEME: &str = "sflow-std";

/// One open document.
#[derive(Clone, Debug)]
pub struct Document {
    /// The editor's URI.
    pub uri: Url,
    /// The current text (the editor's buffer, saved or not).
    pub text: String,
    /// The editor's version of it.
    pub version: i32,
    /// Line starts of `text`.
    pub lines: LineIndex,
}

/// The open documents, by path.
#[derive(Debug, Default)]
pub struct Vfs {
    docs: BTreeMap<String, Document>,
}

impl Vfs {
    /// Opens (or replaces) a document.
    pub fn open(&mut self, uri: Url, text: String, version: i32) {
        let lines = LineIndex::new(&text);
        self.docs.insert(
            path_of(&uri),
            Document {
                uri,
                text,
                version,
                lines,
            },
        );
    }

    /// Replaces a document's text.
    pub fn set_text(&mut self, uri: &Url, text: String, version: i32) {
        if let Some(doc) = self.docs.get_mut(&path_of(uri)) {
            doc.lines = LineIndex::new(&text);
            doc.text = text;
            doc.version = version;
        }
    }

    /// Forgets a document (its file on disk is the truth again).
    pub fn close(&mut self, uri: &Url) {
        self.docs.remove(&path_of(uri));
    }

    /// The open document at `path`.
    pub fn get(&self, path: &str) -> Option<&Document> {
        self.docs.get(path)
    }

    /// Every open document.
    pub fn docs(&self) -> impl Iterator<Item = (&String, &Document)> {
        self.docs.iter()
    }

    /// The text of `path`: the open buffer, else the file on disk, else the embedded std
    /// module.
    pub fn text(&self, path: &str) -> Option<String> {
        if let Some(doc) = self.docs.get(path) {
            return Some(doc.text.clone());
        }
        if let Some(module) = std_module(path) {
            return Some(module.text.to_string());
        }
        std::fs::read_to_string(path).ok()
    }

    /// The path of the program root that `path` belongs to, found explicitly (never guessed
    /// from the editor's state alone):
    /// 1. a file that declares an `app` is the root of its own program;
    /// 2. otherwise, an open document or a `.sflow` file in the same folder or the one above
    ///    that declares an `app` and imports `path` (directly or through other imports);
    /// 3. otherwise the file is checked on its own.
    pub fn root_of(&self, path: &str) -> String {
        let Some(text) = self.text(path) else {
            return path.to_string();
        };
        if declares_app(&text) || std_module(path).is_some() {
            return path.to_string();
        }
        let mut candidates: BTreeSet<String> = self.docs.keys().cloned().collect();
        let dir = parent(path);
        for folder in [dir.clone(), parent(&dir)] {
            if folder.is_empty() {
                continue;
            }
            if let Ok(entries) = std::fs::read_dir(&folder) {
                for entry in entries.filter_map(Result::ok).take(500) {
                    let p = entry.path();
                    if p.extension().is_some_and(|e| e == "sflow") {
                        candidates.insert(p.to_string_lossy().replace('\\', "/"));
                    }
                }
            }
        }
        for candidate in candidates {
            if candidate == path {
                continue;
            }
            let Some(text) = self.text(&candidate) else {
                continue;
            };
            if declares_app(&text) && self.imports_transitively(&candidate, &text, path) {
                return candidate;
            }
        }
        path.to_string()
    }

    /// Whether the program rooted at `root` reaches `target` through `use "…"` imports.
    fn imports_transitively(&self, root: &str, root_text: &str, target: &str) -> bool {
        let mut seen = BTreeSet::from([root.to_string()]);
        let mut queue = VecDeque::from([(root.to_string(), root_text.to_string())]);
        while let Some((from, text)) = queue.pop_front() {
            for relative in file_imports(&text) {
                let path = join_relative(&from, &relative);
                if path == target {
                    return true;
                }
                if seen.len() < 200 && seen.insert(path.clone()) {
                    if let Some(text) = self.text(&path) {
                        queue.push_back((path, text));
                    }
                }
            }
        }
        false
    }
}

/// The loader the core reads imports through: open buffers first, then the disk.
pub struct Loader<'v>(pub &'v Vfs);

impl SourceLoader for Loader<'_> {
    fn load(&self, from: &str, relative: &str) -> Result<LoadedText, String> {
        let path = join_relative(from, relative);
        if let Some(doc) = self.0.get(&path) {
            return Ok(LoadedText {
                path,
                text: doc.text.clone(),
            });
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(LoadedText { path, text }),
            Err(e) => Err(format!("{} (looked for `{path}`)", reason(&e))),
        }
    }
}

fn reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_string();
    let mut chars = text.chars();
    chars
        .next()
        .map_or(String::new(), |c| c.to_lowercase().chain(chars).collect())
}

fn declares_app(text: &str) -> bool {
    parse(FileId(0), text)
        .file
        .items
        .iter()
        .any(|i| matches!(i, Item::App(_)))
}

fn file_imports(text: &str) -> Vec<String> {
    parse(FileId(0), text)
        .file
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Use(u) => match &u.target {
                UseTarget::File(s) => s.as_plain(),
                UseTarget::Path { .. } => None,
            },
            _ => None,
        })
        .collect()
}

fn parent(path: &str) -> String {
    match path.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) => path.get(..i).unwrap_or("").to_string(),
        None => String::new(),
    }
}

/// The embedded std module whose core path is `path` (`<std>/torch.sflow`).
pub fn std_module(path: &str) -> Option<&'static stdlib::StdModule> {
    std::iter::once(&stdlib::PRELUDE)
        .chain(stdlib::MODULES.iter())
        .find(|m| m.path == path)
}

/// The core's path for a URI.
pub fn path_of(uri: &Url) -> String {
    if uri.scheme() == STD_SCHEME {
        return format!("<std>{}", uri.path());
    }
    if uri.scheme() == "file" {
        if let Ok(path) = uri.to_file_path() {
            return path.to_string_lossy().replace('\\', "/");
        }
    }
    uri.to_string()
}

/// The URI for a core path.
pub fn uri_of(path: &str) -> Option<Url> {
    if let Some(rest) = path.strip_prefix("<std>") {
        return Url::parse(&format!("{STD_SCHEME}://{rest}")).ok();
    }
    if path.starts_with('/') {
        return Url::from_file_path(path).ok();
    }
    if let Ok(url) = Url::parse(path) {
        return Some(url);
    }
    std::env::current_dir()
        .ok()
        .and_then(|dir| Url::from_file_path(dir.join(path)).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_uris_round_trip() {
        let uri = uri_of("<std>/torch.sflow");
        assert_eq!(
            uri.as_ref().map(Url::as_str),
            Some("sflow-std:///torch.sflow")
        );
        assert_eq!(
            uri.map(|u| path_of(&u)).as_deref(),
            Some("<std>/torch.sflow")
        );
        assert!(std_module("<std>/prelude.sflow").is_some());
    }

    #[test]
    fn file_uris_round_trip() {
        let uri = uri_of("/tmp/x y/main.sflow");
        assert_eq!(
            uri.as_ref().map(path_of).as_deref(),
            Some("/tmp/x y/main.sflow")
        );
    }

    #[test]
    fn an_imported_file_finds_its_root_among_open_documents() {
        let mut vfs = Vfs::default();
        let main = uri_of("/nowhere/app/main.sflow").unwrap_or_else(|| panic!("uri"));
        let common = uri_of("/nowhere/app/lib/common.sflow").unwrap_or_else(|| panic!("uri"));
        vfs.open(main, "app a {}\nuse \"./lib/common.sflow\"\n".into(), 1);
        vfs.open(common, "workflow w {}\n".into(), 1);
        assert_eq!(
            vfs.root_of("/nowhere/app/lib/common.sflow"),
            "/nowhere/app/main.sflow"
        );
        assert_eq!(
            vfs.root_of("/nowhere/app/main.sflow"),
            "/nowhere/app/main.sflow"
        );
    }
}
