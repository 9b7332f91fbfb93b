//! The subcommands, one module each.

pub mod check;
pub mod explain;
pub mod graph;
