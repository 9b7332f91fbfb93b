//! The incremental parser gives exactly what a full parse gives: programs (the examples, the
//! golden cases, the standard library, generated workflows with doc comments) are edited at
//! random, a few edits in a row through one `ParseCache`, and after each edit the incremental
//! parse must equal `parse` of the same text: tree, spans, comments and diagnostics.

use proptest::prelude::*;
use sflow_compiler::span::FileId;
use sflow_compiler::syntax::{parse, ParseCache};

/// A workflow of `n` steps with doc comments, comments and params between the steps.
fn documented_workflow(n: usize) -> String {
    let mut text = String::from("/// The app.\napp a { namespace = \"a\" }\n\n/// The flow.\nworkflow w {\n  /// How deep.\n  param depth: int = 3 in 1..10\n");
    for i in 0..n {
        text.push_str(&format!(
            "  /// Step {i}.\n  // not a doc\n  /// Really step {i}.\n  step s{i} {{\n    image = \"python:3.12\"\n    run = \"python x.py --depth {{{{depth}}}}\" /* c */\n"
        ));
        if i > 0 {
            text.push_str(&format!("    input data: Dataset = s{}.out\n", (i - 1) / 2));
        }
        text.push_str("    output out: Dataset\n    resources { cpu = 500m, memory = 1Gi }\n    retry 2 backoff 10s\n  }\n");
        if i % 7 == 3 {
            text.push_str(&format!("  param p{i}: float = 0.5\n"));
        }
    }
    text.push_str("}\n\npolicy p { when a.b > 1 then c.d() }\n");
    text
}

/// Every program of the corpus.
fn corpus() -> Vec<String> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mut texts = vec![documented_workflow(40), documented_workflow(3)];
    for module in sflow_compiler::stdlib::MODULES {
        texts.push(module.text.to_string());
    }
    texts.push(sflow_compiler::stdlib::PRELUDE.text.to_string());
    for dir in ["examples", "tests/cases"] {
        let Ok(entries) = std::fs::read_dir(format!("{root}/{dir}")) else {
            continue;
        };
        let mut dirs: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        dirs.sort();
        for d in dirs {
            let Ok(files) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut files: Vec<_> = files.filter_map(Result::ok).map(|e| e.path()).collect();
            files.sort();
            for f in files {
                if f.extension().is_some_and(|e| e == "sflow") {
                    if let Ok(text) = std::fs::read_to_string(&f) {
                        texts.push(text);
                    }
                }
            }
        }
    }
    texts
}

/// What an edit inserts: tokens that start and end declarations, members, strings, comments.
const INSERTS: &[&str] = &[
    "",
    "x",
    "1",
    "4",
    " ",
    "\n",
    "{",
    "}",
    "(",
    ")",
    "[",
    "\"",
    "=",
    ".",
    ",",
    ";",
    "step",
    "param",
    "workflow",
    "app",
    "/// doc\n",
    "// c\n",
    "/*",
    "*/",
    "step t { image = \"x\" }\n",
    "\n  step z {\n",
    "é",
    "\\",
    "{{",
    "}}",
    "retry 3",
    "input a: T = b.c\n",
];

/// One edit: replace `len` bytes at `at` (a fraction of the text) by an insert.
type Edit = (f64, usize, usize);

fn apply(text: &str, (at, len, insert): Edit) -> String {
    let mut start = ((text.len() as f64) * at) as usize;
    while start > 0 && !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + len).min(text.len());
    while end < text.len() && !text.is_char_boundary(end) {
        end += 1;
    }
    format!("{}{}{}", &text[..start], INSERTS[insert], &text[end..])
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec((0.0..1.0f64, 0..12usize, 0..INSERTS.len()), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn incremental_parse_equals_full_parse(which in any::<prop::sample::Index>(), edits in edits()) {
        let texts = corpus();
        let mut text = texts[which.index(texts.len())].clone();
        let mut cache = ParseCache::new();
        prop_assert_eq!(cache.parse(FileId(3), &text), parse(FileId(3), &text));
        for edit in edits {
            text = apply(&text, edit);
            let incremental = cache.parse(FileId(3), &text);
            prop_assert_eq!(incremental, parse(FileId(3), &text), "after editing to:\n{}", text);
        }
    }
}

#[test]
fn a_one_character_edit_in_a_big_workflow_equals_a_full_parse() {
    let mut text = documented_workflow(300);
    let mut cache = ParseCache::new();
    assert_eq!(cache.parse(FileId(0), &text), parse(FileId(0), &text));
    // Same length, longer, shorter, broken, repaired, and a change of file id.
    let at = text.find("s150 {").unwrap_or(0);
    for (edit, file) in [
        ("s15X {", 0),
        ("s15XY {", 0),
        ("s1 {", 0),
        ("s1 ", 0),
        ("s1 {", 0),
        ("s1 {", 1),
    ] {
        text.replace_range(at..at + text[at..].find('{').map_or(0, |e| e + 1), edit);
        assert_eq!(
            cache.parse(FileId(file), &text),
            parse(FileId(file), &text),
            "{edit}"
        );
    }
}
