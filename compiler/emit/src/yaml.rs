//! YAML in and out, through `serde_yaml_ng`.
//!
//! Why this crate (docs/kubernetes-manifests.md has the long form): `serde_yaml` is
//! unmaintained; `serde_yaml_ng` is its maintained fork with the same serializer, built on
//! libyaml's emitter, which quotes every scalar that would read back as something else —
//! including the YAML 1.1 spellings (`yes`, `on`, `0755`, `1e3`) that Python's PyYAML (used by
//! kubectl plugins, checkov and kubernetes-validate) still reads as booleans and numbers — and
//! writes multi-line strings as literal blocks. Its minimum Rust version fits the workspace's
//! (serde-saphyr, the other maintained option, needs a newer compiler than the workspace
//! promises).
//!
//! No text is ever spliced into YAML here: objects are serialized whole, and template output is
//! parsed back into values and serialized again.

use serde::Serialize;

/// Serializes one object as one YAML document (no `---`), ending with a newline.
pub fn to_yaml<T: Serialize>(value: &T) -> Result<String, String> {
    serde_yaml_ng::to_string(value).map_err(|e| e.to_string())
}

/// Parses a multi-document YAML stream into values; empty documents are dropped.
pub fn parse_documents(text: &str) -> Result<Vec<serde_yaml_ng::Value>, String> {
    let mut docs = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = serde_yaml_ng::Value::deserialize(document).map_err(|e| e.to_string())?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

use serde::Deserialize;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn ambiguous_scalars_are_quoted_and_read_back_as_strings() {
        let hostile = [
            "yes", "no", "on", "off", "y", "n", "true", "null", "~", "0755", "1e3", "0x1f", "1_000", ".inf", "-", "",
            "a: b", "- x", "---", "...", "{{x}}", "#c", "a\nb", "'", "\"", "@x", "`x", "%x", "*x", "&x", "!x", "|", ">",
            " lead", "trail ", "\t", "\u{85}", "\u{2028}", "é",
        ];
        for s in hostile {
            let map = BTreeMap::from([("k", s)]);
            let text = to_yaml(&map).expect("serializes");
            let back: BTreeMap<String, String> = serde_yaml_ng::from_str(&text).expect("parses");
            assert_eq!(back.get("k").map(String::as_str), Some(s), "{text}");
        }
    }

    #[test]
    fn documents_are_split_and_empty_ones_dropped() {
        let docs = parse_documents("---\na: 1\n---\n---\nb: 2\n").expect("parses");
        assert_eq!(docs.len(), 2);
        assert!(parse_documents("a: [").is_err());
    }
}
