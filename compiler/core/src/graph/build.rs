//! Building the graphs of a checked program: one step DAG per workflow (reporting cycles and
//! unreachable steps), and the wiring of triggers, agents and policies.

use super::wiring::{EdgeKind, NodeKind, WiringGraph};
use super::workflow::{EdgeCause, StepEdge, StepNode, WorkflowGraph};
use crate::diagnostics::{Code, Diagnostic};
use crate::resolve::Program;
use crate::symbols::{DefId, DefKind, Symbols};
use crate::syntax::ast::*;
use crate::types::{DependencyCause, Facts};

/// A workflow's DAG, with its steps' ids.
#[derive(Clone, Debug)]
pub struct WorkflowDag {
    /// The workflow.
    pub workflow: DefId,
    /// Its name.
    pub name: String,
    /// Step `i` of the graph is `steps[i]`, in source order.
    pub steps: Vec<DefId>,
    /// The graph.
    pub graph: WorkflowGraph,
    /// A topological order of step indices (source order among ready steps), if acyclic.
    pub order: Option<Vec<usize>>,
}

/// Builds each workflow's DAG from the dependencies the checker found; reports cycles
/// (E0401, with the full path) and steps that hang below a cycle (E0402).
pub fn build_workflow_graphs(
    p: &Program<'_>,
    facts: &Facts,
    symbols: &Symbols,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<WorkflowDag> {
    let mut dags = Vec::with_capacity(p.workflows.len());
    for w in &p.workflows {
        let file = w.node.file;
        let steps = w.steps.clone();
        let positions: std::collections::HashMap<DefId, usize> =
            steps.iter().enumerate().map(|(i, &s)| (s, i)).collect();
        let index_of = |def: DefId| positions.get(&def).copied();
        let nodes: Vec<StepNode> = steps
            .iter()
            .map(|&s| {
                let def = symbols.def(s);
                StepNode {
                    name: def.name.clone(),
                    span: def.name_at.span,
                }
            })
            .collect();
        let mut edges = Vec::new();
        for dep in facts.dependencies.get(&w.node.def).into_iter().flatten() {
            let (Some(from), Some(to)) = (index_of(dep.from), index_of(dep.to)) else {
                continue;
            };
            let cause = match &dep.cause {
                DependencyCause::Input(port) => EdgeCause::Input { port: port.clone() },
                DependencyCause::After => EdgeCause::After,
            };
            edges.push(StepEdge {
                from,
                to,
                cause,
                span: dep.span,
            });
        }
        let graph = WorkflowGraph::new(nodes, edges);
        let report = graph.analyze();
        for cycle in &report.cycles {
            let names: Vec<&str> = cycle
                .steps
                .iter()
                .map(|&i| graph.steps()[i].name.as_str())
                .collect();
            let first = cycle.steps.first().copied().unwrap_or(0);
            let path = if names.len() == 1 {
                format!("{0} → {0}", names[0])
            } else {
                let mut path = names.join(" → ");
                path.push_str(&format!(" → {}", names[0]));
                path
            };
            let mut d = Diagnostic::new(
                Code::E0401,
                file,
                graph.steps()[first].span,
                format!("workflow `{}` has a cycle: {path}", w.node.ast.name.name),
            )
            .with_label("this step depends on itself through the cycle");
            for &edge in &cycle.edges {
                let Some(e) = graph.edges().get(edge) else {
                    continue;
                };
                let (from, to) = (&graph.steps()[e.from].name, &graph.steps()[e.to].name);
                let why = match &e.cause {
                    EdgeCause::Input { port } => {
                        format!("`{to}` takes input `{port}` from `{from}`")
                    }
                    EdgeCause::After => format!("`{to}` runs after `{from}`"),
                };
                d = d.with_secondary(file, e.span, why);
            }
            diagnostics.push(d.with_help(
                "a workflow is a DAG: remove one of these dependencies to break the cycle",
            ));
        }
        for u in &report.unreachable {
            let step = &graph.steps()[u.step];
            let via = report
                .cycles
                .get(u.via_cycle)
                .and_then(|c| c.steps.first())
                .map(|&i| graph.steps()[i].name.clone())
                .unwrap_or_default();
            diagnostics.push(
                Diagnostic::new(
                    Code::E0402,
                    file,
                    step.span,
                    format!(
                        "step `{}` can never run: it waits on the cycle through `{via}`",
                        step.name
                    ),
                )
                .with_label("unreachable: no order of the workflow's roots ever gets here")
                .with_help("fix the cycle, or check its `after` list and inputs"),
            );
        }
        let order = if report.cycles.is_empty() {
            graph.topological_order()
        } else {
            None
        };
        dags.push(WorkflowDag {
            workflow: w.node.def,
            name: w.node.ast.name.name.clone(),
            steps,
            graph,
            order,
        });
    }
    dags
}

/// Builds the wiring graph: who reads whose sensors, who calls which actions, which agent is
/// configured with which service or workflow.
pub fn build_wiring(p: &Program<'_>, symbols: &Symbols) -> WiringGraph {
    let mut g = WiringGraph::new();
    for w in &p.workflows {
        g.add_node(NodeKind::Workflow, w.node.ast.name.name.clone());
    }
    for s in &p.services {
        g.add_node(NodeKind::Service, s.ast.name.name.clone());
    }
    for a in &p.agents {
        g.add_node(NodeKind::Agent, a.ast.name.name.clone());
    }
    let kind_of = |name: &str| -> Option<NodeKind> {
        let def = *p.values.get(name)?;
        match symbols.def(def).kind {
            DefKind::Workflow => Some(NodeKind::Workflow),
            DefKind::Service => Some(NodeKind::Service),
            DefKind::Agent => Some(NodeKind::Agent),
            _ => None,
        }
    };
    for a in &p.agents {
        let Some(me) = g.find(NodeKind::Agent, &a.ast.name.name) else {
            continue;
        };
        for field in &a.ast.fields {
            let mut paths = Vec::new();
            collect_paths(&field.value, &mut paths);
            for path in paths {
                let Some(head) = path.first() else { continue };
                if let Some(kind) = kind_of(head) {
                    if let Some(to) = g.find(kind, head) {
                        g.add_edge(me, to, EdgeKind::Uses, field.name.name.clone());
                    }
                }
            }
        }
    }
    for t in &p.triggers {
        let me = g.add_node(NodeKind::Trigger, t.ast.name.name.clone());
        match &t.ast.source {
            TriggerSource::Every { count, sensor, .. } => {
                if let Some(path) = sensor.as_path() {
                    let count = match &count.kind {
                        ExprKind::Int(n) => n.to_string(),
                        _ => "N".to_string(),
                    };
                    let sensor_name = path
                        .iter()
                        .skip(1)
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(".");
                    if let Some(from) = path
                        .first()
                        .and_then(|h| kind_of(&h.name).and_then(|k| g.find(k, &h.name)))
                    {
                        g.add_edge(
                            from,
                            me,
                            EdgeKind::Reads,
                            format!("every {count} {sensor_name}"),
                        );
                    }
                }
            }
            TriggerSource::On(event) => {
                if let Some(path) = event.as_path() {
                    let rest = path
                        .iter()
                        .skip(1)
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(".");
                    if let Some(from) = path
                        .first()
                        .and_then(|h| kind_of(&h.name).and_then(|k| g.find(k, &h.name)))
                    {
                        g.add_edge(from, me, EdgeKind::Reads, format!("on {rest}"));
                    }
                }
            }
            TriggerSource::Schedule(_) | TriggerSource::Webhook(_) => {}
        }
        wire_action(&mut g, me, &t.ast.action, &kind_of);
    }
    for policy in &p.policies {
        let me = g.add_node(NodeKind::Policy, policy.ast.name.name.clone());
        let mut paths = Vec::new();
        collect_paths(&policy.ast.when, &mut paths);
        for path in paths {
            let Some(head) = path.first() else { continue };
            let Some(from) = kind_of(head).and_then(|k| g.find(k, head)) else {
                continue;
            };
            let rest = path.iter().skip(1).cloned().collect::<Vec<_>>().join(".");
            g.add_edge(from, me, EdgeKind::Reads, format!("reads {rest}"));
        }
        for action in &policy.ast.then {
            wire_action(&mut g, me, action, &kind_of);
        }
    }
    g
}

fn wire_action(
    g: &mut WiringGraph,
    me: super::wiring::NodeId,
    action: &Action,
    kind_of: &dyn Fn(&str) -> Option<NodeKind>,
) {
    match action {
        Action::Run(run) => {
            if let Some(to) = g.find(NodeKind::Workflow, &run.workflow.name) {
                g.add_edge(me, to, EdgeKind::Runs, "run");
            }
        }
        Action::Call(expr) => {
            let ExprKind::Call { callee, args } = &expr.kind else {
                return;
            };
            if let Some(path) = callee.as_path() {
                if let [agent, action] = path.as_slice() {
                    if let Some(to) = g.find(NodeKind::Agent, &agent.name) {
                        g.add_edge(me, to, EdgeKind::Calls, action.name.clone());
                    }
                }
            }
            for arg in args {
                if let ExprKind::Name(name) = &arg.value.kind {
                    if let Some(to) = kind_of(&name.name).and_then(|k| g.find(k, &name.name)) {
                        if kind_of(&name.name) == Some(NodeKind::Service) {
                            g.add_edge(me, to, EdgeKind::Uses, "acts on");
                        }
                    }
                }
            }
        }
    }
}

/// Every dotted path (`a.b.c`) read in an expression, as names.
fn collect_paths(expr: &Expr, out: &mut Vec<Vec<String>>) {
    if let Some(path) = expr.as_path() {
        out.push(path.iter().map(|i| i.name.clone()).collect());
        return;
    }
    match &expr.kind {
        ExprKind::Field { base, .. } => collect_paths(base, out),
        ExprKind::Call { callee, args } => {
            collect_paths(callee, out);
            for a in args {
                collect_paths(&a.value, out);
            }
        }
        ExprKind::List(items) => items.iter().for_each(|i| collect_paths(i, out)),
        ExprKind::Record(fields) => fields.iter().for_each(|f| collect_paths(&f.value, out)),
        ExprKind::Range { start, end } => {
            collect_paths(start, out);
            collect_paths(end, out);
        }
        ExprKind::Unary { operand, .. } | ExprKind::Paren(operand) => collect_paths(operand, out),
        ExprKind::Binary { lhs, rhs, .. } => {
            collect_paths(lhs, out);
            collect_paths(rhs, out);
        }
        _ => {}
    }
}
