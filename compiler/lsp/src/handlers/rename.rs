//! Rename: every occurrence in every file of the program, or a refusal that says why — a
//! name that is not an identifier, a keyword, one that would collide with a declaration in
//! the same scope, or a declaration of the standard library.

use crate::server::{Answer, Failure};
use crate::world::Snapshot;
use lsp_types::{Position, PrepareRenameResponse, TextEdit, WorkspaceEdit};
use sflow_compiler::resolve::BUILTIN_TYPES;
use sflow_compiler::span::{FileId, FileSpan};
use sflow_compiler::symbols::{DefId, DefKind};
use sflow_compiler::syntax::ast::is_keyword;
use std::collections::HashMap;

/// Checks that the name at `pos` can be renamed; returns its range and current text.
pub fn prepare(
    snap: &Snapshot,
    file: FileId,
    pos: Position,
) -> Answer<Option<PrepareRenameResponse>> {
    let offset = snap.offset(file, pos);
    let Some(def) = snap.def_at(file, offset) else {
        return Err(Failure::Refused(
            "there is no declaration or reference to rename here".into(),
        ));
    };
    renamable(snap, def)?;
    let at = occurrence_at(snap, def, file, offset).unwrap_or(snap.def(def).name_at);
    Ok(Some(PrepareRenameResponse::RangeWithPlaceholder {
        range: snap.range(at),
        placeholder: snap.def(def).name.clone(),
    }))
}

/// The edits that rename the declaration at `pos` to `new_name`.
pub fn rename(
    snap: &Snapshot,
    file: FileId,
    pos: Position,
    new_name: &str,
) -> Answer<Option<WorkspaceEdit>> {
    let offset = snap.offset(file, pos);
    let Some(def) = snap.def_at(file, offset) else {
        return Err(Failure::Refused(
            "there is no declaration or reference to rename here".into(),
        ));
    };
    renamable(snap, def)?;
    check_new_name(snap, def, new_name)?;
    let mut changes: HashMap<lsp_types::Url, Vec<TextEdit>> = HashMap::new();
    let mut occurrences = snap.analysis.symbols.occurrences(def);
    occurrences.sort();
    occurrences.dedup();
    for at in occurrences {
        if !snap.is_user(at.file) {
            continue;
        }
        let Some(uri) = snap.uri(at.file) else {
            continue;
        };
        changes.entry(uri).or_default().push(TextEdit {
            range: snap.range(at),
            new_text: new_name.to_string(),
        });
    }
    Ok(Some(WorkspaceEdit {
        changes: Some(changes),
        ..Default::default()
    }))
}

fn occurrence_at(snap: &Snapshot, def: DefId, file: FileId, offset: usize) -> Option<FileSpan> {
    let hit = |at: &FileSpan| {
        at.file == file && (at.span.contains(offset) || at.span.contains(offset.saturating_sub(1)))
    };
    snap.analysis.symbols.occurrences(def).into_iter().find(hit)
}

fn renamable(snap: &Snapshot, def: DefId) -> Answer<()> {
    let d = snap.def(def);
    if !snap.is_user(d.name_at.file) {
        return Err(Failure::Refused(format!(
            "`{}` is declared in the standard library and cannot be renamed",
            d.name
        )));
    }
    if d.kind == DefKind::Module {
        return Err(Failure::Refused(
            "standard library modules cannot be renamed".into(),
        ));
    }
    Ok(())
}

/// Whether two sorts of declaration share a namespace (values and types are separate).
fn namespace(kind: DefKind) -> u8 {
    match kind {
        DefKind::TypeAlias | DefKind::AgentKind => 1,
        _ => 0,
    }
}

fn check_new_name(snap: &Snapshot, def: DefId, new_name: &str) -> Answer<()> {
    let d = snap.def(def);
    let mut chars = new_name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(Failure::Refused(format!("`{new_name}` is not a valid name: names are letters, digits and `_`, starting with a letter or `_`")));
    }
    if is_keyword(new_name) {
        return Err(Failure::Refused(format!(
            "`{new_name}` is a keyword and cannot be a name"
        )));
    }
    if namespace(d.kind) == 1 && BUILTIN_TYPES.contains(&new_name) {
        return Err(Failure::Refused(format!("`{new_name}` is a built-in type")));
    }
    if new_name == d.name {
        return Ok(());
    }
    let symbols = &snap.analysis.symbols;
    for (i, other) in symbols.defs.iter().enumerate() {
        let id = DefId(i as u32);
        if id == def || other.name != new_name || other.parent != d.parent {
            continue;
        }
        if d.parent.is_none() {
            if namespace(other.kind) != namespace(d.kind) || other.kind == DefKind::Module {
                continue;
            }
            // A std declaration collides only where it is visible: the prelude's kinds
            // everywhere, other std items where a file imports them.
            let visible = snap.is_user(other.name_at.file)
                || other.kind == DefKind::AgentKind
                || symbols
                    .references
                    .iter()
                    .any(|r| r.def == id && snap.is_user(r.at.file));
            if !visible {
                continue;
            }
        }
        let line = snap
            .source(other.name_at.file)
            .line_col(other.name_at.span.start())
            .line;
        let file = &snap.source(other.name_at.file).path;
        return Err(Failure::Refused(format!(
            "cannot rename to `{new_name}`: a {} named `{new_name}` is already declared in the same scope ({}:{line})",
            other.kind.describe(),
            file.rsplit('/').next().unwrap_or(file)
        )));
    }
    Ok(())
}
