//! The sflow compiler core.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//! text ─syntax─▶ AST ─resolve─▶ Program + Symbols ─types─▶ Facts ─graph─▶ DAGs ─lower─▶ plan
//! ```
//!
//! [`analysis::analyze`] runs the stages in order. This crate does no I/O: callers hand it
//! text through [`sources::SourceLoader`]. Only the CLI and the language server touch files
//! and terminals; only the emit crate knows Kubernetes types.

pub mod analysis;
pub mod diagnostics;
pub mod format;
pub mod graph;
pub mod lower;
pub mod resolve;
pub mod sources;
pub mod span;
pub mod stdlib;
pub mod symbols;
pub mod syntax;
pub mod types;
pub mod values;
