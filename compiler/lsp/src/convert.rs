//! Core diagnostics as protocol diagnostics.

use crate::world::Snapshot;
use lsp_types::{
    Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, DiagnosticTag, NumberOrString,
    Url,
};
use sflow_compiler::diagnostics::{Code, Severity};
use std::collections::BTreeMap;

/// The diagnostics of every user file of the program, by URI (files without any get an empty
/// list, so the editor clears what it showed before).
pub fn diagnostics_by_file(snapshot: &Snapshot) -> BTreeMap<Url, Vec<Diagnostic>> {
    let mut out: BTreeMap<Url, Vec<Diagnostic>> = BTreeMap::new();
    for source in &snapshot.analysis.sources.files {
        if snapshot.is_user(source.id) {
            if let Some(uri) = snapshot.uri(source.id) {
                out.entry(uri).or_default();
            }
        }
    }
    for d in &snapshot.analysis.diagnostics {
        let file = d.primary.at.file;
        if !snapshot.is_user(file) {
            continue;
        }
        let Some(uri) = snapshot.uri(file) else {
            continue;
        };
        out.entry(uri).or_default().push(diagnostic(snapshot, d));
    }
    out
}

/// One core diagnostic as the protocol's: the message with its label and help, the
/// secondary labels as related information, unused-code warnings tagged so editors fade them.
pub fn diagnostic(snapshot: &Snapshot, d: &sflow_compiler::diagnostics::Diagnostic) -> Diagnostic {
    let mut message = d.message.clone();
    if !d.primary.message.is_empty() && d.primary.message != d.message {
        message.push_str(&format!("\n{}", d.primary.message));
    }
    if let Some(help) = &d.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .secondary
        .iter()
        .filter_map(|label| {
            Some(DiagnosticRelatedInformation {
                location: snapshot.location(label.at)?,
                message: label.message.clone(),
            })
        })
        .collect();
    let unnecessary = matches!(
        d.code,
        Code::W0001 | Code::W0002 | Code::W0003 | Code::W0004
    );
    Diagnostic {
        range: snapshot.range(d.primary.at),
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
        }),
        code: Some(NumberOrString::String(d.code.as_str().to_string())),
        code_description: None,
        source: Some("sflow".into()),
        message,
        related_information: if related.is_empty() {
            None
        } else {
            Some(related)
        },
        tags: if unnecessary {
            Some(vec![DiagnosticTag::UNNECESSARY])
        } else {
            None
        },
        data: None,
    }
}
