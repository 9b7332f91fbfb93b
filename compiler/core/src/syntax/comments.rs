//! Comments, and the coarse lexical scan that finds them.
//!
//! pest treats comments as trivia and drops them, but the formatter needs them and doc
//! comments must be attached to declarations, so this module scans the text once more, by
//! hand. The same scan (`lex`, crate-internal) serves error recovery and error messages: it knows where
//! strings and comments are (so a `//` or a `}` inside a string is neither a comment nor a
//! brace), and splits the rest into words, numbers and punctuation. It is deliberately
//! coarse: it never fails and never judges, the grammar does that.
//!
//! Its string and comment rules mirror `grammar/sflow.pest` exactly: a string ends at the next
//! unescaped `"` or, unterminated, at the end of its line; a block comment ends at the first
//! `*/` (no nesting); `///` starts a doc comment but `////` a plain one.

use crate::span::Span;

/// The sort of a comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommentKind {
    /// `// …` (also `//// …`, which is not a doc comment).
    Line,
    /// `/* … */`
    Block,
    /// `/// …`, documentation for the declaration that follows.
    Doc,
}

/// One comment, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    /// Line, block or doc comment.
    pub kind: CommentKind,
    /// The text as written, markers included (`/// The app.`), without the line break that
    /// ends a line comment (nor a `\r` before it).
    pub text: String,
    /// Where it was written.
    pub span: Span,
}

/// Every comment of `text`, in source order. Never fails: an unterminated block comment runs
/// to the end of the text.
pub fn scan(text: &str) -> Vec<Comment> {
    lex(text)
        .into_iter()
        .filter_map(|tok| match tok.kind {
            TokKind::Comment { kind, .. } => Some(Comment {
                kind,
                text: tok.span.text(text).to_string(),
                span: tok.span,
            }),
            _ => None,
        })
        .collect()
}

/// The sort of a coarse token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokKind {
    /// An identifier or keyword.
    Word,
    /// A number with whatever suffix follows it (`42`, `1e-3`, `4Gi`).
    Number,
    /// A string literal; `terminated` is false when the line (or text) ended first.
    Str { terminated: bool },
    /// Punctuation or an operator (`{`, `->`, `..`, `<=`, …).
    Punct,
    /// A comment; `terminated` is false for a `/*` without `*/`.
    Comment { kind: CommentKind, terminated: bool },
    /// Any other character (`@`, `é`, …).
    Other,
}

/// A coarse token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tok {
    /// What sort of token.
    pub kind: TokKind,
    /// Where it is.
    pub span: Span,
    /// Whether no other token precedes it on its line.
    pub line_start: bool,
    /// Whether it starts at column 0.
    pub col0: bool,
}

impl Tok {
    /// Whether this is a comment.
    pub fn is_comment(&self) -> bool {
        matches!(self.kind, TokKind::Comment { .. })
    }

    /// Whether this is the punctuation `p`.
    pub fn is_punct(&self, text: &str, p: &str) -> bool {
        self.kind == TokKind::Punct && self.span.text(text) == p
    }

    /// Whether this is the word `w`.
    pub fn is_word(&self, text: &str, w: &str) -> bool {
        self.kind == TokKind::Word && self.span.text(text) == w
    }
}

/// Two-character operators, tried before single characters.
const PUNCT2: &[&str] = &["->", "..", "==", "!=", "<=", ">=", "&&", "||"];

/// Splits `text` into coarse tokens (comments included), in order. Linear time; never fails.
pub(crate) fn lex(text: &str) -> Vec<Tok> {
    let bytes = text.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    // Whether a token has been seen on the current line yet.
    let mut line_has_token = false;
    let mut line_start_offset = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\n' {
            i += 1;
            line_has_token = false;
            line_start_offset = i;
            continue;
        }
        // The grammar's whitespace: space, and tab through carriage return.
        if b == b' ' || (b'\t'..=b'\r').contains(&b) {
            i += 1;
            continue;
        }
        let start = i;
        let kind = if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
            i = line_end(bytes, i);
            let body = &text[start..i];
            let kind = if body.starts_with("///") && !body.starts_with("////") {
                CommentKind::Doc
            } else {
                CommentKind::Line
            };
            TokKind::Comment {
                kind,
                terminated: true,
            }
        } else if b == b'/' && bytes.get(i + 1) == Some(&b'*') {
            match text[i + 2..].find("*/") {
                Some(k) => {
                    i = i + 2 + k + 2;
                    TokKind::Comment {
                        kind: CommentKind::Block,
                        terminated: true,
                    }
                }
                None => {
                    i = bytes.len();
                    TokKind::Comment {
                        kind: CommentKind::Block,
                        terminated: false,
                    }
                }
            }
        } else if b == b'"' {
            let (end, terminated) = string_end(bytes, i);
            i = end;
            TokKind::Str { terminated }
        } else if b.is_ascii_alphabetic() || b == b'_' {
            i = ident_end(bytes, i);
            TokKind::Word
        } else if b.is_ascii_digit() {
            i = number_end(bytes, i);
            TokKind::Number
        } else if b.is_ascii_punctuation() {
            let two = text.get(i..i + 2).unwrap_or("");
            i += if PUNCT2.contains(&two) { 2 } else { 1 };
            TokKind::Punct
        } else {
            // One whole character (possibly several bytes). A byte order mark opening the
            // text is skipped; anywhere else it is a stray character.
            let ch = text[i..].chars().next().unwrap_or(' ');
            i += ch.len_utf8().max(1);
            if ch == '\u{FEFF}' && start == 0 {
                continue;
            }
            TokKind::Other
        };
        let end = if let TokKind::Comment {
            kind: CommentKind::Line | CommentKind::Doc,
            ..
        } = kind
        {
            // The `\r` of a CRLF line ending is not part of the comment.
            if bytes.get(i.wrapping_sub(1)) == Some(&b'\r') && i > start + 2 {
                i - 1
            } else {
                i
            }
        } else {
            i
        };
        toks.push(Tok {
            kind,
            span: Span::new(start, end),
            line_start: !line_has_token,
            col0: start == line_start_offset,
        });
        line_has_token = true;
    }
    toks
}

/// The offset of the `\n` ending the line that contains `i` (or the text's end).
fn line_end(bytes: &[u8], i: usize) -> usize {
    bytes[i..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |k| i + k)
}

/// The end of the string literal starting at the `"` at `i`, and whether it is terminated.
/// Mirrors the grammar's `string`: `\` escapes any character but a newline.
fn string_end(bytes: &[u8], i: usize) -> (usize, bool) {
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'"' => return (j + 1, true),
            b'\n' => return (j, false),
            b'\\' => {
                if bytes.get(j + 1).is_some_and(|&n| n != b'\n') {
                    // Skip the escaped character (all of it, if it is not ASCII).
                    j += 1 + utf8_len(bytes[j + 1]);
                } else {
                    j += 1;
                }
            }
            _ => j += 1,
        }
    }
    (bytes.len().min(j), false)
}

/// The length of the UTF-8 sequence that starts with byte `b`.
fn utf8_len(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn ident_end(bytes: &[u8], i: usize) -> usize {
    let mut j = i;
    while j < bytes.len() && is_ident_byte(bytes[j]) {
        j += 1;
    }
    j
}

/// Mirrors the grammar's `number`: digits, an optional fraction (a `.` then a digit, so `1..8`
/// stops after `1`), an optional exponent, then any identifier characters (the suffix).
fn number_end(bytes: &[u8], i: usize) -> usize {
    let digits = |mut j: usize| {
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    let mut j = digits(i);
    if bytes.get(j) == Some(&b'.') && bytes.get(j + 1).is_some_and(u8::is_ascii_digit) {
        j = digits(j + 1);
    }
    if matches!(bytes.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(bytes.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        if bytes.get(k).is_some_and(u8::is_ascii_digit) {
            j = digits(k);
        }
    }
    ident_end(bytes, j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(TokKind, &str)> {
        lex(text)
            .into_iter()
            .map(|t| (t.kind, t.span.text(text)))
            .collect()
    }

    #[test]
    fn comment_markers_inside_strings_are_not_comments() {
        let text = "x = \"a // b /* c\" // real\n/* block */ /// doc\n//// plain";
        let comments = scan(text);
        let got: Vec<_> = comments.iter().map(|c| (c.kind, c.text.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (CommentKind::Line, "// real"),
                (CommentKind::Block, "/* block */"),
                (CommentKind::Doc, "/// doc"),
                (CommentKind::Line, "//// plain"),
            ]
        );
        assert_eq!(comments[0].span.text(text), "// real");
    }

    #[test]
    fn strings_end_at_the_line_and_escapes_do_not_end_them() {
        let text = "\"a\\\"b\" \"open\nnext";
        assert_eq!(
            kinds(text),
            vec![
                (TokKind::Str { terminated: true }, "\"a\\\"b\""),
                (TokKind::Str { terminated: false }, "\"open"),
                (TokKind::Word, "next"),
            ]
        );
    }

    #[test]
    fn numbers_ranges_and_suffixes() {
        assert_eq!(
            kinds("1..8 2.5e+3 4Gi 1e"),
            vec![
                (TokKind::Number, "1"),
                (TokKind::Punct, ".."),
                (TokKind::Number, "8"),
                (TokKind::Number, "2.5e+3"),
                (TokKind::Number, "4Gi"),
                (TokKind::Number, "1e"),
            ]
        );
    }

    #[test]
    fn unterminated_block_comment_runs_to_the_end() {
        let toks = lex("a /* b\nc");
        assert_eq!(toks.len(), 2);
        assert_eq!(
            toks[1].kind,
            TokKind::Comment {
                kind: CommentKind::Block,
                terminated: false
            }
        );
        assert_eq!(toks[1].span, Span::new(2, 8));
    }

    #[test]
    fn line_starts_and_columns() {
        let toks = lex("a b\n  c\nd");
        let flags: Vec<_> = toks.iter().map(|t| (t.line_start, t.col0)).collect();
        assert_eq!(
            flags,
            vec![(true, true), (false, false), (true, false), (true, true)]
        );
    }

    #[test]
    fn crlf_is_not_part_of_a_line_comment_and_odd_characters_are_whole() {
        let text = "// hi\r\né @";
        let toks = lex(text);
        assert_eq!(toks[0].span.text(text), "// hi");
        assert_eq!(toks[1].span.text(text), "é");
        assert_eq!(toks[1].kind, TokKind::Other);
        assert_eq!(toks[2].kind, TokKind::Punct);
    }
}
