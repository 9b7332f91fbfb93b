//! Properties of the formatter over every `.sflow` file of the repository (examples, test
//! cases, the standard library) and over small layouts:
//! - every file that parses formats, and formatting is idempotent;
//! - formatting never changes the program: same syntax tree (spans aside), same comments,
//!   the same diagnostics (codes and messages) from a full analysis of each program, and the
//!   same plan (source positions aside) for each program that lowers;
//! - the north-star example is a fixed point except for the documented trigger-arrow rule.

#![allow(clippy::unwrap_used)]

use sflow_compiler::analysis::analyze;
use sflow_compiler::format::{format, shape, FormatError};
use sflow_compiler::sources::MemoryFiles;
use sflow_compiler::span::FileId;
use sflow_compiler::syntax::parse;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sflow_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sflow_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "sflow") {
            out.push(path);
        }
    }
}

fn corpus() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["examples", "tests/cases", "stdlib"] {
        sflow_files(&repo().join(dir), &mut files);
    }
    assert!(
        files.len() > 50,
        "expected the examples and test cases, found {}",
        files.len()
    );
    files
}

fn parses_cleanly(text: &str) -> bool {
    !parse(FileId(0), text)
        .diagnostics
        .iter()
        .any(|d| d.code == sflow_compiler::diagnostics::Code::E0001)
}

#[test]
fn every_file_that_parses_formats_idempotently_with_the_same_tree_and_comments() {
    let mut formatted = 0;
    for path in corpus() {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.display();
        match format(&text) {
            Ok(once) => {
                formatted += 1;
                let twice = format(&once)
                    .unwrap_or_else(|e| panic!("{name}: formatted output does not format: {e}"));
                assert_eq!(once, twice, "{name}: formatting is not idempotent");
                let (before, after) = (parse(FileId(0), &text), parse(FileId(0), &once));
                assert_eq!(
                    shape(&before.file),
                    shape(&after.file),
                    "{name}: the tree changed"
                );
                let comments = |p: &sflow_compiler::syntax::Parse| {
                    p.comments
                        .iter()
                        .map(|c| c.text.trim_end().to_string())
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    comments(&before),
                    comments(&after),
                    "{name}: comments changed"
                );
                assert!(
                    once.ends_with('\n') || once.is_empty(),
                    "{name}: no final line break"
                );
                assert!(
                    !once.lines().any(|l| l.ends_with(' ')),
                    "{name}: trailing spaces"
                );
            }
            Err(FormatError::Syntax { .. }) => {
                assert!(!parses_cleanly(&text), "{name}: refused although it parses");
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    assert!(formatted > 50, "only {formatted} files formatted");
}

/// Analyzes every program (each test case folder and example is one program rooted at
/// `main.sflow` or its only file) before and after formatting all of its files, and compares
/// the diagnostics: codes, messages and the text they point at.
#[test]
fn formatting_never_changes_what_the_checker_says() {
    let mut dirs: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for path in corpus() {
        if path.starts_with(repo().join("stdlib")) {
            continue;
        }
        dirs.entry(path.parent().unwrap().to_path_buf())
            .or_default()
            .push(path);
    }
    let mut programs = 0;
    let mut plans = 0;
    for (dir, files) in dirs {
        let root = files
            .iter()
            .find(|f| f.ends_with("main.sflow"))
            .or(files.first())
            .unwrap()
            .clone();
        let mut original = MemoryFiles::default();
        let mut formatted = MemoryFiles::default();
        let mut all_format = true;
        for file in &files {
            let key = file
                .strip_prefix(&dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(file).unwrap();
            let pretty = format(&text);
            all_format &= pretty.is_ok();
            formatted
                .files
                .insert(key.clone(), pretty.unwrap_or_else(|_| text.clone()));
            original.files.insert(key, text);
        }
        if !all_format {
            continue;
        }
        programs += 1;
        let root_key = root
            .strip_prefix(&dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let summarize = |files: &MemoryFiles| {
            let a = analyze(&root_key, &files.files[&root_key], files);
            a.diagnostics
                .iter()
                .map(|d| {
                    (
                        d.code,
                        d.message.clone(),
                        a.sources
                            .get(d.primary.at.file)
                            .slice(d.primary.at.span)
                            .to_string(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            summarize(&original),
            summarize(&formatted),
            "{}: diagnostics changed",
            dir.display()
        );
        // The plan (what the runtime executes) is the same, source positions aside.
        let plan = |files: &MemoryFiles| {
            let a = analyze(&root_key, &files.files[&root_key], files);
            sflow_compiler::lower::lower(&a).ok().map(|p| {
                let mut v = serde_json::to_value(p).unwrap();
                erase_source_refs(&mut v);
                v
            })
        };
        let (before, after) = (plan(&original), plan(&formatted));
        if before.is_some() {
            plans += 1;
        }
        assert_eq!(before, after, "{}: the plan changed", dir.display());
    }
    assert!(programs > 40, "only {programs} programs compared");
    assert!(plans > 5, "only {plans} plans compared");
}

/// Removes the source positions (`{ file, line, column }` objects) from a plan.
fn erase_source_refs(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.retain(|_, x| {
                !(x.is_object() && x.get("line").is_some() && x.get("column").is_some())
            });
            map.values_mut().for_each(erase_source_refs);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(erase_source_refs),
        _ => {}
    }
}

#[test]
fn the_north_star_is_a_fixed_point_but_for_the_trigger_arrows() {
    let text = std::fs::read_to_string(repo().join("examples/mnist/mnist.sflow")).unwrap();
    let once = format(&text).unwrap();
    let changed: Vec<(&str, &str)> = text
        .lines()
        .zip(once.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(text.lines().count(), once.lines().count());
    // The spec's example pads the trigger sources to a wider column than the longest one
    // needs; the formatter puts the arrows one space after the longest source.
    assert_eq!(
        changed,
        vec![
            (
                "trigger nightly:  schedule \"0 2 * * *\"              -> run training",
                "trigger nightly:  schedule \"0 2 * * *\"           -> run training",
            ),
            (
                "trigger new_data: every 1000 tracker.new_samples    -> checker.check(tracker.batch)",
                "trigger new_data: every 1000 tracker.new_samples -> checker.check(tracker.batch)",
            ),
        ]
    );
}

#[test]
fn the_fraud_example_and_the_stdlib_are_fixed_points() {
    for file in [
        "examples/fraud/main.sflow",
        "examples/fraud/common.sflow",
        "stdlib/prelude.sflow",
        "stdlib/torch.sflow",
        "stdlib/data.sflow",
        "stdlib/detectors.sflow",
        "stdlib/labels.sflow",
    ] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        if !parses_cleanly(&text) {
            // Reported by the corpus test's count; a file that does not parse has no layout.
            eprintln!("skipped {file}: it does not parse");
            assert!(!file.starts_with("stdlib"), "{file} does not parse");
            continue;
        }
        let once = format(&text).unwrap();
        similar_asserts(file, &text, &once);
    }
}

fn similar_asserts(name: &str, expected: &str, got: &str) {
    if expected != got {
        let diff: Vec<String> = expected
            .lines()
            .zip(got.lines())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("- {a}\n+ {b}"))
            .take(10)
            .collect();
        panic!("{name} is not a fixed point:\n{}", diff.join("\n"));
    }
}

/// Layouts the rules promise, input → output.
#[test]
fn layout_rules() {
    let cases: &[(&str, &str)] = &[
        // Params align `NAME:` and TYPE within a run; a comment ends the run.
        (
            "workflow w { param a: int = 1\nparam long_name: float = 2.0 in 1.0..3.0\n/// doc\nparam b: string = \"x\" }",
            "workflow w {\n  param a:         int   = 1\n  param long_name: float = 2.0 in 1.0..3.0\n  /// doc\n  param b: string = \"x\"\n}\n",
        ),
        // Agents and triggers align; a blank line ends the run.
        (
            "agent t: Tracker { watch = p }\nagent longer: Checker { detector = d }\n\nagent x: Planner\ntrigger a: schedule \"* * * * *\" -> run w\ntrigger bb: on w.failed -> run w",
            "agent t:      Tracker { watch = p }\nagent longer: Checker { detector = d }\n\nagent x: Planner\ntrigger a:  schedule \"* * * * *\" -> run w\ntrigger bb: on w.failed          -> run w\n",
        ),
        // A record opened with a line break stays expanded, with aligned fields.
        (
            "agent i: Improver {\nretrain = t, labels = oracle(d) }",
            "agent i: Improver {\n  retrain = t\n  labels  = oracle(d)\n}\n",
        ),
        // Call arguments opened with a line break: one per line with a trailing comma.
        (
            "service s { model = f(\na, b = 1) }",
            "service s {\n  model = f(\n    a,\n    b = 1,\n  )\n}\n",
        ),
        // Broken `then` lists and `when` chains keep one item per line.
        (
            "policy p {\nwhen a.x > 1\n&& b.y < 2\nthen c.d(), \ne.f()\n}",
            "policy p {\n  when a.x > 1\n       and b.y < 2\n  then c.d(),\n       e.f()\n}\n",
        ),
        // Sugar and separators.
        (
            "workflow w { step s { uses = f(); timeout = 5m; retry = 2, resources = { cpu = 1 } } }",
            "workflow w {\n  step s {\n    uses = f()\n    timeout 5m\n    retry 2\n    resources { cpu = 1 }\n  }\n}\n",
        ),
        // Use lists, type aliases, extern declarations, agent kinds.
        (
            "use std.torch.{ a,b }\ntype  S=list< ratio >\nagent kind K { config c: int = 1\nsensor s: S\naction go(n: int, m: string = \"x\") -> run w with { n = n } }",
            "use std.torch.{a, b}\ntype S = list<ratio>\nagent kind K {\n  config c: int = 1\n  sensor s: S\n  action go(n: int, m: string = \"x\") -> run w with { n = n }\n}\n",
        ),
        // Unary operators, parentheses, ranges, lists.
        (
            "policy p { when (a.b+1)*2 >= -c.d then x.y(+1, [1,2], 1..8) }",
            "policy p {\n  when (a.b + 1) * 2 >= -c.d\n  then x.y(+1, [1, 2], 1..8)\n}\n",
        ),
        // Clauses keep their order, and their trailing comments.
        (
            "policy p {\n  when a.b\n  then c.d()\n  max 1 per 1d // per day\n  cooldown 5m /* rest */\n}\n",
            "policy p {\n  when a.b\n  then c.d()\n  max 1 per 1d // per day\n  cooldown 5m /* rest */\n}\n",
        ),
        // A doc comment a separator detaches from a member stays detached.
        (
            "workflow w { /// not the param's\n, param p: int }",
            "workflow w { /// not the param's\n  ;\n  param p: int\n}\n",
        ),
        // A comment inside a list expands it.
        (
            "workflow w { step s { after = [a, // first\nb] } }",
            "workflow w {\n  step s {\n    after = [\n      a, // first\n      b,\n    ]\n  }\n}\n",
        ),
    ];
    for (input, expected) in cases {
        let got = format(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(&got, expected, "\ninput:\n{input}\ngot:\n{got}");
        assert_eq!(format(&got).unwrap(), got, "not idempotent: {input}");
    }
}

#[test]
fn broken_files_are_refused_with_the_reason() {
    let err = format("app a {\n  namespace = \n}\nworkflow {").unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("the file does not parse (2:14"),
        "{message}"
    );
    assert!(message.contains("more syntax error"), "{message}");
}

mod respacing {
    //! Property: re-spacing a file (indentation, trailing spaces, spaces around `=`, repeated
    //! blank lines) never changes what it formats to.

    use super::*;
    use proptest::prelude::*;

    fn respace(text: &str, choices: &[u8]) -> String {
        let mut pick = choices.iter().cycle().copied();
        let mut out = String::new();
        for line in text.lines() {
            let mut c = pick.next().unwrap_or(0);
            let body = line.trim_start();
            if body.is_empty() {
                // A blank line, sometimes repeated.
                out.push_str(if c % 3 == 0 { "\n\n" } else { "\n" });
                continue;
            }
            out.push_str(&" ".repeat((c % 7) as usize));
            c = pick.next().unwrap_or(0);
            let body = if !body.contains('"') && !body.starts_with("//") && !body.contains("//") {
                match c % 3 {
                    0 => body.replacen(" = ", "=", 1),
                    1 => body.replacen(" = ", "   =  ", 1),
                    _ => body.to_string(),
                }
            } else {
                body.to_string()
            };
            out.push_str(&body);
            out.push_str(&" ".repeat((pick.next().unwrap_or(0) % 3) as usize));
            out.push('\n');
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn respacing_does_not_change_the_formatted_text(choices in proptest::collection::vec(any::<u8>(), 1..64)) {
            for path in corpus() {
                let text = std::fs::read_to_string(&path).unwrap();
                if text.contains("/*") {
                    continue;
                }
                let Ok(expected) = format(&text) else { continue };
                let respaced = respace(&text, &choices);
                let got = format(&respaced);
                prop_assert_eq!(got.as_ref().ok(), Some(&expected), "{} respaced:\n{}", path.display(), respaced);
            }
        }
    }
}

mod edited {
    //! Property: on any edit of a real program, the formatter either refuses (syntax error)
    //! or returns text that formats to itself — never an internal error.

    use super::*;
    use proptest::prelude::*;

    const PIECES: &[&str] = &[
        "{", "}", "\"", ".", "(", ")", "/* c */", "// c\n", "\n", "\n\n", ",", ";", " ", "é", "x",
        "1", "[", "]", "-1", "and ", "not ", "# ",
    ];

    fn edit(text: &str, ops: &[(usize, usize, bool)]) -> String {
        let mut text = text.to_string();
        for &(at, piece, delete) in ops {
            let mut at = at % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            if delete {
                let mut end = (at + 1 + piece % 4).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                text.replace_range(at..end, "");
            } else {
                // Mostly between tokens (at a space or line break), sometimes anywhere.
                if piece % 5 != 0 {
                    if let Some(ws) = text[..at].rfind([' ', '\n']) {
                        at = ws;
                    }
                }
                text.insert_str(at, PIECES[piece % PIECES.len()]);
            }
        }
        text
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn edited_programs_format_idempotently_or_are_refused(
            ops in proptest::collection::vec((any::<usize>(), any::<usize>(), any::<bool>()), 1..6),
            which in 0usize..4,
        ) {
            let sources = [
                include_str!("../../../examples/mnist/mnist.sflow"),
                include_str!("../../../examples/fraud/common.sflow"),
                include_str!("../../../stdlib/prelude.sflow"),
                include_str!("../../../tests/cases/ok-templates-and-after/main.sflow"),
            ];
            let text = edit(sources[which], &ops);
            match format(&text) {
                Ok(out) => prop_assert_eq!(format(&out), Ok(out.clone()), "input:\n{}", text),
                Err(FormatError::Syntax { .. }) => {}
                Err(e) => prop_assert!(false, "{e}\ninput:\n{text}"),
            }
        }
    }
}

#[test]
fn a_separator_between_doc_comments_is_kept() {
    // Found by the edit property on the prelude: the `;` between the two doc comments meant
    // that only the second documents `resize`; dropping it merged them.
    let text = "agent kind Planner {\n  config target: Service\n  /// Gives each replica.\n;  /// requests and limits\n  action resize(service: Service)\n}\n";
    let once = format(text).expect("formats");
    assert!(once.contains("/// Gives each replica.\n  ;"), "{once}");
    assert_eq!(format(&once).expect("formats again"), once);
}
