//! `sflowc check --format json`: one JSON array on stdout, positions 1-based with columns in
//! characters and an exclusive end. Snapshots (insta) for a few golden cases, and positions
//! checked by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases")
}

fn check_json(dir: &Path, files: &[&str]) -> (Output, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sflowc"))
        .arg("check")
        .args(files)
        .args(["--format", "json"])
        .current_dir(dir)
        .output()
        .expect("sflowc runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

fn parse(stdout: &str) -> Vec<Value> {
    match serde_json::from_str(stdout) {
        Ok(Value::Array(items)) => items,
        other => panic!("stdout is not one JSON array: {other:?}\n{stdout}"),
    }
}

/// The JSON of one golden case, run from its directory.
fn case_json(name: &str) -> String {
    let (output, stdout) = check_json(&cases().join(name), &["main.sflow"]);
    assert!(
        output.stderr.is_empty(),
        "json mode writes nothing to stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    parse(&stdout);
    stdout
}

#[test]
fn snapshot_unknown_step() {
    insta::assert_snapshot!(case_json("e0101-unknown-step"));
}

#[test]
fn snapshot_labels_in_another_file() {
    insta::assert_snapshot!(case_json("e0102-duplicate-across-files"));
}

#[test]
fn snapshot_warning() {
    insta::assert_snapshot!(case_json("w0003-unused-import"));
}

#[test]
fn clean_program_is_an_empty_array() {
    let (output, stdout) = check_json(&cases().join("ok-minimal"), &["main.sflow"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(parse(&stdout), Vec::<Value>::new());
}

#[test]
fn unknown_step_position_by_hand() {
    // Line 15 of the case is `    input  model: Model = fitt.model`; `fitt` is columns 27 to 30.
    let (output, stdout) = check_json(&cases().join("e0101-unknown-step"), &["main.sflow"]);
    assert_eq!(output.status.code(), Some(1));
    let items = parse(&stdout);
    let d = items
        .iter()
        .find(|d| d["code"] == "E0101")
        .expect("an E0101");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["file"], "main.sflow");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(15), Some(27)),
        "{d}"
    );
    assert_eq!(
        (d["end_line"].as_u64(), d["end_column"].as_u64()),
        (Some(15), Some(31)),
        "{d}"
    );
    assert!(d["help"].as_str().is_some_and(|h| h.contains("fit")), "{d}");
}

#[test]
fn several_files_make_one_array_with_columns_in_characters() {
    let dir = std::env::temp_dir().join(format!("sflowc-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // `é` and `…` are multi-byte: columns count characters, not bytes.
    let text = "app demo {\n  namespace = \"demo\"\n}\n\nworkflow hello {\n  step greet {\n    image = \"busybox:1.36\"\n    run   = \"echo café… {{inputs.nope}}\"\n  }\n}\n";
    std::fs::write(dir.join("a.sflow"), text).unwrap();
    std::fs::write(dir.join("b.sflow"), "workflow lonely {}\n").unwrap();
    let (output, stdout) = check_json(&dir, &["a.sflow", "b.sflow"]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(output.status.code(), Some(1));
    let items = parse(&stdout);
    assert!(items.iter().any(|d| d["file"] == "a.sflow"), "{stdout}");
    assert!(
        items
            .iter()
            .any(|d| d["file"] == "b.sflow" && d["code"] == "E0105"),
        "{stdout}"
    );
    let template = items
        .iter()
        .find(|d| d["code"] == "E0501")
        .expect("an E0501");
    // Line 8 is `    run   = "echo café… {{inputs.nope}}"`: counted in characters, `nope` is
    // columns 34 to 37 (in bytes it would start at 37, as `é` and `…` take 2 and 3 bytes).
    let at = |key: &str| template[key].as_u64();
    assert_eq!(
        (at("line"), at("column"), at("end_line"), at("end_column")),
        (Some(8), Some(34), Some(8), Some(38)),
        "{template}"
    );
}

#[test]
fn every_case_gives_one_well_formed_array() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cases())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("main.sflow").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let (output, stdout) = check_json(&dir, &["main.sflow"]);
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            matches!(output.status.code(), Some(0 | 1)),
            "{name}: {output:?}"
        );
        for d in parse(&stdout) {
            let n = |key: &str| d[key].as_u64().unwrap_or(0);
            assert!(n("line") >= 1 && n("column") >= 1, "{name}: {d}");
            assert!(
                (n("end_line"), n("end_column")) >= (n("line"), n("column")),
                "{name}: {d}"
            );
            assert!(
                d["code"].as_str().is_some_and(|c| c.len() == 5),
                "{name}: {d}"
            );
            assert!(
                matches!(d["severity"].as_str(), Some("error" | "warning")),
                "{name}: {d}"
            );
            assert!(
                d["labels"].as_array().is_some_and(|l| !l.is_empty()),
                "{name}: {d}"
            );
        }
    }
}
