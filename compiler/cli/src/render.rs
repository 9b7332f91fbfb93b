//! Rendering diagnostics: miette's graphical reports for people, JSON for tools.
//!
//! The core's [`Diagnostic`]s are plain data; [`Report`] adapts one (with the program's
//! [`Sources`]) to [`miette::Diagnostic`], so miette draws the code, the message, the labelled
//! snippets and the help line. Labels in another file than the primary one follow as notes,
//! each with a snippet of its own file.

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};
use serde::Serialize;
use sflow_compiler::diagnostics::{Code, Diagnostic, Label, Severity};
use sflow_compiler::sources::{Source, Sources};
use sflow_compiler::span::{FileSpan, Span};
use std::fmt;
use std::io::IsTerminal;

/// How human-readable reports are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours.
    pub color: bool,
    /// Unicode box drawing (otherwise ASCII).
    pub unicode: bool,
    /// Wrap width in columns.
    pub width: usize,
}

impl Style {
    /// The width used when the output is not a terminal, so piped output and the golden tests do
    /// not depend on the terminal.
    pub const DEFAULT_WIDTH: usize = 100;

    /// The style for reports written to stderr: colour only on a terminal and when `NO_COLOR`
    /// is unset (or empty), unicode on a terminal, ASCII otherwise; the terminal's width on a
    /// terminal, [`Style::DEFAULT_WIDTH`] otherwise.
    pub fn for_stderr() -> Style {
        let terminal = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let width = if terminal {
            terminal_size::terminal_size_of(std::io::stderr())
                .map_or(Style::DEFAULT_WIDTH, |(w, _)| {
                    usize::from(w.0).clamp(40, 200)
                })
        } else {
            Style::DEFAULT_WIDTH
        };
        Style {
            color: terminal && !no_color,
            unicode: terminal,
            width,
        }
    }

    /// Plain ASCII without colour at the default width.
    #[cfg(test)]
    pub fn plain() -> Style {
        Style {
            color: false,
            unicode: false,
            width: Style::DEFAULT_WIDTH,
        }
    }

    fn handler(self) -> GraphicalReportHandler {
        let theme = match (self.unicode, self.color) {
            (true, true) => GraphicalTheme::unicode(),
            (true, false) => GraphicalTheme::unicode_nocolor(),
            (false, true) => GraphicalTheme::ascii(),
            (false, false) => GraphicalTheme::none(),
        };
        GraphicalReportHandler::new_themed(theme)
            .with_width(self.width)
            .with_links(false)
    }
}

/// Renders an error that is not about the program's text (a cluster error of `apply`) as a
/// miette report: its code, message and help.
pub fn error_report(error: &dyn miette::Diagnostic, style: Style) -> String {
    let mut out = String::new();
    if style.handler().render_report(&mut out, error).is_err() {
        out = format!("error: {error}\n");
    }
    out
}

/// Renders every diagnostic of a program as miette reports, one after another.
pub fn human(diagnostics: &[Diagnostic], sources: &Sources, style: Style) -> String {
    let handler = style.handler();
    let mut out = String::new();
    for diagnostic in diagnostics {
        let report = Report::new(diagnostic, sources);
        let mut text = String::new();
        let mut rendered = handler.render_report(&mut text, &report);
        // Labels in other files follow as notes, each with a snippet of its own file.
        for note in &report.notes {
            if rendered.is_ok() {
                text.push('\n');
                rendered = handler.render_report(&mut text, note);
            }
        }
        if rendered.is_err() {
            // miette refused (a span it cannot read); fall back to one plain line.
            text = fallback(diagnostic, sources);
        }
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// The line that ends a file's report: `error: 2 errors, 1 warning in main.sflow`,
/// `ok: main.sflow checked, no errors, 1 warning` or `ok: main.sflow checked, no errors`.
pub fn summary(path: &str, diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    match (errors, warnings) {
        (0, 0) => format!("ok: {path} checked, no errors"),
        (0, w) => format!("ok: {path} checked, no errors, {}", counted(w, "warning")),
        (e, 0) => format!("error: {} in {path}", counted(e, "error")),
        (e, w) => format!(
            "error: {}, {} in {path}",
            counted(e, "error"),
            counted(w, "warning")
        ),
    }
}

/// [`summary`], with its leading `error`/`ok` in bold red/green when `style` has colour.
pub fn summary_line(path: &str, diagnostics: &[Diagnostic], style: Style) -> String {
    let plain = summary(path, diagnostics);
    if !style.color {
        return plain;
    }
    match plain.split_once(':') {
        Some(("error", rest)) => format!("\x1b[1;31merror\x1b[0m:{rest}"),
        Some(("ok", rest)) => format!("\x1b[1;32mok\x1b[0m:{rest}"),
        _ => plain,
    }
}

/// `1 error`, `2 errors`.
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `; the program declares `a`, `b`` for error messages that list what exists.
pub fn available(names: &[String]) -> String {
    if names.is_empty() {
        "; the program declares no workflows".to_owned()
    } else {
        let list: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        format!("; the program declares {}", list.join(", "))
    }
}

/// One plain line for a diagnostic, when miette cannot draw it.
fn fallback(diagnostic: &Diagnostic, sources: &Sources) -> String {
    let at = position(sources, diagnostic.primary.at);
    format!(
        "{}[{}]: {} at {}:{}:{}\n",
        severity_word(diagnostic.severity),
        diagnostic.code,
        diagnostic.message,
        at.file,
        at.line,
        at.column
    )
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// The file with id `file`, if the core knows it.
fn source_of(sources: &Sources, at: FileSpan) -> Option<&Source> {
    sources.files.get(at.file.0 as usize)
}

/// `span` as miette's span, clamped to the text so that a stray span never makes miette fail.
fn miette_span(span: Span, text: &str) -> SourceSpan {
    let start = span.start().min(text.len());
    let end = span.end().clamp(start, text.len());
    SourceSpan::new(start.into(), end - start)
}

/// A [`Diagnostic`] with the sources it points into, as a [`miette::Diagnostic`].
#[derive(Debug)]
pub struct Report<'a> {
    diagnostic: &'a Diagnostic,
    source: Option<FileText<'a>>,
    /// Secondary labels in other files than the primary label's.
    notes: Vec<Note<'a>>,
}

impl<'a> Report<'a> {
    /// Adapts `diagnostic`, whose spans point into `sources`.
    pub fn new(diagnostic: &'a Diagnostic, sources: &'a Sources) -> Report<'a> {
        let primary_file = diagnostic.primary.at.file;
        let notes = diagnostic
            .secondary
            .iter()
            .filter(|label| label.at.file != primary_file)
            .map(|label| Note {
                label,
                source: source_of(sources, label.at).map(FileText),
            })
            .collect();
        Report {
            diagnostic,
            source: source_of(sources, diagnostic.primary.at).map(FileText),
            notes,
        }
    }

    fn text(&self) -> &'a str {
        self.source.map_or("", |s| s.0.text.as_str())
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        // `error[E0101]`: the severity in words, so it reads without colour too.
        let d = self.diagnostic;
        Some(Box::new(format!(
            "{}[{}]",
            severity_word(d.severity),
            d.code
        )))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let text = self.text();
        let primary = &self.diagnostic.primary;
        let mut labels = vec![LabeledSpan::new_primary_with_span(
            label_text(primary),
            miette_span(primary.at.span, text),
        )];
        labels.extend(
            self.diagnostic
                .secondary
                .iter()
                .filter(|label| label.at.file == primary.at.file)
                .map(|label| {
                    LabeledSpan::new_with_span(label_text(label), miette_span(label.at.span, text))
                }),
        );
        Some(Box::new(labels.into_iter()))
    }
}

fn label_text(label: &Label) -> Option<String> {
    (!label.message.is_empty()).then(|| label.message.clone())
}

/// A secondary label in another file than its diagnostic's primary label, drawn after the
/// diagnostic as a note with a snippet of its own file (miette draws one file per report).
#[derive(Debug)]
struct Note<'a> {
    label: &'a Label,
    source: Option<FileText<'a>>,
}

impl fmt::Display for Note<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.label.message.is_empty() {
            f.write_str("note: see here")
        } else {
            write!(f, "note: {}", self.label.message)
        }
    }
}

impl std::error::Error for Note<'_> {}

impl miette::Diagnostic for Note<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(miette::Severity::Advice)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let text = self.source.map_or("", |s| s.0.text.as_str());
        let span = miette_span(self.label.at.span, text);
        Some(Box::new(std::iter::once(
            LabeledSpan::new_primary_with_span(None, span),
        )))
    }
}

/// One source file as miette's [`SourceCode`], named by its path (`main.sflow:3:5`).
#[derive(Clone, Copy, Debug)]
struct FileText<'a>(&'a Source);

impl SourceCode for FileText<'_> {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'b> + 'b>, MietteError> {
        let inner =
            self.0
                .text
                .as_str()
                .read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.0.path.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            inner.column(),
            inner.line_count(),
        )))
    }
}

/// A position range for tools: 1-based lines and columns (columns in characters); the end is
/// exclusive (it points just past the last character).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Position {
    /// The file's path, as the loader named it.
    pub file: String,
    /// First line.
    pub line: u32,
    /// First column.
    pub column: u32,
    /// Last line.
    pub end_line: u32,
    /// Column just past the last character.
    pub end_column: u32,
}

fn position(sources: &Sources, at: FileSpan) -> Position {
    match source_of(sources, at) {
        Some(source) => {
            let start = source.line_col(at.span.start());
            let end = source.line_col(at.span.end());
            Position {
                file: source.path.clone(),
                line: start.line,
                column: start.column,
                end_line: end.line,
                end_column: end.column,
            }
        }
        None => Position {
            file: String::new(),
            line: 1,
            column: 1,
            end_line: 1,
            end_column: 1,
        },
    }
}

/// A diagnostic as JSON (`sflowc check --format json`).
#[derive(Clone, Debug, Serialize)]
pub struct JsonDiagnostic {
    /// `error` or `warning`.
    pub severity: Severity,
    /// `E0101`.
    pub code: Code,
    /// The one-line message.
    pub message: String,
    /// Where (the primary label).
    #[serde(flatten)]
    pub at: Position,
    /// Every label, the primary one first (`primary: true`).
    pub labels: Vec<JsonLabel>,
    /// How to fix it.
    pub help: Option<String>,
    /// Machine-applicable fixes.
    pub suggestions: Vec<JsonSuggestion>,
}

/// A label as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct JsonLabel {
    /// What is there (may be empty).
    pub message: String,
    /// Whether this is the diagnostic's main location.
    pub primary: bool,
    /// Where.
    #[serde(flatten)]
    pub at: Position,
}

/// A machine-applicable fix as JSON: replace the text at the position with `replacement`.
#[derive(Clone, Debug, Serialize)]
pub struct JsonSuggestion {
    /// What the fix does.
    pub title: String,
    /// The replacement text.
    pub replacement: String,
    /// The text to replace.
    #[serde(flatten)]
    pub at: Position,
}

impl JsonDiagnostic {
    /// Converts `diagnostic`, whose spans point into `sources`.
    pub fn new(diagnostic: &Diagnostic, sources: &Sources) -> JsonDiagnostic {
        let label = |label: &Label, primary: bool| JsonLabel {
            message: label.message.clone(),
            primary,
            at: position(sources, label.at),
        };
        let mut labels = vec![label(&diagnostic.primary, true)];
        labels.extend(diagnostic.secondary.iter().map(|l| label(l, false)));
        JsonDiagnostic {
            severity: diagnostic.severity,
            code: diagnostic.code,
            message: diagnostic.message.clone(),
            at: position(sources, diagnostic.primary.at),
            labels,
            help: diagnostic.help.clone(),
            suggestions: diagnostic
                .suggestions
                .iter()
                .map(|s| JsonSuggestion {
                    title: s.title.clone(),
                    replacement: s.replacement.clone(),
                    at: position(sources, s.at),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sflow_compiler::sources::Origin;
    use sflow_compiler::span::FileId;

    fn sources() -> Sources {
        let mut sources = Sources::default();
        sources.add(
            "main.sflow",
            "app a {}\nworkflow w {\n  step fït { run = \"x\" }\n}\n",
            Origin::User,
        );
        sources.add("other.sflow", "workflow w {}\n", Origin::User);
        sources
    }

    fn diagnostic() -> Diagnostic {
        let text = "app a {}\nworkflow w {\n  step fït { run = \"x\" }\n}\n";
        let at = text.find("fït").unwrap_or(0);
        Diagnostic::new(
            Code::E0102,
            FileId(0),
            Span::new(at, at + "fït".len()),
            "duplicate name `fït`",
        )
        .with_label("declared again here")
        .with_secondary(FileId(1), Span::new(9, 10), "first declared here")
        .with_help("rename one of them")
    }

    #[test]
    fn json_positions_are_one_based_and_count_characters() {
        let json = JsonDiagnostic::new(&diagnostic(), &sources());
        assert_eq!(
            (
                json.at.line,
                json.at.column,
                json.at.end_line,
                json.at.end_column
            ),
            (3, 8, 3, 11)
        );
        assert_eq!(json.labels.len(), 2);
        assert_eq!(json.labels[1].at.file, "other.sflow");
        assert_eq!((json.labels[1].at.line, json.labels[1].at.column), (1, 10));
    }

    #[test]
    fn reports_draw_the_code_labels_help_and_other_files() {
        let sources = sources();
        let text = human(&[diagnostic()], &sources, Style::plain());
        println!("{text}");
        for expected in [
            "error[E0102]",
            "duplicate name `fït`",
            "main.sflow:3:8",
            "declared again here",
            "other.sflow:1:10",
            "first declared here",
            "rename one of them",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(text.is_ascii() || text.contains("fït"), "{text}");
    }

    #[test]
    fn stray_spans_do_not_break_rendering() {
        let sources = sources();
        let d = Diagnostic::new(Code::E0001, FileId(0), Span::new(10_000, 10_005), "oops");
        let text = human(&[d], &sources, Style::plain());
        assert!(text.contains("oops"), "{text}");
    }

    #[test]
    fn summaries_count_errors_and_warnings() {
        let error = diagnostic();
        let warning = Diagnostic::new(Code::W0003, FileId(0), Span::new(0, 1), "unused");
        assert_eq!(summary("m.sflow", &[]), "ok: m.sflow checked, no errors");
        assert_eq!(
            summary("m.sflow", std::slice::from_ref(&warning)),
            "ok: m.sflow checked, no errors, 1 warning"
        );
        assert_eq!(
            summary("m.sflow", &[error.clone(), error.clone(), warning]),
            "error: 2 errors, 1 warning in m.sflow"
        );
        assert_eq!(summary("m.sflow", &[error]), "error: 1 error in m.sflow");
        let colored = Style {
            color: true,
            ..Style::plain()
        };
        assert_eq!(
            summary_line("m.sflow", &[], colored),
            "\x1b[1;32mok\x1b[0m: m.sflow checked, no errors"
        );
        assert_eq!(
            summary_line("m.sflow", &[], Style::plain()),
            "ok: m.sflow checked, no errors"
        );
    }
}
