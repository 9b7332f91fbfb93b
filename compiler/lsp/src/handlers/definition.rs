//! Go to definition: across the program's files and into the embedded standard library
//! (served read-only under `sflow-std:` URIs); on `use "./x.sflow"`, the imported file.

use crate::world::Snapshot;
use lsp_types::{GotoDefinitionResponse, Location, Position, Range};
use sflow_compiler::sources::join_relative;
use sflow_compiler::span::FileId;
use sflow_compiler::syntax::ast::{Item, UseTarget};

/// Where the name at `pos` of `file` is declared.
pub fn definition(snap: &Snapshot, file: FileId, pos: Position) -> Option<GotoDefinitionResponse> {
    let offset = snap.offset(file, pos);
    if let Some(def) = snap.def_at(file, offset) {
        let location = snap.location(snap.def(def).name_at)?;
        return Some(GotoDefinitionResponse::Scalar(location));
    }
    // `use "./other.sflow"`: the file itself.
    for item in &snap.analysis.parse(file).file.items {
        if let Item::Use(u) = item {
            if let UseTarget::File(s) = &u.target {
                if s.span.contains(offset) {
                    let path = join_relative(&snap.source(file).path, &s.as_plain()?);
                    let target = snap.file(&path)?;
                    let uri = snap.uri(target)?;
                    return Some(GotoDefinitionResponse::Scalar(Location {
                        uri,
                        range: Range::default(),
                    }));
                }
            }
        }
    }
    None
}
