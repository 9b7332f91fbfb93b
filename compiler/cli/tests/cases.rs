//! Golden cases: `tests/cases/<name>/main.sflow` (plus any files it imports) and `expected.txt`,
//! exactly what `sflowc check main.sflow` writes to stderr (no colour, ASCII, width 100),
//! followed by a line `exit: N`.
//!
//! Run with `SFLOW_BLESS=1` to rewrite every `expected.txt` from the actual output; then review
//! the diff before committing it.
//!
//! Besides the golden comparison, a case's name states what it must show: `e0101-…` must report
//! E0101 and exit 1, `w0003-…` must report W0003 and exit 0, `ok-…` must have no errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sflow_compiler::diagnostics::Code;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases")
}

/// Every case directory, sorted by name.
fn cases() -> Vec<(String, PathBuf)> {
    let mut cases: Vec<(String, PathBuf)> = std::fs::read_dir(cases_dir())
        .expect("tests/cases exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .map(|path| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                path,
            )
        })
        .collect();
    cases.sort();
    cases
}

/// What `sflowc check main.sflow` prints on stderr in `dir`, then `exit: N`.
fn run_check(dir: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sflowc"))
        .args(["check", "main.sflow"])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("sflowc runs");
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    let code = output
        .status
        .code()
        .map_or_else(|| "signal".to_owned(), |c| c.to_string());
    writeln!(text, "exit: {code}").unwrap();
    text
}

/// A unified diff of `expected` and `actual`, as a reviewer reads one.
fn diff(expected: &str, actual: &str) -> String {
    similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}

/// The rule a case's name implies, if it is broken by `output`.
fn name_rule_broken(name: &str, output: &str) -> Option<String> {
    let prefix = name.split('-').next().unwrap_or("");
    if prefix == "ok" {
        // Warnings are allowed (the north star imports `evaluate` without using it); the golden
        // output shows them for review.
        let clean = !output.contains("error[") && output.ends_with("exit: 0\n");
        return (!clean).then(|| "an `ok-` case must check without errors".to_owned());
    }
    let code = Code::parse(prefix)?;
    let (tag, exit) = if code.as_str().starts_with('E') {
        (format!("error[{code}]"), "exit: 1\n")
    } else {
        (format!("warning[{code}]"), "exit: 0\n")
    };
    if !output.contains(&tag) {
        return Some(format!(
            "the case is named after {code}, but the output has no `{tag}`"
        ));
    }
    if !output.ends_with(exit) {
        return Some(format!("a {code} case must end with `{}`", exit.trim_end()));
    }
    None
}

#[test]
fn golden_cases() {
    let bless = std::env::var_os("SFLOW_BLESS").is_some_and(|v| v == "1");
    let mut failures = String::new();
    let mut blessed = 0;
    for (name, dir) in cases() {
        if !dir.join("main.sflow").is_file() {
            writeln!(failures, "--- {name}: no main.sflow").unwrap();
            continue;
        }
        let actual = run_check(&dir);
        let expected_path = dir.join("expected.txt");
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if bless && expected != actual {
            std::fs::write(&expected_path, &actual).unwrap();
            blessed += 1;
        }
        let broken = name_rule_broken(&name, &actual);
        if !bless && expected.is_empty() {
            writeln!(
                failures,
                "--- {name}: no expected.txt (run with SFLOW_BLESS=1); actual:\n{actual}"
            )
            .unwrap();
        } else if !bless && expected != actual {
            writeln!(
                failures,
                "--- {name}: output changed\n{}",
                diff(&expected, &actual)
            )
            .unwrap();
        } else if broken.is_some() {
            writeln!(failures, "--- {name}: actual:\n{actual}").unwrap();
        }
        if let Some(broken) = broken {
            writeln!(failures, "--- {name}: {broken}\n").unwrap();
        }
    }
    if bless && blessed > 0 {
        eprintln!("blessed {blessed} case(s); review `git diff tests/cases` before committing");
    }
    assert!(failures.is_empty(), "golden cases failed:\n\n{failures}");
}

#[test]
fn every_code_has_a_case() {
    let names: Vec<String> = cases().into_iter().map(|(name, _)| name).collect();
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|code| {
            !names
                .iter()
                .any(|n| n.starts_with(&format!("{}-", code.to_ascii_lowercase())))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "no case in tests/cases for: {}",
        missing.join(", ")
    );
}

#[test]
fn diffs_show_expected_and_actual() {
    let text = diff("a\nb\n", "a\nc\n");
    assert!(
        text.contains("--- expected") && text.contains("+++ actual"),
        "{text}"
    );
    assert!(text.contains("-b") && text.contains("+c"), "{text}");
}
