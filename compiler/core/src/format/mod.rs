//! The formatter: one canonical layout for `.sflow` files (`sflowc fmt`, and formatting in the
//! language server). Pure: text in, text out.
//!
//! Invariants:
//! - it refuses a file with syntax errors (E0001), and says why ([`FormatError::Syntax`]);
//! - it never changes a program's meaning: before returning, it re-parses its output and
//!   checks that the syntax tree has the same [`shape`] (spans aside) and that every comment
//!   is still there, in order; otherwise it returns [`FormatError::Internal`] and the caller
//!   keeps the file as it was;
//! - it is idempotent: formatting formatted text changes nothing (a property test checks it
//!   over every example and test case).
//!
//! The layout rules (documented for users in docs/language.md, "Formatting"):
//! - two spaces per indentation level; one declaration, member or clause per line; blocks of
//!   declarations (`app`, `workflow`, `step`, `service`, `agent kind`, `policy`,
//!   `extern step`) always open a line per member, `{}` when empty;
//! - blank lines are kept where the user put them, at most one in a row, never right after
//!   `{` or right before `}`;
//! - aligned columns, within *runs* of consecutive lines (a blank line ends a run):
//!   `NAME = VALUE` fields pad the name so the `=` line up; step members pad their first word
//!   (`image`, `run`, `input`, `output`, `metric`, …) so the rest starts in one column;
//!   `param NAME: TYPE = DEFAULT` pads `NAME:` and `TYPE` (a comment between params also ends
//!   their run, so documented params stand alone); consecutive `agent NAME: KIND { … }` pad
//!   `NAME:` and `KIND`; consecutive `trigger NAME: SOURCE -> ACTION` pad `NAME:` and
//!   `SOURCE` so the arrows line up one space after the longest source;
//! - bracketed lists (`{ … }` records and agent configs, `resources`, `with`, `[ … ]`, call
//!   arguments, parameter lists, `use` item lists) stay on one line, unless the user opened
//!   them with a line break or they hold a comment: then one element per line (records
//!   without separators and with aligned `=`, lists and arguments with a trailing comma);
//! - the `then` actions of a policy, and the `and`/`or` operands of its `when` condition,
//!   stay on one line unless the user broke them across lines: then one per line, aligned
//!   under the first;
//! - canonical spellings: `and`/`or`/`not` for `&&`/`||`/`!`, single spaces around binary
//!   operators and `=`, none around `.`, `..` and inside `( )`/`[ ]`, `{ a = 1 }` with inner
//!   spaces, `timeout 5m`/`retry 2`/`resources { … }` for their `NAME = …` spellings;
//!   literals (numbers, strings) are written as the user wrote them; members and clauses
//!   keep their order;
//! - comments stay where they were: on their own line, or at the end of the line they
//!   followed; trailing spaces are removed; the file ends with exactly one line break.

mod printer;
mod shape;

pub use shape::shape;

use crate::diagnostics::Code;
use crate::span::{FileId, LineIndex};
use crate::syntax::{self, Parse};
use std::fmt;

/// Why a file was not formatted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// The file does not parse; formatting it could lose what the parser skipped.
    Syntax {
        /// 1-based line of the first error.
        line: u32,
        /// 1-based column of the first error.
        column: u32,
        /// The first error's message.
        message: String,
        /// How many syntax errors the file has in all.
        count: usize,
    },
    /// The formatter would have changed the program's meaning or lost a comment: a bug in the
    /// formatter. The file is left alone.
    Internal(String),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Syntax {
                line,
                column,
                message,
                count,
            } => {
                write!(f, "the file does not parse ({line}:{column}: {message}")?;
                if *count > 1 {
                    write!(
                        f,
                        "; {} more syntax error{}",
                        count - 1,
                        if *count == 2 { "" } else { "s" }
                    )?;
                }
                write!(f, "); fix it first (`sflowc check` shows every error)")
            }
            FormatError::Internal(why) => {
                write!(f, "the formatter would have changed the program ({why}); this is a bug, the file was left as it was")
            }
        }
    }
}

impl std::error::Error for FormatError {}

/// Formats one `.sflow` file. Returns the text in the canonical layout, or why it cannot.
pub fn format(text: &str) -> Result<String, FormatError> {
    let parse = syntax::parse(FileId(0), text);
    // A keyword used as a name (E0002) or a bad literal (E0003) still leaves a complete tree,
    // and the formatter copies literals as written; only syntax errors lose text.
    let errors: Vec<_> = parse
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::E0001)
        .collect();
    if let Some(first) = errors.first() {
        let lines = LineIndex::new(text);
        let at = lines.line_col(text, first.primary.at.span.start());
        return Err(FormatError::Syntax {
            line: at.line,
            column: at.column,
            message: first.message.clone(),
            count: errors.len(),
        });
    }
    let out = printer::print(text, &parse);
    verify(&parse, &out)?;
    Ok(out)
}

/// Checks that `out` means what the parsed input meant and keeps all its comments.
fn verify(before: &Parse, out: &str) -> Result<(), FormatError> {
    let after = syntax::parse(FileId(0), out);
    let codes = |p: &Parse| {
        p.diagnostics
            .iter()
            .map(|d| (d.code, d.message.clone()))
            .collect::<Vec<_>>()
    };
    if codes(before) != codes(&after) {
        let why = after
            .diagnostics
            .first()
            .map_or("a diagnostic went away".to_string(), |d| d.message.clone());
        return Err(FormatError::Internal(format!(
            "its output parses differently: {why}"
        )));
    }
    if shape(&before.file) != shape(&after.file) {
        return Err(FormatError::Internal("the syntax tree differs".into()));
    }
    let texts = |p: &Parse| -> Vec<String> {
        p.comments
            .iter()
            .map(|c| {
                c.text
                    .replace('\r', "")
                    .lines()
                    .map(str::trim_end)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect()
    };
    if texts(before) != texts(&after) {
        return Err(FormatError::Internal("a comment moved or was lost".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(text: &str) -> String {
        match format(text) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn aligns_fields_and_step_members() {
        let text = "app a { namespace = \"a\"\nregistry=\"r\" }\nworkflow w { step s {\nimage = \"x:1\"\nrun = \"y\"\noutput out: File\n} }\n";
        assert_eq!(
            fmt(text),
            "app a {\n  namespace = \"a\"\n  registry  = \"r\"\n}\nworkflow w {\n  step s {\n    image  = \"x:1\"\n    run    = \"y\"\n    output out: File\n  }\n}\n"
        );
    }

    #[test]
    fn keeps_comments_and_blank_lines() {
        let text = "// head\n\n\n/// Doc.\napp a { // trailing\n  namespace = \"a\" /* after */\n\n  // own line\n  registry = \"r\"\n}\n";
        assert_eq!(
            fmt(text),
            "// head\n\n/// Doc.\napp a { // trailing\n  namespace = \"a\" /* after */\n\n  // own line\n  registry = \"r\"\n}\n"
        );
    }

    #[test]
    fn canonical_operators_and_sugar() {
        let text = "policy p { when !a.b && c.d||e.f then x.y() max 1 per 1d cooldown 1m }\n";
        assert_eq!(fmt(text), "policy p {\n  when not a.b and c.d or e.f\n  then x.y()\n  max 1 per 1d\n  cooldown 1m\n}\n");
    }

    #[test]
    fn comment_inside_an_expression_keeps_the_member_as_written() {
        let text = "service s {\n  model = a /* why */ .b\n}\n";
        assert_eq!(fmt(text), text);
    }

    #[test]
    fn refuses_broken_files() {
        let err = format("app a {\n  namespace \"x\"\n}\n");
        assert!(
            matches!(err, Err(FormatError::Syntax { line: 2, .. })),
            "{err:?}"
        );
    }

    #[test]
    fn empty_and_comment_only_files() {
        assert_eq!(fmt(""), "");
        assert_eq!(fmt("\n\n"), "");
        assert_eq!(fmt("// only\n\n\n// comments"), "// only\n\n// comments\n");
    }
}
