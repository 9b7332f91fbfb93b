//! `sflowc fmt`: rewriting, `--check`, folders, standard input, refusing broken files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn sflowc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sflowc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("sflowc runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sflowc-fmt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const MESSY: &str = "app demo { namespace=\"demo\" }\nworkflow w {\nstep s { image = \"busybox:1.36\"\n run = \"echo hi\" } }\n";
const TIDY: &str = "app demo {\n  namespace = \"demo\"\n}\nworkflow w {\n  step s {\n    image = \"busybox:1.36\"\n    run   = \"echo hi\"\n  }\n}\n";

#[test]
fn fmt_rewrites_a_file_and_a_second_run_changes_nothing() {
    let dir = scratch("rewrite");
    std::fs::write(dir.join("main.sflow"), MESSY).unwrap();
    let out = sflowc(&dir, &["fmt", "main.sflow"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.join("main.sflow")).unwrap(),
        TIDY
    );
    assert!(text(&out.stderr).contains("formatted main.sflow"));
    let again = sflowc(&dir, &["fmt", "--check", "main.sflow"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert!(again.stderr.is_empty());
}

#[test]
fn check_exits_1_and_names_the_files_that_would_change_without_touching_them() {
    let dir = scratch("check");
    std::fs::write(dir.join("a.sflow"), MESSY).unwrap();
    std::fs::write(dir.join("b.sflow"), TIDY).unwrap();
    let out = sflowc(&dir, &["fmt", "--check", "a.sflow", "b.sflow"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("would reformat a.sflow (from line 1)"),
        "{stderr}"
    );
    assert!(!stderr.contains("b.sflow"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.join("a.sflow")).unwrap(), MESSY);
}

#[test]
fn a_folder_means_every_sflow_file_under_it() {
    let dir = scratch("folder");
    std::fs::create_dir_all(dir.join("app/lib")).unwrap();
    std::fs::write(dir.join("app/main.sflow"), MESSY).unwrap();
    std::fs::write(dir.join("app/lib/common.sflow"), "type   Score=ratio\n").unwrap();
    std::fs::write(dir.join("app/notes.txt"), "not sflow {").unwrap();
    let out = sflowc(&dir, &["fmt", "app"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.join("app/lib/common.sflow")).unwrap(),
        "type Score = ratio\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("app/notes.txt")).unwrap(),
        "not sflow {"
    );
}

#[test]
fn a_file_with_syntax_errors_is_refused_with_the_reason_and_left_alone() {
    let dir = scratch("broken");
    let broken = "app demo {\n  namespace = \n}\n";
    std::fs::write(dir.join("main.sflow"), broken).unwrap();
    let out = sflowc(&dir, &["fmt", "main.sflow"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error: cannot format `main.sflow`: the file does not parse (2:14: expected an expression"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.join("main.sflow")).unwrap(),
        broken
    );
}

#[test]
fn stdin_is_formatted_to_stdout() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sflowc"))
        .args(["fmt", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(MESSY.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), TIDY);
}

#[test]
fn unreadable_files_exit_2() {
    let dir = scratch("missing");
    let out = sflowc(&dir, &["fmt", "missing.sflow"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read `missing.sflow`"));
}

#[test]
fn the_examples_are_formatted() {
    // The north-star program is a fixed point except for its trigger arrows (see
    // docs/language.md, "Formatting"); the standard library, the minimal case and the
    // sentiment example exactly.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = sflowc(
        &root,
        &[
            "fmt",
            "--check",
            "stdlib",
            "tests/cases/ok-minimal",
            "examples/sentiment",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
