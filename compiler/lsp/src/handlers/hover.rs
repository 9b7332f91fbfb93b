//! Hover: the signature, type, units and doc comment of what is under the cursor, for the
//! user's declarations and the standard library's alike; the meaning of built-in types,
//! fields, keywords and unit suffixes.

use super::context::{scan, BlockKind};
use super::docs;
use crate::lex::{self, Kind};
use crate::world::{range_in, Snapshot};
use lsp_types::{Hover, HoverContents, MarkupContent, MarkupKind, Position};
use sflow_compiler::sources::Origin;
use sflow_compiler::span::{FileId, Span};
use sflow_compiler::symbols::{DefId, DefKind};
use sflow_compiler::syntax::ast::PortSort;
use sflow_compiler::types::Ty;

/// The hover at `pos` of `file`.
pub fn hover(snap: &Snapshot, file: FileId, pos: Position) -> Option<Hover> {
    let offset = snap.offset(file, pos);
    let source = snap.source(file);
    if let Some(def) = snap.def_at(file, offset) {
        let at = snap
            .analysis
            .symbols
            .references
            .iter()
            .find(|r| r.at.file == file && r.def == def && r.at.span.contains(offset))
            .map(|r| r.at.span)
            .or_else(|| {
                let d = snap.def(def);
                (d.name_at.file == file && d.name_at.span.contains(offset))
                    .then_some(d.name_at.span)
            });
        return Some(markdown(
            describe(snap, def),
            at.map(|s| range_in(&source.lines, &source.text, s)),
        ));
    }
    // Not a declaration: a built-in word or a literal.
    let text = &source.text;
    let tok = lex::lex(text).into_iter().find(|t| {
        t.start <= offset && offset <= t.end && !matches!(t.kind, Kind::Comment { .. })
    })?;
    let word = tok.text(text);
    let range = Some(range_in(&source.lines, text, Span::new(tok.start, tok.end)));
    let s = scan(text, tok.start);
    let value = match tok.kind {
        Kind::Number => {
            let before: Vec<&str> = s.stmt();
            let cpu = before.iter().rev().take(3).any(|w| *w == "cpu");
            let duration = before.iter().any(|w| {
                matches!(
                    *w,
                    "timeout" | "for" | "cooldown" | "backoff" | "per" | "latency"
                )
            });
            docs::unit(word, cpu, duration)?
        }
        Kind::Word => {
            let is_field = text.get(tok.end..).is_some_and(|rest| {
                rest.trim_start().starts_with('=') && !rest.trim_start().starts_with("==")
            });
            let block = match s.block() {
                Some(BlockKind::App) => Some("app"),
                Some(BlockKind::Step(_) | BlockKind::ExternStep) => Some("step"),
                Some(BlockKind::Service(_)) => Some("service"),
                Some(BlockKind::Resources) => Some("resources"),
                _ => None,
            };
            let first_in_stmt = s.toks.len() == s.stmt_start;
            if let (Some(block), true) = (block, is_field || first_in_stmt) {
                if let Some(d) = docs::field(block, word) {
                    return Some(markdown(format!("`{word}` ({block} field): {d}"), range));
                }
            }
            if let Some(d) = docs::ty(word) {
                format!("```sflow\n{word}\n```\nbuilt-in type: {d}")
            } else if let Some(d) = docs::keyword(word) {
                d.to_string()
            } else {
                return None;
            }
        }
        _ => return None,
    };
    Some(markdown(value, range))
}

fn markdown(value: String, range: Option<lsp_types::Range>) -> Hover {
    Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value,
        }),
        range,
    }
}

/// The hover text of a declaration.
pub fn describe(snap: &Snapshot, id: DefId) -> String {
    let def = snap.def(id);
    let facts = &snap.analysis.facts;
    let symbols = &snap.analysis.symbols;
    let mut out = format!("```sflow\n{}\n```", super::completion::tidy(&def.signature));
    if let Some(doc) = &def.doc {
        out.push_str("\n\n");
        out.push_str(doc);
    }
    let mut extra: Vec<String> = Vec::new();
    if let Some(ty) = facts.def_types.get(&id) {
        if let Some(d) = unit_note(ty) {
            extra.push(format!("`{ty}`: {d}"));
        }
        if let Ty::Model(Some(step)) = ty {
            let metrics = metric_list(snap, *step);
            if !metrics.is_empty() {
                extra.push(format!(
                    "carries the metrics of step `{}`: {metrics}",
                    snap.def(*step).name
                ));
            }
        }
    }
    match def.kind {
        DefKind::Step => {
            if let Some(std_step) = facts.step_uses.get(&id) {
                extra.push(format!("runs the std step `{}`", snap.def(*std_step).name));
            }
            if let Some(ports) = facts.step_ports.get(&id) {
                for sort in [PortSort::Input, PortSort::Output, PortSort::Metric] {
                    let list: Vec<String> = ports
                        .iter()
                        .filter(|p| p.sort == sort)
                        .map(|p| format!("`{}: {}`", p.name, p.ty))
                        .collect();
                    if !list.is_empty() {
                        extra.push(format!("{}s: {}", sort.keyword(), list.join(", ")));
                    }
                }
            }
        }
        DefKind::Service => {
            if let Some(step) = facts.service_models.get(&id) {
                let step_def = snap.def(*step);
                let workflow = step_def
                    .parent
                    .map(|w| snap.def(w).name.clone())
                    .unwrap_or_default();
                extra.push(format!(
                    "serves the model of `{workflow}.{}`",
                    step_def.name
                ));
                let metrics = metric_list(snap, *step);
                if !metrics.is_empty() {
                    extra.push(format!("`.model` carries {metrics}"));
                }
            }
            extra.push(
                "reads: `.model`, `.latency.p50/.p95/.p99`, `.requests`, `.errors`, `.replicas`"
                    .into(),
            );
        }
        DefKind::Agent => {
            if let Some(kind) = facts.agent_kinds.get(&id) {
                let members: Vec<String> = symbols
                    .children(*kind)
                    .filter(|(_, d)| matches!(d.kind, DefKind::Sensor | DefKind::Action))
                    .map(|(_, d)| format!("`{}`", super::completion::tidy(&d.signature)))
                    .collect();
                if !members.is_empty() {
                    extra.push(format!(
                        "kind `{}`: {}",
                        snap.def(*kind).name,
                        members.join(", ")
                    ));
                }
            }
        }
        _ => {}
    }
    let mut place = def.kind.describe().to_string();
    if let Some(parent) = def.parent {
        let p = snap.def(parent);
        place.push_str(&format!(" of {} `{}`", p.kind.describe(), p.name));
    }
    let file = def.name_at.file;
    if let Origin::Std(module) = snap.source(file).origin {
        if module == "prelude" {
            place.push_str(" — standard library prelude");
        } else {
            place.push_str(&format!(" — `std.{module}`"));
        }
    }
    if !extra.is_empty() {
        out.push_str("\n\n");
        out.push_str(&extra.join("  \n"));
    }
    out.push_str(&format!("\n\n*{place}*"));
    out
}

fn unit_note(ty: &Ty) -> Option<&'static str> {
    match ty {
        Ty::Duration => docs::ty("duration"),
        Ty::Cpu => docs::ty("cpu"),
        Ty::Memory => docs::ty("memory"),
        Ty::Ratio => docs::ty("ratio"),
        _ => None,
    }
}

fn metric_list(snap: &Snapshot, step: DefId) -> String {
    snap.analysis
        .facts
        .step_ports
        .get(&step)
        .map(|ports| {
            ports
                .iter()
                .filter(|p| p.sort == PortSort::Metric)
                .map(|p| format!("`.{}: {}`", p.name, p.ty))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}
