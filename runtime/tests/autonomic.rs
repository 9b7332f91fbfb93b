//! End-to-end tests of triggers, policies and agents: real programs whose actions run real
//! workflows (sh commands), in process with a test clock where time matters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::json;
use sflow_runtime::store;
use std::time::Duration;

const MIN: i64 = 60_000;

#[test]
fn a_policy_reacts_to_a_reported_metric_by_running_another_workflow() {
    let p = Prog::new(
        r#"
app react { namespace = "react" }
workflow training {
  step fit {
    image = "python:3.12-slim"
    run = "python3 -c 'import json, os; json.dump({\"accuracy\": 0.82}, open(os.environ[\"SFLOW_METRICS\"], \"w\"))'"
    metric accuracy: ratio
  }
}
workflow retrain {
  param reason: string = "none"
  step go {
    image = "python:3.12-slim"
    run = "echo {{reason}} >> retrained.txt"
  }
}
policy low_accuracy {
  when training.fit.accuracy < 0.9
  then run retrain with { reason = "low-accuracy" }
}
"#,
    );
    let out = p.run(&["--workflow", "training", "--no-api"]);
    assert!(out.status.success());
    // `sflow run --workflow` waited for what the run set off.
    assert_eq!(p.read("retrained.txt").trim(), "low-accuracy");
    let runs = p.read_json(&["runs"]);
    let got: Vec<(String, String, String)> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["workflow"].as_str().unwrap().into(),
                r["status"].as_str().unwrap().into(),
                r["origin"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "retrain".into(),
                "succeeded".into(),
                "policy:low_accuracy".into()
            ),
            ("training".into(), "succeeded".into(), "cli".into())
        ]
    );
    let decisions = p.read_json(&["decisions"]);
    let d = &decisions[0];
    assert_eq!(
        (
            d["name"].as_str(),
            d["status"].as_str(),
            d["action"].as_str()
        ),
        (
            Some("low_accuracy"),
            Some("done"),
            Some("run retrain with {reason}")
        )
    );
    assert_eq!(d["reads"]["training.fit.accuracy"], 0.82);
    assert!(d["result"].as_str().unwrap().starts_with("started run 2"));
    // A second training run with the same accuracy: the condition never turned false, so the
    // policy does not fire again (it fires once per time the condition becomes true).
    assert!(p
        .run(&["--workflow", "training", "--no-api"])
        .status
        .success());
    assert_eq!(lines(&p.path("retrained.txt")), 1);
}

const GUARDS: &str = r#"
app guards { namespace = "guards" }
agent kind Gauge {
  sensor load: float
}
agent g: Gauge
workflow bump {
  param tag: string = "x"
  step s {
    image = "python:3.12-slim"
    run = "echo {{tag}} >> bumps.txt"
  }
}
policy held {
  when g.load > 0.5 for 1m
  then run bump with { tag = "held" }
}
policy cooled {
  when g.load > 0.8
  then run bump with { tag = "cooled" }
  cooldown 2m
}
policy capped {
  when g.load > 0.2
  then run bump with { tag = "capped" }
  max 2 per 1h
}
"#;

fn count(p: &Prog, tag: &str) -> usize {
    p.read("bumps.txt").lines().filter(|l| *l == tag).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_cooldown_and_max_per_guards() {
    let p = Prog::new(GUARDS);
    let clock = test_clock();
    let engine = p.engine(clock.clone()).await;
    let settle = || async {
        engine.sync().await;
        engine.wait_idle().await;
    };
    let load = |v: f64| engine.set_sensor("g", "load", &json!(v)).unwrap();
    load(0.9);
    settle().await;
    assert_eq!(
        (count(&p, "held"), count(&p, "cooled"), count(&p, "capped")),
        (0, 1, 1),
        "held waits for its `for 1m`"
    );
    clock.advance(MIN / 2);
    settle().await;
    assert_eq!(count(&p, "held"), 0);
    clock.advance(MIN / 2);
    settle().await;
    assert_eq!(count(&p, "held"), 1, "held for a minute");
    clock.advance(MIN);
    settle().await;
    assert_eq!(
        count(&p, "cooled"),
        2,
        "the cooldown ended and the condition still holds"
    );
    assert_eq!(count(&p, "held"), 1, "no cooldown: once per rising edge");
    assert_eq!(count(&p, "capped"), 1);
    // The condition turns false and true again.
    load(0.1);
    settle().await;
    clock.advance(MIN / 2);
    load(0.9);
    settle().await;
    assert_eq!(count(&p, "capped"), 2, "re-armed");
    assert_eq!(
        count(&p, "cooled"),
        2,
        "still cooling down (last at 2m, now 2.5m)"
    );
    clock.advance(MIN / 2);
    settle().await;
    assert_eq!(
        count(&p, "held"),
        1,
        "its window restarted when the load fell"
    );
    clock.advance(3 * MIN / 2);
    settle().await;
    assert_eq!(count(&p, "cooled"), 3);
    assert_eq!(count(&p, "held"), 2);
    // A third rising edge within the hour: capped is skipped and the skip is reported.
    load(0.1);
    settle().await;
    load(0.9);
    settle().await;
    assert_eq!(count(&p, "capped"), 2, "max 2 per 1h");
    let decisions = engine.store().with(|c| store::decisions(c, 100)).unwrap();
    let skipped: Vec<_> = decisions
        .iter()
        .filter(|d| d.status == "skipped" && d.name == "capped")
        .collect();
    assert_eq!(skipped.len(), 1, "{decisions:#?}");
    assert!(
        skipped[0].result.contains("max 2 per 1h"),
        "{}",
        skipped[0].result
    );
    // An hour after the first firing the window has room again.
    clock.advance(60 * MIN);
    load(0.1);
    settle().await;
    load(0.95);
    settle().await;
    assert_eq!(count(&p, "capped"), 3);
    // Every firing is recorded with the values it read.
    let fired = engine
        .store()
        .with(|c| store::firings_of(c, "policy", "held"))
        .unwrap();
    assert_eq!(fired.len(), count(&p, "held"));
    assert_eq!(fired[0].reads["g.load"], 0.9);
    assert!(fired.iter().all(|f| f.status == "done"));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_guard_state_survives_a_restart() {
    let p = Prog::new(GUARDS);
    let clock = test_clock();
    {
        let engine = p.engine(clock.clone()).await;
        engine.set_sensor("g", "load", &json!(0.9)).unwrap();
        engine.sync().await;
        engine.wait_idle().await;
        engine.shutdown().await;
    }
    assert_eq!(count(&p, "capped"), 1);
    let engine = p.engine(clock.clone()).await;
    engine.sync().await;
    engine.wait_idle().await;
    assert_eq!(
        count(&p, "capped"),
        1,
        "the sensor value is restored, and the policy stays disarmed"
    );
    assert_eq!(count(&p, "cooled"), 1, "still cooling down");
    clock.advance(2 * MIN);
    engine.sync().await;
    engine.wait_idle().await;
    assert_eq!(count(&p, "cooled"), 2, "the restored cooldown ended");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_schedule_fires_on_the_injected_clock() {
    let p = Prog::new(
        r#"
app cron { namespace = "cron" }
workflow nightly_job {
  step s {
    image = "python:3.12-slim"
    run = "echo ran >> nightly.txt"
  }
}
trigger nightly: schedule "0 2 * * *" -> run nightly_job
"#,
    );
    let clock = test_clock(); // 2026-01-01T00:00Z
    let engine = p.engine(clock.clone()).await;
    let runs = |e: &sflow_runtime::engine::Engine| e.store().with(|c| store::runs(c, 10)).unwrap();
    clock.advance(119 * MIN); // 01:59
    tokio::time::sleep(Duration::from_millis(200)).await;
    engine.wait_idle().await;
    assert!(runs(&engine).is_empty(), "not yet");
    clock.advance(MIN); // 02:00
    eventually(10, "the schedule fired", || runs(&engine).len() == 1).await;
    engine.wait_idle().await;
    let r = &runs(&engine)[0];
    assert_eq!(
        (r.origin.as_str(), r.status.as_str()),
        ("trigger:nightly", "succeeded")
    );
    assert_eq!(
        r.firing_key.as_deref(),
        Some("trigger:nightly:schedule:2026-01-01T02:00:00.000Z#0")
    );
    clock.advance(30 * MIN);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(runs(&engine).len(), 1, "once per scheduled minute");
    clock.set(T0 + 24 * 60 * MIN + 2 * 60 * MIN); // the next day, 02:00
    eventually(10, "the next night", || runs(&engine).len() == 2).await;
    engine.wait_idle().await;
    assert_eq!(lines(&p.path("nightly.txt")), 2);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_and_on_event_triggers() {
    let p = Prog::new(
        r#"
app triggers { namespace = "triggers" }
agent kind Counter {
  sensor seen: int
}
agent counter: Counter
workflow batch {
  step s {
    image = "python:3.12-slim"
    run = "echo $SFLOW_RUN_ID >> batches.txt"
  }
}
workflow report {
  step s {
    image = "python:3.12-slim"
    run = "echo report >> reports.txt"
  }
}
trigger per_hundred: every 100 counter.seen -> run batch
trigger after_batch: on batch.succeeded -> run report
"#,
    );
    let engine = p.engine(test_clock()).await;
    let seen = |v: i64| {
        engine.set_sensor("counter", "seen", &json!(v)).unwrap();
    };
    for v in [10, 60, 99] {
        seen(v);
    }
    engine.sync().await;
    engine.wait_idle().await;
    assert_eq!(lines(&p.path("batches.txt")), 0);
    seen(100);
    engine.sync().await;
    engine.wait_idle().await;
    assert_eq!(lines(&p.path("batches.txt")), 1);
    seen(150);
    seen(420); // jumps past several hundreds: fires once
    engine.sync().await;
    engine.wait_idle().await;
    assert_eq!(lines(&p.path("batches.txt")), 2);
    seen(519);
    engine.sync().await;
    engine.wait_idle().await;
    assert_eq!(
        lines(&p.path("batches.txt")),
        2,
        "grown by 99 since the last firing"
    );
    seen(520);
    engine.sync().await;
    engine.wait_idle().await;
    assert_eq!(lines(&p.path("batches.txt")), 3);
    assert_eq!(
        lines(&p.path("reports.txt")),
        3,
        "one report per batch.succeeded event"
    );
    let events = engine.store().with(|c| store::events(c, 0, 100)).unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.subject == "batch" && e.name == "succeeded")
            .count(),
        3
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planner_replace_scale_rollback_and_user_kind_bindings() {
    let hook = Recorder::start(Duration::ZERO);
    let program = format!(
        r#"
app loop {{ namespace = "loop" }}
workflow training {{
  param acc: float = 0.8
  step fit {{
    image = "python:3.12-slim"
    run = "echo model-{{{{acc}}}} > {{{{outputs.model}}}}; echo '{{\"accuracy\": {{{{acc}}}}}}' > $SFLOW_METRICS"
    output model: Model
    metric accuracy: ratio
  }}
}}
workflow rescore {{
  param days: int = 1
  step s {{
    image = "python:3.12-slim"
    run = "echo {{{{days}}}} >> rescored.txt"
  }}
}}
service predictor {{
  model = training.fit.model
  replicas = 1..3
}}
agent planner: Planner {{ target = predictor }}
agent kind Notifier {{
  sensor load: float
  action page(msg: string) -> webhook "{url}"
  action escalate(team: string)
  action rescore(days: int = 1) -> run rescore with {{ days = days }}
}}
agent pager: Notifier
policy better {{
  when training.fit.accuracy > predictor.model.accuracy
  then planner.replace(predictor, training.fit.model)
  max 1 per 1d
}}
policy hot {{
  when pager.load > 0.5
  then planner.scale(predictor, +1)
  cooldown 1m
}}
trigger tell:     on predictor.model.replaced    -> pager.page("model replaced")
trigger undo:     webhook "/rollback"            -> planner.rollback(predictor)
trigger rescored: on predictor.model.rolled_back -> pager.rescore(3)
trigger esc:      webhook "/escalate"            -> pager.escalate("ml-oncall")
"#,
        url = hook.url("/page")
    );
    let p = Prog::new(&program);
    let clock = test_clock();
    let engine = p.engine(clock.clone()).await;
    let settle = || async {
        engine.sync().await;
        engine.wait_idle().await;
    };
    let serving = |e: &sflow_runtime::engine::Engine| {
        e.store()
            .with(|c| store::alias(c, "predictor", "production"))
            .unwrap()
    };

    // The first model is deployed when it exists; a model as good is not a replacement.
    let r1 = engine
        .run_workflow("training", &Default::default(), "test")
        .unwrap();
    assert_eq!(engine.wait_run(r1).await.unwrap().status, "succeeded");
    settle().await;
    assert_eq!(serving(&engine), Some((1, None)));
    assert_eq!(
        engine.signals()["predictor.model"]["metrics"]["accuracy"],
        0.8
    );
    // A better model replaces it: alias moved, event, the event's trigger POSTed.
    let r2 = engine
        .run_workflow(
            "training",
            &[("acc".to_string(), "0.95".to_string())].into(),
            "test",
        )
        .unwrap();
    engine.wait_run(r2).await.unwrap();
    settle().await;
    assert_eq!(serving(&engine), Some((2, Some(1))));
    let models = engine.store().with(store::models).unwrap();
    assert_eq!(models[0].aliases, vec!["predictor@production"]);
    assert_eq!(models[0].lineage["params"]["acc"], 0.95);
    let reqs = hook.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].0.starts_with("POST /page"));
    assert!(
        reqs[0]
            .1
            .to_ascii_lowercase()
            .contains("idempotency-key: trigger:tell:event:"),
        "{}",
        reqs[0].1
    );
    let body: serde_json::Value = serde_json::from_str(&reqs[0].2).unwrap();
    assert_eq!(
        (
            body["agent"].as_str(),
            body["action"].as_str(),
            body["args"]["msg"].as_str()
        ),
        (Some("pager"), Some("page"), Some("model replaced"))
    );
    // Scale within the range, with the cooldown.
    engine.set_sensor("pager", "load", &json!(0.9)).unwrap();
    settle().await;
    assert_eq!(
        engine
            .store()
            .with(|c| store::service(c, "predictor"))
            .unwrap()
            .unwrap()
            .replicas,
        2
    );
    clock.advance(MIN);
    settle().await;
    assert_eq!(
        engine
            .store()
            .with(|c| store::service(c, "predictor"))
            .unwrap()
            .unwrap()
            .replicas,
        3
    );
    clock.advance(MIN);
    settle().await;
    assert_eq!(
        engine
            .store()
            .with(|c| store::service(c, "predictor"))
            .unwrap()
            .unwrap()
            .replicas,
        3,
        "never beyond max"
    );
    let decisions = engine.store().with(|c| store::decisions(c, 100)).unwrap();
    assert!(
        decisions[0]
            .result
            .contains("stays at 3 replicas (its range is 1..3)"),
        "{:?}",
        decisions[0]
    );
    assert_eq!(engine.signals()["predictor.replicas"], 3);
    // Rollback (a webhook trigger), which sets off a bound action that runs a workflow.
    let key = engine.webhook("/rollback", None).unwrap().unwrap();
    settle().await;
    assert_eq!(
        engine
            .store()
            .with(|c| store::firing(c, &key))
            .unwrap()
            .unwrap()
            .status,
        "done"
    );
    assert_eq!(serving(&engine), Some((1, Some(2))));
    assert_eq!(
        p.read("rescored.txt").trim(),
        "3",
        "`-> run rescore with {{ days = days }}` got the argument"
    );
    // An unbound action is published for an external implementation.
    engine.webhook("/escalate", Some("abc")).unwrap();
    engine.webhook("/escalate", Some("abc")).unwrap(); // a retried request: same key, fires once
    settle().await;
    let published = engine
        .store()
        .with(|c| store::agent_actions(c, "pager", 0))
        .unwrap();
    assert_eq!(published.len(), 1);
    assert_eq!(
        (
            published[0].action.as_str(),
            published[0].args["team"].as_str()
        ),
        ("escalate", Some("ml-oncall"))
    );
    let events: Vec<String> = engine
        .store()
        .with(|c| store::events(c, 0, 100))
        .unwrap()
        .iter()
        .map(|e| format!("{}.{}", e.subject, e.name))
        .collect();
    for e in [
        "predictor.model.replaced",
        "predictor.scaled",
        "predictor.model.rolled_back",
        "rescore.succeeded",
    ] {
        assert!(events.contains(&e.to_string()), "{e} in {events:?}");
    }
    // After the rollback the candidate is better again, but `max 1 per 1d` holds it back.
    assert!(engine
        .store()
        .with(|c| store::decisions(c, 100))
        .unwrap()
        .iter()
        .any(|d| d.name == "better" && d.status == "skipped"));
    engine.shutdown().await;
}

/// Latency stays high at the most replicas: `scale_out` has nothing left to do, `grow`
/// chooses `resize`; the resources are recorded (engine state), `predictor.resized` is
/// emitted once, and the same resources again do nothing. (The local backend applying it to
/// its workers: tests/serving.rs, ML build; a Deployment patched: tests/standin_kube.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_high_at_max_replicas_chooses_resize() {
    let p = Prog::new(
        r#"
app sized { namespace = "sized" }
workflow training {
  step fit {
    image = "python:3.12-slim"
    run = "echo m > {{outputs.model}}"
    output model: Model
  }
}
service predictor {
  model = training.fit.model
  replicas = 1..2
  resources { cpu = 500m, memory = 1Gi }
}
agent planner: Planner { target = predictor }
policy scale_out {
  when predictor.latency.p95 > 50ms and predictor.replicas < 2
  then planner.scale(predictor, +1)
}
policy grow {
  when predictor.latency.p95 > 50ms and predictor.replicas >= 2
  then planner.resize(predictor, cpu = 2, memory = 4Gi)
  cooldown 1m
}
"#,
    );
    let clock = test_clock();
    let engine = p.engine(clock.clone()).await;
    let settle = || async {
        engine.sync().await;
        engine.wait_idle().await;
    };
    let r = engine
        .run_workflow("training", &Default::default(), "test")
        .unwrap();
    assert_eq!(engine.wait_run(r).await.unwrap().status, "succeeded");
    settle().await;
    engine
        .set_service_signal("predictor", "latency.p95", &json!("80ms"))
        .unwrap();
    settle().await;
    let decisions = engine.store().with(|c| store::decisions(c, 100)).unwrap();
    let done = |name: &str| {
        decisions
            .iter()
            .filter(|d| d.name == name && d.status == "done")
            .map(|d| d.result.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(done("scale_out").len(), 1, "{decisions:?}");
    assert_eq!(
        done("grow"),
        vec!["predictor resized from cpu 500m, memory 1Gi to cpu 2000m, memory 4Gi per replica"]
    );
    let kv = engine
        .store()
        .with(|c| store::kv_get(c, "service:predictor:resources"))
        .unwrap();
    assert_eq!(
        kv,
        Some(json!({"cpuMillis": 2000, "memoryBytes": 4u64 << 30}))
    );
    // Still high after the cooldown: the same resources again change nothing.
    clock.advance(2 * MIN);
    engine
        .set_service_signal("predictor", "latency.p95", &json!("90ms"))
        .unwrap();
    settle().await;
    let again = engine.store().with(|c| store::decisions(c, 100)).unwrap();
    assert!(
        again
            .iter()
            .any(|d| d.name == "grow" && d.result.contains("already has cpu 2000m, memory 4Gi")),
        "{again:?}"
    );
    let resized = engine
        .store()
        .with(|c| store::events(c, 0, 100))
        .unwrap()
        .into_iter()
        .filter(|e| e.subject == "predictor" && e.name == "resized")
        .collect::<Vec<_>>();
    assert_eq!(resized.len(), 1);
    assert_eq!(resized[0].payload["from"]["cpuMillis"], 500);
    engine.shutdown().await;
}

// Without the ML feature only (the ML build runs these actions: tests/ml_loop.rs).
#[cfg(not(feature = "ml"))]
#[test]
fn ml_actions_report_that_they_need_the_ml_feature() {
    let p = Prog::new(
        r#"
app ml { namespace = "ml" }
use std.labels.oracle
use std.data.files
workflow training {
  param lr: float = 0.01 in log(1e-4, 1e-1)
  step fit {
    image = "python:3.12-slim"
    run = "echo '{\"accuracy\": 0.5}' > $SFLOW_METRICS # lr {{lr}}"
    metric accuracy: ratio
  }
}
agent improver: Improver {
  retrain   = training
  labels    = oracle(files("labels"))
  objective = maximize(training.fit.accuracy)
}
policy tune_it {
  when training.fit.accuracy < 0.9
  then improver.tune(3)
}
"#,
    );
    let out = p.run(&["--workflow", "training", "--no-api"]);
    assert!(
        out.status.success(),
        "the workflow succeeded; the policy's action failed on its own"
    );
    let d = p.read_json(&["decisions"]);
    assert_eq!(d[0]["status"], "failed");
    assert!(
        d[0]["result"]
            .as_str()
            .unwrap()
            .contains("not available in this build: `Improver.tune` needs the ML feature"),
        "{}",
        d[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_recorded_just_before_a_crash_is_acted_on_at_start() {
    let p = Prog::new(GUARDS);
    // What a runtime killed right after recording a sensor value (before evaluating the
    // policies that read it) leaves behind.
    std::fs::create_dir_all(p.state()).unwrap();
    let s = store::Store::open(&p.state().join("store.db")).unwrap();
    let v = serde_json::to_value(sflow_runtime::value::RtValue::Float { value: 0.9 }).unwrap();
    s.with(|c| store::set_signal(c, "g.load", &v, T0)).unwrap();
    drop(s);
    let engine = p.engine(test_clock()).await;
    engine.sync().await;
    engine.wait_idle().await;
    assert_eq!((count(&p, "capped"), count(&p, "cooled")), (1, 1));
    engine.shutdown().await;
    // And a second start does not act again.
    let engine = p.engine(test_clock()).await;
    engine.sync().await;
    engine.wait_idle().await;
    assert_eq!((count(&p, "capped"), count(&p, "cooled")), (1, 1));
    engine.shutdown().await;
}
