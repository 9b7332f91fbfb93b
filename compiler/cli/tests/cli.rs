//! The command line itself: arguments, exit statuses, I/O errors, `explain`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn sflowc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sflowc"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("sflowc runs")
}

fn cases() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/cases")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn unreadable_file_is_named_with_the_reason_and_exits_2() {
    let out = sflowc(&cases(), &["check", "no-such-dir/missing.sflow"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .contains("error: cannot read `no-such-dir/missing.sflow`: no such file or directory"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn other_files_are_still_checked_after_an_unreadable_one() {
    let out = sflowc(
        &cases(),
        &["check", "missing.sflow", "ok-minimal/main.sflow"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot read `missing.sflow`"), "{stderr}");
    assert!(
        stderr.contains("ok: ok-minimal/main.sflow checked, no errors"),
        "{stderr}"
    );
}

#[test]
fn errors_exit_1_and_warnings_exit_0() {
    let out = sflowc(&cases(), &["check", "e0101-unknown-step/main.sflow"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = sflowc(&cases(), &["check", "w0003-unused-import/main.sflow"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn human_output_goes_to_stderr_only() {
    let out = sflowc(&cases(), &["check", "e0101-unknown-step/main.sflow"]);
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("error[E0101]"));
}

#[test]
fn usage_errors_exit_2() {
    let out = sflowc(&cases(), &["check"]);
    assert_eq!(out.status.code(), Some(2));
    let out = sflowc(
        &cases(),
        &["check", "--format", "xml", "ok-minimal/main.sflow"],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = sflowc(
        &cases(),
        &[
            "graph",
            "ok-minimal/main.sflow",
            "--workflow",
            "hello",
            "--wiring",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn explain_prints_the_page_of_a_code() {
    let out = sflowc(&cases(), &["explain", "e0101"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("E0101"), "{}", text(&out.stdout));
}

#[test]
fn explain_rejects_unknown_codes_with_the_shape_of_a_code() {
    let out = sflowc(&cases(), &["explain", "E9999"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`E9999` is not an sflow diagnostic code"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`E0101`") && stderr.contains("sflowc explain --list"),
        "{stderr}"
    );
}

#[test]
fn explain_list_names_every_code() {
    let out = sflowc(&cases(), &["explain", "--list"]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    for &code in sflow_compiler::diagnostics::Code::ALL {
        assert!(
            stdout.contains(&format!("{code}  {}", code.title())),
            "{code} missing from\n{stdout}"
        );
    }
}

#[test]
fn graph_draws_each_workflow_in_dot_and_mermaid() {
    let dir = cases().join("ok-templates-and-after");
    let out = sflowc(&dir, &["graph", "main.sflow"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let dot = text(&out.stdout);
    assert!(
        dot.starts_with("digraph \"pipeline\"") || dot.starts_with("digraph pipeline"),
        "{dot}"
    );
    assert!(
        dot.contains("\"extract\" -> \"load\"") || dot.contains("extract -> load"),
        "{dot}"
    );

    let out = sflowc(
        &dir,
        &[
            "graph",
            "main.sflow",
            "--format",
            "mermaid",
            "--workflow",
            "pipeline",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("flowchart LR"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn graph_draws_the_wiring() {
    let out = sflowc(
        &cases().join("ok-north-star"),
        &["graph", "main.sflow", "--wiring"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let dot = text(&out.stdout);
    for name in [
        "tracker",
        "checker",
        "improver",
        "planner",
        "retrain_on_drift",
        "predictor",
        "training",
    ] {
        assert!(dot.contains(name), "{name} missing from\n{dot}");
    }
    let out = sflowc(
        &cases().join("ok-north-star"),
        &["graph", "main.sflow", "--wiring", "--format", "mermaid"],
    );
    assert!(text(&out.stdout).contains("flowchart LR"));
}

#[test]
fn graph_of_an_unknown_workflow_lists_the_workflows() {
    let out = sflowc(
        &cases().join("ok-templates-and-after"),
        &["graph", "main.sflow", "--workflow", "pipelin"],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no workflow named `pipelin`") && stderr.contains("`pipeline`"),
        "{stderr}"
    );
}

#[test]
fn graph_of_a_program_with_errors_prints_the_diagnostics_and_exits_1() {
    let out = sflowc(
        &cases().join("e0401-cycle-two-steps"),
        &["graph", "main.sflow"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("error[E0401]"),
        "{}",
        text(&out.stderr)
    );
}
