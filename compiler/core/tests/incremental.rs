//! The incremental parser and the incremental analysis give exactly what a full parse and a
//! full analysis give: programs (the examples, the golden cases, the standard library,
//! generated workflows with doc comments) are edited at random, a few edits in a row through
//! one `ParseCache` (one `AnalysisCache`), and after each edit the incremental result must
//! equal the full one: tree, spans, comments and diagnostics; for the analysis also the
//! symbols and references, the type checker's facts, the workflow graphs and the plan.

use proptest::prelude::*;
use sflow_compiler::analysis::{analyze, analyze_incremental, Analysis, AnalysisCache};
use sflow_compiler::lower::lower;
use sflow_compiler::sources::MemoryFiles;
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
    corpus_with_files()
        .into_iter()
        .map(|(text, _)| text)
        .collect()
}

/// Every program of the corpus, each with the other files of its folder (its imports).
fn corpus_with_files() -> Vec<(String, MemoryFiles)> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let none = MemoryFiles::default;
    let mut texts = vec![
        (documented_workflow(40), none()),
        (documented_workflow(3), none()),
    ];
    for module in sflow_compiler::stdlib::MODULES {
        texts.push((module.text.to_string(), none()));
    }
    texts.push((sflow_compiler::stdlib::PRELUDE.text.to_string(), none()));
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
            let mut folder = MemoryFiles::default();
            let mut roots = Vec::new();
            for f in files {
                if f.extension().is_some_and(|e| e == "sflow") {
                    if let Ok(text) = std::fs::read_to_string(&f) {
                        let name = f.file_name().map(|n| n.to_string_lossy().to_string());
                        folder.files.insert(name.unwrap_or_default(), text.clone());
                        roots.push(text);
                    }
                }
            }
            for text in roots {
                texts.push((
                    text,
                    MemoryFiles {
                        files: folder.files.clone(),
                    },
                ));
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
    "Model",
    "Dataset",
    "int",
    "string",
    "s1",
    "depth",
    "{{depth}}",
    "{{inputs.data}}",
    "{{outputs.x}}",
    "out",
    "model",
    "after = [s0]\n",
    "output m: Model\n",
    "metric acc: ratio\n",
    "uses = train_classifier(epochs = 2)\n",
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

/// Whether two analyses of the same text are the same, in everything later stages and the
/// language server read.
fn same_analysis(incremental: &Analysis, full: &Analysis) -> Result<(), String> {
    let differ = |what: &str| Err(format!("the {what} differ"));
    if incremental.parses != full.parses {
        return differ("parses");
    }
    if incremental.diagnostics != full.diagnostics {
        return Err(format!(
            "the diagnostics differ:\nincremental {:#?}\nfull {:#?}",
            incremental.diagnostics, full.diagnostics
        ));
    }
    if incremental.symbols.defs != full.symbols.defs {
        return differ("declarations");
    }
    // The order of the references is not deterministic (the checker walks some hash maps),
    // even between two full analyses: they are compared as sets.
    let sorted = |a: &Analysis| {
        let mut refs = a.symbols.references.clone();
        refs.sort_by_key(|r| (r.at, r.def));
        refs
    };
    let (a, b) = (&sorted(incremental), &sorted(full));
    if a != b {
        let at = a.iter().zip(b).position(|(x, y)| x != y);
        return Err(format!(
            "the references differ ({} against {}): first at {at:?}: {:?} against {:?}",
            a.len(),
            b.len(),
            at.map(|i| a[i]),
            at.map(|i| b[i]),
        ));
    }
    if incremental.facts != full.facts {
        return Err(format!(
            "the facts differ:\nincremental {:?}\nfull {:?}",
            incremental.facts, full.facts
        ));
    }
    if format!("{:?}", incremental.workflows) != format!("{:?}", full.workflows) {
        return differ("workflow graphs");
    }
    if incremental.root != full.root
        || incremental.sources.files.len() != full.sources.files.len()
        || incremental
            .sources
            .files
            .iter()
            .zip(&full.sources.files)
            .any(|(a, b)| a.path != b.path || a.text != b.text || a.origin != b.origin)
    {
        return differ("sources");
    }
    if !full.has_errors() && lower(incremental).ok() != lower(full).ok() {
        return differ("plans");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn incremental_analysis_equals_full_analysis(which in any::<prop::sample::Index>(), edits in edits()) {
        let texts = corpus_with_files();
        let (text, files) = &texts[which.index(texts.len())];
        let mut text = text.clone();
        let mut cache = AnalysisCache::default();
        let first = analyze_incremental("main.sflow", &text, files, &mut cache);
        let full = analyze("main.sflow", &text, files);
        prop_assert_eq!(same_analysis(&first, &full), Ok(()));
        for edit in edits {
            text = apply(&text, edit);
            let incremental = analyze_incremental("main.sflow", &text, files, &mut cache);
            let full = analyze("main.sflow", &text, files);
            prop_assert_eq!(same_analysis(&incremental, &full), Ok(()), "after editing to:\n{}", text);
        }
    }
}

/// The language server bench's program: one workflow of `n` steps in a binary tree.
fn binary_tree_program(n: usize) -> String {
    let mut out = String::from("app bench {\n  namespace = \"bench\"\n  registry  = \"ghcr.io/acme\"\n}\n\nworkflow tree {\n  param depth: int   = 3\n  param rate:  float = 0.5\n\n");
    for i in 0..n {
        out.push_str(&format!(
            "  step s{i} {{\n    image = \"python:3.12-slim\"\n"
        ));
        if i == 0 {
            out.push_str(
                "    run   = \"python gen.py --depth {{depth}} --out {{outputs.data}}\"\n",
            );
        } else {
            out.push_str("    run   = \"python step.py --depth {{depth}} --in {{inputs.parent}} --out {{outputs.data}}\"\n");
            out.push_str(&format!(
                "    input  parent: Dataset = s{}.data\n",
                (i - 1) / 2
            ));
        }
        out.push_str("    output data: Dataset\n    resources { cpu = 500m, memory = 512Mi }\n    retry 2 backoff 10s\n  }\n");
    }
    out.push_str("}\n");
    out
}

/// Edits a user makes while typing, each checked against a full analysis, and how many of
/// the 60 steps' checks each must reuse (so the cache is known to be used, not bypassed).
#[test]
fn typical_edits_reuse_the_step_checks_and_equal_a_full_analysis() -> Result<(), String> {
    let files = MemoryFiles::default();
    let mut text = binary_tree_program(60);
    let mut cache = AnalysisCache::default();
    let first = analyze_incremental("main.sflow", &text, &files, &mut cache);
    same_analysis(&first, &analyze("main.sflow", &text, &files))?;
    assert_eq!(cache.checks().reused(), 0);
    assert_eq!(cache.checks().len(), 60);
    let replace = |text: &mut String, from: &str, to: &str| -> Result<(), String> {
        let at = text.find(from).ok_or(format!("no `{from}`"))?;
        text.replace_range(at..at + from.len(), to);
        Ok(())
    };
    // (what is replaced, by what, how many steps' checks are reused at least, at most)
    let edits: &[(&str, &str, usize, usize)] = &[
        // A param's default: no step reads it.
        ("int   = 3", "int   = 4", 60, 60),
        // Longer and shorter: every step moves.
        ("int   = 4", "int   = 42", 60, 60),
        ("int   = 42", "int   = 7", 60, 60),
        // Inside one step: only that one is checked again.
        ("cpu = 500m, memory = 512Mi }\n    retry 2 backoff 10s\n  }\n  step s7 ", "cpu = 0m, memory = 512Mi }\n    retry 2 backoff 10s\n  }\n  step s7 ", 59, 59),
        ("--depth {{depth}} --in {{inputs.parent}} --out {{outputs.data}}\"\n    input  parent: Dataset = s4.data", "--depth {{dpth}} --in {{inputs.parent}} --out {{outputs.data}}\"\n    input  parent: Dataset = s4.data", 59, 59),
        ("= s4.data", "= s4.date", 59, 59),
        ("= s4.date", "= s4.data", 59, 59),
        // A port's type: every step can see it.
        ("    output data: Dataset\n    resources { cpu = 0m", "    output data: Model\n    resources { cpu = 0m", 0, 0),
        ("    output data: Model\n    resources { cpu = 0m", "    output data: Dataset\n    resources { cpu = 0m", 0, 0),
        // A param's type and name, a step's name, the app.
        ("depth: int", "depth: string", 0, 0),
        ("depth: string", "dept: string", 0, 0),
        ("dept: string", "depth: int", 0, 0),
        ("step s30 ", "step s30x ", 0, 0),
        ("step s30x ", "step s30 ", 0, 0),
        ("namespace = \"bench\"", "namespace = \"Bench\"", 0, 0),
        // A new step before the others: ids and spans move.
        ("  step s0 ", "  step n { image = \"a:1\"\n run = \"x\" }\n  step s0 ", 0, 0),
        ("  step n { image = \"a:1\"\n run = \"x\" }\n", "", 0, 0),
        // A syntax error in one step, then repaired.
        ("retry 2 backoff 10s\n  }\n  step s12 ", "retry 2 backoff 10s\n  }\n  step s12 = ", 0, 60),
        ("step s12 = ", "step s12 ", 0, 60),
    ];
    for &(from, to, at_least, at_most) in edits {
        replace(&mut text, from, to)?;
        let incremental = analyze_incremental("main.sflow", &text, &files, &mut cache);
        same_analysis(&incremental, &analyze("main.sflow", &text, &files))
            .map_err(|e| format!("after `{from}` -> `{to}`: {e}"))?;
        let reused = cache.checks().reused();
        assert!(
            (at_least..=at_most).contains(&reused),
            "after `{from}` -> `{to}`: {reused} steps reused"
        );
    }
    Ok(())
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
