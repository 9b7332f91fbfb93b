//! Graphs of a program: the step DAG of each workflow, and the wiring of triggers, agents,
//! policies, workflows and services; with their analyses and their drawings (DOT, Mermaid).
//!
//! This module is pure: it takes plain indices, names and spans (no AST) and returns plain
//! results; the type checker builds the graphs from the program and turns the findings into
//! diagnostics.
//!
//! Invariants:
//! - nothing here panics on bad input: an edge with an out-of-range step index is left out of a
//!   [`WorkflowGraph`] and reported in [`GraphReport::invalid_edges`]; a wiring edge between
//!   unknown nodes is refused ([`WiringGraph::add_edge`] returns `None`);
//! - every result is deterministic — the same input gives the same output in the same order —
//!   never depending on hashing or petgraph's internal neighbour order: ties are broken by
//!   source order (step index, insertion order);
//! - every analysis is linear or `n log n` in steps plus edges, and iterative (no recursion), so
//!   a workflow of many thousands of steps is analysed in well under a millisecond and a long
//!   chain of steps cannot overflow the stack.

pub mod build;
pub mod render;
pub mod wiring;
pub mod workflow;

pub use render::{wiring_dot, wiring_mermaid, workflow_dot, workflow_mermaid};
pub use wiring::{EdgeKind, NodeId, NodeKind, WiringEdge, WiringGraph, WiringNode};
pub use workflow::{Cycle, EdgeCause, GraphReport, StepEdge, StepNode, Unreachable, WorkflowGraph};
