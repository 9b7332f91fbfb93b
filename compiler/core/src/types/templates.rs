//! Templates: every `{{ … }}` inside a string must resolve (§6.6). Inside a step, a template
//! may name a workflow param, `inputs.NAME`, `outputs.NAME` or `app.FIELD`; elsewhere only
//! `app.FIELD`. Errors point inside the string.

use super::{Checker, Ctx};
use crate::diagnostics::{Code, Diagnostic};
use crate::resolve::suggest;
use crate::syntax::ast::*;
use std::collections::BTreeMap;

/// The `app` fields a template may read.
const APP_TEMPLATE_FIELDS: &[&str] = &["name", "namespace", "registry"];

impl Checker<'_, '_> {
    /// Checks every interpolation of a string literal.
    pub(super) fn check_string(&mut self, s: &StringLit, ctx: Ctx) {
        for part in &s.parts {
            if let StrPart::Interp { expr, .. } = part {
                self.check_template(expr, ctx);
            }
        }
    }

    fn check_template(&mut self, expr: &Expr, ctx: Ctx) {
        let Some(path) = expr.as_path() else {
            self.report(
                Diagnostic::new(Code::E0501, ctx.file, expr.span, "a template names a value; it cannot compute")
                    .with_label("not a name")
                    .with_help("write `{{param}}`, `{{inputs.NAME}}`, `{{outputs.NAME}}` or `{{app.namespace}}`"),
            );
            return;
        };
        // The names of a path of one or two parts (the only ones that resolve), without a
        // list per template; a longer path matches no pattern below.
        let mut short = [""; 2];
        for (slot, ident) in short.iter_mut().zip(&path) {
            *slot = ident.name.as_str();
        }
        let names: &[&str] = if path.len() <= 2 {
            &short[..path.len()]
        } else {
            &[]
        };
        match names {
            ["app", field] => {
                if !APP_TEMPLATE_FIELDS.contains(field) {
                    self.unresolved(
                        path[1],
                        "`app` has no field",
                        APP_TEMPLATE_FIELDS.iter().map(|s| s.to_string()).collect(),
                        ctx,
                    );
                } else if let Some(app) = self.p.app {
                    self.symbols.refer(ctx.file, path[0].span, app.def);
                }
            }
            [head @ ("inputs" | "outputs"), port] => {
                let Some(step) = ctx.step else {
                    self.outside_step(expr, ctx);
                    return;
                };
                let sort = if *head == "inputs" {
                    PortSort::Input
                } else {
                    PortSort::Output
                };
                let found = self
                    .ports_of(step)
                    .iter()
                    .find(|p| p.sort == sort && p.name == *port)
                    .map(|p| p.def);
                match found {
                    Some(def) => {
                        self.symbols.refer(ctx.file, path[1].span, def);
                        if sort == PortSort::Input {
                            self.used.insert(def);
                        }
                    }
                    None => {
                        let (what, keyword) = if sort == PortSort::Input {
                            ("the step has no input", "input")
                        } else {
                            ("the step has no output", "output")
                        };
                        let candidates: Vec<String> = self
                            .ports_of(step)
                            .iter()
                            .filter(|p| p.sort == sort)
                            .map(|p| p.name.clone())
                            .collect();
                        if candidates.is_empty() {
                            let step_name = self.symbols.def(step).name.clone();
                            self.report(
                                Diagnostic::new(Code::E0501, ctx.file, path[1].span, format!("{what} `{port}`"))
                                    .with_label("does not resolve")
                                    .with_help(format!(
                                        "step `{step_name}` declares no {keyword}s: add `{keyword} {port}: TYPE{}`",
                                        if sort == PortSort::Input { " = SOURCE" } else { "" }
                                    )),
                            );
                        } else {
                            self.unresolved(path[1], what, candidates, ctx);
                        }
                    }
                }
            }
            [name] => {
                let Some(step) = ctx.step else {
                    self.outside_step(expr, ctx);
                    return;
                };
                let _ = step;
                // `p` outlives the checker's borrow: no copy of the params per template.
                let p = self.p;
                let no_params = BTreeMap::new();
                let params = ctx
                    .workflow
                    .and_then(|w| p.workflow(w))
                    .map_or(&no_params, |w| &w.params);
                match params.get(*name) {
                    Some(&param) => {
                        self.symbols.refer(ctx.file, path[0].span, param);
                        self.used.insert(param);
                    }
                    None => {
                        // A misspelt param is still meant as that param: do not also call it
                        // unused.
                        if let Some(best) =
                            suggest::closest(name, params.keys().map(String::as_str))
                        {
                            if let Some(&param) = params.get(best) {
                                self.used.insert(param);
                            }
                        }
                        let mut candidates: Vec<String> = params.keys().cloned().collect();
                        candidates.extend(["inputs", "outputs", "app"].map(String::from));
                        self.unresolved(path[0], "no param named", candidates, ctx);
                    }
                }
            }
            _ => {
                self.report(
                    Diagnostic::new(Code::E0501, ctx.file, expr.span, format!("`{}` does not resolve in a template", path.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(".")))
                        .with_label("unknown template")
                        .with_help(if ctx.step.is_some() {
                            "templates are `{{param}}`, `{{inputs.NAME}}`, `{{outputs.NAME}}` or `{{app.FIELD}}`"
                        } else {
                            "outside a step, templates can only read `{{app.name}}`, `{{app.namespace}}` or `{{app.registry}}`"
                        }),
                );
            }
        }
    }

    fn outside_step(&mut self, expr: &Expr, ctx: Ctx) {
        self.report(
            Diagnostic::new(Code::E0501, ctx.file, expr.span, "this template only resolves inside a step")
                .with_label("not inside a step")
                .with_help("outside a step, templates can only read `{{app.name}}`, `{{app.namespace}}` or `{{app.registry}}`"),
        );
    }

    fn unresolved(&mut self, ident: &Ident, what: &str, candidates: Vec<String>, ctx: Ctx) {
        let mut d = Diagnostic::new(
            Code::E0501,
            ctx.file,
            ident.span,
            format!("{what} `{}`", ident.name),
        )
        .with_label("does not resolve");
        if let Some(best) = suggest::closest(&ident.name, candidates.iter().map(String::as_str)) {
            d = d
                .with_help(format!("did you mean `{best}`?"))
                .with_suggestion(format!("replace with `{best}`"), ctx.file, ident.span, best);
        } else if candidates.is_empty() {
            d = d.with_help("there is nothing of that sort here");
        } else {
            let list: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
            d = d.with_help(format!("available: {}", list.join(", ")));
        }
        self.report(d);
    }
}
