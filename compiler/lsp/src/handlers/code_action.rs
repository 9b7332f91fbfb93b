//! Quick fixes: the machine-applicable suggestions of the diagnostics under the cursor
//! ("did you mean `accuracy`?" becomes "replace with `accuracy`").

use crate::convert;
use crate::world::Snapshot;
use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, Range, TextEdit, Url, WorkspaceEdit,
};
use sflow_compiler::span::FileId;
use std::collections::HashMap;

/// The quick fixes for the diagnostics of `file` that overlap `range`.
pub fn code_actions(
    snap: &Snapshot,
    file: FileId,
    _uri: &Url,
    range: Range,
) -> Vec<CodeActionOrCommand> {
    let mut out = Vec::new();
    for d in snap
        .analysis
        .diagnostics
        .iter()
        .filter(|d| d.primary.at.file == file)
    {
        let at = snap.range(d.primary.at);
        if at.end < range.start || range.end < at.start {
            continue;
        }
        let single = d.suggestions.len() == 1;
        for s in &d.suggestions {
            let Some(uri) = snap.uri(s.at.file) else {
                continue;
            };
            let edit = TextEdit {
                range: snap.range(s.at),
                new_text: s.replacement.clone(),
            };
            out.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: s.title.clone(),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![convert::diagnostic(snap, d)]),
                edit: Some(WorkspaceEdit {
                    changes: Some(HashMap::from([(uri, vec![edit])])),
                    ..Default::default()
                }),
                is_preferred: Some(single),
                ..Default::default()
            }));
        }
    }
    out
}
