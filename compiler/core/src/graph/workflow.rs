//! The step DAG of one workflow: which step waits for which, and what is wrong with it.
//!
//! Edges point from producer to consumer (the direction data flows and the order steps run in):
//! `input model: Model = fit.model` in `report` is the edge `fit → report`, and so is
//! `after = [fit]` in `report`.

use crate::span::Span;
use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// A step as the graph sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepNode {
    /// The step's name.
    pub name: String,
    /// Where the step's name is written.
    pub span: Span,
}

/// Why one step depends on another.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EdgeCause {
    /// The consumer binds its input `port` to an output of the producer.
    Input {
        /// The consumer's input name.
        port: String,
    },
    /// The consumer lists the producer in `after = […]`.
    After,
}

/// One dependency, as written in the consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepEdge {
    /// Index of the producer step.
    pub from: usize,
    /// Index of the consumer step.
    pub to: usize,
    /// Why.
    pub cause: EdgeCause,
    /// Where the dependency is written (the input's binding, or the entry in `after`).
    pub span: Span,
}

/// A cycle of steps, as a diagnostic should show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// The cycle path in edge direction (each step feeds the next; the last feeds the first),
    /// starting at the step that comes first in source order. A self-loop is one step. This is
    /// a shortest cycle through that step, so the message stays short.
    pub steps: Vec<usize>,
    /// One edge per hop (indices into the edges given to [`WorkflowGraph::new`]): `edges[i]`
    /// goes from `steps[i]` to `steps[(i + 1) % steps.len()]`; where several edges make the same
    /// hop, the first one given.
    pub edges: Vec<usize>,
    /// Every step of the strongly connected component the cycle lies in, ascending: the steps of
    /// [`Cycle::steps`] and any others tangled with them.
    pub members: Vec<usize>,
}

/// A step that can never start because it depends, directly or not, on a cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unreachable {
    /// The step.
    pub step: usize,
    /// Index into [`GraphReport::cycles`] of the first cycle it depends on.
    pub via_cycle: usize,
}

/// What is wrong with a workflow graph.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GraphReport {
    /// One cycle per strongly connected component that has one, ordered by first step.
    pub cycles: Vec<Cycle>,
    /// Steps on no cycle that wait on one (so no root leads to them), ascending.
    pub unreachable: Vec<Unreachable>,
    /// Indices of edges given with a step index out of range; they are left out of the graph.
    pub invalid_edges: Vec<usize>,
}

impl GraphReport {
    /// Whether the graph is a proper DAG with only valid edges.
    pub fn is_ok(&self) -> bool {
        self.cycles.is_empty() && self.unreachable.is_empty() && self.invalid_edges.is_empty()
    }
}

/// The dependency graph of one workflow's steps.
#[derive(Clone, Debug)]
pub struct WorkflowGraph {
    steps: Vec<StepNode>,
    edges: Vec<StepEdge>,
    invalid_edges: Vec<usize>,
    /// Node `i` is step `i`; edge weights are indices into `edges`.
    graph: DiGraph<usize, usize>,
    /// Per step, its outgoing valid edges as `(consumer, edge index)`, sorted: every traversal
    /// walks these so results never depend on petgraph's internal neighbour order.
    out: Rows<(usize, usize)>,
    /// Per step, its producers, sorted and deduplicated.
    preds: Rows<usize>,
    /// Per step, its consumers, sorted and deduplicated.
    succs: Rows<usize>,
}

impl WorkflowGraph {
    /// Builds the graph of `steps` (indexed by position) with dependencies `edges`. Edges whose
    /// `from` or `to` is out of range are left out and listed in
    /// [`GraphReport::invalid_edges`]; nothing here panics.
    pub fn new(steps: Vec<StepNode>, edges: Vec<StepEdge>) -> WorkflowGraph {
        let n = steps.len();
        let mut graph = DiGraph::with_capacity(n, edges.len());
        for i in 0..n {
            graph.add_node(i);
        }
        let mut invalid_edges = Vec::new();
        let mut outgoing = Vec::with_capacity(edges.len());
        let mut incoming = Vec::with_capacity(edges.len());
        for (index, edge) in edges.iter().enumerate() {
            if edge.from >= n || edge.to >= n {
                invalid_edges.push(index);
                continue;
            }
            graph.add_edge(NodeIndex::new(edge.from), NodeIndex::new(edge.to), index);
            outgoing.push((edge.from, (edge.to, index)));
            incoming.push((edge.to, edge.from));
        }
        let mut out = Rows::group(n, &outgoing);
        out.sort_rows();
        let succs = Rows::from_rows(n, |step| out.row(step).iter().map(|&(to, _)| to)).deduped();
        let mut preds = Rows::group(n, &incoming);
        preds.sort_rows();
        let preds = preds.deduped();
        WorkflowGraph {
            steps,
            edges,
            invalid_edges,
            graph,
            out,
            preds,
            succs,
        }
    }

    /// The steps, by index.
    pub fn steps(&self) -> &[StepNode] {
        &self.steps
    }

    /// The edges as given (including invalid ones, see [`GraphReport::invalid_edges`]).
    pub fn edges(&self) -> &[StepEdge] {
        &self.edges
    }

    /// The valid edges with their indices, ordered by (producer, consumer, index).
    pub fn valid_edges(&self) -> impl Iterator<Item = (usize, &StepEdge)> + '_ {
        self.out
            .items
            .iter()
            .map(move |&(_, index)| (index, &self.edges[index]))
    }

    /// The number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The underlying petgraph graph: node `i` is step `i` (its weight is `i`), edge weights are
    /// indices into [`WorkflowGraph::edges`]. Invalid edges are absent.
    pub fn petgraph(&self) -> &DiGraph<usize, usize> {
        &self.graph
    }

    /// Finds the cycles and the steps stuck below them. `O(steps + edges)`.
    pub fn analyze(&self) -> GraphReport {
        let mut report = GraphReport {
            invalid_edges: self.invalid_edges.clone(),
            ..GraphReport::default()
        };
        // The common case, a DAG, is settled by one topological pass: no SCC work at all.
        if self.topological_order().is_some() {
            return report;
        }
        // Kosaraju rather than Tarjan: petgraph's Tarjan recurses once per step of a path, and
        // a long chain of steps must not overflow the stack. Both are linear.
        let n = self.steps.len();
        let mut component = vec![usize::MAX; n];
        let mut cyclic: Vec<Vec<usize>> = Vec::new();
        for scc in kosaraju_scc(&self.graph) {
            let is_cycle = scc.len() > 1
                || scc
                    .first()
                    .is_some_and(|&node| self.has_self_loop(node.index()));
            if !is_cycle {
                continue;
            }
            let mut members: Vec<usize> = scc.iter().map(|node| node.index()).collect();
            members.sort_unstable();
            cyclic.push(members);
        }
        // Order cycles by their first step in source order, whatever order the SCCs came in.
        cyclic.sort_unstable_by_key(|members| members[0]);
        for (id, members) in cyclic.iter().enumerate() {
            for &step in members {
                component[step] = id;
            }
        }
        report.cycles = cyclic
            .into_iter()
            .enumerate()
            .map(|(id, members)| self.shortest_cycle(members, id, &component))
            .collect();
        report.unreachable = self.stuck_below(&report.cycles, &component);
        report
    }

    /// A shortest cycle through the first member, by breadth-first search inside the component.
    fn shortest_cycle(&self, members: Vec<usize>, id: usize, component: &[usize]) -> Cycle {
        let start = members[0];
        // `parent[v]` = the edge (from, index) by which the search first reached `v`.
        let mut parent: Vec<Option<(usize, usize)>> = vec![None; self.steps.len()];
        let mut queue = VecDeque::from([start]);
        let mut closing = None;
        'search: while let Some(step) = queue.pop_front() {
            for &(to, index) in self.out.row(step) {
                if component[to] != id {
                    continue;
                }
                if to == start {
                    closing = Some((step, index));
                    break 'search;
                }
                if parent[to].is_none() {
                    parent[to] = Some((step, index));
                    queue.push_back(to);
                }
            }
        }
        // Every member of a cyclic component reaches `start`, so `closing` is always found.
        let mut steps = Vec::new();
        let mut edges = Vec::new();
        if let Some((last, index)) = closing {
            edges.push(index);
            let mut step = last;
            while step != start {
                steps.push(step);
                match parent[step] {
                    Some((from, index)) => {
                        edges.push(index);
                        step = from;
                    }
                    None => break,
                }
            }
            steps.push(start);
            steps.reverse();
            edges.reverse();
        }
        Cycle {
            steps,
            edges,
            members,
        }
    }

    /// The steps on no cycle that depend on one, each with the first cycle it depends on.
    fn stuck_below(&self, cycles: &[Cycle], component: &[usize]) -> Vec<Unreachable> {
        let mut via = vec![usize::MAX; self.steps.len()];
        // One breadth-first sweep per cycle, in cycle order: a step claimed by an earlier cycle
        // is not visited again, so every step and edge is walked once overall.
        for (id, cycle) in cycles.iter().enumerate() {
            let mut queue: VecDeque<usize> = cycle.members.iter().copied().collect();
            while let Some(step) = queue.pop_front() {
                for &to in self.succs.row(step) {
                    if component[to] == usize::MAX && via[to] == usize::MAX {
                        via[to] = id;
                        queue.push_back(to);
                    }
                }
            }
        }
        via.iter()
            .enumerate()
            .filter(|&(_, &cycle)| cycle != usize::MAX)
            .map(|(step, &via_cycle)| Unreachable { step, via_cycle })
            .collect()
    }

    fn has_self_loop(&self, step: usize) -> bool {
        self.succs.row(step).binary_search(&step).is_ok()
    }

    /// The order to run the steps in, or `None` if there is a cycle. Deterministic: among the
    /// steps ready to run, the one first in source order goes first (Kahn's algorithm with a
    /// min-heap), so an already ordered workflow keeps its order. `O((steps + edges) log steps)`.
    pub fn topological_order(&self) -> Option<Vec<usize>> {
        let n = self.steps.len();
        let mut waiting: Vec<usize> = (0..n).map(|step| self.preds.row(step).len()).collect();
        let mut ready: BinaryHeap<Reverse<usize>> = (0..n)
            .filter(|&step| waiting[step] == 0)
            .map(Reverse)
            .collect();
        let mut order = Vec::with_capacity(n);
        while let Some(Reverse(step)) = ready.pop() {
            order.push(step);
            for &next in self.succs.row(step) {
                waiting[next] -= 1;
                if waiting[next] == 0 {
                    ready.push(Reverse(next));
                }
            }
        }
        (order.len() == n).then_some(order)
    }

    /// The steps `step` waits for, ascending and deduplicated (empty for an unknown step).
    pub fn dependencies(&self, step: usize) -> Vec<usize> {
        self.preds.row(step).to_vec()
    }

    /// The steps that wait for `step`, ascending and deduplicated (empty for an unknown step).
    pub fn dependants(&self, step: usize) -> Vec<usize> {
        self.succs.row(step).to_vec()
    }

    /// The steps that wait for nothing, ascending (a step with `after = [itself]` waits).
    pub fn roots(&self) -> Vec<usize> {
        (0..self.steps.len())
            .filter(|&step| self.preds.row(step).is_empty())
            .collect()
    }

    /// The steps nothing waits for, ascending.
    pub fn sinks(&self) -> Vec<usize> {
        (0..self.steps.len())
            .filter(|&step| self.succs.row(step).is_empty())
            .collect()
    }
}

/// Per-step lists stored flat, as compressed sparse rows: row `i` is
/// `items[start[i]..start[i + 1]]`. One allocation per table instead of one per step, which is
/// most of the cost of building a graph of thousands of steps.
#[derive(Clone, Debug)]
struct Rows<T> {
    start: Vec<usize>,
    items: Vec<T>,
}

impl<T: Copy + Default> Rows<T> {
    /// Groups `(row, item)` pairs by row (a counting sort), keeping their order within a row.
    fn group(n: usize, pairs: &[(usize, T)]) -> Rows<T> {
        let mut start = vec![0; n + 1];
        for &(row, _) in pairs {
            start[row + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut items = vec![T::default(); pairs.len()];
        let mut next = start.clone();
        for &(row, item) in pairs {
            items[next[row]] = item;
            next[row] += 1;
        }
        Rows { start, items }
    }

    /// Rows `0..n`, each made by `row`.
    fn from_rows<I: Iterator<Item = T>>(n: usize, mut row: impl FnMut(usize) -> I) -> Rows<T> {
        let mut start = Vec::with_capacity(n + 1);
        let mut items = Vec::new();
        start.push(0);
        for i in 0..n {
            items.extend(row(i));
            start.push(items.len());
        }
        Rows { start, items }
    }

    /// Row `i`; empty for a row that does not exist.
    fn row(&self, i: usize) -> &[T] {
        match (self.start.get(i), self.start.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.items[a..b],
            _ => &[],
        }
    }
}

impl<T: Copy + Default + Ord> Rows<T> {
    /// Sorts every row.
    fn sort_rows(&mut self) {
        for i in 0..self.start.len().saturating_sub(1) {
            self.items[self.start[i]..self.start[i + 1]].sort_unstable();
        }
    }

    /// The same rows without repeated neighbours (sorted rows: without repeats).
    fn deduped(&self) -> Rows<T> {
        let n = self.start.len().saturating_sub(1);
        Rows::from_rows(n, |i| {
            let row = self.row(i);
            row.iter()
                .enumerate()
                .filter(move |&(j, item)| j == 0 || row[j - 1] != *item)
                .map(|(_, &item)| item)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn steps(n: usize) -> Vec<StepNode> {
        (0..n)
            .map(|i| StepNode {
                name: format!("s{i}"),
                span: Span::new(i * 10, i * 10 + 2),
            })
            .collect()
    }

    fn input(from: usize, to: usize) -> StepEdge {
        StepEdge {
            from,
            to,
            cause: EdgeCause::Input {
                port: format!("in{from}"),
            },
            span: Span::new(to * 10, to * 10 + 5),
        }
    }

    fn after(from: usize, to: usize) -> StepEdge {
        StepEdge {
            from,
            to,
            cause: EdgeCause::After,
            span: Span::new(to * 10 + 5, to * 10 + 8),
        }
    }

    fn graph(n: usize, edges: Vec<StepEdge>) -> WorkflowGraph {
        WorkflowGraph::new(steps(n), edges)
    }

    #[test]
    fn a_dag_is_ok() {
        // 0 → 1 → 3, 0 → 2 → 3: fan-out then fan-in.
        let g = graph(4, vec![input(0, 1), input(0, 2), input(1, 3), input(2, 3)]);
        assert!(g.analyze().is_ok());
        assert_eq!(g.topological_order(), Some(vec![0, 1, 2, 3]));
        assert_eq!(g.roots(), vec![0]);
        assert_eq!(g.sinks(), vec![3]);
        assert_eq!(g.dependencies(3), vec![1, 2]);
        assert_eq!(g.dependants(0), vec![1, 2]);
        assert_eq!(g.dependencies(0), Vec::<usize>::new());
        assert_eq!(g.dependencies(99), Vec::<usize>::new());
        assert_eq!(g.dependants(99), Vec::<usize>::new());
    }

    #[test]
    fn empty_graph() {
        let g = graph(0, vec![]);
        assert!(g.is_empty());
        assert!(g.analyze().is_ok());
        assert_eq!(g.topological_order(), Some(vec![]));
        assert!(g.roots().is_empty() && g.sinks().is_empty());
    }

    #[test]
    fn duplicate_edges_count_once() {
        // `report` binds two inputs to `fit` and also lists it in `after`.
        let g = graph(2, vec![input(0, 1), input(0, 1), after(0, 1)]);
        assert_eq!(g.dependencies(1), vec![0]);
        assert_eq!(g.dependants(0), vec![1]);
        assert_eq!(g.topological_order(), Some(vec![0, 1]));
        assert_eq!(
            g.valid_edges().map(|(i, _)| i).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn topological_order_prefers_source_order() {
        // Independent steps keep their order; a step waits only as long as it must.
        let g = graph(5, vec![input(3, 0), input(4, 1)]);
        assert_eq!(g.topological_order(), Some(vec![2, 3, 0, 4, 1]));
        // Same edges, given in another order: same result.
        let g2 = graph(5, vec![input(4, 1), input(3, 0)]);
        assert_eq!(g2.topological_order(), g.topological_order());
        let g = graph(3, vec![]);
        assert_eq!(g.topological_order(), Some(vec![0, 1, 2]));
    }

    #[test]
    fn self_loop_via_after() {
        let g = graph(2, vec![input(0, 1), after(1, 1)]);
        let report = g.analyze();
        assert_eq!(
            report.cycles,
            vec![Cycle {
                steps: vec![1],
                edges: vec![1],
                members: vec![1]
            }]
        );
        assert!(report.unreachable.is_empty());
        assert_eq!(g.topological_order(), None);
        assert_eq!(g.roots(), vec![0]);
        assert_eq!(g.dependencies(1), vec![0, 1]);
    }

    #[test]
    fn two_cycle() {
        // 0 ⇄ 1; edge 0 is 1 → 0, edge 1 is 0 → 1.
        let g = graph(2, vec![input(1, 0), after(0, 1)]);
        let report = g.analyze();
        assert_eq!(
            report.cycles,
            vec![Cycle {
                steps: vec![0, 1],
                edges: vec![1, 0],
                members: vec![0, 1]
            }]
        );
        assert!(report.unreachable.is_empty());
        assert!(g.roots().is_empty());
    }

    #[test]
    fn three_cycle_with_an_unreachable_tail() {
        // root 0 → 2; cycle 2 → 3 → 1 → 2; tail 3 → 4 → 5, and 0 → 5 (5 is reachable from a
        // root but still waits on the cycle).
        let edges = vec![
            input(0, 2),
            input(2, 3),
            input(3, 1),
            after(1, 2),
            input(3, 4),
            input(4, 5),
            input(0, 5),
        ];
        let g = graph(6, edges);
        let report = g.analyze();
        assert_eq!(
            report.cycles,
            vec![Cycle {
                steps: vec![1, 2, 3],
                edges: vec![3, 1, 2],
                members: vec![1, 2, 3]
            }]
        );
        assert_eq!(
            report.unreachable,
            vec![
                Unreachable {
                    step: 4,
                    via_cycle: 0
                },
                Unreachable {
                    step: 5,
                    via_cycle: 0
                }
            ]
        );
        assert!(report.invalid_edges.is_empty());
        assert!(!report.is_ok());
    }

    #[test]
    fn two_separate_cycles() {
        // Cycle A: 4 ⇄ 5; cycle B: 1 → 2 → 1. Step 3 hangs below B, step 6 below both (A's
        // first step comes later, so 6 is attributed to B), step 0 is a fine root.
        let edges = vec![
            input(5, 4),
            input(4, 5),
            input(1, 2),
            input(2, 1),
            input(2, 3),
            input(5, 6),
            input(3, 6),
            input(0, 3),
        ];
        let g = graph(7, edges);
        let report = g.analyze();
        assert_eq!(
            report.cycles,
            vec![
                Cycle {
                    steps: vec![1, 2],
                    edges: vec![2, 3],
                    members: vec![1, 2]
                },
                Cycle {
                    steps: vec![4, 5],
                    edges: vec![1, 0],
                    members: vec![4, 5]
                },
            ]
        );
        assert_eq!(
            report.unreachable,
            vec![
                Unreachable {
                    step: 3,
                    via_cycle: 0
                },
                Unreachable {
                    step: 6,
                    via_cycle: 0
                }
            ]
        );
        // Below cycle 1 only.
        let edges = vec![
            input(5, 4),
            input(4, 5),
            input(1, 2),
            input(2, 1),
            input(5, 6),
        ];
        let report = graph(7, edges).analyze();
        assert_eq!(
            report.unreachable,
            vec![Unreachable {
                step: 6,
                via_cycle: 1
            }]
        );
    }

    #[test]
    fn the_reported_cycle_is_a_shortest_one_and_members_cover_the_component() {
        // 0 → 1 → 2 → 3 → 0 and the shortcut 1 → 0: the short cycle 0 → 1 → 0 is reported;
        // all four steps are members.
        let edges = vec![
            input(0, 1),
            input(1, 2),
            input(2, 3),
            input(3, 0),
            after(1, 0),
        ];
        let report = graph(4, edges).analyze();
        assert_eq!(
            report.cycles,
            vec![Cycle {
                steps: vec![0, 1],
                edges: vec![0, 4],
                members: vec![0, 1, 2, 3]
            }]
        );
        assert!(report.unreachable.is_empty());
    }

    #[test]
    fn parallel_edges_in_a_cycle_pick_the_first() {
        let edges = vec![after(1, 0), input(0, 1), input(1, 0)];
        let report = graph(2, edges).analyze();
        assert_eq!(report.cycles[0].edges, vec![1, 0]);
    }

    #[test]
    fn invalid_edges_are_reported_not_panicked_on() {
        let g = graph(2, vec![input(0, 1), input(0, 7), input(9, 1)]);
        let report = g.analyze();
        assert_eq!(report.invalid_edges, vec![1, 2]);
        assert!(report.cycles.is_empty());
        assert_eq!(g.topological_order(), Some(vec![0, 1]));
        assert_eq!(g.petgraph().edge_count(), 1);
        assert_eq!(g.edges().len(), 3);
    }

    #[test]
    fn analysis_is_deterministic() {
        let edges = || {
            vec![
                input(5, 4),
                input(4, 5),
                input(1, 2),
                input(2, 1),
                input(2, 3),
                input(5, 6),
                input(3, 6),
                input(6, 7),
                input(7, 6),
            ]
        };
        let first = graph(8, edges()).analyze();
        for _ in 0..10 {
            assert_eq!(graph(8, edges()).analyze(), first);
        }
        // A cycle downstream of another is still its own cycle, not "unreachable".
        assert_eq!(first.cycles.len(), 3);
        assert_eq!(
            first.unreachable,
            vec![Unreachable {
                step: 3,
                via_cycle: 0
            }]
        );
    }

    #[test]
    fn binary_tree_of_5000_steps() {
        // Step i depends on (i - 1) / 2, given in reverse so the order is not handed over.
        let n = 5000;
        let edges: Vec<StepEdge> = (1..n).rev().map(|i| input((i - 1) / 2, i)).collect();
        let started = std::time::Instant::now();
        let g = graph(n, edges);
        let report = g.analyze();
        let order = g.topological_order().unwrap();
        eprintln!(
            "5000-step tree built, analysed and ordered in {:?}",
            started.elapsed()
        );
        assert!(report.is_ok());
        assert_eq!(order.len(), n);
        let mut position = vec![0; n];
        for (at, &step) in order.iter().enumerate() {
            position[step] = at;
        }
        for i in 1..n {
            assert!(position[(i - 1) / 2] < position[i], "{i}");
        }
        // Every step is ready as soon as its parent ran, and lower indices go first: the order
        // is exactly 0, 1, 2, …
        assert_eq!(order, (0..n).collect::<Vec<_>>());
        assert_eq!(g.roots(), vec![0]);
        assert_eq!(g.sinks().len(), n - n / 2);
    }

    #[test]
    fn a_long_chain_with_a_back_edge_does_not_overflow_the_stack() {
        // 100 000 steps in a chain closed into one cycle, then a tail: iterative algorithms only.
        let n = 100_000;
        let mut edges: Vec<StepEdge> = (1..n - 10).map(|i| input(i - 1, i)).collect();
        edges.push(after(n - 11, 0));
        edges.extend((n - 10..n).map(|i| input(i - 1, i)));
        let started = std::time::Instant::now();
        let report = graph(n, edges).analyze();
        eprintln!("100k-step cycle analysed in {:?}", started.elapsed());
        assert_eq!(report.cycles.len(), 1);
        assert_eq!(report.cycles[0].steps.len(), n - 10);
        assert_eq!(report.cycles[0].steps[..3], [0, 1, 2]);
        assert_eq!(report.cycles[0].edges.len(), n - 10);
        assert_eq!(report.unreachable.len(), 10);
        assert!(report.unreachable.iter().all(|u| u.via_cycle == 0));
    }

    #[test]
    fn cycle_hops_match_their_edges() {
        let edges = vec![
            input(0, 2),
            input(2, 3),
            input(3, 1),
            after(1, 2),
            input(3, 4),
            input(4, 5),
            input(0, 5),
        ];
        let g = graph(6, edges);
        for cycle in g.analyze().cycles {
            for (i, &edge) in cycle.edges.iter().enumerate() {
                let e = &g.edges()[edge];
                assert_eq!(e.from, cycle.steps[i]);
                assert_eq!(e.to, cycle.steps[(i + 1) % cycle.steps.len()]);
            }
        }
    }
}
