//! `sflowc`, the sflow compiler's command line.
//!
//! Modules, one concern each:
//! - [`commands`]: one file per subcommand (`check`, `graph`, `explain`, …; `apply` and
//!   `delete` talk to a cluster through the `sflow-kube` crate);
//! - [`render`]: diagnostics as miette reports (humans) or JSON (tools);
//! - [`loader`]: the disk [`SourceLoader`](sflow_compiler::sources::SourceLoader) that supplies
//!   imported files to the I/O-free core.
//!
//! Exit status: 0 when every file checked without errors (warnings allowed), 1 when a program
//! has errors, 2 for usage and I/O errors.

mod commands;
mod loader;
mod render;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc rather than the system allocator: the language server allocates and frees large
/// analyses on two threads, where glibc's malloc spends much of an edit contending for its
/// arena (see the workspace Cargo.toml and docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The sflow compiler.
#[derive(Debug, Parser)]
#[command(
    name = "sflowc",
    version,
    about = "The sflow compiler: check programs, draw their graphs, explain diagnostics",
    propagate_version = true
)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Check programs and report every diagnostic.
    Check(commands::check::CheckArgs),
    /// Print the graph of each workflow, or of the trigger/agent/policy wiring, as DOT or Mermaid.
    Graph(commands::graph::GraphArgs),
    /// Explain a diagnostic code (`sflowc explain E0101`), or list them all.
    Explain(commands::explain::ExplainArgs),
    /// Rewrite files in the canonical layout (`--check`: only report the ones that would change).
    Fmt(commands::fmt::FmtArgs),
    /// Run the language server over stdin/stdout (editors start it).
    Lsp(commands::lsp::LspArgs),
    /// Write the plan (`plan.json`) and the Kubernetes manifests of a program.
    Build(commands::build::BuildArgs),
    /// Print the JSON Schema of the plan.
    Schema(commands::build::SchemaArgs),
    /// Build a program and apply it to a cluster (server-side apply; prunes removed
    /// declarations; waits for rollouts). `--dry-run` shows the changes without making them.
    Apply(commands::cluster::ApplyArgs),
    /// Delete from a cluster what `sflowc apply` created for a program.
    Delete(commands::cluster::DeleteArgs),
}

/// How a command ended, as the process exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Everything went well (warnings allowed).
    Success = 0,
    /// A program has errors.
    Failure = 1,
    /// Bad usage, or a file could not be read or written.
    Usage = 2,
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> ExitCode {
        ExitCode::from(status as u8)
    }
}

/// Errors that end a command early; each is reported as `error: …` with exit status 2.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file named on the command line could not be read.
    #[error("cannot read `{path}`: {reason}")]
    Read {
        /// The path as given.
        path: String,
        /// Why, in words.
        reason: String,
    },
    /// `sflowc explain` got something that is not a diagnostic code.
    #[error(
        "`{0}` is not an sflow diagnostic code\n  \
         codes are a letter and four digits: `E0101` (an error) or `W0003` (a warning);\n  \
         run `sflowc explain --list` to see them all"
    )]
    UnknownCode(String),
    /// `sflowc graph --workflow NAME` named no workflow of the program.
    #[error("{file} has no workflow named `{name}`{}", render::available(.available))]
    UnknownWorkflow {
        /// The file.
        file: String,
        /// The name asked for.
        name: String,
        /// The workflows the program declares.
        available: Vec<String>,
    },
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => commands::check::run(&args),
        Command::Graph(args) => commands::graph::run(&args),
        Command::Explain(args) => commands::explain::run(&args),
        Command::Fmt(args) => commands::fmt::run(&args),
        Command::Lsp(args) => commands::lsp::run(&args),
        Command::Build(args) => commands::build::run(&args),
        Command::Schema(args) => commands::build::schema(&args),
        Command::Apply(args) => commands::cluster::apply(&args),
        Command::Delete(args) => commands::cluster::delete(&args),
    };
    match result {
        Ok(status) => status.into(),
        // A closed pipe (`sflowc explain --list | head`) is not worth a message.
        Err(CliError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Status::Success.into()
        }
        Err(e) => {
            eprintln!("error: {e}");
            Status::Usage.into()
        }
    }
}
