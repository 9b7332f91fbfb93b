//! End-to-end tests of the local executor: real programs, real commands (sh, python3), run
//! through the `sflow` binary, checked in the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::Value;

fn steps_of(run: &Value) -> Vec<(String, i64, String, String)> {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_string(),
                s["attempt"].as_i64().unwrap(),
                s["status"].as_str().unwrap().to_string(),
                s["error"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn final_status(run: &Value, step: &str) -> String {
    steps_of(run)
        .into_iter()
        .rfind(|s| s.0 == step)
        .map(|s| s.2)
        .unwrap_or_default()
}

#[test]
fn fan_out_fan_in_runs_branches_in_parallel_and_joins_their_outputs() {
    let p = Prog::new(
        r#"
app fan { namespace = "fan" }
workflow pipeline {
  param rows: int = 3
  step source {
    image = "python:3.12-slim"
    run = "python3 -c 'import sys; open(sys.argv[1], \"w\").write(\"\\n\".join(str(i) for i in range({{rows}})))' {{outputs.table}}"
    output table: File
  }
  step left {
    image = "python:3.12-slim"
    run = "date +%s.%N > {{outputs.part}}.start; sleep 0.5; wc -l < {{inputs.table}} > {{outputs.part}}; date +%s.%N >> {{outputs.part}}.start"
    input table: File = source.table
    output part: File
  }
  step middle {
    image = "python:3.12-slim"
    run = "date +%s.%N > {{outputs.part}}.start; sleep 0.5; echo middle > {{outputs.part}}; date +%s.%N >> {{outputs.part}}.start"
    input table: File = source.table
    output part: File
  }
  step right {
    image = "python:3.12-slim"
    run = "date +%s.%N > {{outputs.part}}.start; sleep 0.5; echo right > {{outputs.part}}; date +%s.%N >> {{outputs.part}}.start"
    input table: File = source.table
    output part: File
  }
  step join {
    image = "python:3.12-slim"
    run = "cat {{inputs.l}} {{inputs.m}} {{inputs.r}} > {{outputs.all}}; echo \"{\\\"parts\\\": 3}\" > $SFLOW_METRICS"
    input l: File = left.part
    input m: File = middle.part
    input r: File = right.part
    output all: File
    metric parts: int
  }
}
"#,
    );
    let started = std::time::Instant::now();
    let out = p.run(&[
        "--workflow",
        "pipeline",
        "--param",
        "rows=5",
        "-j",
        "3",
        "--no-api",
    ]);
    assert!(out.status.success());
    let run = p.read_json(&["runs", "show", "1"]);
    assert_eq!(run["status"], "succeeded");
    for s in ["source", "left", "middle", "right", "join"] {
        assert_eq!(final_status(&run, s), "succeeded", "{s}");
    }
    let all = run["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["step"] == "join")
        .unwrap();
    let text = std::fs::read_to_string(all["path"].as_str().unwrap()).unwrap();
    assert_eq!(
        text.split_whitespace().collect::<Vec<_>>(),
        vec!["4", "middle", "right"],
        "5 rows are 4 newlines"
    );
    // The three branches overlapped in time (3 processes at once).
    let mut spans = Vec::new();
    for s in ["left", "middle", "right"] {
        let a = run["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["step"] == s)
            .unwrap();
        let t = std::fs::read_to_string(format!("{}.start", a["path"].as_str().unwrap())).unwrap();
        let v: Vec<f64> = t.split_whitespace().map(|x| x.parse().unwrap()).collect();
        spans.push((v[0], v[1]));
    }
    let latest_start = spans.iter().map(|s| s.0).fold(f64::MIN, f64::max);
    let earliest_end = spans.iter().map(|s| s.1).fold(f64::MAX, f64::min);
    assert!(
        latest_start < earliest_end,
        "branches ran one after another: {spans:?}"
    );
    assert!(started.elapsed().as_secs_f64() < 5.0);
    let metric = &run["metrics"].as_array().unwrap()[0];
    assert_eq!(
        (metric["name"].as_str(), metric["value"].as_i64()),
        (Some("parts"), Some(3))
    );
    // Params reached the step as SFLOW_PARAM_* and templates.
    assert_eq!(run["params"][0]["value"], "5");
}

#[test]
fn retries_back_off_and_the_third_attempt_succeeds() {
    let p = Prog::new(
        r#"
app retries { namespace = "retries" }
workflow flaky {
  step wobble {
    image = "python:3.12-slim"
    run = "date +%s.%N >> attempts.txt; n=$(wc -l < attempts.txt); echo attempt $n $SFLOW_ATTEMPT; test $n -ge 3"
    retry 3 backoff 200ms
  }
}
"#,
    );
    let out = p.run(&["--workflow", "flaky", "--no-api"]);
    assert!(out.status.success());
    let run = p.read_json(&["runs", "show", "1"]);
    let steps = steps_of(&run);
    assert_eq!(
        steps
            .iter()
            .map(|s| (s.1, s.2.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "failed"), (2, "failed"), (3, "succeeded")]
    );
    assert!(
        steps[0].3.contains("exited with status 1"),
        "{}",
        steps[0].3
    );
    let times: Vec<f64> = p
        .read("attempts.txt")
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    let (gap1, gap2) = (times[1] - times[0], times[2] - times[1]);
    assert!(gap1 >= 0.2, "first retry waits the backoff: {gap1}");
    assert!(gap2 >= 0.4, "the wait doubles: {gap2}");
    // Each attempt kept its own logs.
    let log = std::fs::read_to_string(run["steps"][2]["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(log.trim(), "attempt 3 3");
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let p = Prog::new(
        r#"
app slow { namespace = "slow" }
workflow slow {
  step hang {
    image = "python:3.12-slim"
    run = "sleep 60 & echo $! > bg.pid; sleep 60"
    timeout 1s
  }
}
"#,
    );
    let t = std::time::Instant::now();
    let out = p.run(&["--workflow", "slow", "--no-api"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(t.elapsed().as_secs() < 20, "the timeout stopped the step");
    let run = p.read_json(&["runs", "show", "1"]);
    let steps = steps_of(&run);
    assert_eq!(steps[0].2, "failed");
    assert!(steps[0].3.contains("timed out after 1s"), "{}", steps[0].3);
    let bg: u32 = p.read("bg.pid").trim().parse().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let alive = std::fs::read_to_string(format!("/proc/{bg}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false);
    assert!(
        !alive,
        "the background process {bg} of the step survived the timeout"
    );
    assert!(run["error"]
        .as_str()
        .unwrap()
        .contains("step `hang` failed"));
}

#[test]
fn cached_steps_are_reused_until_command_params_or_inputs_change() {
    let p = Prog::new(
        r#"
app caching { namespace = "caching" }
workflow features {
  param scale: int = 2
  step load {
    image = "python:3.12-slim"
    run = "cat data.txt > {{outputs.raw}}"
    output raw: File
  }
  step expensive {
    image = "python:3.12-slim"
    run = "echo run >> executions.txt; expr $(cat {{inputs.raw}}) \\* {{scale}} > {{outputs.scaled}}; echo '{\"rows\": 7}' > $SFLOW_METRICS"
    input raw: File = load.raw
    output scaled: File
    metric rows: int
    cache = true
  }
  step consume {
    image = "python:3.12-slim"
    run = "cat {{inputs.scaled}} > {{outputs.copy}}"
    input scaled: File = expensive.scaled
    output copy: File
  }
}
"#,
    );
    p.write("data.txt", "21");
    assert!(p
        .run(&["--workflow", "features", "--no-api"])
        .status
        .success());
    assert!(p
        .run(&["--workflow", "features", "--no-api"])
        .status
        .success());
    assert_eq!(
        lines(&p.path("executions.txt")),
        1,
        "the second run reused the cached result"
    );
    let second = p.read_json(&["runs", "show", "2"]);
    assert_eq!(final_status(&second, "expensive"), "cached");
    assert_eq!(final_status(&second, "consume"), "succeeded");
    let copy = second["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["step"] == "consume")
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(copy["path"].as_str().unwrap())
            .unwrap()
            .trim(),
        "42"
    );
    assert!(
        second["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "rows" && m["value"] == 7),
        "a cached step reports the metrics it reuses"
    );
    // A different param changes the key.
    assert!(p
        .run(&["--workflow", "features", "--param", "scale=3", "--no-api"])
        .status
        .success());
    assert_eq!(lines(&p.path("executions.txt")), 2);
    // Different input content changes the key.
    p.write("data.txt", "5");
    assert!(p
        .run(&["--workflow", "features", "--param", "scale=3", "--no-api"])
        .status
        .success());
    assert_eq!(lines(&p.path("executions.txt")), 3);
    let last = p.read_json(&["runs", "show", "4"]);
    let copy = last["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["step"] == "consume")
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(copy["path"].as_str().unwrap())
            .unwrap()
            .trim(),
        "15"
    );
}

/// The program of `templated_env_values_are_substituted_like_run_and_keyed`, with `PREFIX` in
/// front of the templated `OTHER` value.
fn env_program(prefix: &str) -> String {
    r#"
app envs { namespace = "envs" }
workflow w {
  param epochs: int = 3
  step load {
    image = "python:3.12-slim"
    run = "echo payload > {{outputs.raw}}"
    output raw: File
  }
  step consume {
    image = "python:3.12-slim"
    run = "echo ran >> executions.txt; echo \"{\\\"n\\\": $OTHER}\" > $SFLOW_METRICS; cat \"$IN\" > \"$OUT\"; echo \"$KEY $OTHER $MIXED\" >> seen.txt"
    input raw: File = load.raw
    output copy: File
    metric n: int
    env = { KEY = "literal", OTHER = "PREFIX{{epochs}}", IN = "{{inputs.raw}}", OUT = "{{outputs.copy}}", MIXED = "{{app.name}}/{{epochs}}" }
    cache = true
  }
}
"#
    .replace("PREFIX", prefix)
}

#[test]
fn templated_env_values_are_substituted_like_run_and_keyed() {
    let p = Prog::new(&env_program(""));
    assert!(p.run(&["--workflow", "w", "--no-api"]).status.success());
    let first = p.read_json(&["runs", "show", "1"]);
    assert_eq!(final_status(&first, "consume"), "succeeded");
    // `{{epochs}}` reached the step: as its metric, and next to the constant value.
    assert!(
        first["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "n" && m["value"] == 3),
        "metrics: {}",
        first["metrics"]
    );
    assert_eq!(p.read("seen.txt").trim(), "literal 3 envs/3");
    // `{{inputs.raw}}` and `{{outputs.copy}}` were real paths: the output holds the input.
    let copy = first["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["step"] == "consume")
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(copy["path"].as_str().unwrap())
            .unwrap()
            .trim(),
        "payload"
    );
    // A param given on the command line is substituted too.
    assert!(p
        .run(&["--workflow", "w", "--param", "epochs=7", "--no-api"])
        .status
        .success());
    assert_eq!(lines(&p.path("seen.txt")), 2);
    assert!(p.read("seen.txt").ends_with("literal 7 envs/7\n"));
    // Same program, same params: cached (run paths differ, the key does not).
    assert!(p.run(&["--workflow", "w", "--no-api"]).status.success());
    let third = p.read_json(&["runs", "show", "3"]);
    assert_eq!(final_status(&third, "consume"), "cached");
    assert_eq!(lines(&p.path("executions.txt")), 2);
    // Only the templated env value changes (not `run`, params or inputs): a new key.
    p.write("app.sflow", &env_program("1"));
    assert!(p.run(&["--workflow", "w", "--no-api"]).status.success());
    let fourth = p.read_json(&["runs", "show", "4"]);
    assert_eq!(final_status(&fourth, "consume"), "succeeded");
    assert_eq!(lines(&p.path("executions.txt")), 3);
    assert!(p.read("seen.txt").ends_with("literal 13 envs/3\n"));
}

#[test]
fn a_failing_branch_fails_its_dependants_but_not_its_siblings() {
    let p = Prog::new(
        r#"
app branch { namespace = "branch" }
workflow split {
  step root {
    image = "python:3.12-slim"
    run = "echo ok > {{outputs.data}}"
    output data: File
  }
  step bad {
    image = "python:3.12-slim"
    run = "echo 'no disk left' >&2; exit 3"
    input data: File = root.data
    output out: File
  }
  step below_bad {
    image = "python:3.12-slim"
    run = "cat {{inputs.x}}"
    input x: File = bad.out
  }
  step good {
    image = "python:3.12-slim"
    run = "sleep 0.3; echo fine > {{outputs.out}}"
    input data: File = root.data
    output out: File
  }
  step below_good {
    image = "python:3.12-slim"
    run = "cat {{inputs.x}}"
    input x: File = good.out
  }
}
"#,
    );
    let out = p.run(&["--workflow", "split", "--no-api"]);
    assert_eq!(out.status.code(), Some(1), "the run failed");
    let run = p.read_json(&["runs", "show", "1"]);
    assert_eq!(run["status"], "failed");
    assert_eq!(final_status(&run, "bad"), "failed");
    assert_eq!(final_status(&run, "below_bad"), "skipped");
    assert_eq!(final_status(&run, "good"), "succeeded");
    assert_eq!(
        final_status(&run, "below_good"),
        "succeeded",
        "an independent branch finished"
    );
    let bad = steps_of(&run).into_iter().find(|s| s.0 == "bad").unwrap();
    assert!(
        bad.3.contains("exited with status 3") && bad.3.contains("no disk left"),
        "{}",
        bad.3
    );
    let skipped = steps_of(&run)
        .into_iter()
        .find(|s| s.0 == "below_bad")
        .unwrap();
    assert!(skipped.3.contains("step `bad` failed"), "{}", skipped.3);
    let events = p.read_json(&["status"]);
    assert_eq!(events["runs"]["failed"], 1);

    // Each attempt's row holds its exit code and times: a short attempt is written once, at
    // its end; `good` ran past 50 ms, so its row was written while it ran (with its pid) and
    // updated at its end.
    let rows = p
        .store()
        .with(|c| sflow_runtime::store::step_runs_of(c, 1))
        .unwrap();
    let row = |step: &str| rows.iter().find(|r| r.step == step).unwrap();
    for (step, code) in [("root", 0), ("bad", 3), ("good", 0), ("below_good", 0)] {
        let r = row(step);
        assert_eq!(r.exit_code, Some(code), "{step}: {r:?}");
        assert!(
            r.finished_ms.is_some_and(|f| f >= r.started_ms),
            "{step}: {r:?}"
        );
    }
    let good = row("good");
    assert!(good.pid.is_some(), "{good:?}");
    assert!(
        good.finished_ms.unwrap() - good.started_ms >= 300,
        "the start is the attempt's, not its record's: {good:?}"
    );
}

#[test]
fn reported_metrics_are_checked_against_the_declared_ones() {
    let p = Prog::new(
        r#"
app metrics { namespace = "metrics" }
workflow check {
  param case: string = "ok"
  step report {
    image = "python:3.12-slim"
    run = "python3 report.py {{case}}"
    metric accuracy: ratio
    metric rows: int
    metric fast: bool
    metric took: duration
  }
}
"#,
    );
    p.write(
        "report.py",
        r#"import json, os, sys
case = sys.argv[1]
m = {"accuracy": 0.91, "rows": 1200, "fast": True, "took": "250ms", "extra": "ignored"}
if case == "missing": del m["rows"]
if case == "mistyped": m["rows"] = "many"
if case == "range": m["accuracy"] = 1.7
path = os.environ["SFLOW_METRICS"]
if case == "series":
    with open(path, "w") as f:
        for i, acc in enumerate([0.5, 0.7, 0.9]):
            m["accuracy"] = acc
            f.write(json.dumps(m) + "\n")
else:
    json.dump(m, open(path, "w"))
"#,
    );
    assert!(p.run(&["--workflow", "check", "--no-api"]).status.success());
    let ok = p.read_json(&["runs", "show", "1"]);
    let got: Vec<(String, Value)> = ok["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_string(), m["value"].clone()))
        .collect();
    assert!(
        got.contains(&("took".into(), Value::from("250ms"))),
        "{got:?}"
    );
    assert!(got.contains(&("fast".into(), Value::from(true))));
    assert!(
        !got.iter().any(|(k, _)| k == "extra"),
        "undeclared keys are ignored"
    );
    let mut id = 1;
    for (case, needle) in [
        ("missing", "metric `rows` (int) was not reported"),
        (
            "mistyped",
            "metric `rows` is declared `int` but the step reported the string \"many\"",
        ),
        (
            "range",
            "metric `accuracy` is declared `ratio` but the step reported 1.7, outside [0, 1]",
        ),
    ] {
        id += 1;
        let out = p.run(&[
            "--workflow",
            "check",
            "--param",
            &format!("case={case}"),
            "--no-api",
        ]);
        assert_eq!(out.status.code(), Some(1), "{case}");
        let run = p.read_json(&["runs", "show", &id.to_string()]);
        let err = steps_of(&run)[0].3.clone();
        assert!(err.contains(needle), "{case}: {err}");
        assert!(
            run["metrics"].as_array().unwrap().is_empty(),
            "a failed step records no metric"
        );
    }
    // JSON lines: a series; the last point is the step's value.
    assert!(p
        .run(&["--workflow", "check", "--param", "case=series", "--no-api"])
        .status
        .success());
    let series = p.read_json(&["runs", "show", "5"]);
    let acc: Vec<f64> = series["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == "accuracy")
        .map(|m| m["value"].as_f64().unwrap())
        .collect();
    assert_eq!(acc, vec![0.5, 0.7, 0.9]);
}

#[test]
fn outputs_must_be_written() {
    let p = Prog::new(
        r#"
app outs { namespace = "outs" }
workflow w {
  step lazy {
    image = "python:3.12-slim"
    run = "true"
    output model: Model
  }
}
"#,
    );
    assert_eq!(
        p.run(&["--workflow", "w", "--no-api"]).status.code(),
        Some(1)
    );
    let run = p.read_json(&["runs", "show", "1"]);
    assert!(
        steps_of(&run)[0]
            .3
            .contains("output `model` (Model) was not written"),
        "{:?}",
        steps_of(&run)
    );
}

// Without the ML feature only (the ML build runs these actions: tests/ml_loop.rs).
#[cfg(not(feature = "ml"))]
#[test]
fn std_torch_steps_say_they_need_the_ml_feature() {
    let p = Prog::new(
        r#"
app ml { namespace = "ml" }
use std.torch.train_classifier
use std.data.files
workflow training {
  step fit {
    uses = train_classifier(arch = "mlp", epochs = 1, lr = 0.01)
    input data: Dataset = files("data")
  }
}
"#,
    );
    std::fs::create_dir_all(p.path("data")).unwrap();
    assert_eq!(
        p.run(&["--workflow", "training", "--no-api"]).status.code(),
        Some(1)
    );
    let run = p.read_json(&["runs", "show", "1"]);
    let err = steps_of(&run)[0].3.clone();
    assert!(err.contains("exited with status 2"), "{err}");
    let stderr = std::fs::read_to_string(run["steps"][0]["stderr"].as_str().unwrap()).unwrap();
    assert!(
        stderr.contains(
            "not available in this build: std.torch and std.explain steps need the ML feature"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("arch=mlp") && stderr.contains("epochs=1"),
        "the step got its arguments: {stderr}"
    );
}

#[test]
fn a_program_with_errors_is_refused_with_its_diagnostics() {
    let p = Prog::new("app x { namespace = \"x\" }\nworkflow w { step s { image = \"a:1\" run = \"{{nope}}\" } }\n");
    let out = p.run(&["--workflow", "w", "--no-api"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("E0501"), "{err}");
    let unknown = Prog::new(
        "app x { namespace = \"x\" }\nworkflow w { step s { image = \"a:1\" run = \"true\" } }\n",
    );
    let out = unknown.run(&["--workflow", "nope", "--no-api"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no workflow `nope` (the program has: w)")
    );
}

#[test]
fn a_built_plan_json_runs_like_its_program_and_reports_read_as_text() {
    let source = r#"
app planned { namespace = "planned" }
workflow w {
  param n: int = 2
  step s {
    image = "python:3.12-slim"
    run = "echo {{n}} $SFLOW_APP > out.txt; echo '{\"n\": {{n}}}' > $SFLOW_METRICS"
    metric n: int
  }
}
"#;
    let p = Prog::new(source);
    let plan = sflow_runtime::program::plan_of_source("app.sflow", source).unwrap();
    let plan_path = p.path("plan.json");
    std::fs::write(&plan_path, serde_json::to_string_pretty(&plan).unwrap()).unwrap();
    let out = std::process::Command::new(sflow_bin())
        .args([
            "run",
            plan_path.to_str().unwrap(),
            "--workflow",
            "w",
            "--param",
            "n=4",
            "--no-api",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(p.read("out.txt").trim(), "4 planned");
    let text = std::process::Command::new(sflow_bin())
        .args(["runs", "show", "1", "--state-dir"])
        .arg(p.state())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("run 1 of w (planned): succeeded"), "{text}");
    assert!(
        text.contains("metrics:") && text.contains("n     int   4"),
        "{text}"
    );
    let none = std::process::Command::new(sflow_bin())
        .args(["runs", "--state-dir", "/nonexistent/x"])
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no store at"));
}

/// A relative `--state-dir` (as `examples/mnist/run-demo --out target/…` passes it) must not
/// leak into the paths steps get: they run in their own run directories, so every path in the
/// step contract is absolute. (This broke the demo in CI once: the linked MNIST input was
/// handed to the step as `target/…/.inputs/fit/data`.)
#[test]
fn a_relative_state_dir_gives_steps_absolute_paths() {
    let mnist = mnist_dir();
    let p = Prog::new(&format!(
        r#"
app rel {{ namespace = "rel" }}
use std.data.mnist
workflow w {{
  step s {{
    image = "busybox:1"
    input data: Dataset = mnist(split = "test", path = "{}")
    run = "ls {{{{inputs.data}}}} > {{{{outputs.listing}}}}"
    output listing: File
  }}
}}
"#,
        mnist.display()
    ));
    // Steps run in the program's directory; the state directory is relative to another one.
    let cwd = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(sflow_bin())
        .current_dir(cwd.path())
        .arg("run")
        .arg(&p.file)
        .args([
            "--workflow",
            "w",
            "--no-api",
            "--state-dir",
            "relative-state",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fn find(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == name) {
                return Some(path);
            }
            if path.is_dir() && !path.is_symlink() {
                if let Some(found) = find(&path, name) {
                    return Some(found);
                }
            }
        }
        None
    }
    let listing = find(&cwd.path().join("relative-state/runs"), "listing")
        .expect("the step wrote its listing output under the state directory");
    let text = std::fs::read_to_string(listing).unwrap();
    assert!(text.contains("t10k-images-idx3-ubyte"), "{text}");
}
