//! Name resolution: load every file of the program, give every declaration an id, build the
//! scopes, and resolve `use` imports. Resolving names inside expressions happens during type
//! checking (the `types` stage), which records each reference in the [`Symbols`].
//!
//! Invariant: collection never stops at an error; a duplicate keeps its first definition, so
//! later stages see one meaning per name.

pub mod collect;
pub mod load;
pub mod suggest;

pub use collect::{collect, Program};

/// Built-in type names.
pub const BUILTIN_TYPES: &[&str] = &[
    "int",
    "float",
    "ratio",
    "bool",
    "string",
    "duration",
    "cpu",
    "memory",
    "Dataset",
    "Model",
    "File",
    "Dir",
    "Batch",
    "Service",
    "Workflow",
    "Detector",
    "LabelSource",
    "Tracking",
    "Objective",
    "Search",
    "list",
];
