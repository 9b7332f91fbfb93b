//! `sflowc lsp`: the language server, over standard input and output.
//!
//! All of it lives in the `sflow-lsp` crate (the only code that knows the protocol); this
//! command only starts it. Editors start it themselves (see editors/vscode).

use crate::{CliError, Status};

/// Arguments of `sflowc lsp`.
#[derive(Debug, clap::Args)]
pub struct LspArgs {
    /// Accepted for editors that pass it (VS Code's client does); stdio is the only transport.
    #[arg(long)]
    pub stdio: bool,
}

/// Runs the language server until the editor says `exit`.
pub fn run(_args: &LspArgs) -> Result<Status, CliError> {
    match sflow_lsp::run_stdio() {
        Ok(()) => Ok(Status::Success),
        Err(e) => {
            eprintln!("error: the language server stopped: {e}");
            Ok(Status::Usage)
        }
    }
}
