//! Document symbols (the outline): declarations and their members, from the file's own parse
//! (so the outline of a broken file shows every declaration that parsed).

use crate::world::range_in;
use lsp_types::{DocumentSymbol, DocumentSymbolResponse, SymbolKind};
use sflow_compiler::span::{FileId, LineIndex, Span};
use sflow_compiler::syntax::ast::*;
use sflow_compiler::syntax::parse;

/// The outline of `text`.
pub fn document_symbols(text: &str) -> DocumentSymbolResponse {
    let lines = LineIndex::new(text);
    let parse = parse(FileId(0), text);
    let sym = |name: &str,
               detail: Option<String>,
               kind: SymbolKind,
               span: Span,
               name_span: Span,
               children: Vec<DocumentSymbol>| {
        #[allow(deprecated)]
        DocumentSymbol {
            name: name.to_string(),
            detail,
            kind,
            tags: None,
            deprecated: None,
            range: range_in(&lines, text, tight(text, span.to(name_span))),
            selection_range: range_in(&lines, text, name_span),
            children: if children.is_empty() {
                None
            } else {
                Some(children)
            },
        }
    };
    let ty = |t: &TypeExpr| t.span.text(text).trim().to_string();
    let mut out = Vec::new();
    for item in &parse.file.items {
        let span = item.span();
        let s = match item {
            Item::App(a) => sym(
                &a.name.name,
                Some("app".into()),
                SymbolKind::MODULE,
                span,
                a.name.span,
                vec![],
            ),
            Item::Use(_) => continue,
            Item::TypeAlias(t) => sym(
                &t.name.name,
                Some(format!("= {}", ty(&t.ty))),
                SymbolKind::TYPE_PARAMETER,
                span,
                t.name.span,
                vec![],
            ),
            Item::Workflow(w) => {
                let children = w
                    .members
                    .iter()
                    .map(|m| match m {
                        WorkflowMember::Param(p) => sym(
                            &p.name.name,
                            Some(ty(&p.ty)),
                            SymbolKind::VARIABLE,
                            p.span,
                            p.name.span,
                            vec![],
                        ),
                        WorkflowMember::Step(st) => {
                            let ports = st
                                .members
                                .iter()
                                .filter_map(|m| match m {
                                    StepMember::Port(p) => Some(sym(
                                        &p.name.name,
                                        Some(format!("{} {}", p.sort.keyword(), ty(&p.ty))),
                                        if p.sort == PortSort::Metric {
                                            SymbolKind::PROPERTY
                                        } else {
                                            SymbolKind::FIELD
                                        },
                                        p.span,
                                        p.name.span,
                                        vec![],
                                    )),
                                    _ => None,
                                })
                                .collect();
                            sym(
                                &st.name.name,
                                Some("step".into()),
                                SymbolKind::FUNCTION,
                                st.span,
                                st.name.span,
                                ports,
                            )
                        }
                    })
                    .collect();
                sym(
                    &w.name.name,
                    Some("workflow".into()),
                    SymbolKind::NAMESPACE,
                    span,
                    w.name.span,
                    children,
                )
            }
            Item::Service(s) => sym(
                &s.name.name,
                Some("service".into()),
                SymbolKind::OBJECT,
                span,
                s.name.span,
                vec![],
            ),
            Item::Agent(a) => sym(
                &a.name.name,
                Some(a.kind.name.clone()),
                SymbolKind::VARIABLE,
                span,
                a.name.span,
                vec![],
            ),
            Item::AgentKind(k) => {
                let children = k
                    .members
                    .iter()
                    .map(|m| match m {
                        KindMember::Config(c) => sym(
                            &c.name.name,
                            Some(format!("config {}", ty(&c.ty))),
                            SymbolKind::PROPERTY,
                            c.span,
                            c.name.span,
                            vec![],
                        ),
                        KindMember::Sensor(s) => sym(
                            &s.name.name,
                            Some(format!("sensor {}", ty(&s.ty))),
                            SymbolKind::FIELD,
                            s.span,
                            s.name.span,
                            vec![],
                        ),
                        KindMember::Action(a) => sym(
                            &a.name.name,
                            Some("action".into()),
                            SymbolKind::METHOD,
                            a.span,
                            a.name.span,
                            vec![],
                        ),
                    })
                    .collect();
                sym(
                    &k.name.name,
                    Some("agent kind".into()),
                    SymbolKind::CLASS,
                    span,
                    k.name.span,
                    children,
                )
            }
            Item::Trigger(t) => sym(
                &t.name.name,
                Some("trigger".into()),
                SymbolKind::EVENT,
                span,
                t.name.span,
                vec![],
            ),
            Item::Policy(p) => sym(
                &p.name.name,
                Some("policy".into()),
                SymbolKind::OPERATOR,
                span,
                p.name.span,
                vec![],
            ),
            Item::ExternFn(f) => sym(
                &f.name.name,
                Some("extern fn".into()),
                SymbolKind::FUNCTION,
                span,
                f.name.span,
                vec![],
            ),
            Item::ExternStep(s) => sym(
                &s.name.name,
                Some("extern step".into()),
                SymbolKind::FUNCTION,
                span,
                s.name.span,
                vec![],
            ),
        };
        out.push(s);
    }
    DocumentSymbolResponse::Nested(out)
}

/// `span` without the whitespace at its end (member spans may run on over it).
fn tight(text: &str, span: Span) -> Span {
    let kept = span.text(text).trim_end().len();
    Span::new(span.start(), span.start() + kept)
}
