//! The subcommands, one module each.

pub mod build;
pub mod check;
pub mod cluster;
pub mod explain;
pub mod fmt;
pub mod graph;
pub mod lsp;
