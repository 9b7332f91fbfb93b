//! Formatting: the whole document through the core's formatter. A document with syntax
//! errors is not formatted; the request fails with the reason, which editors show.

use crate::server::{Answer, Failure};
use crate::vfs::Document;
use crate::world::range_in;
use lsp_types::TextEdit;
use sflow_compiler::span::Span;

/// The edits that format `doc` (none when it is already formatted).
pub fn format(doc: &Document) -> Answer<Option<Vec<TextEdit>>> {
    let formatted = sflow_compiler::format::format(&doc.text)
        .map_err(|e| Failure::Refused(format!("cannot format: {e}")))?;
    if formatted == doc.text {
        return Ok(Some(Vec::new()));
    }
    // Replace only the lines that differ, so the editor keeps the cursor and folds elsewhere.
    let old: Vec<&str> = doc.text.split_inclusive('\n').collect();
    let new: Vec<&str> = formatted.split_inclusive('\n').collect();
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let suffix = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take_while(|(a, b)| a == b)
        .count()
        .min(old.len().min(new.len()) - prefix);
    let start: usize = old.iter().take(prefix).map(|l| l.len()).sum();
    let end: usize = doc.text.len()
        - old
            .iter()
            .rev()
            .take(suffix)
            .map(|l| l.len())
            .sum::<usize>();
    let replacement: String = new.get(prefix..new.len() - suffix).unwrap_or(&[]).concat();
    let range = range_in(&doc.lines, &doc.text, Span::new(start, end));
    Ok(Some(vec![TextEdit {
        range,
        new_text: replacement,
    }]))
}
