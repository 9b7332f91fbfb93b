//! The shape of a syntax tree: the tree with every span erased and doc comments trimmed.
//!
//! Two files with the same shape mean the same program (the layout is all that differs). The
//! formatter checks that its output has the shape of its input before it returns it, and the
//! formatter's property tests compare shapes.
//!
//! The visitor destructures every node exhaustively (no `..`), so a field added to the AST is
//! a compile error here until it is handled.

use crate::span::Span;
use crate::syntax::ast::*;

/// A copy of `file` with every span set to `0..0` and trailing whitespace removed from each
/// line of each doc comment (the formatter trims it).
pub fn shape(file: &SourceFile) -> SourceFile {
    let mut file = file.clone();
    let SourceFile { items, span } = &mut file;
    erase(span);
    items.iter_mut().for_each(item);
    file
}

fn erase(span: &mut Span) {
    *span = Span::default();
}

fn ident(i: &mut Ident) {
    erase(&mut i.span);
}

fn doc(d: &mut Option<Doc>) {
    if let Some(Doc { text, span }) = d {
        *text = text
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n");
        erase(span);
    }
}

fn item(it: &mut Item) {
    match it {
        Item::App(App {
            doc: d,
            name,
            fields,
            span,
        }) => {
            doc(d);
            ident(name);
            fields.iter_mut().for_each(field);
            erase(span);
        }
        Item::Use(Use { target, span }) => {
            match target {
                UseTarget::Path { path, items } => {
                    path.iter_mut().for_each(ident);
                    if let Some(items) = items {
                        items.iter_mut().for_each(ident);
                    }
                }
                UseTarget::File(s) => string(s),
            }
            erase(span);
        }
        Item::TypeAlias(TypeAlias {
            doc: d,
            name,
            ty: t,
            span,
        }) => {
            doc(d);
            ident(name);
            ty(t);
            erase(span);
        }
        Item::Workflow(Workflow {
            doc: d,
            name,
            members,
            span,
        }) => {
            doc(d);
            ident(name);
            for m in members {
                match m {
                    WorkflowMember::Param(p) => param(p),
                    WorkflowMember::Step(s) => step(s),
                }
            }
            erase(span);
        }
        Item::Service(Service {
            doc: d,
            name,
            members,
            span,
        }) => {
            doc(d);
            ident(name);
            for m in members {
                match m {
                    ServiceMember::Field(f) => field(f),
                    ServiceMember::Slo(Slo { objective, span }) => {
                        expr(objective);
                        erase(span);
                    }
                    ServiceMember::Resources(r) => resources(r),
                }
            }
            erase(span);
        }
        Item::Agent(Agent {
            doc: d,
            name,
            kind,
            fields,
            span,
        }) => {
            doc(d);
            ident(name);
            ident(kind);
            fields.iter_mut().for_each(field);
            erase(span);
        }
        Item::AgentKind(AgentKind {
            doc: d,
            name,
            members,
            span,
        }) => {
            doc(d);
            ident(name);
            members.iter_mut().for_each(kind_member);
            erase(span);
        }
        Item::Trigger(Trigger {
            doc: d,
            name,
            source,
            action: a,
            span,
        }) => {
            doc(d);
            ident(name);
            match source {
                TriggerSource::Schedule(s) | TriggerSource::Webhook(s) => string(s),
                TriggerSource::Every {
                    count,
                    sensor,
                    span,
                } => {
                    expr(count);
                    expr(sensor);
                    erase(span);
                }
                TriggerSource::On(e) => expr(e),
            }
            action(a);
            erase(span);
        }
        Item::Policy(Policy {
            doc: d,
            name,
            when,
            hold_for,
            then,
            cooldown,
            rate_limit,
            span,
        }) => {
            doc(d);
            ident(name);
            expr(when);
            hold_for.iter_mut().for_each(expr);
            then.iter_mut().for_each(action);
            cooldown.iter_mut().for_each(expr);
            if let Some(RateLimit { count, per, span }) = rate_limit {
                expr(count);
                expr(per);
                erase(span);
            }
            erase(span);
        }
        Item::ExternFn(ExternFn {
            doc: d,
            name,
            params,
            ret,
            span,
        }) => {
            doc(d);
            ident(name);
            params.iter_mut().for_each(param_sig);
            ty(ret);
            erase(span);
        }
        Item::ExternStep(ExternStep {
            doc: d,
            name,
            params,
            members,
            span,
        }) => {
            doc(d);
            ident(name);
            params.iter_mut().for_each(param_sig);
            members.iter_mut().for_each(step_member);
            erase(span);
        }
    }
}

fn param(p: &mut Param) {
    let Param {
        doc: d,
        name,
        ty: t,
        default,
        space,
        span,
    } = p;
    doc(d);
    ident(name);
    ty(t);
    default.iter_mut().for_each(expr);
    space.iter_mut().for_each(expr);
    erase(span);
}

fn step(s: &mut Step) {
    let Step {
        doc: d,
        name,
        members,
        span,
    } = s;
    doc(d);
    ident(name);
    members.iter_mut().for_each(step_member);
    erase(span);
}

fn step_member(m: &mut StepMember) {
    match m {
        StepMember::Field(f) => field(f),
        StepMember::Port(Port {
            doc: d,
            sort: _,
            name,
            ty: t,
            source,
            span,
        }) => {
            doc(d);
            ident(name);
            ty(t);
            source.iter_mut().for_each(expr);
            erase(span);
        }
        StepMember::Resources(r) => resources(r),
        StepMember::Retry(Retry {
            count,
            backoff,
            span,
        }) => {
            expr(count);
            backoff.iter_mut().for_each(expr);
            erase(span);
        }
        StepMember::Timeout(Timeout { value, span }) => {
            expr(value);
            erase(span);
        }
    }
}

fn resources(r: &mut Resources) {
    let Resources { fields, span } = r;
    fields.iter_mut().for_each(field);
    erase(span);
}

fn kind_member(m: &mut KindMember) {
    match m {
        KindMember::Config(KindConfig {
            doc: d,
            name,
            ty: t,
            default,
            optional: _,
            span,
        }) => {
            doc(d);
            ident(name);
            ty(t);
            default.iter_mut().for_each(expr);
            erase(span);
        }
        KindMember::Sensor(KindSensor {
            doc: d,
            name,
            ty: t,
            span,
        }) => {
            doc(d);
            ident(name);
            ty(t);
            erase(span);
        }
        KindMember::Action(KindAction {
            doc: d,
            name,
            params,
            binding,
            span,
        }) => {
            doc(d);
            ident(name);
            params.iter_mut().for_each(param_sig);
            match binding {
                Some(ActionBinding::Run(r)) => run_action(r),
                Some(ActionBinding::Webhook(s)) => string(s),
                None => {}
            }
            erase(span);
        }
    }
}

fn param_sig(p: &mut ParamSig) {
    let ParamSig {
        name,
        ty: t,
        default,
        span,
    } = p;
    ident(name);
    ty(t);
    default.iter_mut().for_each(expr);
    erase(span);
}

fn action(a: &mut Action) {
    match a {
        Action::Run(r) => run_action(r),
        Action::Call(e) => expr(e),
    }
}

fn run_action(r: &mut RunAction) {
    let RunAction {
        workflow,
        with,
        span,
    } = r;
    ident(workflow);
    with.iter_mut().for_each(field);
    erase(span);
}

fn field(f: &mut Field) {
    let Field { name, value, span } = f;
    ident(name);
    expr(value);
    erase(span);
}

fn ty(t: &mut TypeExpr) {
    let TypeExpr { name, args, span } = t;
    ident(name);
    args.iter_mut().for_each(ty);
    erase(span);
}

fn string(s: &mut StringLit) {
    let StringLit { parts, span } = s;
    for part in parts {
        match part {
            StrPart::Text { value: _, span } => erase(span),
            StrPart::Interp { expr: e, span } => {
                expr(e);
                erase(span);
            }
        }
    }
    erase(span);
}

fn expr(e: &mut Expr) {
    let Expr { kind, span } = e;
    match kind {
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Suffixed { .. } | ExprKind::Bool(_) => {}
        ExprKind::Str(s) => string(s),
        ExprKind::Name(i) => ident(i),
        ExprKind::Field { base, field } => {
            expr(base);
            ident(field);
        }
        ExprKind::Call { callee, args } => {
            expr(callee);
            for Arg { name, value, span } in args {
                name.iter_mut().for_each(ident);
                expr(value);
                erase(span);
            }
        }
        ExprKind::List(items) => items.iter_mut().for_each(expr),
        ExprKind::Record(fields) => fields.iter_mut().for_each(field),
        ExprKind::Range { start, end } => {
            expr(start);
            expr(end);
        }
        ExprKind::Unary { op: _, operand } => expr(operand),
        ExprKind::Binary { op: _, lhs, rhs } => {
            expr(lhs);
            expr(rhs);
        }
        ExprKind::Paren(inner) => expr(inner),
    }
    erase(span);
}
