//! The wiring graph of an application's autonomic part: triggers → agents → policies → actions.
//!
//! Edges point the way control and data flow when the application runs — a sensor value flows
//! from the agent that senses it to the trigger or policy that reads it; a trigger or policy
//! calls an agent's action or runs a workflow; an agent is configured with the service it
//! watches. [`EdgeKind`] records, besides, which end *refers to* which, so "is this agent used
//! anywhere?" does not depend on the drawing direction.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::Dfs;
use petgraph::Direction;
use std::collections::{HashMap, HashSet};

/// What a wiring node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    /// `trigger NAME: SOURCE -> ACTION`.
    Trigger,
    /// `policy NAME { … }`.
    Policy,
    /// `agent NAME: KIND { … }`.
    Agent,
    /// `workflow NAME { … }`.
    Workflow,
    /// `service NAME { … }`.
    Service,
}

impl NodeKind {
    /// The keyword that declares such a node (`trigger`, `agent`, …).
    pub fn keyword(self) -> &'static str {
        match self {
            NodeKind::Trigger => "trigger",
            NodeKind::Policy => "policy",
            NodeKind::Agent => "agent",
            NodeKind::Workflow => "workflow",
            NodeKind::Service => "service",
        }
    }
}

/// A declaration in the wiring graph.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WiringNode {
    /// What it is.
    pub kind: NodeKind,
    /// Its name.
    pub name: String,
}

/// A node of a [`WiringGraph`]: nodes are numbered from 0 in the order they were first added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// What an edge means, and so which of its ends refers to the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    /// `from`'s sensor (or a service's metric) is read by `to`, a trigger or policy: `tracker →
    /// new_data` "every 1000 new_samples", `checker → retrain_on_drift` "reads picked".
    /// `to` refers to `from`.
    Reads,
    /// `from`, a trigger or policy, calls an action of agent `to`: "check", "replace".
    /// `from` refers to `to`.
    Calls,
    /// `from`, a trigger or policy, runs workflow `to`: "run". `from` refers to `to`.
    Runs,
    /// Any other reference from `from` to `to`: an agent's config naming a service or workflow
    /// ("watches", "retrain", "target"), a declaration passed as an action argument.
    /// `from` refers to `to`.
    Uses,
}

/// A labelled edge.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WiringEdge {
    /// Where it starts (in the flow direction).
    pub from: NodeId,
    /// Where it ends.
    pub to: NodeId,
    /// What it means.
    pub kind: EdgeKind,
    /// The label to draw: "every 1000 new_samples", "reads picked", "check", "run", "replace",
    /// "watches".
    pub label: String,
}

impl WiringEdge {
    /// The end that is referred to (the one a "declared but never used" warning is about).
    pub fn referenced(&self) -> NodeId {
        match self.kind {
            EdgeKind::Reads => self.from,
            EdgeKind::Calls | EdgeKind::Runs | EdgeKind::Uses => self.to,
        }
    }

    /// The end whose declaration contains the reference.
    pub fn referrer(&self) -> NodeId {
        match self.kind {
            EdgeKind::Reads => self.to,
            EdgeKind::Calls | EdgeKind::Runs | EdgeKind::Uses => self.from,
        }
    }
}

/// The graph of triggers, agents, policies, workflows and services, built up one reference at a
/// time by the checker. Nodes are unique per (kind, name); identical edges are kept once. Output
/// order is insertion order, so the same program always gives the same graph.
#[derive(Clone, Debug, Default)]
pub struct WiringGraph {
    /// Node `i` is `NodeId(i)`; edge weights index `edges`.
    graph: DiGraph<WiringNode, usize>,
    edges: Vec<WiringEdge>,
    nodes_by_key: HashMap<(NodeKind, String), NodeId>,
    edges_by_value: HashMap<WiringEdge, usize>,
}

impl WiringGraph {
    /// An empty graph.
    pub fn new() -> WiringGraph {
        WiringGraph::default()
    }

    /// The node for (`kind`, `name`), added if it is not there yet.
    pub fn add_node(&mut self, kind: NodeKind, name: impl Into<String>) -> NodeId {
        let name = name.into();
        if let Some(&id) = self.nodes_by_key.get(&(kind, name.clone())) {
            return id;
        }
        let id = NodeId(
            self.graph
                .add_node(WiringNode {
                    kind,
                    name: name.clone(),
                })
                .index(),
        );
        self.nodes_by_key.insert((kind, name), id);
        id
    }

    /// Adds the edge `from → to` (unless the very same edge is there already) and returns its
    /// index in [`WiringGraph::edges`]; `None`, adding nothing, if either node is unknown.
    pub fn add_edge(
        &mut self,
        from: NodeId,
        to: NodeId,
        kind: EdgeKind,
        label: impl Into<String>,
    ) -> Option<usize> {
        if from.0 >= self.graph.node_count() || to.0 >= self.graph.node_count() {
            return None;
        }
        let edge = WiringEdge {
            from,
            to,
            kind,
            label: label.into(),
        };
        if let Some(&index) = self.edges_by_value.get(&edge) {
            return Some(index);
        }
        let index = self.edges.len();
        self.graph
            .add_edge(NodeIndex::new(from.0), NodeIndex::new(to.0), index);
        self.edges_by_value.insert(edge.clone(), index);
        self.edges.push(edge);
        Some(index)
    }

    /// The node for (`kind`, `name`), if added.
    pub fn find(&self, kind: NodeKind, name: &str) -> Option<NodeId> {
        self.nodes_by_key.get(&(kind, name.to_string())).copied()
    }

    /// The node `id`, if it exists.
    pub fn node(&self, id: NodeId) -> Option<&WiringNode> {
        self.graph.node_weight(NodeIndex::new(id.0))
    }

    /// All nodes in insertion order.
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &WiringNode)> + '_ {
        self.graph
            .node_indices()
            .map(move |i| (NodeId(i.index()), &self.graph[i]))
    }

    /// The nodes of one kind, in insertion order.
    pub fn nodes_of_kind(
        &self,
        kind: NodeKind,
    ) -> impl Iterator<Item = (NodeId, &WiringNode)> + '_ {
        self.nodes().filter(move |(_, node)| node.kind == kind)
    }

    /// All edges in insertion order.
    pub fn edges(&self) -> &[WiringEdge] {
        &self.edges
    }

    /// The number of nodes.
    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// The edges leaving `id`, in insertion order.
    pub fn edges_from(&self, id: NodeId) -> Vec<&WiringEdge> {
        self.edges_at(id, Direction::Outgoing)
    }

    /// The edges entering `id`, in insertion order.
    pub fn edges_to(&self, id: NodeId) -> Vec<&WiringEdge> {
        self.edges_at(id, Direction::Incoming)
    }

    fn edges_at(&self, id: NodeId, direction: Direction) -> Vec<&WiringEdge> {
        if id.0 >= self.graph.node_count() {
            return Vec::new();
        }
        let mut indices: Vec<usize> = self
            .graph
            .edges_directed(NodeIndex::new(id.0), direction)
            .map(|e| *e.weight())
            .collect();
        indices.sort_unstable();
        indices.into_iter().map(|i| &self.edges[i]).collect()
    }

    /// Whether some *other* declaration refers to `id` (see [`WiringEdge::referenced`]): an
    /// agent nobody reads from or calls, or a workflow nothing runs, is not referenced.
    pub fn is_referenced(&self, id: NodeId) -> bool {
        self.edges
            .iter()
            .any(|e| e.referenced() == id && e.referrer() != id)
    }

    /// The declarations that refer to `id`, ascending, without repeats.
    pub fn referrers(&self, id: NodeId) -> Vec<NodeId> {
        let mut referrers: Vec<NodeId> = self
            .edges
            .iter()
            .filter(|e| e.referenced() == id && e.referrer() != id)
            .map(WiringEdge::referrer)
            .collect();
        referrers.sort_unstable();
        referrers.dedup();
        referrers
    }

    /// The nodes of `kind` nothing refers to, in insertion order (for "unused" warnings).
    pub fn unreferenced(&self, kind: NodeKind) -> Vec<NodeId> {
        let referenced: HashSet<NodeId> = self
            .edges
            .iter()
            .filter(|e| e.referenced() != e.referrer())
            .map(WiringEdge::referenced)
            .collect();
        self.nodes_of_kind(kind)
            .map(|(id, _)| id)
            .filter(|id| !referenced.contains(id))
            .collect()
    }

    /// Every node reachable from `starts` along the flow direction (the starts included),
    /// ascending. Unknown starts are ignored.
    pub fn reachable_from(&self, starts: &[NodeId]) -> Vec<NodeId> {
        let n = self.graph.node_count();
        let mut seen = vec![false; n];
        let mut dfs = Dfs::empty(&self.graph);
        for &start in starts.iter().filter(|s| s.0 < n) {
            dfs.move_to(NodeIndex::new(start.0));
            while let Some(node) = dfs.next(&self.graph) {
                seen[node.index()] = true;
            }
        }
        seen.iter()
            .enumerate()
            .filter(|&(_, &s)| s)
            .map(|(i, _)| NodeId(i))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    /// The wiring of the north-star MNIST program (language spec §2).
    pub(crate) fn mnist() -> WiringGraph {
        let mut g = WiringGraph::new();
        let nightly = g.add_node(NodeKind::Trigger, "nightly");
        let new_data = g.add_node(NodeKind::Trigger, "new_data");
        let tracker = g.add_node(NodeKind::Agent, "tracker");
        let checker = g.add_node(NodeKind::Agent, "checker");
        let improver = g.add_node(NodeKind::Agent, "improver");
        let planner = g.add_node(NodeKind::Agent, "planner");
        let retrain = g.add_node(NodeKind::Policy, "retrain_on_drift");
        let replace = g.add_node(NodeKind::Policy, "replace_if_better");
        let scale = g.add_node(NodeKind::Policy, "scale_out");
        let training = g.add_node(NodeKind::Workflow, "training");
        let predictor = g.add_node(NodeKind::Service, "predictor");
        g.add_edge(nightly, training, EdgeKind::Runs, "run");
        g.add_edge(tracker, new_data, EdgeKind::Reads, "every 1000 new_samples");
        g.add_edge(tracker, new_data, EdgeKind::Reads, "reads batch");
        g.add_edge(new_data, checker, EdgeKind::Calls, "check");
        g.add_edge(checker, retrain, EdgeKind::Reads, "reads picked");
        g.add_edge(retrain, improver, EdgeKind::Calls, "improve");
        g.add_edge(improver, replace, EdgeKind::Reads, "reads candidate");
        g.add_edge(predictor, replace, EdgeKind::Reads, "reads model");
        g.add_edge(replace, planner, EdgeKind::Calls, "replace");
        g.add_edge(predictor, scale, EdgeKind::Reads, "reads latency.p95");
        g.add_edge(scale, planner, EdgeKind::Calls, "scale");
        g.add_edge(tracker, predictor, EdgeKind::Uses, "watches");
        g.add_edge(improver, training, EdgeKind::Uses, "retrain");
        g.add_edge(planner, predictor, EdgeKind::Uses, "target");
        g
    }

    #[test]
    fn nodes_are_unique_per_kind_and_name() {
        let mut g = WiringGraph::new();
        let a = g.add_node(NodeKind::Agent, "x");
        let b = g.add_node(NodeKind::Agent, "x".to_string());
        let c = g.add_node(NodeKind::Workflow, "x");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(g.node_count(), 2);
        assert_eq!(g.find(NodeKind::Workflow, "x"), Some(c));
        assert_eq!(g.find(NodeKind::Service, "x"), None);
        assert_eq!(
            g.node(c),
            Some(&WiringNode {
                kind: NodeKind::Workflow,
                name: "x".into()
            })
        );
        assert_eq!(g.node(NodeId(9)), None);
    }

    #[test]
    fn edges_dedupe_and_reject_unknown_nodes() {
        let mut g = WiringGraph::new();
        let t = g.add_node(NodeKind::Trigger, "t");
        let w = g.add_node(NodeKind::Workflow, "w");
        assert_eq!(g.add_edge(t, w, EdgeKind::Runs, "run"), Some(0));
        assert_eq!(g.add_edge(t, w, EdgeKind::Runs, "run"), Some(0));
        assert_eq!(g.add_edge(t, w, EdgeKind::Runs, "run with lr"), Some(1));
        assert_eq!(g.add_edge(t, NodeId(7), EdgeKind::Runs, "run"), None);
        assert_eq!(g.edges().len(), 2);
        assert_eq!(g.edges_from(t).len(), 2);
        assert_eq!(g.edges_to(w).len(), 2);
        assert!(g.edges_to(NodeId(7)).is_empty());
    }

    #[test]
    fn references() {
        let g = mnist();
        let id = |kind, name| g.find(kind, name).unwrap();
        // Every agent of the case study is used by a trigger or a policy.
        for agent in ["tracker", "checker", "improver", "planner"] {
            assert!(g.is_referenced(id(NodeKind::Agent, agent)), "{agent}");
        }
        assert!(g.is_referenced(id(NodeKind::Workflow, "training")));
        assert!(g.is_referenced(id(NodeKind::Service, "predictor")));
        // Triggers and policies are roots of the wiring: nothing refers to them.
        assert_eq!(
            g.unreferenced(NodeKind::Policy),
            vec![
                id(NodeKind::Policy, "retrain_on_drift"),
                id(NodeKind::Policy, "replace_if_better"),
                id(NodeKind::Policy, "scale_out")
            ]
        );
        assert!(g.unreferenced(NodeKind::Agent).is_empty());
        assert_eq!(
            g.referrers(id(NodeKind::Agent, "planner")),
            vec![
                id(NodeKind::Policy, "replace_if_better"),
                id(NodeKind::Policy, "scale_out")
            ]
        );
        assert_eq!(
            g.referrers(id(NodeKind::Service, "predictor")),
            vec![
                id(NodeKind::Agent, "tracker"),
                id(NodeKind::Agent, "planner"),
                id(NodeKind::Policy, "replace_if_better"),
                id(NodeKind::Policy, "scale_out")
            ]
        );
    }

    #[test]
    fn an_agent_only_configured_is_not_referenced() {
        let mut g = WiringGraph::new();
        let spare = g.add_node(NodeKind::Agent, "spare");
        let predictor = g.add_node(NodeKind::Service, "predictor");
        g.add_edge(spare, predictor, EdgeKind::Uses, "watches");
        // A reference to itself does not count either.
        g.add_edge(spare, spare, EdgeKind::Uses, "self");
        assert!(!g.is_referenced(spare));
        assert!(g.is_referenced(predictor));
        assert_eq!(g.unreferenced(NodeKind::Agent), vec![spare]);
        let e = &g.edges()[0];
        assert_eq!((e.referrer(), e.referenced()), (spare, predictor));
    }

    #[test]
    fn reachability_follows_the_flow() {
        let g = mnist();
        let id = |kind, name| g.find(kind, name).unwrap();
        let names = |ids: Vec<NodeId>| {
            ids.into_iter()
                .map(|i| g.node(i).unwrap().name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(g.reachable_from(&[id(NodeKind::Trigger, "nightly")])),
            vec!["nightly", "training"]
        );
        let from_checker = names(g.reachable_from(&[id(NodeKind::Agent, "checker"), NodeId(99)]));
        assert_eq!(
            from_checker,
            vec![
                "checker",
                "improver",
                "planner",
                "retrain_on_drift",
                "replace_if_better",
                "scale_out",
                "training",
                "predictor"
            ]
        );
    }
}
