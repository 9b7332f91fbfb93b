//! Crash tests: `kill -9` the runtime mid-workflow and mid-action, start it again, and check
//! that no recorded metric is lost, the interrupted run is resumed, and no action runs twice.
//!
//! Interrupted runs are *resumed*, not marked failed: everything a finished step did is
//! committed in the store (its outputs, digests, metrics) before the step counts as done, so
//! the next start keeps those steps, kills what is left of the interrupted attempts (their
//! process groups, identified by pid and process start time), and runs the remaining steps.
//! Re-running an interrupted attempt is what a retry does anyway, and the step contract makes
//! attempts independent (each writes its outputs afresh).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use sflow_runtime::store::{self, Store};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn(p: &Prog, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(sflow_bin());
    cmd.arg("run")
        .arg(&p.file)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start sflow")
}

fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(30));
    }
}

fn kill9(mut child: Child) {
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

fn store_of(p: &Prog) -> Store {
    wait_for(20, "the store exists", || {
        p.state().join("store.db").exists()
    });
    Store::open(&p.state().join("store.db")).expect("store")
}

#[test]
fn killed_mid_workflow_the_run_resumes_and_keeps_its_metrics() {
    let p = Prog::new(
        r#"
app crash { namespace = "crash" }
workflow training {
  step first {
    image = "python:3.12-slim"
    run = "echo first >> ran.txt; echo data > {{outputs.data}}; echo '{\"loss\": 0.25}' > $SFLOW_METRICS"
    output data: File
    metric loss: float
  }
  step second {
    image = "python:3.12-slim"
    run = "echo second >> ran.txt; while [ -f hold ]; do sleep 0.05; done; cat {{inputs.data}} > {{outputs.model}}; echo '{\"accuracy\": 0.9}' > $SFLOW_METRICS"
    input data: File = first.data
    output model: Model
    metric accuracy: ratio
  }
  step third {
    image = "python:3.12-slim"
    run = "echo third >> ran.txt"
    input model: Model = second.model
  }
}
"#,
    );
    p.write("hold", "");
    let child = spawn(&p, &["--workflow", "training", "--no-api"], &[]);
    wait_for(20, "step `second` running", || {
        p.read("ran.txt").contains("second")
    });
    let s = store_of(&p);
    let mut orphan = 0;
    wait_for(20, "the attempt's pid recorded", || {
        let running = s.with(|c| store::running_step_runs(c, 1)).unwrap();
        orphan = running.first().and_then(|a| a.pid).unwrap_or(0);
        orphan != 0
    });
    let before = s.with(|c| store::metrics_of_run(c, 1)).unwrap();
    assert_eq!(before.len(), 1, "`first` reported its metric");
    kill9(child);
    assert!(
        alive(orphan),
        "after kill -9 the step process is an orphan, still running"
    );

    // Restart (the app, no new run): the orphan is killed, the run resumes where it was.
    let app = spawn(&p, &[], &[]);
    wait_for(20, "the orphan attempt killed", || !alive(orphan));
    std::fs::remove_file(p.path("hold")).unwrap();
    wait_for(30, "the run finished", || {
        s.with(|c| store::run(c, 1)).unwrap().unwrap().status != "running"
    });
    stop(app);

    let run = s.with(|c| store::run(c, 1)).unwrap().unwrap();
    assert_eq!((run.status.as_str(), run.resumed), ("succeeded", 1));
    let steps: Vec<(String, i64, String)> = s
        .with(|c| store::step_runs_of(c, 1))
        .unwrap()
        .into_iter()
        .map(|r| (r.step, r.attempt, r.status))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("first".into(), 1, "succeeded".into()),
            ("second".into(), 1, "interrupted".into()),
            ("second".into(), 2, "succeeded".into()),
            ("third".into(), 1, "succeeded".into()),
        ]
    );
    let interrupted = &s.with(|c| store::step_runs_of(c, 1)).unwrap()[1];
    assert!(
        interrupted
            .error
            .as_deref()
            .unwrap_or("")
            .contains("process group was killed"),
        "{interrupted:?}"
    );
    assert_eq!(
        p.read("ran.txt").lines().collect::<Vec<_>>(),
        vec!["first", "second", "second", "third"],
        "`first` did not run again"
    );
    let after = s.with(|c| store::metrics_of_run(c, 1)).unwrap();
    assert_eq!(
        after.len(),
        2,
        "the metric recorded before the crash is kept (once) and the resumed step's is added"
    );
    assert_eq!(
        (after[0].name.as_str(), after[0].step_run_id),
        ("loss", before[0].step_run_id)
    );
    assert_eq!(after[1].name, "accuracy");
    assert_eq!(s.with(store::models).unwrap().len(), 1);
}

const ACTIONS: &str = r#"
app actions { namespace = "actions" }
workflow training {
  step fit {
    image = "python:3.12-slim"
    run = "echo '{\"accuracy\": 0.7}' > $SFLOW_METRICS"
    metric accuracy: ratio
  }
}
workflow retrain {
  step go {
    image = "python:3.12-slim"
    run = "echo retrain >> retrained.txt"
  }
}
agent kind Notifier {
  action page(msg: string) -> webhook "URL"
}
agent pager: Notifier
policy fix {
  when training.fit.accuracy < 0.9
  then run retrain, pager.page("retraining")
}
"#;

#[test]
fn killed_between_recording_a_firing_and_acting_the_action_runs_once_after_restart() {
    let hook = Recorder::start(Duration::ZERO);
    let p = Prog::new(&ACTIONS.replace("URL", &hook.url("/page")));
    // Widen the window between "firing recorded" and "actions performed" to kill inside it.
    let child = spawn(
        &p,
        &["--workflow", "training", "--no-api"],
        &[("SFLOW_TEST_HOLD_ACTIONS_MS", "60000")],
    );
    let s = store_of(&p);
    wait_for(20, "the policy fired", || {
        !s.with(store::pending_firings).unwrap().is_empty()
    });
    kill9(child);
    assert!(
        s.with(|c| store::runs(c, 10))
            .unwrap()
            .iter()
            .all(|r| r.workflow != "retrain"),
        "nothing was done yet"
    );
    assert_eq!(hook.count.load(std::sync::atomic::Ordering::SeqCst), 0);

    let app = spawn(&p, &[], &[]);
    wait_for(30, "the pending firing performed", || {
        s.with(store::pending_firings).unwrap().is_empty()
    });
    wait_for(30, "retrain finished", || {
        s.with(|c| store::runs(c, 10))
            .unwrap()
            .iter()
            .any(|r| r.workflow == "retrain" && r.status == "succeeded")
    });
    std::thread::sleep(Duration::from_millis(300));
    stop(app);

    let retrains: Vec<_> = s
        .with(|c| store::runs(c, 10))
        .unwrap()
        .into_iter()
        .filter(|r| r.workflow == "retrain")
        .collect();
    assert_eq!(retrains.len(), 1, "the run action happened once");
    assert_eq!(lines(&p.path("retrained.txt")), 1);
    assert_eq!(
        hook.count.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the webhook action happened once"
    );
    let firings = s.with(|c| store::firings_of(c, "policy", "fix")).unwrap();
    assert_eq!(
        firings.len(),
        1,
        "the restart did not fire the policy again (its state was recorded with the firing)"
    );
    assert_eq!(firings[0].status, "done");
    let decisions = s.with(|c| store::decisions(c, 10)).unwrap();
    assert_eq!(
        decisions.iter().filter(|d| d.status == "done").count(),
        2,
        "{decisions:#?}"
    );
}

#[test]
fn killed_during_a_webhook_action_the_retry_carries_the_same_idempotency_key_and_no_run_repeats() {
    // The receiver holds the request for 3 s; the runtime is killed while it waits.
    let hook = Recorder::start(Duration::from_secs(3));
    let p = Prog::new(&ACTIONS.replace("URL", &hook.url("/page")));
    let child = spawn(&p, &["--workflow", "training", "--no-api"], &[]);
    wait_for(20, "the webhook request arrived", || {
        hook.count.load(std::sync::atomic::Ordering::SeqCst) == 1
    });
    kill9(child);
    let s = store_of(&p);
    let f = &s.with(|c| store::firings_of(c, "policy", "fix")).unwrap()[0];
    assert_eq!(
        (f.status.as_str(), f.next_action),
        ("pending", 1),
        "the run action is recorded done, the webhook is not"
    );

    let app = spawn(&p, &[], &[]);
    wait_for(30, "the firing completed", || {
        s.with(|c| store::firing(c, &f.key))
            .unwrap()
            .unwrap()
            .status
            == "done"
    });
    wait_for(30, "retrain finished", || {
        s.with(|c| store::runs(c, 10))
            .unwrap()
            .iter()
            .all(|r| r.status != "running")
    });
    stop(app);

    let retrains = s
        .with(|c| store::runs(c, 10))
        .unwrap()
        .into_iter()
        .filter(|r| r.workflow == "retrain")
        .count();
    assert_eq!(retrains, 1, "the run action was not repeated");
    let reqs = hook.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 2, "the interrupted POST was sent again");
    let key = |h: &str| {
        h.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("idempotency-key:"))
            .map(|l| l.to_string())
    };
    assert_eq!(
        key(&reqs[0].1),
        key(&reqs[1].1),
        "with the same Idempotency-Key, so the receiver performs it once"
    );
    assert_eq!(
        key(&reqs[0].1).unwrap().split_once(':').unwrap().1.trim(),
        format!("{}#1", f.key)
    );
}

#[test]
fn an_attempt_whose_pid_was_not_yet_recorded_is_found_by_its_environment() {
    use std::os::unix::process::CommandExt;
    let run_dir = tempfile::tempdir().unwrap();
    let dir = run_dir.path().to_string_lossy().into_owned();
    let mut child = Command::new("/bin/sh")
        .args(["-c", "sleep 30 & sleep 30"])
        .env("SFLOW_RUN_DIR", &dir)
        .env("SFLOW_STEP", "train")
        .env("SFLOW_ATTEMPT", "2")
        .process_group(0)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        sflow_runtime::executor::process::reap_by_env(&dir, "train", 1),
        0,
        "another attempt"
    );
    assert!(sflow_runtime::executor::process::reap_by_env(&dir, "train", 2) >= 1);
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed");
}

#[test]
fn every_process_of_an_interrupted_run_is_found_by_its_environment() {
    // A runtime stopped within an attempt's first 50 ms has written no row for it: at start,
    // whatever still runs with the run's directory in its environment is killed.
    use std::os::unix::process::CommandExt;
    let run_dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let spawn = |dir: &std::path::Path| {
        Command::new("/bin/sh")
            .args(["-c", "sleep 30 & sleep 30"])
            .env("SFLOW_RUN_DIR", dir)
            .env("SFLOW_STEP", "fit")
            .env("SFLOW_ATTEMPT", "1")
            .process_group(0)
            .spawn()
            .unwrap()
    };
    let (mut ours, mut theirs) = (spawn(run_dir.path()), spawn(other.path()));
    std::thread::sleep(Duration::from_millis(200));
    let dir = run_dir.path().to_string_lossy().into_owned();
    assert!(sflow_runtime::executor::process::reap_run_by_env(&dir) >= 1);
    assert!(!ours.wait().unwrap().success(), "killed");
    assert!(
        theirs.try_wait().unwrap().is_none(),
        "another run's process is left alone"
    );
    sflow_runtime::executor::process::kill_group(theirs.id());
    let _ = theirs.wait();
}
