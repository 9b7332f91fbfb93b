//! The untyped syntax tree of one `.sflow` file.
//!
//! Invariants:
//! - every node carries the byte [`Span`] of the source text it was parsed from, so every later
//!   stage can point a diagnostic at the user's own characters;
//! - the tree owns its data (no borrowed strings, no pest types), so the parser could be
//!   replaced without touching any later stage;
//! - member lists keep source order (the formatter and the outline rely on it); use the helper
//!   iterators to pick out members of one sort.

use crate::span::Span;

/// A name as written in the source, with its span.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ident {
    /// The identifier text.
    pub name: String,
    /// Where it was written.
    pub span: Span,
}

/// A doc comment (`/// …` lines) attached to the declaration that follows it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Doc {
    /// The comment text with the `///` markers and one leading space per line removed.
    pub text: String,
    /// The span of all the doc lines together.
    pub span: Span,
}

/// One parsed file: its declarations in source order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SourceFile {
    /// Top-level declarations, in source order. Declarations that failed to parse are absent.
    pub items: Vec<Item>,
    /// The whole file.
    pub span: Span,
}

/// A top-level declaration.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// `app NAME { … }`
    App(App),
    /// `use …`
    Use(Use),
    /// `type NAME = TYPE`
    TypeAlias(TypeAlias),
    /// `workflow NAME { … }`
    Workflow(Workflow),
    /// `service NAME { … }`
    Service(Service),
    /// `agent NAME: KIND { … }`
    Agent(Agent),
    /// `agent kind NAME { … }`
    AgentKind(AgentKind),
    /// `trigger NAME: SOURCE -> ACTION`
    Trigger(Trigger),
    /// `policy NAME { … }`
    Policy(Policy),
    /// `extern fn NAME(…) -> TYPE` (standard library only)
    ExternFn(ExternFn),
    /// `extern step NAME(…) { … }` (standard library only)
    ExternStep(ExternStep),
}

impl Item {
    /// The span of the whole declaration.
    pub fn span(&self) -> Span {
        match self {
            Item::App(x) => x.span,
            Item::Use(x) => x.span,
            Item::TypeAlias(x) => x.span,
            Item::Workflow(x) => x.span,
            Item::Service(x) => x.span,
            Item::Agent(x) => x.span,
            Item::AgentKind(x) => x.span,
            Item::Trigger(x) => x.span,
            Item::Policy(x) => x.span,
            Item::ExternFn(x) => x.span,
            Item::ExternStep(x) => x.span,
        }
    }

    /// The declared name, if the item declares one (`use` does not).
    pub fn name(&self) -> Option<&Ident> {
        match self {
            Item::App(x) => Some(&x.name),
            Item::Use(_) => None,
            Item::TypeAlias(x) => Some(&x.name),
            Item::Workflow(x) => Some(&x.name),
            Item::Service(x) => Some(&x.name),
            Item::Agent(x) => Some(&x.name),
            Item::AgentKind(x) => Some(&x.name),
            Item::Trigger(x) => Some(&x.name),
            Item::Policy(x) => Some(&x.name),
            Item::ExternFn(x) => Some(&x.name),
            Item::ExternStep(x) => Some(&x.name),
        }
    }

    /// The doc comment, if any.
    pub fn doc(&self) -> Option<&Doc> {
        match self {
            Item::App(x) => x.doc.as_ref(),
            Item::Use(_) => None,
            Item::TypeAlias(x) => x.doc.as_ref(),
            Item::Workflow(x) => x.doc.as_ref(),
            Item::Service(x) => x.doc.as_ref(),
            Item::Agent(x) => x.doc.as_ref(),
            Item::AgentKind(x) => x.doc.as_ref(),
            Item::Trigger(x) => x.doc.as_ref(),
            Item::Policy(x) => x.doc.as_ref(),
            Item::ExternFn(x) => x.doc.as_ref(),
            Item::ExternStep(x) => x.doc.as_ref(),
        }
    }

    /// The keyword(s) that introduce this sort of declaration, as a user reads them.
    pub fn keyword(&self) -> &'static str {
        match self {
            Item::App(_) => "app",
            Item::Use(_) => "use",
            Item::TypeAlias(_) => "type",
            Item::Workflow(_) => "workflow",
            Item::Service(_) => "service",
            Item::Agent(_) => "agent",
            Item::AgentKind(_) => "agent kind",
            Item::Trigger(_) => "trigger",
            Item::Policy(_) => "policy",
            Item::ExternFn(_) => "extern fn",
            Item::ExternStep(_) => "extern step",
        }
    }
}

/// `NAME = EXPR`, the generic field of `app`, steps, services, agents, records and `with`.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The field name (may be a keyword such as `run`: field names are contextual).
    pub name: Ident,
    /// The value.
    pub value: Expr,
    /// `name = value`.
    pub span: Span,
}

/// `app NAME { field = expr … }`
#[derive(Clone, Debug, PartialEq)]
pub struct App {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// The app name.
    pub name: Ident,
    /// Its fields (`namespace`, `registry`, `labels`, …).
    pub fields: Vec<Field>,
    /// The whole declaration.
    pub span: Span,
}

/// `use std.a.b`, `use std.a.{x, y}` or `use "./other.sflow"`.
#[derive(Clone, Debug, PartialEq)]
pub struct Use {
    /// What is imported.
    pub target: UseTarget,
    /// The whole declaration.
    pub span: Span,
}

/// The target of a `use`.
#[derive(Clone, Debug, PartialEq)]
pub enum UseTarget {
    /// A dotted path into the standard library, optionally with a braced list of items:
    /// `std.data.mnist` has `path = [std, data, mnist]`, `items = None`;
    /// `std.torch.{a, b}` has `path = [std, torch]`, `items = Some([a, b])`.
    Path {
        /// The dotted segments, starting with `std`.
        path: Vec<Ident>,
        /// The braced item list, if any.
        items: Option<Vec<Ident>>,
    },
    /// A relative file path.
    File(StringLit),
}

/// `type NAME = TYPE`
#[derive(Clone, Debug, PartialEq)]
pub struct TypeAlias {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// The alias name.
    pub name: Ident,
    /// The aliased type.
    pub ty: TypeExpr,
    /// The whole declaration.
    pub span: Span,
}

/// A type as written: `int`, `Model`, `list<Batch>`, or an alias name.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeExpr {
    /// The type constructor's name.
    pub name: Ident,
    /// Type arguments (`list<T>` has one).
    pub args: Vec<TypeExpr>,
    /// The whole type expression.
    pub span: Span,
}

/// `workflow NAME { param …; step … }`
#[derive(Clone, Debug, PartialEq)]
pub struct Workflow {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// The workflow name.
    pub name: Ident,
    /// Params and steps in source order.
    pub members: Vec<WorkflowMember>,
    /// The whole declaration.
    pub span: Span,
}

impl Workflow {
    /// The params, in source order.
    pub fn params(&self) -> impl Iterator<Item = &Param> {
        self.members.iter().filter_map(|m| match m {
            WorkflowMember::Param(p) => Some(p),
            WorkflowMember::Step(_) => None,
        })
    }

    /// The steps, in source order.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.members.iter().filter_map(|m| match m {
            WorkflowMember::Step(s) => Some(s),
            WorkflowMember::Param(_) => None,
        })
    }
}

/// A member of a workflow.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkflowMember {
    /// `param NAME: TYPE [= DEFAULT] [in SPACE]`
    Param(Param),
    /// `step NAME { … }`
    Step(Step),
}

/// `param NAME: TYPE [= DEFAULT] [in SPACE]`
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// The param name.
    pub name: Ident,
    /// Its declared type.
    pub ty: TypeExpr,
    /// The default value, if any.
    pub default: Option<Expr>,
    /// The search space for tuning (`in 1..10`, `in log(1e-4, 1e-1)`, `in ["a", "b"]`), if any.
    pub space: Option<Expr>,
    /// The whole declaration.
    pub span: Span,
}

/// `step NAME { … }`
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// The step name.
    pub name: Ident,
    /// Members in source order.
    pub members: Vec<StepMember>,
    /// The whole declaration.
    pub span: Span,
}

impl Step {
    /// The generic `NAME = EXPR` fields (`image`, `run`, `uses`, `after`, `cache`, …).
    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.members.iter().filter_map(|m| match m {
            StepMember::Field(f) => Some(f),
            _ => None,
        })
    }

    /// The field named `name`, if present (the first one, if repeated).
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields().find(|f| f.name.name == name)
    }

    /// The `input`, `output` and `metric` ports of the given sort.
    pub fn ports(&self, sort: PortSort) -> impl Iterator<Item = &Port> {
        self.members.iter().filter_map(move |m| match m {
            StepMember::Port(p) if p.sort == sort => Some(p),
            _ => None,
        })
    }
}

/// A member of a step (and of an `extern step`).
#[derive(Clone, Debug, PartialEq)]
pub enum StepMember {
    /// `NAME = EXPR`
    Field(Field),
    /// `input …`, `output …` or `metric …`
    Port(Port),
    /// `resources { cpu = …, memory = …, gpu = … }`
    Resources(Resources),
    /// `retry N [backoff D]`
    Retry(Retry),
    /// `timeout D`
    Timeout(Timeout),
}

/// Which sort of port a [`Port`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortSort {
    /// `input NAME: TYPE [= SOURCE]`
    Input,
    /// `output NAME: TYPE`
    Output,
    /// `metric NAME: TYPE`
    Metric,
}

impl PortSort {
    /// The keyword that introduces this sort of port.
    pub fn keyword(self) -> &'static str {
        match self {
            PortSort::Input => "input",
            PortSort::Output => "output",
            PortSort::Metric => "metric",
        }
    }
}

/// `input NAME: TYPE [= SOURCE]`, `output NAME: TYPE` or `metric NAME: TYPE`.
#[derive(Clone, Debug, PartialEq)]
pub struct Port {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// Input, output or metric.
    pub sort: PortSort,
    /// The port name.
    pub name: Ident,
    /// Its declared type.
    pub ty: TypeExpr,
    /// For inputs: what it is bound to (`fit.model`, `mnist(split = "train")`).
    pub source: Option<Expr>,
    /// The whole member.
    pub span: Span,
}

/// `resources { cpu = …, memory = …, gpu = … }`
#[derive(Clone, Debug, PartialEq)]
pub struct Resources {
    /// The fields.
    pub fields: Vec<Field>,
    /// The whole block.
    pub span: Span,
}

/// `retry N [backoff D]`
#[derive(Clone, Debug, PartialEq)]
pub struct Retry {
    /// How many times to retry.
    pub count: Expr,
    /// The base delay between attempts.
    pub backoff: Option<Expr>,
    /// The whole member.
    pub span: Span,
}

/// `timeout D`
#[derive(Clone, Debug, PartialEq)]
pub struct Timeout {
    /// The time limit.
    pub value: Expr,
    /// The whole member.
    pub span: Span,
}

/// `service NAME { … }`
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// The service name.
    pub name: Ident,
    /// Members in source order.
    pub members: Vec<ServiceMember>,
    /// The whole declaration.
    pub span: Span,
}

impl Service {
    /// The generic `NAME = EXPR` fields (`model`, `image`, `replicas`, `port`).
    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.members.iter().filter_map(|m| match m {
            ServiceMember::Field(f) => Some(f),
            _ => None,
        })
    }

    /// The field named `name`, if present (the first one, if repeated).
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields().find(|f| f.name.name == name)
    }

    /// The service-level objectives.
    pub fn slos(&self) -> impl Iterator<Item = &Slo> {
        self.members.iter().filter_map(|m| match m {
            ServiceMember::Slo(s) => Some(s),
            _ => None,
        })
    }
}

/// A member of a service.
#[derive(Clone, Debug, PartialEq)]
pub enum ServiceMember {
    /// `NAME = EXPR`
    Field(Field),
    /// `slo EXPR`
    Slo(Slo),
    /// `resources { … }`
    Resources(Resources),
}

/// `slo latency.p95 < 50ms`
#[derive(Clone, Debug, PartialEq)]
pub struct Slo {
    /// The objective, a comparison.
    pub objective: Expr,
    /// The whole member.
    pub span: Span,
}

/// `agent NAME: KIND { config = expr, … }`
#[derive(Clone, Debug, PartialEq)]
pub struct Agent {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// The agent instance name.
    pub name: Ident,
    /// The kind it instantiates.
    pub kind: Ident,
    /// Config values.
    pub fields: Vec<Field>,
    /// The whole declaration.
    pub span: Span,
}

/// `agent kind NAME { config …; sensor …; action … }`
#[derive(Clone, Debug, PartialEq)]
pub struct AgentKind {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// The kind name.
    pub name: Ident,
    /// Members in source order.
    pub members: Vec<KindMember>,
    /// The whole declaration.
    pub span: Span,
}

/// A member of an agent kind.
#[derive(Clone, Debug, PartialEq)]
pub enum KindMember {
    /// `config NAME: TYPE [= DEFAULT]` or `config NAME: TYPE?`
    Config(KindConfig),
    /// `sensor NAME: TYPE`
    Sensor(KindSensor),
    /// `action NAME(PARAMS) [-> BINDING]`
    Action(KindAction),
}

impl KindMember {
    /// The member's name.
    pub fn name(&self) -> &Ident {
        match self {
            KindMember::Config(c) => &c.name,
            KindMember::Sensor(s) => &s.name,
            KindMember::Action(a) => &a.name,
        }
    }
}

/// `config NAME: TYPE [= DEFAULT]` or `config NAME: TYPE?` (optional)
#[derive(Clone, Debug, PartialEq)]
pub struct KindConfig {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// The config name.
    pub name: Ident,
    /// Its type.
    pub ty: TypeExpr,
    /// The default; a config without one (and not `optional`) is required.
    pub default: Option<Expr>,
    /// `config NAME: TYPE?`: agents may leave it out; it then has no value at all.
    pub optional: bool,
    /// The whole member.
    pub span: Span,
}

/// `sensor NAME: TYPE`
#[derive(Clone, Debug, PartialEq)]
pub struct KindSensor {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// The sensor name.
    pub name: Ident,
    /// The type of the value it keeps current.
    pub ty: TypeExpr,
    /// The whole member.
    pub span: Span,
}

/// `action NAME(PARAMS) [-> BINDING]`
#[derive(Clone, Debug, PartialEq)]
pub struct KindAction {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// The action name.
    pub name: Ident,
    /// Its parameters.
    pub params: Vec<ParamSig>,
    /// What performs it, for user-declared kinds; `None` publishes the action as an event.
    pub binding: Option<ActionBinding>,
    /// The whole member.
    pub span: Span,
}

/// What performs a user-declared action.
#[derive(Clone, Debug, PartialEq)]
pub enum ActionBinding {
    /// `-> run WORKFLOW [with { … }]`: run a workflow; the action's params are in scope in `with`.
    Run(RunAction),
    /// `-> webhook "URL"`: POST the action's arguments as JSON to a URL.
    Webhook(StringLit),
}

/// A parameter in a signature: `NAME: TYPE [= DEFAULT]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSig {
    /// The parameter name.
    pub name: Ident,
    /// Its type.
    pub ty: TypeExpr,
    /// The default; a parameter without one is required.
    pub default: Option<Expr>,
    /// The whole parameter.
    pub span: Span,
}

/// `trigger NAME: SOURCE -> ACTION`
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// The trigger name.
    pub name: Ident,
    /// What sets it off.
    pub source: TriggerSource,
    /// What it does.
    pub action: Action,
    /// The whole declaration.
    pub span: Span,
}

/// What sets a trigger off.
#[derive(Clone, Debug, PartialEq)]
pub enum TriggerSource {
    /// `schedule "CRON"`
    Schedule(StringLit),
    /// `every N SENSOR`: each time the counter sensor grows by `count`.
    Every {
        /// How many new units between firings.
        count: Expr,
        /// The counter sensor (`tracker.new_samples`).
        sensor: Expr,
        /// The whole source.
        span: Span,
    },
    /// `on EVENT` (`training.succeeded`, `predictor.model.replaced`).
    On(Expr),
    /// `webhook "/path"` on the control API.
    Webhook(StringLit),
}

/// What a trigger or policy does.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// `run WORKFLOW [with { param = value, … }]`
    Run(RunAction),
    /// An agent action call: `planner.scale(predictor, +1)`.
    Call(Expr),
}

impl Action {
    /// The whole action.
    pub fn span(&self) -> Span {
        match self {
            Action::Run(r) => r.span,
            Action::Call(e) => e.span,
        }
    }
}

/// `run WORKFLOW [with { param = value, … }]`
#[derive(Clone, Debug, PartialEq)]
pub struct RunAction {
    /// The workflow to run.
    pub workflow: Ident,
    /// Param overrides.
    pub with: Vec<Field>,
    /// The whole action.
    pub span: Span,
}

/// `policy NAME { when COND [for D] then ACTION[, ACTION] [cooldown D] [max N per D] }`
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// The policy name.
    pub name: Ident,
    /// The condition.
    pub when: Expr,
    /// How long the condition must hold before the policy fires.
    pub hold_for: Option<Expr>,
    /// The actions, run in order.
    pub then: Vec<Action>,
    /// Minimum time between firings.
    pub cooldown: Option<Expr>,
    /// At most `count` firings per `per`.
    pub rate_limit: Option<RateLimit>,
    /// The whole declaration.
    pub span: Span,
}

/// `max N per D`
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimit {
    /// Maximum firings.
    pub count: Expr,
    /// The window.
    pub per: Expr,
    /// The whole clause.
    pub span: Span,
}

/// `extern fn NAME(PARAMS) -> TYPE`: a function the runtime implements natively (stdlib only).
#[derive(Clone, Debug, PartialEq)]
pub struct ExternFn {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// The function name.
    pub name: Ident,
    /// Its parameters.
    pub params: Vec<ParamSig>,
    /// Its result type.
    pub ret: TypeExpr,
    /// The whole declaration.
    pub span: Span,
}

/// `extern step NAME(PARAMS) { input …; output …; metric … }`: a step the runtime implements
/// natively (stdlib only), used as `uses = NAME(args)`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExternStep {
    /// Doc comment.
    pub doc: Option<Doc>,
    /// The step name.
    pub name: Ident,
    /// Its parameters (bound by the call's arguments).
    pub params: Vec<ParamSig>,
    /// Its ports and defaults (`input`, `output`, `metric`, `resources`, …).
    pub members: Vec<StepMember>,
    /// The whole declaration.
    pub span: Span,
}

/// A string literal, split into text and `{{ … }}` interpolations.
#[derive(Clone, Debug, PartialEq)]
pub struct StringLit {
    /// The parts in order.
    pub parts: Vec<StrPart>,
    /// The whole literal including quotes.
    pub span: Span,
}

impl StringLit {
    /// The literal's text if it has no interpolations.
    pub fn as_plain(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                StrPart::Text { value, .. } => out.push_str(value),
                StrPart::Interp { .. } => return None,
            }
        }
        Some(out)
    }

    /// The literal's text with interpolations left as written (`{{ x }}`), for display.
    pub fn display_text(&self, source: &str) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                StrPart::Text { value, .. } => out.push_str(value),
                StrPart::Interp { span, .. } => out.push_str(span.text(source)),
            }
        }
        out
    }
}

/// A piece of a string literal.
#[derive(Clone, Debug, PartialEq)]
pub enum StrPart {
    /// Plain text, escapes already decoded.
    Text {
        /// The decoded text.
        value: String,
        /// Where it was written (escapes included).
        span: Span,
    },
    /// `{{ expr }}`
    Interp {
        /// The interpolated expression.
        expr: Expr,
        /// The whole `{{ … }}`.
        span: Span,
    },
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What sort of expression.
    pub kind: ExprKind,
    /// The whole expression.
    pub span: Span,
}

/// The sorts of expression.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// `42`
    Int(i64),
    /// `0.5`, `1e-3`
    Float(f64),
    /// A number with a unit suffix: `250ms`, `4Gi`, `500m`. Its meaning (duration, cpu or
    /// memory) comes from the type expected where it stands.
    Suffixed {
        /// The numeric part.
        value: f64,
        /// The numeric part as written (for the formatter and exact quantities).
        digits: String,
        /// The suffix as written (`ms`, `Gi`, `m`, …).
        unit: String,
    },
    /// `true` / `false`
    Bool(bool),
    /// A string literal.
    Str(StringLit),
    /// A bare name.
    Name(Ident),
    /// `base.field`
    Field {
        /// The value whose member is read.
        base: Box<Expr>,
        /// The member name.
        field: Ident,
    },
    /// `callee(args)`
    Call {
        /// The function or action.
        callee: Box<Expr>,
        /// The arguments, positional or named.
        args: Vec<Arg>,
    },
    /// `[a, b]`
    List(Vec<Expr>),
    /// `{ key = value, … }`
    Record(Vec<Field>),
    /// `start..end`
    Range {
        /// The lower bound.
        start: Box<Expr>,
        /// The upper bound (inclusive).
        end: Box<Expr>,
    },
    /// `-x`, `+x`, `not x`
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        operand: Box<Expr>,
    },
    /// `a OP b`
    Binary {
        /// The operator.
        op: BinaryOp,
        /// The left operand.
        lhs: Box<Expr>,
        /// The right operand.
        rhs: Box<Expr>,
    },
    /// `( expr )`, kept so the formatter can keep the user's parentheses.
    Paren(Box<Expr>),
}

impl Expr {
    /// The dotted path this expression spells (`a.b.c`), if it is only names and field reads.
    pub fn as_path(&self) -> Option<Vec<&Ident>> {
        match &self.kind {
            ExprKind::Name(ident) => Some(vec![ident]),
            ExprKind::Field { base, field } => {
                let mut path = base.as_path()?;
                path.push(field);
                Some(path)
            }
            _ => None,
        }
    }
}

/// A call argument: positional `expr` or named `name = expr`.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// The name, for named arguments.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
    /// The whole argument.
    pub span: Span,
}

/// Prefix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-`
    Neg,
    /// `+` (as in `scale(predictor, +1)`)
    Plus,
    /// `not` (also spelled `!`)
    Not,
}

impl UnaryOp {
    /// The canonical spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            UnaryOp::Neg => "-",
            UnaryOp::Plus => "+",
            UnaryOp::Not => "not ",
        }
    }
}

/// Infix operators, loosest first: `or`, `and`, comparisons, `+ -`, `* /`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `or` (also spelled `||`)
    Or,
    /// `and` (also spelled `&&`)
    And,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

impl BinaryOp {
    /// The canonical spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }

    /// Whether this is one of the six comparisons.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
        )
    }

    /// Whether this is arithmetic (`+ - * /`).
    pub fn is_arithmetic(self) -> bool {
        matches!(
            self,
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div
        )
    }

    /// Binding strength: higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Eq
            | BinaryOp::Ne
            | BinaryOp::Lt
            | BinaryOp::Le
            | BinaryOp::Gt
            | BinaryOp::Ge => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div => 5,
        }
    }
}

/// Words reserved by the language: they may not be used as declared names. Field names are
/// contextual (`run = "…"` is a field even though `run` is reserved).
pub const KEYWORDS: &[&str] = &[
    "action",
    "after",
    "agent",
    "and",
    "app",
    "backoff",
    "cache",
    "config",
    "cooldown",
    "every",
    "extern",
    "false",
    "fn",
    "for",
    "in",
    "input",
    "kind",
    "max",
    "metric",
    "not",
    "on",
    "or",
    "output",
    "param",
    "per",
    "policy",
    "resources",
    "retry",
    "run",
    "schedule",
    "sensor",
    "service",
    "slo",
    "step",
    "then",
    "timeout",
    "trigger",
    "true",
    "type",
    "use",
    "webhook",
    "when",
    "with",
    "workflow",
];

/// Whether `word` is reserved.
pub fn is_keyword(word: &str) -> bool {
    KEYWORDS.binary_search(&word).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_sorted_for_binary_search() {
        let mut sorted = KEYWORDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, KEYWORDS);
        assert!(is_keyword("step"));
        assert!(!is_keyword("model"));
    }
}
