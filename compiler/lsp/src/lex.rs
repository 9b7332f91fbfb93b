//! A coarse lexer for editor features that must work on half-typed text: completion re-lexes
//! the text before the cursor (as Nickel's server does) instead of relying on a parse that may
//! have dropped the declaration being typed, and semantic tokens colour every token.
//!
//! It mirrors the core's lexical scan (`syntax/comments.rs`): a string ends at the next
//! unescaped `"` or at the end of its line; a block comment at the first `*/`; it never fails.

/// The sort of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An identifier or keyword.
    Word,
    /// A number with its suffix (`42`, `4Gi`).
    Number,
    /// A string literal; `terminated` is false when the line ended first.
    Str {
        /// Whether the closing quote is there.
        terminated: bool,
    },
    /// Punctuation or an operator.
    Punct,
    /// A comment (`doc` for `///`).
    Comment {
        /// Whether it is a doc comment.
        doc: bool,
    },
    /// Anything else.
    Other,
}

/// A token: its sort and byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tok {
    /// What sort of token.
    pub kind: Kind,
    /// Start offset.
    pub start: usize,
    /// End offset.
    pub end: usize,
    /// Whether it is the first token on its line.
    pub line_start: bool,
}

impl Tok {
    /// The token's text.
    pub fn text<'t>(&self, text: &'t str) -> &'t str {
        text.get(self.start..self.end).unwrap_or("")
    }

    /// Whether this is the punctuation `p`.
    pub fn is(&self, text: &str, p: &str) -> bool {
        matches!(self.kind, Kind::Punct | Kind::Word) && self.text(text) == p
    }
}

const PUNCT2: &[&str] = &["->", "..", "==", "!=", "<=", ">=", "&&", "||", "{{", "}}"];

/// Every token of `text`, comments included.
pub fn lex(text: &str) -> Vec<Tok> {
    let bytes = text.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut line_has_token = false;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\n' {
            i += 1;
            line_has_token = false;
            continue;
        }
        if b == b' ' || b == b'\t' || b == b'\r' {
            i += 1;
            continue;
        }
        let start = i;
        let kind = if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            let body = text.get(start..i).unwrap_or("");
            Kind::Comment {
                doc: body.starts_with("///") && !body.starts_with("////"),
            }
        } else if b == b'/' && bytes.get(i + 1) == Some(&b'*') {
            i = text
                .get(i + 2..)
                .and_then(|rest| rest.find("*/"))
                .map_or(bytes.len(), |k| i + 2 + k + 2);
            Kind::Comment { doc: false }
        } else if b == b'"' {
            i += 1;
            let mut terminated = false;
            while i < bytes.len() {
                match bytes[i] {
                    b'"' => {
                        i += 1;
                        terminated = true;
                        break;
                    }
                    b'\n' => break,
                    // An escape covers the whole next character (it may be several bytes).
                    b'\\' if bytes.get(i + 1).is_some_and(|&n| n != b'\n') => {
                        i += 1 + text
                            .get(i + 1..)
                            .and_then(|r| r.chars().next())
                            .map_or(1, char::len_utf8);
                    }
                    _ => i += 1,
                }
            }
            Kind::Str { terminated }
        } else if b.is_ascii_alphabetic() || b == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            Kind::Word
        } else if b.is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if matches!(bytes.get(i), Some(b'e' | b'E')) {
                let mut k = i + 1;
                if matches!(bytes.get(k), Some(b'+' | b'-')) {
                    k += 1;
                }
                if bytes.get(k).is_some_and(u8::is_ascii_digit) {
                    i = k;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            Kind::Number
        } else if b.is_ascii_punctuation() {
            let two = text.get(i..i + 2).unwrap_or("");
            i += if PUNCT2.contains(&two) { 2 } else { 1 };
            Kind::Punct
        } else {
            i += text
                .get(i..)
                .and_then(|s| s.chars().next())
                .map_or(1, char::len_utf8);
            Kind::Other
        };
        let i_end = i.min(bytes.len());
        // Keep offsets on character boundaries (a lone multi-byte char is one `Other` token).
        toks.push(Tok {
            kind,
            start,
            end: i_end,
            line_start: !line_has_token,
        });
        line_has_token = true;
        i = i_end;
    }
    toks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_of_a_line() {
        let text = "trigger t: every 10 a.b -> run w // c\n\"x {{y}}\" 4Gi \"open";
        let got: Vec<(Kind, &str)> = lex(text).iter().map(|t| (t.kind, t.text(text))).collect();
        assert_eq!(got[0], (Kind::Word, "trigger"));
        assert!(got.contains(&(Kind::Punct, "->")));
        assert!(got.contains(&(Kind::Comment { doc: false }, "// c")));
        assert!(got.contains(&(Kind::Str { terminated: true }, "\"x {{y}}\"")));
        assert!(got.contains(&(Kind::Number, "4Gi")));
        assert_eq!(
            got.last(),
            Some(&(Kind::Str { terminated: false }, "\"open"))
        );
    }
}
