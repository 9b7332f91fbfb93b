//! Loading: follow `use "./file.sflow"` imports and `use std.…` modules until every file of
//! the program is parsed.
//!
//! Invariants:
//! - each file is parsed once, however often it is imported (import cycles are harmless:
//!   declarations are order-independent);
//! - the prelude is always loaded; a std module only when some file imports it;
//! - a file that cannot be read is an E0104 at the `use` that names it, never a panic.

use crate::diagnostics::{Code, Diagnostic};
use crate::sources::{Origin, SourceLoader, Sources};
use crate::span::FileId;
use crate::stdlib;
use crate::syntax::ast::{Item, UseTarget};
use crate::syntax::{self, Parse};

/// Parses every file reachable from the files already in `sources` (the root), plus the
/// prelude and the imported std modules. Returns the prelude's id.
pub fn load_program(
    loader: &dyn SourceLoader,
    sources: &mut Sources,
    parses: &mut Vec<Parse>,
    diagnostics: &mut Vec<Diagnostic>,
) -> FileId {
    load_program_with(loader, sources, parses, diagnostics, &mut |_, id, text| {
        syntax::parse(id, text)
    })
}

/// [`load_program`], parsing each file with `parse(path, id, text)` (the language server's
/// incremental parse caches; the result must be [`syntax::parse`]'s).
pub fn load_program_with(
    loader: &dyn SourceLoader,
    sources: &mut Sources,
    parses: &mut Vec<Parse>,
    diagnostics: &mut Vec<Diagnostic>,
    parse: &mut dyn FnMut(&str, FileId, &str) -> Parse,
) -> FileId {
    let prelude = add_std(&stdlib::PRELUDE, sources, parses, diagnostics, parse);
    let mut next = 0;
    while next < sources.files.len() {
        let file = FileId(next as u32);
        next += 1;
        if sources.get(file).origin != Origin::User {
            continue;
        }
        let mut wanted = Vec::new();
        for item in &parses[file.0 as usize].file.items {
            if let Item::Use(use_) = item {
                wanted.push(use_.clone());
            }
        }
        for use_ in wanted {
            match &use_.target {
                UseTarget::File(path) => {
                    let Some(relative) = path.as_plain() else {
                        diagnostics.push(
                            Diagnostic::new(
                                Code::E0104,
                                file,
                                path.span,
                                "an imported path cannot contain `{{…}}`",
                            )
                            .with_label("a plain path is expected here")
                            .with_help("write the path literally, e.g. `use \"./common.sflow\"`"),
                        );
                        continue;
                    };
                    let from = sources.get(file).path.clone();
                    match loader.load(&from, &relative) {
                        Ok(loaded) => {
                            if sources.find(&loaded.path).is_none() {
                                let id = sources.add(loaded.path, loaded.text, Origin::User);
                                let source = sources.get(id);
                                let parse = parse(&source.path, id, &source.text);
                                diagnostics.extend(parse.diagnostics.iter().cloned());
                                parses.push(parse);
                            }
                        }
                        Err(reason) => diagnostics.push(
                            Diagnostic::new(
                                Code::E0104,
                                file,
                                path.span,
                                format!("cannot import `{relative}`"),
                            )
                            .with_label(reason)
                            .with_help("check the path: it is relative to the importing file"),
                        ),
                    }
                }
                UseTarget::Path { path, .. } => {
                    if let Some(module) = path.get(1).and_then(|m| stdlib::module(&m.name)) {
                        if path.first().is_some_and(|s| s.name == "std") {
                            add_std(module, sources, parses, diagnostics, parse);
                        }
                    }
                }
            }
        }
    }
    prelude
}

/// Parses a std module once and returns its id.
fn add_std(
    module: &'static stdlib::StdModule,
    sources: &mut Sources,
    parses: &mut Vec<Parse>,
    diagnostics: &mut Vec<Diagnostic>,
    parse: &mut dyn FnMut(&str, FileId, &str) -> Parse,
) -> FileId {
    if let Some(existing) = sources
        .files
        .iter()
        .find(|f| f.origin == Origin::Std(module.name))
    {
        return existing.id;
    }
    let id = sources.add(module.path, module.text, Origin::Std(module.name));
    let parse = parse(module.path, id, module.text);
    // The stdlib is ours: a syntax error in it is a bug, surfaced rather than hidden.
    diagnostics.extend(parse.diagnostics.iter().cloned());
    parses.push(parse);
    id
}
