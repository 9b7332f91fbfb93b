//! `sflowc fmt [--check] FILE…`: rewrite `.sflow` files in the canonical layout.
//!
//! A folder stands for every `.sflow` file under it; `-` reads standard input and writes the
//! formatted text to standard output. A file with syntax errors is never rewritten: it is
//! reported with the first error and the exit status is 1. `--check` rewrites nothing and
//! exits 1 when a file would change (for CI).

use crate::loader::io_reason;
use crate::{CliError, Status};
use sflow_compiler::format::format;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Arguments of `sflowc fmt`.
#[derive(Debug, clap::Args)]
pub struct FmtArgs {
    /// The files to format; a folder means every `.sflow` file under it; `-` means standard
    /// input (the result goes to standard output).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Change nothing; list the files that are not formatted and exit 1 if there are any.
    #[arg(long)]
    pub check: bool,
}

/// Runs `sflowc fmt`.
pub fn run(args: &FmtArgs) -> Result<Status, CliError> {
    let mut status = Status::Success;
    let mut stderr = std::io::stderr().lock();
    for arg in &args.files {
        if arg.as_os_str() == "-" {
            status = status.max(stdin(args.check)?);
            continue;
        }
        let mut files = Vec::new();
        if arg.is_dir() {
            collect(arg, &mut files);
        } else {
            files.push(arg.clone());
        }
        for path in files {
            let name = path.display().to_string();
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) => {
                    writeln!(stderr, "error: cannot read `{name}`: {}", io_reason(&e))?;
                    status = status.max(Status::Usage);
                    continue;
                }
            };
            match format(&text) {
                Ok(formatted) if formatted == text => {}
                Ok(formatted) if args.check => {
                    let line = first_difference(&text, &formatted);
                    writeln!(stderr, "would reformat {name} (from line {line})")?;
                    status = status.max(Status::Failure);
                }
                Ok(formatted) => match std::fs::write(&path, formatted) {
                    Ok(()) => writeln!(stderr, "formatted {name}")?,
                    Err(e) => {
                        writeln!(stderr, "error: cannot write `{name}`: {}", io_reason(&e))?;
                        status = status.max(Status::Usage);
                    }
                },
                Err(e) => {
                    writeln!(stderr, "error: cannot format `{name}`: {e}")?;
                    status = status.max(Status::Failure);
                }
            }
        }
    }
    Ok(status)
}

/// Formats standard input to standard output (with `--check`, only says whether it would change).
fn stdin(check: bool) -> Result<Status, CliError> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    match format(&text) {
        Ok(formatted) if check => {
            if formatted == text {
                Ok(Status::Success)
            } else {
                let line = first_difference(&text, &formatted);
                eprintln!("would reformat <stdin> (from line {line})");
                Ok(Status::Failure)
            }
        }
        Ok(formatted) => {
            std::io::stdout().lock().write_all(formatted.as_bytes())?;
            Ok(Status::Success)
        }
        Err(e) => {
            eprintln!("error: cannot format <stdin>: {e}");
            Ok(Status::Failure)
        }
    }
}

/// Every `.sflow` file under `dir`, sorted, skipping hidden folders and `target`.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.') || n == "target");
        if path.is_dir() && !hidden {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "sflow") {
            out.push(path);
        }
    }
}

/// The 1-based number of the first line that differs.
fn first_difference(a: &str, b: &str) -> usize {
    a.lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.lines().count().min(b.lines().count()))
        + 1
}
