//! `sflowc check FILE… [--format human|json]`: analyze each program and report its diagnostics.

use crate::loader::{io_reason, DiskLoader};
use crate::render::{self, JsonDiagnostic, Style};
use crate::{CliError, Status};
use sflow_compiler::analysis::{analyze, Analysis};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `sflowc check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The programs to check (each is the root of its own program; its `use "…"` imports are
    /// read relative to it).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// How to report diagnostics.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Output formats of `sflowc check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Graphical reports on stderr, then a summary line per file.
    Human,
    /// One JSON array on stdout for all files: objects with `severity`, `code`, `message`,
    /// `file`, `line`, `column`, `end_line`, `end_column`, `labels`, `help`, `suggestions`
    /// (lines and columns count from 1, columns in characters; the end is exclusive).
    Json,
}

/// Reads and analyzes the program rooted at `path`.
pub fn load(path: &std::path::Path) -> Result<(String, Analysis), CliError> {
    let name = path.to_string_lossy().into_owned();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let analysis = analyze(&name, &text, &DiskLoader);
            Ok((name, analysis))
        }
        Err(e) => Err(CliError::Read {
            path: name,
            reason: io_reason(&e),
        }),
    }
}

/// Runs `sflowc check`. A file that cannot be read is reported and skipped; the others are
/// still checked.
pub fn run(args: &CheckArgs) -> Result<Status, CliError> {
    let style = Style::for_stderr();
    let mut status = Status::Success;
    let mut json = Vec::new();
    for path in &args.files {
        let (name, analysis) = match load(path) {
            Ok(loaded) => loaded,
            Err(e) => {
                eprintln!("error: {e}");
                status = status.max(Status::Usage);
                continue;
            }
        };
        if analysis.has_errors() {
            status = status.max(Status::Failure);
        }
        match args.format {
            Format::Human => {
                let mut stderr = std::io::stderr().lock();
                stderr.write_all(
                    render::human(&analysis.diagnostics, &analysis.sources, style).as_bytes(),
                )?;
                writeln!(
                    stderr,
                    "{}",
                    render::summary_line(&name, &analysis.diagnostics, style)
                )?;
            }
            Format::Json => {
                json.extend(
                    analysis
                        .diagnostics
                        .iter()
                        .map(|d| JsonDiagnostic::new(d, &analysis.sources)),
                );
            }
        }
    }
    if args.format == Format::Json {
        let text = serde_json::to_string_pretty(&json).map_err(std::io::Error::from)?;
        writeln!(std::io::stdout().lock(), "{text}")?;
    }
    Ok(status)
}
