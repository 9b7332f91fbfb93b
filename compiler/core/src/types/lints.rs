//! Warnings (§6.9): unused params, outputs, imports and agents; policies whose actions can
//! never run; images that are not pinned (reported where images are checked).

use super::decls::number_value;
use super::ty::Ty;
use super::{Checker, Ctx};
use crate::diagnostics::{Code, Diagnostic};
use crate::symbols::DefId;
use crate::syntax::ast::*;
use std::collections::HashSet;

impl Checker<'_, '_> {
    pub(super) fn lint(&mut self) {
        let p = self.p;
        for w in &p.workflows {
            for param in w.node.ast.params() {
                let Some(&def) = w.params.get(&param.name.name) else {
                    continue;
                };
                if !self.used.contains(&def) && self.symbols.def(def).full_span == param.span {
                    self.report(
                        Diagnostic::new(Code::W0001, w.node.file, param.name.span, format!("param `{}` is never used", param.name.name))
                            .with_label("unused")
                            .with_help(format!(
                                "pass it to a step (`{{{{{}}}}}` in `run`, or an argument of `uses`), or remove it",
                                param.name.name
                            )),
                    );
                }
            }
            // Outputs of steps that others depend on are intermediate results: one nobody
            // consumes is probably a mistake. Outputs of the last steps are the results.
            let producers: HashSet<_> = self
                .dependencies
                .get(&w.node.def)
                .map(|deps| deps.iter().map(|d| d.from).collect())
                .unwrap_or_default();
            for &step in &w.steps {
                if !producers.contains(&step) {
                    continue;
                }
                let Some(step_node) = p.steps.get(&step) else {
                    continue;
                };
                let unused: Vec<(DefId, String)> = self
                    .ports_of(step)
                    .iter()
                    .filter(|port| {
                        port.sort == PortSort::Output
                            && !self.used_ports.contains(&(step, port.def))
                    })
                    .map(|port| (port.def, port.name.clone()))
                    .collect();
                for (port_def, port_name) in unused {
                    let def = self.symbols.def(port_def);
                    let at = if def.name_at.file == step_node.node.file {
                        def.name_at.span
                    } else {
                        step_node.node.ast.name.span
                    };
                    self.report(
                        Diagnostic::new(
                            Code::W0002,
                            step_node.node.file,
                            at,
                            format!(
                                "output `{port_name}` of step `{}` is never used",
                                step_node.node.ast.name.name
                            ),
                        )
                        .with_label("nothing consumes it")
                        .with_help("bind an input or a service to it, or remove the output"),
                    );
                }
            }
        }
        // An import is unused when nothing its `use` brings in is used: a braced list that is
        // partly used is not worth a warning (the spec's own north-star imports `evaluate`
        // beside `train_classifier` to show the module's API).
        let mut files: Vec<_> = p.imports.keys().copied().collect();
        files.sort();
        for file in files {
            let mut declarations: Vec<(crate::span::Span, Vec<&crate::resolve::collect::Import>)> =
                Vec::new();
            for import in &p.imports[&file] {
                match declarations
                    .iter_mut()
                    .find(|(span, _)| *span == import.use_span)
                {
                    Some((_, items)) => items.push(import),
                    None => declarations.push((import.use_span, vec![import])),
                }
            }
            for (use_span, items) in declarations {
                if items
                    .iter()
                    .any(|i| self.used_imports.contains(&(file, i.span.start)))
                {
                    continue;
                }
                let names: Vec<String> = items.iter().map(|i| format!("`{}`", i.name)).collect();
                self.report(
                    Diagnostic::new(
                        Code::W0003,
                        file,
                        use_span,
                        format!("{} imported but never used", names.join(", ")),
                    )
                    .with_label("unused import")
                    .with_help("remove this `use`"),
                );
            }
        }
        for agent in &p.agents {
            if !self.used.contains(&agent.def) {
                self.report(
                    Diagnostic::new(
                        Code::W0004,
                        agent.file,
                        agent.ast.name.span,
                        format!("agent `{}` is never used", agent.ast.name.name),
                    )
                    .with_label("no trigger or policy refers to it")
                    .with_help("use its sensors or actions in a trigger or policy, or remove it"),
                );
            }
        }
        for policy in &p.policies {
            self.lint_policy(policy.file, policy.ast);
        }
    }

    fn lint_policy(&mut self, file: crate::span::FileId, policy: &Policy) {
        if let Some(limit) = &policy.rate_limit {
            if number_value(&limit.count) == Some(0.0) {
                self.report(
                    Diagnostic::new(
                        Code::W0005,
                        file,
                        limit.span,
                        format!("policy `{}` may fire 0 times", policy.name.name),
                    )
                    .with_label("`max 0` never lets it fire")
                    .with_help("raise the limit, or remove the policy"),
                );
                return;
            }
        }
        if self.never_holds(&policy.when, Ctx::top(file)) {
            self.report(
                Diagnostic::new(
                    Code::W0005,
                    file,
                    policy.when.span,
                    format!(
                        "the condition of policy `{}` can never hold",
                        policy.name.name
                    ),
                )
                .with_label("always false")
                .with_help("its actions can never run: fix the condition or remove the policy"),
            );
        }
    }

    /// Whether a condition is false whatever the run-time values (constant `false`, a
    /// `ratio` compared beyond [0, 1], `and` with such a part).
    fn never_holds(&mut self, cond: &Expr, ctx: Ctx) -> bool {
        match &cond.kind {
            ExprKind::Bool(b) => !b,
            ExprKind::Paren(inner) => self.never_holds(inner, ctx),
            ExprKind::Binary {
                op: BinaryOp::And,
                lhs,
                rhs,
            } => self.never_holds(lhs, ctx) || self.never_holds(rhs, ctx),
            ExprKind::Binary {
                op: BinaryOp::Or,
                lhs,
                rhs,
            } => self.never_holds(lhs, ctx) && self.never_holds(rhs, ctx),
            ExprKind::Binary { op, lhs, rhs } if op.is_comparison() => {
                let lhs_ratio =
                    number_value(lhs).is_none() && self.type_silently(lhs, ctx) == Ty::Ratio;
                let rhs_ratio =
                    number_value(rhs).is_none() && self.type_silently(rhs, ctx) == Ty::Ratio;
                let (op, c) = match (lhs_ratio, rhs_ratio, number_value(lhs), number_value(rhs)) {
                    (true, false, _, Some(c)) => (*op, c),
                    (false, true, Some(c), _) => (flip(*op), c),
                    _ => return false,
                };
                // Does `r op c` hold for no r in [0, 1]?
                match op {
                    BinaryOp::Gt => c >= 1.0,
                    BinaryOp::Ge => c > 1.0,
                    BinaryOp::Lt => c <= 0.0,
                    BinaryOp::Le => c < 0.0,
                    BinaryOp::Eq => !(0.0..=1.0).contains(&c),
                    _ => false,
                }
            }
            _ => false,
        }
    }

    /// The type of an expression that was already checked, without reporting anything again.
    fn type_silently(&mut self, expr: &Expr, ctx: Ctx) -> Ty {
        let before_diags = self.diagnostics.len();
        let before_refs = self.symbols.references.len();
        let ty = self.value(expr, None, ctx);
        self.diagnostics.truncate(before_diags);
        self.symbols.references.truncate(before_refs);
        ty
    }
}

/// `c op x` is `x flip(op) c`.
fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Le => BinaryOp::Ge,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Ge => BinaryOp::Le,
        other => other,
    }
}
