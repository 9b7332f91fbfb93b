//! Expressions: name lookup, members, calls, operators and literals with units.

use super::ty::{Family, Ty};
use super::{Checker, Ctx, Position};
use crate::diagnostics::{Code, Diagnostic};
use crate::resolve::suggest;
use crate::symbols::{DefId, DefKind};
use crate::syntax::ast::*;
use crate::values;

/// What an expression denotes: a value of some type, or a declaration that is not a value.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    /// A value.
    Value(Ty),
    /// A sensor read: a value, remembered as a sensor so calling it can be explained.
    Sensor(DefId, Ty),
    /// An agent instance.
    Agent(DefId),
    /// A step (inside its workflow, or `workflow.step`).
    Step(DefId),
    /// A std module imported whole.
    Module(DefId),
    /// A std function.
    ExternFn(DefId),
    /// A std step.
    ExternStep(DefId),
    /// An agent's action.
    Action {
        /// The agent.
        agent: DefId,
        /// The action of its kind.
        action: DefId,
    },
    /// A workflow or service event.
    Event,
    /// An error was reported already.
    Error,
}

impl Checker<'_, '_> {
    /// Checks `expr` as a value, expecting `expected` if given, and returns its type.
    pub(super) fn value(&mut self, expr: &Expr, expected: Option<&Ty>, ctx: Ctx) -> Ty {
        let val = self.eval(expr, expected, ctx);
        let ty = self.as_value(expr, val, ctx);
        if let Some(expected) = expected {
            if !ty.fits(expected) {
                self.mismatch(expr, &ty, expected, ctx);
                return Ty::Unknown;
            }
        }
        ty
    }

    /// Checks `expr` as a value and returns its type, without requiring it to fit
    /// `expected` (which only gives literals their unit).
    pub(super) fn typed(&mut self, expr: &Expr, expected: Option<&Ty>, ctx: Ctx) -> Ty {
        let val = self.eval(expr, expected, ctx);
        self.as_value(expr, val, ctx)
    }

    /// Turns a [`Val`] into a value type, reporting declarations used as values.
    pub(super) fn as_value(&mut self, expr: &Expr, val: Val, ctx: Ctx) -> Ty {
        let (message, label, help, code) = match val {
            Val::Value(ty) | Val::Sensor(_, ty) => return ty,
            Val::Error => return Ty::Unknown,
            Val::Action { action, .. } => {
                let name = self.symbols.def(action).name.clone();
                (
                    format!("`{name}` is an action, not a value"),
                    "an action cannot be read".to_string(),
                    "actions are called after `then` or `->`; to read state, use one of the agent's sensors".to_string(),
                    Code::E0202,
                )
            }
            Val::Agent(agent) => {
                let name = self.symbols.def(agent).name.clone();
                (
                    format!("agent `{name}` is not a value"),
                    "read one of its sensors instead".to_string(),
                    format!("write `{name}.SENSOR`"),
                    Code::E0203,
                )
            }
            Val::Step(step) => {
                let name = self.symbols.def(step).name.clone();
                (
                    format!("step `{name}` is not a value"),
                    "a step is not a value".to_string(),
                    format!("read one of its outputs or metrics: `{name}.OUTPUT`"),
                    Code::E0203,
                )
            }
            Val::Module(_) => (
                "a module is not a value".to_string(),
                "module".to_string(),
                "name one of its items: `module.item`".to_string(),
                Code::E0203,
            ),
            Val::ExternFn(f) => {
                let name = self.symbols.def(f).name.clone();
                (
                    format!("`{name}` is a function and must be called"),
                    "not called".to_string(),
                    format!("call it: `{name}(…)`"),
                    Code::E0203,
                )
            }
            Val::ExternStep(s) => {
                let name = self.symbols.def(s).name.clone();
                (
                    format!("`{name}` is a std step, not a value"),
                    "a std step".to_string(),
                    format!("use it in a step: `uses = {name}(…)`"),
                    Code::E0203,
                )
            }
            Val::Event => {
                if ctx.position == Position::Event {
                    return Ty::Event;
                }
                (
                    "an event is not a value".to_string(),
                    "events only follow `on`".to_string(),
                    "write `trigger NAME: on EVENT -> ACTION`".to_string(),
                    Code::E0203,
                )
            }
        };
        self.report(
            Diagnostic::new(code, ctx.file, expr.span, message)
                .with_label(label)
                .with_help(help),
        );
        Ty::Unknown
    }

    /// Evaluates an expression to what it denotes.
    pub(super) fn eval(&mut self, expr: &Expr, expected: Option<&Ty>, ctx: Ctx) -> Val {
        match &expr.kind {
            ExprKind::Int(v) => Val::Value(self.int_literal(expr, *v as f64, expected, ctx)),
            ExprKind::Float(v) => Val::Value(self.float_literal(expr, *v, expected, ctx)),
            ExprKind::Suffixed { digits, unit, .. } => {
                Val::Value(self.suffixed(expr, digits, unit, expected, ctx))
            }
            ExprKind::Bool(_) => Val::Value(Ty::Bool),
            ExprKind::Str(s) => {
                self.check_string(s, ctx);
                Val::Value(Ty::String)
            }
            ExprKind::Name(ident) => self.lookup(ident, ctx),
            ExprKind::Field { base, field } => {
                let base_val = self.eval(
                    base,
                    None,
                    Ctx {
                        position: Position::Value,
                        ..ctx
                    },
                );
                self.member(base, base_val, field, ctx)
            }
            ExprKind::Call { callee, args } => self.call(expr, callee, args, ctx),
            ExprKind::List(items) => {
                let elem_expected = match expected {
                    Some(Ty::List(t)) => Some(t.as_ref().clone()),
                    _ => None,
                };
                let mut elem = elem_expected.clone();
                for item in items {
                    let t = self.value(item, elem.as_ref(), ctx);
                    if elem.is_none() && t != Ty::Unknown {
                        elem = Some(t);
                    }
                }
                Val::Value(Ty::List(Box::new(elem.unwrap_or(Ty::Unknown))))
            }
            ExprKind::Record(fields) => {
                for field in fields {
                    self.value(&field.value, None, ctx);
                }
                Val::Value(Ty::Record)
            }
            ExprKind::Range { start, end } => {
                let elem = match expected {
                    Some(Ty::Range(t)) => Some(t.as_ref().clone()),
                    _ => None,
                };
                let a = self.value(start, elem.as_ref(), ctx);
                let expected_end = if a == Ty::Unknown {
                    elem
                } else {
                    Some(a.clone())
                };
                let b = self.value(end, expected_end.as_ref(), ctx);
                Val::Value(Ty::Range(Box::new(if a == Ty::Unknown { b } else { a })))
            }
            ExprKind::Unary { op, operand } => {
                Val::Value(self.unary(expr, *op, operand, expected, ctx))
            }
            ExprKind::Binary { op, lhs, rhs } => {
                Val::Value(self.binary(expr, *op, lhs, rhs, expected, ctx))
            }
            ExprKind::Paren(inner) => self.eval(inner, expected, ctx),
        }
    }

    /// Resolves a bare name: locals (params, steps, action params), then the program's
    /// declarations, then the file's std imports, then the prelude's functions. The
    /// standard library's own expressions (the prelude's `search: Search = tpe()`) see only
    /// the prelude: a user's `workflow tpe` must not change what the stdlib means.
    pub(super) fn lookup(&mut self, ident: &Ident, ctx: Ctx) -> Val {
        if !self.p.is_user_file(ctx.file) {
            if let Some(&def) = self.p.prelude_values.get(&ident.name) {
                self.refer(ctx, ident, def);
                return self.val_of_def(def);
            }
        }
        if let Some(def) = self.local(&ident.name, ctx) {
            self.refer(ctx, ident, def);
            return self.val_of_def(def);
        }
        if let Some(&def) = self.p.values.get(&ident.name) {
            self.refer(ctx, ident, def);
            return self.val_of_def(def);
        }
        if let Some(def) = self.import(ctx.file, &ident.name) {
            self.refer(ctx, ident, def);
            return self.val_of_def(def);
        }
        if let Some(&def) = self.p.prelude_values.get(&ident.name) {
            self.refer(ctx, ident, def);
            return self.val_of_def(def);
        }
        if self.p.is_failed_import(ctx.file, &ident.name) {
            return Val::Error;
        }
        let mut candidates: Vec<String> = self.p.values.keys().cloned().collect();
        candidates.extend(self.p.prelude_values.keys().cloned());
        if let Some(imports) = self.p.imports.get(&ctx.file) {
            candidates.extend(imports.iter().map(|i| i.name.clone()));
        }
        candidates.extend(self.local_names(ctx));
        // Std items the file did not import: suggest the import.
        let std_home = self
            .p
            .modules
            .iter()
            .find(|(_, (_, items))| items.contains_key(&ident.name))
            .map(|(m, _)| m.clone());
        let mut d = Diagnostic::new(
            Code::E0101,
            ctx.file,
            ident.span,
            format!("unknown name `{}`", ident.name),
        )
        .with_label("not found in this scope");
        if let Some(module) = std_home {
            d = d.with_help(format!(
                "`{}` is in the standard library: add `use std.{module}.{}`",
                ident.name, ident.name
            ));
        } else if let Some(best) =
            suggest::closest(&ident.name, candidates.iter().map(String::as_str))
        {
            d = d
                .with_help(format!("did you mean `{best}`?"))
                .with_suggestion(format!("replace with `{best}`"), ctx.file, ident.span, best);
        } else {
            d = d.with_help("declare it, or check the spelling");
        }
        self.report(d);
        Val::Error
    }

    fn local(&self, name: &str, ctx: Ctx) -> Option<DefId> {
        if let Some(locals) = ctx.locals {
            if let Some(&def) = locals.get(name) {
                return Some(def);
            }
        }
        let workflow = self.p.workflow(ctx.workflow?)?;
        workflow
            .params
            .get(name)
            .or_else(|| workflow.step_names.get(name))
            .copied()
    }

    fn local_names(&self, ctx: Ctx) -> Vec<String> {
        let mut names = Vec::new();
        if let Some(locals) = ctx.locals {
            names.extend(locals.keys().cloned());
        }
        if let Some(workflow) = ctx.workflow.and_then(|w| self.p.workflow(w)) {
            names.extend(workflow.params.keys().cloned());
            names.extend(workflow.step_names.keys().cloned());
        }
        names
    }

    fn import(&mut self, file: crate::span::FileId, name: &str) -> Option<DefId> {
        let import = self.p.imports.get(&file)?.iter().find(|i| i.name == name)?;
        self.used_imports.insert((file, import.span.start));
        Some(import.def)
    }

    /// What a declaration denotes when named.
    fn val_of_def(&self, def: DefId) -> Val {
        match self.symbols.def(def).kind {
            DefKind::Workflow => Val::Value(Ty::Workflow(Some(def))),
            DefKind::Service => Val::Value(Ty::Service(Some(def))),
            DefKind::Agent => Val::Agent(def),
            DefKind::Step => Val::Step(def),
            DefKind::Param | DefKind::ParamSig => {
                Val::Value(self.def_types.get(&def).cloned().unwrap_or(Ty::Unknown))
            }
            DefKind::Module => Val::Module(def),
            DefKind::ExternFn => Val::ExternFn(def),
            DefKind::ExternStep => Val::ExternStep(def),
            _ => Val::Error,
        }
    }

    fn refer(&mut self, ctx: Ctx, ident: &Ident, def: DefId) {
        self.symbols.refer(ctx.file, ident.span, def);
        self.used.insert(def);
    }

    /// `base.field`
    fn member(&mut self, base: &Expr, base_val: Val, field: &Ident, ctx: Ctx) -> Val {
        let name = field.name.as_str();
        match base_val {
            Val::Error | Val::Value(Ty::Unknown) | Val::Sensor(_, Ty::Unknown) => Val::Error,
            Val::Value(Ty::Service(service)) => {
                let ty = match name {
                    "model" => Some(Ty::Model(service.and_then(|s| self.service_model_step(s)))),
                    "latency" => Some(Ty::Latency),
                    "requests" | "replicas" => Some(Ty::Int),
                    "errors" => Some(Ty::Ratio),
                    "scaled" if ctx.position == Position::Event => return Val::Event,
                    _ => None,
                };
                match ty {
                    Some(ty) => Val::Value(ty),
                    None => self.unknown_member(
                        field,
                        "a service",
                        &["model", "latency", "requests", "errors", "replicas"],
                        ctx,
                    ),
                }
            }
            Val::Value(Ty::Model(_))
                if ctx.position == Position::Event
                    && matches!(name, "replaced" | "rolled_back") =>
            {
                Val::Event
            }
            Val::Value(Ty::Latency) => match name {
                "p50" | "p95" | "p99" => Val::Value(Ty::Duration),
                _ => self.unknown_member(field, "a latency record", &["p50", "p95", "p99"], ctx),
            },
            Val::Value(Ty::Batch) | Val::Sensor(_, Ty::Batch) => match name {
                "size" => Val::Value(Ty::Int),
                _ => self.unknown_member(field, "a batch", &["size"], ctx),
            },
            Val::Value(Ty::Model(step)) | Val::Sensor(_, Ty::Model(step)) => {
                let Some(step) = step else {
                    self.report(
                        Diagnostic::new(Code::E0309, ctx.file, field.span, format!("the metrics of this model are not known, so `{name}` cannot be read"))
                            .with_label("unknown metric record")
                            .with_help("read metrics of a model produced by a step that declares them (`metric NAME: TYPE`)"),
                    );
                    return Val::Error;
                };
                let metrics: Vec<(String, Ty, DefId)> = self
                    .ports_of(step)
                    .iter()
                    .filter(|p| p.sort == PortSort::Metric)
                    .map(|p| (p.name.clone(), p.ty.clone(), p.def))
                    .collect();
                match metrics.iter().find(|(n, _, _)| n == name) {
                    Some((_, ty, def)) => {
                        self.refer(ctx, field, *def);
                        Val::Value(ty.clone())
                    }
                    None => {
                        let step_name = self.symbols.def(step).name.clone();
                        let names: Vec<&str> = metrics.iter().map(|(n, _, _)| n.as_str()).collect();
                        self.unknown_member(
                            field,
                            &format!("this model (made by step `{step_name}`)"),
                            &names,
                            ctx,
                        )
                    }
                }
            }
            Val::Value(Ty::Workflow(Some(workflow))) => {
                if ctx.position == Position::Event
                    && matches!(name, "started" | "succeeded" | "failed")
                {
                    return Val::Event;
                }
                let step = self
                    .p
                    .workflow(workflow)
                    .and_then(|w| w.step_names.get(name).copied());
                match step {
                    Some(step) => {
                        self.refer(ctx, field, step);
                        Val::Step(step)
                    }
                    None => {
                        let mut names: Vec<String> = self
                            .p
                            .workflow(workflow)
                            .map(|w| w.step_names.keys().cloned().collect())
                            .unwrap_or_default();
                        if ctx.position == Position::Event {
                            names.extend(["started", "succeeded", "failed"].map(String::from));
                        }
                        let names: Vec<&str> = names.iter().map(String::as_str).collect();
                        let wf_name = self.symbols.def(workflow).name.clone();
                        self.unknown_member(field, &format!("workflow `{wf_name}`"), &names, ctx)
                    }
                }
            }
            Val::Step(step) => {
                let found = self
                    .ports_of(step)
                    .iter()
                    .find(|p| p.name == name)
                    .map(|p| (p.sort, p.def, p.ty.clone()));
                match found {
                    Some((sort, def, ty)) if sort != PortSort::Input => {
                        self.refer(ctx, field, def);
                        self.used_ports.insert((step, def));
                        Val::Value(ty)
                    }
                    Some(_) => {
                        self.report(
                            Diagnostic::new(Code::E0309, ctx.file, field.span, format!("`{name}` is an input of the step, and inputs cannot be read from outside"))
                                .with_label("an input")
                                .with_help("bind to what the input is bound to, or to one of the step's outputs"),
                        );
                        Val::Error
                    }
                    None => {
                        let names: Vec<String> = self
                            .ports_of(step)
                            .iter()
                            .filter(|p| p.sort != PortSort::Input)
                            .map(|p| p.name.clone())
                            .collect();
                        let names: Vec<&str> = names.iter().map(String::as_str).collect();
                        let step_name = self.symbols.def(step).name.clone();
                        self.unknown_member(field, &format!("step `{step_name}`"), &names, ctx)
                    }
                }
            }
            Val::Agent(agent) => self.agent_member(agent, field, ctx),
            Val::Module(module) => {
                let items = self
                    .p
                    .modules
                    .values()
                    .find(|(def, _)| *def == module)
                    .map(|(_, items)| items.clone());
                match items.as_ref().and_then(|items| items.get(name)) {
                    Some(&def) => {
                        self.refer(ctx, field, def);
                        self.val_of_def(def)
                    }
                    None => {
                        let names: Vec<&str> = items
                            .iter()
                            .flat_map(|i| i.keys())
                            .map(String::as_str)
                            .collect();
                        self.unknown_member(field, "this module", &names, ctx)
                    }
                }
            }
            other => {
                let ty = self.as_value(base, other, ctx);
                if ty == Ty::Unknown {
                    return Val::Error;
                }
                self.unknown_member(field, &format!("a value of type `{ty}`"), &[], ctx)
            }
        }
    }

    fn agent_member(&mut self, agent: DefId, field: &Ident, ctx: Ctx) -> Val {
        let Some(kind) = self.agent_kind(agent) else {
            return Val::Error;
        };
        let member = self
            .p
            .kinds
            .get(&kind)
            .and_then(|k| k.members.get(&field.name).copied());
        let Some(member) = member else {
            let names: Vec<String> = self
                .p
                .kinds
                .get(&kind)
                .map(|k| {
                    k.members
                        .iter()
                        .filter(|(_, &d)| self.symbols.def(d).kind != DefKind::Config)
                        .map(|(n, _)| n.clone())
                        .collect()
                })
                .unwrap_or_default();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let kind_name = self.symbols.def(kind).name.clone();
            return self.unknown_member(field, &format!("agent kind `{kind_name}`"), &names, ctx);
        };
        self.refer(ctx, field, member);
        match self.symbols.def(member).kind {
            DefKind::Sensor => {
                let mut ty = self.def_types.get(&member).cloned().unwrap_or(Ty::Unknown);
                if ty == Ty::Model(None) {
                    ty = Ty::Model(self.candidate_record(agent, kind));
                }
                Val::Sensor(member, ty)
            }
            DefKind::Action => Val::Action {
                agent,
                action: member,
            },
            _ => {
                self.report(
                    Diagnostic::new(Code::E0309, ctx.file, field.span, format!("`{}` is a config of the agent, not a sensor", field.name))
                        .with_label("configs cannot be read")
                        .with_help("policies and triggers read sensors; a config is fixed in the agent's declaration"),
                );
                Val::Error
            }
        }
    }

    /// The metric record of a `Model` sensor: that of the model made by the workflow the
    /// agent's `Workflow` config names (how `improver.candidate.accuracy` is typed).
    fn candidate_record(&self, agent: DefId, kind: DefId) -> Option<DefId> {
        let agent_node = self.p.agent(agent)?;
        let kind_node = self.p.kinds.get(&kind)?;
        for field in &agent_node.ast.fields {
            let member = kind_node.members.get(&field.name.name)?;
            if self.def_types.get(member) == Some(&Ty::Workflow(None)) {
                if let ExprKind::Name(ident) = &field.value.kind {
                    let &workflow = self.p.values.get(&ident.name)?;
                    return self.workflow_model_step(workflow);
                }
            }
        }
        None
    }

    fn unknown_member(&mut self, field: &Ident, owner: &str, names: &[&str], ctx: Ctx) -> Val {
        let mut d = Diagnostic::new(
            Code::E0309,
            ctx.file,
            field.span,
            format!("{owner} has no member `{}`", field.name),
        )
        .with_label("unknown member");
        if let Some(best) = suggest::closest(&field.name, names.iter().copied()) {
            d = d
                .with_help(format!("did you mean `{best}`?"))
                .with_suggestion(format!("replace with `{best}`"), ctx.file, field.span, best);
        } else if names.is_empty() {
            d = d.with_help("it has no members that can be read");
        } else {
            let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            d = d.with_help(format!("its members are {}", list.join(", ")));
        }
        self.report(d);
        Val::Error
    }

    /// `callee(args)` in a value position (std functions) or an action position.
    fn call(&mut self, expr: &Expr, callee: &Expr, args: &[Arg], ctx: Ctx) -> Val {
        let callee_val = self.eval(
            callee,
            None,
            Ctx {
                position: Position::Value,
                ..ctx
            },
        );
        match callee_val {
            Val::ExternFn(f) => {
                let params = self
                    .p
                    .externs
                    .get(&f)
                    .map(|e| e.params.clone())
                    .unwrap_or_default();
                match self.prelude_fn(f) {
                    Some("maximize" | "minimize") => {
                        return self.check_objective_call(expr, f, &params, args, ctx);
                    }
                    Some("tpe") => self.check_tpe_call(expr, f, &params, args, ctx),
                    _ => {
                        let ctx = Ctx {
                            objective_of: None,
                            ..ctx
                        };
                        self.check_args(expr, f, &params, args, &[], ctx);
                    }
                }
                let ret = self.def_types.get(&f).cloned().unwrap_or(Ty::Unknown);
                Val::Value(ret)
            }
            Val::Action { agent, action } => {
                if ctx.position != Position::Action {
                    let name = self.symbols.def(action).name.clone();
                    self.report(
                        Diagnostic::new(
                            Code::E0202,
                            ctx.file,
                            expr.span,
                            format!("action `{name}` cannot be used as a value"),
                        )
                        .with_label("an action does not return a value")
                        .with_help(
                            "call actions after `then` in a policy or after `->` in a trigger",
                        ),
                    );
                    self.check_action_args(expr, agent, action, args, ctx);
                    return Val::Error;
                }
                self.check_action_args(expr, agent, action, args, ctx);
                Val::Action { agent, action }
            }
            Val::Sensor(sensor, _) => {
                let name = self.symbols.def(sensor).name.clone();
                self.report(
                    Diagnostic::new(Code::E0201, ctx.file, callee.span, format!("`{name}` is a sensor, not an action"))
                        .with_label("a sensor cannot be called")
                        .with_help("sensors are read (`agent.sensor`); call one of the agent's actions instead"),
                );
                Val::Error
            }
            Val::ExternStep(s) => {
                let name = self.symbols.def(s).name.clone();
                self.report(
                    Diagnostic::new(
                        Code::E0203,
                        ctx.file,
                        expr.span,
                        format!("`{name}` is a std step"),
                    )
                    .with_label("a std step can only be used by a step")
                    .with_help(format!("write a step with `uses = {name}(…)`")),
                );
                Val::Error
            }
            Val::Error => {
                for arg in args {
                    self.value(&arg.value, None, ctx);
                }
                Val::Error
            }
            other => {
                let ty = self.as_value(callee, other, ctx);
                if ty != Ty::Unknown {
                    self.report(
                        Diagnostic::new(Code::E0312, ctx.file, callee.span, format!("a value of type `{ty}` cannot be called"))
                            .with_label("not a function or action")
                            .with_help("only std functions (`mnist(…)`) and agent actions (`planner.scale(…)`) can be called"),
                    );
                }
                Val::Error
            }
        }
    }

    fn check_action_args(
        &mut self,
        expr: &Expr,
        _agent: DefId,
        action: DefId,
        args: &[Arg],
        ctx: Ctx,
    ) {
        let kind = self.symbols.def(action).parent;
        let params = kind
            .and_then(|k| self.p.kinds.get(&k))
            .and_then(|k| k.action_params.get(&action))
            .cloned()
            .unwrap_or_default();
        self.check_args(expr, action, &params, args, &[], ctx);
    }

    /// Checks a call's arguments against a parameter list: count, names, types, required
    /// parameters. `inputs` are extra names accepted as arguments (a std step's inputs); the
    /// matching arguments are returned unchecked, for the caller to bind.
    pub(super) fn check_args<'e>(
        &mut self,
        call: &Expr,
        callee: DefId,
        params: &[DefId],
        args: &'e [Arg],
        inputs: &[String],
        ctx: Ctx,
    ) -> Vec<&'e Arg> {
        let callee_name = self.symbols.def(callee).name.clone();
        let mut filled = vec![false; params.len()];
        let mut input_args = Vec::new();
        let mut positional = 0usize;
        for arg in args {
            let index = match &arg.name {
                Some(name) => {
                    if inputs.contains(&name.name) {
                        input_args.push(arg);
                        continue;
                    }
                    match params
                        .iter()
                        .position(|&p| self.symbols.def(p).name == name.name)
                    {
                        Some(i) => {
                            self.symbols.refer(ctx.file, name.span, params[i]);
                            Some(i)
                        }
                        None => {
                            let mut names: Vec<String> = params
                                .iter()
                                .map(|&p| self.symbols.def(p).name.clone())
                                .collect();
                            names.extend(inputs.iter().cloned());
                            let mut d = Diagnostic::new(
                                Code::E0305,
                                ctx.file,
                                name.span,
                                format!("`{callee_name}` has no parameter `{}`", name.name),
                            )
                            .with_label("unknown argument");
                            if let Some(best) =
                                suggest::closest(&name.name, names.iter().map(String::as_str))
                            {
                                d = d
                                    .with_help(format!("did you mean `{best}`?"))
                                    .with_suggestion(
                                        format!("replace with `{best}`"),
                                        ctx.file,
                                        name.span,
                                        best,
                                    );
                            } else {
                                d = d.with_help(format!(
                                    "its parameters are: {}",
                                    signature_params(&names)
                                ));
                            }
                            self.report(d);
                            None
                        }
                    }
                }
                None => {
                    let i = positional;
                    positional += 1;
                    if i >= params.len() {
                        self.report(
                            Diagnostic::new(
                                Code::E0305,
                                ctx.file,
                                arg.span,
                                format!("too many arguments to `{callee_name}`"),
                            )
                            .with_label("unexpected argument")
                            .with_help(format!(
                                "`{callee_name}` takes {} argument(s): {}",
                                params.len(),
                                self.describe_params(params)
                            )),
                        );
                        None
                    } else {
                        Some(i)
                    }
                }
            };
            match index {
                Some(i) => {
                    if filled[i] {
                        let pname = self.symbols.def(params[i]).name.clone();
                        self.report(
                            Diagnostic::new(
                                Code::E0305,
                                ctx.file,
                                arg.span,
                                format!("parameter `{pname}` is given twice"),
                            )
                            .with_label("second value")
                            .with_help("give each parameter once"),
                        );
                    }
                    filled[i] = true;
                    let expected = self
                        .def_types
                        .get(&params[i])
                        .cloned()
                        .unwrap_or(Ty::Unknown);
                    self.argument(arg, &expected, params[i], ctx);
                }
                None => {
                    self.value(&arg.value, None, ctx);
                }
            }
        }
        let missing: Vec<String> = params
            .iter()
            .zip(&filled)
            .filter(|(&p, &f)| !f && !self.has_default(p))
            .map(|(&p, _)| self.symbols.def(p).name.clone())
            .collect();
        if !missing.is_empty() {
            let list: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
            self.report(
                Diagnostic::new(
                    Code::E0305,
                    ctx.file,
                    call.span,
                    format!("missing argument(s) {} to `{callee_name}`", list.join(", ")),
                )
                .with_label("in this call")
                .with_help(format!(
                    "`{callee_name}` takes {}",
                    self.describe_params(params)
                )),
            );
        }
        input_args
    }

    fn argument(&mut self, arg: &Arg, expected: &Ty, param: DefId, ctx: Ctx) {
        let val = self.eval(&arg.value, Some(expected), ctx);
        let ty = self.as_value(&arg.value, val, ctx);
        if !ty.fits(expected) {
            let pname = self.symbols.def(param).name.clone();
            let d = Diagnostic::new(
                Code::E0306,
                ctx.file,
                arg.value.span,
                format!("argument `{pname}` must be `{expected}`, found `{ty}`"),
            )
            .with_label(format!("this is `{ty}`"))
            .with_help(
                kind_help(&ty, expected).unwrap_or_else(|| format!("pass a `{expected}` value")),
            );
            self.report(d);
        }
    }

    fn has_default(&self, param: DefId) -> bool {
        self.defaults.contains(&param)
    }

    fn describe_params(&self, params: &[DefId]) -> String {
        let names: Vec<String> = params
            .iter()
            .map(|&p| self.symbols.def(p).signature.clone())
            .collect();
        if names.is_empty() {
            "no arguments".to_string()
        } else {
            format!("`({})`", names.join(", "))
        }
    }

    /// Reports a value of the wrong type.
    pub(super) fn mismatch(&mut self, expr: &Expr, found: &Ty, expected: &Ty, ctx: Ctx) {
        let mut help = kind_help(found, expected)
            .unwrap_or_else(|| format!("write a `{expected}` value here"));
        if matches!(expected, Ty::Duration) && found.is_number() {
            help = "a duration needs a unit: `500ms`, `10s`, `5m`, `2h`, `1d`".to_string();
        }
        self.report(
            Diagnostic::new(
                Code::E0301,
                ctx.file,
                expr.span,
                format!("expected `{expected}`, found `{found}`"),
            )
            .with_label(format!("this is `{found}`"))
            .with_help(help),
        );
    }

    fn int_literal(&mut self, expr: &Expr, value: f64, expected: Option<&Ty>, ctx: Ctx) -> Ty {
        match expected {
            Some(Ty::Float) => Ty::Float,
            Some(Ty::Ratio) => {
                self.check_ratio(expr, value, ctx);
                Ty::Ratio
            }
            Some(Ty::Cpu) => Ty::Cpu,
            Some(Ty::Memory) => Ty::Memory,
            _ => Ty::Int,
        }
    }

    fn float_literal(&mut self, expr: &Expr, value: f64, expected: Option<&Ty>, ctx: Ctx) -> Ty {
        match expected {
            Some(Ty::Ratio) => {
                self.check_ratio(expr, value, ctx);
                Ty::Ratio
            }
            Some(Ty::Cpu) => Ty::Cpu,
            _ => Ty::Float,
        }
    }

    fn check_ratio(&mut self, expr: &Expr, value: f64, ctx: Ctx) {
        if !(0.0..=1.0).contains(&value) {
            self.report(
                Diagnostic::new(
                    Code::E0307,
                    ctx.file,
                    expr.span,
                    format!("`{value}` is not a ratio: ratios lie in [0, 1]"),
                )
                .with_label("out of range")
                .with_help("write a value between 0 and 1 (e.g. `0.99` for 99%)"),
            );
        }
    }

    fn suffixed(
        &mut self,
        expr: &Expr,
        digits: &str,
        unit: &str,
        expected: Option<&Ty>,
        ctx: Ctx,
    ) -> Ty {
        let target = match expected {
            Some(t @ (Ty::Duration | Ty::Cpu | Ty::Memory)) => Some(t.clone()),
            _ => None,
        };
        // A zero or an over-precise value still has the right unit: positivity and precision
        // are reported where they matter (E0705), not as a unit error.
        let unit_fits =
            |r: Result<(), values::UnitError>| r.map_or_else(|e| !e.is_about_unit(), |_| true);
        let fits_duration = || unit_fits(values::parse_duration(digits, unit).map(|_| ()));
        let fits_memory = || unit_fits(values::parse_memory(digits, unit).map(|_| ()));
        let fits_cpu = || unit_fits(values::parse_cpu(digits, unit).map(|_| ()));
        // Only the expected unit is tried first (every quantity of every step is checked on
        // every edit); the others only matter for the message.
        let resolved = match &target {
            Some(Ty::Duration) if fits_duration() => Some(Ty::Duration),
            Some(Ty::Cpu) if fits_cpu() => Some(Ty::Cpu),
            Some(Ty::Memory) if fits_memory() => Some(Ty::Memory),
            Some(_) => None,
            None if fits_duration() => Some(Ty::Duration),
            None if fits_memory() => Some(Ty::Memory),
            None => None,
        };
        if let Some(ty) = resolved {
            return ty;
        }
        let (fits_duration, fits_memory, fits_cpu) = (fits_duration(), fits_memory(), fits_cpu());
        let (wanted, units) = match &target {
            Some(Ty::Duration) => ("a duration", "`ms`, `s`, `m`, `h` or `d`"),
            Some(Ty::Cpu) => ("a cpu quantity", "`m` (millicores), or no suffix for cores"),
            Some(Ty::Memory) => (
                "a memory quantity",
                "`Ki`, `Mi`, `Gi`, `Ti` (or `k`, `M`, `G`, `T`), or no suffix for bytes",
            ),
            _ => (
                "a duration or a quantity",
                "`ms s m h d` (durations) or `Ki Mi Gi Ti` (memory)",
            ),
        };
        let mut help = format!("{wanted} takes the suffixes {units}");
        if target.is_some() && (fits_duration || fits_memory || fits_cpu) && expected.is_some() {
            let other = if fits_duration {
                "duration"
            } else if fits_memory {
                "memory quantity"
            } else {
                "cpu quantity"
            };
            help = format!("`{digits}{unit}` is a {other}, but {wanted} is expected here: {units}");
        }
        self.report(
            Diagnostic::new(
                Code::E0308,
                ctx.file,
                expr.span,
                format!("the suffix `{unit}` does not fit {wanted}"),
            )
            .with_label("unit suffix")
            .with_help(help),
        );
        target.unwrap_or(Ty::Unknown)
    }

    fn unary(
        &mut self,
        expr: &Expr,
        op: UnaryOp,
        operand: &Expr,
        expected: Option<&Ty>,
        ctx: Ctx,
    ) -> Ty {
        match op {
            UnaryOp::Not => {
                self.value(operand, Some(&Ty::Bool), ctx);
                Ty::Bool
            }
            UnaryOp::Neg | UnaryOp::Plus => {
                let ty = self.value(
                    operand,
                    expected.filter(|t| t.family() != Family::Other),
                    ctx,
                );
                match ty.family() {
                    Family::Number | Family::Duration | Family::Cpu | Family::Memory => {
                        if op == UnaryOp::Neg && ty == Ty::Ratio {
                            Ty::Float
                        } else {
                            ty
                        }
                    }
                    _ if ty == Ty::Unknown => ty,
                    _ => {
                        self.report(
                            Diagnostic::new(
                                Code::E0301,
                                ctx.file,
                                expr.span,
                                format!("`{}` needs a number, found `{ty}`", op.symbol()),
                            )
                            .with_label(format!("this is `{ty}`"))
                            .with_help("signs apply to numbers and durations"),
                        );
                        Ty::Unknown
                    }
                }
            }
        }
    }

    fn binary(
        &mut self,
        expr: &Expr,
        op: BinaryOp,
        lhs: &Expr,
        rhs: &Expr,
        expected: Option<&Ty>,
        ctx: Ctx,
    ) -> Ty {
        if matches!(op, BinaryOp::And | BinaryOp::Or) {
            self.value(lhs, Some(&Ty::Bool), ctx);
            self.value(rhs, Some(&Ty::Bool), ctx);
            return Ty::Bool;
        }
        // Literals take their unit from the other side: check the non-literal side first. The
        // expectation only gives literals their unit; a mismatch is reported below as a
        // comparison across units (E0303), not as a plain type mismatch.
        let (a, b) = if is_literal(lhs) && !is_literal(rhs) {
            let b = self.typed(rhs, None, ctx);
            let a = self.typed(lhs, literal_expectation(&b, op), ctx);
            (a, b)
        } else {
            let hint = if op.is_arithmetic() {
                expected.filter(|t| t.family() != Family::Other)
            } else {
                None
            };
            let a = self.typed(lhs, hint, ctx);
            let b = self.typed(rhs, literal_expectation(&a, op), ctx);
            (a, b)
        };
        if a == Ty::Unknown || b == Ty::Unknown {
            return if op.is_comparison() {
                Ty::Bool
            } else {
                Ty::Unknown
            };
        }
        if op.is_arithmetic() {
            return self.arithmetic(expr, op, lhs, rhs, &a, &b, ctx);
        }
        // Comparison.
        let (fa, fb) = (a.family(), b.family());
        if fa == Family::Artifact
            || fb == Family::Artifact
            || fa == Family::Other
            || fb == Family::Other
        {
            let (bad, ty) = if fa == Family::Artifact || fa == Family::Other {
                (lhs, &a)
            } else {
                (rhs, &b)
            };
            self.report(
                Diagnostic::new(
                    Code::E0301,
                    ctx.file,
                    bad.span,
                    format!("a `{ty}` cannot be compared"),
                )
                .with_label(format!("this is `{ty}`"))
                .with_help(match ty {
                    Ty::Model(_) => {
                        "compare one of the model's metrics, e.g. `.accuracy`".to_string()
                    }
                    Ty::Batch => "compare the batch's size: `.size`".to_string(),
                    _ => "compare numbers, durations, quantities, strings or bools".to_string(),
                }),
            );
            return Ty::Bool;
        }
        if fa != fb {
            let help = if fa == Family::Duration || fb == Family::Duration {
                "give the number a unit: `50ms`, `10s`, `5m`"
            } else {
                "compare values of the same unit"
            };
            // Point at the side that is most likely wrong: a literal missing its unit.
            let (bad, bad_ty, other, other_ty) = if is_literal(lhs) && !is_literal(rhs) {
                (lhs, &a, rhs, &b)
            } else {
                (rhs, &b, lhs, &a)
            };
            self.report(
                Diagnostic::new(
                    Code::E0303,
                    ctx.file,
                    bad.span,
                    format!("cannot compare `{a}` with `{b}`"),
                )
                .with_label(format!("this is `{bad_ty}`, compared with a `{other_ty}`"))
                .with_secondary(ctx.file, other.span, format!("this is `{other_ty}`"))
                .with_help(help),
            );
            return Ty::Bool;
        }
        if matches!(fa, Family::Text | Family::Truth) && !matches!(op, BinaryOp::Eq | BinaryOp::Ne)
        {
            self.report(
                Diagnostic::new(
                    Code::E0301,
                    ctx.file,
                    expr.span,
                    format!("`{}` does not order `{a}` values", op.symbol()),
                )
                .with_label("not ordered")
                .with_help("use `==` or `!=`"),
            );
        }
        Ty::Bool
    }

    #[allow(clippy::too_many_arguments)]
    fn arithmetic(
        &mut self,
        expr: &Expr,
        op: BinaryOp,
        lhs: &Expr,
        rhs: &Expr,
        a: &Ty,
        b: &Ty,
        ctx: Ctx,
    ) -> Ty {
        for (side, ty) in [(lhs, a), (rhs, b)] {
            if ty.is_artifact()
                || matches!(
                    ty,
                    Ty::Service(_)
                        | Ty::Workflow(_)
                        | Ty::Detector
                        | Ty::LabelSource
                        | Ty::Tracking
                        | Ty::Objective
                        | Ty::Search
                )
            {
                self.report(
                    Diagnostic::new(
                        Code::E0304,
                        ctx.file,
                        side.span,
                        format!("arithmetic on a `{ty}`"),
                    )
                    .with_label(format!("`{}` cannot apply to this `{ty}`", op.symbol()))
                    .with_help(match ty {
                        Ty::Model(_) => "use one of the model's metrics, e.g. `.accuracy`",
                        Ty::Batch => "use the batch's size: `.size`",
                        _ => "artifacts are files and datasets, not numbers",
                    }),
                );
                return Ty::Unknown;
            }
        }
        let (fa, fb) = (a.family(), b.family());
        let result = match (fa, fb, op) {
            (Family::Number, Family::Number, _) => {
                Some(if *a == Ty::Int && *b == Ty::Int && op != BinaryOp::Div {
                    Ty::Int
                } else {
                    Ty::Float
                })
            }
            (Family::Duration, Family::Duration, BinaryOp::Add | BinaryOp::Sub) => {
                Some(Ty::Duration)
            }
            (Family::Duration, Family::Number, BinaryOp::Mul | BinaryOp::Div) => Some(Ty::Duration),
            (Family::Number, Family::Duration, BinaryOp::Mul) => Some(Ty::Duration),
            (Family::Cpu, Family::Cpu, BinaryOp::Add | BinaryOp::Sub) => Some(Ty::Cpu),
            (Family::Memory, Family::Memory, BinaryOp::Add | BinaryOp::Sub) => Some(Ty::Memory),
            (Family::Cpu | Family::Memory, Family::Number, BinaryOp::Mul | BinaryOp::Div) => {
                Some(a.clone())
            }
            _ => None,
        };
        result.unwrap_or_else(|| {
            self.report(
                Diagnostic::new(Code::E0303, ctx.file, expr.span, format!("`{a}` {} `{b}` mixes units", op.symbol()))
                    .with_label("incompatible operands")
                    .with_help("add or subtract values of the same unit; multiply or divide a unit by a plain number"),
            );
            Ty::Unknown
        })
    }
}

/// The expectation a literal on one side of `op` takes from the other side's type.
fn literal_expectation(other: &Ty, op: BinaryOp) -> Option<&Ty> {
    match other.family() {
        Family::Duration | Family::Cpu | Family::Memory
            if op.is_comparison() || matches!(op, BinaryOp::Add | BinaryOp::Sub) =>
        {
            Some(other)
        }
        Family::Number if op.is_comparison() => Some(other),
        _ => None,
    }
}

fn is_literal(expr: &Expr) -> bool {
    match &expr.kind {
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Suffixed { .. } => true,
        ExprKind::Unary { operand, .. } | ExprKind::Paren(operand) => is_literal(operand),
        _ => false,
    }
}

/// A help line for the common confusions of kind (a workflow where a service is expected, …).
pub(super) fn kind_help(found: &Ty, expected: &Ty) -> Option<String> {
    Some(match (found, expected) {
        (Ty::Workflow(_), Ty::Service(_)) => "this is a workflow; a service is expected here (declare one with `service NAME { model = … }`)".into(),
        (Ty::Service(_), Ty::Workflow(_)) => "this is a service; a workflow is expected here".into(),
        (Ty::String, Ty::Tracking) => "call a tracker of `std.tracking` with the URL: `mlflow(\"http://127.0.0.1:5000\")` (and `use std.tracking.mlflow`)".into(),
        (Ty::Dataset, Ty::LabelSource) => "wrap the dataset in a label source: `oracle(…)` or `human_feedback(…)`".into(),
        (Ty::Float, Ty::Ratio) => "a ratio is a float known to lie in [0, 1]: write a literal such as `0.95`".into(),
        (Ty::String, Ty::Int | Ty::Float) => "write the number without quotes".into(),
        (Ty::Int | Ty::Float | Ty::Ratio, Ty::Objective) => "say which way the metric should go: `maximize(WORKFLOW.STEP.METRIC)` or `minimize(…)`".into(),
        (_, Ty::Search) => "choose a search strategy: `tpe()` (the default) or `random_search()`".into(),
        _ => return None,
    })
}

fn signature_params(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
