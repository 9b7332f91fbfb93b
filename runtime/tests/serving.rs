//! Local serving (feature `ml`): a program whose workflow produces a real TorchScript MNIST
//! model (trained here, on real digits) is served over the Open Inference Protocol v2; the
//! Tracker's sensors and batches follow the traffic; an `every N tracker.new_samples`
//! trigger fires with the batch; a Planner replace hot-swaps under concurrent load without a
//! failed request; scale changes the workers; measured latency reaches the signal board and a
//! policy; bad requests get 4xx; serving comes back after a restart; `sflow serve` serves a
//! model file and hot-swaps it when the file changes.
//!
//! `cargo test -p sflow-runtime --features ml --test serving`
#![cfg(feature = "ml")]

mod common;

use common::{sflow_bin, Prog};
use serde_json::{json, Value};
use sflow_ml::data::{mnist, Split};
use sflow_ml::{train_classifier, Arch, Dataset, TrainConfig};
use sflow_runtime::engine::{Engine, EngineConfig};
use sflow_runtime::ml::batch::Batch;
use sflow_runtime::store;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn mnist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
}

/// Two real MNIST classifiers (MLP, 1 epoch on 5,000 shuffled training digits, seeds 0 and
/// 1), trained once per test binary (into cargo's scratch directory for tests, so nothing is
/// left in /tmp).
fn models() -> TestResult<(PathBuf, PathBuf)> {
    static M: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    let r = M.get_or_init(|| {
        sflow_ml::set_torch_threads(1);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serving-models");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let train = mnist(&mnist_dir(), Split::Train)
            .map_err(|e| e.to_string())?
            .shuffled(7);
        let mut paths = Vec::new();
        for seed in 0..2u64 {
            let path = dir.join(format!("model-{seed}.pt"));
            let cfg = TrainConfig {
                seed,
                ..TrainConfig::new(Arch::Mlp, 1, 1e-3)
            };
            let start = seed as usize * 5_000;
            let report = train_classifier(&cfg, &train.slice(start, start + 5_000), None, &path)
                .map_err(|e| e.to_string())?;
            eprintln!(
                "trained {} (held-out accuracy {:.3})",
                path.display(),
                report.accuracy
            );
            paths.push(path);
        }
        let b = paths.pop().ok_or("no model")?;
        let a = paths.pop().ok_or("no model")?;
        Ok((a, b))
    });
    match r {
        Ok((a, b)) => Ok((a.clone(), b.clone())),
        Err(e) => Err(e.clone().into()),
    }
}

/// The first `n` MNIST test digits.
fn digits(n: usize) -> TestResult<Dataset> {
    static T: OnceLock<Result<Dataset, String>> = OnceLock::new();
    let t = T.get_or_init(|| mnist(&mnist_dir(), Split::Test).map_err(|e| e.to_string()));
    match t {
        Ok(d) => Ok(d.take(n)),
        Err(e) => Err(e.clone().into()),
    }
}

/// An OIP v2 request for images `from..to` of `d`, as UINT8 pixels, with their keys.
fn infer_body(d: &Dataset, from: usize, to: usize, keys: bool) -> Value {
    let data: Vec<u8> = d.pixels()[from * 784..to * 784]
        .iter()
        .map(|p| (p * 255.0).round() as u8)
        .collect();
    let mut body = json!({
        "inputs": [{"name": "input", "shape": [to - from, 784], "datatype": "UINT8", "data": data}]
    });
    if keys {
        body["parameters"] =
            json!({ "sample_keys": (from..to).map(|i| format!("test:{i}")).collect::<Vec<_>>() });
    }
    body
}

fn labels_of(answer: &Value) -> Vec<i64> {
    answer["outputs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["name"] == "label")
        .and_then(|o| o["data"].as_array())
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

const PROGRAM: &str = r#"
app servetest { namespace = "servetest" }

workflow training {
  param src: string = "none"
  param acc: float = 0.9
  step fit {
    image = "busybox:1.36"
    run = "cp '{{src}}' '{{outputs.model}}' && echo '{\"accuracy\": {{acc}}}' > \"$SFLOW_METRICS\""
    output model: Model
    metric accuracy: ratio
  }
}

service predictor {
  model = training.fit.model
  replicas = 1..4
}

agent planner: Planner { target = predictor }
agent tracker: Tracker { watch = predictor, batch_size = 50 }

agent kind Inbox {
  action take(batch: Batch)
  action note(msg: string)
}
agent inbox: Inbox

trigger new_data: every 50 tracker.new_samples -> inbox.take(tracker.batch)
trigger swap: webhook "/swap" -> planner.replace(predictor, training.fit.model)
trigger up: webhook "/up" -> planner.scale(predictor, +1)

policy measured {
  when predictor.latency.p99 > 1ms
  then inbox.note("latency measured")
}
"#;

fn services_json(state: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(state.join("services.json")).ok()?).ok()
}

async fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> TestResult<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out after {secs}s waiting for: {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn start(p: &Prog, serve: BTreeMap<String, std::net::SocketAddr>) -> TestResult<Engine> {
    let program = sflow_runtime::program::load(&p.file)?;
    let mut cfg = EngineConfig::new(p.state());
    cfg.self_exe = sflow_bin();
    cfg.progress = Arc::new(sflow_runtime::progress::Logs);
    cfg.serve_addrs = serve;
    Ok(Engine::start(program, cfg).await?)
}

async fn train_run(engine: &Engine, src: &Path, acc: &str) -> TestResult<()> {
    let params = BTreeMap::from([
        ("src".to_string(), src.display().to_string()),
        ("acc".to_string(), acc.to_string()),
    ]);
    let id = engine.run_workflow("training", &params, "test")?;
    let row = engine.wait_run(id).await?;
    if row.status != "succeeded" {
        return Err(format!("run {id}: {} {:?}", row.status, row.error).into());
    }
    Ok(())
}

fn signal_f64(engine: &Engine, key: &str) -> Option<f64> {
    engine.signals().get(key).and_then(Value::as_f64)
}

/// A duration signal (`"12ms"`), in milliseconds.
fn signal_ms(engine: &Engine, key: &str) -> Option<u64> {
    engine
        .signals()
        .get(key)
        .and_then(Value::as_str)
        .and_then(|s| s.strip_suffix("ms"))
        .and_then(|n| n.parse().ok())
}

fn signal_i64(engine: &Engine, key: &str) -> Option<i64> {
    engine.signals().get(key).and_then(Value::as_i64)
}

fn free_port() -> TestResult<std::net::SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

const RESIZE_PROGRAM: &str = r#"
app resizetest { namespace = "resizetest" }

workflow training {
  param src: string = "none"
  step fit {
    image = "busybox:1.36"
    run = "cp '{{src}}' '{{outputs.model}}'"
    output model: Model
  }
}

service predictor {
  model = training.fit.model
  replicas = 1..2
  resources { cpu = 1, memory = 1Gi }
}

agent planner: Planner { target = predictor }

policy scale_out {
  when predictor.latency.p95 > 50ms and predictor.replicas < 2
  then planner.scale(predictor, +1)
}

policy grow {
  when predictor.latency.p95 > 50ms and predictor.replicas >= 2
  then planner.resize(predictor, cpu = 2, memory = 4Ki)
}
"#;

/// Latency stays high once the service is at its most replicas: `scale_out` can do no more,
/// `grow` resizes, and the local backend applies it — 2 libtorch threads per worker, and
/// at most 4 KiB × 2 replicas of request pixels waiting (a request of 3 digits, 9,408
/// bytes, is refused; one of 2 is served). A restarted runtime re-applies the resize.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn latency_high_at_max_replicas_resizes_the_workers() -> TestResult {
    let (model_a, _) = models()?;
    let p = Prog::new(RESIZE_PROGRAM);
    let state = p.state();
    let engine = start(&p, BTreeMap::new()).await?;
    let params = BTreeMap::from([("src".to_string(), model_a.display().to_string())]);
    let id = engine.run_workflow("training", &params, "test")?;
    assert_eq!(engine.wait_run(id).await?.status, "succeeded");
    // The declared resources are the workers' limits from the start.
    let first = wait_for(60, "predictor served with its declared limits", || {
        services_json(&state).filter(|v| v["predictor"]["limits"]["threadsPerWorker"] == 1)
    })
    .await?;
    assert_eq!(first["predictor"]["limits"]["queueBytes"], 1u64 << 30);
    let url = first["predictor"]["url"].as_str().ok_or("url")?.to_string();

    // Latency is high: first a replica more, then, at the maximum, more resources.
    engine.set_service_signal("predictor", "latency.p95", &json!("80ms"))?;
    let resized = wait_for(30, "2 workers with 2 threads each", || {
        services_json(&state).filter(|v| {
            v["predictor"]["workers"] == 2 && v["predictor"]["limits"]["threadsPerWorker"] == 2
        })
    })
    .await?;
    assert_eq!(resized["predictor"]["limits"]["queueBytes"], 2 * 4096);
    let decisions = engine.store().with(|c| store::decisions(c, 100))?;
    let grow = decisions
        .iter()
        .find(|d| d.name == "grow")
        .ok_or("grow fired")?;
    assert_eq!(grow.status, "done", "{}", grow.result);
    assert!(
        grow.result
            .contains("resized from cpu 1000m, memory 1Gi to cpu 2000m, memory 4Ki"),
        "{}",
        grow.result
    );
    assert!(decisions
        .iter()
        .any(|d| d.name == "scale_out" && d.status == "done"));
    let events = engine.store().with(|c| store::events(c, 0, 100))?;
    let ev = events
        .iter()
        .find(|e| e.subject == "predictor" && e.name == "resized")
        .ok_or("predictor.resized")?;
    eprintln!("resize: {} ({})", grow.result, ev.payload);

    // The memory budget is enforced on the waiting requests.
    let http = reqwest::Client::new();
    let test = digits(3)?;
    let infer = format!("{url}/v2/models/predictor/infer");
    let r = http
        .post(&infer)
        .json(&infer_body(&test, 0, 3, false))
        .send()
        .await?;
    assert_eq!(r.status(), 503);
    let text = r.text().await?;
    assert!(text.contains("memory limit allows 8192"), "{text}");
    let r = http
        .post(&infer)
        .json(&infer_body(&test, 0, 2, false))
        .send()
        .await?;
    assert_eq!(r.status(), 200, "{}", r.text().await?);

    // A restarted runtime serves with the resized limits (the store keeps them).
    engine.shutdown().await;
    let engine = start(&p, BTreeMap::new()).await?;
    wait_for(60, "the resize re-applied after a restart", || {
        services_json(&state).filter(|v| {
            v["predictor"]["limits"]["threadsPerWorker"] == 2
                && v["predictor"]["limits"]["queueBytes"] == 2 * 4096
        })
    })
    .await?;
    engine.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_service_serves_tracks_swaps_scales_and_comes_back() -> TestResult {
    let (model_a, model_b) = models()?;
    let p = Prog::new(PROGRAM);
    let state = p.state();
    let engine = start(&p, BTreeMap::new()).await?;
    let http = reqwest::Client::new();

    // The first run that produces the model starts serving it.
    train_run(&engine, &model_a, "0.9").await?;
    let first = wait_for(60, "services.json names predictor", || {
        services_json(&state).filter(|v| v["predictor"]["url"].is_string())
    })
    .await?;
    let url = first["predictor"]["url"].as_str().ok_or("url")?.to_string();
    let model_a_id = first["predictor"]["model"]["id"]
        .as_i64()
        .ok_or("model id")?;
    assert_eq!(first["predictor"]["replicas"], 1);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");

    // Real digits, 20 requests of 10 images with their keys: mostly right.
    let test = digits(200)?;
    let truth = test.labels().ok_or("labels")?.to_vec();
    let mut predicted = Vec::new();
    for r in 0..20 {
        let resp = http
            .post(format!("{url}/v2/models/predictor/infer"))
            .json(&infer_body(&test, r * 10, r * 10 + 10, true))
            .send()
            .await?;
        assert_eq!(resp.status(), 200);
        let answer: Value = resp.json().await?;
        assert_eq!(answer["model_version"], model_a_id.to_string());
        predicted.extend(labels_of(&answer));
    }
    let right = predicted
        .iter()
        .zip(&truth)
        .filter(|(p, t)| **p == i64::from(**t))
        .count();
    eprintln!("served model A: {right}/200 test digits right");
    assert_eq!(predicted.len(), 200);
    assert!(right >= 150, "only {right} of 200 digits right");

    // The Tracker's sensors follow the traffic; batches of 50 are written with their keys.
    wait_for(20, "tracker.new_samples = 200 and requests = 20", || {
        (signal_i64(&engine, "tracker.new_samples") == Some(200)
            && signal_i64(&engine, "tracker.requests") == Some(20))
        .then_some(())
    })
    .await?;
    let batch = engine
        .signals()
        .get("tracker.batch")
        .cloned()
        .ok_or("no batch")?;
    assert_eq!(batch["size"], 50);
    let bpath = PathBuf::from(batch["path"].as_str().ok_or("batch path")?);
    assert!(
        bpath.starts_with(state.join("batches/predictor")),
        "{}",
        bpath.display()
    );
    let b = Batch::read(&bpath)?;
    assert_eq!(b.len(), 50);
    let seq: usize = bpath
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("seq")?
        .parse()?;
    assert_eq!(seq, 4, "the fourth batch of 50");
    assert_eq!(b.samples[0].key.as_deref(), Some("test:150"));
    assert_eq!(b.samples[49].key.as_deref(), Some("test:199"));
    for (i, s) in b.samples.iter().enumerate() {
        assert_eq!(s.prediction.map(i64::from), Some(predicted[150 + i]));
    }
    let first_pixels: Vec<u8> = test.pixels()[150 * 784..151 * 784]
        .iter()
        .map(|p| (p * 255.0).round() as u8)
        .collect();
    let back: Vec<u8> = b.images.pixels()[..784]
        .iter()
        .map(|p| (p * 255.0).round() as u8)
        .collect();
    assert_eq!(back, first_pixels, "the batch holds the served image");
    for s in 1..=4 {
        assert!(Batch::read(&state.join(format!("batches/predictor/{s}")))?.len() == 50);
    }

    // `every 50 tracker.new_samples` fired, handing on a written batch.
    let taken = wait_for(20, "the new_data trigger fired", || {
        let rows = engine
            .store()
            .with(|c| store::agent_actions(c, "inbox", 0))
            .ok()?;
        let takes: Vec<_> = rows.into_iter().filter(|r| r.action == "take").collect();
        (!takes.is_empty()).then_some(takes)
    })
    .await?;
    for t in &taken {
        let path = t.args["batch"]["path"].as_str().ok_or("args")?;
        assert_eq!(Batch::read(Path::new(path))?.len(), 50);
    }
    let firings = engine
        .store()
        .with(|c| store::firings_of(c, "trigger", "new_data"))?;
    assert!(
        !firings.is_empty() && firings.len() <= 4,
        "{} firings",
        firings.len()
    );

    // Measured signals reach the board and a policy reacts.
    wait_for(10, "latency and requests signals", || {
        (signal_ms(&engine, "predictor.latency.p99").is_some_and(|v| v > 1)
            && signal_i64(&engine, "predictor.requests") == Some(20))
        .then_some(())
    })
    .await?;
    let p50 = signal_ms(&engine, "predictor.latency.p50").ok_or("p50")?;
    let p95 = signal_ms(&engine, "predictor.latency.p95").ok_or("p95")?;
    let p99 = signal_ms(&engine, "predictor.latency.p99").ok_or("p99")?;
    eprintln!("measured latency (debug build, 10 images a request): p50 {p50} ms, p95 {p95} ms, p99 {p99} ms");
    assert!(p50 <= p95 && p95 <= p99 && p99 < 5000);
    assert_eq!(signal_f64(&engine, "predictor.errors"), Some(0.0));
    for d in engine.store().with(|c| store::decisions(c, 50))? {
        eprintln!(
            "decision: {} {} {} {} {}",
            d.source, d.name, d.action, d.status, d.result
        );
    }
    wait_for(10, "the latency policy fired", || {
        let rows = engine
            .store()
            .with(|c| store::agent_actions(c, "inbox", 0))
            .ok()?;
        rows.iter().any(|r| r.action == "note").then_some(())
    })
    .await?;

    // A second model is registered but not served until the Planner replaces it…
    train_run(&engine, &model_b, "0.95").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        services_json(&state).ok_or("services.json")?["predictor"]["model"]["id"],
        model_a_id
    );
    // …then the swap happens under concurrent load, and no request fails.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let ok = Arc::new(AtomicUsize::new(0));
    let versions = Arc::new(Mutex::new(BTreeSet::new()));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (stop, failures, ok, versions) =
            (stop.clone(), failures.clone(), ok.clone(), versions.clone());
        let (http, url, body) = (
            http.clone(),
            url.clone(),
            infer_body(&test, c * 5, c * 5 + 5, false),
        );
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = http
                    .post(format!("{url}/v2/models/predictor/infer"))
                    .json(&body)
                    .send()
                    .await;
                match r {
                    Ok(resp) if resp.status() == 200 => {
                        if let Ok(v) = resp.json::<Value>().await {
                            if let Some(m) = v["model_version"].as_str() {
                                versions.lock().map(|mut s| s.insert(m.to_string())).ok();
                            }
                        }
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    engine.webhook("/swap", None)?.ok_or("no /swap trigger")?;
    let swapped = wait_for(30, "the service serves model B", || {
        services_json(&state)
            .and_then(|v| v["predictor"]["model"]["id"].as_i64())
            .filter(|id| *id != model_a_id)
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await?;
    }
    let seen = versions.lock().map_err(|_| "poisoned")?.clone();
    eprintln!(
        "hot swap under load: {} requests answered, {} failed, versions seen {seen:?}",
        ok.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed)
    );
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(seen.contains(&model_a_id.to_string()) && seen.contains(&swapped.to_string()));

    // Scale: one more replica is one more worker.
    engine.webhook("/up", None)?.ok_or("no /up trigger")?;
    wait_for(20, "2 workers", || {
        services_json(&state)
            .filter(|v| v["predictor"]["workers"] == 2 && v["predictor"]["replicas"] == 2)
    })
    .await?;
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("sflow_serve_workers{model=\"predictor\"} 2"),
        "{metrics}"
    );

    // Malformed and oversized requests get 4xx; the server survives them.
    let infer = format!("{url}/v2/models/predictor/infer");
    let r = http.post(&infer).body("not json").send().await?;
    assert_eq!(r.status(), 400);
    let mut wrong_keys = infer_body(&test, 0, 2, false);
    wrong_keys["parameters"] = json!({ "sample_keys": ["only-one"] });
    let r = http.post(&infer).json(&wrong_keys).send().await?;
    assert_eq!(r.status(), 400);
    let msg: Value = r.json().await?;
    assert!(
        msg["error"]
            .as_str()
            .is_some_and(|m| m.contains("sample_keys")),
        "{msg}"
    );
    let r = http
        .post(&infer)
        .json(&json!({"inputs": [{"name": "input", "shape": [300, 784], "datatype": "UINT8", "data": vec![0u8; 300 * 784]}]}))
        .send()
        .await?;
    assert_eq!(r.status(), 413, "300 images (the limit is 256)");
    let r = http.post(&infer).body(vec![b' '; 9 << 20]).send().await?;
    assert_eq!(r.status(), 413, "a 9 MiB body");
    let r = http
        .post(format!("{url}/v2/models/nosuch/infer"))
        .json(&infer_body(&test, 0, 1, false))
        .send()
        .await?;
    assert_eq!(r.status(), 404);
    let r = http
        .post(&infer)
        .json(&infer_body(&test, 0, 3, false))
        .send()
        .await?;
    assert_eq!(r.status(), 200, "still serving");
    let samples_before = signal_i64(&engine, "tracker.new_samples").ok_or("new_samples")?;

    // Stop: the file goes; restart (pinned address): serving comes back from the store.
    engine.shutdown().await;
    wait_for(10, "services.json removed", || {
        (!state.join("services.json").exists()).then_some(())
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pinned = free_port()?;
    let engine = start(&p, BTreeMap::from([("predictor".to_string(), pinned)])).await?;
    let back = wait_for(60, "serving after the restart", || {
        services_json(&state).filter(|v| v["predictor"]["workers"] == 2)
    })
    .await?;
    assert_eq!(back["predictor"]["url"], format!("http://{pinned}"));
    assert_eq!(back["predictor"]["model"]["id"], swapped);
    let r = http
        .post(format!("http://{pinned}/v2/models/predictor/infer"))
        .json(&infer_body(&test, 0, 10, false))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await?;
    assert_eq!(answer["model_version"], swapped.to_string());
    // The Tracker's counter continues from where it was.
    let before = samples_before;
    wait_for(20, "new_samples continues after the restart", || {
        signal_i64(&engine, "tracker.new_samples")
            .filter(|n| *n >= before + 10)
            .map(|_| ())
    })
    .await?;
    engine.shutdown().await;
    Ok(())
}

/// Kills a child process when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn term(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sflow_binary_serves_after_a_restart_and_shows_it_in_status() -> TestResult {
    let (model_a, _) = models()?;
    let p = Prog::new(PROGRAM);
    let state = p.state();
    let src = format!("src={}", model_a.display());
    let out = p.run(&["--workflow", "training", "--param", &src, "--no-api"]);
    assert!(out.status.success());
    assert!(
        !state.join("services.json").exists(),
        "the file goes when the runtime stops"
    );
    // The app, with the service pinned: serving comes back from the store.
    let pinned = free_port()?;
    let child = Command::new(sflow_bin())
        .arg("run")
        .arg(&p.file)
        .arg("--serve")
        .arg(format!("predictor={pinned}"))
        .env("SFLOW_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let child = Kill(child);
    let v = wait_for(60, "services.json of the app", || services_json(&state)).await?;
    assert_eq!(v["predictor"]["url"], format!("http://{pinned}"));
    let status = Command::new(sflow_bin())
        .args(["status", "--state-dir"])
        .arg(&state)
        .output()?;
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains(&format!("serving on http://{pinned}")),
        "sflow status:\n{text}"
    );
    // The control API's status says the same.
    let api = wait_for(20, "api.json", || {
        serde_json::from_slice::<Value>(&std::fs::read(state.join("api.json")).ok()?).ok()
    })
    .await?;
    let token = std::fs::read_to_string(state.join("token"))?;
    let http = reqwest::Client::new();
    let st: Value = http
        .get(format!("{}/v1/status", api["url"].as_str().ok_or("url")?))
        .bearer_auth(token.trim())
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        st["services"][0]["serving"]["url"],
        format!("http://{pinned}")
    );
    let test = digits(10)?;
    let r = http
        .post(format!("http://{pinned}/v2/models/predictor/infer"))
        .json(&infer_body(&test, 0, 10, true))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    term(&child.0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut child = child;
    loop {
        if let Some(s) = child.0.try_wait()? {
            assert!(s.success(), "sflow run exited with {s}");
            break;
        }
        if Instant::now() > deadline {
            return Err("sflow run did not stop on SIGTERM".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!state.join("services.json").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sflow_serve_waits_for_its_model_and_swaps_when_the_file_changes() -> TestResult {
    let (model_a, model_b) = models()?;
    let dir = tempfile::tempdir()?;
    let served = dir.path().join("model.pt");
    let mut child = Command::new(sflow_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--name",
            "digits",
            "--replicas",
            "2",
        ])
        .args(["--watch-interval", "100ms"])
        .env("SFLOW_MODEL", &served)
        .env("SFLOW_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("stderr")?;
    let child = Kill(child);
    // "serving `digits` on http://127.0.0.1:PORT (…"
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("on http://").nth(1) {
                let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(30))?;
    let url = format!("http://{addr}");
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{url}/v2/health/live"))
            .send()
            .await?
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{url}/v2/health/ready"))
            .send()
            .await?
            .status(),
        503
    );
    let test = digits(20)?;
    let infer = format!("{url}/v2/models/digits/infer");
    assert_eq!(
        http.post(&infer)
            .json(&infer_body(&test, 0, 5, false))
            .send()
            .await?
            .status(),
        503,
        "not ready without a model"
    );
    // Put model A in place (atomically): it becomes ready with it.
    let put = |src: &Path| -> TestResult<String> {
        let tmp = dir.path().join("incoming.pt");
        std::fs::copy(src, &tmp)?;
        std::fs::rename(&tmp, &served)?;
        let bytes = std::fs::read(&served)?;
        use sha2::Digest;
        let hex: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(hex[..12].to_string())
    };
    let va = put(&model_a)?;
    let mut version = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while version != va {
        if Instant::now() > deadline {
            return Err("model A was not loaded".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = http
            .post(&infer)
            .json(&infer_body(&test, 0, 20, false))
            .send()
            .await?;
        if r.status() == 200 {
            let v: Value = r.json().await?;
            version = v["model_version"].as_str().unwrap_or_default().to_string();
            let right = labels_of(&v)
                .iter()
                .zip(test.labels().ok_or("labels")?)
                .filter(|(p, t)| **p == i64::from(**t))
                .count();
            assert!(right >= 14, "{right}/20 right");
        }
    }
    // Replace the file: the next requests get model B, none fails.
    let vb = put(&model_b)?;
    assert_ne!(va, vb);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .post(&infer)
            .json(&infer_body(&test, 0, 5, false))
            .send()
            .await?;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await?;
        if v["model_version"] == vb.as_str() {
            break;
        }
        if Instant::now() > deadline {
            return Err("model B was not swapped in".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("sflow_serve_workers{model=\"digits\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sflow_serve_model_swaps_total{model=\"digits\"} 2"),
        "{metrics}"
    );
    drop(child);
    Ok(())
}
