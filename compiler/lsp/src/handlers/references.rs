//! Find references: every place a declaration is named, in every file of the program.

use crate::world::Snapshot;
use lsp_types::{Location, Position};
use sflow_compiler::span::FileId;

/// The occurrences of the declaration at `pos` of `file`.
pub fn references(
    snap: &Snapshot,
    file: FileId,
    pos: Position,
    include_declaration: bool,
) -> Option<Vec<Location>> {
    let def = snap.def_at(file, snap.offset(file, pos))?;
    let mut occurrences = snap.analysis.symbols.occurrences(def);
    if !include_declaration && !occurrences.is_empty() {
        occurrences.remove(0);
    }
    occurrences.sort();
    occurrences.dedup();
    Some(
        occurrences
            .into_iter()
            .filter_map(|at| snap.location(at))
            .collect(),
    )
}
