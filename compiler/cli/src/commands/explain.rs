//! `sflowc explain CODE` and `sflowc explain --list`: the long explanation of a diagnostic code,
//! from `docs/codes/<CODE>.md` (embedded at build time by `build.rs`).

use crate::{CliError, Status};
use sflow_compiler::diagnostics::Code;
use std::io::Write;

include!(concat!(env!("OUT_DIR"), "/code_docs.rs"));

/// Arguments of `sflowc explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The code to explain (`E0101`; case does not matter).
    #[arg(
        value_name = "CODE",
        required_unless_present = "list",
        conflicts_with = "list"
    )]
    pub code: Option<String>,
    /// List every code with its title.
    #[arg(long)]
    pub list: bool,
}

/// The embedded explanation of `code`, if it has one.
pub fn doc(code: Code) -> Option<&'static str> {
    CODE_DOCS
        .iter()
        .find(|(name, _)| *name == code.as_str())
        .map(|(_, text)| *text)
}

/// Runs `sflowc explain`.
pub fn run(args: &ExplainArgs) -> Result<Status, CliError> {
    let mut stdout = std::io::stdout().lock();
    if args.list || args.code.is_none() {
        for &code in Code::ALL {
            writeln!(stdout, "{code}  {}", code.title())?;
        }
        return Ok(Status::Success);
    }
    let written = args.code.as_deref().unwrap_or_default();
    let code = Code::parse(written).ok_or_else(|| CliError::UnknownCode(written.to_owned()))?;
    match doc(code) {
        Some(text) => {
            stdout.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                writeln!(stdout)?;
            }
        }
        // Only a build without the docs gets here (a test checks every code has its page).
        None => writeln!(
            stdout,
            "{code}: {}\n\n(no long explanation is available for this code)",
            code.title()
        )?,
    }
    Ok(Status::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_page() {
        let missing: Vec<&str> = Code::ALL
            .iter()
            .filter(|c| doc(**c).is_none())
            .map(|c| c.as_str())
            .collect();
        assert!(
            missing.is_empty(),
            "docs/codes/ lacks a page for: {}",
            missing.join(", ")
        );
    }

    #[test]
    fn every_page_is_a_known_code() {
        let unknown: Vec<&str> = CODE_DOCS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| Code::parse(name).is_none_or(|c| c.as_str() != *name))
            .collect();
        assert!(
            unknown.is_empty(),
            "docs/codes/ has pages for unknown codes: {}",
            unknown.join(", ")
        );
    }

    #[test]
    fn pages_are_not_empty() {
        let empty: Vec<&str> = CODE_DOCS
            .iter()
            .filter(|(_, text)| text.trim().is_empty())
            .map(|(n, _)| *n)
            .collect();
        assert!(empty.is_empty(), "empty pages: {}", empty.join(", "));
    }
}
