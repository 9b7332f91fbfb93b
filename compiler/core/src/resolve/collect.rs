//! Collection: give every declaration a [`DefId`], build the scopes, and report duplicates.
//!
//! Scoping rules (documented in docs/language.md):
//! - a program is the root file plus every file it imports; their declarations share one
//!   scope (like a package), whatever the file;
//! - `use std.…` imports are per file;
//! - the prelude's agent kinds and functions are visible everywhere;
//! - values (workflows, services, agents, triggers, policies, std functions and steps) and
//!   types (aliases, agent kinds) are separate namespaces.

use super::suggest;
use crate::diagnostics::{Code, Diagnostic};
use crate::sources::{Origin, Sources};
use crate::span::{FileId, FileSpan, Span};
use crate::stdlib;
use crate::symbols::{Def, DefId, DefKind, Symbols};
use crate::syntax::ast::*;
use crate::syntax::Parse;
use std::collections::{BTreeMap, HashMap};

/// A declaration together with its file and id.
#[derive(Debug)]
pub struct Node<'a, T> {
    /// The file it is in.
    pub file: FileId,
    /// Its id.
    pub def: DefId,
    /// Its syntax.
    pub ast: &'a T,
}

// Not derived: a derive would demand `T: Copy`, but only the reference is copied.
impl<T> Clone for Node<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Node<'_, T> {}

/// A workflow with the ids of its members.
#[derive(Clone, Debug)]
pub struct WorkflowNode<'a> {
    /// The workflow itself.
    pub node: Node<'a, Workflow>,
    /// Params by name.
    pub params: BTreeMap<String, DefId>,
    /// Steps in source order.
    pub steps: Vec<DefId>,
    /// Steps by name.
    pub step_names: BTreeMap<String, DefId>,
}

/// A step with its workflow.
#[derive(Clone, Debug)]
pub struct StepNode<'a> {
    /// The step itself.
    pub node: Node<'a, Step>,
    /// Its workflow.
    pub workflow: DefId,
    /// Its own declared ports by name (the std step's ports are merged in by the checker).
    pub ports: BTreeMap<String, DefId>,
}

/// An agent kind with its members.
#[derive(Clone, Debug)]
pub struct KindNode<'a> {
    /// The kind itself.
    pub node: Node<'a, AgentKind>,
    /// Members by name.
    pub members: BTreeMap<String, DefId>,
    /// Each action's parameters, in order.
    pub action_params: HashMap<DefId, Vec<DefId>>,
}

/// A std function or step with its parameters.
#[derive(Clone, Debug)]
pub struct ExternNode<'a> {
    /// The file it is in.
    pub file: FileId,
    /// Its id.
    pub def: DefId,
    /// `extern fn` or `extern step`.
    pub item: &'a Item,
    /// Its parameters in order.
    pub params: Vec<DefId>,
    /// For `extern step`: its ports by name.
    pub ports: BTreeMap<String, DefId>,
}

/// A `use std…` binding in one file.
#[derive(Clone, Debug)]
pub struct Import {
    /// The name it binds.
    pub name: String,
    /// What it binds.
    pub def: DefId,
    /// Where the imported name is written.
    pub span: Span,
    /// The whole `use` declaration it comes from.
    pub use_span: Span,
}

/// The whole program, indexed.
#[derive(Debug)]
pub struct Program<'a> {
    /// All source files.
    pub sources: &'a Sources,
    /// The prelude file.
    pub prelude: FileId,
    /// The first `app` declaration.
    pub app: Option<Node<'a, App>>,
    /// The user's value namespace.
    pub values: BTreeMap<String, DefId>,
    /// Type names: user aliases and kinds, and the prelude's kinds.
    pub types: BTreeMap<String, DefId>,
    /// The prelude's std functions (`maximize`, `tpe`, …): in scope in every file, after the
    /// user's values and the file's imports (so a user declaration may shadow one).
    pub prelude_values: BTreeMap<String, DefId>,
    /// Per-file std imports.
    pub imports: HashMap<FileId, Vec<Import>>,
    /// Std modules by name (`torch`), with their items.
    pub modules: BTreeMap<String, (DefId, BTreeMap<String, DefId>)>,
    /// Workflows in source order.
    pub workflows: Vec<WorkflowNode<'a>>,
    /// Steps by id.
    pub steps: HashMap<DefId, StepNode<'a>>,
    /// Params by id, with their workflow.
    pub params: HashMap<DefId, (Node<'a, Param>, DefId)>,
    /// Services in source order.
    pub services: Vec<Node<'a, Service>>,
    /// Agents in source order.
    pub agents: Vec<Node<'a, Agent>>,
    /// Agent kinds by id.
    pub kinds: HashMap<DefId, KindNode<'a>>,
    /// Triggers in source order.
    pub triggers: Vec<Node<'a, Trigger>>,
    /// Policies in source order.
    pub policies: Vec<Node<'a, Policy>>,
    /// Type aliases by id.
    pub aliases: HashMap<DefId, Node<'a, TypeAlias>>,
    /// Std functions and steps by id.
    pub externs: HashMap<DefId, ExternNode<'a>>,
    /// The parse of each file, to know where syntax errors are.
    pub parses: &'a [Parse],
    /// Names a file tried to import but that do not exist: already reported (E0103), so
    /// their uses are not reported again as unknown.
    pub failed_imports: HashMap<FileId, Vec<String>>,
}

impl<'a> Program<'a> {
    /// The workflow with id `def`.
    pub fn workflow(&self, def: DefId) -> Option<&WorkflowNode<'a>> {
        self.workflows.iter().find(|w| w.node.def == def)
    }

    /// The service with id `def`.
    pub fn service(&self, def: DefId) -> Option<&Node<'a, Service>> {
        self.services.iter().find(|s| s.def == def)
    }

    /// The agent with id `def`.
    pub fn agent(&self, def: DefId) -> Option<&Node<'a, Agent>> {
        self.agents.iter().find(|a| a.def == def)
    }

    /// Whether `file` is a user file (not the stdlib).
    pub fn is_user_file(&self, file: FileId) -> bool {
        self.sources.get(file).origin == Origin::User
    }

    /// Whether a syntax error lies within `span` of `file`: checks of completeness and of
    /// literal values there would only repeat it.
    pub fn has_syntax_error(&self, file: FileId, span: Span) -> bool {
        self.parses
            .get(file.0 as usize)
            .is_some_and(|p| p.has_error_within(span))
    }

    /// Whether `name` is an import of `file` that failed (and was reported).
    pub fn is_failed_import(&self, file: FileId, name: &str) -> bool {
        self.failed_imports
            .get(&file)
            .is_some_and(|names| names.iter().any(|n| n == name))
    }
}

/// Collects every declaration of the parsed files.
pub fn collect<'a>(
    sources: &'a Sources,
    parses: &'a [Parse],
    prelude: FileId,
    symbols: &mut Symbols,
    diagnostics: &mut Vec<Diagnostic>,
) -> Program<'a> {
    let mut c = Collector {
        program: Program {
            sources,
            prelude,
            app: None,
            values: BTreeMap::new(),
            types: BTreeMap::new(),
            prelude_values: BTreeMap::new(),
            imports: HashMap::new(),
            modules: BTreeMap::new(),
            workflows: Vec::new(),
            steps: HashMap::new(),
            params: HashMap::new(),
            services: Vec::new(),
            agents: Vec::new(),
            kinds: HashMap::new(),
            triggers: Vec::new(),
            policies: Vec::new(),
            aliases: HashMap::new(),
            externs: HashMap::new(),
            parses,
            failed_imports: HashMap::new(),
        },
        symbols,
        diagnostics,
        value_spans: HashMap::new(),
        type_spans: HashMap::new(),
    };
    // Std modules first, so user imports can be resolved against them.
    for (index, parse) in parses.iter().enumerate() {
        let file = FileId(index as u32);
        if let Origin::Std(name) = sources.get(file).origin {
            c.collect_std_module(file, name, &parse.file);
        }
    }
    for (index, parse) in parses.iter().enumerate() {
        let file = FileId(index as u32);
        if sources.get(file).origin == Origin::User {
            c.collect_user_file(file, &parse.file);
        }
    }
    for (index, parse) in parses.iter().enumerate() {
        let file = FileId(index as u32);
        if sources.get(file).origin == Origin::User {
            c.collect_imports(file, &parse.file);
        }
    }
    if c.program.app.is_none() {
        if let Some(root) = parses.first() {
            // Only a program whose root parsed at all gets this error: an empty buffer in an
            // editor is not worth shouting about until it has a declaration.
            let at = root
                .file
                .items
                .first()
                .map_or(Span::point(0), |i| Span::point(i.span().start()));
            c.diagnostics.push(
                Diagnostic::new(
                    Code::E0105,
                    FileId(0),
                    at,
                    "this program has no `app` declaration",
                )
                .with_label("expected `app NAME { … }` somewhere in the program")
                .with_help("add one, e.g. `app my_app { namespace = \"my-app\" }`"),
            );
        }
    }
    c.program
}

struct Collector<'a, 's> {
    program: Program<'a>,
    symbols: &'s mut Symbols,
    diagnostics: &'s mut Vec<Diagnostic>,
    value_spans: HashMap<String, FileSpan>,
    type_spans: HashMap<String, FileSpan>,
}

/// Documentation of a declaration, as plain text.
fn doc_text(doc: &Option<Doc>) -> Option<String> {
    doc.as_ref().map(|d| d.text.clone())
}

impl<'a> Collector<'a, '_> {
    fn source(&self, file: FileId) -> &'a str {
        &self.program.sources.get(file).text
    }

    fn define(
        &mut self,
        kind: DefKind,
        file: FileId,
        name: &Ident,
        full_span: Span,
        doc: Option<String>,
        parent: Option<DefId>,
    ) -> DefId {
        let signature = signature_of(kind, full_span.text(self.source(file)));
        self.symbols.define(Def {
            kind,
            name: name.name.clone(),
            name_at: FileSpan::new(file, name.span),
            full_span,
            doc,
            parent,
            signature,
        })
    }

    /// Adds `name` to a namespace map, reporting E0102 if it is taken.
    fn bind(
        diagnostics: &mut Vec<Diagnostic>,
        map: &mut BTreeMap<String, DefId>,
        spans: &mut HashMap<String, FileSpan>,
        file: FileId,
        name: &Ident,
        def: DefId,
        what: impl std::fmt::Display,
    ) {
        if let Some(previous) = spans.get(&name.name) {
            diagnostics.push(
                Diagnostic::new(
                    Code::E0102,
                    file,
                    name.span,
                    format!("`{}` is declared twice {what}", name.name),
                )
                .with_label("second declaration")
                .with_secondary(previous.file, previous.span, "first declared here")
                .with_help("rename one of them: names must be unique in their scope"),
            );
            return;
        }
        spans.insert(name.name.clone(), FileSpan::new(file, name.span));
        map.insert(name.name.clone(), def);
    }

    fn collect_std_module(&mut self, file: FileId, name: &'static str, ast: &'a SourceFile) {
        let mut items = BTreeMap::new();
        let module_ident = Ident {
            name: name.to_string(),
            span: Span::point(0),
        };
        let module_def = if name == "prelude" {
            None
        } else {
            Some(self.define(DefKind::Module, file, &module_ident, ast.span, None, None))
        };
        for item in &ast.items {
            match item {
                Item::AgentKind(kind) => {
                    let def = self.collect_kind(file, kind);
                    self.program.types.insert(kind.name.name.clone(), def);
                    self.type_spans
                        .insert(kind.name.name.clone(), FileSpan::new(file, kind.name.span));
                }
                Item::ExternFn(_) | Item::ExternStep(_) => {
                    if let (Some(def), Some(n)) =
                        (self.collect_extern(file, item, module_def), item.name())
                    {
                        items.insert(n.name.clone(), def);
                    }
                }
                _ => {}
            }
        }
        match module_def {
            Some(def) => {
                self.program.modules.insert(name.to_string(), (def, items));
            }
            None => self.program.prelude_values = items,
        }
    }

    fn collect_extern(
        &mut self,
        file: FileId,
        item: &'a Item,
        parent: Option<DefId>,
    ) -> Option<DefId> {
        let (name, params, members, kind, doc): (
            &Ident,
            &[ParamSig],
            &[StepMember],
            DefKind,
            &Option<Doc>,
        ) = match item {
            Item::ExternStep(s) => (&s.name, &s.params, &s.members, DefKind::ExternStep, &s.doc),
            Item::ExternFn(f) => (&f.name, &f.params, &[], DefKind::ExternFn, &f.doc),
            _ => return None,
        };
        let def = self.define(kind, file, name, item.span(), doc_text(doc), parent);
        let mut param_ids = Vec::new();
        let mut seen = BTreeMap::new();
        let mut seen_spans = HashMap::new();
        for p in params {
            let id = self.define(DefKind::ParamSig, file, &p.name, p.span, None, Some(def));
            Self::bind(
                self.diagnostics,
                &mut seen,
                &mut seen_spans,
                file,
                &p.name,
                id,
                "in this parameter list",
            );
            param_ids.push(id);
        }
        let mut ports = BTreeMap::new();
        for member in members {
            if let StepMember::Port(port) = member {
                let id = self.define(
                    port_kind(port.sort),
                    file,
                    &port.name,
                    port.span,
                    doc_text(&port.doc),
                    Some(def),
                );
                Self::bind(
                    self.diagnostics,
                    &mut ports,
                    &mut seen_spans,
                    file,
                    &port.name,
                    id,
                    "in this step",
                );
            }
        }
        self.program.externs.insert(
            def,
            ExternNode {
                file,
                def,
                item,
                params: param_ids,
                ports,
            },
        );
        Some(def)
    }

    fn collect_kind(&mut self, file: FileId, kind: &'a AgentKind) -> DefId {
        let def = self.define(
            DefKind::AgentKind,
            file,
            &kind.name,
            kind.span,
            doc_text(&kind.doc),
            None,
        );
        let mut members = BTreeMap::new();
        let mut spans = HashMap::new();
        let mut action_params = HashMap::new();
        for member in &kind.members {
            let (k, span, doc) = match member {
                KindMember::Config(c) => (DefKind::Config, c.span, doc_text(&c.doc)),
                KindMember::Sensor(s) => (DefKind::Sensor, s.span, doc_text(&s.doc)),
                KindMember::Action(a) => (DefKind::Action, a.span, doc_text(&a.doc)),
            };
            let id = self.define(k, file, member.name(), span, doc, Some(def));
            Self::bind(
                self.diagnostics,
                &mut members,
                &mut spans,
                file,
                member.name(),
                id,
                format_args!("in agent kind `{}`", kind.name.name),
            );
            if let KindMember::Action(action) = member {
                let mut ids = Vec::new();
                let mut seen = BTreeMap::new();
                let mut seen_spans = HashMap::new();
                for p in &action.params {
                    let pid = self.define(DefKind::ParamSig, file, &p.name, p.span, None, Some(id));
                    Self::bind(
                        self.diagnostics,
                        &mut seen,
                        &mut seen_spans,
                        file,
                        &p.name,
                        pid,
                        "in this parameter list",
                    );
                    ids.push(pid);
                }
                action_params.insert(id, ids);
            }
        }
        self.program.kinds.insert(
            def,
            KindNode {
                node: Node {
                    file,
                    def,
                    ast: kind,
                },
                members,
                action_params,
            },
        );
        def
    }

    fn collect_user_file(&mut self, file: FileId, ast: &'a SourceFile) {
        for item in &ast.items {
            match item {
                Item::App(app) => {
                    let def = self.define(
                        DefKind::App,
                        file,
                        &app.name,
                        app.span,
                        doc_text(&app.doc),
                        None,
                    );
                    match &self.program.app {
                        None => {
                            self.program.app = Some(Node {
                                file,
                                def,
                                ast: app,
                            })
                        }
                        Some(first) => {
                            let first_at = self.symbols.def(first.def).name_at;
                            self.diagnostics.push(
                                Diagnostic::new(
                                    Code::E0106,
                                    file,
                                    app.name.span,
                                    "a program has exactly one `app`",
                                )
                                .with_label("second `app`")
                                .with_secondary(
                                    first_at.file,
                                    first_at.span,
                                    "the first `app` is here",
                                )
                                .with_help("merge the two `app` blocks into one"),
                            );
                        }
                    }
                }
                Item::Use(_) => {}
                Item::TypeAlias(alias) => {
                    let def = self.define(
                        DefKind::TypeAlias,
                        file,
                        &alias.name,
                        alias.span,
                        doc_text(&alias.doc),
                        None,
                    );
                    self.bind_type(file, &alias.name, def);
                    self.program.aliases.insert(
                        def,
                        Node {
                            file,
                            def,
                            ast: alias,
                        },
                    );
                }
                Item::Workflow(workflow) => self.collect_workflow(file, workflow),
                Item::Service(service) => {
                    let def = self.define_value(DefKind::Service, file, item);
                    self.program.services.push(Node {
                        file,
                        def,
                        ast: service,
                    });
                }
                Item::Agent(agent) => {
                    let def = self.define_value(DefKind::Agent, file, item);
                    self.program.agents.push(Node {
                        file,
                        def,
                        ast: agent,
                    });
                }
                Item::AgentKind(kind) => {
                    let def = self.collect_kind(file, kind);
                    self.bind_type(file, &kind.name, def);
                }
                Item::Trigger(trigger) => {
                    let def = self.define_value(DefKind::Trigger, file, item);
                    self.program.triggers.push(Node {
                        file,
                        def,
                        ast: trigger,
                    });
                }
                Item::Policy(policy) => {
                    let def = self.define_value(DefKind::Policy, file, item);
                    self.program.policies.push(Node {
                        file,
                        def,
                        ast: policy,
                    });
                }
                Item::ExternFn(_) | Item::ExternStep(_) => {
                    let keyword = item.keyword();
                    let at = Span::new(item.span().start(), item.span().start() + keyword.len());
                    self.diagnostics.push(
                        Diagnostic::new(Code::E0107, file, at, format!("`{keyword}` declarations are only allowed in the standard library"))
                            .with_label("not allowed in a user program")
                            .with_help("declare a `workflow` with `image` and `run` steps, or an `agent kind`, instead"),
                    );
                }
            }
        }
    }

    /// Defines a top-level item of the value namespace and binds its name.
    fn define_value(&mut self, kind: DefKind, file: FileId, item: &Item) -> DefId {
        let name = item.name().cloned().unwrap_or(Ident {
            name: String::new(),
            span: item.span(),
        });
        let def = self.define(
            kind,
            file,
            &name,
            item.span(),
            item.doc().map(|d| d.text.clone()),
            None,
        );
        self.bind_value(file, &name, def);
        def
    }

    fn bind_value(&mut self, file: FileId, name: &Ident, def: DefId) {
        Self::bind(
            self.diagnostics,
            &mut self.program.values,
            &mut self.value_spans,
            file,
            name,
            def,
            "in this program",
        );
    }

    fn bind_type(&mut self, file: FileId, name: &Ident, def: DefId) {
        if super::BUILTIN_TYPES.contains(&name.name.as_str()) {
            self.diagnostics.push(
                Diagnostic::new(
                    Code::E0102,
                    file,
                    name.span,
                    format!("`{}` is a built-in type", name.name),
                )
                .with_label("this name is taken by the language")
                .with_help("choose another name for the type"),
            );
            return;
        }
        Self::bind(
            self.diagnostics,
            &mut self.program.types,
            &mut self.type_spans,
            file,
            name,
            def,
            "as a type",
        );
    }

    fn collect_workflow(&mut self, file: FileId, workflow: &'a Workflow) {
        let wf = self.define(
            DefKind::Workflow,
            file,
            &workflow.name,
            workflow.span,
            doc_text(&workflow.doc),
            None,
        );
        self.bind_value(file, &workflow.name, wf);
        let mut names = BTreeMap::new();
        let mut spans = HashMap::new();
        let mut params = BTreeMap::new();
        let mut steps = Vec::new();
        let mut step_names = BTreeMap::new();
        let scope = format!("in workflow `{}`", workflow.name.name);
        for member in &workflow.members {
            match member {
                WorkflowMember::Param(param) => {
                    let def = self.define(
                        DefKind::Param,
                        file,
                        &param.name,
                        param.span,
                        doc_text(&param.doc),
                        Some(wf),
                    );
                    Self::bind(
                        self.diagnostics,
                        &mut names,
                        &mut spans,
                        file,
                        &param.name,
                        def,
                        &scope,
                    );
                    params.insert(param.name.name.clone(), def);
                    self.program.params.insert(
                        def,
                        (
                            Node {
                                file,
                                def,
                                ast: param,
                            },
                            wf,
                        ),
                    );
                }
                WorkflowMember::Step(step) => {
                    let def = self.define(
                        DefKind::Step,
                        file,
                        &step.name,
                        step.span,
                        doc_text(&step.doc),
                        Some(wf),
                    );
                    Self::bind(
                        self.diagnostics,
                        &mut names,
                        &mut spans,
                        file,
                        &step.name,
                        def,
                        &scope,
                    );
                    step_names.insert(step.name.name.clone(), def);
                    steps.push(def);
                    let mut ports = BTreeMap::new();
                    let mut port_spans = HashMap::new();
                    for member in &step.members {
                        if let StepMember::Port(port) = member {
                            let id = self.define(
                                port_kind(port.sort),
                                file,
                                &port.name,
                                port.span,
                                doc_text(&port.doc),
                                Some(def),
                            );
                            Self::bind(
                                self.diagnostics,
                                &mut ports,
                                &mut port_spans,
                                file,
                                &port.name,
                                id,
                                format_args!("in step `{}`", step.name.name),
                            );
                        }
                    }
                    self.program.steps.insert(
                        def,
                        StepNode {
                            node: Node {
                                file,
                                def,
                                ast: step,
                            },
                            workflow: wf,
                            ports,
                        },
                    );
                }
            }
        }
        self.program.workflows.push(WorkflowNode {
            node: Node {
                file,
                def: wf,
                ast: workflow,
            },
            params,
            steps,
            step_names,
        });
    }

    fn collect_imports(&mut self, file: FileId, ast: &'a SourceFile) {
        let mut bound: Vec<Import> = Vec::new();
        for item in &ast.items {
            let Item::Use(use_) = item else { continue };
            let UseTarget::Path { path, items } = &use_.target else {
                continue;
            };
            let Some(first) = path.first() else { continue };
            if first.name != "std" {
                let mut d = Diagnostic::new(
                    Code::E0103,
                    file,
                    first.span,
                    format!("`{}` is not a module", first.name),
                )
                .with_label("imports start with `std.` or are a quoted file path")
                .with_help("write `use std.MODULE.ITEM` or `use \"./file.sflow\"`");
                if path.len() == 1 {
                    d = d.with_suggestion(
                        "import a file instead",
                        file,
                        first.span,
                        format!("\"./{}.sflow\"", first.name),
                    );
                }
                self.diagnostics.push(d);
                continue;
            }
            let Some(module_ident) = path.get(1) else {
                self.diagnostics.push(
                    Diagnostic::new(Code::E0103, file, first.span, "`use std` needs a module")
                        .with_label("which module?")
                        .with_help(format!("the modules are: {}", module_list())),
                );
                continue;
            };
            let Some((module_def, module_items)) =
                self.program.modules.get(&module_ident.name).cloned()
            else {
                let failed = self.program.failed_imports.entry(file).or_default();
                match items {
                    Some(list) => failed.extend(list.iter().map(|i| i.name.clone())),
                    None => failed.push(path.last().map_or_else(String::new, |i| i.name.clone())),
                }
                let candidates: Vec<&str> = stdlib::MODULES.iter().map(|m| m.name).collect();
                let mut d = Diagnostic::new(
                    Code::E0103,
                    file,
                    module_ident.span,
                    format!("there is no module `std.{}`", module_ident.name),
                )
                .with_label("unknown module");
                if let Some(best) = suggest::closest(&module_ident.name, candidates.iter().copied())
                {
                    d = d
                        .with_help(format!("did you mean `std.{best}`?"))
                        .with_suggestion(
                            format!("replace with `{best}`"),
                            file,
                            module_ident.span,
                            best,
                        );
                } else {
                    d = d.with_help(format!("the modules are: {}", module_list()));
                }
                self.diagnostics.push(d);
                continue;
            };
            self.symbols.refer(file, module_ident.span, module_def);
            let mut wanted: Vec<&Ident> = Vec::new();
            match (path.get(2), items) {
                (None, None) => {
                    bound.push(Import {
                        name: module_ident.name.clone(),
                        def: module_def,
                        span: module_ident.span,
                        use_span: use_.span,
                    });
                }
                (Some(item), None) if path.len() == 3 => wanted.push(item),
                (None, Some(list)) => wanted.extend(list.iter()),
                _ => {
                    let extra = path.get(2).map_or(module_ident.span, |i| i.span);
                    self.diagnostics.push(
                        Diagnostic::new(
                            Code::E0103,
                            file,
                            extra,
                            "std modules have no sub-modules",
                        )
                        .with_label("unexpected path segment")
                        .with_help(format!(
                            "write `use std.{}.ITEM` or `use std.{}.{{A, B}}`",
                            module_ident.name, module_ident.name
                        )),
                    );
                }
            }
            for ident in wanted {
                match module_items.get(&ident.name) {
                    Some(&def) => {
                        self.symbols.refer(file, ident.span, def);
                        if let Some(previous) = bound.iter().find(|b| b.name == ident.name) {
                            self.diagnostics.push(
                                Diagnostic::new(
                                    Code::E0102,
                                    file,
                                    ident.span,
                                    format!("`{}` is imported twice", ident.name),
                                )
                                .with_label("second import")
                                .with_secondary(file, previous.span, "first imported here")
                                .with_help("remove one of the imports"),
                            );
                            continue;
                        }
                        if let Some(user) = self.value_spans.get(&ident.name) {
                            self.diagnostics.push(
                                Diagnostic::new(
                                    Code::E0102,
                                    file,
                                    ident.span,
                                    format!("`{}` is imported and also declared", ident.name),
                                )
                                .with_label("imported here")
                                .with_secondary(user.file, user.span, "declared here")
                                .with_help("rename the declaration or drop the import"),
                            );
                            continue;
                        }
                        bound.push(Import {
                            name: ident.name.clone(),
                            def,
                            span: ident.span,
                            use_span: use_.span,
                        });
                    }
                    None => {
                        self.program
                            .failed_imports
                            .entry(file)
                            .or_default()
                            .push(ident.name.clone());
                        let mut d = Diagnostic::new(
                            Code::E0103,
                            file,
                            ident.span,
                            format!(
                                "module `std.{}` has no item `{}`",
                                module_ident.name, ident.name
                            ),
                        )
                        .with_label("unknown item");
                        if let Some(best) =
                            suggest::closest(&ident.name, module_items.keys().map(String::as_str))
                        {
                            d = d
                                .with_help(format!("did you mean `{best}`?"))
                                .with_suggestion(
                                    format!("replace with `{best}`"),
                                    file,
                                    ident.span,
                                    best,
                                );
                        } else {
                            let names: Vec<String> =
                                module_items.keys().map(|k| format!("`{k}`")).collect();
                            d = d.with_help(format!(
                                "`std.{}` declares {}",
                                module_ident.name,
                                names.join(", ")
                            ));
                        }
                        self.diagnostics.push(d);
                    }
                }
            }
        }
        self.program.imports.insert(file, bound);
    }
}

fn module_list() -> String {
    stdlib::MODULES
        .iter()
        .map(|m| format!("`std.{}`", m.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The symbol kind of a port.
pub fn port_kind(sort: PortSort) -> DefKind {
    match sort {
        PortSort::Input => DefKind::Input,
        PortSort::Output => DefKind::Output,
        PortSort::Metric => DefKind::Metric,
    }
}

/// A one-line signature for hover: the first line of the declaration, without a trailing `{`.
fn signature_of(kind: DefKind, text: &str) -> String {
    let first = text.lines().next().unwrap_or("").trim();
    let first = first.trim_end_matches('{').trim_end();
    let first = match kind {
        DefKind::ParamSig => first.trim_end_matches(','),
        _ => first,
    };
    // Alignment padding (`param lr:     float`) is layout, not signature. Written without
    // an intermediate list: this runs for every declaration on every edit.
    let mut out = String::with_capacity(first.len());
    for word in first.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}
