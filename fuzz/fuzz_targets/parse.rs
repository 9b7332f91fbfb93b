//! Fuzz target: `sflow_compiler::syntax::parse` must never panic, and whatever it returns must
//! point inside the text it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sflow_compiler::span::{FileId, Span};

fuzz_target!(|data: &[u8]| {
    // The parser takes text; invalid UTF-8 never reaches it (the loader rejects it first).
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parse = sflow_compiler::syntax::parse(FileId(0), text);
    let sound = |span: Span| {
        span.start <= span.end
            && span.end() <= text.len()
            && text.is_char_boundary(span.start())
            && text.is_char_boundary(span.end())
    };
    for d in &parse.diagnostics {
        assert!(sound(d.primary.at.span), "diagnostic span out of bounds: {d:?}");
        assert!(d.secondary.iter().all(|l| sound(l.at.span)), "secondary span out of bounds: {d:?}");
        assert!(!d.message.starts_with("internal error"), "converter bug: {d:?}");
    }
    for item in &parse.file.items {
        assert!(sound(item.span()), "item span out of bounds");
    }
    for comment in &parse.comments {
        assert!(sound(comment.span), "comment span out of bounds");
    }
});
