//! Incremental parsing: a cache of the parses of a file's pieces, kept between edits.
//!
//! The parser cuts a file into declaration chunks and a workflow into member chunks
//! ([`super::recovery`]). What a piece parses to depends only on its *key*: its text, the doc
//! comments right before it (they are attached to it), and whether its first token starts a
//! line or column 0 (recovery and messages look at that). So the parse of a piece whose key
//! did not change is reused, its spans moved to where the piece now starts
//! ([`super::shift`]): a one-character edit in a 5000-line workflow re-parses one step.
//!
//! Invariants:
//! - [`ParseCache::parse`] returns exactly what [`super::parse`] returns for the same text
//!   (tree, comments, diagnostics, in the same order); a property test edits programs at
//!   random and compares;
//! - the cache is a plain value owned by its caller (the language server keeps one per
//!   program): no globals, no I/O;
//! - it holds only the pieces of the latest parse of its file, so it never grows past a copy
//!   of the file's pieces.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::ast::{Item, WorkflowMember};
use super::parser::{self, Parse};
use super::shift::Shift;
use crate::diagnostics::Diagnostic;
use crate::span::FileId;

/// The parses of one file's pieces, to make the next parse of the file incremental.
#[derive(Debug, Default)]
pub struct ParseCache {
    memo: Memo,
}

impl ParseCache {
    /// An empty cache.
    pub fn new() -> ParseCache {
        ParseCache::default()
    }

    /// Parses `text` as file `file`, reusing the pieces that did not change since the last
    /// call. The result is the same as [`super::parse`]'s.
    pub fn parse(&mut self, file: FileId, text: &str) -> Parse {
        if self.memo.file != Some(file) {
            // Diagnostics name their file: pieces of another file id are of no use.
            self.memo = Memo {
                file: Some(file),
                ..Memo::default()
            };
        }
        let parse = parser::parse_memo(file, text, &mut self.memo);
        self.memo.evict();
        parse
    }
}

/// One cached piece: its tree as it was (absolute spans), where its key text started then, and
/// the diagnostics parsing it reported.
#[derive(Debug)]
struct Entry<T> {
    value: T,
    diags: Vec<Diagnostic>,
    origin: u32,
    /// The parse (generation) that last used it.
    used: u64,
}

/// The pieces of the latest parse, by key (see the module's comment). The parser keeps it
/// current: `parser::parse_memo` looks pieces up and stores the ones it had to parse.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    file: Option<FileId>,
    generation: u64,
    items: HashMap<String, Entry<Option<Item>>, BuildHasherDefault<WordHasher>>,
    members: HashMap<String, Entry<WorkflowMember>, BuildHasherDefault<WordHasher>>,
}

/// A fast hash for the keys (the text of every piece is hashed on every parse; SipHash cost
/// a few percent of an incremental analysis). Eight bytes per step, as rustc's `FxHasher`;
/// resistance to crafted collisions does not matter for an editor's own text.
#[derive(Default)]
struct WordHasher(u64);

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.add(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
    }

    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Takes a copy of a cached entry, moved from its old origin to `origin`.
fn reuse<T: Clone + Shift>(
    entry: &mut Entry<T>,
    origin: usize,
    generation: u64,
) -> (T, Vec<Diagnostic>) {
    entry.used = generation;
    let delta = (origin as u32).wrapping_sub(entry.origin);
    let mut value = entry.value.clone();
    let mut diags = entry.diags.clone();
    if delta != 0 {
        value.shift(delta);
        diags.shift(delta);
    }
    (value, diags)
}

impl Memo {
    /// Starts a parse.
    pub(crate) fn begin(&mut self) {
        self.generation += 1;
    }

    /// Drops the pieces the latest parse did not use.
    fn evict(&mut self) {
        let g = self.generation;
        self.items.retain(|_, e| e.used == g);
        self.members.retain(|_, e| e.used == g);
    }

    /// The declaration cached under `key`, moved to `origin`.
    pub(crate) fn item(
        &mut self,
        key: &str,
        origin: usize,
    ) -> Option<(Option<Item>, Vec<Diagnostic>)> {
        let g = self.generation;
        self.items.get_mut(key).map(|e| reuse(e, origin, g))
    }

    /// Caches the parse of a declaration.
    pub(crate) fn put_item(
        &mut self,
        key: String,
        origin: usize,
        value: Option<Item>,
        diags: Vec<Diagnostic>,
    ) {
        let used = self.generation;
        self.items.insert(
            key,
            Entry {
                value,
                diags,
                origin: origin as u32,
                used,
            },
        );
    }

    /// The workflow member cached under `key`, moved to `origin`.
    pub(crate) fn member(
        &mut self,
        key: &str,
        origin: usize,
    ) -> Option<(WorkflowMember, Vec<Diagnostic>)> {
        let g = self.generation;
        self.members.get_mut(key).map(|e| reuse(e, origin, g))
    }

    /// Caches the parse of a workflow member.
    pub(crate) fn put_member(
        &mut self,
        key: String,
        origin: usize,
        value: WorkflowMember,
        diags: Vec<Diagnostic>,
    ) {
        let used = self.generation;
        self.members.insert(
            key,
            Entry {
                value,
                diags,
                origin: origin as u32,
                used,
            },
        );
    }
}
