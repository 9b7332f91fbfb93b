//! `Improver.tune` end to end on real MNIST digits: a poor default, a search space, real
//! TorchScript trainings through `std.torch.train_classifier`, the trials recorded, the best
//! becoming `improver.candidate` and served by the usual policy, `sflow runs show` with the
//! trials, and a tuning killed with `kill -9` that resumes without running a trial twice.
//!
//! Run with `cargo test -p sflow-runtime --features ml --test tune` after
//! `eval "$(scripts/setup-libtorch.sh --env)"`.
#![cfg(feature = "ml")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::Value;
use sflow_runtime::clock::SystemClock;
use sflow_runtime::store::{self, tuning};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

type R = Result<(), Box<dyn std::error::Error>>;

/// The first `n` training digits as a dataset directory.
fn write_train_slice(dir: &Path, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let train = sflow_ml::data::mnist(&mnist_dir(), sflow_ml::Split::Train)?;
    train.take(n).save_dir(dir)?;
    Ok(())
}

/// A program whose `training` has a deliberately poor default (lr = 1e-4, one epoch) and a
/// search space; `FIRE` is how `improver.tune(TRIALS)` is called.
const PROGRAM: &str = r#"
app tuned { namespace = "tuned" }
use std.torch.train_classifier
use std.data.{files, mnist}
use std.labels.oracle

workflow training {
  param lr: float = 0.0001 in log(1e-4, 1e-1)
  param epochs: int = EPOCHS
  param arch: string = "mlp" in ARCHS
  step fit {
    uses   = train_classifier(arch = arch, epochs = epochs, lr = lr)
    input  data: Dataset = files("train")
    output model: Model
    metric accuracy: ratio
  }
}

service predictor { model = training.fit.model }

agent improver: Improver {
  retrain   = training
  labels    = oracle(mnist(split = "test", path = "MNIST"))
  objective = maximize(training.fit.accuracy)
  search    = SEARCH
  parallel  = 2
}
agent planner: Planner { target = predictor }

FIRE

policy replace_if_better {
  when improver.candidate.accuracy > predictor.model.accuracy
  then planner.replace(predictor, improver.candidate)
}
"#;

/// The test program with `arch in ARCHS`, `epochs: int = EPOCHS`, `search = tpe(startup = 3)`.
fn program(archs: &str, fire: &str, train: usize) -> Prog {
    program_with(archs, "1 in 1..3", "tpe(startup = 3)", fire, train)
}

fn program_with(archs: &str, epochs: &str, search: &str, fire: &str, train: usize) -> Prog {
    let src = PROGRAM
        .replace("ARCHS", archs)
        .replace("EPOCHS", epochs)
        .replace("SEARCH", search)
        .replace("FIRE", fire)
        .replace("MNIST", &mnist_dir().to_string_lossy());
    let p = Prog::new(&src);
    write_train_slice(&p.path("train"), train).expect("training slice");
    p
}

fn objective_of_run(engine: &sflow_runtime::engine::Engine, run: i64) -> f64 {
    engine
        .store()
        .with(|c| store::metrics_of_run(c, run))
        .unwrap()
        .iter()
        .rev()
        .find(|m| m.step == "fit" && m.name == "accuracy")
        .and_then(|m| m.value["value"].as_f64())
        .expect("the run's accuracy")
}

/// The most runs that were running at the same moment.
fn max_overlap(runs: &[store::RunRow]) -> usize {
    let mut edges: Vec<(i64, i32)> = Vec::new();
    for r in runs {
        edges.push((r.created_ms, 1));
        edges.push((r.finished_ms.unwrap_or(i64::MAX), -1));
    }
    // Ends before starts at the same instant.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

/// The default is poor; eight trials (TPE after three random ones, two at a time) find
/// better params; every trial is recorded with params inside the space; the best trial's
/// model is `improver.candidate` and, being better than the served default, is served;
/// `sflow runs` and `sflow runs show` show the trials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuning_finds_better_params_than_the_poor_default_on_mnist() -> R {
    const TRIALS: usize = 8;
    let p = program(
        r#"["mlp", "cnn"]"#,
        r#"trigger tune_now: webhook "/tune" -> improver.tune(8)"#,
        3_000,
    );
    let engine = p.engine(Arc::new(SystemClock)).await;
    let t0 = Instant::now();
    // The default, for comparison (and the first model served).
    let default_run = engine.run_workflow("training", &Default::default(), "test")?;
    assert_eq!(engine.wait_run(default_run).await?.status, "succeeded");
    engine.wait_idle().await;
    let default = objective_of_run(&engine, default_run);
    eprintln!(
        "default (lr=1e-4, 1 epoch, mlp) on 2,700 digits: held-out accuracy {default:.4} in {:.1}s",
        t0.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let key = engine
        .webhook("/tune", Some("tune-1"))?
        .expect("the webhook trigger");
    engine.wait_idle().await;
    let secs = t.elapsed().as_secs_f64();
    let d = engine
        .store()
        .with(|c| store::decisions(c, 100))?
        .into_iter()
        .find(|d| d.name == "tune_now")
        .expect("the tuning's decision");
    eprintln!("{TRIALS} trials in {secs:.1}s: {}", d.result);
    assert_eq!(d.status, "done", "{}", d.result);
    assert!(
        d.result.contains("8 trials (tpe, 2 at a time)"),
        "{}",
        d.result
    );

    // Every trial recorded, inside the space, run with its params.
    let action = format!("{key}#0");
    let trials = engine.store().with(|c| tuning::trials_of(c, &action))?;
    assert_eq!(trials.len(), TRIALS);
    let mut runs = Vec::new();
    for t in &trials {
        assert_eq!(t.status, "succeeded", "trial {}: {:?}", t.trial, t.error);
        let lr = t.params["lr"].as_f64().unwrap();
        let epochs = t.params["epochs"].as_i64().unwrap();
        let arch = t.params["arch"].as_str().unwrap();
        assert!((1e-4..=1e-1).contains(&lr), "{lr}");
        assert!((1..=3).contains(&epochs), "{epochs}");
        assert!(["mlp", "cnn"].contains(&arch), "{arch}");
        let run = t.run_id.expect("a run");
        let row = engine.store().with(|c| store::run(c, run))?.unwrap();
        assert_eq!(row.origin, "agent:improver.tune");
        let params = engine.store().with(|c| store::params_of(c, run))?;
        let param = |n: &str| params.iter().find(|x| x.name == n).unwrap().value.clone();
        assert_eq!(param("epochs"), epochs.to_string());
        assert_eq!(param("arch"), arch);
        assert!((param("lr").parse::<f64>()? - lr).abs() < 1e-12);
        assert_eq!(t.objective, Some(objective_of_run(&engine, run)));
        runs.push(row);
    }
    let by: Vec<&str> = trials.iter().map(|t| t.proposed_by.as_str()).collect();
    assert_eq!(&by[..4], ["tpe:startup"; 4], "{by:?}");
    assert_eq!(&by[4..], ["tpe"; 4], "{by:?}");
    // At most `parallel` trial runs at once.
    let overlap = max_overlap(&runs);
    assert!(overlap <= 2, "{overlap} trial runs overlapped");

    // The best trial beats the default; its model is the candidate, and it is served.
    let best = trials
        .iter()
        .max_by(|a, b| a.objective.partial_cmp(&b.objective).unwrap())
        .unwrap();
    let best_acc = best.objective.unwrap();
    eprintln!(
        "best trial #{} {}: {best_acc:.4} vs default {default:.4}",
        best.trial, best.params
    );
    assert!(best_acc > default, "{best_acc} <= {default}");
    let u = engine
        .store()
        .with(|c| tuning::tuning(c, &action))?
        .unwrap();
    assert_eq!(u.best_trial, Some(best.trial));
    assert_eq!(u.status, "done");
    let best_model = engine
        .store()
        .with(store::models)?
        .into_iter()
        .find(|m| Some(m.run_id) == best.run_id)
        .expect("the best trial's model");
    let signals = engine.signals();
    assert_eq!(signals["improver.candidate"]["id"], best_model.id);
    assert_eq!(
        signals["improver.candidate"]["metrics"]["accuracy"].as_f64(),
        Some(best_acc)
    );
    let served = engine
        .store()
        .with(|c| store::alias(c, "predictor", "production"))?
        .map(|(m, _)| m);
    assert_eq!(
        served,
        Some(best_model.id),
        "the better candidate is served"
    );
    assert!(
        d.result.contains(&format!("best #{}", best.trial)),
        "{}",
        d.result
    );
    assert!(
        d.result
            .contains(&format!("default params (run {default_run})")),
        "{}",
        d.result
    );
    let tuned = engine
        .store()
        .with(|c| store::events(c, 0, 1000))?
        .into_iter()
        .find(|e| e.subject == "improver" && e.name == "tuned")
        .expect("improver.tuned");
    assert_eq!(tuned.payload["best"]["trial"], best.trial);
    assert_eq!(tuned.payload["trials"].as_array().unwrap().len(), TRIALS);

    // `sflow runs` marks the trials; `sflow runs show` shows the table, the best marked.
    let list = p.read_json(&["runs"]);
    let marked: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["trial"].is_string())
        .collect();
    assert_eq!(marked.len(), TRIALS);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == default_run && r.get("trial").is_none()));
    let run = best.run_id.unwrap().to_string();
    let shown = p.read_json(&["runs", "show", &run]);
    assert_eq!(shown["tuning"]["trials"].as_array().unwrap().len(), TRIALS);
    assert_eq!(shown["tuning"]["bestTrial"], best.trial);
    let text = Command::new(sflow_bin())
        .args(["runs", "show", &run, "--state-dir"])
        .arg(p.state())
        .output()?;
    let text = String::from_utf8(text.stdout)?;
    eprintln!("{text}");
    assert!(text.contains(&format!(
        "tuning (this run is trial #{} of 8): improver.tune maximize training.fit.accuracy with tpe, done",
        best.trial
    )));
    let best_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("best"))
        .expect("the best trial's line");
    assert!(
        best_line.contains(&format!("#{} ", best.trial)) && best_line.contains("succeeded"),
        "{best_line}"
    );
    let listed = Command::new(sflow_bin())
        .args(["runs", "--state-dir"])
        .arg(p.state())
        .output()?;
    let listed = String::from_utf8(listed.stdout)?;
    assert!(listed.contains("#8/8"), "{listed}");
    engine.shutdown().await;
    Ok(())
}

/// `tune` needs an objective: a hand-written plan without one fails with a clear message
/// (and runs nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuning_without_an_objective_fails_clearly() -> R {
    let p = program(
        r#"["mlp"]"#,
        r#"trigger tune_now: webhook "/tune" -> improver.tune(4)"#,
        100,
    );
    let mut plan: Value =
        serde_json::to_value(&sflow_runtime::program::load(&p.file).expect("program").plan)?;
    let agents = plan["agents"].as_array_mut().unwrap();
    let improver = agents.iter_mut().find(|a| a["name"] == "improver").unwrap();
    assert!(improver["config"]
        .as_object_mut()
        .unwrap()
        .remove("objective")
        .is_some());
    std::fs::write(p.path("plan.json"), serde_json::to_string(&plan)?)?;
    let program = sflow_runtime::program::load(&p.path("plan.json")).expect("plan.json");
    let mut cfg = sflow_runtime::engine::EngineConfig::new(p.state());
    cfg.self_exe = sflow_bin();
    let engine = sflow_runtime::engine::Engine::start(program, cfg).await?;
    engine.webhook("/tune", Some("k"))?;
    engine.wait_idle().await;
    let d = engine
        .store()
        .with(|c| store::decisions(c, 10))?
        .into_iter()
        .find(|d| d.name == "tune_now")
        .unwrap();
    assert_eq!(d.status, "failed");
    assert!(
        d.result
            .contains("agent `improver` has no `objective`: `tune` needs one"),
        "{}",
        d.result
    );
    assert!(engine.store().with(|c| store::runs(c, 10))?.is_empty());
    engine.shutdown().await;
    Ok(())
}

/// Failed trials (here `epochs = 0`, which `train_classifier` refuses) are recorded and the
/// search goes on; when every trial fails there is no candidate and the result says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_trials_are_recorded_and_the_search_goes_on() -> R {
    let p = program_with(
        r#"["mlp"]"#,
        "1 in 0..1",
        "random_search()",
        r#"trigger tune_now: webhook "/tune" -> improver.tune(6)"#,
        1_000,
    );
    let engine = p.engine(Arc::new(SystemClock)).await;
    let key = engine.webhook("/tune", Some("mixed"))?.unwrap();
    engine.wait_idle().await;
    let trials = engine
        .store()
        .with(|c| tuning::trials_of(c, &format!("{key}#0")))?;
    assert_eq!(trials.len(), 6);
    let failed: Vec<&tuning::TrialRow> = trials.iter().filter(|t| t.status == "failed").collect();
    let ok: Vec<&tuning::TrialRow> = trials.iter().filter(|t| t.status == "succeeded").collect();
    assert!(!failed.is_empty() && !ok.is_empty(), "{trials:?}");
    for t in &failed {
        assert_eq!(t.params["epochs"], 0);
        assert!(t.objective.is_none());
        assert!(
            t.error.as_deref().unwrap_or_default().contains("run "),
            "{:?}",
            t.error
        );
    }
    for t in &ok {
        assert_eq!(t.params["epochs"], 1);
        assert!(t.objective.is_some());
    }
    let d = engine
        .store()
        .with(|c| store::decisions(c, 10))?
        .into_iter()
        .find(|d| d.name == "tune_now")
        .unwrap();
    assert_eq!(d.status, "done");
    assert!(
        d.result.contains(&format!("; {} failed", failed.len())),
        "{}",
        d.result
    );
    assert!(
        d.result.contains("→ candidate training.fit.model"),
        "{}",
        d.result
    );
    engine.shutdown().await;

    // Every trial fails: no candidate.
    let p = program_with(
        r#"["mlp"]"#,
        "0 in 0..0",
        "random_search()",
        r#"trigger tune_now: webhook "/tune" -> improver.tune(2)"#,
        200,
    );
    let engine = p.engine(Arc::new(SystemClock)).await;
    engine.webhook("/tune", Some("none"))?;
    engine.wait_idle().await;
    let d = engine
        .store()
        .with(|c| store::decisions(c, 10))?
        .into_iter()
        .find(|d| d.name == "tune_now")
        .unwrap();
    eprintln!("{}", d.result);
    assert!(
        d.result.contains("every trial failed") && d.result.contains("no candidate"),
        "{}",
        d.result
    );
    assert!(
        d.result.contains("epochs must be at least 1"),
        "{}",
        d.result
    );
    assert!(!engine.signals().contains_key("improver.candidate"));
    assert!(engine
        .store()
        .with(|c| store::events(c, 0, 100))?
        .iter()
        .any(|e| e.subject == "improver" && e.name == "tuning_failed"));
    engine.shutdown().await;
    Ok(())
}

fn spawn_sflow(p: &Prog, args: &[&str]) -> std::process::Child {
    Command::new(sflow_bin())
        .arg("run")
        .arg(&p.file)
        .args(args)
        .arg("--no-api")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sflow")
}

fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `kill -9` in the middle of a tuning (fired by a policy on the poor default's accuracy):
/// the next start resumes it; each trial has exactly one run, the interrupted ones resumed,
/// and the proposals are the ones recorded before the crash.
#[test]
fn a_tuning_killed_mid_search_resumes_without_running_a_trial_twice() -> R {
    let p = program(
        r#"["mlp"]"#,
        "policy retune { when training.fit.accuracy < 0.99 then improver.tune(6) max 1 per 1d }",
        1_500,
    );
    let child = spawn_sflow(&p, &["--workflow", "training"]);
    wait_for(20, "the store exists", || {
        p.state().join("store.db").exists()
    });
    let s = p.store();
    // Kill once the second wave is running (trial 3's run exists).
    wait_for(240, "the second wave", || {
        s.with(|c| tuning::tunings(c, 1))
            .ok()
            .and_then(|t| t.into_iter().next())
            .and_then(|t| s.with(|c| tuning::trials_of(c, &t.action_key)).ok())
            .is_some_and(|ts| ts.iter().any(|t| t.trial == 3 && t.run_id.is_some()))
    });
    let mut child = child;
    child.kill()?;
    child.wait()?;
    let key = s.with(|c| tuning::tunings(c, 1))?[0].action_key.clone();
    let before = s.with(|c| tuning::trials_of(c, &key))?;
    assert!(before.iter().take(2).all(|t| t.status == "succeeded"));

    // Start again (no new run of `training`): the pending firing resumes the tuning.
    let mut child = spawn_sflow(&p, &[]);
    wait_for(300, "the tuning finished", || {
        s.with(|c| tuning::tuning(c, &key))
            .ok()
            .flatten()
            .is_some_and(|t| t.status == "done")
    });
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    child.wait()?;

    let after = s.with(|c| tuning::trials_of(c, &key))?;
    assert_eq!(after.len(), 6);
    // The proposals recorded before the crash were kept.
    for b in &before {
        assert_eq!(after[(b.trial - 1) as usize].params, b.params);
    }
    let runs = s.with(|c| store::runs(c, 100))?;
    let trial_runs: Vec<&store::RunRow> = runs
        .iter()
        .filter(|r| r.origin == "agent:improver.tune")
        .collect();
    assert_eq!(trial_runs.len(), 6, "one run per trial");
    for t in &after {
        assert_eq!(t.status, "succeeded", "trial {}: {:?}", t.trial, t.error);
        let run = trial_runs
            .iter()
            .find(|r| Some(r.id) == t.run_id)
            .expect("the trial's run");
        assert_eq!(
            run.firing_key.as_deref(),
            Some(format!("{key}#trial-{}", t.trial).as_str())
        );
    }
    assert!(
        trial_runs.iter().any(|r| r.resumed > 0),
        "an interrupted trial run was resumed"
    );
    // The firing is done once, with one decision.
    let done: Vec<store::DecisionRow> = s
        .with(|c| store::decisions(c, 100))?
        .into_iter()
        .filter(|d| d.name == "retune" && d.status == "done")
        .collect();
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(done[0].result.contains("6 trials (tpe, 2 at a time)"));
    Ok(())
}

/// Trials are experiments: a policy that reads the metric the trials report does not fire
/// again on each poor trial, `on training.succeeded` fires for the workflow's own run only,
/// and the signal keeps the workflow's own value (live and after a restart).
#[test]
fn trials_move_no_signal_and_emit_no_workflow_events() -> R {
    let p = Prog::new(
        r#"
app quiet { namespace = "quiet" }
use std.labels.oracle
use std.data.files
workflow training {
  param lr: float = 0.0001 in log(1e-4, 1e-1)
  step fit {
    image  = "python:3.12-slim"
    run    = "python3 -c 'import math,json,sys; acc=max(0.0, 1 - (math.log10({{lr}})+2)**2/10); json.dump({\"accuracy\": round(acc,4)}, open(sys.argv[1],\"w\"))' $SFLOW_METRICS"
    metric accuracy: ratio
  }
}
workflow report { step note { image = "busybox:1.36" run = "true" } }
agent improver: Improver {
  retrain   = training
  labels    = oracle(files("labels"))
  objective = maximize(training.fit.accuracy)
  search    = random_search()
}
trigger after_training: on training.succeeded -> run report
policy retune {
  when training.fit.accuracy < 0.9
  then improver.tune(4)
}
"#,
    );
    std::fs::create_dir_all(p.path("labels"))?;
    let out = p.run(&["--workflow", "training", "--no-api"]);
    assert!(out.status.success());
    let runs = p.read_json(&["runs"]);
    let runs = runs.as_array().ok_or("runs")?;
    let count = |w: &str| runs.iter().filter(|r| r["workflow"] == w).count();
    assert_eq!(count("training"), 5, "the run and 4 trials: {runs:?}");
    assert_eq!(
        count("report"),
        1,
        "one `on training.succeeded` firing: {runs:?}"
    );
    let decisions = p.read_json(&["decisions"]);
    let fired: Vec<&Value> = decisions
        .as_array()
        .ok_or("decisions")?
        .iter()
        .filter(|d| d["name"] == "retune" && d["status"] != "skipped")
        .collect();
    assert_eq!(fired.len(), 1, "one tuning: {decisions}");
    // The signal is the workflow's own run's (0.28 at lr = 1e-4), not the last trial's.
    let store = p.store();
    let own = store
        .with(store::latest_step_metrics)?
        .into_iter()
        .find(|m| m.workflow == "training" && m.name == "accuracy")
        .ok_or("no accuracy")?;
    assert_eq!(own.run_id, 1, "the restored signal comes from run 1");
    Ok(())
}
