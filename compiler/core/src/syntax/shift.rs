//! Moving every span of a syntax tree (or a diagnostic) by the same distance.
//!
//! The incremental parser ([`super::incremental`]) reuses the tree of a declaration or member
//! whose text did not change, but text before it may have grown or shrunk: its spans then move
//! by the difference. Offsets are `u32`, and a move to the left is a wrapping addition of the
//! two's complement, so one `u32` delta serves both directions.

use super::ast::*;
use crate::diagnostics::{Diagnostic, Label, Suggestion};
use crate::span::{FileSpan, Span};

/// A value whose spans can be moved.
pub(crate) trait Shift {
    /// Moves every span by `delta` (wrapping: `new.wrapping_sub(old)` moves from `old` to `new`).
    fn shift(&mut self, delta: u32);
}

impl Shift for Span {
    fn shift(&mut self, delta: u32) {
        self.start = self.start.wrapping_add(delta);
        self.end = self.end.wrapping_add(delta);
    }
}

impl<T: Shift> Shift for Option<T> {
    fn shift(&mut self, delta: u32) {
        if let Some(t) = self {
            t.shift(delta);
        }
    }
}

impl<T: Shift> Shift for Vec<T> {
    fn shift(&mut self, delta: u32) {
        for t in self {
            t.shift(delta);
        }
    }
}

impl<T: Shift> Shift for Box<T> {
    fn shift(&mut self, delta: u32) {
        (**self).shift(delta);
    }
}

/// Implements [`Shift`] for a struct by shifting the fields listed before the `;`; those after
/// it hold no span. The struct is destructured without `..`, so a field added later breaks the
/// build here until it is listed (a forgotten span would silently point at the wrong text).
macro_rules! shift_fields {
    ($($ty:ident { $($field:ident),* $(; $($skip:ident),*)? })*) => {
        $(impl Shift for $ty {
            fn shift(&mut self, delta: u32) {
                let $ty { $($field,)* $($($skip: _,)*)? } = self;
                $($field.shift(delta);)*
            }
        })*
    };
}

shift_fields! {
    Ident { span; name }
    Doc { span; text }
    SourceFile { items, span }
    Field { name, value, span }
    App { doc, name, fields, span }
    Use { target, span }
    TypeAlias { doc, name, ty, span }
    TypeExpr { name, args, span }
    Workflow { doc, name, members, span }
    Param { doc, name, ty, default, space, span }
    Step { doc, name, members, span }
    Port { doc, name, ty, source, span; sort }
    Resources { fields, span }
    Retry { count, backoff, span }
    Timeout { value, span }
    Service { doc, name, members, span }
    Slo { objective, span }
    Agent { doc, name, kind, fields, span }
    AgentKind { doc, name, members, span }
    KindConfig { doc, name, ty, default, span; optional }
    KindSensor { doc, name, ty, span }
    KindAction { doc, name, params, binding, span }
    ParamSig { name, ty, default, span }
    Trigger { doc, name, source, action, span }
    RunAction { workflow, with, span }
    Policy { doc, name, when, hold_for, then, cooldown, rate_limit, span }
    RateLimit { count, per, span }
    ExternFn { doc, name, params, ret, span }
    ExternStep { doc, name, params, members, span }
    StringLit { parts, span }
    Expr { kind, span }
    Arg { name, value, span }
    FileSpan { span; file }
    Label { at; message }
    Suggestion { at; title, replacement }
    Diagnostic { primary, secondary, suggestions; code, severity, message, help }
}

impl Shift for Item {
    fn shift(&mut self, delta: u32) {
        match self {
            Item::App(x) => x.shift(delta),
            Item::Use(x) => x.shift(delta),
            Item::TypeAlias(x) => x.shift(delta),
            Item::Workflow(x) => x.shift(delta),
            Item::Service(x) => x.shift(delta),
            Item::Agent(x) => x.shift(delta),
            Item::AgentKind(x) => x.shift(delta),
            Item::Trigger(x) => x.shift(delta),
            Item::Policy(x) => x.shift(delta),
            Item::ExternFn(x) => x.shift(delta),
            Item::ExternStep(x) => x.shift(delta),
        }
    }
}

impl Shift for UseTarget {
    fn shift(&mut self, delta: u32) {
        match self {
            UseTarget::Path { path, items } => {
                path.shift(delta);
                items.shift(delta);
            }
            UseTarget::File(s) => s.shift(delta),
        }
    }
}

impl Shift for WorkflowMember {
    fn shift(&mut self, delta: u32) {
        match self {
            WorkflowMember::Param(x) => x.shift(delta),
            WorkflowMember::Step(x) => x.shift(delta),
        }
    }
}

impl Shift for StepMember {
    fn shift(&mut self, delta: u32) {
        match self {
            StepMember::Field(x) => x.shift(delta),
            StepMember::Port(x) => x.shift(delta),
            StepMember::Resources(x) => x.shift(delta),
            StepMember::Retry(x) => x.shift(delta),
            StepMember::Timeout(x) => x.shift(delta),
        }
    }
}

impl Shift for ServiceMember {
    fn shift(&mut self, delta: u32) {
        match self {
            ServiceMember::Field(x) => x.shift(delta),
            ServiceMember::Slo(x) => x.shift(delta),
            ServiceMember::Resources(x) => x.shift(delta),
        }
    }
}

impl Shift for KindMember {
    fn shift(&mut self, delta: u32) {
        match self {
            KindMember::Config(x) => x.shift(delta),
            KindMember::Sensor(x) => x.shift(delta),
            KindMember::Action(x) => x.shift(delta),
        }
    }
}

impl Shift for ActionBinding {
    fn shift(&mut self, delta: u32) {
        match self {
            ActionBinding::Run(x) => x.shift(delta),
            ActionBinding::Webhook(x) => x.shift(delta),
        }
    }
}

impl Shift for TriggerSource {
    fn shift(&mut self, delta: u32) {
        match self {
            TriggerSource::Schedule(s) | TriggerSource::Webhook(s) => s.shift(delta),
            TriggerSource::Every {
                count,
                sensor,
                span,
            } => {
                count.shift(delta);
                sensor.shift(delta);
                span.shift(delta);
            }
            TriggerSource::On(e) => e.shift(delta),
        }
    }
}

impl Shift for Action {
    fn shift(&mut self, delta: u32) {
        match self {
            Action::Run(x) => x.shift(delta),
            Action::Call(x) => x.shift(delta),
        }
    }
}

impl Shift for StrPart {
    fn shift(&mut self, delta: u32) {
        match self {
            StrPart::Text { span, .. } => span.shift(delta),
            StrPart::Interp { expr, span } => {
                expr.shift(delta);
                span.shift(delta);
            }
        }
    }
}

impl Shift for ExprKind {
    fn shift(&mut self, delta: u32) {
        match self {
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Suffixed {
                value: _,
                digits: _,
                unit: _,
            }
            | ExprKind::Bool(_) => {}
            ExprKind::Str(s) => s.shift(delta),
            ExprKind::Name(n) => n.shift(delta),
            ExprKind::Field { base, field } => {
                base.shift(delta);
                field.shift(delta);
            }
            ExprKind::Call { callee, args } => {
                callee.shift(delta);
                args.shift(delta);
            }
            ExprKind::List(xs) => xs.shift(delta),
            ExprKind::Record(fs) => fs.shift(delta),
            ExprKind::Range { start, end } => {
                start.shift(delta);
                end.shift(delta);
            }
            ExprKind::Unary { operand, .. } => operand.shift(delta),
            ExprKind::Binary { lhs, rhs, .. } => {
                lhs.shift(delta);
                rhs.shift(delta);
            }
            ExprKind::Paren(e) => e.shift(delta),
        }
    }
}
