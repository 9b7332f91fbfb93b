//! Lowering: a checked program becomes a [`Plan`], the versioned IR the runtime executes and
//! the emit stage turns into Kubernetes manifests.
//!
//! Invariants:
//! - only a program without errors is lowered ([`LowerError::HasErrors`] otherwise), so
//!   lowering never has to guess: every name it meets was resolved by the checker and is found
//!   in the [`Symbols`] by its span;
//! - the plan is deterministic: the same program always gives the same plan, byte for byte,
//!   once serialised (source order everywhere, `BTreeMap`s for maps).

pub mod plan;

use crate::analysis::Analysis;
use crate::resolve::Program;
use crate::span::{FileId, Span};
use crate::symbols::{DefId, DefKind};
use crate::syntax::ast::{self, ExprKind, Item, PortSort, StepMember, StrPart};
use crate::types::{PortInfo, Ty};
use crate::values;
use plan::*;
use std::collections::{BTreeMap, HashMap};

/// Why a program cannot be lowered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LowerError {
    /// The program has errors; fix them first.
    #[error("the program has {0} error(s); `sflowc check` shows them")]
    HasErrors(usize),
    /// The program has no `app`.
    #[error("the program has no `app` declaration")]
    NoApp,
}

/// The default size of the artifacts volume: 10Gi.
pub const DEFAULT_STORAGE_BYTES: u64 = 10 * 1024 * 1024 * 1024;
/// The default service port.
pub const DEFAULT_SERVICE_PORT: u16 = 8080;

/// Lowers a checked program to its plan.
pub fn lower(analysis: &Analysis) -> Result<Plan, LowerError> {
    let errors = analysis.diagnostics.iter().filter(|d| d.is_error()).count();
    if errors > 0 {
        return Err(LowerError::HasErrors(errors));
    }
    let program = analysis.program();
    let refs: HashMap<(FileId, u32), DefId> = analysis
        .symbols
        .references
        .iter()
        .map(|r| ((r.at.file, r.at.span.start), r.def))
        .collect();
    let l = Lowerer {
        a: analysis,
        p: &program,
        refs,
    };
    l.plan()
}

struct Lowerer<'a> {
    a: &'a Analysis,
    p: &'a Program<'a>,
    refs: HashMap<(FileId, u32), DefId>,
}

impl Lowerer<'_> {
    fn plan(&self) -> Result<Plan, LowerError> {
        let app = self.p.app.ok_or(LowerError::NoApp)?;
        let app_plan = self.app(app.file, app.ast);
        let workflows = self
            .p
            .workflows
            .iter()
            .map(|w| self.workflow(w, &app_plan))
            .collect();
        let services = self
            .p
            .services
            .iter()
            .map(|s| self.service(s.file, s.def, s.ast, &app_plan))
            .collect();
        let agents: Vec<AgentPlan> = self
            .p
            .agents
            .iter()
            .map(|a| self.agent(a.file, a.def, a.ast))
            .collect();
        let mut kind_defs: Vec<DefId> = self.a.facts.agent_kinds.values().copied().collect();
        kind_defs.extend(
            self.p
                .kinds
                .values()
                .filter(|k| self.p.is_user_file(k.node.file))
                .map(|k| k.node.def),
        );
        kind_defs.sort();
        kind_defs.dedup();
        let agent_kinds = kind_defs
            .into_iter()
            .filter_map(|k| self.agent_kind(k))
            .collect();
        let triggers = self
            .p
            .triggers
            .iter()
            .map(|t| self.trigger(t.file, t.ast))
            .collect();
        let policies = self
            .p
            .policies
            .iter()
            .map(|p| self.policy(p.file, p.ast))
            .collect();
        Ok(Plan {
            api_version: API_VERSION.to_string(),
            kind: "Plan".to_string(),
            app: app_plan,
            workflows,
            services,
            agent_kinds,
            agents,
            triggers,
            policies,
        })
    }

    fn source(&self, file: FileId, span: Span) -> SourceRef {
        let src = self.a.sources.get(file);
        let lc = src.line_col(span.start());
        SourceRef {
            file: src.path.clone(),
            line: lc.line,
            column: lc.column,
        }
    }

    fn def_at(&self, file: FileId, span: Span) -> Option<DefId> {
        self.refs.get(&(file, span.start)).copied()
    }

    fn ty(&self, def: DefId) -> Ty {
        self.a
            .facts
            .def_types
            .get(&def)
            .cloned()
            .unwrap_or(Ty::Unknown)
    }

    fn app(&self, file: FileId, app: &ast::App) -> AppPlan {
        let field = |name: &str| app.fields.iter().find(|f| f.name.name == name);
        let string = |name: &str| field(name).and_then(|f| plain_string(&f.value));
        let labels = field("labels")
            .map(|f| match &f.value.kind {
                ExprKind::Record(entries) => entries
                    .iter()
                    .filter_map(|e| plain_string(&e.value).map(|v| (e.name.name.clone(), v)))
                    .collect(),
                _ => BTreeMap::new(),
            })
            .unwrap_or_default();
        let storage_bytes = field("storage")
            .and_then(|f| quantity(&f.value, &Ty::Memory))
            .unwrap_or(DEFAULT_STORAGE_BYTES);
        AppPlan {
            name: app.name.name.clone(),
            namespace: string("namespace").unwrap_or_else(|| values::kube_name(&app.name.name)),
            registry: string("registry"),
            labels,
            storage_bytes,
            monitoring: string("monitoring")
                .as_deref()
                .and_then(Monitoring::from_name),
            autoscaler: string("autoscaler")
                .as_deref()
                .and_then(Autoscaler::from_name),
            tracking: field("tracking").and_then(|f| self.tracking(file, &f.value)),
            source: self.source(file, app.name.span),
        }
    }

    /// `tracking = mlflow("URI")`, as the plan records it.
    fn tracking(&self, file: FileId, e: &ast::Expr) -> Option<Tracking> {
        match self.expr(file, e, Some(&Ty::Tracking)) {
            Expr::Call { function, args, .. } if function == "std.tracking.mlflow" => {
                match args.get("uri") {
                    Some(Expr::Literal {
                        value: Value::String { value },
                    }) => Some(Tracking::Mlflow {
                        uri: value.trim_end_matches('/').to_string(),
                    }),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn workflow(
        &self,
        w: &crate::resolve::collect::WorkflowNode<'_>,
        app: &AppPlan,
    ) -> WorkflowPlan {
        let file = w.node.file;
        let dag = self.a.workflows.iter().find(|d| d.workflow == w.node.def);
        let order: Vec<String> = match dag.and_then(|d| d.order.as_ref()) {
            Some(order) => order
                .iter()
                .filter_map(|&i| dag.and_then(|d| d.graph.steps().get(i)))
                .map(|s| s.name.clone())
                .collect(),
            None => w.node.ast.steps().map(|s| s.name.name.clone()).collect(),
        };
        let params = w
            .node
            .ast
            .params()
            .filter_map(|param| {
                let def = *w.params.get(&param.name.name)?;
                let ty = self.ty(def);
                Some(ParamPlan {
                    name: param.name.name.clone(),
                    ty: plan_type(&ty),
                    default: param.default.as_ref().and_then(|d| const_value(d, &ty)),
                    space: param.space.as_ref().and_then(|s| search_space(s, &ty)),
                })
            })
            .collect();
        let steps = w
            .steps
            .iter()
            .enumerate()
            .filter_map(|(index, &def)| {
                let step = self.p.steps.get(&def)?;
                let deps: Vec<String> = match dag {
                    Some(d) => {
                        let mut deps: Vec<usize> = d.graph.dependencies(index);
                        deps.sort_by_key(|i| {
                            order
                                .iter()
                                .position(|n| Some(n) == d.graph.steps().get(*i).map(|s| &s.name))
                        });
                        deps.into_iter()
                            .filter_map(|i| d.graph.steps().get(i).map(|s| s.name.clone()))
                            .collect()
                    }
                    None => Vec::new(),
                };
                Some(self.step(file, def, step.node.ast, deps, app))
            })
            .collect();
        WorkflowPlan {
            name: w.node.ast.name.name.clone(),
            kube_name: values::kube_name(&w.node.ast.name.name),
            doc: w.node.ast.doc.as_ref().map(|d| d.text.clone()),
            params,
            steps,
            order,
            source: self.source(file, w.node.ast.name.span),
        }
    }

    fn step(
        &self,
        file: FileId,
        def: DefId,
        step: &ast::Step,
        depends_on: Vec<String>,
        app: &AppPlan,
    ) -> StepPlan {
        let ports: Vec<PortInfo> = self
            .a
            .facts
            .step_ports
            .get(&def)
            .cloned()
            .unwrap_or_default();
        let uses_call = step.field("uses").and_then(|f| match &f.value.kind {
            ExprKind::Call { args, .. } => Some(args),
            _ => None,
        });
        let run = match self.a.facts.step_uses.get(&def) {
            Some(&target) => StepRun::Std {
                step: self.qualified(target),
                args: self.call_args(
                    file,
                    target,
                    uses_call.map(Vec::as_slice).unwrap_or(&[]),
                    &input_names(&ports),
                ),
            },
            None => StepRun::Command {
                image: step
                    .field("image")
                    .and_then(|f| app_string(&f.value, app))
                    .map(|i| qualify_image(&i, app))
                    .unwrap_or_default(),
                command: step
                    .field("run")
                    .map(|f| self.template(file, &f.value))
                    .unwrap_or_default(),
            },
        };
        let inputs = ports
            .iter()
            .filter(|p| p.sort == PortSort::Input)
            .filter_map(|port| {
                let line = step
                    .ports(PortSort::Input)
                    .find(|p| p.name.name == port.name)
                    .and_then(|p| p.source.as_ref());
                let arg = uses_call
                    .and_then(|args| {
                        args.iter()
                            .find(|a| a.name.as_ref().is_some_and(|n| n.name == port.name))
                    })
                    .map(|a| &a.value);
                let source = line.or(arg)?;
                Some(InputPlan {
                    name: port.name.clone(),
                    ty: plan_type(&port.ty),
                    from: self.input_source(file, source),
                })
            })
            .collect();
        let ports_of = |sort: PortSort| -> Vec<PortPlan> {
            ports
                .iter()
                .filter(|p| p.sort == sort)
                .map(|p| PortPlan {
                    name: p.name.clone(),
                    ty: plan_type(&p.ty),
                })
                .collect()
        };
        let mut resources = ResourcesPlan::default();
        let mut retry = None;
        let mut timeout_ms = None;
        for member in &step.members {
            match member {
                StepMember::Resources(r) => resources = self.resources(r),
                StepMember::Retry(r) => {
                    retry = Some(RetryPlan {
                        limit: int_value(&r.count).unwrap_or(0).clamp(0, 100) as u32,
                        backoff_ms: r.backoff.as_ref().and_then(duration_ms),
                    })
                }
                StepMember::Timeout(t) => timeout_ms = duration_ms(&t.value),
                _ => {}
            }
        }
        // `env` values: constants (and `{{app.*}}`, known now) go to `env`; values with
        // run-time templates are split like `run` and substituted by whoever runs the step.
        let mut env = BTreeMap::new();
        let mut env_templates = BTreeMap::new();
        if let Some(ExprKind::Record(entries)) = step.field("env").map(|f| &f.value.kind) {
            for e in entries {
                if let Some(v) = app_string(&e.value, app) {
                    env.insert(e.name.name.clone(), v);
                } else if matches!(e.value.kind, ExprKind::Str(_)) {
                    env_templates.insert(e.name.name.clone(), self.template(file, &e.value));
                }
            }
        }
        StepPlan {
            name: step.name.name.clone(),
            kube_name: values::kube_name(&step.name.name),
            doc: step.doc.as_ref().map(|d| d.text.clone()),
            run,
            inputs,
            outputs: ports_of(PortSort::Output),
            metrics: ports_of(PortSort::Metric),
            depends_on,
            resources,
            retry,
            timeout_ms,
            cache: step
                .field("cache")
                .is_some_and(|f| matches!(f.value.kind, ExprKind::Bool(true))),
            env,
            env_templates,
            source: self.source(file, step.name.span),
        }
    }

    fn resources(&self, r: &ast::Resources) -> ResourcesPlan {
        let field = |name: &str| r.fields.iter().find(|f| f.name.name == name);
        ResourcesPlan {
            cpu_millis: field("cpu").and_then(|f| quantity(&f.value, &Ty::Cpu)),
            memory_bytes: field("memory").and_then(|f| quantity(&f.value, &Ty::Memory)),
            gpu: field("gpu")
                .and_then(|f| int_value(&f.value))
                .map(|n| n.max(0) as u32),
        }
    }

    fn input_source(&self, file: FileId, source: &ast::Expr) -> InputSource {
        if let ExprKind::Call { callee, args } = &source.kind {
            let function = callee
                .as_path()
                .and_then(|p| p.last().and_then(|i| self.def_at(file, i.span)));
            if let Some(function) = function {
                return InputSource::Data {
                    function: self.qualified(function),
                    args: self.call_args(file, function, args, &[]),
                };
            }
        }
        let path = source.as_path().unwrap_or_default();
        let names: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
        let (step, output) = match names.as_slice() {
            [step, output] | [_, step, output] => (step.to_string(), output.to_string()),
            _ => (String::new(), String::new()),
        };
        InputSource::Step { step, output }
    }

    /// `std.MODULE.NAME` of a std item (`std.prelude.NAME` for the prelude's functions).
    fn qualified(&self, def: DefId) -> String {
        let d = self.a.symbols.def(def);
        match d.parent.map(|m| self.a.symbols.def(m)) {
            Some(module) if module.kind == DefKind::Module => {
                format!("std.{}.{}", module.name, d.name)
            }
            None if d.name_at.file == self.p.prelude
                && matches!(d.kind, DefKind::ExternFn | DefKind::ExternStep) =>
            {
                format!("std.prelude.{}", d.name)
            }
            _ => d.name.clone(),
        }
    }

    /// The arguments of a call by parameter name, defaults filled in; arguments naming one of
    /// `skip` (a std step's inputs) are left out.
    fn call_args(
        &self,
        file: FileId,
        callee: DefId,
        args: &[ast::Arg],
        skip: &[String],
    ) -> BTreeMap<String, Expr> {
        let params: Vec<DefId> = match self.a.symbols.def(callee).kind {
            DefKind::ExternFn | DefKind::ExternStep => self
                .p
                .externs
                .get(&callee)
                .map(|e| e.params.clone())
                .unwrap_or_default(),
            DefKind::Action => self
                .a
                .symbols
                .def(callee)
                .parent
                .and_then(|k| self.p.kinds.get(&k))
                .and_then(|k| k.action_params.get(&callee).cloned())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let mut out = BTreeMap::new();
        let mut positional = 0;
        for arg in args {
            let param = match &arg.name {
                Some(name) if skip.contains(&name.name) => continue,
                Some(name) => params
                    .iter()
                    .copied()
                    .find(|&p| self.a.symbols.def(p).name == name.name),
                None => {
                    positional += 1;
                    params.get(positional - 1).copied()
                }
            };
            if let Some(param) = param {
                let ty = self.ty(param);
                out.insert(
                    self.a.symbols.def(param).name.clone(),
                    self.expr(file, &arg.value, Some(&ty)),
                );
            }
        }
        for &param in &params {
            let name = self.a.symbols.def(param).name.clone();
            if out.contains_key(&name) {
                continue;
            }
            if let Some(default) = self.param_default(param) {
                out.insert(name, default);
            }
        }
        out
    }

    /// The default of a std or action parameter, lowered.
    fn param_default(&self, param: DefId) -> Option<Expr> {
        let d = self.a.symbols.def(param);
        let file = d.name_at.file;
        let parse = self.a.parse(file);
        let ty = self.ty(param);
        for item in &parse.file.items {
            let params: &[ast::ParamSig] = match item {
                Item::ExternFn(f) => &f.params,
                Item::ExternStep(s) => &s.params,
                Item::AgentKind(k) => {
                    for member in &k.members {
                        if let ast::KindMember::Action(a) = member {
                            if let Some(p) = a.params.iter().find(|p| p.span == d.full_span) {
                                return p.default.as_ref().map(|e| self.expr(file, e, Some(&ty)));
                            }
                        }
                    }
                    continue;
                }
                _ => continue,
            };
            if let Some(p) = params.iter().find(|p| p.span == d.full_span) {
                return p.default.as_ref().map(|e| self.expr(file, e, Some(&ty)));
            }
        }
        None
    }

    fn template(&self, file: FileId, expr: &ast::Expr) -> Vec<TemplatePart> {
        let ExprKind::Str(s) = &expr.kind else {
            return Vec::new();
        };
        let mut parts = Vec::new();
        for part in &s.parts {
            match part {
                StrPart::Text { value, .. } => match parts.last_mut() {
                    Some(TemplatePart::Text { text }) => text.push_str(value),
                    _ => parts.push(TemplatePart::Text {
                        text: value.clone(),
                    }),
                },
                StrPart::Interp { expr, .. } => {
                    let path: Vec<String> = expr
                        .as_path()
                        .unwrap_or_default()
                        .iter()
                        .map(|i| i.name.clone())
                        .collect();
                    let part = match path
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .as_slice()
                    {
                        ["inputs", name] => TemplatePart::Input {
                            name: name.to_string(),
                        },
                        ["outputs", name] => TemplatePart::Output {
                            name: name.to_string(),
                        },
                        ["app", field] => TemplatePart::App {
                            field: field.to_string(),
                        },
                        [name] => TemplatePart::Param {
                            name: name.to_string(),
                        },
                        _ => TemplatePart::Text {
                            text: expr.span.text(&self.a.sources.get(file).text).to_string(),
                        },
                    };
                    parts.push(part);
                }
            }
        }
        parts
    }

    fn service(
        &self,
        file: FileId,
        def: DefId,
        service: &ast::Service,
        app: &AppPlan,
    ) -> ServicePlan {
        let model = service
            .field("model")
            .and_then(|f| f.value.as_path())
            .map(|path| {
                let names: Vec<String> = path.iter().map(|i| i.name.clone()).collect();
                ModelRef {
                    workflow: names.first().cloned().unwrap_or_default(),
                    step: names.get(1).cloned().unwrap_or_default(),
                    output: names.get(2).cloned().unwrap_or_default(),
                }
            })
            .unwrap_or(ModelRef {
                workflow: String::new(),
                step: String::new(),
                output: String::new(),
            });
        let (min_replicas, max_replicas) = match service.field("replicas").map(|f| &f.value.kind) {
            Some(ExprKind::Range { start, end }) => {
                (int_value(start).unwrap_or(1), int_value(end).unwrap_or(1))
            }
            Some(_) => {
                let n = service
                    .field("replicas")
                    .and_then(|f| int_value(&f.value))
                    .unwrap_or(1);
                (n, n)
            }
            None => (1, 1),
        };
        let slos = service
            .slos()
            .filter_map(|slo| {
                let ExprKind::Binary { op, lhs, rhs } = &slo.objective.kind else {
                    return None;
                };
                let signal: Vec<String> = lhs.as_path()?.iter().map(|i| i.name.clone()).collect();
                let ty = if signal.first().map(String::as_str) == Some("errors") {
                    Ty::Ratio
                } else {
                    Ty::Duration
                };
                Some(SloPlan {
                    signal: signal.join("."),
                    op: binary_op(*op),
                    threshold: const_value(rhs, &ty)?,
                })
            })
            .collect();
        let resources = service
            .members
            .iter()
            .find_map(|m| match m {
                ast::ServiceMember::Resources(r) => Some(self.resources(r)),
                _ => None,
            })
            .unwrap_or_default();
        let _ = def;
        ServicePlan {
            name: service.name.name.clone(),
            kube_name: values::kube_name(&service.name.name),
            doc: service.doc.as_ref().map(|d| d.text.clone()),
            model,
            image: service
                .field("image")
                .and_then(|f| app_string(&f.value, app))
                .map(|i| qualify_image(&i, app)),
            min_replicas: min_replicas.max(1) as u32,
            max_replicas: max_replicas.max(1) as u32,
            port: service
                .field("port")
                .and_then(|f| int_value(&f.value))
                .map_or(DEFAULT_SERVICE_PORT, |p| p as u16),
            slos,
            resources,
            source: self.source(file, service.name.span),
        }
    }

    fn agent_kind(&self, kind: DefId) -> Option<AgentKindPlan> {
        let node = self.p.kinds.get(&kind)?;
        let file = node.node.file;
        let mut plan = AgentKindPlan {
            name: node.node.ast.name.name.clone(),
            builtin: !self.p.is_user_file(file),
            configs: Vec::new(),
            sensors: Vec::new(),
            actions: Vec::new(),
        };
        for member in &node.node.ast.members {
            let Some(&def) = node.members.get(&member.name().name) else {
                continue;
            };
            let ty = self.ty(def);
            match member {
                ast::KindMember::Config(c) => plan.configs.push(MemberPlan {
                    name: c.name.name.clone(),
                    ty: plan_type(&ty),
                    default: c.default.as_ref().and_then(|d| const_value(d, &ty)),
                }),
                ast::KindMember::Sensor(s) => plan.sensors.push(MemberPlan {
                    name: s.name.name.clone(),
                    ty: plan_type(&ty),
                    default: None,
                }),
                ast::KindMember::Action(a) => {
                    let ids = node.action_params.get(&def).cloned().unwrap_or_default();
                    let params = a
                        .params
                        .iter()
                        .zip(&ids)
                        .map(|(p, &id)| {
                            let ty = self.ty(id);
                            MemberPlan {
                                name: p.name.name.clone(),
                                ty: plan_type(&ty),
                                default: p.default.as_ref().and_then(|d| const_value(d, &ty)),
                            }
                        })
                        .collect();
                    let binding = a.binding.as_ref().map(|b| match b {
                        ast::ActionBinding::Run(run) => BindingPlan::Run {
                            workflow: run.workflow.name.clone(),
                            with: self.with(file, run),
                        },
                        ast::ActionBinding::Webhook(url) => BindingPlan::Webhook {
                            url: url.as_plain().unwrap_or_default(),
                        },
                    });
                    plan.actions.push(ActionDeclPlan {
                        name: a.name.name.clone(),
                        params,
                        binding,
                    });
                }
            }
        }
        Some(plan)
    }

    fn agent(&self, file: FileId, def: DefId, agent: &ast::Agent) -> AgentPlan {
        let mut config = BTreeMap::new();
        if let Some(kind) = self
            .a
            .facts
            .agent_kinds
            .get(&def)
            .and_then(|k| self.p.kinds.get(k))
        {
            for member in &kind.node.ast.members {
                let ast::KindMember::Config(c) = member else {
                    continue;
                };
                let Some(&cdef) = kind.members.get(&c.name.name) else {
                    continue;
                };
                let ty = self.ty(cdef);
                let value = match agent.fields.iter().find(|f| f.name.name == c.name.name) {
                    Some(field) => Some(self.expr(file, &field.value, Some(&ty))),
                    None => c
                        .default
                        .as_ref()
                        .map(|d| self.expr(kind.node.file, d, Some(&ty))),
                };
                if let Some(value) = value {
                    config.insert(c.name.name.clone(), value);
                }
            }
        }
        AgentPlan {
            name: agent.name.name.clone(),
            kind: agent.kind.name.clone(),
            config,
            source: self.source(file, agent.name.span),
        }
    }

    fn trigger(&self, file: FileId, trigger: &ast::Trigger) -> TriggerPlan {
        let on = match &trigger.source {
            ast::TriggerSource::Schedule(cron) => {
                let text = cron.as_plain().unwrap_or_default();
                let cron = values::check_cron(&text)
                    .map(|c| c.to_standard_string())
                    .unwrap_or(text);
                TriggerSourcePlan::Schedule { cron }
            }
            ast::TriggerSource::Every { count, sensor, .. } => {
                let names: Vec<String> = sensor
                    .as_path()
                    .unwrap_or_default()
                    .iter()
                    .map(|i| i.name.clone())
                    .collect();
                TriggerSourcePlan::Every {
                    count: int_value(count).unwrap_or(1).max(1) as u64,
                    agent: names.first().cloned().unwrap_or_default(),
                    sensor: names.get(1).cloned().unwrap_or_default(),
                }
            }
            ast::TriggerSource::On(event) => {
                let path = event.as_path().unwrap_or_default();
                let target = path.first().map(|i| i.name.clone()).unwrap_or_default();
                let target_kind = match path
                    .first()
                    .and_then(|i| self.def_at(file, i.span))
                    .map(|d| self.a.symbols.def(d).kind)
                {
                    Some(DefKind::Service) => TargetKind::Service,
                    _ => TargetKind::Workflow,
                };
                let event = path
                    .iter()
                    .skip(1)
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(".");
                TriggerSourcePlan::On {
                    target_kind,
                    target,
                    event,
                }
            }
            ast::TriggerSource::Webhook(path) => TriggerSourcePlan::Webhook {
                path: path.as_plain().unwrap_or_default(),
            },
        };
        TriggerPlan {
            name: trigger.name.name.clone(),
            kube_name: values::kube_name(&trigger.name.name),
            on,
            action: self.action(file, &trigger.action),
            source: self.source(file, trigger.name.span),
        }
    }

    fn policy(&self, file: FileId, policy: &ast::Policy) -> PolicyPlan {
        let when = self.expr(file, &policy.when, Some(&Ty::Bool));
        let mut reads = Vec::new();
        collect_signals(&when, &mut reads);
        reads.sort();
        reads.dedup();
        PolicyPlan {
            name: policy.name.name.clone(),
            when,
            hold_for_ms: policy.hold_for.as_ref().and_then(duration_ms),
            then: policy.then.iter().map(|a| self.action(file, a)).collect(),
            cooldown_ms: policy.cooldown.as_ref().and_then(duration_ms),
            rate_limit: policy.rate_limit.as_ref().map(|r| RateLimitPlan {
                count: int_value(&r.count).unwrap_or(0).max(0) as u32,
                per_ms: duration_ms(&r.per).unwrap_or(0),
            }),
            reads,
            source: self.source(file, policy.name.span),
        }
    }

    fn with(&self, file: FileId, run: &ast::RunAction) -> BTreeMap<String, Expr> {
        run.with
            .iter()
            .map(|f| {
                let ty = self.def_at(file, f.name.span).map(|d| self.ty(d));
                (f.name.name.clone(), self.expr(file, &f.value, ty.as_ref()))
            })
            .collect()
    }

    fn action(&self, file: FileId, action: &ast::Action) -> ActionPlan {
        match action {
            ast::Action::Run(run) => ActionPlan::Run {
                workflow: run.workflow.name.clone(),
                with: self.with(file, run),
            },
            ast::Action::Call(expr) => {
                let (callee, args) = match &expr.kind {
                    ExprKind::Call { callee, args } => (callee.as_ref(), args.as_slice()),
                    _ => (expr, &[][..]),
                };
                let path = callee.as_path().unwrap_or_default();
                let agent = path.first().map(|i| i.name.clone()).unwrap_or_default();
                let action_ident = path.get(1);
                let action = action_ident.map(|i| i.name.clone()).unwrap_or_default();
                let args = match action_ident.and_then(|i| self.def_at(file, i.span)) {
                    Some(def) => self.call_args(file, def, args, &[]),
                    None => BTreeMap::new(),
                };
                ActionPlan::Call {
                    agent,
                    action,
                    args,
                }
            }
        }
    }

    /// Lowers an expression; `expected` gives literals their unit.
    fn expr(&self, file: FileId, e: &ast::Expr, expected: Option<&Ty>) -> Expr {
        match &e.kind {
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Suffixed { .. }
            | ExprKind::Bool(_) => {
                let ty = expected.cloned().unwrap_or_else(|| literal_type(e));
                match const_value(e, &ty) {
                    Some(value) => Expr::Literal { value },
                    None => Expr::Literal {
                        value: Value::Int { value: 0 },
                    },
                }
            }
            ExprKind::Str(s) => match s.as_plain() {
                Some(value) => Expr::Literal {
                    value: Value::String { value },
                },
                None => Expr::Template {
                    parts: self.template(file, e),
                },
            },
            ExprKind::Paren(inner) => self.expr(file, inner, expected),
            ExprKind::List(items) => {
                let elem = match expected {
                    Some(Ty::List(t)) => Some(t.as_ref().clone()),
                    _ => None,
                };
                Expr::List {
                    items: items
                        .iter()
                        .map(|i| self.expr(file, i, elem.as_ref()))
                        .collect(),
                }
            }
            ExprKind::Record(_) | ExprKind::Range { .. } => {
                match const_value(e, expected.unwrap_or(&Ty::Unknown)) {
                    Some(value) => Expr::Literal { value },
                    None => Expr::List { items: Vec::new() },
                }
            }
            ExprKind::Name(_) | ExprKind::Field { .. } => self.path(file, e),
            ExprKind::Call { callee, args } => {
                let function = callee
                    .as_path()
                    .and_then(|p| p.last().and_then(|i| self.def_at(file, i.span)));
                match function {
                    Some(f) => Expr::Call {
                        function: self.qualified(f),
                        args: self.call_args(file, f, args, &[]),
                        ty: plan_type(&self.ty(f)),
                    },
                    None => Expr::List { items: Vec::new() },
                }
            }
            ExprKind::Unary { op, operand } => {
                let inner = self.expr(file, operand, expected);
                match op {
                    ast::UnaryOp::Plus => inner,
                    ast::UnaryOp::Neg => {
                        // Fold negative literals, so `-1` is a literal as users read it.
                        if let Expr::Literal {
                            value: Value::Int { value },
                        } = &inner
                        {
                            return Expr::Literal {
                                value: Value::Int { value: -value },
                            };
                        }
                        if let Expr::Literal {
                            value: Value::Float { value },
                        } = &inner
                        {
                            return Expr::Literal {
                                value: Value::Float { value: -value },
                            };
                        }
                        let ty = expr_type(&inner);
                        Expr::Unary {
                            op: UnaryOp::Neg,
                            operand: Box::new(inner),
                            ty,
                        }
                    }
                    ast::UnaryOp::Not => Expr::Unary {
                        op: UnaryOp::Not,
                        operand: Box::new(inner),
                        ty: PlanType::Bool,
                    },
                }
            }
            ExprKind::Binary { op, lhs, rhs } => {
                let op = binary_op(*op);
                let (l, r) = if is_literal(lhs) && !is_literal(rhs) {
                    let r = self.expr(file, rhs, None);
                    let l = self.expr(file, lhs, ty_of_plan(&expr_type(&r)).as_ref());
                    (l, r)
                } else {
                    let l = self.expr(file, lhs, if is_literal(lhs) { expected } else { None });
                    let r = self.expr(file, rhs, ty_of_plan(&expr_type(&l)).as_ref());
                    (l, r)
                };
                let ty = match op {
                    BinaryOp::Or
                    | BinaryOp::And
                    | BinaryOp::Eq
                    | BinaryOp::Ne
                    | BinaryOp::Lt
                    | BinaryOp::Le
                    | BinaryOp::Gt
                    | BinaryOp::Ge => PlanType::Bool,
                    _ => arithmetic_type(&expr_type(&l), &expr_type(&r), op),
                };
                Expr::Binary {
                    op,
                    lhs: Box::new(l),
                    rhs: Box::new(r),
                    ty,
                }
            }
        }
    }

    /// A dotted path: a param, a declaration passed by name, or a signal.
    fn path(&self, file: FileId, e: &ast::Expr) -> Expr {
        let path = e.as_path().unwrap_or_default();
        let Some(head) = path.first() else {
            return Expr::List { items: Vec::new() };
        };
        let names: Vec<String> = path.iter().map(|i| i.name.clone()).collect();
        let head_def = self.def_at(file, head.span);
        let kind = head_def.map(|d| self.a.symbols.def(d).kind);
        let rest: Vec<String> = names.iter().skip(1).cloned().collect();
        match kind {
            Some(DefKind::Param | DefKind::ParamSig) => Expr::Param {
                name: head.name.clone(),
                ty: plan_type(&head_def.map(|d| self.ty(d)).unwrap_or(Ty::Unknown)),
            },
            Some(DefKind::Service) if rest.is_empty() => Expr::Ref {
                target_kind: TargetKind::Service,
                name: head.name.clone(),
            },
            Some(DefKind::Workflow) if rest.is_empty() => Expr::Ref {
                target_kind: TargetKind::Workflow,
                name: head.name.clone(),
            },
            Some(DefKind::Agent) if rest.is_empty() => Expr::Ref {
                target_kind: TargetKind::Agent,
                name: head.name.clone(),
            },
            Some(DefKind::Service) => {
                let ty = match rest
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .as_slice()
                {
                    ["latency", _] => PlanType::Duration,
                    ["requests"] | ["replicas"] => PlanType::Int,
                    ["errors"] => PlanType::Ratio,
                    ["model", _] => path
                        .last()
                        .and_then(|i| self.def_at(file, i.span))
                        .map_or(PlanType::Float, |d| plan_type(&self.ty(d))),
                    _ => PlanType::Model,
                };
                Expr::Signal {
                    signal: Signal::Service {
                        service: head.name.clone(),
                        path: rest,
                    },
                    ty,
                }
            }
            Some(DefKind::Agent) => {
                let sensor = rest.first().cloned().unwrap_or_default();
                let member_path: Vec<String> = rest.iter().skip(1).cloned().collect();
                let ty = match member_path.last().map(String::as_str) {
                    None => path
                        .get(1)
                        .and_then(|i| self.def_at(file, i.span))
                        .map_or(PlanType::Int, |d| plan_type(&self.ty(d))),
                    Some("size") => PlanType::Int,
                    Some(_) => path
                        .last()
                        .and_then(|i| self.def_at(file, i.span))
                        .map_or(PlanType::Float, |d| plan_type(&self.ty(d))),
                };
                Expr::Signal {
                    signal: Signal::Sensor {
                        agent: head.name.clone(),
                        sensor,
                        path: member_path,
                    },
                    ty,
                }
            }
            Some(DefKind::Workflow) => {
                let ty = path
                    .last()
                    .and_then(|i| self.def_at(file, i.span))
                    .map_or(PlanType::Float, |d| plan_type(&self.ty(d)));
                Expr::Signal {
                    signal: Signal::StepMetric {
                        workflow: head.name.clone(),
                        step: rest.first().cloned().unwrap_or_default(),
                        metric: rest.get(1).cloned().unwrap_or_default(),
                    },
                    ty,
                }
            }
            _ => Expr::Literal {
                value: Value::String {
                    value: names.join("."),
                },
            },
        }
    }
}

fn input_names(ports: &[PortInfo]) -> Vec<String> {
    ports
        .iter()
        .filter(|p| p.sort == PortSort::Input)
        .map(|p| p.name.clone())
        .collect()
}

fn collect_signals(e: &Expr, out: &mut Vec<Signal>) {
    match e {
        Expr::Signal { signal, .. } => out.push(signal.clone()),
        Expr::Unary { operand, .. } => collect_signals(operand, out),
        Expr::Binary { lhs, rhs, .. } => {
            collect_signals(lhs, out);
            collect_signals(rhs, out);
        }
        Expr::Call { args, .. } => args.values().for_each(|a| collect_signals(a, out)),
        Expr::List { items } => items.iter().for_each(|i| collect_signals(i, out)),
        _ => {}
    }
}

/// The plan's spelling of a type.
pub fn plan_type(ty: &Ty) -> PlanType {
    match ty {
        Ty::Int => PlanType::Int,
        Ty::Float | Ty::Unknown => PlanType::Float,
        Ty::Ratio => PlanType::Ratio,
        Ty::Bool => PlanType::Bool,
        Ty::String => PlanType::String,
        Ty::Duration => PlanType::Duration,
        Ty::Cpu => PlanType::Cpu,
        Ty::Memory => PlanType::Memory,
        Ty::Dataset => PlanType::Dataset,
        Ty::Model(_) => PlanType::Model,
        Ty::File => PlanType::File,
        Ty::Dir => PlanType::Dir,
        Ty::Batch => PlanType::Batch,
        Ty::Service(_) => PlanType::Service,
        Ty::Workflow(_) => PlanType::Workflow,
        Ty::Detector => PlanType::Detector,
        Ty::LabelSource => PlanType::LabelSource,
        Ty::Tracking => PlanType::Tracking,
        Ty::Objective => PlanType::Objective,
        Ty::Search => PlanType::Search,
        Ty::List(t) => PlanType::List(Box::new(plan_type(t))),
        Ty::Range(t) => PlanType::Range(Box::new(plan_type(t))),
        Ty::Record => PlanType::Record,
        Ty::Latency => PlanType::Latency,
        Ty::Event => PlanType::Event,
    }
}

fn ty_of_plan(ty: &PlanType) -> Option<Ty> {
    Some(match ty {
        PlanType::Int => Ty::Int,
        PlanType::Float => Ty::Float,
        PlanType::Ratio => Ty::Ratio,
        PlanType::Duration => Ty::Duration,
        PlanType::Cpu => Ty::Cpu,
        PlanType::Memory => Ty::Memory,
        _ => return None,
    })
}

/// The type of a lowered expression.
pub fn expr_type(e: &Expr) -> PlanType {
    match e {
        Expr::Literal { value } => match value {
            Value::Int { .. } => PlanType::Int,
            Value::Float { .. } => PlanType::Float,
            Value::Bool { .. } => PlanType::Bool,
            Value::String { .. } => PlanType::String,
            Value::Duration { .. } => PlanType::Duration,
            Value::Cpu { .. } => PlanType::Cpu,
            Value::Memory { .. } => PlanType::Memory,
            Value::List { .. } => PlanType::List(Box::new(PlanType::Float)),
            Value::Record { .. } => PlanType::Record,
            Value::Range { .. } => PlanType::Range(Box::new(PlanType::Int)),
        },
        Expr::Param { ty, .. }
        | Expr::Signal { ty, .. }
        | Expr::Call { ty, .. }
        | Expr::Unary { ty, .. }
        | Expr::Binary { ty, .. } => ty.clone(),
        Expr::Ref { target_kind, .. } => match target_kind {
            TargetKind::Service => PlanType::Service,
            TargetKind::Workflow => PlanType::Workflow,
            TargetKind::Agent => PlanType::Record,
        },
        Expr::Template { .. } => PlanType::String,
        Expr::List { .. } => PlanType::List(Box::new(PlanType::Float)),
    }
}

fn arithmetic_type(a: &PlanType, b: &PlanType, op: BinaryOp) -> PlanType {
    match (a, b) {
        (PlanType::Int, PlanType::Int) if op != BinaryOp::Div => PlanType::Int,
        (PlanType::Duration, _) | (_, PlanType::Duration) => PlanType::Duration,
        (PlanType::Cpu, _) => PlanType::Cpu,
        (PlanType::Memory, _) => PlanType::Memory,
        _ => PlanType::Float,
    }
}

fn binary_op(op: ast::BinaryOp) -> BinaryOp {
    match op {
        ast::BinaryOp::Or => BinaryOp::Or,
        ast::BinaryOp::And => BinaryOp::And,
        ast::BinaryOp::Eq => BinaryOp::Eq,
        ast::BinaryOp::Ne => BinaryOp::Ne,
        ast::BinaryOp::Lt => BinaryOp::Lt,
        ast::BinaryOp::Le => BinaryOp::Le,
        ast::BinaryOp::Gt => BinaryOp::Gt,
        ast::BinaryOp::Ge => BinaryOp::Ge,
        ast::BinaryOp::Add => BinaryOp::Add,
        ast::BinaryOp::Sub => BinaryOp::Sub,
        ast::BinaryOp::Mul => BinaryOp::Mul,
        ast::BinaryOp::Div => BinaryOp::Div,
    }
}

fn is_literal(e: &ast::Expr) -> bool {
    match &e.kind {
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Suffixed { .. } => true,
        ExprKind::Unary { operand, .. } | ExprKind::Paren(operand) => is_literal(operand),
        _ => false,
    }
}

/// The type a literal has with nothing expected: its unit decides.
fn literal_type(e: &ast::Expr) -> Ty {
    match &e.kind {
        ExprKind::Int(_) => Ty::Int,
        ExprKind::Float(_) => Ty::Float,
        ExprKind::Bool(_) => Ty::Bool,
        // By the unit alone, as the type checker decides: `0ms` is a duration too (zero is
        // refused where a positive value is needed, by the checker, not by its unit).
        ExprKind::Suffixed { digits, unit, .. } => match values::parse_duration(digits, unit) {
            Err(e) if e.is_about_unit() => Ty::Memory,
            _ => Ty::Duration,
        },
        _ => Ty::Unknown,
    }
}

/// The value of a constant expression of type `ty`.
pub fn const_value(e: &ast::Expr, ty: &Ty) -> Option<Value> {
    Some(match (&e.kind, ty) {
        (ExprKind::Paren(inner), _) => return const_value(inner, ty),
        (
            ExprKind::Unary {
                op: ast::UnaryOp::Plus,
                operand,
            },
            _,
        ) => return const_value(operand, ty),
        (
            ExprKind::Unary {
                op: ast::UnaryOp::Neg,
                operand,
            },
            _,
        ) => match const_value(operand, ty)? {
            Value::Int { value } => Value::Int { value: -value },
            Value::Float { value } => Value::Float { value: -value },
            _ => return None,
        },
        (ExprKind::Bool(b), _) => Value::Bool { value: *b },
        (ExprKind::Str(s), _) => Value::String {
            value: s.as_plain()?,
        },
        (ExprKind::Int(v), Ty::Float | Ty::Ratio) => Value::Float { value: *v as f64 },
        (ExprKind::Int(v), Ty::Cpu) => Value::Cpu {
            millis: (*v as u64).saturating_mul(1000),
        },
        (ExprKind::Int(v), Ty::Memory) => Value::Memory { bytes: *v as u64 },
        (ExprKind::Int(v), _) => Value::Int { value: *v },
        (ExprKind::Float(v), Ty::Cpu) => Value::Cpu {
            millis: (v * 1000.0).round() as u64,
        },
        (ExprKind::Float(v), _) => Value::Float { value: *v },
        (ExprKind::Suffixed { .. }, Ty::Duration) => Value::Duration {
            ms: duration_ms(e)?,
        },
        (ExprKind::Suffixed { .. }, Ty::Cpu) => Value::Cpu {
            millis: quantity(e, &Ty::Cpu)?,
        },
        (ExprKind::Suffixed { .. }, Ty::Memory) => Value::Memory {
            bytes: quantity(e, &Ty::Memory)?,
        },
        (ExprKind::Suffixed { .. }, _) => return const_value(e, &literal_type(e)),
        (ExprKind::List(items), _) => {
            let elem = match ty {
                Ty::List(t) => t.as_ref().clone(),
                _ => Ty::Unknown,
            };
            Value::List {
                items: items
                    .iter()
                    .map(|i| const_value(i, &elem))
                    .collect::<Option<Vec<_>>>()?,
            }
        }
        (ExprKind::Record(fields), _) => Value::Record {
            fields: fields
                .iter()
                .map(|f| Some((f.name.name.clone(), const_value(&f.value, &Ty::Unknown)?)))
                .collect::<Option<BTreeMap<_, _>>>()?,
        },
        (ExprKind::Range { start, end }, _) => {
            let elem = match ty {
                Ty::Range(t) => t.as_ref().clone(),
                _ => Ty::Int,
            };
            Value::Range {
                min: Box::new(const_value(start, &elem)?),
                max: Box::new(const_value(end, &elem)?),
            }
        }
        _ => return None,
    })
}

fn search_space(space: &ast::Expr, ty: &Ty) -> Option<SearchSpace> {
    match &space.kind {
        ExprKind::Range { start, end } => Some(SearchSpace::Range {
            min: const_value(start, ty)?,
            max: const_value(end, ty)?,
        }),
        ExprKind::List(items) => Some(SearchSpace::Choice {
            values: items
                .iter()
                .map(|i| const_value(i, ty))
                .collect::<Option<_>>()?,
        }),
        ExprKind::Call { args, .. } => {
            let bounds: Vec<f64> = args.iter().filter_map(|a| number(&a.value)).collect();
            match bounds[..] {
                [min, max] => Some(SearchSpace::Log { min, max }),
                _ => None,
            }
        }
        _ => None,
    }
}

fn number(e: &ast::Expr) -> Option<f64> {
    match &e.kind {
        ExprKind::Int(v) => Some(*v as f64),
        ExprKind::Float(v) => Some(*v),
        ExprKind::Paren(inner) => number(inner),
        ExprKind::Unary {
            op: ast::UnaryOp::Neg,
            operand,
        } => number(operand).map(|v| -v),
        _ => None,
    }
}

fn int_value(e: &ast::Expr) -> Option<i64> {
    match &e.kind {
        ExprKind::Int(v) => Some(*v),
        ExprKind::Paren(inner)
        | ExprKind::Unary {
            op: ast::UnaryOp::Plus,
            operand: inner,
        } => int_value(inner),
        ExprKind::Unary {
            op: ast::UnaryOp::Neg,
            operand,
        } => int_value(operand).map(|v| -v),
        _ => None,
    }
}

fn duration_ms(e: &ast::Expr) -> Option<u64> {
    match &e.kind {
        ExprKind::Suffixed { digits, unit, .. } => match values::parse_duration(digits, unit) {
            Ok(d) => Some(d.as_millis() as u64),
            // A zero duration is a value a condition may compare with (`latency.p99 > 0ms`).
            Err(values::UnitError::NotPositive { .. }) => Some(0),
            Err(_) => None,
        },
        ExprKind::Paren(inner) => duration_ms(inner),
        _ => None,
    }
}

/// A quantity's value, zero included: where zero is not allowed the checker has refused the
/// program before lowering.
fn zero_allowed(r: Result<u64, values::UnitError>) -> Option<u64> {
    match r {
        Ok(v) => Some(v),
        Err(values::UnitError::NotPositive { .. }) => Some(0),
        Err(_) => None,
    }
}

fn quantity(e: &ast::Expr, ty: &Ty) -> Option<u64> {
    match (&e.kind, ty) {
        (ExprKind::Suffixed { digits, unit, .. }, Ty::Cpu) => {
            zero_allowed(values::parse_cpu(digits, unit))
        }
        (ExprKind::Suffixed { digits, unit, .. }, Ty::Memory) => {
            zero_allowed(values::parse_memory(digits, unit))
        }
        (ExprKind::Int(v), Ty::Cpu) => Some((*v as u64).saturating_mul(1000)),
        (ExprKind::Float(v), Ty::Cpu) => Some((v * 1000.0).round() as u64),
        (ExprKind::Int(v), Ty::Memory) => Some(*v as u64),
        (ExprKind::Paren(inner), _) => quantity(inner, ty),
        _ => None,
    }
}

/// A string whose only templates are `{{app.name}}`, `{{app.namespace}}` and
/// `{{app.registry}}`, with them substituted (`"{{app.registry}}/etl:2.3"` →
/// `"ghcr.io/acme/etl:2.3"`); `None` for any other template.
fn app_string(e: &ast::Expr, app: &AppPlan) -> Option<String> {
    let ExprKind::Str(s) = &e.kind else {
        return None;
    };
    let mut out = String::new();
    for part in &s.parts {
        match part {
            StrPart::Text { value, .. } => out.push_str(value),
            StrPart::Interp { expr, .. } => {
                let path: Vec<&str> = expr.as_path()?.iter().map(|i| i.name.as_str()).collect();
                match path.as_slice() {
                    ["app", "name"] => out.push_str(&app.name),
                    ["app", "namespace"] => out.push_str(&app.namespace),
                    ["app", "registry"] => out.push_str(app.registry.as_deref().unwrap_or("")),
                    _ => return None,
                }
            }
        }
    }
    Some(out)
}

fn plain_string(e: &ast::Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Str(s) => s.as_plain(),
        _ => None,
    }
}

/// An image reference as pulled: a reference that names no registry host is pulled from the
/// app's `registry` (which then mirrors it: `python:3.12-slim` becomes
/// `ghcr.io/acme/python:3.12-slim`); write `docker.io/library/python:3.12-slim` to pull from
/// Docker Hub explicitly.
pub fn qualify_image(image: &str, app: &AppPlan) -> String {
    match (values::check_image(image), &app.registry) {
        (Ok(parsed), Some(registry)) if !parsed.is_fully_qualified() => {
            parsed.qualified_with(registry)
        }
        _ => image.to_string(),
    }
}
