//! The sflow language server, `sflowc lsp`.
//!
//! Architecture (see docs/dev/lsp.md for the why):
//! - [`server`]: the main loop over an `lsp-server` connection: buffers, debounced diagnostics,
//!   dispatch of requests to handlers;
//! - [`vfs`]: open documents over the disk, URIs (including the read-only `sflow-std:` scheme
//!   of the embedded standard library) and how a file finds the program it belongs to;
//! - [`world`]: a snapshot, the core's [`Analysis`](sflow_compiler::analysis::Analysis) of one
//!   program, with span ↔ position conversions;
//! - [`handlers`]: one file per feature (hover, definition, references, rename, completion,
//!   signature help, document symbols, semantic tokens, formatting, code actions);
//! - [`lex`]: a coarse lexer for half-typed text.
//!
//! **Architecture Invariant:** this crate is the only code that knows the Language Server
//! Protocol; the core knows nothing of it and does no I/O. Every answer is computed from the
//! core's analysis of the buffers as they are, and a broken file still answers from what
//! parsed.
//!
//! **Architecture Invariant:** the server never panics on input: handlers use no `unwrap` on
//! input-dependent data, and a handler that panics anyway answers an internal error while the
//! server keeps running.

pub mod convert;
pub mod handlers;
pub mod lex;
pub mod server;
pub mod vfs;
pub mod world;

pub use lsp_server::Connection;

/// Runs the server over standard input and output until the editor says `exit`.
pub fn run_stdio() -> Result<(), String> {
    let (connection, io_threads) = Connection::stdio();
    server::run(&connection)?;
    drop(connection);
    io_threads.join().map_err(|e| e.to_string())
}

/// Runs the server on any connection (the benchmark uses an in-memory one).
pub fn run(connection: &Connection) -> Result<(), String> {
    server::run(connection)
}
