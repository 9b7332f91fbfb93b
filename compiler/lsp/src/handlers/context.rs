//! Where the cursor stands, from the text alone: the blocks and calls that enclose it, and the
//! tokens of the statement being typed. Completion and signature help use this on half-typed
//! code, where the parser may have dropped the whole declaration.

use crate::lex::{self, Kind, Tok};

/// The sort of a `{ … }` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// `app NAME {`
    App,
    /// `workflow NAME {`
    Workflow(String),
    /// `step NAME {`
    Step(String),
    /// `extern step NAME(…) {`
    ExternStep,
    /// `service NAME {`
    Service(String),
    /// `agent NAME: KIND {`
    Agent {
        /// The agent's kind.
        kind: String,
    },
    /// `agent kind NAME {`
    AgentKind(String),
    /// `policy NAME {`
    Policy,
    /// `resources {`
    Resources,
    /// `run WORKFLOW with {`
    With(String),
    /// Any other `{ … }` (a record value).
    Record,
}

/// An open `( … )` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The dotted callee (`["checker", "check"]`), empty when the `(` follows no name.
    pub callee: Vec<String>,
    /// Offset of the `(`.
    pub open: usize,
    /// Which argument the cursor is in (0-based).
    pub arg: usize,
    /// The name of the argument being written (`lr = …`), if named.
    pub named: Option<String>,
}

/// What the text before the cursor says.
#[derive(Debug)]
pub struct Scan<'t> {
    /// The text.
    pub text: &'t str,
    /// Code tokens (no comments) that end at or before the cursor.
    pub toks: Vec<Tok>,
    /// Enclosing blocks, outermost first.
    pub blocks: Vec<BlockKind>,
    /// Enclosing open calls (and other parentheses), outermost first.
    pub calls: Vec<Call>,
    /// Index into `toks` of the first token of the current statement.
    pub stmt_start: usize,
    /// The identifier being typed right before the cursor (may be empty).
    pub prefix: &'t str,
    /// Whether the cursor is inside a string literal (then `toks` ends before it).
    pub in_string: Option<Tok>,
    /// Whether the cursor is inside a comment.
    pub in_comment: bool,
    /// Whether the word being typed starts its own line and does not continue the previous
    /// one (a new member of the enclosing block starts here).
    pub fresh_line: bool,
}

impl<'t> Scan<'t> {
    /// The text of token `i` counted back from the cursor (`back(0)` is the last one before
    /// the prefix being typed).
    pub fn back(&self, i: usize) -> Option<&'t str> {
        let n = self.toks.len().checked_sub(i + 1)?;
        self.toks.get(n).map(|t| t.text(self.text))
    }

    /// The tokens of the current statement.
    pub fn stmt(&self) -> Vec<&'t str> {
        self.toks
            .get(self.stmt_start..)
            .unwrap_or(&[])
            .iter()
            .map(|t| t.text(self.text))
            .collect()
    }

    /// The innermost block.
    pub fn block(&self) -> Option<&BlockKind> {
        self.blocks.last()
    }

    /// The name of the enclosing workflow.
    pub fn workflow(&self) -> Option<&str> {
        self.blocks.iter().rev().find_map(|b| match b {
            BlockKind::Workflow(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// The name of the enclosing step.
    pub fn step(&self) -> Option<&str> {
        self.blocks.iter().rev().find_map(|b| match b {
            BlockKind::Step(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// The dotted path written right before a trailing `.` (`a.b.` gives `["a", "b"]`).
    pub fn path_before_dot(&self) -> Option<Vec<&'t str>> {
        if self.back(0) != Some(".") {
            return None;
        }
        let mut path = Vec::new();
        let mut i = 1;
        loop {
            let t = self.toks.get(self.toks.len().checked_sub(i + 1)?)?;
            if t.kind != Kind::Word {
                return None;
            }
            path.push(t.text(self.text));
            if self.back(i + 1) == Some(".") {
                i += 2;
            } else {
                break;
            }
        }
        path.reverse();
        Some(path)
    }
}

/// Scans `text` up to `offset`.
pub fn scan(text: &str, offset: usize) -> Scan<'_> {
    let offset = offset.min(text.len());
    // Only the text up to the end of the cursor's line matters (a string ends at its line).
    let line_end = text
        .get(offset..)
        .and_then(|rest| rest.find('\n'))
        .map_or(text.len(), |i| offset + i);
    let all = lex::lex(text.get(..line_end).unwrap_or(text));
    let mut toks: Vec<Tok> = Vec::new();
    let mut in_string = None;
    let mut in_comment = false;
    let mut prefix = "";
    for t in all {
        if t.start >= offset {
            break;
        }
        if t.end > offset || (t.end == offset && matches!(t.kind, Kind::Str { terminated: false }))
        {
            // The cursor is inside this token.
            match t.kind {
                Kind::Str { .. } => in_string = Some(t),
                Kind::Comment { .. } => in_comment = true,
                Kind::Word => prefix = text.get(t.start..offset).unwrap_or(""),
                _ => {}
            }
            break;
        }
        if let Kind::Comment { doc } = t.kind {
            // A line comment runs to the end of its line: a cursor right at its end is in it.
            let _ = doc;
            if t.end == offset && text.get(t.start..t.start + 2) == Some("//") {
                in_comment = true;
            }
            continue;
        }
        toks.push(t);
    }
    // A word that ends right at the cursor is the prefix being typed.
    if prefix.is_empty() && in_string.is_none() && !in_comment {
        if let Some(last) = toks.last() {
            if last.kind == Kind::Word && last.end == offset {
                prefix = text.get(last.start..last.end).unwrap_or("");
                toks.pop();
            }
        }
    }
    let mut blocks: Vec<BlockKind> = Vec::new();
    let mut calls: Vec<Call> = Vec::new();
    let mut stmt_start = 0;
    for (i, t) in toks.iter().enumerate() {
        let s = t.text(text);
        if t.kind != Kind::Punct {
            if t.line_start && calls.is_empty() && !continues(&toks, i, text) {
                stmt_start = i;
            }
            continue;
        }
        match s {
            "{" | "{{" => {
                blocks.push(block_kind(&toks, i, text));
                stmt_start = i + 1;
            }
            "}" | "}}" => {
                blocks.pop();
                stmt_start = i + 1;
            }
            "(" => {
                let callee = callee_before(&toks, i, text);
                calls.push(Call {
                    callee,
                    open: t.start,
                    arg: 0,
                    named: None,
                });
            }
            ")" => {
                calls.pop();
            }
            "," => {
                if let Some(call) = calls.last_mut() {
                    call.arg += 1;
                    call.named = None;
                } else if !matches!(blocks.last(), Some(BlockKind::Policy)) {
                    stmt_start = i + 1;
                }
            }
            ";" => stmt_start = i + 1,
            "=" => {
                if let Some(call) = calls.last_mut() {
                    let name = i
                        .checked_sub(1)
                        .and_then(|k| toks.get(k))
                        .filter(|p| p.kind == Kind::Word);
                    call.named = name.map(|p| p.text(text).to_string());
                }
            }
            _ => {}
        }
    }
    let prefix_start = offset.saturating_sub(prefix.len());
    let before = text.get(..prefix_start).unwrap_or("");
    let own_line = before
        .rsplit('\n')
        .next()
        .is_some_and(|l| l.trim().is_empty());
    let continued = toks.last().is_some_and(|t| {
        matches!(
            t.text(text),
            "," | "="
                | "->"
                | "."
                | "and"
                | "or"
                | "not"
                | "then"
                | "when"
                | "for"
                | ":"
                | "("
                | "["
                | "in"
                | "+"
                | "-"
                | "*"
                | "/"
                | "<"
                | ">"
                | "<="
                | ">="
                | "=="
                | "!="
                | "&&"
                | "||"
                | "every"
                | "on"
                | "run"
                | "with"
                | "uses"
                | "cooldown"
                | "max"
                | "per"
                | "retry"
                | "backoff"
                | "timeout"
                | "slo"
        )
    });
    let fresh_line = own_line && !continued && calls.is_empty();
    Scan {
        text,
        toks,
        blocks,
        calls,
        stmt_start,
        prefix,
        in_string,
        in_comment,
        fresh_line,
    }
}

/// Whether token `i`, first on its line, continues the previous line's statement (a line
/// that starts with an operator, or follows one, or a `then` list continued after a comma).
fn continues(toks: &[Tok], i: usize, text: &str) -> bool {
    let Some(prev) = i.checked_sub(1).and_then(|k| toks.get(k)) else {
        return false;
    };
    let p = prev.text(text);
    let t = toks.get(i).map_or("", |t| t.text(text));
    matches!(
        p,
        "," | "="
            | "->"
            | "."
            | "and"
            | "or"
            | "not"
            | "+"
            | "-"
            | "*"
            | "/"
            | "<"
            | ">"
            | "<="
            | ">="
            | "=="
            | "!="
            | "&&"
            | "||"
    ) || matches!(t, "and" | "or" | "&&" | "||" | "->" | ".")
}

fn block_kind(toks: &[Tok], open: usize, text: &str) -> BlockKind {
    let word = |back: usize| -> Option<&str> {
        open.checked_sub(back)
            .and_then(|k| toks.get(k))
            .map(|t| t.text(text))
    };
    match (word(4), word(3), word(2), word(1)) {
        (_, Some("agent"), Some("kind"), Some(name)) => BlockKind::AgentKind(name.to_string()),
        (Some("agent"), Some(_), Some(":"), Some(kind)) => BlockKind::Agent {
            kind: kind.to_string(),
        },
        (_, _, Some("app"), Some(_)) => BlockKind::App,
        (_, _, Some("workflow"), Some(name)) => BlockKind::Workflow(name.to_string()),
        (_, _, Some("step"), Some(name)) => BlockKind::Step(name.to_string()),
        (_, _, Some("service"), Some(name)) => BlockKind::Service(name.to_string()),
        (_, _, Some("policy"), Some(_)) => BlockKind::Policy,
        (_, _, _, Some("resources")) | (_, _, Some("resources"), Some("=")) => BlockKind::Resources,
        (_, Some("run"), Some(workflow), Some("with")) => BlockKind::With(workflow.to_string()),
        (_, _, _, Some(")")) => BlockKind::ExternStep,
        _ => BlockKind::Record,
    }
}

fn callee_before(toks: &[Tok], open: usize, text: &str) -> Vec<String> {
    let mut path = Vec::new();
    let mut i = open;
    while let Some(t) = i.checked_sub(1).and_then(|k| toks.get(k)) {
        if t.kind != Kind::Word {
            break;
        }
        path.push(t.text(text).to_string());
        match i.checked_sub(2).and_then(|k| toks.get(k)) {
            Some(dot) if dot.text(text) == "." => i -= 2,
            _ => break,
        }
    }
    path.reverse();
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_calls_and_prefix() {
        let text = "workflow w {\n  step s {\n    uses = f(a = 1, lr";
        let s = scan(text, text.len());
        assert_eq!(
            s.blocks,
            vec![BlockKind::Workflow("w".into()), BlockKind::Step("s".into())]
        );
        assert_eq!(s.prefix, "lr");
        let call = s.calls.last().cloned();
        assert_eq!(
            call.map(|c| (c.callee, c.arg)),
            Some((vec!["f".to_string()], 1))
        );
    }

    #[test]
    fn paths_before_a_dot() {
        let text = "policy p {\n  when training.fit.";
        let s = scan(text, text.len());
        assert_eq!(s.path_before_dot(), Some(vec!["training", "fit"]));
        assert_eq!(s.stmt().first().copied(), Some("when"));
    }

    #[test]
    fn strings_and_agents() {
        let text = "agent t: Tracker { watch = p, ";
        let s = scan(text, text.len());
        assert_eq!(
            s.block(),
            Some(&BlockKind::Agent {
                kind: "Tracker".into()
            })
        );
        let text = "run = \"x {{inp";
        let s = scan(text, text.len());
        assert!(s.in_string.is_some());
    }
}
