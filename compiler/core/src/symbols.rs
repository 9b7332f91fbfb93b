//! The symbol table: every declaration of a program and every reference to one.
//!
//! This is the semantic model the language server reads (hover, go to definition, find
//! references, rename, outline) and the lowering stage walks.
//!
//! Invariants:
//! - [`DefId`]s are dense indices into [`Symbols::defs`]; a child's `parent` is always defined
//!   before the child;
//! - every name the user wrote that resolved is recorded as a [`Reference`] (the declaration's
//!   own name is not a reference), so find-references and rename are complete.

use crate::span::{FileId, FileSpan, Span};

/// Identifies one declaration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DefId(pub u32);

/// What sort of thing a declaration declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DefKind {
    /// `app`
    App,
    /// `type NAME = …`
    TypeAlias,
    /// `workflow`
    Workflow,
    /// `param` of a workflow
    Param,
    /// `step` of a workflow
    Step,
    /// `input` of a step
    Input,
    /// `output` of a step
    Output,
    /// `metric` of a step
    Metric,
    /// `service`
    Service,
    /// `agent NAME: KIND`
    Agent,
    /// `agent kind NAME`
    AgentKind,
    /// `config` of an agent kind
    Config,
    /// `sensor` of an agent kind
    Sensor,
    /// `action` of an agent kind
    Action,
    /// A parameter of an action, extern fn or extern step.
    ParamSig,
    /// `trigger`
    Trigger,
    /// `policy`
    Policy,
    /// `extern fn` (stdlib)
    ExternFn,
    /// `extern step` (stdlib)
    ExternStep,
    /// A stdlib module (`std.torch`)
    Module,
}

impl DefKind {
    /// How users call this sort of declaration in messages ("step", "agent kind").
    pub fn describe(self) -> &'static str {
        match self {
            DefKind::App => "app",
            DefKind::TypeAlias => "type alias",
            DefKind::Workflow => "workflow",
            DefKind::Param => "param",
            DefKind::Step => "step",
            DefKind::Input => "input",
            DefKind::Output => "output",
            DefKind::Metric => "metric",
            DefKind::Service => "service",
            DefKind::Agent => "agent",
            DefKind::AgentKind => "agent kind",
            DefKind::Config => "config",
            DefKind::Sensor => "sensor",
            DefKind::Action => "action",
            DefKind::ParamSig => "parameter",
            DefKind::Trigger => "trigger",
            DefKind::Policy => "policy",
            DefKind::ExternFn => "std function",
            DefKind::ExternStep => "std step",
            DefKind::Module => "module",
        }
    }
}

/// One declaration.
#[derive(Clone, Debug, PartialEq)]
pub struct Def {
    /// What it declares.
    pub kind: DefKind,
    /// Its name.
    pub name: String,
    /// Where its name is written.
    pub name_at: FileSpan,
    /// The whole declaration.
    pub full_span: Span,
    /// Its doc comment, if any.
    pub doc: Option<String>,
    /// The enclosing declaration (a step's workflow, a sensor's kind, …).
    pub parent: Option<DefId>,
    /// A one-line signature for hover (`metric accuracy: ratio`, `fn ks(p_value: ratio = 0.05) -> Detector`).
    pub signature: String,
}

/// A resolved use of a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Where the name is written.
    pub at: FileSpan,
    /// What it refers to.
    pub def: DefId,
}

/// All declarations and references of a program.
#[derive(Clone, Debug, Default)]
pub struct Symbols {
    /// Indexed by `DefId.0`.
    pub defs: Vec<Def>,
    /// In the order they were resolved.
    pub references: Vec<Reference>,
}

impl Symbols {
    /// Records a declaration and returns its id.
    pub fn define(&mut self, def: Def) -> DefId {
        let id = DefId(self.defs.len() as u32);
        self.defs.push(def);
        id
    }

    /// Records a reference.
    pub fn refer(&mut self, file: FileId, span: Span, def: DefId) {
        self.references.push(Reference {
            at: FileSpan::new(file, span),
            def,
        });
    }

    /// The declaration `id`. Ids are only made by [`Symbols::define`].
    pub fn def(&self, id: DefId) -> &Def {
        &self.defs[id.0 as usize]
    }

    /// The declaration whose name, or a reference to which, covers `offset` in `file`.
    pub fn at(&self, file: FileId, offset: usize) -> Option<DefId> {
        let hit = |at: &FileSpan| at.file == file && at.span.contains(offset);
        self.references
            .iter()
            .find(|r| hit(&r.at))
            .map(|r| r.def)
            .or_else(|| {
                self.defs
                    .iter()
                    .position(|d| hit(&d.name_at))
                    .map(|i| DefId(i as u32))
            })
    }

    /// Every place `def` is named: its declaration first, then each reference.
    pub fn occurrences(&self, def: DefId) -> Vec<FileSpan> {
        let mut out = vec![self.def(def).name_at];
        out.extend(
            self.references
                .iter()
                .filter(|r| r.def == def)
                .map(|r| r.at),
        );
        out
    }

    /// The children of `parent`, in declaration order.
    pub fn children(&self, parent: DefId) -> impl Iterator<Item = (DefId, &Def)> {
        self.defs
            .iter()
            .enumerate()
            .filter(move |(_, d)| d.parent == Some(parent))
            .map(|(i, d)| (DefId(i as u32), d))
    }
}
