//! The policy engine: evaluates policy conditions over live signals and decides firings,
//! with the guards `for D`, `cooldown D` and `max N per D`.
//!
//! It is a plain, synchronous data structure with no I/O, so it can be driven at millions of
//! signal updates a second: signals are interned into slots, each slot knows the policies
//! that read it, and an update re-evaluates only those. Time is passed in (`now`), so tests
//! and the engine's clock decide it. The engine records each [`Verdict`] durably before
//! acting on it (see `engine`).
//!
//! Semantics (docs/language.md §11.3):
//! - a condition that reads a signal with no value is false (three-valued logic: `missing
//!   and false` is false, `missing or true` is true, anything else with a missing value is
//!   missing, and only `true` fires);
//! - `for D`: the condition must have held continuously for D;
//! - without `cooldown`, a policy fires once each time its condition becomes true (it re-arms
//!   when the condition turns false); with `cooldown D` it fires again D after its last firing
//!   while the condition (with its `for`) still holds;
//! - `max N per D`: at most N firings in any window of D; a firing over the limit is reported
//!   as skipped and counts as an attempt for re-arming and cooldown (so it is not reported
//!   again on every evaluation).

use crate::clock::Millis;
use crate::value::RtValue;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sflow_compiler::lower::plan::{BinaryOp, Expr, PlanType, PolicyPlan, Signal, UnaryOp, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// A scalar value as conditions see it.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    /// No value yet.
    Missing,
    /// An integer (also cpu millicores, memory bytes, batch sizes).
    Int(i64),
    /// A float or ratio.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A duration in milliseconds.
    Dur(i64),
    /// A string.
    Str(Arc<str>),
}

impl Scalar {
    /// The scalar view of a run-time value.
    pub fn from_value(v: &RtValue) -> Scalar {
        match v {
            RtValue::Int { value } => Scalar::Int(*value),
            RtValue::Float { value } => Scalar::Float(*value),
            RtValue::Bool { value } => Scalar::Bool(*value),
            RtValue::String { value } => Scalar::Str(Arc::from(value.as_str())),
            RtValue::Duration { ms } => Scalar::Dur(*ms as i64),
            RtValue::Cpu { millis } => Scalar::Int(*millis as i64),
            RtValue::Memory { bytes } => Scalar::Int(*bytes as i64),
            RtValue::Batch { size, .. } => Scalar::Int(*size),
            _ => Scalar::Missing,
        }
    }

    /// As JSON, for the audit log.
    pub fn to_json(&self) -> Json {
        match self {
            Scalar::Missing => Json::Null,
            Scalar::Int(i) => Json::from(*i),
            Scalar::Float(f) => Json::from(*f),
            Scalar::Bool(b) => Json::from(*b),
            Scalar::Dur(ms) => Json::from(format!("{ms}ms")),
            Scalar::Str(s) => Json::from(s.as_ref()),
        }
    }

    fn num(&self) -> Option<f64> {
        match self {
            Scalar::Int(i) => Some(*i as f64),
            Scalar::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// A compiled condition.
#[derive(Clone, Debug)]
enum Node {
    Const(Scalar),
    Slot(u32),
    Not(Box<Node>),
    Neg(Box<Node>),
    Bin(BinaryOp, Box<Node>, Box<Node>),
}

/// The guard state of a policy that survives restarts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyState {
    /// Whether the condition turned false since the last attempt (a policy without cooldown
    /// fires only when armed).
    pub armed: bool,
    /// The last firing (or skipped firing).
    pub last_attempt: Option<Millis>,
    /// Firings inside the `max … per` window.
    pub recent: VecDeque<Millis>,
}

#[derive(Clone, Debug)]
struct PolicyRt {
    name: String,
    cond: Node,
    hold_ms: Option<i64>,
    cooldown_ms: Option<i64>,
    rate: Option<(usize, i64)>,
    reads: Vec<(String, u32)>,
    state: PolicyState,
    true_since: Option<Millis>,
}

/// What the engine decided for a policy.
#[derive(Clone, Debug, PartialEq)]
pub enum VerdictKind {
    /// Perform the policy's actions.
    Fire,
    /// The policy would fire but a guard (`max N per D`) stops it; report it.
    Skip(String),
}

/// A decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The policy (index in the plan's policies).
    pub policy: usize,
    /// Fire or skip.
    pub kind: VerdictKind,
    /// When.
    pub at: Millis,
    /// The signals the condition read, with their values.
    pub reads: Vec<(String, Scalar)>,
}

/// The policies of a plan, with their signal slots and guard state.
#[derive(Clone, Debug)]
pub struct PolicyEngine {
    policies: Vec<PolicyRt>,
    slots: Vec<Scalar>,
    readers: Vec<Vec<u32>>,
    signals: Vec<Signal>,
    slot_index: HashMap<Signal, u32>,
    dirty: Vec<usize>,
}

impl PolicyEngine {
    /// Compiles the policies.
    pub fn new(policies: &[PolicyPlan]) -> PolicyEngine {
        let mut engine = PolicyEngine {
            policies: Vec::with_capacity(policies.len()),
            slots: Vec::new(),
            readers: Vec::new(),
            signals: Vec::new(),
            slot_index: HashMap::new(),
            dirty: Vec::new(),
        };
        for (i, p) in policies.iter().enumerate() {
            let cond = engine.compile(&p.when, i as u32);
            let mut reads: Vec<(String, u32)> = Vec::new();
            for s in &p.reads {
                let slot = engine.intern(s, i as u32);
                reads.push((s.key(), slot));
            }
            engine.policies.push(PolicyRt {
                name: p.name.clone(),
                cond,
                hold_ms: p.hold_for_ms.map(|v| v as i64),
                cooldown_ms: p.cooldown_ms.map(|v| v as i64),
                rate: p
                    .rate_limit
                    .as_ref()
                    .map(|r| (r.count as usize, r.per_ms as i64)),
                reads,
                state: PolicyState {
                    armed: true,
                    ..PolicyState::default()
                },
                true_since: None,
            });
        }
        engine
    }

    fn intern(&mut self, s: &Signal, policy: u32) -> u32 {
        let slot = match self.slot_index.get(s) {
            Some(&slot) => slot,
            None => {
                let slot = self.slots.len() as u32;
                self.slots.push(Scalar::Missing);
                self.readers.push(Vec::new());
                self.signals.push(s.clone());
                self.slot_index.insert(s.clone(), slot);
                slot
            }
        };
        if let Some(r) = self.readers.get_mut(slot as usize) {
            if !r.contains(&policy) {
                r.push(policy);
            }
        }
        slot
    }

    fn compile(&mut self, e: &Expr, policy: u32) -> Node {
        match e {
            Expr::Literal { value } => Node::Const(literal(value)),
            Expr::Signal { signal, .. } => Node::Slot(self.intern(signal, policy)),
            Expr::Unary {
                op: UnaryOp::Not,
                operand,
                ..
            } => Node::Not(Box::new(self.compile(operand, policy))),
            Expr::Unary {
                op: UnaryOp::Neg,
                operand,
                ..
            } => Node::Neg(Box::new(self.compile(operand, policy))),
            Expr::Binary { op, lhs, rhs, .. } => Node::Bin(
                *op,
                Box::new(self.compile(lhs, policy)),
                Box::new(self.compile(rhs, policy)),
            ),
            _ => Node::Const(Scalar::Missing),
        }
    }

    /// The slot of a signal, if a policy reads it.
    pub fn slot(&self, s: &Signal) -> Option<u32> {
        self.slot_index.get(s).copied()
    }

    /// Every signal a policy reads, by slot.
    pub fn signals(&self) -> &[Signal] {
        &self.signals
    }

    /// The number of policies.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// Whether there are no policies.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// A policy's name.
    pub fn name(&self, policy: usize) -> &str {
        self.policies.get(policy).map_or("", |p| p.name.as_str())
    }

    /// A policy's persistent guard state.
    pub fn state(&self, policy: usize) -> Option<&PolicyState> {
        self.policies.get(policy).map(|p| &p.state)
    }

    /// Restores a policy's guard state (on start).
    pub fn restore(&mut self, policy: usize, state: PolicyState) {
        if let Some(p) = self.policies.get_mut(policy) {
            p.state = state;
        }
    }

    /// Policies whose persistent state changed since the last call.
    pub fn take_dirty(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.dirty)
    }

    /// The current value of a slot.
    pub fn value(&self, slot: u32) -> &Scalar {
        self.slots.get(slot as usize).unwrap_or(&Scalar::Missing)
    }

    /// Sets a signal without evaluating anything (restoring values on start; evaluate them
    /// all with [`PolicyEngine::tick`]).
    pub fn preset(&mut self, slot: u32, value: Scalar) {
        if let Some(current) = self.slots.get_mut(slot as usize) {
            *current = value;
        }
    }

    /// Sets a signal and re-evaluates the policies that read it; verdicts go to `out`.
    pub fn set(&mut self, slot: u32, value: Scalar, now: Millis, out: &mut Vec<Verdict>) {
        let Some(current) = self.slots.get_mut(slot as usize) else {
            return;
        };
        if *current == value {
            return;
        }
        *current = value;
        let n = self.readers.get(slot as usize).map_or(0, Vec::len);
        for i in 0..n {
            let policy = self.readers[slot as usize][i] as usize;
            self.consider(policy, now, out);
        }
    }

    /// Sets several slots, then evaluates each policy that reads one of them once: values
    /// that change together (an Improver's candidate and the served model's evaluation) are
    /// never seen half-updated.
    pub fn set_many(&mut self, values: Vec<(u32, Scalar)>, now: Millis, out: &mut Vec<Verdict>) {
        let mut touched: Vec<usize> = Vec::new();
        for (slot, value) in values {
            let Some(current) = self.slots.get_mut(slot as usize) else {
                continue;
            };
            if *current == value {
                continue;
            }
            *current = value;
            if let Some(readers) = self.readers.get(slot as usize) {
                touched.extend(readers.iter().map(|&p| p as usize));
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for policy in touched {
            self.consider(policy, now, out);
        }
    }

    /// Re-evaluates every policy at `now` (for `for` windows and cooldowns that expire).
    pub fn tick(&mut self, now: Millis, out: &mut Vec<Verdict>) {
        for policy in 0..self.policies.len() {
            self.consider(policy, now, out);
        }
    }

    /// When a policy may next fire with no signal changing (`for` window or cooldown end).
    pub fn next_deadline(&self) -> Option<Millis> {
        self.policies
            .iter()
            .filter_map(|p| {
                let since = p.true_since?;
                let held = p.hold_ms.map_or(since, |h| since + h);
                let cooled = match (p.cooldown_ms, p.state.last_attempt) {
                    (Some(c), Some(last)) => last + c,
                    _ => held,
                };
                let armed_or_cooling = p.cooldown_ms.is_some() || p.state.armed;
                armed_or_cooling.then_some(held.max(cooled))
            })
            .min()
    }

    /// Evaluates a policy's condition now.
    pub fn holds(&self, policy: usize) -> bool {
        self.policies
            .get(policy)
            .is_some_and(|p| self.eval(&p.cond) == Scalar::Bool(true))
    }

    fn consider(&mut self, policy: usize, now: Millis, out: &mut Vec<Verdict>) {
        let holds = self.holds(policy);
        let Some(p) = self.policies.get_mut(policy) else {
            return;
        };
        if !holds {
            p.true_since = None;
            if !p.state.armed {
                p.state.armed = true;
                self.dirty.push(policy);
            }
            return;
        }
        let since = *p.true_since.get_or_insert(now);
        if let Some(hold) = p.hold_ms {
            if now - since < hold {
                return;
            }
        }
        match p.cooldown_ms {
            Some(cooldown) => {
                if let Some(last) = p.state.last_attempt {
                    if now - last < cooldown {
                        return;
                    }
                }
            }
            None => {
                if !p.state.armed {
                    return;
                }
            }
        }
        let mut kind = VerdictKind::Fire;
        if let Some((max, per)) = p.rate {
            while p.state.recent.front().is_some_and(|&t| t <= now - per) {
                p.state.recent.pop_front();
            }
            if p.state.recent.len() >= max {
                kind = VerdictKind::Skip(format!(
                    "max {max} per {}: already fired {} time(s) in the window",
                    format_ms(per),
                    p.state.recent.len()
                ));
            }
        }
        if kind == VerdictKind::Fire {
            p.state.recent.push_back(now);
        }
        p.state.armed = false;
        p.state.last_attempt = Some(now);
        self.dirty.push(policy);
        let reads = p
            .reads
            .iter()
            .map(|(key, slot)| {
                (
                    key.clone(),
                    self.slots
                        .get(*slot as usize)
                        .cloned()
                        .unwrap_or(Scalar::Missing),
                )
            })
            .collect();
        out.push(Verdict {
            policy,
            kind,
            at: now,
            reads,
        });
    }

    fn eval(&self, n: &Node) -> Scalar {
        match n {
            Node::Const(s) => s.clone(),
            Node::Slot(i) => self
                .slots
                .get(*i as usize)
                .cloned()
                .unwrap_or(Scalar::Missing),
            Node::Not(x) => match self.eval(x) {
                Scalar::Bool(b) => Scalar::Bool(!b),
                _ => Scalar::Missing,
            },
            Node::Neg(x) => match self.eval(x) {
                Scalar::Int(i) => Scalar::Int(-i),
                Scalar::Float(f) => Scalar::Float(-f),
                Scalar::Dur(d) => Scalar::Dur(-d),
                _ => Scalar::Missing,
            },
            Node::Bin(op, a, b) => match op {
                BinaryOp::And => match self.eval(a) {
                    Scalar::Bool(false) => Scalar::Bool(false),
                    l => match (l, self.eval(b)) {
                        (_, Scalar::Bool(false)) => Scalar::Bool(false),
                        (Scalar::Bool(true), Scalar::Bool(true)) => Scalar::Bool(true),
                        _ => Scalar::Missing,
                    },
                },
                BinaryOp::Or => match self.eval(a) {
                    Scalar::Bool(true) => Scalar::Bool(true),
                    l => match (l, self.eval(b)) {
                        (_, Scalar::Bool(true)) => Scalar::Bool(true),
                        (Scalar::Bool(false), Scalar::Bool(false)) => Scalar::Bool(false),
                        _ => Scalar::Missing,
                    },
                },
                _ => binary(*op, &self.eval(a), &self.eval(b)),
            },
        }
    }
}

fn literal(v: &Value) -> Scalar {
    match v {
        Value::Int { value } => Scalar::Int(*value),
        Value::Float { value } => Scalar::Float(*value),
        Value::Bool { value } => Scalar::Bool(*value),
        Value::String { value } => Scalar::Str(Arc::from(value.as_str())),
        Value::Duration { ms } => Scalar::Dur(*ms as i64),
        Value::Cpu { millis } => Scalar::Int(*millis as i64),
        Value::Memory { bytes } => Scalar::Int(*bytes as i64),
        _ => Scalar::Missing,
    }
}

/// Applies a comparison or arithmetic operator to two scalars (missing when undefined).
pub fn eval_binary(op: BinaryOp, a: &Scalar, b: &Scalar) -> Scalar {
    binary(op, a, b)
}

fn binary(op: BinaryOp, a: &Scalar, b: &Scalar) -> Scalar {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (a, b) {
        (Scalar::Int(x), Scalar::Int(y)) => Some(x.cmp(y)),
        (Scalar::Dur(x), Scalar::Dur(y)) => Some(x.cmp(y)),
        (Scalar::Str(x), Scalar::Str(y)) => Some(x.cmp(y)),
        (Scalar::Bool(x), Scalar::Bool(y)) => Some(x.cmp(y)),
        _ => match (a.num(), b.num()) {
            (Some(x), Some(y)) => x.partial_cmp(&y),
            _ => None,
        },
    };
    let cmp = |f: fn(Ordering) -> bool| ord.map_or(Scalar::Missing, |o| Scalar::Bool(f(o)));
    match op {
        BinaryOp::Eq => cmp(|o| o == Ordering::Equal),
        BinaryOp::Ne => cmp(|o| o != Ordering::Equal),
        BinaryOp::Lt => cmp(|o| o == Ordering::Less),
        BinaryOp::Le => cmp(|o| o != Ordering::Greater),
        BinaryOp::Gt => cmp(|o| o == Ordering::Greater),
        BinaryOp::Ge => cmp(|o| o != Ordering::Less),
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div => arith(op, a, b),
        BinaryOp::And | BinaryOp::Or => Scalar::Missing,
    }
}

fn arith(op: BinaryOp, a: &Scalar, b: &Scalar) -> Scalar {
    match (a, b) {
        (Scalar::Int(x), Scalar::Int(y)) => match op {
            BinaryOp::Add => Scalar::Int(x.wrapping_add(*y)),
            BinaryOp::Sub => Scalar::Int(x.wrapping_sub(*y)),
            BinaryOp::Mul => Scalar::Int(x.wrapping_mul(*y)),
            _ if *y == 0 => Scalar::Missing,
            _ => Scalar::Float(*x as f64 / *y as f64),
        },
        (Scalar::Dur(x), Scalar::Dur(y)) => match op {
            BinaryOp::Add => Scalar::Dur(x + y),
            BinaryOp::Sub => Scalar::Dur(x - y),
            _ => Scalar::Missing,
        },
        (Scalar::Dur(d), n) | (n, Scalar::Dur(d)) if n.num().is_some() => {
            let k = n.num().unwrap_or(0.0);
            match op {
                BinaryOp::Mul => Scalar::Dur((*d as f64 * k) as i64),
                BinaryOp::Div if matches!(a, Scalar::Dur(_)) && k != 0.0 => {
                    Scalar::Dur((*d as f64 / k) as i64)
                }
                _ => Scalar::Missing,
            }
        }
        _ => match (a.num(), b.num()) {
            (Some(x), Some(y)) => match op {
                BinaryOp::Add => Scalar::Float(x + y),
                BinaryOp::Sub => Scalar::Float(x - y),
                BinaryOp::Mul => Scalar::Float(x * y),
                _ if y == 0.0 => Scalar::Missing,
                _ => Scalar::Float(x / y),
            },
            _ => Scalar::Missing,
        },
    }
}

/// `90s`, `2m`, `1d`: a duration for messages.
pub fn format_ms(ms: i64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= size && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// The scalar type a plan type evaluates to (for building test signals).
pub fn scalar_of(ty: &PlanType, v: f64) -> Scalar {
    match ty {
        PlanType::Int => Scalar::Int(v as i64),
        PlanType::Duration => Scalar::Dur(v as i64),
        PlanType::Bool => Scalar::Bool(v != 0.0),
        _ => Scalar::Float(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sflow_compiler::lower::plan::{RateLimitPlan, SourceRef};

    fn sig(name: &str) -> Signal {
        Signal::Sensor {
            agent: "a".into(),
            sensor: name.into(),
            path: vec![],
        }
    }

    fn policy(
        when: Expr,
        hold: Option<u64>,
        cooldown: Option<u64>,
        rate: Option<(u32, u64)>,
    ) -> PolicyPlan {
        let mut reads = Vec::new();
        fn collect(e: &Expr, out: &mut Vec<Signal>) {
            match e {
                Expr::Signal { signal, .. } => out.push(signal.clone()),
                Expr::Binary { lhs, rhs, .. } => {
                    collect(lhs, out);
                    collect(rhs, out);
                }
                Expr::Unary { operand, .. } => collect(operand, out),
                _ => {}
            }
        }
        collect(&when, &mut reads);
        PolicyPlan {
            name: "p".into(),
            when,
            hold_for_ms: hold,
            then: vec![],
            cooldown_ms: cooldown,
            rate_limit: rate.map(|(count, per_ms)| RateLimitPlan { count, per_ms }),
            reads,
            source: SourceRef {
                file: "t".into(),
                line: 1,
                column: 1,
            },
        }
    }

    fn gt(name: &str, v: f64) -> Expr {
        Expr::Binary {
            op: BinaryOp::Gt,
            lhs: Box::new(Expr::Signal {
                signal: sig(name),
                ty: PlanType::Float,
            }),
            rhs: Box::new(Expr::Literal {
                value: Value::Float { value: v },
            }),
            ty: PlanType::Bool,
        }
    }

    fn fires(out: &[Verdict]) -> usize {
        out.iter().filter(|v| v.kind == VerdictKind::Fire).count()
    }

    #[test]
    fn fires_once_per_rising_edge_without_cooldown() {
        let mut e = PolicyEngine::new(&[policy(gt("x", 0.5), None, None, None)]);
        let s = e.slot(&sig("x")).expect("slot");
        let mut out = Vec::new();
        e.set(s, Scalar::Float(0.9), 0, &mut out);
        e.set(s, Scalar::Float(0.8), 1, &mut out);
        e.tick(2, &mut out);
        assert_eq!(fires(&out), 1);
        e.set(s, Scalar::Float(0.1), 3, &mut out);
        e.set(s, Scalar::Float(0.7), 4, &mut out);
        assert_eq!(fires(&out), 2);
    }

    #[test]
    fn missing_signal_is_false() {
        let mut e = PolicyEngine::new(&[policy(gt("x", 0.5), None, None, None)]);
        let mut out = Vec::new();
        e.tick(0, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn for_waits_for_the_condition_to_hold() {
        let mut e = PolicyEngine::new(&[policy(gt("x", 0.5), Some(60_000), None, None)]);
        let s = e.slot(&sig("x")).expect("slot");
        let mut out = Vec::new();
        e.set(s, Scalar::Float(0.9), 0, &mut out);
        assert_eq!(e.next_deadline(), Some(60_000));
        e.tick(59_999, &mut out);
        assert!(out.is_empty());
        e.set(s, Scalar::Float(0.1), 30_000, &mut out);
        e.set(s, Scalar::Float(0.9), 40_000, &mut out);
        e.tick(99_999, &mut out);
        assert!(out.is_empty(), "the window restarted at 40s");
        e.tick(100_000, &mut out);
        assert_eq!(fires(&out), 1);
    }

    #[test]
    fn cooldown_refires_while_the_condition_holds() {
        let mut e = PolicyEngine::new(&[policy(gt("x", 0.5), None, Some(120_000), None)]);
        let s = e.slot(&sig("x")).expect("slot");
        let mut out = Vec::new();
        e.set(s, Scalar::Float(0.9), 0, &mut out);
        e.tick(119_999, &mut out);
        assert_eq!(fires(&out), 1);
        assert_eq!(e.next_deadline(), Some(120_000));
        e.tick(120_000, &mut out);
        assert_eq!(fires(&out), 2);
    }

    #[test]
    fn max_per_window_skips_and_reports() {
        let mut e = PolicyEngine::new(&[policy(gt("x", 0.5), None, None, Some((2, 1000)))]);
        let s = e.slot(&sig("x")).expect("slot");
        let mut out = Vec::new();
        for t in 0..6 {
            e.set(s, Scalar::Float(0.9), t * 10, &mut out);
            e.set(s, Scalar::Float(0.1), t * 10 + 5, &mut out);
        }
        assert_eq!(fires(&out), 2);
        assert_eq!(out.len(), 6, "four skips are reported");
        e.set(s, Scalar::Float(0.9), 1000, &mut out);
        assert_eq!(fires(&out), 3, "the window moved on");
    }

    #[test]
    fn three_valued_logic() {
        let and = Expr::Binary {
            op: BinaryOp::And,
            lhs: Box::new(gt("x", 0.5)),
            rhs: Box::new(gt("y", 0.5)),
            ty: PlanType::Bool,
        };
        let or = Expr::Binary {
            op: BinaryOp::Or,
            lhs: Box::new(gt("x", 0.5)),
            rhs: Box::new(gt("y", 0.5)),
            ty: PlanType::Bool,
        };
        let mut e =
            PolicyEngine::new(&[policy(and, None, None, None), policy(or, None, None, None)]);
        let y = e.slot(&sig("y")).expect("slot");
        let mut out = Vec::new();
        e.set(y, Scalar::Float(0.9), 0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].policy, 1, "only `or` fires with x missing");
    }
}
