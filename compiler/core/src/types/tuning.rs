//! Hyper-parameter tuning: the checks behind `Improver.tune` and the prelude functions that
//! configure it (`maximize`/`minimize` for the `objective`, `tpe`/`random_search` for the
//! `search`).
//!
//! - an objective (`maximize(…)`/`minimize(…)`) stands only as the `objective` config of an
//!   Improver, and its metric is a step metric of that Improver's `retrain` workflow (E0313);
//! - `AGENT.tune(…)` needs the agent's `objective` (E0205) and a param of the retrain workflow
//!   with a search space (E0314); `trials`, `parallel` and `tpe`'s counts are positive (E0705).

use super::expr::Val;
use super::ty::Ty;
use super::{Checker, Ctx};
use crate::diagnostics::{Code, Diagnostic};
use crate::symbols::{DefId, DefKind};
use crate::syntax::ast::*;

/// The prelude's functions that this module checks.
const PRELUDE_FNS: &[&str] = &["maximize", "minimize", "random_search", "tpe"];

impl Checker<'_, '_> {
    /// The name of `f` if it is one of the prelude's tuning functions.
    pub(super) fn prelude_fn(&self, f: DefId) -> Option<&'static str> {
        let d = self.symbols.def(f);
        if d.name_at.file != self.p.prelude || d.kind != DefKind::ExternFn {
            return None;
        }
        PRELUDE_FNS.iter().copied().find(|n| *n == d.name)
    }

    /// Whether `kind` is the prelude's `Improver`.
    pub(super) fn is_improver(&self, kind: DefId) -> bool {
        let d = self.symbols.def(kind);
        d.kind == DefKind::AgentKind && d.name == "Improver" && d.name_at.file == self.p.prelude
    }

    /// `maximize(metric)` / `minimize(metric)`: only as an Improver's `objective`, on a metric
    /// of its retrain workflow.
    pub(super) fn check_objective_call(
        &mut self,
        expr: &Expr,
        f: DefId,
        params: &[DefId],
        args: &[Arg],
        ctx: Ctx,
    ) -> Val {
        let name = self.symbols.def(f).name.clone();
        let inner = Ctx {
            objective_of: None,
            ..ctx
        };
        let before = self.diagnostics.len();
        self.check_args(expr, f, params, args, &[], inner);
        let Some(agent) = ctx.objective_of else {
            self.report(
                Diagnostic::new(
                    Code::E0313,
                    ctx.file,
                    expr.span,
                    format!("`{name}` states what an Improver's `tune` optimizes, and cannot stand here"),
                )
                .with_label("not the `objective` of an Improver")
                .with_help(format!(
                    "set it as the objective of an Improver agent: `objective = {name}(WORKFLOW.STEP.METRIC)`"
                )),
            );
            return Val::Error;
        };
        if self.diagnostics.len() > before {
            // The argument is already wrong (unknown name, not a number, missing): one
            // diagnostic per mistake.
            return Val::Value(Ty::Objective);
        }
        let Some(metric) = self.arg_for(params, args, "metric") else {
            return Val::Value(Ty::Objective);
        };
        let agent_name = self.symbols.def(agent).name.clone();
        let retrain = self.retrain_of(agent);
        let found = self.step_metric(&metric.value);
        let retrain_name = retrain.map(|w| self.symbols.def(w).name.clone());
        let help = match retrain {
            Some(w) => self.metrics_help(w),
            None => format!("for example `{name}(training.fit.accuracy)`"),
        };
        match (found, retrain) {
            (Some((workflow, _)), Some(w)) if workflow != w => {
                let other = self.symbols.def(workflow).name.clone();
                let path = metric.value.span.text(&self.p.sources.get(ctx.file).text);
                self.report(
                    Diagnostic::new(
                        Code::E0313,
                        ctx.file,
                        metric.value.span,
                        format!(
                            "`{path}` is not a metric of `{}`, the workflow that `{agent_name}` retrains",
                            retrain_name.unwrap_or_default()
                        ),
                    )
                    .with_label(format!("a metric of workflow `{other}`"))
                    .with_help(help),
                );
            }
            (Some(_), _) => {}
            (None, _) => {
                let message = match &retrain_name {
                    Some(w) => format!(
                        "the objective must be a metric of `{w}`, the workflow that `{agent_name}` retrains"
                    ),
                    None => "the objective must be a step metric, `WORKFLOW.STEP.METRIC`".to_string(),
                };
                self.report(
                    Diagnostic::new(Code::E0313, ctx.file, metric.value.span, message)
                        .with_label("not a step metric of the retrain workflow")
                        .with_help(help),
                );
            }
        }
        Val::Value(Ty::Objective)
    }

    /// `tpe(startup, gamma, candidates)`: positive counts, `gamma` strictly inside (0, 1).
    pub(super) fn check_tpe_call(
        &mut self,
        expr: &Expr,
        f: DefId,
        params: &[DefId],
        args: &[Arg],
        ctx: Ctx,
    ) {
        let ctx = Ctx {
            objective_of: None,
            ..ctx
        };
        let before = self.diagnostics.len();
        self.check_args(expr, f, params, args, &[], ctx);
        if self.diagnostics.len() > before {
            return;
        }
        for (param, what) in [
            ("startup", "`startup` (random trials before modelling)"),
            ("candidates", "`candidates` (samples drawn per proposal)"),
            ("gamma", "`gamma` (the share of trials modelled as good)"),
        ] {
            if let Some(arg) = self.arg_for(params, args, param) {
                self.positive(ctx.file, &arg.value, what);
            }
        }
        if let Some(gamma) = self.arg_for(params, args, "gamma") {
            if self.number(ctx.file, &gamma.value) == Some(1.0) {
                self.report(
                    Diagnostic::new(
                        Code::E0706,
                        ctx.file,
                        gamma.value.span,
                        "`gamma` must be below 1: some trials must count as not good",
                    )
                    .with_label("every trial would be \"good\"")
                    .with_help("TPE compares the best trials with the rest; the default is `0.25`"),
                );
            }
        }
    }

    /// `AGENT.tune(trials)` of an Improver: an objective, something to tune, positive trials.
    pub(super) fn check_tune_call(
        &mut self,
        expr: &Expr,
        agent: DefId,
        action: DefId,
        args: &[Arg],
        ctx: Ctx,
    ) {
        let d = self.symbols.def(action);
        if d.name != "tune" || !d.parent.is_some_and(|k| self.is_improver(k)) {
            return;
        }
        let params = d
            .parent
            .and_then(|k| self.p.kinds.get(&k))
            .and_then(|k| k.action_params.get(&action))
            .cloned()
            .unwrap_or_default();
        if let Some(trials) = self.arg_for(&params, args, "trials") {
            self.positive(ctx.file, &trials.value, "`trials`");
        }
        let Some(node) = self.p.agent(agent) else {
            return;
        };
        let (agent_file, agent_decl) = (node.file, node.ast);
        if self.p.has_syntax_error(agent_file, agent_decl.span) {
            return;
        }
        let agent_name = agent_decl.name.name.clone();
        let retrain = self.retrain_of(agent);
        if !agent_decl.fields.iter().any(|f| f.name.name == "objective") {
            let example = match retrain.and_then(|w| self.example_objective(w)) {
                Some(objective) => objective,
                None => "maximize(WORKFLOW.STEP.METRIC)".to_string(),
            };
            self.report(
                Diagnostic::new(
                    Code::E0205,
                    ctx.file,
                    expr.span,
                    format!("`{agent_name}.tune` needs an objective: agent `{agent_name}` sets no `objective`"),
                )
                .with_label("nothing says which trial is best")
                .with_secondary(agent_file, agent_decl.name.span, format!("`{agent_name}` is declared here"))
                .with_help(format!("add `objective = {example}` to the agent")),
            );
        }
        let Some(workflow) = retrain else {
            return;
        };
        let Some(w) = self.p.workflow(workflow) else {
            return;
        };
        let params: Vec<&Param> = w
            .node
            .ast
            .members
            .iter()
            .filter_map(|m| match m {
                WorkflowMember::Param(p) => Some(p),
                WorkflowMember::Step(_) => None,
            })
            .collect();
        if params.iter().any(|p| p.space.is_some()) {
            return;
        }
        let (wf_file, wf_name) = (w.node.file, w.node.ast.name.clone());
        let text = &self.p.sources.get(wf_file).text;
        let example = params
            .iter()
            .find_map(|p| space_example(p, text))
            .unwrap_or_else(|| "param lr: float = 0.001 in log(1e-4, 1e-1)".to_string());
        let help = if params.is_empty() {
            format!("declare a param with a search space in `{}` and use it in a step, e.g. `{example}`", wf_name.name)
        } else {
            format!(
                "give a param of `{}` a search space with `in …`, e.g. `{example}`",
                wf_name.name
            )
        };
        self.report(
            Diagnostic::new(
                Code::E0314,
                ctx.file,
                expr.span,
                format!(
                    "nothing to tune: no param of `{}` (the workflow that `{agent_name}` retrains) declares a search space",
                    wf_name.name
                ),
            )
            .with_label("this search has no params to vary")
            .with_secondary(wf_file, wf_name.span, "the retrain workflow")
            .with_help(help),
        );
    }

    /// The argument bound to parameter `name`: named, or by position.
    fn arg_for<'e>(&self, params: &[DefId], args: &'e [Arg], name: &str) -> Option<&'e Arg> {
        if let Some(arg) = args
            .iter()
            .find(|a| a.name.as_ref().is_some_and(|n| n.name == name))
        {
            return Some(arg);
        }
        let index = params
            .iter()
            .position(|&p| self.symbols.def(p).name == name)?;
        args.iter().filter(|a| a.name.is_none()).nth(index)
    }

    /// The workflow an agent's `retrain` config names, when it names one.
    fn retrain_of(&self, agent: DefId) -> Option<DefId> {
        let agent = self.p.agent(agent)?;
        let field = agent.ast.fields.iter().find(|f| f.name.name == "retrain")?;
        let ExprKind::Name(ident) = &field.value.kind else {
            return None;
        };
        let &def = self.p.values.get(&ident.name)?;
        (self.symbols.def(def).kind == DefKind::Workflow).then_some(def)
    }

    /// `WORKFLOW.STEP.METRIC`: the workflow and step, when `expr` is a step metric.
    fn step_metric(&self, expr: &Expr) -> Option<(DefId, DefId)> {
        let path = expr.as_path()?;
        let [workflow, step, metric] = path.as_slice() else {
            return None;
        };
        let &w = self.p.values.get(&workflow.name)?;
        let step = *self.p.workflow(w)?.step_names.get(&step.name)?;
        self.ports_of(step)
            .iter()
            .any(|p| p.sort == PortSort::Metric && p.name == metric.name)
            .then_some((w, step))
    }

    /// The numeric metrics of a workflow's steps, as `WORKFLOW.STEP.METRIC`, in source order.
    fn metric_paths(&self, workflow: DefId) -> Vec<String> {
        let Some(w) = self.p.workflow(workflow) else {
            return Vec::new();
        };
        let wf = &w.node.ast.name.name;
        let mut out = Vec::new();
        for &step in &w.steps {
            let step_name = &self.symbols.def(step).name;
            for port in self.ports_of(step).iter() {
                if port.sort == PortSort::Metric && port.ty.is_number() {
                    out.push(format!("{wf}.{step_name}.{}", port.name));
                }
            }
        }
        out
    }

    /// A help line naming the metrics an objective may use.
    fn metrics_help(&self, workflow: DefId) -> String {
        let name = &self.symbols.def(workflow).name;
        let metrics = self.metric_paths(workflow);
        if metrics.is_empty() {
            return format!(
                "workflow `{name}` reports no number metrics: declare one in the step that trains the model (`metric accuracy: ratio`)"
            );
        }
        let list: Vec<String> = metrics.iter().map(|m| format!("`{m}`")).collect();
        format!("the metrics of `{name}` are {}", list.join(", "))
    }

    /// `maximize(W.S.M)` on a real metric of `workflow`, preferring its model's step;
    /// `minimize` for metrics named like losses and errors.
    fn example_objective(&self, workflow: DefId) -> Option<String> {
        let metrics = self.metric_paths(workflow);
        let model_step = self
            .workflow_model_step(workflow)
            .map(|s| format!(".{}.", self.symbols.def(s).name));
        let metric = model_step
            .and_then(|s| metrics.iter().find(|m| m.contains(&s)))
            .or_else(|| metrics.first())?;
        let last = metric.rsplit('.').next().unwrap_or_default();
        let direction = if last.contains("loss") || last.contains("error") {
            "minimize"
        } else {
            "maximize"
        };
        Some(format!("{direction}({metric})"))
    }
}

/// `param NAME: TYPE = DEFAULT in SPACE`: an example search space that holds the param's
/// default, for the help of E0314 (params of types without a natural space are skipped).
fn space_example(param: &Param, text: &str) -> Option<String> {
    let written = param
        .span
        .text(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let default = param.default.as_ref().map(|d| &d.kind);
    let space = match (param.ty.name.name.as_str(), default) {
        ("int", Some(ExprKind::Int(d))) if *d >= 1 => format!("1..{}", (d * 3).max(10)),
        ("int", Some(ExprKind::Int(d))) => format!("{d}..{}", d + 10),
        ("int", None) => "1..10".to_string(),
        ("float", Some(ExprKind::Float(d))) if *d > 0.0 => {
            format!("log({}, {})", float_text(d / 10.0), float_text(d * 10.0))
        }
        ("float", None) => "log(1e-4, 1e-1)".to_string(),
        ("ratio", _) => "0.0..1.0".to_string(),
        ("bool", _) => "[true, false]".to_string(),
        ("string", Some(ExprKind::Str(s))) => format!("[\"{}\", …]", s.as_plain()?),
        _ => return None,
    };
    Some(format!("{written} in {space}"))
}

/// A float as a literal: always with a fraction or an exponent.
fn float_text(value: f64) -> String {
    let text = format!("{value}");
    if text.contains(['.', 'e']) {
        text
    } else {
        format!("{text}.0")
    }
}
