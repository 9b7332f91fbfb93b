//! Property: on any edit of a real program (random insertions of the characters that break
//! parsers — braces, quotes, dots, comment openers, multi-byte characters, line breaks — and
//! random deletions), every handler answers at every position without panicking.
//! In process, so it can try many more texts than the protocol tests.

#![allow(clippy::unwrap_used)]

use lsp_types::{Position, Url};
use proptest::prelude::*;
use sflow_lsp::handlers;
use sflow_lsp::vfs::{uri_of, Vfs};
use sflow_lsp::world::Snapshot;

const MNIST: &str = include_str!("../../../examples/mnist/mnist.sflow");
const PIECES: &[&str] = &[
    "{",
    "}",
    "\"",
    ".",
    "(",
    ")",
    "/*",
    "//",
    "{{",
    "é",
    "😀",
    "\n",
    ",",
    "=",
    "->",
    "agent x: ",
    "then ",
];

fn edit(text: &str, ops: &[(usize, usize, bool)]) -> String {
    let mut text = text.to_string();
    for &(at, piece, delete) in ops {
        let mut at = at % (text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        if delete {
            let mut end = (at + 1 + piece % 8).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.replace_range(at..end, "");
        } else {
            text.insert_str(at, PIECES[piece % PIECES.len()]);
        }
    }
    text
}

fn every_handler(text: &str, positions: &[usize]) {
    let path = "/nowhere/robust/main.sflow";
    let uri: Url = uri_of(path).unwrap();
    let mut vfs = Vfs::default();
    vfs.open(uri.clone(), text.to_string(), 1);
    let mut cache = sflow_compiler::analysis::AnalysisCache::default();
    let snap = Snapshot::compute(&vfs, path, 1, &mut cache);
    let file = snap.file(path).unwrap();
    let doc = vfs.get(path).unwrap().clone();
    let lines = text.lines().count().max(1) as u32;
    for &p in positions {
        let pos = Position {
            line: (p as u32) % (lines + 1),
            character: (p as u32 / 7) % 90,
        };
        let _ = handlers::hover::hover(&snap, file, pos);
        let _ = handlers::definition::definition(&snap, file, pos);
        let _ = handlers::references::references(&snap, file, pos, true);
        let _ = handlers::rename::prepare(&snap, file, pos);
        let _ = handlers::rename::rename(&snap, file, pos, "renamed");
        let _ = handlers::completion::completion(Some(&snap), path, &doc, pos);
        let _ = handlers::signature_help::signature_help(Some(&snap), path, &doc, pos);
        let _ = handlers::code_action::code_actions(
            &snap,
            file,
            &uri,
            lsp_types::Range {
                start: pos,
                end: pos,
            },
        );
    }
    let _ = handlers::semantic_tokens::full(&snap, file);
    let _ = handlers::symbols::document_symbols(text);
    let _ = handlers::formatting::format(&doc);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn handlers_never_panic_on_edited_programs(
        ops in proptest::collection::vec((any::<usize>(), any::<usize>(), any::<bool>()), 1..12),
        positions in proptest::collection::vec(any::<usize>(), 1..16),
    ) {
        let text = edit(MNIST, &ops);
        every_handler(&text, &positions);
    }
}

#[test]
fn handlers_answer_on_empty_and_odd_files() {
    for text in [
        "",
        "\n",
        "\"",
        "/*",
        "{{",
        "agent",
        "agent x:",
        "policy p { when a. then",
        "😀",
        "app a { namespace = \"é\" }",
    ] {
        every_handler(text, &[0, 1, 2, 3, 50, 1000]);
    }
}
