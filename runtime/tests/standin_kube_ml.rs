//! The cluster's ML loop against the Kubernetes stand-in (tests/standin/kube_standin.py, PyPI
//! kmock): the real `sflow runtime` (features `ml` and `kubernetes`) and two real `sflow serve`
//! processes — the replicas of a service, serving a real TorchScript MNIST model — that report
//! to it as a cluster's service pods do (`SFLOW_RUNTIME_URL`, the ingest token file).
//!
//! It checks that real Open Inference Protocol v2 requests to both replicas reach the
//! runtime's Tracker (its sensors count every replica's requests and samples, and a batch of
//! the served images is written on the artifacts volume), that the measured latency arrives as
//! the service's signal and makes the latency policy move the HorizontalPodAutoscaler's floor,
//! that the ingest token allows reports and nothing else, and that a `Workflow` created as a
//! CronWorkflow creates it (with the CronWorkflow's labels) is recorded as a run of that
//! trigger, followed (not created again) and its metric and model recorded.
//!
//! Ignored by a plain `cargo test`; scripts/test-all.sh runs it:
//! `cargo test -p sflow-runtime --features ml,kubernetes --test standin_kube_ml -- --ignored`.
#![cfg(all(feature = "kubernetes", feature = "ml"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ::kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use ::kube::Api;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use serde_json::{json, Value};
use sflow_ml::data::{mnist, Split};
use sflow_ml::{train_classifier, Arch, Dataset, TrainConfig};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const PROGRAM: &str = r#"
app loop { namespace = "loop" }

workflow training {
  param acc: float = 0.8
  step fit {
    image = "python:3.12-slim"
    run = "python train.py --acc {{acc}} --out {{outputs.model}}"
    output model: Model
    metric accuracy: ratio
  }
}

service predictor {
  model = training.fit.model
  replicas = 1..3
}

agent planner: Planner { target = predictor }
agent tracker: Tracker { watch = predictor, batch_size = 20 }

trigger nightly: schedule "0 2 * * *" -> run training with { acc = 0.7 }

policy hot {
  when predictor.latency.p95 > 0ms
  then planner.scale(predictor, +1)
  cooldown 1h
}
"#;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> TestResult<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn kubeconfig(path: &Path, server: &str, token: &str) -> TestResult {
    std::fs::write(
        path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {server}\n\
             users:\n- name: u\n  user:\n    token: {token}\n\
             contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: u\n    namespace: loop\n\
             current-context: standin\n"
        ),
    )?;
    Ok(())
}

/// A child process killed (and reaped) on drop; its output goes to `log`.
struct Proc {
    child: Child,
    _stdin: Option<ChildStdin>,
    log: PathBuf,
    name: String,
}

impl Proc {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::env::var_os("SFLOW_TEST_LOGS").is_some() {
            eprintln!("--- {} ---\n{}", self.name, self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The stand-in: (process, URL).
fn standin(dir: &Path) -> TestResult<(Proc, String)> {
    let python = std::env::var_os("SFLOW_KMOCK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv-kmock/bin/python"));
    if !python.exists() {
        return Err(format!("{} not found: run scripts/setup-kmock.sh", python.display()).into());
    }
    let log = dir.join("standin.log");
    let mut child = Command::new(&python)
        .arg(root().join("tests/standin/kube_standin.py"))
        .args(["--deadline", "300", "--watch-max", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let p = Proc {
        child,
        _stdin: stdin,
        log,
        name: "standin".into(),
    };
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    let url = line
        .trim()
        .strip_prefix("READY ")
        .ok_or_else(|| format!("the stand-in said {line:?}"))?
        .to_string();
    Ok((p, url))
}

/// A real MNIST classifier (MLP, 1 epoch on 2,000 training digits), trained once into
/// cargo's scratch directory for tests.
fn trained_model() -> TestResult<PathBuf> {
    sflow_ml::set_torch_threads(1);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("standin-kube-ml");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("model.pt");
    if !path.exists() {
        let train = mnist(&root().join("data/mnist"), Split::Train)?.shuffled(3);
        let report = train_classifier(
            &TrainConfig::new(Arch::Mlp, 1, 1e-3),
            &train.slice(0, 2_000),
            None,
            &path,
        )?;
        eprintln!(
            "trained {} (accuracy {:.3})",
            path.display(),
            report.accuracy
        );
    }
    Ok(path)
}

/// An OIP v2 request for images `from..to` of `d` (UINT8 pixels).
fn infer_body(d: &Dataset, from: usize, to: usize) -> Value {
    let data: Vec<u8> = d.pixels()[from * 784..to * 784]
        .iter()
        .map(|p| (p * 255.0).round() as u8)
        .collect();
    json!({"inputs": [{"name": "input", "shape": [to - from, 784], "datatype": "UINT8", "data": data}]})
}

/// A signal's number (ints, floats, durations in seconds) from `GET /v1/status`.
fn number(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| {
        v.as_str()?
            .strip_suffix("ms")?
            .parse::<f64>()
            .ok()
            .map(|ms| ms / 1000.0)
    })
}

struct Control {
    url: String,
    token: String,
    http: reqwest::Client,
}

impl Control {
    async fn get(&self, path: &str) -> TestResult<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok(r.json().await?)
    }

    async fn signal(&self, key: &str) -> TestResult<Option<f64>> {
        Ok(number(
            &self.get("/v1/status").await?["live"]["signals"][key],
        ))
    }

    /// Waits until `key` satisfies `ok`.
    async fn wait_signal(&self, key: &str, ok: impl Fn(f64) -> bool, rt: &Proc) -> TestResult<f64> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(v) = self.signal(key).await?.filter(|v| ok(*v)) {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "signal {key} is {:?}: {}\n{}",
                    self.signal(key).await?,
                    self.get("/v1/status").await?["live"]["signals"],
                    rt.log()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn workflows(client: &::kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "loop",
        &::kube::core::ApiResource::from_gvk_with_plural(
            &::kube::core::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Workflow"),
            "workflows",
        ),
    )
}

async fn hpa_floor(client: &::kube::Client) -> TestResult<Option<i32>> {
    let h: HorizontalPodAutoscaler = Api::namespaced(client.clone(), "loop")
        .get("predictor")
        .await?;
    Ok(h.spec.and_then(|s| s.min_replicas))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kubernetes stand-in: scripts/setup-kmock.sh (scripts/test-all.sh runs it)"]
async fn standin_serving_pods_feed_the_tracker_and_signals_and_cron_runs_are_recorded() -> TestResult
{
    let model = trained_model()?;
    let digits = mnist(&root().join("data/mnist"), Split::Test)?.take(100);
    let dir = tempfile::tempdir()?;
    let (_standin, url) = standin(dir.path())?;
    let (test_config, runtime_config) = (dir.path().join("t.kc"), dir.path().join("r.kc"));
    kubeconfig(&test_config, &url, "test-token")?;
    kubeconfig(&runtime_config, &url, "runtime-token")?;
    let cluster = sflow_kube::connect(&sflow_kube::ClusterOptions {
        kubeconfig: Some(test_config.clone()),
        context: None,
    })
    .await?;
    let client = cluster.client.clone();
    let plan = sflow_runtime::program::plan_of_source("loop.sflow", PROGRAM)?;
    let build = sflow_emit::build(&plan, &sflow_emit::Options::default())?;
    let no_wait = sflow_kube::ApplyOptions {
        wait: None,
        ..sflow_kube::ApplyOptions::default()
    };
    sflow_kube::apply(&cluster, &build.manifests, &no_wait, &mut |_: &str| {}).await?;
    let plan_path = dir.path().join("plan/plan.json");
    std::fs::create_dir_all(plan_path.parent().ok_or("parent")?)?;
    std::fs::write(&plan_path, &build.plan_json)?;
    let artifacts = dir.path().join("artifacts");
    std::fs::create_dir_all(&artifacts)?;

    // The runtime, leading alone.
    let port = free_port()?;
    let rt_url = format!("http://127.0.0.1:{port}");
    let rt_log = dir.path().join("runtime.log");
    let rt = Proc {
        child: Command::new(env!("CARGO_BIN_EXE_sflow"))
            .args(["runtime", "--plan"])
            .arg(&plan_path)
            .env("KUBECONFIG", &runtime_config)
            .env("SFLOW_APP", "loop")
            .env("SFLOW_NAMESPACE", "loop")
            .env("SFLOW_POD_NAME", "runtime-a")
            .env("SFLOW_LEASE", "loop-runtime")
            .env("SFLOW_LISTEN", format!("127.0.0.1:{port}"))
            .env("SFLOW_PLAN_CONFIGMAP", "loop-plan")
            .env("SFLOW_ARTIFACTS", &artifacts)
            .env("SFLOW_LEASE_DURATION", "3s")
            .env("SFLOW_LOG", "info")
            .env_remove("SFLOW_STATE_DIR")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&rt_log)?)
            .stderr(std::fs::File::options().append(true).open(&rt_log)?)
            .spawn()?,
        _stdin: None,
        log: rt_log,
        name: "runtime".into(),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let leader = match http.get(format!("{rt_url}/readyz")).send().await {
            Ok(r) => r.json::<Value>().await.ok().map(|v| v["leader"] == true),
            Err(_) => None,
        };
        if leader == Some(true) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the runtime did not lead:\n{}",
            rt.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let api = Control {
        url: rt_url.clone(),
        token: std::fs::read_to_string(artifacts.join("sflow/token"))?
            .trim()
            .to_string(),
        http: http.clone(),
    };
    let token_file = artifacts.join("sflow/ingest/token");
    let ingest_token = std::fs::read_to_string(&token_file)?.trim().to_string();
    assert!(ingest_token.len() >= 32 && ingest_token != api.token);

    // 1. A run of the `nightly` CronWorkflow: the test creates its Workflow as Argo's cron
    //    controller would, with the CronWorkflow's `workflowMetadata` labels.
    let cron = build
        .manifests
        .iter()
        .find(|m| m.kind == "CronWorkflow" && m.name == "nightly")
        .ok_or("no CronWorkflow nightly")?;
    let cron: Value = serde_yaml_ng::from_str(&cron.yaml)?;
    let wf_name = "nightly-1767232800";
    let wf: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {
            "name": wf_name, "namespace": "loop",
            "labels": cron["spec"]["workflowMetadata"]["labels"],
            "annotations": {"workflows.argoproj.io/scheduled-time": "2026-01-01T02:00:00Z"},
        },
        "spec": cron["spec"]["workflowSpec"],
    }))?;
    workflows(&client)
        .create(&PostParams::default(), &wf)
        .await?;
    // Argo runs it: the step writes the model on the volume and reports its metric.
    let reported = format!("/artifacts/runs/{wf_name}/fit/outputs/model");
    let local = artifacts.join(format!("runs/{wf_name}/fit/outputs/model"));
    std::fs::create_dir_all(local.parent().ok_or("parent")?)?;
    std::fs::copy(&model, &local)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    workflows(&client)
        .patch(wf_name, &PatchParams::default(), &Patch::Merge(&json!({"status": {
            "phase": "Succeeded",
            "nodes": {
                wf_name: {"type": "DAG", "templateName": "Main", "phase": "Succeeded"},
                format!("{wf_name}-1"): {"type": "Pod", "templateName": "fit", "phase": "Succeeded",
                    "startedAt": "2026-01-01T02:00:05Z",
                    "outputs": {"exitCode": "0", "parameters": [
                        {"name": "output-model", "value": reported},
                        {"name": "sflow-metrics", "value": "{\"accuracy\": 0.91}"}]}}
            }
        }})))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let run = loop {
        let runs = api.get("/v1/runs").await?;
        if let Some(r) = runs
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["status"] != "running")
        {
            break api.get(&format!("/v1/runs/{}", r["id"])).await?;
        }
        assert!(
            Instant::now() < deadline,
            "no recorded run: {runs}\n{}",
            rt.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(run["status"], "succeeded", "{run}\n{}", rt.log());
    assert_eq!(run["origin"], "trigger:nightly", "{run}");
    assert!(run["metrics"].to_string().contains("0.91"), "{run}");
    let models = api.get("/v1/models").await?;
    assert_eq!(models[0]["path"], reported.as_str(), "{models}");
    // It followed Argo's Workflow: it created none of its own.
    let all = workflows(&client).list(&ListParams::default()).await?;
    assert_eq!(
        all.items.len(),
        1,
        "{:?}",
        all.items
            .iter()
            .map(|w| w.metadata.name.clone())
            .collect::<Vec<_>>()
    );
    let metrics = http
        .get(format!("{rt_url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("sflow_runtime_workflows_adopted_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sflow_runtime_workflows_created_total 0"),
        "{metrics}"
    );
    assert_eq!(
        api.signal("training.fit.accuracy").await?,
        Some(0.91),
        "{}",
        api.get("/v1/status").await?["live"]["signals"]
    );

    // 2. Two replicas of the service's server, reporting as the manifests configure them.
    let mut servers = Vec::new();
    for replica in ["predictor-a", "predictor-b"] {
        let p = free_port()?;
        let log = dir.path().join(format!("{replica}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_sflow"))
            .args(["serve", "--listen"])
            .arg(format!("127.0.0.1:{p}"))
            .env("SFLOW_MODEL", &model)
            .env("SFLOW_SERVICE", "predictor")
            .env("SFLOW_RUNTIME_URL", &rt_url)
            .env("SFLOW_RUNTIME_TOKEN_FILE", &token_file)
            .env("HOSTNAME", replica)
            .env("SFLOW_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::options().append(true).open(&log)?)
            .spawn()?;
        servers.push((
            format!("http://127.0.0.1:{p}"),
            Proc {
                child,
                _stdin: None,
                log,
                name: replica.into(),
            },
        ));
    }
    for (url, p) in &servers {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http
            .get(format!("{url}/v2/health/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                Instant::now() < deadline,
                "{} not ready:\n{}",
                p.name,
                p.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Real requests: 30 to each replica, 2 digits each (120 samples in all).
    let mut answered = 0;
    for i in 0..30 {
        for (url, _) in &servers {
            let from = (i * 2) % 98;
            let r = http
                .post(format!("{url}/v2/models/predictor/infer"))
                .json(&infer_body(&digits, from, from + 2))
                .send()
                .await?;
            assert!(r.status().is_success(), "{}", r.text().await?);
            answered += 1;
        }
    }
    assert_eq!(answered, 60);

    // The Tracker saw every replica's requests and samples; the service's `requests` is their sum.
    api.wait_signal("tracker.requests", |v| v == 60.0, &rt)
        .await?;
    api.wait_signal("tracker.new_samples", |v| v == 120.0, &rt)
        .await?;
    api.wait_signal("predictor.requests", |v| v == 60.0, &rt)
        .await?;
    // Six batches of 20 samples on the volume, each a real Batch of the served images.
    let batch_dir = artifacts.join("sflow/batches/predictor");
    let batch = sflow_runtime::ml::batch::Batch::read(&batch_dir.join("1"))?;
    assert_eq!(batch.len(), 20);
    assert!(batch.samples.iter().all(|s| s.prediction.is_some()));
    let written = std::fs::read_dir(&batch_dir)?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u64>().is_ok())
        .count();
    assert_eq!(written, 6);
    let status = api.get("/v1/status").await?;
    assert!(
        status["live"]["signals"]["tracker.batch"]
            .to_string()
            .contains("batches/predictor/"),
        "{}",
        status["live"]["signals"]
    );
    // The measured latency arrived, and the latency policy moved the autoscaler's floor.
    let p95 = api
        .wait_signal("predictor.latency.p95", |v| v > 0.0, &rt)
        .await?;
    eprintln!(
        "predictor.latency.p95 from the replicas' reports: {:.2} ms",
        p95 * 1000.0
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while hpa_floor(&client).await? != Some(2) {
        assert!(
            Instant::now() < deadline,
            "the HPA's floor stayed {:?}\n{}",
            hpa_floor(&client).await?,
            rt.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = http
        .get(format!("{rt_url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("sflow_runtime_report_records_total 60"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sflow_runtime_report_records_dropped_total 0"),
        "{metrics}"
    );

    // The ingest token allows reports, nothing else; without a token, no report.
    let r = http
        .get(format!("{rt_url}/v1/status"))
        .bearer_auth(&ingest_token)
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .post(format!("{rt_url}/v1/services/predictor/report"))
        .json(&json!({"replica": "x", "window": {"requests": 0, "server_errors": 0, "latency": {"samples": 0, "p50": 0.0, "p95": 0.0, "p99": 0.0}}}))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 401);
    let r = http
        .post(format!("{rt_url}/v1/services/nosuch/report"))
        .bearer_auth(&ingest_token)
        .json(&json!({"replica": "x", "window": {"requests": 0, "server_errors": 0, "latency": {"samples": 0, "p50": 0.0, "p95": 0.0, "p99": 0.0}}}))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 404);
    for (_, p) in &servers {
        assert!(p.log().contains("reporting"), "{}", p.log());
    }
    Ok(())
}
