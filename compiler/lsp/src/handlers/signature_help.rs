//! Signature help inside the parentheses of a std function or step call and of an agent
//! action call: the signature, its doc comment, and the parameter being written.

use super::completion::{names_for, resolve_callee};
use super::context::scan;
use crate::vfs::Document;
use crate::world::Snapshot;
use lsp_types::{
    Documentation, MarkupContent, MarkupKind, ParameterInformation, ParameterLabel, Position,
    SignatureHelp, SignatureInformation,
};
use sflow_compiler::symbols::DefKind;

/// The signature help at `pos` of `doc`.
pub fn signature_help(
    snap: Option<&Snapshot>,
    path: &str,
    doc: &Document,
    pos: Position,
) -> Option<SignatureHelp> {
    let offset = doc.lines.offset_utf16(&doc.text, pos.line, pos.character);
    let s = scan(&doc.text, offset);
    if s.in_comment || s.in_string.is_some() {
        return None;
    }
    let call = s.calls.last()?;
    let names = names_for(snap, path);
    let callee = resolve_callee(&names, &call.callee)?;
    let snap = snap?;
    let def = snap.def(callee);
    let label = super::completion::tidy(&def.signature);
    let params: Vec<(String, String)> = snap
        .analysis
        .symbols
        .children(callee)
        .filter(|(_, d)| d.kind == DefKind::ParamSig)
        .map(|(_, d)| (d.name.clone(), super::completion::tidy(&d.signature)))
        .collect();
    let mut from = label.find('(').unwrap_or(0);
    let parameters: Vec<ParameterInformation> = params
        .iter()
        .map(|(name, sig)| {
            let text = if label
                .get(from..)
                .is_some_and(|rest| rest.contains(sig.as_str()))
            {
                sig.as_str()
            } else {
                name.as_str()
            };
            let label_part = match label.get(from..).and_then(|rest| rest.find(text)) {
                Some(k) => {
                    let start = from + k;
                    from = start + text.len();
                    let utf16 =
                        |i: usize| label.get(..i).map_or(0, |p| p.encode_utf16().count()) as u32;
                    ParameterLabel::LabelOffsets([utf16(start), utf16(start + text.len())])
                }
                None => ParameterLabel::Simple(sig.clone()),
            };
            ParameterInformation {
                label: label_part,
                documentation: None,
            }
        })
        .collect();
    let active = match &call.named {
        Some(name) => params.iter().position(|(n, _)| n == name),
        None => Some(call.arg),
    }
    .map(|i| i as u32);
    let documentation = def.doc.as_ref().map(|d| {
        Documentation::MarkupContent(MarkupContent {
            kind: MarkupKind::Markdown,
            value: d.clone(),
        })
    });
    Some(SignatureHelp {
        signatures: vec![SignatureInformation {
            label,
            documentation,
            parameters: Some(parameters),
            active_parameter: active,
        }],
        active_signature: Some(0),
        active_parameter: active,
    })
}
