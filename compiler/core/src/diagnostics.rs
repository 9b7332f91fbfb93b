//! Diagnostics: what every stage reports, as plain data.
//!
//! Invariants:
//! - every diagnostic has a stable [`Code`], a severity, a primary label pointing at the user's
//!   text, and (for every code) a help line; the CLI and the LSP render them, the core never
//!   prints;
//! - codes are never renumbered or reused: a code's meaning is part of the public interface
//!   (`sflowc explain CODE`, JSON output, editor quick fixes).

use crate::span::{FileId, FileSpan, Span};
use serde::Serialize;
use std::fmt;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The program is rejected.
    Error,
    /// The program is accepted, but something is probably wrong.
    Warning,
}

/// A label: a span with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// Where.
    pub at: FileSpan,
    /// What is there (may be empty for the primary label).
    pub message: String,
}

/// A machine-applicable edit that fixes the problem (used by editor quick fixes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggestion {
    /// What the fix does, for a menu ("replace with `accuracy`").
    pub title: String,
    /// The text to replace.
    pub at: FileSpan,
    /// The replacement text.
    pub replacement: String,
}

/// One diagnostic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The stable code.
    pub code: Code,
    /// Error or warning (always `code.severity()`).
    pub severity: Severity,
    /// The one-line message.
    pub message: String,
    /// The main location.
    pub primary: Label,
    /// Other locations that help (the other definition of a duplicate, the cycle path, …).
    pub secondary: Vec<Label>,
    /// How to fix it.
    pub help: Option<String>,
    /// Machine-applicable fixes.
    pub suggestions: Vec<Suggestion>,
}

impl Diagnostic {
    /// A diagnostic with code `code`, message `message`, pointing at `span` in `file`.
    pub fn new(code: Code, file: FileId, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            primary: Label {
                at: FileSpan::new(file, span),
                message: String::new(),
            },
            secondary: Vec::new(),
            help: None,
            suggestions: Vec::new(),
        }
    }

    /// Sets the primary label's message.
    pub fn with_label(mut self, message: impl Into<String>) -> Diagnostic {
        self.primary.message = message.into();
        self
    }

    /// Adds a secondary label.
    pub fn with_secondary(
        mut self,
        file: FileId,
        span: Span,
        message: impl Into<String>,
    ) -> Diagnostic {
        self.secondary.push(Label {
            at: FileSpan::new(file, span),
            message: message.into(),
        });
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Adds a machine-applicable fix.
    pub fn with_suggestion(
        mut self,
        title: impl Into<String>,
        file: FileId,
        span: Span,
        replacement: impl Into<String>,
    ) -> Diagnostic {
        self.suggestions.push(Suggestion {
            title: title.into(),
            at: FileSpan::new(file, span),
            replacement: replacement.into(),
        });
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics into a stable order: by file, then position, then code.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (
            a.primary.at.file,
            a.primary.at.span.start,
            a.primary.at.span.end,
            a.code,
        )
            .cmp(&(
                b.primary.at.file,
                b.primary.at.span.start,
                b.primary.at.span.end,
                b.code,
            ))
    });
}

macro_rules! codes {
    ($($variant:ident = $text:literal, $severity:ident, $title:literal;)*) => {
        /// Every diagnostic code, with its severity and a short title.
        ///
        /// `E0xxx` are errors and `W0xxx` warnings. The hundreds digit names the stage:
        /// 0 syntax, 1 names, 2 kinds, 3 types, 4 graphs, 5 templates, 6 Kubernetes names,
        /// 7 values. Each has a long explanation in `docs/codes/<CODE>.md`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $(
                #[doc = $title]
                $variant,
            )*
        }

        impl Code {
            /// All codes, in order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The code as written (`E0101`).
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $text),* }
            }

            /// Error or warning.
            pub fn severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$severity),* }
            }

            /// A short title for listings.
            pub fn title(self) -> &'static str {
                match self { $(Code::$variant => $title),* }
            }
        }
    };
}

codes! {
    E0001 = "E0001", Error, "syntax error";
    E0002 = "E0002", Error, "keyword used as a name";
    E0003 = "E0003", Error, "invalid literal";
    E0101 = "E0101", Error, "unknown name";
    E0102 = "E0102", Error, "duplicate name";
    E0103 = "E0103", Error, "unknown standard library module or item";
    E0104 = "E0104", Error, "imported file cannot be read";
    E0105 = "E0105", Error, "missing `app` declaration";
    E0106 = "E0106", Error, "more than one `app` declaration";
    E0107 = "E0107", Error, "declaration only allowed in the standard library";
    E0201 = "E0201", Error, "sensor used as an action";
    E0202 = "E0202", Error, "action read as a value";
    E0203 = "E0203", Error, "wrong kind of declaration";
    E0204 = "E0204", Error, "unknown field";
    E0205 = "E0205", Error, "missing required field";
    E0206 = "E0206", Error, "conflicting fields";
    E0207 = "E0207", Error, "duplicate field";
    E0301 = "E0301", Error, "type mismatch";
    E0302 = "E0302", Error, "input bound to an output of another type";
    E0303 = "E0303", Error, "comparison across units";
    E0304 = "E0304", Error, "arithmetic on artifacts";
    E0305 = "E0305", Error, "wrong number of arguments";
    E0306 = "E0306", Error, "argument of the wrong type";
    E0307 = "E0307", Error, "`ratio` out of range";
    E0308 = "E0308", Error, "unit suffix does not fit";
    E0309 = "E0309", Error, "unknown member";
    E0310 = "E0310", Error, "re-declaration disagrees with the std step";
    E0311 = "E0311", Error, "unknown type";
    E0312 = "E0312", Error, "not callable";
    E0313 = "E0313", Error, "objective is not a metric of the retrain workflow";
    E0314 = "E0314", Error, "nothing to tune";
    E0401 = "E0401", Error, "cycle in a workflow";
    E0402 = "E0402", Error, "step unreachable from any root";
    E0403 = "E0403", Error, "input bound to a step of another workflow";
    E0501 = "E0501", Error, "template does not resolve";
    E0601 = "E0601", Error, "invalid Kubernetes name";
    E0602 = "E0602", Error, "Kubernetes name collision";
    E0701 = "E0701", Error, "invalid `replicas` range";
    E0702 = "E0702", Error, "invalid cron expression";
    E0703 = "E0703", Error, "malformed image reference";
    E0704 = "E0704", Error, "invalid namespace";
    E0705 = "E0705", Error, "value must be positive";
    E0706 = "E0706", Error, "value out of range";
    E0707 = "E0707", Error, "invalid tracking URI";
    W0001 = "W0001", Warning, "unused param";
    W0002 = "W0002", Warning, "unused output";
    W0003 = "W0003", Warning, "unused import";
    W0004 = "W0004", Warning, "unused agent";
    W0005 = "W0005", Warning, "policy action can never be reached";
    W0006 = "W0006", Warning, "image without a pinned tag";
}

impl Code {
    /// Parses `E0101` (case-insensitive).
    pub fn parse(text: &str) -> Option<Code> {
        let upper = text.trim().to_ascii_uppercase();
        Code::ALL.iter().copied().find(|c| c.as_str() == upper)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_severity_matches_prefix() {
        for &code in Code::ALL {
            assert_eq!(Code::parse(code.as_str()), Some(code));
            let is_error = code.as_str().starts_with('E');
            assert_eq!(code.severity() == Severity::Error, is_error, "{code}");
        }
        assert_eq!(Code::parse("e0101"), Some(Code::E0101));
        assert_eq!(Code::parse("X9"), None);
    }
}
