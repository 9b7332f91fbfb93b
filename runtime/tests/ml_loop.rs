//! The ML loop end to end, on the real MNIST digits of `data/mnist`: std.torch steps through
//! `sflow step`, data sources, the Checker's detector, the Improver's labelling, retraining,
//! evaluation and the policies that act on it.
//!
//! Run with `cargo test -p sflow-runtime --features ml --test ml_loop` after
//! `eval "$(scripts/setup-libtorch.sh --env)"` (the binaries need `LD_LIBRARY_PATH`).
#![cfg(feature = "ml")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::{json, Value};
use sflow_ml::corrupt::{corrupt, Corruption};
use sflow_runtime::engine::Engine;
use sflow_runtime::ml::batch::{Batch, Sample};
use sflow_runtime::store;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

type R = Result<(), Box<dyn std::error::Error>>;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repo")
}

/// The first `n` training digits as a dataset directory (a small, real training set).
fn write_train_slice(dir: &Path, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let train = sflow_ml::data::mnist(&mnist_dir(), sflow_ml::Split::Train)?;
    train.take(n).save_dir(dir)?;
    Ok(())
}

/// `n` test digits (shuffled with `seed`) as a batch whose keys are their indices in the
/// MNIST test set (what the demo's traffic generator sends), optionally corrupted.
fn write_batch(
    dir: &Path,
    n: usize,
    seed: u64,
    corruption: Option<(Corruption, u8)>,
) -> Result<Vec<usize>, Box<dyn std::error::Error>> {
    let test = sflow_ml::data::mnist(&mnist_dir(), sflow_ml::Split::Test)?;
    let order = sflow_ml::rng::Rng::new(seed).permutation(test.len());
    let idx: Vec<usize> = order.into_iter().take(n).collect();
    let mut images = test.subset(&idx)?;
    if let Some((c, s)) = corruption {
        images = corrupt(&images, c, s, seed)?;
    }
    let batch = Batch {
        images: images.without_labels(),
        samples: idx
            .iter()
            .map(|i| Sample {
                key: Some(i.to_string()),
                ..Sample::default()
            })
            .collect(),
    };
    batch.write(dir)?;
    Ok(idx)
}

/// The latest decision of `name`, if any.
fn decision(engine: &Engine, name: &str) -> Option<store::DecisionRow> {
    engine
        .store()
        .with(|c| store::decisions(c, 1000))
        .ok()?
        .into_iter()
        .find(|d| d.name == name)
}

fn events(engine: &Engine, subject: &str, name: &str) -> Vec<Value> {
    engine
        .store()
        .with(|c| store::events(c, 0, 10_000))
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.subject == subject && e.name == name)
        .map(|e| e.payload)
        .collect()
}

fn served_version(engine: &Engine, service: &str) -> Option<i64> {
    let (id, _) = engine
        .store()
        .with(|c| store::alias(c, service, "production"))
        .ok()??;
    engine
        .store()
        .with(|c| store::model(c, id))
        .ok()?
        .map(|m| m.version)
}

/// Hands the checker a batch the way the Tracker does: `tracker.batch`, then the counter
/// that the `every` trigger watches.
async fn feed(engine: &Engine, dir: &Path, size: usize, counter: &mut i64) {
    engine
        .set_sensor(
            "tracker",
            "batch",
            &json!({ "size": size, "path": dir.to_string_lossy() }),
        )
        .expect("batch");
    *counter += size as i64;
    engine
        .set_sensor("tracker", "new_samples", &json!(*counter))
        .expect("new_samples");
    engine.wait_idle().await;
}

const LOOP: &str = r#"
app loop { namespace = "loop" }
use std.torch.train_classifier
use std.data.{files, mnist}
use std.detectors.autoencoder_ood
use std.labels.LABEL_FN

workflow training {
  param lr: float = LR
  step fit {
    uses   = train_classifier(arch = "mlp", epochs = 2, lr = lr)
    input  data: Dataset = files("train")
    output model: Model
    metric accuracy: ratio
  }
}

service predictor { model = training.fit.model }

agent tracker:  Tracker  { watch = predictor, batch_size = 500 }
agent checker:  Checker  { detector = autoencoder_ood(quantile = 0.99) }
agent improver: Improver { retrain = training, labels = LABELS }
agent planner:  Planner  { target = predictor }

trigger new_data: every 500 tracker.new_samples -> checker.check(tracker.batch)

policy retrain_on_drift {
  when checker.picked.size > 100
  then improver.improve(checker.picked)
}

policy replace_if_better {
  when improver.candidate.accuracy > predictor.model.accuracy
  then planner.replace(predictor, improver.candidate)
}
"#;

fn loop_source(lr: &str, labels: &str) -> String {
    LOOP.replace("LR", lr)
        .replace("LABEL_FN", labels.split('(').next().unwrap_or_default())
        .replace("LABELS", labels)
}

fn loop_program(lr: &str) -> Prog {
    let oracle = format!(
        "oracle(mnist(split = \"test\", path = \"{}\"))",
        mnist_dir().display()
    );
    let p = Prog::new(&loop_source(lr, &oracle));
    write_train_slice(&p.path("train"), 10_000).expect("training slice");
    p
}

/// A training workflow through `sflow step` (both std steps, `mnist(split)` inputs) reaches
/// a sensible accuracy; `sflow data` and `sflow step --args` work as the manifests use them.
#[test]
fn std_torch_steps_train_and_evaluate_on_mnist() -> R {
    let mnist = mnist_dir();
    let p = Prog::new(&format!(
        r#"
app digits {{ namespace = "digits" }}
use std.torch.{{train_classifier, evaluate}}
use std.data.mnist
workflow training {{
  param epochs: int = 1
  step fit {{
    uses   = train_classifier(arch = "mlp", epochs = epochs, lr = 0.001)
    input  data: Dataset = mnist(split = "train", path = "{m}")
    output model: Model
    metric accuracy: ratio
  }}
  step test {{
    uses = evaluate(model = fit.model, data = mnist(split = "test", path = "{m}"))
  }}
}}
"#,
        m = mnist.display()
    ));
    let t0 = Instant::now();
    let out = p.run(&["--workflow", "training", "--no-api", "-j", "1"]);
    let secs = t0.elapsed().as_secs_f64();
    assert!(out.status.success());
    let run = p.read_json(&["runs", "show", "1"]);
    let metric = |step: &str, name: &str| -> f64 {
        run["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|m| m["step"] == step && m["name"] == name)
            .and_then(|m| m["value"].as_f64())
            .unwrap_or(-1.0)
    };
    let (held_out, test) = (metric("fit", "accuracy"), metric("test", "accuracy"));
    eprintln!(
        "MLP, 1 epoch, 60,000 digits through `sflow step`: held-out {held_out:.4}, test set {test:.4}, workflow {secs:.1}s"
    );
    assert!(held_out > 0.9, "held-out accuracy {held_out}");
    assert!(test > 0.9, "test-set accuracy {test}");
    // The split alone reached the step: 54,000 trained on + 6,000 held out.
    let series: Vec<&Value> = run["metrics"].as_array().unwrap().iter().collect();
    assert!(series
        .iter()
        .any(|m| m["step"] == "fit" && m["name"] == "accuracy"));
    let fit_stderr = std::fs::read_to_string(run["steps"][0]["stderr"].as_str().unwrap())?;
    assert!(fit_stderr.contains("on 54000 images"), "{fit_stderr}");
    let inputs = p.state().join("runs/1/.inputs/fit/data");
    let mut names: Vec<String> = std::fs::read_dir(&inputs)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    assert_eq!(
        names,
        vec!["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    );
    // The model is registered with its metric.
    let models = p.read_json(&["models"]);
    assert_eq!(models[0]["name"], "training.fit.model");
    assert!(models[0]["metrics"]["accuracy"].as_f64().unwrap() > 0.9);

    // `sflow data` (an init container's command): params from the environment.
    let out_dir = p.path("materialized");
    let o = Command::new(sflow_bin())
        .args(["data", "std.data.mnist", "--args"])
        .arg(
            json!({"split": {"expr": "param", "name": "split", "type": "string"},
                   "path": {"expr": "literal", "value": {"type": "string", "value": mnist.to_string_lossy()}}})
            .to_string(),
        )
        .arg("--out")
        .arg(&out_dir)
        .env("SFLOW_PARAM_SPLIT", "test")
        .output()?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out_dir.join("t10k-images-idx3-ubyte.gz").is_file());
    assert!(!out_dir.join("train-images-idx3-ubyte.gz").exists());

    // `sflow step --args` (a std step's container), on that directory.
    let model = models[0]["path"].as_str().unwrap();
    let report = p.path("step/report.json");
    let metrics = p.path("step/metrics.json");
    let o = Command::new(sflow_bin())
        .args(["step", "std.torch.evaluate", "--args", "{}"])
        .env("SFLOW_INPUT_MODEL", model)
        .env("SFLOW_INPUT_DATA", &out_dir)
        .env("SFLOW_OUTPUT_REPORT", &report)
        .env("SFLOW_METRICS", &metrics)
        .env("SFLOW_OUTPUT_PATHS", p.path("step/outputs"))
        .output()?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report)?)?;
    assert!((r["accuracy"].as_f64().unwrap() - test).abs() < 1e-9);
    assert_eq!(r["samples"], 10_000);
    assert_eq!(
        std::fs::read_to_string(p.path("step/outputs/report"))?,
        report.to_string_lossy()
    );
    // A wrong argument is refused with its name.
    let o = Command::new(sflow_bin())
        .args(["step", "std.torch.train_classifier", "--arg", "arch=rnn"])
        .args(["--arg", "epochs=1", "--arg", "lr=0.1"])
        .env("SFLOW_INPUT_DATA", &out_dir)
        .env("SFLOW_OUTPUT_MODEL", p.path("step/m.pt"))
        .output()?;
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown architecture \"rnn\""));
    Ok(())
}

/// `uses = saliency(…)`: a workflow trains a classifier on real digits and explains 8 test
/// digits through `sflow step std.explain.saliency`; the maps lie on the strokes.
#[test]
fn std_explain_saliency_runs_as_a_step() -> R {
    let p = Prog::new(&format!(
        r#"
app digits {{ namespace = "digits" }}
use std.torch.train_classifier
use std.explain.saliency
use std.data.{{mnist, files}}
workflow explained {{
  step fit {{
    uses   = train_classifier(arch = "mlp", epochs = 1, lr = 0.001)
    input  data: Dataset = files(path = "train")
    output model: Model
    metric accuracy: ratio
  }}
  step why {{
    uses = saliency(model = fit.model, data = mnist(split = "test", path = "{m}"), samples = 8)
  }}
}}
"#,
        m = mnist_dir().display()
    ));
    write_train_slice(&p.path("train"), 5_000)?;
    let out = p.run(&["--workflow", "explained", "--no-api", "-j", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let maps = p.state().join("runs/1/why/maps");
    let index: Value = serde_json::from_str(&std::fs::read_to_string(maps.join("saliency.json"))?)?;
    let samples = index["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 8);
    for (i, s) in samples.iter().enumerate() {
        for f in ["image", "saliency", "runner_up_saliency"] {
            assert!(
                maps.join(s[f].as_str().unwrap()).is_file(),
                "sample {i}: {f}"
            );
        }
        let focus = &s["ink_focus"];
        assert!(
            focus["near_ink"].as_f64().unwrap() > focus["border"].as_f64().unwrap(),
            "sample {i}: {focus}"
        );
    }
    eprintln!(
        "std.explain.saliency through a workflow: mean near-ink / border ratio {:.2}",
        index["mean_ink_focus"].as_f64().unwrap()
    );
    // A wrong argument is refused by `sflow step`, naming it.
    let o = Command::new(sflow_bin())
        .args(["step", "std.explain.saliency", "--arg", "samples=0"])
        .env("SFLOW_INPUT_MODEL", p.state().join("runs/1/fit/model"))
        .env("SFLOW_INPUT_DATA", mnist_dir())
        .env("SFLOW_OUTPUT_MAPS", p.path("step/maps"))
        .output()?;
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("samples must be at least 1"));
    Ok(())
}

/// The north-star program's `training` workflow trains a real model and registers it, and
/// its `report` step writes a model card.
#[test]
fn the_north_star_training_workflow_runs() -> R {
    let state = tempfile::tempdir()?;
    let out = Command::new(sflow_bin())
        .arg("run")
        .arg(repo().join("examples/mnist/mnist.sflow"))
        .args(["--workflow", "training", "--param", "epochs=1", "--no-api"])
        .arg("--state-dir")
        .arg(state.path())
        .output()?;
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success());
    let models = Command::new(sflow_bin())
        .args(["models", "--format", "json", "--state-dir"])
        .arg(state.path())
        .output()?;
    let models: Value = serde_json::from_slice(&models.stdout)?;
    let m = &models[0];
    assert_eq!(m["name"], "training.fit.model");
    let acc = m["metrics"]["accuracy"].as_f64().unwrap();
    eprintln!("north star, 1 epoch: held-out accuracy {acc:.4}");
    assert!(acc > 0.9, "{acc}");
    let card = std::fs::read_to_string(state.path().join("runs/1/report/card"))?;
    assert!(card.contains(m["sha256"].as_str().unwrap()), "{card}");
    assert!(
        card.contains("- fit: "),
        "the card has the fit step's metrics: {card}"
    );
    assert!(card.contains("epochs = 1"), "{card}");
    Ok(())
}

/// The loop: a clean batch is not flagged, a corrupted one is; the Improver labels the picked
/// samples with the oracle, retrains, the candidate beats the served model on the drifted
/// held-out data, and `replace_if_better` serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_detected_and_a_better_model_replaces_the_served_one() -> R {
    let p = loop_program("0.001");
    let engine = p.engine(test_clock()).await;
    let t0 = Instant::now();
    let run = engine.run_workflow("training", &Default::default(), "test")?;
    assert_eq!(engine.wait_run(run).await?.status, "succeeded");
    engine.wait_idle().await;
    assert_eq!(served_version(&engine, "predictor"), Some(1));
    eprintln!("initial training: {:.1}s", t0.elapsed().as_secs_f64());

    // A clean batch: no drift, nothing picked.
    let mut counter = 0;
    let clean = p.path("batches/clean");
    write_batch(&clean, 500, 1, None)?;
    let t = Instant::now();
    feed(&engine, &clean, 500, &mut counter).await;
    let d = decision(&engine, "new_data").expect("the check ran");
    eprintln!(
        "clean check ({:.1}s, with the fit): {}",
        t.elapsed().as_secs_f64(),
        d.result
    );
    assert_eq!(d.status, "done", "{}", d.result);
    assert!(d.result.contains("no drift"), "{}", d.result);
    let signals = engine.signals();
    assert_eq!(signals["checker.picked"]["size"], 0);
    let clean_score = signals["checker.drift"].as_f64().unwrap();

    // A corrupted batch: flagged, its outliers picked, and the loop runs.
    let drifted = p.path("batches/drifted");
    write_batch(&drifted, 500, 2, Some((Corruption::Brightness, 3)))?;
    let t = Instant::now();
    feed(&engine, &drifted, 500, &mut counter).await;
    let d = engine
        .store()
        .with(|c| store::decisions(c, 100))?
        .into_iter()
        .filter(|d| d.name == "new_data")
        .map(|d| d.result)
        .next()
        .unwrap_or_default();
    eprintln!("drifted check: {d}");
    assert!(d.contains("drifted"), "{d}");
    assert!(engine.signals()["checker.drift"].as_f64().unwrap() > clean_score);
    // The picked batch carries the served model's saliency maps of its samples.
    let picked_root = p.state().join("ml/checker/checker/picked");
    let with_maps: Vec<PathBuf> = std::fs::read_dir(&picked_root)?
        .flatten()
        .map(|e| e.path().join("saliency/saliency.json"))
        .filter(|p| p.is_file())
        .collect();
    assert!(
        !with_maps.is_empty(),
        "no saliency maps under {}",
        picked_root.display()
    );
    let index: Value = serde_json::from_str(&std::fs::read_to_string(&with_maps[0])?)?;
    assert!(!index["samples"].as_array().unwrap().is_empty());
    let improve = decision(&engine, "retrain_on_drift").expect("improve ran");
    eprintln!(
        "improve ({:.1}s): {}",
        t.elapsed().as_secs_f64(),
        improve.result
    );
    assert_eq!(improve.status, "done", "{}", improve.result);
    let evaluated = events(&engine, "improver", "evaluated");
    assert_eq!(evaluated.len(), 1);
    let e = &evaluated[0];
    let cand = &e["candidate"]["evaluation"];
    let served = &e["served"][0]["evaluation"];
    eprintln!("evaluation: {e}");
    assert!(
        cand["drifted"].as_f64().unwrap() > served["drifted"].as_f64().unwrap() + 0.05,
        "the candidate learnt the drift: {e}"
    );
    assert!(cand["accuracy"].as_f64().unwrap() > served["accuracy"].as_f64().unwrap());
    assert!(e["heldOut"]["drifted"].as_u64().unwrap() >= 20);
    assert_eq!(e["heldOut"]["clean"], 1000);
    // The retrain run got the labelled samples.
    let runs = engine.store().with(|c| store::runs(c, 10))?;
    let retrain = runs
        .iter()
        .find(|r| r.origin == "agent:improver.improve")
        .unwrap();
    assert_eq!(retrain.status, "succeeded");
    let fit_err = std::fs::read_to_string(Path::new(&retrain.dir).join("logs/fit.1.stderr"))?;
    assert!(fit_err.contains("SFLOW_INPUT_LABELLED"), "{fit_err}");
    // The policy compared like with like, and replaced the model.
    let replace = decision(&engine, "replace_if_better").expect("replace_if_better fired");
    assert_eq!(replace.status, "done", "{}", replace.result);
    assert_eq!(served_version(&engine, "predictor"), Some(2));
    let reads = &replace.reads;
    assert_eq!(
        reads["improver.candidate.accuracy"].as_f64(),
        cand["accuracy"].as_f64(),
        "{reads}"
    );
    assert_eq!(
        reads["predictor.model.accuracy"].as_f64(),
        served["accuracy"].as_f64(),
        "{reads}"
    );
    // The picked samples were used: the checker starts over, and the policies re-arm.
    let signals = engine.signals();
    assert_eq!(signals["checker.picked"]["size"], 0, "{signals:?}");
    assert_eq!(
        signals["predictor.model"]["metrics"]["accuracy"].as_f64(),
        cand["accuracy"].as_f64()
    );
    engine.shutdown().await;
    Ok(())
}

/// A candidate that is worse than the served model is never promoted: here the retrain
/// workflow's default learning rate (used by the Improver) ruins training, while the served
/// model was trained with a good one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worse_candidate_is_not_promoted() -> R {
    let p = loop_program("3.0");
    let engine = p.engine(test_clock()).await;
    let params = [("lr".to_string(), "0.001".to_string())]
        .into_iter()
        .collect();
    let run = engine.run_workflow("training", &params, "test")?;
    assert_eq!(engine.wait_run(run).await?.status, "succeeded");
    engine.wait_idle().await;
    let mut counter = 0;
    let drifted = p.path("batches/drifted");
    write_batch(&drifted, 500, 3, Some((Corruption::Brightness, 3)))?;
    feed(&engine, &drifted, 500, &mut counter).await;
    let improve = decision(&engine, "retrain_on_drift").expect("improve ran");
    eprintln!("improve: {}", improve.result);
    assert_eq!(improve.status, "done", "{}", improve.result);
    assert!(improve.result.contains("not better"), "{}", improve.result);
    let e = &events(&engine, "improver", "evaluated")[0];
    assert!(
        e["candidate"]["evaluation"]["accuracy"].as_f64().unwrap()
            < e["served"][0]["evaluation"]["accuracy"].as_f64().unwrap(),
        "{e}"
    );
    // The policy never fired; the served model stays.
    assert!(decision(&engine, "replace_if_better").is_none());
    assert_eq!(served_version(&engine, "predictor"), Some(1));
    engine.shutdown().await;
    Ok(())
}

/// `human_feedback(dir)` writes the samples for people, survives a restart while it waits,
/// and goes on when the labels appear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn human_feedback_asks_people_and_resumes_when_labels_appear() -> R {
    std::env::set_var("SFLOW_LABELS_POLL_MS", "50");
    let p = Prog::new(&loop_source("0.001", "human_feedback(\"to-label\")"));
    write_train_slice(&p.path("train"), 10_000)?;
    let engine = p.engine(test_clock()).await;
    let run = engine.run_workflow("training", &Default::default(), "test")?;
    assert_eq!(engine.wait_run(run).await?.status, "succeeded");
    engine.wait_idle().await;
    // The checker picked 150 samples (set directly, as a checker would).
    let picked = p.path("picked");
    let keys = write_batch(&picked, 150, 4, Some((Corruption::Stripe, 3)))?;
    engine.set_sensor(
        "checker",
        "picked",
        &json!({"size": 150, "path": picked.to_string_lossy()}),
    )?;
    // The request appears.
    let dir = p.path("to-label");
    let manifest = wait_for_file(&dir, "manifest.json", Duration::from_secs(60)).await?;
    let req = manifest.parent().unwrap().to_path_buf();
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest)?)?;
    assert_eq!(m["samples"].as_array().unwrap().len(), 150);
    let pgm = std::fs::read(req.join("00000.pgm"))?;
    assert!(pgm.starts_with(b"P5\n28 28\n255\n") && pgm.len() == 13 + 784);
    // Beside each picture, the served model's saliency maps (why it hesitated).
    let map = std::fs::read(req.join("00149.saliency.pgm"))?;
    assert!(map.starts_with(b"P5\n28 28\n255\n") && map.len() == 13 + 784);
    assert!(req.join("00149.runner-up.pgm").is_file());
    assert_eq!(m["samples"][149]["saliency"], "00149.saliency.pgm");
    assert!(
        m["samples"][0]["runnerUp"]["class"].is_u64(),
        "{}",
        m["samples"][0]
    );
    // A restart while it waits: the firing stays pending and waits again.
    engine.shutdown().await;
    let pending = p.store().with(store::pending_firings)?;
    assert_eq!(pending.len(), 1, "the improvement is still to do");
    let engine = p.engine(test_clock()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(decision(&engine, "retrain_on_drift").is_none());
    // People answer (one "cannot tell").
    let test = sflow_ml::data::mnist(&mnist_dir(), sflow_ml::Split::Test)?;
    let answers = test.labels().unwrap();
    let mut labels = serde_json::Map::new();
    for (i, k) in keys.iter().enumerate() {
        labels.insert(
            i.to_string(),
            if i == 7 {
                Value::Null
            } else {
                json!(answers[*k])
            },
        );
    }
    std::fs::write(req.join("labels.tmp"), Value::Object(labels).to_string())?;
    std::fs::rename(req.join("labels.tmp"), req.join("labels.json"))?;
    let deadline = Instant::now() + Duration::from_secs(240);
    let d = loop {
        if let Some(d) = decision(&engine, "retrain_on_drift") {
            break d;
        }
        assert!(Instant::now() < deadline, "the improvement did not go on");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    engine.wait_idle().await;
    eprintln!("improve with people's labels: {}", d.result);
    assert_eq!(d.status, "done", "{}", d.result);
    assert!(d.result.contains("labelled 149 of 150"), "{}", d.result);
    assert!(d.result.contains("1 skipped"), "{}", d.result);
    assert!(engine.signals().contains_key("improver.candidate"));
    // Exactly one request, one retrain run.
    assert_eq!(std::fs::read_dir(&dir)?.count(), 1);
    let retrains = engine
        .store()
        .with(|c| store::runs(c, 10))?
        .into_iter()
        .filter(|r| r.origin == "agent:improver.improve")
        .count();
    assert_eq!(retrains, 1);
    engine.shutdown().await;
    Ok(())
}

async fn wait_for_file(
    dir: &Path,
    name: &str,
    within: Duration,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path().join(name);
                if p.is_file() {
                    return Ok(p);
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no {name} under {} in time", dir.display()).into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
