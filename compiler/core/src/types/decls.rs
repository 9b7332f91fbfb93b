//! Declarations: the fields of `app`, steps, services and agents, and the shapes of
//! triggers and policies.

use super::expr::{kind_help, Val};
use super::ty::Ty;
use super::{Checker, Ctx, Position};
use crate::diagnostics::{Code, Diagnostic};
use crate::resolve::suggest;
use crate::span::{FileId, Span};
use crate::symbols::{DefId, DefKind};
use crate::syntax::ast::*;
use crate::values;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Why one step depends on another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DependencyCause {
    /// An input bound to the other step's output.
    Input(String),
    /// `after = [...]`
    After,
}

/// One dependency between two steps of a workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// The step that must finish first.
    pub from: DefId,
    /// The step that waits.
    pub to: DefId,
    /// Why.
    pub cause: DependencyCause,
    /// Where the dependency is written.
    pub span: Span,
}

/// The fields a declaration accepts: name, and whether it is required.
struct FieldSpec {
    name: &'static str,
    required: bool,
}

/// Members written without `=`: a field named like one is a misspelt member.
const MEMBER_KEYWORDS: &[&str] = &["retry", "timeout", "resources", "slo"];

const APP_FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "namespace",
        required: false,
    },
    FieldSpec {
        name: "registry",
        required: false,
    },
    FieldSpec {
        name: "labels",
        required: false,
    },
    FieldSpec {
        name: "storage",
        required: false,
    },
    FieldSpec {
        name: "monitoring",
        required: false,
    },
    FieldSpec {
        name: "autoscaler",
        required: false,
    },
    FieldSpec {
        name: "tracking",
        required: false,
    },
];
const STEP_FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "image",
        required: false,
    },
    FieldSpec {
        name: "run",
        required: false,
    },
    FieldSpec {
        name: "uses",
        required: false,
    },
    FieldSpec {
        name: "after",
        required: false,
    },
    FieldSpec {
        name: "cache",
        required: false,
    },
    FieldSpec {
        name: "env",
        required: false,
    },
];
const SERVICE_FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "model",
        required: true,
    },
    FieldSpec {
        name: "image",
        required: false,
    },
    FieldSpec {
        name: "replicas",
        required: false,
    },
    FieldSpec {
        name: "port",
        required: false,
    },
];
const RESOURCE_FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "cpu",
        required: false,
    },
    FieldSpec {
        name: "memory",
        required: false,
    },
    FieldSpec {
        name: "gpu",
        required: false,
    },
];

impl Checker<'_, '_> {
    pub(super) fn check_declarations(&mut self) {
        let p = self.p;
        for agent in &p.agents {
            self.resolve_agent_kind(agent.file, agent.def, &agent.ast.kind);
        }
        if let Some(app) = p.app {
            self.check_app(app.file, app.ast);
        }
        // Everything a step's check reads is known from here on (agents' kinds included).
        self.begin_step_cache();
        for workflow in &p.workflows {
            self.check_workflow(workflow.node.file, workflow.node.def);
        }
        self.end_step_cache();
        for service in &p.services {
            self.check_service(service.file, service.def, service.ast);
        }
        // The prelude's kinds too: their defaults (`search: Search = tpe()`) are calls whose
        // names must resolve for lowering.
        let mut kinds: Vec<_> = p
            .kinds
            .values()
            .filter(|k| p.is_user_file(k.node.file) || k.node.file == p.prelude)
            .collect();
        kinds.sort_by_key(|k| k.node.def);
        for kind in kinds {
            self.check_kind(kind.node.file, kind.node.def, kind.node.ast);
        }
        for agent in &p.agents {
            self.check_agent(agent.file, agent.def, agent.ast);
        }
        for trigger in &p.triggers {
            self.check_trigger(trigger.file, trigger.ast);
        }
        for policy in &p.policies {
            self.check_policy(policy.file, policy.ast);
        }
    }

    /// Reports unknown, duplicate and missing fields. Returns the fields by name.
    fn check_fields<'f>(
        &mut self,
        file: FileId,
        fields: impl Iterator<Item = &'f Field>,
        specs: &[FieldSpec],
        owner: impl fmt::Display,
        owner_span: Span,
        decl_span: Span,
    ) -> BTreeMap<&'f str, &'f Field> {
        let source = &self.p.sources.get(file).text;
        let mut seen: BTreeMap<&str, &Field> = BTreeMap::new();
        for field in fields {
            let name = field.name.name.as_str();
            if let Some(first) = seen.get(name) {
                self.report(
                    Diagnostic::new(
                        Code::E0207,
                        file,
                        field.name.span,
                        format!("`{name}` is set twice in {owner}"),
                    )
                    .with_label("second value")
                    .with_secondary(file, first.name.span, "first set here")
                    .with_help("keep one of them"),
                );
                continue;
            }
            if !specs.iter().any(|s| s.name == name) {
                let mut d = Diagnostic::new(
                    Code::E0204,
                    file,
                    field.name.span,
                    format!("{owner} has no field `{name}`"),
                )
                .with_label("unknown field");
                // `retries = 3`, `timeouts = …`: a plural or a typo of a member keyword.
                let singular = name.strip_suffix("ies").map_or_else(
                    || name.trim_end_matches('s').to_string(),
                    |stem| format!("{stem}y"),
                );
                let member = MEMBER_KEYWORDS.iter().copied().find(|kw| {
                    name == *kw
                        || singular == *kw
                        || kw.starts_with(name)
                        || suggest::closest(name, [*kw]).is_some()
                });
                if let Some(kw) = member {
                    let value = field.value.span.text(source);
                    d = d
                        .with_help(format!(
                            "`{kw}` is written without `=`: did you mean `{kw} {value}`?"
                        ))
                        .with_suggestion(
                            format!("write `{kw} {value}`"),
                            file,
                            field.span,
                            format!("{kw} {value}"),
                        );
                } else if let Some(best) = suggest::closest(name, specs.iter().map(|s| s.name)) {
                    d = d
                        .with_help(format!("did you mean `{best}`?"))
                        .with_suggestion(
                            format!("replace with `{best}`"),
                            file,
                            field.name.span,
                            best,
                        );
                } else {
                    let list: Vec<String> = specs.iter().map(|s| format!("`{}`", s.name)).collect();
                    d = d.with_help(format!("the fields of {owner} are {}", list.join(", ")));
                }
                self.report(d);
                continue;
            }
            seen.insert(name, field);
        }
        let broken = self.p.has_syntax_error(file, decl_span);
        for spec in specs.iter().filter(|s| s.required) {
            if !seen.contains_key(spec.name) && !broken {
                self.report(
                    Diagnostic::new(
                        Code::E0205,
                        file,
                        owner_span,
                        format!("{owner} needs a `{}` field", spec.name),
                    )
                    .with_label(format!("`{}` is missing", spec.name))
                    .with_help(format!("add `{} = …`", spec.name)),
                );
            }
        }
        seen
    }

    fn check_app(&mut self, file: FileId, app: &App) {
        let owner = format!("app `{}`", app.name.name);
        let fields = self.check_fields(
            file,
            app.fields.iter(),
            APP_FIELDS,
            &owner,
            app.name.span,
            app.span,
        );
        let ctx = Ctx::top(file);
        if let Some(field) = fields.get("namespace") {
            self.value(&field.value, Some(&Ty::String), ctx);
            if let ExprKind::Str(s) = &field.value.kind {
                if let Some(ns) = s.as_plain() {
                    if let Err(e) = values::check_dns_label(&ns) {
                        self.report(
                            Diagnostic::new(Code::E0704, file, field.value.span, format!("`{ns}` is not a valid namespace: {e}"))
                                .with_label("not a DNS-1123 label")
                                .with_help(format!(
                                    "namespaces are lowercase letters, digits and `-`, start and end alphanumeric, at most 63 characters; e.g. `{}`",
                                    values::kube_name(&ns).trim_matches('-')
                                )),
                        );
                    }
                }
            }
        } else if let Err(e) = values::check_dns_label(&values::kube_name(&app.name.name)) {
            self.report(
                Diagnostic::new(
                    Code::E0704,
                    file,
                    app.name.span,
                    format!("the namespace defaults to the app name, which is not valid: {e}"),
                )
                .with_label("used as the namespace")
                .with_help("set `namespace = \"…\"` explicitly"),
            );
        }
        if let Some(field) = fields.get("registry") {
            self.value(&field.value, Some(&Ty::String), ctx);
        }
        if let Some(field) = fields.get("labels") {
            self.check_string_record(file, field, ctx);
        }
        if let Some(field) = fields.get("storage") {
            self.value(&field.value, Some(&Ty::Memory), ctx);
            self.positive(file, &field.value, "the artifacts volume size");
        }
        if let Some(field) = fields.get("tracking") {
            self.value(&field.value, Some(&Ty::Tracking), ctx);
            self.check_tracking_uri(file, &field.value);
        }
        for (name, choices) in [
            ("monitoring", crate::lower::plan::Monitoring::NAMES),
            ("autoscaler", crate::lower::plan::Autoscaler::NAMES),
        ] {
            if let Some(field) = fields.get(name) {
                self.value(&field.value, Some(&Ty::String), ctx);
                if let ExprKind::Str(s) = &field.value.kind {
                    if let Some(value) = s.as_plain().filter(|v| !choices.contains(&v.as_str())) {
                        let list: Vec<String> =
                            choices.iter().map(|c| format!("`\"{c}\"`")).collect();
                        self.report(
                            Diagnostic::new(
                                Code::E0706,
                                file,
                                field.value.span,
                                format!("`{value}` is not a known `{name}`"),
                            )
                            .with_label("unknown value")
                            .with_help(format!("`{name}` is one of {}", list.join(", "))),
                        );
                    }
                }
            }
        }
    }

    /// `tracking = mlflow("URI")`: the URI must be an `http://` or `https://` URL with a host
    /// (the runtime speaks MLflow's REST API to it).
    fn check_tracking_uri(&mut self, file: FileId, value: &Expr) {
        let ExprKind::Call { args, .. } = &value.kind else {
            return;
        };
        let Some(arg) = args.first() else {
            return;
        };
        let ExprKind::Str(s) = &arg.value.kind else {
            return;
        };
        let Some(uri) = s.as_plain() else {
            return;
        };
        if let Err(why) = values::check_http_url(&uri) {
            self.report(
                Diagnostic::new(
                    Code::E0707,
                    file,
                    arg.value.span,
                    format!("`{uri}` is not a tracking server URL: {why}"),
                )
                .with_label("not an http(s) URL")
                .with_help("write the server's base URL, e.g. `mlflow(\"http://127.0.0.1:5000\")`"),
            );
        }
    }

    fn check_string_record(&mut self, file: FileId, field: &Field, ctx: Ctx) {
        match &field.value.kind {
            ExprKind::Record(entries) => {
                let mut seen: HashMap<&str, Span> = HashMap::new();
                for entry in entries {
                    if let Some(first) = seen.insert(entry.name.name.as_str(), entry.name.span) {
                        self.report(
                            Diagnostic::new(
                                Code::E0207,
                                file,
                                entry.name.span,
                                format!("`{}` is set twice", entry.name.name),
                            )
                            .with_label("second value")
                            .with_secondary(file, first, "first set here")
                            .with_help("keep one of them"),
                        );
                    }
                    self.value(&entry.value, Some(&Ty::String), ctx);
                }
            }
            _ => {
                let ty = self.value(&field.value, None, ctx);
                if ty != Ty::Unknown {
                    self.report(
                        Diagnostic::new(
                            Code::E0301,
                            file,
                            field.value.span,
                            format!(
                                "`{}` must be a record of strings, found `{ty}`",
                                field.name.name
                            ),
                        )
                        .with_label("expected `{ key = \"value\", … }`")
                        .with_help(format!("write `{} = {{ team = \"ml\" }}`", field.name.name)),
                    );
                }
            }
        }
    }

    fn check_workflow(&mut self, file: FileId, workflow: DefId) {
        let Some(w) = self.p.workflow(workflow) else {
            return;
        };
        let ctx = Ctx {
            file,
            workflow: Some(workflow),
            step: None,
            locals: None,
            position: Position::Value,
            objective_of: None,
        };
        for param in w.node.ast.params() {
            let Some(&def) = w.params.get(&param.name.name) else {
                continue;
            };
            if self.symbols.def(def).full_span != param.span {
                continue;
            }
            let ty = self.def_types.get(&def).cloned().unwrap_or(Ty::Unknown);
            if let Some(default) = &param.default {
                self.value(default, Some(&ty), ctx);
            }
            if let Some(space) = &param.space {
                self.check_space(file, param, space, &ty, ctx);
            }
        }
        let steps: Vec<DefId> = w.steps.clone();
        for step in steps {
            self.check_step(file, workflow, step);
        }
    }

    /// `in SPACE`: a range or a list of the param's type, or `log(lo, hi)` for floats.
    fn check_space(&mut self, file: FileId, param: &Param, space: &Expr, ty: &Ty, ctx: Ctx) {
        match &space.kind {
            ExprKind::Call { callee, args } if matches!(&callee.kind, ExprKind::Name(n) if n.name == "log") =>
            {
                if !matches!(ty, Ty::Float | Ty::Ratio) {
                    self.report(
                        Diagnostic::new(
                            Code::E0301,
                            file,
                            callee.span,
                            format!(
                                "a `log` space needs a float param, `{}` is `{ty}`",
                                param.name.name
                            ),
                        )
                        .with_label("log-uniform space")
                        .with_help("use a range `lo..hi` or a list for this param"),
                    );
                    return;
                }
                if args.len() != 2 || args.iter().any(|a| a.name.is_some()) {
                    self.report(
                        Diagnostic::new(
                            Code::E0305,
                            file,
                            space.span,
                            "`log` takes two bounds: `log(low, high)`",
                        )
                        .with_label("wrong arguments")
                        .with_help("for example `log(1e-4, 1e-1)`"),
                    );
                    return;
                }
                let bounds: Vec<Option<f64>> =
                    args.iter().map(|a| number_value(&a.value)).collect();
                for (arg, bound) in args.iter().zip(&bounds) {
                    self.value(&arg.value, Some(&Ty::Float), ctx);
                    if bound.is_some_and(|b| b <= 0.0) {
                        self.report(
                            Diagnostic::new(
                                Code::E0705,
                                file,
                                arg.value.span,
                                "the bounds of a `log` space must be positive",
                            )
                            .with_label("not positive")
                            .with_help(
                                "a log-uniform space samples the exponent: both bounds must be > 0",
                            ),
                        );
                    }
                }
                if let [Some(lo), Some(hi)] = bounds[..] {
                    self.check_bounds(file, space, lo, hi, param.default.as_ref());
                }
            }
            ExprKind::Range { start, end } => {
                self.value(space, Some(&Ty::Range(Box::new(ty.clone()))), ctx);
                if let (Some(lo), Some(hi)) = (number_value(start), number_value(end)) {
                    self.check_bounds(file, space, lo, hi, param.default.as_ref());
                }
            }
            ExprKind::List(items) => {
                self.value(space, Some(&Ty::List(Box::new(ty.clone()))), ctx);
                if let Some(default) = &param.default {
                    let same = |e: &Expr| match (&e.kind, &default.kind) {
                        (ExprKind::Str(a), ExprKind::Str(b)) => a.as_plain() == b.as_plain(),
                        _ => number_value(e).is_some() && number_value(e) == number_value(default),
                    };
                    if !items.iter().any(same)
                        && (number_value(default).is_some()
                            || matches!(default.kind, ExprKind::Str(_)))
                    {
                        self.report(
                            Diagnostic::new(
                                Code::E0706,
                                file,
                                default.span,
                                "the default is not one of the choices of the search space",
                            )
                            .with_label("not in the list")
                            .with_secondary(file, space.span, "the choices")
                            .with_help("add the default to the list, or pick a default from it"),
                        );
                    }
                }
            }
            _ => {
                self.report(
                    Diagnostic::new(
                        Code::E0301,
                        file,
                        space.span,
                        "a search space is a range `lo..hi`, a list `[a, b]` or `log(lo, hi)`",
                    )
                    .with_label("not a search space")
                    .with_help("for example `param lr: float = 0.001 in log(1e-4, 1e-1)`"),
                );
            }
        }
    }

    fn check_bounds(
        &mut self,
        file: FileId,
        space: &Expr,
        lo: f64,
        hi: f64,
        default: Option<&Expr>,
    ) {
        if lo > hi {
            self.report(
                Diagnostic::new(
                    Code::E0706,
                    file,
                    space.span,
                    format!("the bounds are in the wrong order: {lo} > {hi}"),
                )
                .with_label("low bound above high bound")
                .with_help("write the low bound first"),
            );
            return;
        }
        if let Some(default) = default {
            if let Some(d) = number_value(default) {
                if d < lo || d > hi {
                    self.report(
                        Diagnostic::new(
                            Code::E0706,
                            file,
                            default.span,
                            format!("the default {d} lies outside the search space [{lo}, {hi}]"),
                        )
                        .with_label("outside the space")
                        .with_secondary(file, space.span, "the search space")
                        .with_help("widen the space or change the default"),
                    );
                }
            }
        }
    }

    fn check_step(&mut self, file: FileId, workflow: DefId, step_def: DefId) {
        let p = self.p;
        let Some(step_node) = p.steps.get(&step_def) else {
            return;
        };
        let span = step_node.node.ast.span;
        if self.symbols.def(step_def).full_span != span {
            return;
        }
        // A step with a syntax error is checked every time: its results are not recorded.
        if self.p.has_syntax_error(file, span) {
            self.check_step_body(file, workflow, step_def, step_node.node.ast);
            return;
        }
        if self.replay_step(file, workflow, step_def, span) {
            return;
        }
        let saved = self.start_recording();
        self.check_step_body(file, workflow, step_def, step_node.node.ast);
        if let Some(saved) = saved {
            self.finish_recording(saved, file, workflow, step_def, span);
        }
    }

    /// The checks of one step (see [`Checker::check_step`] for their cache).
    fn check_step_body(&mut self, file: FileId, workflow: DefId, step_def: DefId, step: &Step) {
        // Formatted only into a diagnostic: this runs for every step on every edit.
        let owner = Named("step", &step.name.name);
        let ctx = Ctx {
            file,
            workflow: Some(workflow),
            step: Some(step_def),
            locals: None,
            position: Position::Value,
            objective_of: None,
        };
        let fields = self.check_fields(
            file,
            step.fields(),
            STEP_FIELDS,
            owner,
            step.name.span,
            step.span,
        );
        // A step with a syntax error lost part of itself: saying what is missing would only
        // repeat the syntax error.
        let broken = self.p.has_syntax_error(file, step.span);
        let mut std_inputs: Vec<(String, Ty, DefId)> = Vec::new();
        let mut bound_by_args: HashMap<String, Span> = HashMap::new();

        match (fields.get("uses"), fields.get("run"), fields.get("image")) {
            (Some(uses), run, image) => {
                for other in [run, image].into_iter().flatten() {
                    self.report(
                        Diagnostic::new(Code::E0206, file, other.name.span, format!("`{}` cannot be combined with `uses`", other.name.name))
                            .with_label("conflicts with `uses`")
                            .with_secondary(file, uses.name.span, "the step's command comes from here")
                            .with_help("a step either runs a std step (`uses = …`) or its own `image` and `run`; remove one"),
                    );
                }
                std_inputs = self.check_uses(file, uses, step_def, ctx, &mut bound_by_args);
            }
            (None, run, image) => {
                match run {
                    Some(run) => {
                        self.value(&run.value, Some(&Ty::String), ctx);
                    }
                    None if broken => {}
                    None => self.report(
                        Diagnostic::new(
                            Code::E0205,
                            file,
                            step.name.span,
                            format!("{owner} has nothing to run"),
                        )
                        .with_label("no `run` and no `uses`")
                        .with_help(
                            "add `image = \"…\"` and `run = \"…\"`, or `uses = std_step(…)`",
                        ),
                    ),
                }
                match image {
                    Some(image) => {
                        self.value(&image.value, Some(&Ty::String), ctx);
                        self.check_image_field(file, image);
                    }
                    None if run.is_some() && !broken => self.report(
                        Diagnostic::new(
                            Code::E0205,
                            file,
                            step.name.span,
                            format!("{owner} has a `run` command but no `image`"),
                        )
                        .with_label("which container image runs the command?")
                        .with_help("add `image = \"python:3.12-slim\"` (or your own image)"),
                    ),
                    None => {}
                }
            }
        }
        if let Some(after) = fields.get("after") {
            self.check_after(file, workflow, step_def, after, ctx);
        }
        if let Some(cache) = fields.get("cache") {
            self.value(&cache.value, Some(&Ty::Bool), ctx);
        }
        if let Some(env) = fields.get("env") {
            self.check_string_record(file, env, ctx);
        }
        for member in &step.members {
            match member {
                StepMember::Port(port) => {
                    self.check_port(file, workflow, step_def, port, &bound_by_args, ctx)
                }
                StepMember::Resources(resources) => self.check_resources(file, resources, ctx),
                StepMember::Retry(retry) => {
                    self.value(&retry.count, Some(&Ty::Int), ctx);
                    if let Some(n) = self.number(file, &retry.count) {
                        if !(0.0..=100.0).contains(&n) {
                            self.report(
                                Diagnostic::new(
                                    Code::E0706,
                                    file,
                                    retry.count.span,
                                    format!("{n} retries is out of range"),
                                )
                                .with_label("expected 0 to 100")
                                .with_help("retry a step at most 100 times"),
                            );
                        }
                    }
                    if let Some(backoff) = &retry.backoff {
                        self.value(backoff, Some(&Ty::Duration), ctx);
                        self.positive(file, backoff, "the backoff");
                    }
                }
                StepMember::Timeout(timeout) => {
                    self.value(&timeout.value, Some(&Ty::Duration), ctx);
                    self.positive(file, &timeout.value, "the timeout");
                }
                StepMember::Field(_) => {}
            }
        }
        // Every std input must be bound, by an `input` line or a call argument.
        for (name, _, _) in &std_inputs {
            let bound_by_line = step.ports(PortSort::Input).any(|p| &p.name.name == name);
            if !bound_by_line && !bound_by_args.contains_key(name) && !broken {
                let target = self
                    .step_uses
                    .get(&step_def)
                    .map(|t| self.symbols.def(*t).name.clone())
                    .unwrap_or_default();
                self.report(
                    Diagnostic::new(
                        Code::E0205,
                        file,
                        step.name.span,
                        format!("input `{name}` of `{target}` is not bound"),
                    )
                    .with_label(format!("`{name}` needs a source"))
                    .with_help(format!(
                        "add `input {name}: … = SOURCE` or pass `{name} = SOURCE` to `{target}(…)`"
                    )),
                );
            }
        }
    }

    /// `uses = f(args)`: `f` must be a std step; its params are checked and its inputs may be
    /// bound by named arguments. Returns the std step's inputs.
    fn check_uses(
        &mut self,
        file: FileId,
        uses: &Field,
        step: DefId,
        ctx: Ctx,
        bound_by_args: &mut HashMap<String, Span>,
    ) -> Vec<(String, Ty, DefId)> {
        let ExprKind::Call { callee, args } = &uses.value.kind else {
            self.report(
                Diagnostic::new(
                    Code::E0301,
                    file,
                    uses.value.span,
                    "`uses` takes a call of a std step",
                )
                .with_label("expected `std_step(args)`")
                .with_help(
                    "for example `uses = train_classifier(arch = \"mlp\", epochs = 3, lr = 0.001)`",
                ),
            );
            return Vec::new();
        };
        let val = self.eval(callee, None, ctx);
        let target = match val {
            Val::ExternStep(def) => def,
            Val::Error => {
                for arg in args {
                    self.value(&arg.value, None, ctx);
                }
                return Vec::new();
            }
            Val::ExternFn(f) => {
                let name = self.symbols.def(f).name.clone();
                self.report(
                    Diagnostic::new(Code::E0203, file, callee.span, format!("`{name}` is a std function, not a std step"))
                        .with_label("not a step")
                        .with_help("`uses` takes a std step such as `train_classifier` or `evaluate`; bind functions such as data sources to inputs"),
                );
                return Vec::new();
            }
            other => {
                let ty = self.as_value(callee, other, ctx);
                if ty != Ty::Unknown {
                    self.report(
                        Diagnostic::new(Code::E0203, file, callee.span, format!("`uses` needs a std step, found `{ty}`"))
                            .with_label("not a std step")
                            .with_help("the std steps are `train_classifier` and `evaluate` (from `std.torch`)"),
                    );
                }
                return Vec::new();
            }
        };
        let Some(ext) = self.p.externs.get(&target) else {
            return Vec::new();
        };
        let params = ext.params.clone();
        let inputs: Vec<(String, Ty, DefId)> = self
            .ports_of(target)
            .iter()
            .filter(|p| p.sort == PortSort::Input)
            .map(|p| (p.name.clone(), p.ty.clone(), p.def))
            .collect();
        let input_names: Vec<String> = inputs.iter().map(|(n, _, _)| n.clone()).collect();
        let input_args = self.check_args(&uses.value, target, &params, args, &input_names, ctx);
        for arg in input_args {
            let Some(name) = &arg.name else { continue };
            let Some((_, ty, def)) = inputs.iter().find(|(n, _, _)| *n == name.name) else {
                continue;
            };
            self.symbols.refer(file, name.span, *def);
            self.check_input_source(file, ctx.workflow, step, &name.name, ty, &arg.value, ctx);
            bound_by_args.insert(name.name.clone(), name.span);
        }
        inputs
    }

    fn check_port(
        &mut self,
        file: FileId,
        workflow: DefId,
        step: DefId,
        port: &Port,
        bound_by_args: &HashMap<String, Span>,
        ctx: Ctx,
    ) {
        let def = self
            .p
            .steps
            .get(&step)
            .and_then(|s| s.ports.get(&port.name.name).copied());
        let Some(def) = def else { return };
        if self.symbols.def(def).full_span != port.span {
            return;
        }
        let ty = self.def_types.get(&def).cloned().unwrap_or(Ty::Unknown);
        match port.sort {
            PortSort::Input => {
                if !ty.is_artifact() && ty != Ty::Unknown {
                    self.report(
                        Diagnostic::new(Code::E0301, file, port.ty.span, format!("an input carries an artifact, not a `{ty}`"))
                            .with_label("not an artifact type")
                            .with_help("inputs are `Dataset`, `Model`, `File` or `Dir`; pass plain values as workflow params"),
                    );
                }
                match &port.source {
                    Some(source) => self.check_input_source(
                        file,
                        Some(workflow),
                        step,
                        &port.name.name,
                        &ty,
                        source,
                        ctx,
                    ),
                    None => {
                        if !bound_by_args.contains_key(&port.name.name) {
                            self.report(
                                Diagnostic::new(Code::E0205, file, port.span, format!("input `{}` is not bound", port.name.name))
                                    .with_label("needs `= SOURCE`")
                                    .with_help("bind it to another step's output (`= fit.model`) or a data source (`= mnist(split = \"train\")`)"),
                            );
                        }
                    }
                }
            }
            PortSort::Output => {
                if !ty.is_step_output() {
                    self.report(
                        Diagnostic::new(Code::E0301, file, port.ty.span, format!("a step cannot output a `{ty}`"))
                            .with_label("not an artifact type")
                            .with_help("outputs are `Dataset`, `Model`, `File` or `Dir`; report numbers as `metric NAME: TYPE`"),
                    );
                }
            }
            PortSort::Metric => {
                if !(ty.is_number() || ty == Ty::Bool || ty == Ty::Duration || ty == Ty::Unknown) {
                    self.report(
                        Diagnostic::new(
                            Code::E0301,
                            file,
                            port.ty.span,
                            format!("a metric is a number, not a `{ty}`"),
                        )
                        .with_label("not a metric type")
                        .with_help("metrics are `int`, `float`, `ratio`, `bool` or `duration`"),
                    );
                }
            }
        }
    }

    /// An input's source: an output of a step of the same workflow, or a data source.
    #[allow(clippy::too_many_arguments)]
    fn check_input_source(
        &mut self,
        file: FileId,
        workflow: Option<DefId>,
        step: DefId,
        input: &str,
        declared: &Ty,
        source: &Expr,
        ctx: Ctx,
    ) {
        // `other_workflow.step.output`: a binding across workflows.
        if let Some(path) = source.as_path() {
            if let [w, s, _] = path.as_slice() {
                if let Some(&other) = self.p.values.get(&w.name) {
                    if Some(other) != workflow && self.symbols.def(other).kind == DefKind::Workflow
                    {
                        let ty = self.value(source, None, ctx);
                        let wname = self.symbols.def(other).name.clone();
                        let here = workflow
                            .map(|w| self.symbols.def(w).name.clone())
                            .unwrap_or_default();
                        if ty != Ty::Unknown {
                            self.report(
                                Diagnostic::new(Code::E0403, file, source.span, format!("input `{input}` is bound to step `{}` of another workflow, `{wname}`", s.name))
                                    .with_label("a step of another workflow")
                                    .with_help(format!(
                                        "steps can only consume outputs of steps in their own workflow (`{here}`); move the step, or publish the artifact as a file and read it with a data source"
                                    )),
                            );
                        }
                        return;
                    }
                }
            }
        }
        let val = self.eval(source, Some(declared), ctx);
        let producer = match &val {
            Val::Value(_) => source_step(self, source, ctx),
            _ => None,
        };
        let ty = self.as_value(source, val, ctx);
        if ty == Ty::Unknown {
            return;
        }
        if !ty.fits(declared) {
            let d = Diagnostic::new(
                Code::E0302,
                file,
                source.span,
                format!("input `{input}` is declared `{declared}` but bound to a `{ty}`"),
            )
            .with_label(format!("this is `{ty}`"))
            .with_help(kind_help(&ty, declared).unwrap_or_else(|| {
                format!("bind it to a `{declared}`, or declare the input as `{ty}`")
            }));
            self.report(d);
            return;
        }
        if let Some(from) = producer {
            self.dependencies
                .entry(workflow.unwrap_or(step))
                .or_default()
                .push(Dependency {
                    from,
                    to: step,
                    cause: DependencyCause::Input(input.to_string()),
                    span: source.span,
                });
        }
    }

    fn check_after(&mut self, file: FileId, workflow: DefId, step: DefId, after: &Field, ctx: Ctx) {
        let ExprKind::List(items) = &after.value.kind else {
            self.report(
                Diagnostic::new(
                    Code::E0301,
                    file,
                    after.value.span,
                    "`after` takes a list of step names",
                )
                .with_label("expected `[step, …]`")
                .with_help("for example `after = [prepare, validate]`"),
            );
            return;
        };
        for item in items {
            match self.eval(item, None, ctx) {
                Val::Step(from) => {
                    self.dependencies
                        .entry(workflow)
                        .or_default()
                        .push(Dependency {
                            from,
                            to: step,
                            cause: DependencyCause::After,
                            span: item.span,
                        });
                }
                Val::Error => {}
                other => {
                    let ty = self.as_value(item, other, ctx);
                    if ty != Ty::Unknown {
                        self.report(
                            Diagnostic::new(
                                Code::E0203,
                                file,
                                item.span,
                                format!("`after` lists steps, found `{ty}`"),
                            )
                            .with_label("not a step of this workflow")
                            .with_help("name steps of the same workflow"),
                        );
                    }
                }
            }
        }
    }

    fn check_resources(&mut self, file: FileId, resources: &Resources, ctx: Ctx) {
        let fields = self.check_fields(
            file,
            resources.fields.iter(),
            RESOURCE_FIELDS,
            "`resources`",
            resources.span,
            resources.span,
        );
        for (name, field) in fields {
            let ty = match name {
                "cpu" => Ty::Cpu,
                "memory" => Ty::Memory,
                _ => Ty::Int,
            };
            self.value(&field.value, Some(&ty), ctx);
            if name == "gpu" {
                if number_value(&field.value).is_some_and(|n| n < 0.0) {
                    self.report(
                        Diagnostic::new(
                            Code::E0705,
                            file,
                            field.value.span,
                            "a GPU count cannot be negative",
                        )
                        .with_label("negative")
                        .with_help("write 0 or more"),
                    );
                }
            } else {
                self.positive(file, &field.value, format_args!("the {name} request"));
            }
        }
    }

    fn check_image_field(&mut self, file: FileId, image: &Field) {
        let ExprKind::Str(s) = &image.value.kind else {
            return;
        };
        let Some(reference) = s.as_plain() else {
            return;
        };
        match values::check_image(&reference) {
            Ok(parsed) => {
                if parsed.digest.is_none() && parsed.tag.as_deref().is_none_or(|t| t == "latest") {
                    self.report(
                        Diagnostic::new(Code::W0006, file, image.value.span, format!("image `{reference}` is not pinned to a tag"))
                            .with_label(if parsed.tag.is_some() { "`latest` moves" } else { "no tag: means `latest`" })
                            .with_help("pin a version (`python:3.12-slim`) or a digest, so every run uses the same image"),
                    );
                }
            }
            Err(e) => {
                // The error offset is inside the string: +1 skips the opening quote.
                let start = s.span.start() + 1 + e.offset;
                let span = Span::new(start, start + e.len.max(1));
                self.report(
                    Diagnostic::new(Code::E0703, file, span, format!("malformed image reference `{reference}`: {}", e.message))
                        .with_label(e.message.clone())
                        .with_help("image references look like `registry.example.com/team/name:1.2` (lowercase repository, optional tag or digest)"),
                );
            }
        }
    }

    /// The value of a literal, unless it has a syntax error (already reported).
    pub(super) fn number(&self, file: FileId, expr: &Expr) -> Option<f64> {
        if self.p.has_syntax_error(file, expr.span) {
            return None;
        }
        number_value(expr)
    }

    /// Reports a literal duration or quantity that is zero or negative (E0705).
    pub(super) fn positive(&mut self, file: FileId, expr: &Expr, what: impl fmt::Display) {
        if let Some(value) = self.number(file, expr) {
            if value <= 0.0 {
                self.report(
                    Diagnostic::new(
                        Code::E0705,
                        file,
                        expr.span,
                        format!("{what} must be positive"),
                    )
                    .with_label(if value == 0.0 { "zero" } else { "negative" })
                    .with_help("write a value greater than zero"),
                );
            }
        }
    }

    fn check_service(&mut self, file: FileId, def: DefId, service: &Service) {
        let owner = format!("service `{}`", service.name.name);
        let fields = self.check_fields(
            file,
            service.fields(),
            SERVICE_FIELDS,
            &owner,
            service.name.span,
            service.span,
        );
        let ctx = Ctx::top(file);
        if let Some(model) = fields.get("model") {
            let val = self.eval(&model.value, Some(&Ty::Model(None)), ctx);
            let ty = self.as_value(&model.value, val, ctx);
            if ty != Ty::Unknown && !matches!(ty, Ty::Model(_)) {
                self.report(
                    Diagnostic::new(
                        Code::E0301,
                        file,
                        model.value.span,
                        format!("a service serves a `Model`, found `{ty}`"),
                    )
                    .with_label(format!("this is `{ty}`"))
                    .with_help("name a step output of type `Model`, e.g. `training.fit.model`"),
                );
            } else if ty != Ty::Unknown && !self.service_models.contains_key(&def) {
                self.report(
                    Diagnostic::new(
                        Code::E0301,
                        file,
                        model.value.span,
                        "a service's model must be a step output: `WORKFLOW.STEP.OUTPUT`",
                    )
                    .with_label("not a step output")
                    .with_help("for example `model = training.fit.model`"),
                );
            }
        }
        if let Some(image) = fields.get("image") {
            self.value(&image.value, Some(&Ty::String), ctx);
            self.check_image_field(file, image);
        }
        if let Some(replicas) = fields.get("replicas") {
            self.check_replicas(file, replicas, ctx);
        }
        if let Some(port) = fields.get("port") {
            self.value(&port.value, Some(&Ty::Int), ctx);
            if let Some(n) = self.number(file, &port.value) {
                if !(1.0..=65535.0).contains(&n) {
                    self.report(
                        Diagnostic::new(
                            Code::E0706,
                            file,
                            port.value.span,
                            format!("port {n} is out of range"),
                        )
                        .with_label("expected 1 to 65535")
                        .with_help("pick a TCP port such as 8080"),
                    );
                }
            }
        }
        for member in &service.members {
            match member {
                ServiceMember::Slo(slo) => self.check_slo(file, def, slo),
                ServiceMember::Resources(resources) => self.check_resources(file, resources, ctx),
                ServiceMember::Field(_) => {}
            }
        }
    }

    fn check_replicas(&mut self, file: FileId, replicas: &Field, ctx: Ctx) {
        let (lo, hi) = match &replicas.value.kind {
            ExprKind::Range { start, end } => {
                self.value(&replicas.value, Some(&Ty::Range(Box::new(Ty::Int))), ctx);
                (self.number(file, start), self.number(file, end))
            }
            _ => {
                self.value(&replicas.value, Some(&Ty::Int), ctx);
                let n = self.number(file, &replicas.value);
                (n, n)
            }
        };
        if let (Some(lo), Some(hi)) = (lo, hi) {
            if lo < 1.0 {
                self.report(
                    Diagnostic::new(
                        Code::E0701,
                        file,
                        replicas.value.span,
                        format!("at least one replica is needed, the range starts at {lo}"),
                    )
                    .with_label("minimum below 1")
                    .with_help("write `replicas = 1..N`"),
                );
            } else if lo > hi {
                self.report(
                    Diagnostic::new(
                        Code::E0701,
                        file,
                        replicas.value.span,
                        format!("the minimum ({lo}) is above the maximum ({hi})"),
                    )
                    .with_label("min > max")
                    .with_help(format!("write `replicas = {hi}..{lo}`")),
                );
            }
        }
    }

    /// `slo latency.pNN < D` or `slo errors < R`: paths relative to the service.
    fn check_slo(&mut self, file: FileId, service: DefId, slo: &Slo) {
        let ExprKind::Binary { op, lhs, rhs } = &slo.objective.kind else {
            self.bad_slo(file, slo.objective.span);
            return;
        };
        if !matches!(op, BinaryOp::Lt | BinaryOp::Le) {
            self.bad_slo(file, slo.objective.span);
            return;
        }
        let Some(path) = lhs.as_path() else {
            self.bad_slo(file, lhs.span);
            return;
        };
        let names: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
        let ty = match names.as_slice() {
            ["latency", "p50" | "p95" | "p99"] => Ty::Duration,
            ["errors"] => Ty::Ratio,
            _ => {
                self.bad_slo(file, lhs.span);
                return;
            }
        };
        let _ = service;
        let ctx = Ctx::top(file);
        let found = self.typed(rhs, Some(&ty), ctx);
        if found != Ty::Unknown && !found.fits(&ty) {
            let help = if ty == Ty::Duration {
                "give the number a unit: `50ms`, `1s`"
            } else {
                "the error rate is a ratio: write a value in [0, 1] such as `0.01`"
            };
            self.report(
                Diagnostic::new(
                    Code::E0303,
                    file,
                    slo.objective.span,
                    format!("cannot compare `{ty}` with `{found}`"),
                )
                .with_label(format!("`{ty}` {} `{found}`", op.symbol()))
                .with_help(help),
            );
        } else if ty == Ty::Duration {
            self.positive(file, rhs, "a latency objective");
        }
    }

    fn bad_slo(&mut self, file: FileId, span: Span) {
        self.report(
            Diagnostic::new(
                Code::E0301,
                file,
                span,
                "an objective is `latency.p50|p95|p99 < DURATION` or `errors < RATIO`",
            )
            .with_label("not a service-level objective")
            .with_help("for example `slo latency.p95 < 50ms`"),
        );
    }

    fn resolve_agent_kind(&mut self, file: FileId, agent: DefId, kind: &Ident) {
        match self.p.types.get(&kind.name) {
            Some(&def) if self.symbols.def(def).kind == DefKind::AgentKind => {
                self.symbols.refer(file, kind.span, def);
                self.used.insert(def);
                self.agent_kinds.insert(agent, def);
            }
            Some(&def) => {
                self.symbols.refer(file, kind.span, def);
                self.report(
                    Diagnostic::new(Code::E0203, file, kind.span, format!("`{}` is a type alias, not an agent kind", kind.name))
                        .with_label("not an agent kind")
                        .with_help("agents instantiate kinds: Tracker, Checker, Improver, Planner, or one declared with `agent kind`"),
                );
            }
            None => {
                let mut d = Diagnostic::new(
                    Code::E0101,
                    file,
                    kind.span,
                    format!("unknown agent kind `{}`", kind.name),
                )
                .with_label("not an agent kind");
                if let Some(&value) = self.p.values.get(&kind.name) {
                    let what = self.symbols.def(value).kind.describe();
                    d = Diagnostic::new(Code::E0203, file, kind.span, format!("`{}` is a {what}, not an agent kind", kind.name))
                        .with_label("not an agent kind")
                        .with_help("agents instantiate kinds: Tracker, Checker, Improver, Planner, or one declared with `agent kind`");
                } else if let Some(best) =
                    suggest::closest(&kind.name, self.p.types.keys().map(String::as_str))
                {
                    d = d
                        .with_help(format!("did you mean `{best}`?"))
                        .with_suggestion(format!("replace with `{best}`"), file, kind.span, best);
                } else {
                    d = d.with_help("the kinds are Tracker, Checker, Improver, Planner, and those declared with `agent kind`");
                }
                self.report(d);
            }
        }
    }

    fn check_agent(&mut self, file: FileId, agent: DefId, decl: &Agent) {
        let ctx = Ctx::top(file);
        let Some(kind) = self.agent_kind(agent) else {
            for field in &decl.fields {
                self.value(&field.value, None, ctx);
            }
            return;
        };
        let Some(kind_node) = self.p.kinds.get(&kind) else {
            return;
        };
        let kind_name = kind_node.node.ast.name.name.clone();
        let configs: Vec<(String, DefId)> = kind_node
            .members
            .iter()
            .filter(|(_, &d)| self.symbols.def(d).kind == DefKind::Config)
            .map(|(n, &d)| (n.clone(), d))
            .collect();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for field in &decl.fields {
            let name = field.name.name.as_str();
            if let Some(first) = seen.insert(name, field.name.span) {
                self.report(
                    Diagnostic::new(
                        Code::E0207,
                        file,
                        field.name.span,
                        format!("`{name}` is set twice"),
                    )
                    .with_label("second value")
                    .with_secondary(file, first, "first set here")
                    .with_help("keep one of them"),
                );
                continue;
            }
            match configs.iter().find(|(n, _)| n == name) {
                Some((_, config)) => {
                    self.symbols.refer(file, field.name.span, *config);
                    let expected = self.def_types.get(config).cloned().unwrap_or(Ty::Unknown);
                    let improver = self.is_improver(kind);
                    let fctx = if improver && name == "objective" {
                        Ctx {
                            objective_of: Some(agent),
                            ..ctx
                        }
                    } else {
                        ctx
                    };
                    let val = self.eval(&field.value, Some(&expected), fctx);
                    let ty = self.as_value(&field.value, val, ctx);
                    if improver && name == "parallel" && ty.fits(&expected) {
                        self.positive(file, &field.value, "`parallel` (trials run at once)");
                    }
                    if !ty.fits(&expected) {
                        let kind_confusion = matches!(
                            (&ty, &expected),
                            (Ty::Workflow(_), Ty::Service(_)) | (Ty::Service(_), Ty::Workflow(_))
                        );
                        let code = if kind_confusion {
                            Code::E0203
                        } else {
                            Code::E0301
                        };
                        let message = if kind_confusion {
                            let found = if matches!(ty, Ty::Workflow(_)) {
                                "a workflow"
                            } else {
                                "a service"
                            };
                            let wanted = if matches!(expected, Ty::Workflow(_)) {
                                "a workflow"
                            } else {
                                "a service"
                            };
                            format!(
                                "config `{name}` of `{kind_name}` expects {wanted}, found {found}"
                            )
                        } else {
                            format!("config `{name}` of `{kind_name}` must be `{expected}`, found `{ty}`")
                        };
                        self.report(
                            Diagnostic::new(code, file, field.value.span, message)
                                .with_label(format!("this is `{ty}`"))
                                .with_help(
                                    kind_help(&ty, &expected)
                                        .unwrap_or_else(|| format!("give a `{expected}` value")),
                                ),
                        );
                    }
                }
                None => {
                    let mut d = Diagnostic::new(
                        Code::E0204,
                        file,
                        field.name.span,
                        format!("agent kind `{kind_name}` has no config `{name}`"),
                    )
                    .with_label("unknown config");
                    if let Some(best) =
                        suggest::closest(name, configs.iter().map(|(n, _)| n.as_str()))
                    {
                        d = d
                            .with_help(format!("did you mean `{best}`?"))
                            .with_suggestion(
                                format!("replace with `{best}`"),
                                file,
                                field.name.span,
                                best,
                            );
                    } else if configs.is_empty() {
                        d = d.with_help(format!("`{kind_name}` takes no configs"));
                    } else {
                        let list: Vec<String> =
                            configs.iter().map(|(n, _)| format!("`{n}`")).collect();
                        d = d.with_help(format!(
                            "the configs of `{kind_name}` are {}",
                            list.join(", ")
                        ));
                    }
                    self.report(d);
                    self.value(&field.value, None, ctx);
                }
            }
        }
        let missing: Vec<String> = configs
            .iter()
            .filter(|(n, d)| {
                !seen.contains_key(n.as_str())
                    && !self.defaults.contains(d)
                    && !self.optional.contains(d)
            })
            .map(|(n, _)| n.clone())
            .collect();
        if self.p.has_syntax_error(file, decl.span) {
            return;
        }
        for name in missing {
            let ty = configs
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, d)| self.def_types.get(d).cloned())
                .unwrap_or(Ty::Unknown);
            self.report(
                Diagnostic::new(
                    Code::E0205,
                    file,
                    decl.name.span,
                    format!("agent `{}` needs config `{name}`", decl.name.name),
                )
                .with_label(format!("`{name}: {ty}` is required by `{kind_name}`"))
                .with_help(format!("add `{name} = …` to the agent's braces")),
            );
        }
    }

    fn check_kind(&mut self, file: FileId, kind: DefId, decl: &AgentKind) {
        let ctx = Ctx::top(file);
        let Some(kind_node) = self.p.kinds.get(&kind) else {
            return;
        };
        for member in &decl.members {
            match member {
                KindMember::Config(config) => {
                    let def = kind_node.members.get(&config.name.name).copied();
                    if let (Some(default), Some(def)) = (&config.default, def) {
                        let ty = self.def_types.get(&def).cloned().unwrap_or(Ty::Unknown);
                        self.value(default, Some(&ty), ctx);
                    }
                }
                KindMember::Sensor(_) => {}
                KindMember::Action(action) => {
                    let Some(&def) = kind_node.members.get(&action.name.name) else {
                        continue;
                    };
                    let params: BTreeMap<String, DefId> = kind_node
                        .action_params
                        .get(&def)
                        .map(|ids| {
                            ids.iter()
                                .map(|&id| (self.symbols.def(id).name.clone(), id))
                                .collect()
                        })
                        .unwrap_or_default();
                    for (p, id) in action.params.iter().zip(
                        kind_node
                            .action_params
                            .get(&def)
                            .cloned()
                            .unwrap_or_default(),
                    ) {
                        if let Some(default) = &p.default {
                            let ty = self.def_types.get(&id).cloned().unwrap_or(Ty::Unknown);
                            self.value(default, Some(&ty), ctx);
                        }
                    }
                    match &action.binding {
                        Some(ActionBinding::Run(run)) => {
                            let ctx = Ctx {
                                locals: Some(&params),
                                ..ctx
                            };
                            self.check_run(file, run, ctx);
                        }
                        Some(ActionBinding::Webhook(url)) => {
                            self.check_string(url, ctx);
                            if let Some(text) = url.as_plain() {
                                if !(text.starts_with("http://") || text.starts_with("https://")) {
                                    self.report(
                                        Diagnostic::new(Code::E0301, file, url.span, "a webhook binding needs an absolute http(s) URL")
                                            .with_label("not an http(s) URL")
                                            .with_help("for example `-> webhook \"https://hooks.example.com/retrain\"`"),
                                    );
                                }
                            }
                        }
                        None => {}
                    }
                }
            }
        }
    }

    /// `run WORKFLOW with { … }`
    fn check_run(&mut self, file: FileId, run: &RunAction, ctx: Ctx) {
        let workflow = match self.p.values.get(&run.workflow.name) {
            Some(&def) if self.symbols.def(def).kind == DefKind::Workflow => {
                self.symbols.refer(file, run.workflow.span, def);
                self.used.insert(def);
                def
            }
            Some(&def) => {
                self.symbols.refer(file, run.workflow.span, def);
                let what = self.symbols.def(def).kind.describe();
                self.report(
                    Diagnostic::new(
                        Code::E0203,
                        file,
                        run.workflow.span,
                        format!("`{}` is a {what}, not a workflow", run.workflow.name),
                    )
                    .with_label("`run` starts a workflow")
                    .with_help(if what == "agent" {
                        "to call an agent, write `AGENT.ACTION(…)`"
                    } else {
                        "name a workflow after `run`"
                    }),
                );
                return;
            }
            None => {
                let workflows: Vec<&str> = self
                    .p
                    .workflows
                    .iter()
                    .map(|w| w.node.ast.name.name.as_str())
                    .collect();
                let mut d = Diagnostic::new(
                    Code::E0101,
                    file,
                    run.workflow.span,
                    format!("unknown workflow `{}`", run.workflow.name),
                )
                .with_label("no such workflow");
                if let Some(best) = suggest::closest(&run.workflow.name, workflows) {
                    d = d
                        .with_help(format!("did you mean `{best}`?"))
                        .with_suggestion(
                            format!("replace with `{best}`"),
                            file,
                            run.workflow.span,
                            best,
                        );
                } else {
                    d = d.with_help("declare it with `workflow NAME { … }`");
                }
                self.report(d);
                return;
            }
        };
        let params = self
            .p
            .workflow(workflow)
            .map(|w| w.params.clone())
            .unwrap_or_default();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for field in &run.with {
            if let Some(first) = seen.insert(field.name.name.as_str(), field.name.span) {
                self.report(
                    Diagnostic::new(
                        Code::E0207,
                        file,
                        field.name.span,
                        format!("`{}` is set twice", field.name.name),
                    )
                    .with_label("second value")
                    .with_secondary(file, first, "first set here")
                    .with_help("keep one of them"),
                );
                continue;
            }
            match params.get(&field.name.name) {
                Some(&param) => {
                    self.symbols.refer(file, field.name.span, param);
                    let ty = self.def_types.get(&param).cloned().unwrap_or(Ty::Unknown);
                    self.value(&field.value, Some(&ty), ctx);
                }
                None => {
                    let mut d = Diagnostic::new(
                        Code::E0309,
                        file,
                        field.name.span,
                        format!(
                            "workflow `{}` has no param `{}`",
                            run.workflow.name, field.name.name
                        ),
                    )
                    .with_label("unknown param");
                    if let Some(best) =
                        suggest::closest(&field.name.name, params.keys().map(String::as_str))
                    {
                        d = d
                            .with_help(format!("did you mean `{best}`?"))
                            .with_suggestion(
                                format!("replace with `{best}`"),
                                file,
                                field.name.span,
                                best,
                            );
                    } else {
                        d = d.with_help("only the workflow's params can be set with `with { … }`");
                    }
                    self.report(d);
                    self.value(&field.value, None, ctx);
                }
            }
        }
    }

    fn check_action(&mut self, file: FileId, action: &Action, ctx: Ctx) {
        match action {
            Action::Run(run) => self.check_run(file, run, ctx),
            Action::Call(expr) => {
                let actx = Ctx {
                    position: Position::Action,
                    ..ctx
                };
                match &expr.kind {
                    ExprKind::Call { args, .. } => match self.eval(expr, None, actx) {
                        Val::Action { agent, action } => {
                            self.check_tune_call(expr, agent, action, args, ctx);
                        }
                        Val::Error => {}
                        other => {
                            let ty = self.as_value(expr, other, ctx);
                            if ty != Ty::Unknown {
                                self.report(
                                    Diagnostic::new(Code::E0203, file, expr.span, "this call is not an action")
                                        .with_label(format!("returns a `{ty}`"))
                                        .with_help("after `then` and `->` come agent actions (`planner.replace(…)`) or `run WORKFLOW`"),
                                );
                            }
                        }
                    },
                    _ => {
                        match self.eval(expr, None, actx) {
                            Val::Action { action, .. } => {
                                let name = self.symbols.def(action).name.clone();
                                self.report(
                                    Diagnostic::new(
                                        Code::E0305,
                                        file,
                                        expr.span,
                                        format!("action `{name}` must be called"),
                                    )
                                    .with_label("missing `(…)`")
                                    .with_help(format!(
                                        "write `{}(…)`",
                                        expr.span.text(&self.p.sources.get(file).text)
                                    )),
                                );
                            }
                            Val::Sensor(sensor, _) => {
                                let name = self.symbols.def(sensor).name.clone();
                                self.report(
                                Diagnostic::new(Code::E0201, file, expr.span, format!("`{name}` is a sensor, not an action"))
                                    .with_label("a sensor cannot be performed")
                                    .with_help("after `then` and `->` come agent actions or `run WORKFLOW`"),
                            );
                            }
                            Val::Value(Ty::Workflow(Some(w))) => {
                                let name = self.symbols.def(w).name.clone();
                                self.report(
                                    Diagnostic::new(
                                        Code::E0203,
                                        file,
                                        expr.span,
                                        format!("`{name}` is a workflow: start it with `run`"),
                                    )
                                    .with_label("not an action")
                                    .with_help(format!("write `run {name}`"))
                                    .with_suggestion(
                                        format!("write `run {name}`"),
                                        file,
                                        expr.span,
                                        format!("run {name}"),
                                    ),
                                );
                            }
                            Val::Error => {}
                            other => {
                                let ty = self.as_value(expr, other, ctx);
                                if ty != Ty::Unknown {
                                    self.report(
                                    Diagnostic::new(Code::E0203, file, expr.span, format!("a `{ty}` is not an action"))
                                        .with_label("not an action")
                                        .with_help("after `then` and `->` come agent actions (`planner.replace(…)`) or `run WORKFLOW`"),
                                );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn check_trigger(&mut self, file: FileId, trigger: &Trigger) {
        let ctx = Ctx::top(file);
        match &trigger.source {
            TriggerSource::Schedule(cron) => {
                self.check_string(cron, ctx);
                if let Some(text) = cron.as_plain() {
                    if let Err(e) = values::check_cron(&text) {
                        let start = cron.span.start() + 1 + e.offset;
                        self.report(
                            Diagnostic::new(Code::E0702, file, Span::new(start, start + e.len.max(1)), format!("invalid cron expression \"{text}\": {}", e.message))
                                .with_label(e.message.clone())
                                .with_help("cron has five fields: minute hour day-of-month month day-of-week, e.g. \"0 2 * * *\" (02:00 every day)"),
                        );
                    }
                }
            }
            TriggerSource::Every { count, sensor, .. } => {
                self.value(count, Some(&Ty::Int), ctx);
                self.positive(file, count, "the count");
                match self.eval(sensor, None, ctx) {
                    Val::Sensor(_, ty) => {
                        if !matches!(ty, Ty::Int | Ty::Unknown) {
                            self.report(
                                Diagnostic::new(
                                    Code::E0301,
                                    file,
                                    sensor.span,
                                    format!("`every` counts an `int` sensor; this one is `{ty}`"),
                                )
                                .with_label("not a counter")
                                .with_help("use a counter such as `tracker.new_samples`"),
                            );
                        }
                    }
                    Val::Error => {}
                    Val::Action { action, .. } => {
                        let name = self.symbols.def(action).name.clone();
                        self.report(
                            Diagnostic::new(
                                Code::E0202,
                                file,
                                sensor.span,
                                format!("`{name}` is an action; `every` counts a sensor"),
                            )
                            .with_label("an action cannot be counted")
                            .with_help("use a counter sensor such as `tracker.new_samples`"),
                        );
                    }
                    other => {
                        let ty = self.as_value(sensor, other, ctx);
                        if ty != Ty::Unknown {
                            self.report(
                                Diagnostic::new(Code::E0203, file, sensor.span, "`every` counts an agent's sensor")
                                    .with_label("not a sensor")
                                    .with_help("write `every N AGENT.SENSOR`, e.g. `every 1000 tracker.new_samples`"),
                            );
                        }
                    }
                }
            }
            TriggerSource::On(event) => {
                let ectx = Ctx {
                    position: Position::Event,
                    ..ctx
                };
                match self.eval(event, None, ectx) {
                    Val::Event | Val::Error => {}
                    other => {
                        let ty = self.as_value(event, other, ctx);
                        if ty != Ty::Unknown {
                            self.report(
                                Diagnostic::new(Code::E0203, file, event.span, "`on` needs an event")
                                    .with_label("not an event")
                                    .with_help("events are `WORKFLOW.started|succeeded|failed`, `SERVICE.model.replaced`, `SERVICE.model.rolled_back` and `SERVICE.scaled`"),
                            );
                        }
                    }
                }
            }
            TriggerSource::Webhook(path) => {
                self.check_string(path, ctx);
                if let Some(text) = path.as_plain() {
                    let valid = text.starts_with('/')
                        && text.len() > 1
                        && text
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "/-_.~".contains(c));
                    if !valid {
                        self.report(
                            Diagnostic::new(Code::E0301, file, path.span, format!("`{text}` is not a webhook path"))
                                .with_label("expected a path such as \"/hooks/retrain\"")
                                .with_help("webhook paths start with `/` and use letters, digits, `-`, `_`, `.` and `/`"),
                        );
                    }
                }
            }
        }
        self.check_action(file, &trigger.action, ctx);
    }

    fn check_policy(&mut self, file: FileId, policy: &Policy) {
        let ctx = Ctx::top(file);
        self.value(&policy.when, Some(&Ty::Bool), ctx);
        if let Some(hold) = &policy.hold_for {
            self.value(hold, Some(&Ty::Duration), ctx);
            self.positive(file, hold, "`for`");
        }
        for action in &policy.then {
            self.check_action(file, action, ctx);
        }
        if let Some(cooldown) = &policy.cooldown {
            self.value(cooldown, Some(&Ty::Duration), ctx);
            self.positive(file, cooldown, "the cooldown");
        }
        if let Some(limit) = &policy.rate_limit {
            self.value(&limit.count, Some(&Ty::Int), ctx);
            if number_value(&limit.count).is_some_and(|n| n < 0.0) {
                self.positive(file, &limit.count, "the firing limit");
            }
            self.value(&limit.per, Some(&Ty::Duration), ctx);
            self.positive(file, &limit.per, "the window");
        }
    }
}

/// The numeric value of a literal (with its sign), if it is one. Units are converted to a
/// common base (milliseconds, millicores, bytes) only for the sign and zero tests.
pub(super) fn number_value(expr: &Expr) -> Option<f64> {
    match &expr.kind {
        ExprKind::Int(v) => Some(*v as f64),
        ExprKind::Float(v) => Some(*v),
        ExprKind::Suffixed { value, .. } => Some(*value),
        ExprKind::Paren(inner) => number_value(inner),
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => number_value(operand).map(|v| -v),
        ExprKind::Unary {
            op: UnaryOp::Plus,
            operand,
        } => number_value(operand),
        _ => None,
    }
}

/// If `source` names a step output (`fit.model` or `workflow.fit.model`), the step.
fn source_step(c: &Checker<'_, '_>, source: &Expr, ctx: Ctx) -> Option<DefId> {
    let path = source.as_path()?;
    let workflow = c.p.workflow(ctx.workflow?)?;
    match path.as_slice() {
        [step, _] => workflow.step_names.get(&step.name).copied(),
        [w, step, _] if w.name == workflow.node.ast.name.name => {
            workflow.step_names.get(&step.name).copied()
        }
        _ => None,
    }
}

/// `KIND `NAME`` (`step `train``) for messages, formatted only when a message is made.
#[derive(Clone, Copy)]
struct Named<'n>(&'static str, &'n str);

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.0, self.1)
    }
}
