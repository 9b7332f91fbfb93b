//! Evaluation of plan expressions outside policy conditions: `with { … }` overrides, action
//! arguments, std step arguments and agent configs. (Policy conditions are compiled by the
//! policy engine for speed.)

use crate::policy::Scalar;
use crate::value::RtValue;
use sflow_compiler::lower::plan::{
    AppPlan, BinaryOp, Expr, Signal, TargetKind, TemplatePart, UnaryOp,
};
use std::collections::BTreeMap;

/// What an expression can read.
pub trait Scope {
    /// A param (workflow param, or action parameter inside a binding's `with`).
    fn param(&self, name: &str) -> Option<RtValue>;
    /// A live signal.
    fn signal(&self, signal: &Signal) -> Option<RtValue>;
    /// The app, for `{{app.…}}`.
    fn app(&self) -> Option<&AppPlan>;
}

/// A scope of params only.
pub struct Params<'a> {
    /// The params.
    pub params: &'a BTreeMap<String, RtValue>,
    /// The app.
    pub app: Option<&'a AppPlan>,
}

impl Scope for Params<'_> {
    fn param(&self, name: &str) -> Option<RtValue> {
        self.params.get(name).cloned()
    }
    fn signal(&self, _: &Signal) -> Option<RtValue> {
        None
    }
    fn app(&self) -> Option<&AppPlan> {
        self.app
    }
}

/// `{{app.FIELD}}`
pub fn app_field(app: Option<&AppPlan>, field: &str) -> String {
    match (app, field) {
        (Some(a), "name") => a.name.clone(),
        (Some(a), "namespace") => a.namespace.clone(),
        (Some(a), "registry") => a.registry.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// Evaluates an expression; `Err` names what had no value.
pub fn eval(e: &Expr, scope: &dyn Scope) -> Result<RtValue, String> {
    match e {
        Expr::Literal { value } => Ok(RtValue::from_plan(value)),
        Expr::Param { name, .. } => scope
            .param(name)
            .ok_or_else(|| format!("`{name}` has no value")),
        Expr::Signal { signal, .. } => scope
            .signal(signal)
            .ok_or_else(|| format!("`{}` has no value yet", signal.key())),
        Expr::Ref { target_kind, name } => Ok(RtValue::Ref {
            kind: match target_kind {
                TargetKind::Workflow => "workflow",
                TargetKind::Service => "service",
                TargetKind::Agent => "agent",
            }
            .to_string(),
            name: name.clone(),
        }),
        Expr::Call { function, args, .. } => {
            let mut fields = BTreeMap::new();
            fields.insert(
                "function".to_string(),
                RtValue::String {
                    value: function.clone(),
                },
            );
            for (k, v) in args {
                fields.insert(k.clone(), eval(v, scope)?);
            }
            Ok(RtValue::Record { fields })
        }
        Expr::Template { parts } => {
            let mut out = String::new();
            for p in parts {
                match p {
                    TemplatePart::Text { text } => out.push_str(text),
                    TemplatePart::Param { name } => out.push_str(
                        &scope
                            .param(name)
                            .map(|v| v.to_param_text())
                            .unwrap_or_default(),
                    ),
                    TemplatePart::App { field } => out.push_str(&app_field(scope.app(), field)),
                    TemplatePart::Input { name } | TemplatePart::Output { name } => {
                        out.push_str("{{");
                        out.push_str(name);
                        out.push_str("}}");
                    }
                }
            }
            Ok(RtValue::String { value: out })
        }
        Expr::List { items } => Ok(RtValue::List {
            items: items
                .iter()
                .map(|i| eval(i, scope))
                .collect::<Result<_, _>>()?,
        }),
        Expr::Unary { op, operand, .. } => {
            let v = eval(operand, scope)?;
            match (op, &v) {
                (UnaryOp::Not, RtValue::Bool { value }) => Ok(RtValue::Bool { value: !value }),
                (UnaryOp::Neg, RtValue::Int { value }) => Ok(RtValue::Int { value: -value }),
                (UnaryOp::Neg, RtValue::Float { value }) => Ok(RtValue::Float { value: -value }),
                _ => Err(format!("cannot apply {op:?} to {}", v.to_json())),
            }
        }
        Expr::Binary { op, lhs, rhs, .. } => {
            let (a, b) = (eval(lhs, scope)?, eval(rhs, scope)?);
            if matches!(op, BinaryOp::And | BinaryOp::Or) {
                return match (&a, &b) {
                    (RtValue::Bool { value: x }, RtValue::Bool { value: y }) => Ok(RtValue::Bool {
                        value: if *op == BinaryOp::And {
                            *x && *y
                        } else {
                            *x || *y
                        },
                    }),
                    _ => Err("`and`/`or` need bools".into()),
                };
            }
            let engine_op =
                crate::policy::eval_binary(*op, &Scalar::from_value(&a), &Scalar::from_value(&b));
            match engine_op {
                Scalar::Int(value) => Ok(RtValue::Int { value }),
                Scalar::Float(value) => Ok(RtValue::Float { value }),
                Scalar::Bool(value) => Ok(RtValue::Bool { value }),
                Scalar::Dur(ms) => Ok(RtValue::Duration {
                    ms: ms.max(0) as u64,
                }),
                Scalar::Str(s) => Ok(RtValue::String {
                    value: s.to_string(),
                }),
                Scalar::Missing => Err(format!(
                    "cannot compute {} {op:?} {}",
                    a.to_json(),
                    b.to_json()
                )),
            }
        }
    }
}
