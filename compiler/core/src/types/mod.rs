//! Type checking: every check of §6 of the spec that needs names resolved — kinds, types,
//! units, templates, values, Kubernetes names — and the warnings.
//!
//! Invariants:
//! - the checker never stops at an error and never reports one mistake twice: an expression
//!   whose type could not be known is [`Ty::Unknown`], which fits everywhere;
//! - every resolved name is recorded in the [`Symbols`], so the language server sees exactly
//!   what the checker saw;
//! - the checker reads the syntax tree and never changes it.

mod cache;
pub mod decls;
pub mod expr;
mod lints;
mod names;
mod templates;
mod tuning;
pub mod ty;

use crate::diagnostics::{Code, Diagnostic};
use crate::resolve::Program;
use crate::span::FileId;
use crate::symbols::{DefId, DefKind, Symbols};
use crate::syntax::ast::*;
pub use cache::CheckCache;
pub use decls::{Dependency, DependencyCause};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
pub use ty::Ty;

/// One port of a step, after merging the std step's signature with the user's declarations.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PortInfo {
    /// The port name.
    pub name: String,
    /// Input, output or metric.
    pub sort: PortSort,
    /// Its type.
    pub ty: Ty,
    /// The declaration (the user's, when the user re-declared a std port).
    pub def: DefId,
}

/// What the checker learned, for the later stages (graphs, lowering, the language server).
#[derive(Debug, Default, PartialEq)]
pub struct Facts {
    /// The type of every typed declaration (params, ports, configs, sensors, …).
    pub def_types: HashMap<DefId, Ty>,
    /// Each step's ports, std ports merged in.
    pub step_ports: HashMap<DefId, Vec<PortInfo>>,
    /// The std step each `uses` step runs.
    pub step_uses: HashMap<DefId, DefId>,
    /// Each service's model: the step that produces it.
    pub service_models: HashMap<DefId, DefId>,
    /// Each agent's kind.
    pub agent_kinds: HashMap<DefId, DefId>,
    /// Declarations referenced from somewhere (for the unused warnings).
    pub used: HashSet<DefId>,
    /// Dependencies between steps, by workflow (inputs and `after`), in source order.
    pub dependencies: HashMap<DefId, Vec<Dependency>>,
}

/// Where an expression stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Position {
    /// Read as a value.
    Value,
    /// Called as an action (after `then` or `->`).
    Action,
    /// After `on`: events are allowed.
    Event,
}

/// The scope of one expression.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'c> {
    file: FileId,
    workflow: Option<DefId>,
    step: Option<DefId>,
    locals: Option<&'c BTreeMap<String, DefId>>,
    position: Position,
    /// The Improver agent whose `objective` config is being checked: the only place where
    /// `maximize(…)`/`minimize(…)` may stand (see `tuning.rs`).
    objective_of: Option<DefId>,
}

impl Ctx<'_> {
    fn top(file: FileId) -> Ctx<'static> {
        Ctx {
            file,
            workflow: None,
            step: None,
            locals: None,
            position: Position::Value,
            objective_of: None,
        }
    }
}

/// The checker's state.
pub(crate) struct Checker<'a, 's> {
    p: &'a Program<'a>,
    symbols: &'s mut Symbols,
    diagnostics: &'s mut Vec<Diagnostic>,
    def_types: HashMap<DefId, Ty>,
    defaults: HashSet<DefId>,
    /// Configs declared `config NAME: TYPE?`: agents may leave them out.
    optional: HashSet<DefId>,
    step_ports: HashMap<DefId, Vec<PortInfo>>,
    step_uses: HashMap<DefId, DefId>,
    service_models: HashMap<DefId, DefId>,
    agent_kinds: HashMap<DefId, DefId>,
    used: HashSet<DefId>,
    /// `(file, offset of the imported name)` of the imports that were used.
    used_imports: HashSet<(FileId, u32)>,
    /// Outputs read from outside their step: `(step, the output's declaration)` (a std
    /// step's port declaration is shared by every step that `uses` it, hence the pair).
    used_ports: HashSet<(DefId, DefId)>,
    /// Dependencies between steps, by workflow.
    dependencies: HashMap<DefId, Vec<decls::Dependency>>,
    /// The language server's step-check cache, when incremental.
    cache: Option<&'s mut CheckCache>,
}

/// Checks a collected program. Diagnostics are appended; references go into `symbols`.
pub fn check(p: &Program<'_>, symbols: &mut Symbols, diagnostics: &mut Vec<Diagnostic>) -> Facts {
    check_with(p, symbols, diagnostics, None)
}

/// [`check`], reusing the checks of the steps that `cache` holds from the previous analysis
/// of the same program when nothing they depend on changed (and updating it). The result is
/// the same as [`check`]'s.
pub fn check_incremental(
    p: &Program<'_>,
    symbols: &mut Symbols,
    diagnostics: &mut Vec<Diagnostic>,
    cache: &mut CheckCache,
) -> Facts {
    check_with(p, symbols, diagnostics, Some(cache))
}

fn check_with(
    p: &Program<'_>,
    symbols: &mut Symbols,
    diagnostics: &mut Vec<Diagnostic>,
    cache: Option<&mut CheckCache>,
) -> Facts {
    let mut c = Checker {
        p,
        symbols,
        diagnostics,
        def_types: HashMap::new(),
        defaults: HashSet::new(),
        optional: HashSet::new(),
        step_ports: HashMap::new(),
        step_uses: HashMap::new(),
        service_models: HashMap::new(),
        agent_kinds: HashMap::new(),
        used: HashSet::new(),
        used_imports: HashSet::new(),
        used_ports: HashSet::new(),
        dependencies: HashMap::new(),
        cache,
    };
    c.declare_types();
    c.merge_ports();
    c.find_service_models();
    c.check_declarations();
    c.check_kube_names();
    c.lint();
    Facts {
        def_types: c.def_types,
        step_ports: c.step_ports,
        step_uses: c.step_uses,
        service_models: c.service_models,
        agent_kinds: c.agent_kinds,
        used: c.used,
        dependencies: c.dependencies,
    }
}

impl<'a> Checker<'a, '_> {
    fn report(&mut self, diagnostic: Diagnostic) {
        // Diagnostics inside the embedded stdlib would be our bug, not the user's; they are
        // still reported (with the stdlib's file) rather than hidden.
        self.diagnostics.push(diagnostic);
    }

    /// Resolves a written type. Reports unknown types (E0311).
    fn resolve_type(&mut self, ty: &TypeExpr, file: FileId) -> Ty {
        self.resolve_type_depth(ty, file, 0)
    }

    fn resolve_type_depth(&mut self, ty: &TypeExpr, file: FileId, depth: usize) -> Ty {
        let name = ty.name.name.as_str();
        if name == "list" {
            return match ty.args.as_slice() {
                [elem] => Ty::List(Box::new(self.resolve_type_depth(elem, file, depth + 1))),
                _ => {
                    self.report(
                        Diagnostic::new(
                            Code::E0311,
                            file,
                            ty.span,
                            "`list` needs exactly one element type",
                        )
                        .with_label("write `list<T>`")
                        .with_help("for example `list<string>`"),
                    );
                    Ty::Unknown
                }
            };
        }
        if let Some(builtin) = Ty::builtin(name) {
            if !ty.args.is_empty() {
                self.report(
                    Diagnostic::new(
                        Code::E0311,
                        file,
                        ty.span,
                        format!("`{name}` takes no type arguments"),
                    )
                    .with_label("unexpected `<…>`")
                    .with_help(format!("write `{name}`")),
                );
            }
            return builtin;
        }
        if let Some(&def) = self.p.types.get(name) {
            self.symbols.refer(file, ty.name.span, def);
            self.used.insert(def);
            if let Some(alias) = self.p.aliases.get(&def) {
                if depth > 16 {
                    self.report(
                        Diagnostic::new(
                            Code::E0311,
                            file,
                            ty.span,
                            format!("type alias `{name}` refers to itself"),
                        )
                        .with_label("recursive alias")
                        .with_help("an alias must end in a built-in type"),
                    );
                    return Ty::Unknown;
                }
                let (alias_ty, alias_file) = (&alias.ast.ty, alias.file);
                return self.resolve_type_depth(alias_ty, alias_file, depth + 1);
            }
            self.report(
                Diagnostic::new(
                    Code::E0311,
                    file,
                    ty.name.span,
                    format!("`{name}` is an agent kind, not a type"),
                )
                .with_label("agent kinds are instantiated with `agent NAME: KIND { … }`")
                .with_help("configs of an agent kind take value types such as `Service` or `int`"),
            );
            return Ty::Unknown;
        }
        let mut candidates: Vec<&str> = crate::resolve::BUILTIN_TYPES.to_vec();
        candidates.extend(self.p.aliases.values().map(|a| a.ast.name.name.as_str()));
        let mut d = Diagnostic::new(
            Code::E0311,
            file,
            ty.name.span,
            format!("unknown type `{name}`"),
        )
        .with_label("not a type");
        if let Some(best) = crate::resolve::suggest::closest(name, candidates) {
            d = d
                .with_help(format!("did you mean `{best}`?"))
                .with_suggestion(format!("replace with `{best}`"), file, ty.name.span, best);
        } else {
            d = d.with_help("the types are int, float, ratio, bool, string, duration, cpu, memory, Dataset, Model, File, Dir, Batch, Service, Workflow, Detector, LabelSource, Tracking, Objective, Search and list<T>");
        }
        self.report(d);
        Ty::Unknown
    }

    /// Gives every typed declaration its type: params, ports, configs, sensors, action and
    /// std parameters, std return types.
    fn declare_types(&mut self) {
        let p = self.p;
        for (&def, (param, _)) in &p.params {
            let ty = self.resolve_type(&param.ast.ty, param.file);
            self.def_types.insert(def, ty);
        }
        for step in p.steps.values() {
            for member in &step.node.ast.members {
                if let StepMember::Port(port) = member {
                    if let Some(&def) = step.ports.get(&port.name.name) {
                        if self.symbols.def(def).full_span == port.span {
                            let ty = self.resolve_type(&port.ty, step.node.file);
                            self.def_types.insert(def, ty);
                        }
                    }
                }
            }
        }
        for kind in p.kinds.values() {
            for member in &kind.node.ast.members {
                let Some(&def) = kind.members.get(&member.name().name) else {
                    continue;
                };
                if self.symbols.def(def).full_span != member_span(member) {
                    continue; // a duplicate member; the first one is kept
                }
                match member {
                    KindMember::Config(c) => {
                        let ty = self.resolve_type(&c.ty, kind.node.file);
                        self.def_types.insert(def, ty);
                        if c.default.is_some() {
                            self.defaults.insert(def);
                        }
                        if c.optional {
                            self.optional.insert(def);
                        }
                    }
                    KindMember::Sensor(s) => {
                        let ty = self.resolve_type(&s.ty, kind.node.file);
                        self.def_types.insert(def, ty);
                    }
                    KindMember::Action(a) => {
                        let ids = kind.action_params.get(&def).cloned().unwrap_or_default();
                        for (param, id) in a.params.iter().zip(ids) {
                            let ty = self.resolve_type(&param.ty, kind.node.file);
                            self.def_types.insert(id, ty);
                            if param.default.is_some() {
                                self.defaults.insert(id);
                            }
                        }
                    }
                }
            }
        }
        let mut externs: Vec<_> = p.externs.values().collect();
        externs.sort_by_key(|e| e.def);
        for ext in externs {
            let (params, ret, members) = match ext.item {
                Item::ExternFn(f) => (&f.params, Some(&f.ret), None),
                Item::ExternStep(s) => (&s.params, None, Some(&s.members)),
                _ => continue,
            };
            for (param, &id) in params.iter().zip(&ext.params) {
                let ty = self.resolve_type(&param.ty, ext.file);
                self.def_types.insert(id, ty);
                if param.default.is_some() {
                    self.defaults.insert(id);
                }
            }
            if let Some(ret) = ret {
                let ty = self.resolve_type(ret, ext.file);
                self.def_types.insert(ext.def, ty);
            }
            for member in members.into_iter().flatten() {
                if let StepMember::Port(port) = member {
                    if let Some(&id) = ext.ports.get(&port.name.name) {
                        let ty = self.resolve_type(&port.ty, ext.file);
                        self.def_types.insert(id, ty);
                    }
                }
            }
        }
    }

    /// The std step a step's `uses` names, resolved without reporting (the full check of
    /// the call happens with the step).
    fn uses_target(&self, step: &Step, file: FileId) -> Option<DefId> {
        let field = step.field("uses")?;
        let ExprKind::Call { callee, .. } = &field.value.kind else {
            return None;
        };
        let path = callee.as_path()?;
        let def = match path.as_slice() {
            [name] => self.p.values.get(&name.name).copied().or_else(|| {
                self.p
                    .imports
                    .get(&file)?
                    .iter()
                    .find(|i| i.name == name.name)
                    .map(|i| i.def)
            }),
            [module, item] => {
                let import = self
                    .p
                    .imports
                    .get(&file)?
                    .iter()
                    .find(|i| i.name == module.name)?;
                self.p
                    .modules
                    .values()
                    .find(|(def, _)| *def == import.def)?
                    .1
                    .get(&item.name)
                    .copied()
            }
            _ => None,
        }?;
        (self.symbols.def(def).kind == DefKind::ExternStep).then_some(def)
    }

    /// Computes each step's ports: the std step's, then the user's own (re-declarations of a
    /// std port must agree with it: E0310).
    fn merge_ports(&mut self) {
        let p = self.p;
        let mut steps: Vec<_> = p.steps.values().collect();
        steps.sort_by_key(|s| s.node.def);
        for step in steps {
            let file = step.node.file;
            let mut ports: Vec<PortInfo> = Vec::new();
            let target = self.uses_target(step.node.ast, file);
            if let Some(target) = target {
                self.step_uses.insert(step.node.def, target);
                if let Some(ext) = p.externs.get(&target) {
                    if let Item::ExternStep(decl) = ext.item {
                        for member in &decl.members {
                            if let StepMember::Port(port) = member {
                                if let Some(&def) = ext.ports.get(&port.name.name) {
                                    let ty =
                                        self.def_types.get(&def).cloned().unwrap_or(Ty::Unknown);
                                    ports.push(PortInfo {
                                        name: port.name.name.clone(),
                                        sort: port.sort,
                                        ty,
                                        def,
                                    });
                                }
                            }
                        }
                    }
                }
            }
            for member in &step.node.ast.members {
                let StepMember::Port(port) = member else {
                    continue;
                };
                let Some(&def) = step.ports.get(&port.name.name) else {
                    continue;
                };
                if self.symbols.def(def).full_span != port.span {
                    continue;
                }
                let ty = self.def_types.get(&def).cloned().unwrap_or(Ty::Unknown);
                if let Some(existing) = ports.iter_mut().find(|x| x.name == port.name.name) {
                    let target_name = target
                        .map(|t| self.symbols.def(t).name.clone())
                        .unwrap_or_default();
                    if existing.sort != port.sort
                        || !(ty.fits(&existing.ty) && existing.ty.fits(&ty))
                    {
                        let d = Diagnostic::new(
                            Code::E0310,
                            file,
                            port.span,
                            format!(
                                "`{target_name}` declares `{} {}: {}`; this re-declaration disagrees",
                                existing.sort.keyword(),
                                existing.name,
                                existing.ty
                            ),
                        )
                        .with_label(format!("declared here as `{} {}: {ty}`", port.sort.keyword(), port.name.name))
                        .with_secondary(self.symbols.def(existing.def).name_at.file, self.symbols.def(existing.def).name_at.span, "the std step's declaration")
                        .with_help(format!("write `{} {}: {}` or remove this line", existing.sort.keyword(), existing.name, existing.ty));
                        self.report(d);
                    } else {
                        existing.def = def;
                    }
                    continue;
                }
                if let Some(target) = target {
                    if port.sort != PortSort::Input {
                        let target_name = self.symbols.def(target).name.clone();
                        self.report(
                            Diagnostic::new(
                                Code::E0310,
                                file,
                                port.name.span,
                                format!("`{target_name}` has no {} `{}`", port.sort.keyword(), port.name.name),
                            )
                            .with_label(format!("not part of `{target_name}`"))
                            .with_help(format!("a step that `uses` a std step takes its outputs and metrics from it; see `{target_name}`'s declaration")),
                        );
                        continue;
                    }
                }
                ports.push(PortInfo {
                    name: port.name.name.clone(),
                    sort: port.sort,
                    ty,
                    def,
                });
            }
            // A std port that the user re-declared keeps the std port's type.
            self.step_ports.insert(step.node.def, ports);
        }
    }

    /// Which step produces each service's model (`model = training.fit.model`), resolved
    /// without reporting (the service check reports).
    fn find_service_models(&mut self) {
        for service in &self.p.services {
            let Some(field) = service.ast.field("model") else {
                continue;
            };
            let Some(path) = field.value.as_path() else {
                continue;
            };
            if let [workflow, step, _output] = path.as_slice() {
                let step = self
                    .p
                    .values
                    .get(&workflow.name)
                    .and_then(|&w| self.p.workflow(w))
                    .and_then(|w| w.step_names.get(&step.name).copied());
                if let Some(step) = step {
                    self.service_models.insert(service.def, step);
                }
            }
        }
    }

    /// The ports of a step (user or std). A user step's are borrowed: this runs for every
    /// member access and template of every step, on every edit in the language server.
    fn ports_of(&self, step: DefId) -> Cow<'_, [PortInfo]> {
        if let Some(ports) = self.step_ports.get(&step) {
            return Cow::Borrowed(ports);
        }
        // A std step: its own ports.
        self.p
            .externs
            .get(&step)
            .map(|e| {
                e.ports
                    .values()
                    .map(|&def| PortInfo {
                        name: self.symbols.def(def).name.clone(),
                        sort: match self.symbols.def(def).kind {
                            DefKind::Input => PortSort::Input,
                            DefKind::Output => PortSort::Output,
                            _ => PortSort::Metric,
                        },
                        ty: self.def_types.get(&def).cloned().unwrap_or(Ty::Unknown),
                        def,
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into()
    }

    /// The step producing the model a service serves.
    fn service_model_step(&self, service: DefId) -> Option<DefId> {
        self.service_models.get(&service).copied()
    }

    /// The step whose `Model` output is a workflow's model: the last one in source order.
    fn workflow_model_step(&self, workflow: DefId) -> Option<DefId> {
        let w = self.p.workflow(workflow)?;
        w.steps.iter().rev().copied().find(|s| {
            self.step_ports.get(s).is_some_and(|ports| {
                ports
                    .iter()
                    .any(|p| p.sort == PortSort::Output && matches!(p.ty, Ty::Model(_)))
            })
        })
    }

    /// The kind of an agent instance.
    fn agent_kind(&self, agent: DefId) -> Option<DefId> {
        self.agent_kinds.get(&agent).copied()
    }
}

fn member_span(member: &KindMember) -> crate::span::Span {
    match member {
        KindMember::Config(c) => c.span,
        KindMember::Sensor(s) => s.span,
        KindMember::Action(a) => a.span,
    }
}
