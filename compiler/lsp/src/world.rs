//! A snapshot: the analysis of one program (as the editor's buffers stood at one moment), with
//! the conversions between the core's byte spans and the protocol's UTF-16 positions.

use crate::vfs::{self, Vfs};
use lsp_types::{Location, Position, Range, Url};
use sflow_compiler::analysis::{analyze_incremental, Analysis, AnalysisCache};
use sflow_compiler::sources::{Origin, Source};
use sflow_compiler::span::{FileId, FileSpan, Span};
use sflow_compiler::symbols::{Def, DefId};

/// The analysis of the program rooted at `root`.
#[derive(Debug)]
pub struct Snapshot {
    /// The root file's path.
    pub root: String,
    /// Everything the core knows about the program.
    pub analysis: Analysis,
    /// The edit generation of the buffers it was computed from.
    pub generation: u64,
}

impl Snapshot {
    /// Analyzes the program rooted at `root` as the buffers in `vfs` stand, reusing (and
    /// updating) `cache`, the parses of the program's previous analysis.
    pub fn compute(vfs: &Vfs, root: &str, generation: u64, cache: &mut AnalysisCache) -> Snapshot {
        let text = vfs.text(root).unwrap_or_default();
        let analysis = analyze_incremental(root, &text, &vfs::Loader(vfs), cache);
        Snapshot {
            root: root.to_string(),
            analysis,
            generation,
        }
    }

    /// The file with core path `path` (a user file or a std module).
    pub fn file(&self, path: &str) -> Option<FileId> {
        self.analysis
            .sources
            .files
            .iter()
            .find(|f| f.path == path)
            .map(|f| f.id)
    }

    /// The source of `file`.
    pub fn source(&self, file: FileId) -> &Source {
        self.analysis.sources.get(file)
    }

    /// Whether `file` is the user's (not the standard library).
    pub fn is_user(&self, file: FileId) -> bool {
        self.source(file).origin == Origin::User
    }

    /// The byte offset of a protocol position in `file`.
    pub fn offset(&self, file: FileId, pos: Position) -> usize {
        let source = self.source(file);
        source
            .lines
            .offset_utf16(&source.text, pos.line, pos.character)
    }

    /// The protocol range of a span.
    pub fn range(&self, at: FileSpan) -> Range {
        let source = self.source(at.file);
        range_in(&source.lines, &source.text, at.span)
    }

    /// The protocol location of a span.
    pub fn location(&self, at: FileSpan) -> Option<Location> {
        let uri = vfs::uri_of(&self.source(at.file).path)?;
        Some(Location {
            uri,
            range: self.range(at),
        })
    }

    /// The URI of `file`.
    pub fn uri(&self, file: FileId) -> Option<Url> {
        vfs::uri_of(&self.source(file).path)
    }

    /// The declaration `id`.
    pub fn def(&self, id: DefId) -> &Def {
        self.analysis.symbols.def(id)
    }

    /// The declaration named (or referred to) at `offset` of `file`.
    pub fn def_at(&self, file: FileId, offset: usize) -> Option<DefId> {
        let symbols = &self.analysis.symbols;
        // A cursor right after a name still means it; prefer the span that contains the
        // offset strictly, then one that ends at it.
        symbols
            .at(file, offset)
            .or_else(|| offset.checked_sub(1).and_then(|o| symbols.at(file, o)))
    }
}

/// The protocol range of `span` in `text` indexed by `lines`.
pub fn range_in(lines: &sflow_compiler::span::LineIndex, text: &str, span: Span) -> Range {
    let (l1, c1) = lines.position_utf16(text, span.start());
    let (l2, c2) = lines.position_utf16(text, span.end());
    Range {
        start: Position {
            line: l1,
            character: c1,
        },
        end: Position {
            line: l2,
            character: c2,
        },
    }
}
