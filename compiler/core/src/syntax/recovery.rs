//! Error recovery: cutting a file into declaration chunks, a workflow into member chunks and a
//! step into one chunk per member.
//!
//! pest stops at the first error and returns no partial tree, so the parser never hands it the
//! whole file. This module cuts the text first, using only the coarse tokens of
//! [`comments::lex`](super::comments::lex) (it knows strings and comments, so a `}` inside a
//! string is no brace), and the parser parses each chunk on its own: one bad declaration costs
//! one diagnostic and the others still parse. Everything here is a single linear pass.
//!
//! Where a chunk starts:
//! - at a declaration keyword (`app use type workflow service agent trigger policy extern`)
//!   at brace depth 0, unless it directly follows, on the same line, a keyword that a name
//!   follows (`workflow policy {` is a workflow named by a keyword, reported as such, not two
//!   broken declarations: see [`names_next`]);
//! - at such a keyword at column 0 followed by a name, even when the depth count says we are
//!   still inside braces: that is how a missing `}` looks, and resetting the depth there keeps
//!   the damage to the one declaration that lacks it.
//!
//! Inside a workflow whose declaration failed, a member starts at `param` or `step` at depth 0
//! of the body, or as the first word of a line followed by a name (again: a missing `}` of the
//! previous step). Inside a step that failed, members are cut at separators and line starts
//! ([`split_block`]).
//!
//! Brackets are tracked as a stack, not a count: a `}` closes any `(` or `[` left open inside
//! its braces, so `after = [a` on one line does not swallow the `}` of its step.

use super::comments::{Tok, TokKind};
use crate::span::Span;

/// The keywords that start a top-level declaration.
pub(crate) const DECL_KEYWORDS: &[&str] = &[
    "app", "use", "type", "workflow", "service", "agent", "trigger", "policy", "extern",
];

/// Whether `word` is one of [`DECL_KEYWORDS`] (a `match`, which compares lengths first: this is
/// asked of every word of the file).
pub(crate) fn is_decl_keyword(word: &str) -> bool {
    matches!(
        word,
        "app" | "use" | "type" | "workflow" | "service" | "agent" | "trigger" | "policy" | "extern"
    )
}

/// Whether a declared name follows `word` at the top level (`workflow NAME`, `agent kind NAME`,
/// `extern step NAME`), so that a keyword right after it is that name, written wrongly (E0002),
/// rather than the start of a new declaration.
fn names_next_decl(word: &str) -> bool {
    matches!(
        word,
        "workflow" | "service" | "agent" | "kind" | "trigger" | "policy" | "app" | "type" | "step"
    )
}

/// Whether a declared name follows `word` in a workflow body (`param NAME`, `step NAME`).
fn names_next_member(word: &str) -> bool {
    matches!(word, "param" | "step")
}

/// What starts a chunk where [`boundaries`] cuts: `starts` says which words do, `names_next`
/// after which words a name is due instead (see [`names_next_decl`]).
#[derive(Clone, Copy)]
struct Cut {
    starts: fn(&str) -> bool,
    names_next: fn(&str) -> bool,
}

/// Whether the word at code index `j` stands where a name is due: right after a keyword that a
/// name follows, on the same line.
fn is_named_by_keyword(text: &str, code: &[Tok], j: usize, first: usize, cut: Cut) -> bool {
    j > first
        && !code[j].line_start
        && code[j - 1].kind == TokKind::Word
        && (cut.names_next)(code[j - 1].span.text(text))
}

/// How deeply brackets may nest within one chunk. Far beyond any real program; it keeps pest's
/// recursion (and ours) within the stack on adversarial input.
pub(crate) const MAX_NESTING: usize = 100;

/// The brackets open at a point of the scan. A `}` closes everything up to its `{` (an
/// unclosed `(` or `[` inside braces must not swallow the brace that ends the block); a `)` or
/// `]` closes only its own kind and is otherwise ignored.
#[derive(Debug, Default)]
struct Nesting {
    open: Vec<u8>,
}

impl Nesting {
    fn depth(&self) -> usize {
        self.open.len()
    }

    fn reset(&mut self) {
        self.open.clear();
    }

    /// Feeds one token. Returns `true` when it is a `}` with no `{` open (it closes whatever
    /// encloses the scanned text).
    fn feed(&mut self, text: &str, tok: &Tok) -> bool {
        match bracket(text, tok) {
            Some(c @ (b'{' | b'(' | b'[')) => self.open.push(c),
            Some(b'}') => match self.open.iter().rposition(|&c| c == b'{') {
                Some(at) => self.open.truncate(at),
                None => {
                    self.open.clear();
                    return true;
                }
            },
            Some(b')') if self.open.last() == Some(&b'(') => {
                self.open.pop();
            }
            Some(b']') if self.open.last() == Some(&b'[') => {
                self.open.pop();
            }
            _ => {}
        }
        false
    }
}

/// The bracket `tok` is, if it is one (as a byte: cheaper than comparing strings, and every
/// token of the file goes through here several times).
fn bracket(text: &str, tok: &Tok) -> Option<u8> {
    if tok.kind != TokKind::Punct {
        return None;
    }
    // Brackets are one-character tokens; no two-character one starts with a bracket.
    match text.as_bytes().get(tok.span.start()) {
        Some(&b @ (b'{' | b'}' | b'(' | b')' | b'[' | b']')) => Some(b),
        _ => None,
    }
}

/// A slice of the file to parse on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// From its first token to the end of its last token (trivia around it excluded).
    pub span: Span,
    /// Indices into the code tokens (comments excluded) it covers.
    pub toks: std::ops::Range<usize>,
    /// Where brackets first nest deeper than [`MAX_NESTING`], if they do.
    pub too_deep: Option<Span>,
    /// Whether it contains an unterminated string (already reported by the parser).
    pub has_lex_error: bool,
}

/// Cuts the file into chunks. `code` are the coarse tokens without comments.
pub(crate) fn split_items(text: &str, code: &[Tok]) -> Vec<Chunk> {
    let cut = Cut {
        starts: is_decl_keyword,
        names_next: names_next_decl,
    };
    let (starts, _) = boundaries(text, code, 0..code.len(), cut, false);
    chunks_from(text, code, &starts, code.len())
}

/// The members of a workflow body: the body starts after the `{` at code index `open`, and
/// the chunk's tokens end (exclusively) at `end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Body {
    /// The member chunks, in order (stray text before the first member is a chunk too).
    pub members: Vec<Chunk>,
    /// The code index of the `}` that closes the body, if there is one.
    pub close: Option<usize>,
    /// Tokens after the closing `}` (code indices), if any: stray text.
    pub trailing: Option<std::ops::Range<usize>>,
}

/// Splits a workflow body into member chunks.
pub(crate) fn split_body(text: &str, code: &[Tok], open: usize, end: usize) -> Body {
    let (starts, close) = body_members(text, code, open, end);
    let members = chunks_from(text, code, &starts, close.unwrap_or(end));
    let trailing = close.map(|c| c + 1..end).filter(|r| !r.is_empty());
    Body {
        members,
        close,
        trailing,
    }
}

/// Where the members of a workflow body start (code indices: see [`split_body`]), and the code
/// index of the `}` that closes the body, if any. That brace is found by depth counting from
/// the body start, where a member keyword at the start of a line resets the depth (the previous
/// member lacks its `}`), as when cutting members: so both are found in one pass.
pub(crate) fn body_members(
    text: &str,
    code: &[Tok],
    open: usize,
    end: usize,
) -> (Vec<usize>, Option<usize>) {
    let cut = Cut {
        starts: is_member_keyword,
        names_next: names_next_member,
    };
    boundaries(text, code, open + 1..end, cut, true)
}

/// The keywords that start a member of a step.
pub(crate) const STEP_MEMBER_KEYWORDS: &[&str] =
    &["input", "output", "metric", "resources", "retry", "timeout"];

/// Splits the body of a block whose `{` is at code index `open` (the chunk's tokens end,
/// exclusively, at `end`) into one chunk per member. Newlines are not significant to the
/// grammar, but people write one member per line, so a member starts, at depth 0 of the body:
/// - after a `,` or `;`;
/// - at a word that begins a line and is one of `keywords`, or is followed by `=` (a field,
///   whose name may be a keyword: `run = …`);
/// - at any other word that begins a line, unless it is a keyword (`backoff` goes on a
///   `retry`) or the line before ends with something that needs more (an operator, `=`, `(`,
///   a keyword: see [`continues`]).
pub(crate) fn split_block(
    text: &str,
    code: &[Tok],
    open: usize,
    end: usize,
    keywords: &[&str],
) -> Body {
    let mut nesting = Nesting::default();
    let mut close = None;
    let mut starts = Vec::new();
    let mut after_sep = true;
    for j in open + 1..end {
        let tok = &code[j];
        let is_sep = tok.is_punct(text, ",") || tok.is_punct(text, ";");
        if nesting.feed(text, tok) {
            close = Some(j);
            break;
        }
        // The token's own bracket is already counted: a `{` opening a member's block still
        // belongs to the member that starts here.
        let opened_here =
            matches!(tok.span.text(text), "{" | "(" | "[") && tok.kind == TokKind::Punct;
        let depth = nesting.depth() - usize::from(opened_here);
        if depth == 0 {
            let new_line_member = tok.line_start && tok.kind == TokKind::Word && {
                let word = tok.span.text(text);
                let field = code.get(j + 1).is_some_and(|n| n.is_punct(text, "="));
                if keywords.contains(&word) || field {
                    true
                } else if crate::syntax::ast::is_keyword(word) {
                    false
                } else {
                    !continues(text, code.get(j.wrapping_sub(1)).filter(|_| j > open + 1))
                }
            };
            if !is_sep && (after_sep || new_line_member) {
                starts.push(j);
            }
            after_sep = is_sep;
        }
    }
    let body_end = close.unwrap_or(end);
    let members = chunks_from(text, code, &starts, body_end);
    let trailing = close.map(|c| c + 1..end).filter(|r| !r.is_empty());
    Body {
        members,
        close,
        trailing,
    }
}

/// Whether `word` starts a workflow member.
fn is_member_keyword(word: &str) -> bool {
    matches!(word, "param" | "step")
}

/// Whether a line ending with `prev` goes on to the next line: it ends with an operator, `=`,
/// `:`, `,`, an opening bracket, `->`, `.`, or a keyword that needs what follows (`when`,
/// `retry`, …; not `true`/`false`).
pub(crate) fn continues(text: &str, prev: Option<&Tok>) -> bool {
    let Some(prev) = prev else { return false };
    let s = prev.span.text(text);
    match prev.kind {
        TokKind::Punct => !matches!(s, "}" | ")" | "]" | ";"),
        TokKind::Word => crate::syntax::ast::is_keyword(s) && s != "true" && s != "false",
        _ => false,
    }
}

/// Whether the word at code index `j` starts a declaration (or member) of `keywords` even
/// though brackets are open: it stands at the start of its line (column 0 when `line_rule` is
/// false, first on its line when true) and is followed by a name, as in `step b {`.
fn starts_member(
    text: &str,
    code: &[Tok],
    j: usize,
    first: usize,
    is_keyword: fn(&str) -> bool,
    line_rule: bool,
) -> bool {
    let tok = &code[j];
    // Cheapest tests first: this is asked of every token inside braces.
    let at_line_start = if line_rule { tok.line_start } else { tok.col0 };
    if !at_line_start || tok.kind != TokKind::Word || !is_keyword(tok.span.text(text)) {
        return false;
    }
    // `x.step` is a field read, not a member.
    if j > first && code[j - 1].is_punct(text, ".") {
        return false;
    }
    let next_is_name = code.get(j + 1).is_some_and(|n| {
        n.kind == TokKind::Word
            || (tok.is_word(text, "use") && matches!(n.kind, TokKind::Str { .. }))
    });
    next_is_name
}

/// The code indices in `range` where a new chunk starts. The first token of the range always
/// starts one (stray text if it is no keyword). With `line_rule` (in a block), the scan stops
/// at a `}` that closes the block, and returns its index too.
fn boundaries(
    text: &str,
    code: &[Tok],
    range: std::ops::Range<usize>,
    cut: Cut,
    line_rule: bool,
) -> (Vec<usize>, Option<usize>) {
    let mut starts = Vec::new();
    let mut nesting = Nesting::default();
    let first = range.start;
    for j in range {
        let tok = &code[j];
        let depth = nesting.depth();
        let boundary = j == first
            || if depth == 0 {
                tok.kind == TokKind::Word
                    && (cut.starts)(tok.span.text(text))
                    && !(j > first && code[j - 1].is_punct(text, "."))
                    && !is_named_by_keyword(text, code, j, first, cut)
            } else {
                // At a line start, so never a name after a keyword.
                starts_member(text, code, j, first, cut.starts, line_rule)
            };
        if boundary {
            starts.push(j);
            nesting.reset();
        }
        // At the top level, a stray `}` at depth 0 closes nothing; the parser reports it.
        if nesting.feed(text, tok) && line_rule {
            // The brace belongs to no member (it may have been taken for the first one's start).
            if starts.last() == Some(&j) {
                starts.pop();
            }
            return (starts, Some(j));
        }
    }
    (starts, None)
}

/// Builds the chunks that start at `starts` and end before the next start (or `end`).
fn chunks_from(text: &str, code: &[Tok], starts: &[usize], end: usize) -> Vec<Chunk> {
    let mut chunks = Vec::with_capacity(starts.len());
    for (n, &s) in starts.iter().enumerate() {
        let e = starts.get(n + 1).copied().unwrap_or(end);
        if e <= s {
            continue;
        }
        let first = &code[s];
        let last = &code[e - 1];
        let mut depth = 0usize;
        let mut too_deep = None;
        let mut has_lex_error = false;
        for tok in &code[s..e] {
            match bracket(text, tok) {
                Some(b'{' | b'(' | b'[') => {
                    depth += 1;
                    if depth > MAX_NESTING && too_deep.is_none() {
                        too_deep = Some(tok.span);
                    }
                }
                Some(_) => depth = depth.saturating_sub(1),
                None => has_lex_error |= tok.kind == (TokKind::Str { terminated: false }),
            }
        }
        chunks.push(Chunk {
            span: Span::new(first.span.start(), last.span.end()),
            toks: s..e,
            too_deep,
            has_lex_error,
        });
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::super::comments::lex;
    use super::*;

    fn code(text: &str) -> Vec<Tok> {
        lex(text).into_iter().filter(|t| !t.is_comment()).collect()
    }

    fn item_texts(text: &str) -> Vec<&str> {
        let code = code(text);
        split_items(text, &code)
            .into_iter()
            .map(|c| c.span.text(text))
            .collect()
    }

    #[test]
    fn splits_at_keywords_at_depth_zero_only() {
        let text = "app a { x = \"} workflow\" }\n// use not\nuse std.x\nservice s { type = 1 }";
        assert_eq!(
            item_texts(text),
            vec![
                "app a { x = \"} workflow\" }",
                "use std.x",
                "service s { type = 1 }"
            ]
        );
    }

    #[test]
    fn a_keyword_at_column_zero_recovers_a_missing_brace() {
        let text = "workflow w {\n  step a {\n}\npolicy p { when x then y() }";
        assert_eq!(
            item_texts(text),
            vec![
                "workflow w {\n  step a {\n}",
                "policy p { when x then y() }"
            ]
        );
        // Indented, or followed by `=`, it does not.
        let text = "app a {\n  service s\ntype = 1\n}";
        assert_eq!(item_texts(text), vec![text]);
    }

    #[test]
    fn stray_text_before_the_first_declaration_is_one_chunk() {
        let text = "step fit { }\nuse std.x";
        let code = code(text);
        let chunks = split_items(text, &code);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].span.text(text), "step fit { }");
    }

    #[test]
    fn workflow_bodies_split_into_members_even_with_a_missing_brace() {
        let text = "workflow w {\n  param p: int\n  step a {\n    image = \"x\"\n  step b { run = \"y\" }\n} junk";
        let code = code(text);
        let open = code.iter().position(|t| t.is_punct(text, "{")).unwrap_or(0);
        let body = split_body(text, &code, open, code.len());
        let members: Vec<_> = body.members.iter().map(|c| c.span.text(text)).collect();
        assert_eq!(
            members,
            vec![
                "param p: int",
                "step a {\n    image = \"x\"",
                "step b { run = \"y\" }"
            ]
        );
        assert_eq!(body.close.map(|c| code[c].span.text(text)), Some("}"));
        assert_eq!(body.trailing.map(|r| r.len()), Some(1));
    }

    #[test]
    fn block_bodies_split_one_member_per_line_or_separator() {
        let text = "step s {\n  image = \"x\", run = f(\n    a = 1)\n  x = 1 +\n    2\n  resources { cpu = 1\n memory = 2 }\n  image =\n  input x: T\n  retry 2\n    backoff 1s\n}";
        let code = code(text);
        let open = code.iter().position(|t| t.is_punct(text, "{")).unwrap_or(0);
        let body = split_block(text, &code, open, code.len(), STEP_MEMBER_KEYWORDS);
        let members: Vec<_> = body.members.iter().map(|c| c.span.text(text)).collect();
        assert_eq!(
            members,
            vec![
                "image = \"x\",",
                "run = f(\n    a = 1)",
                "x = 1 +\n    2",
                "resources { cpu = 1\n memory = 2 }",
                "image =",
                "input x: T",
                "retry 2\n    backoff 1s"
            ]
        );
        assert!(body.close.is_some());
    }

    #[test]
    fn an_unclosed_bracket_does_not_swallow_the_closing_brace() {
        let text = "step b {\n  after = [a\n  run = f(x\n}\nrest";
        let code = code(text);
        let open = code.iter().position(|t| t.is_punct(text, "{")).unwrap_or(0);
        let body = split_block(text, &code, open, code.len(), STEP_MEMBER_KEYWORDS);
        let members: Vec<_> = body.members.iter().map(|c| c.span.text(text)).collect();
        // Inside `[`, lines are list items, not members: the list runs on (one error, not two).
        assert_eq!(members, vec!["after = [a\n  run = f(x"]);
        assert_eq!(body.close.map(|c| code[c].span.start()), text.find('}'));
    }

    #[test]
    fn deep_nesting_is_flagged() {
        let text = format!("app a {{ x = {} }}", "(".repeat(MAX_NESTING + 5));
        let code = code(&text);
        let chunks = split_items(&text, &code);
        assert!(chunks[0].too_deep.is_some());
    }
}
