//! The sflow compiler core.
//!
//! The pipeline, one module per stage:
//!
//! ```text
//! source text ─ syntax ─▶ AST ─ resolve ─▶ symbols ─ types ─▶ typed facts ─ graph ─▶ DAGs
//!                                                             └──────────── lower ─▶ plan
//! ```
//!
//! This crate does no I/O: callers hand it text through [`sources::SourceLoader`]. Only the
//! CLI and the language server touch files and terminals; only the emit crate knows Kubernetes.

pub mod diagnostics;
pub mod span;
pub mod syntax;
