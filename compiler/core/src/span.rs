//! Byte spans into source text, and the ids of source files.
//!
//! Invariant: a [`Span`] is always a pair of byte offsets on UTF-8 character boundaries of the
//! file it was produced from, with `start <= end`. Spans never carry the file; the owner of a
//! syntax tree knows which [`FileId`] it belongs to.

use serde::{Deserialize, Serialize};

/// A half-open byte range `start..end` in one source file.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u32,
    /// Offset one past the last byte.
    pub end: u32,
}

impl Span {
    /// A span from `start` to `end` (byte offsets).
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// The empty span at `offset`.
    pub fn point(offset: usize) -> Span {
        Span::new(offset, offset)
    }

    /// The smallest span covering both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// This span moved right by `offset` bytes.
    pub fn shifted(self, offset: usize) -> Span {
        Span {
            start: self.start + offset as u32,
            end: self.end + offset as u32,
        }
    }

    /// Start offset as `usize`.
    pub fn start(self) -> usize {
        self.start as usize
    }

    /// End offset as `usize`.
    pub fn end(self) -> usize {
        self.end as usize
    }

    /// Length in bytes.
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    /// Whether the span covers no bytes.
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// Whether `offset` lies within the span (inclusive of its end, as a cursor would).
    pub fn contains(self, offset: usize) -> bool {
        self.start() <= offset && offset <= self.end()
    }

    /// The covered text of `source`, or `""` if the span does not fit it.
    pub fn text(self, source: &str) -> &str {
        source.get(self.start()..self.end()).unwrap_or("")
    }
}

/// Identifies one source file of a program: user files in load order, then stdlib modules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileId(pub u32);

/// A span together with the file it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileSpan {
    /// The file.
    pub file: FileId,
    /// The bytes within it.
    pub span: Span,
}

impl FileSpan {
    /// Pairs a file with a span.
    pub fn new(file: FileId, span: Span) -> FileSpan {
        FileSpan { file, span }
    }
}

/// 1-based line and column (in characters) of a byte offset, as editors and humans count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineCol {
    /// 1-based line number.
    pub line: u32,
    /// 1-based column, counted in Unicode scalar values.
    pub column: u32,
}

/// Maps byte offsets of one text to lines and columns.
#[derive(Clone, Debug)]
pub struct LineIndex {
    line_starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes the line starts of `text`.
    pub fn new(text: &str) -> LineIndex {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { line_starts }
    }

    /// Line and column of `offset` in `text` (the text this index was built from).
    pub fn line_col(&self, text: &str, offset: usize) -> LineCol {
        let offset = offset.min(text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let start = self.line_starts[line];
        let column = text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        LineCol {
            line: line as u32 + 1,
            column: column as u32 + 1,
        }
    }

    /// Byte offset of a 0-based line and 0-based UTF-16 column (as LSP counts), clamped to `text`.
    pub fn offset_utf16(&self, text: &str, line: u32, character: u32) -> usize {
        let Some(&start) = self.line_starts.get(line as usize) else {
            return text.len();
        };
        let end = self
            .line_starts
            .get(line as usize + 1)
            .copied()
            .unwrap_or(text.len());
        let line_text = text.get(start..end).unwrap_or("");
        let mut units = 0u32;
        for (i, ch) in line_text.char_indices() {
            if units >= character || ch == '\n' {
                return start + i;
            }
            units += ch.len_utf16() as u32;
        }
        end
    }

    /// 0-based line and 0-based UTF-16 column of `offset` (as LSP counts).
    pub fn position_utf16(&self, text: &str, offset: usize) -> (u32, u32) {
        let offset = offset.min(text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let start = self.line_starts[line];
        let column = text
            .get(start..offset)
            .map_or(0, |s| s.chars().map(|c| c.len_utf16()).sum::<usize>());
        (line as u32, column as u32)
    }

    /// Number of lines.
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_and_in_characters() {
        let text = "ab\nçd\n";
        let index = LineIndex::new(text);
        assert_eq!(index.line_col(text, 0), LineCol { line: 1, column: 1 });
        assert_eq!(index.line_col(text, 3), LineCol { line: 2, column: 1 });
        // 'ç' is two bytes; 'd' is the second character of line 2.
        assert_eq!(index.line_col(text, 5), LineCol { line: 2, column: 2 });
    }

    #[test]
    fn utf16_positions_round_trip() {
        let text = "x = \"😀\"\ny";
        let index = LineIndex::new(text);
        let y = text.len() - 1;
        assert_eq!(index.position_utf16(text, y), (1, 0));
        assert_eq!(index.offset_utf16(text, 1, 0), y);
        let after_emoji = text.find("😀").map(|i| i + 4).unwrap_or(0);
        assert_eq!(index.position_utf16(text, after_emoji), (0, 7));
        assert_eq!(index.offset_utf16(text, 0, 7), after_emoji);
    }
}
