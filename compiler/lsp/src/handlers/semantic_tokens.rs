//! Semantic tokens: every token coloured by what it is, names by what they resolve to (a
//! step, a sensor, a std function…), including the names inside `{{ … }}` templates.

use crate::lex::{self, Kind};
use crate::world::Snapshot;
use lsp_types::{
    SemanticToken, SemanticTokenModifier, SemanticTokenType, SemanticTokens, SemanticTokensLegend,
    SemanticTokensResult,
};
use sflow_compiler::sources::Origin;
use sflow_compiler::span::FileId;
use sflow_compiler::symbols::{DefId, DefKind};
use sflow_compiler::syntax::ast::is_keyword;
use std::collections::BTreeMap;

const TYPES: &[SemanticTokenType] = &[
    SemanticTokenType::NAMESPACE,
    SemanticTokenType::TYPE,
    SemanticTokenType::CLASS,
    SemanticTokenType::FUNCTION,
    SemanticTokenType::METHOD,
    SemanticTokenType::VARIABLE,
    SemanticTokenType::PARAMETER,
    SemanticTokenType::PROPERTY,
    SemanticTokenType::EVENT,
    SemanticTokenType::KEYWORD,
    SemanticTokenType::STRING,
    SemanticTokenType::NUMBER,
    SemanticTokenType::COMMENT,
    SemanticTokenType::OPERATOR,
];

const MODIFIERS: &[SemanticTokenModifier] = &[
    SemanticTokenModifier::DECLARATION,
    SemanticTokenModifier::DEFAULT_LIBRARY,
    SemanticTokenModifier::READONLY,
    SemanticTokenModifier::DOCUMENTATION,
];

/// The legend the server announces.
pub fn legend() -> SemanticTokensLegend {
    SemanticTokensLegend {
        token_types: TYPES.to_vec(),
        token_modifiers: MODIFIERS.to_vec(),
    }
}

fn index(t: &SemanticTokenType) -> u32 {
    TYPES.iter().position(|x| x == t).unwrap_or(0) as u32
}

const DECLARATION: u32 = 1;
const DEFAULT_LIBRARY: u32 = 2;
const DOCUMENTATION: u32 = 8;

fn kind_type(kind: DefKind) -> SemanticTokenType {
    match kind {
        DefKind::App | DefKind::Module | DefKind::Workflow => SemanticTokenType::NAMESPACE,
        DefKind::TypeAlias => SemanticTokenType::TYPE,
        DefKind::AgentKind => SemanticTokenType::CLASS,
        DefKind::Step | DefKind::ExternFn | DefKind::ExternStep => SemanticTokenType::FUNCTION,
        DefKind::Action => SemanticTokenType::METHOD,
        DefKind::Param | DefKind::ParamSig => SemanticTokenType::PARAMETER,
        DefKind::Input | DefKind::Output | DefKind::Metric | DefKind::Config | DefKind::Sensor => {
            SemanticTokenType::PROPERTY
        }
        DefKind::Trigger | DefKind::Policy => SemanticTokenType::EVENT,
        DefKind::Service | DefKind::Agent => SemanticTokenType::VARIABLE,
    }
}

/// The semantic tokens of `file`.
pub fn full(snap: &Snapshot, file: FileId) -> Option<SemanticTokensResult> {
    let source = snap.source(file);
    let text = &source.text;
    // Start offset of every name in this file → (declaration, is it the declaring name).
    let mut names: BTreeMap<usize, (usize, DefId, bool)> = BTreeMap::new();
    let symbols = &snap.analysis.symbols;
    for r in symbols.references.iter().filter(|r| r.at.file == file) {
        names.insert(r.at.span.start(), (r.at.span.end(), r.def, false));
    }
    for (i, d) in symbols.defs.iter().enumerate() {
        if d.name_at.file == file && !d.name_at.span.is_empty() {
            names.insert(
                d.name_at.span.start(),
                (d.name_at.span.end(), DefId(i as u32), true),
            );
        }
    }
    let mut out: Vec<(usize, usize, u32, u32)> = Vec::new();
    let toks = lex::lex(text);
    for (i, t) in toks.iter().enumerate() {
        let word = t.text(text);
        match t.kind {
            Kind::Comment { doc } => out.push((
                t.start,
                t.end,
                index(&SemanticTokenType::COMMENT),
                if doc { DOCUMENTATION } else { 0 },
            )),
            Kind::Number => out.push((t.start, t.end, index(&SemanticTokenType::NUMBER), 0)),
            Kind::Str { .. } => {
                // The string, interrupted by the names of its templates.
                let mut at = t.start;
                for (&start, &(end, def, decl)) in names.range(t.start..t.end) {
                    if start > at {
                        out.push((at, start, index(&SemanticTokenType::STRING), 0));
                    }
                    out.push((
                        start,
                        end,
                        index(&kind_type(snap.def(def).kind)),
                        modifiers(snap, def, decl),
                    ));
                    at = end;
                }
                if at < t.end {
                    out.push((at, t.end, index(&SemanticTokenType::STRING), 0));
                }
            }
            Kind::Word => {
                if let Some(&(end, def, decl)) = names.get(&t.start) {
                    out.push((
                        t.start,
                        end,
                        index(&kind_type(snap.def(def).kind)),
                        modifiers(snap, def, decl),
                    ));
                    continue;
                }
                let next = toks.get(i + 1).map(|n| n.text(text));
                let prev = i
                    .checked_sub(1)
                    .and_then(|k| toks.get(k))
                    .map(|p| p.text(text));
                // `NAME =` at the start of a member or argument is a field (or argument) name.
                let is_field = next == Some("=")
                    && (t.line_start || matches!(prev, Some("{" | "," | ";" | "(")));
                if is_field {
                    out.push((t.start, t.end, index(&SemanticTokenType::PROPERTY), 0));
                } else if word == "std" && next == Some(".") {
                    out.push((
                        t.start,
                        t.end,
                        index(&SemanticTokenType::NAMESPACE),
                        DEFAULT_LIBRARY,
                    ));
                } else if is_keyword(word) {
                    out.push((t.start, t.end, index(&SemanticTokenType::KEYWORD), 0));
                } else if sflow_compiler::resolve::BUILTIN_TYPES.contains(&word) {
                    out.push((
                        t.start,
                        t.end,
                        index(&SemanticTokenType::TYPE),
                        DEFAULT_LIBRARY,
                    ));
                }
            }
            Kind::Punct => {
                if matches!(
                    word,
                    "->" | ".."
                        | "=="
                        | "!="
                        | "<"
                        | "<="
                        | ">"
                        | ">="
                        | "+"
                        | "-"
                        | "*"
                        | "/"
                        | "&&"
                        | "||"
                        | "!"
                ) {
                    out.push((t.start, t.end, index(&SemanticTokenType::OPERATOR), 0));
                }
            }
            Kind::Other => {}
        }
    }
    // Encode: relative lines and UTF-16 columns, one token per line piece.
    let mut data = Vec::with_capacity(out.len());
    let (mut prev_line, mut prev_col) = (0u32, 0u32);
    for (start, end, ty, mods) in out {
        let mut piece_start = start;
        while piece_start < end {
            let line_end = text
                .get(piece_start..end)
                .and_then(|s| s.find('\n'))
                .map_or(end, |k| piece_start + k);
            let (line, col) = source.lines.position_utf16(text, piece_start);
            let length: u32 = text
                .get(piece_start..line_end)
                .map_or(0, |s| s.chars().map(|c| c.len_utf16() as u32).sum());
            if length > 0 {
                let delta_line = line.saturating_sub(prev_line);
                let delta_start = if delta_line == 0 {
                    col.saturating_sub(prev_col)
                } else {
                    col
                };
                data.push(SemanticToken {
                    delta_line,
                    delta_start,
                    length,
                    token_type: ty,
                    token_modifiers_bitset: mods,
                });
                prev_line = line;
                prev_col = col;
            }
            piece_start = line_end + 1;
        }
    }
    Some(SemanticTokensResult::Tokens(SemanticTokens {
        result_id: None,
        data,
    }))
}

fn modifiers(snap: &Snapshot, def: DefId, decl: bool) -> u32 {
    let mut m = if decl { DECLARATION } else { 0 };
    if matches!(
        snap.source(snap.def(def).name_at.file).origin,
        Origin::Std(_)
    ) {
        m |= DEFAULT_LIBRARY;
    }
    m
}
