//! One file per feature, as Taplo's server is laid out. Each handler is a pure function of a
//! [`Snapshot`](crate::world::Snapshot) (and, for completion and signature help, the current
//! text) to a protocol answer.

pub mod code_action;
pub mod completion;
pub mod context;
pub mod definition;
pub mod docs;
pub mod formatting;
pub mod hover;
pub mod references;
pub mod rename;
pub mod semantic_tokens;
pub mod signature_help;
pub mod symbols;
