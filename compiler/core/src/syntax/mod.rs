//! Syntax: the pest grammar (`grammar/sflow.pest`), the parser that turns it into our own
//! [`ast`], comments and doc comments, and error recovery.
//!
//! Invariants:
//! - parsing never fails: [`parse`] always returns a [`Parse`] holding every declaration that
//!   parsed and one diagnostic per independent syntax error;
//! - pest's pairs never leave the `parser` module;
//! - messages speak the user's words ("expected `{` after the step name"), never rule names.

pub mod ast;
pub mod comments;
pub mod incremental;
pub mod parser;
mod recovery;
mod shift;

pub use incremental::ParseCache;
pub use parser::{parse, Parse};
