//! `sflow runtime` against the Kubernetes stand-in (tests/standin/kube_standin.py, PyPI kmock):
//! the real binary, talking to an API server over HTTP with the kube client. The test plays
//! Argo (it writes the Workflows' status and output parameters, and the model files on the
//! artifacts volume) and plays the services' latency; the runtime does everything else.
//!
//! Ignored by a plain `cargo test` (it needs scripts/setup-kmock.sh); scripts/test-all.sh runs
//! it: `cargo test -p sflow-runtime --features kubernetes --test standin_kube -- --ignored`.
#![cfg(feature = "kubernetes")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ::kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use ::kube::Api;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use serde_json::{json, Value};
use std::collections::BTreeSet;
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
    retry 1
  }
}

service predictor {
  model = training.fit.model
  replicas = 1..3
}

agent planner: Planner { target = predictor }

policy better {
  when training.fit.accuracy > predictor.model.accuracy
  then planner.replace(predictor, training.fit.model)
}

policy hot {
  when predictor.latency.p95 > 50ms
  then planner.scale(predictor, +1)
  cooldown 1h
}

policy grow {
  when predictor.latency.p95 > 50ms
  then planner.resize(predictor, cpu = 2, memory = 4Gi)
  cooldown 1h
}
"#;

/// The token the runtime's kubeconfig carries (the test's own requests carry another), so the
/// stand-in's request log tells the runtime's requests apart.
const RUNTIME_TOKEN: &str = "runtime-token";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
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

/// The stand-in as a child process (killed on drop; it also exits when its stdin closes).
struct Standin {
    child: Child,
    _stdin: Option<ChildStdin>,
    dir: tempfile::TempDir,
    test_config: PathBuf,
    runtime_config: PathBuf,
    log: PathBuf,
}

impl Standin {
    fn start() -> TestResult<Standin> {
        let python = std::env::var_os("SFLOW_KMOCK_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join(".venv-kmock/bin/python"));
        if !python.exists() {
            return Err(
                format!("{} not found: run scripts/setup-kmock.sh", python.display()).into(),
            );
        }
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("requests.jsonl");
        let mut child = Command::new(&python)
            .arg(root().join("tests/standin/kube_standin.py"))
            .args(["--deadline", "300", "--watch-max", "2", "--request-log"])
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Some(url) = line.trim().strip_prefix("READY ").map(str::to_string) else {
            let _ = child.kill();
            return Err(format!("the stand-in said {line:?}").into());
        };
        let test_config = dir.path().join("test.kubeconfig");
        let runtime_config = dir.path().join("runtime.kubeconfig");
        kubeconfig(&test_config, &url, "test-token")?;
        kubeconfig(&runtime_config, &url, RUNTIME_TOKEN)?;
        Ok(Standin {
            child,
            _stdin: stdin,
            dir,
            test_config,
            runtime_config,
            log,
        })
    }

    async fn client(&self) -> TestResult<::kube::Client> {
        let cluster = sflow_kube::connect(&sflow_kube::ClusterOptions {
            kubeconfig: Some(self.test_config.clone()),
            context: None,
        })
        .await?;
        Ok(cluster.client)
    }

    /// The runtime's requests so far (verb, group, resource, name).
    fn runtime_requests(&self) -> TestResult<Vec<Value>> {
        let text = std::fs::read_to_string(&self.log)?;
        let mut out = Vec::new();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line)?;
            if v["token"] == RUNTIME_TOKEN {
                out.push(v);
            }
        }
        Ok(out)
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `sflow runtime` process (a replica).
struct Runtime {
    child: Child,
    url: String,
    name: String,
    log: PathBuf,
}

impl Runtime {
    fn start(standin: &Standin, name: &str, plan: &Path, artifacts: &Path) -> TestResult<Runtime> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = standin.dir.path().join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = Command::new(env!("CARGO_BIN_EXE_sflow"))
            .args(["runtime", "--plan"])
            .arg(plan)
            .env("KUBECONFIG", &standin.runtime_config)
            .env("SFLOW_APP", "loop")
            .env("SFLOW_NAMESPACE", "loop")
            .env("SFLOW_POD_NAME", name)
            .env("SFLOW_LEASE", "loop-runtime")
            .env("SFLOW_LISTEN", format!("127.0.0.1:{port}"))
            .env("SFLOW_PLAN_CONFIGMAP", "loop-plan")
            .env("SFLOW_ARTIFACTS", artifacts)
            .env("SFLOW_LEASE_DURATION", "3s")
            .env("SFLOW_LOG", "info")
            .env_remove("SFLOW_STATE_DIR")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        Ok(Runtime {
            child,
            url: format!("http://127.0.0.1:{port}"),
            name: name.to_string(),
            log,
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/readyz` says whether this replica leads.
    async fn wait_ready(&self, leader: bool, within: Duration) -> TestResult {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + within;
        loop {
            if let Ok(r) = http.get(format!("{}/readyz", self.url)).send().await {
                if let Ok(v) = r.json::<Value>().await {
                    if v["leader"] == leader {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not become ready with leader={leader}:\n{}",
                    self.name,
                    self.log()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn terminate(&mut self) -> TestResult<i32> {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id())?).ok_or("pid")?;
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)?;
        let status = self.child.wait()?;
        Ok(status.code().unwrap_or(-1))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if std::env::var_os("SFLOW_TEST_LOGS").is_some() {
            eprintln!("--- {} ---\n{}", self.name, self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The control API of a replica.
struct ControlApi {
    url: String,
    token: String,
    http: reqwest::Client,
}

impl ControlApi {
    fn new(rt: &Runtime, artifacts: &Path) -> TestResult<ControlApi> {
        Ok(ControlApi {
            url: rt.url.clone(),
            token: std::fs::read_to_string(artifacts.join("sflow/token"))?
                .trim()
                .to_string(),
            http: reqwest::Client::new(),
        })
    }

    async fn get(&self, path: &str) -> TestResult<(u16, Value)> {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok((r.status().as_u16(), r.json().await.unwrap_or(Value::Null)))
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> TestResult<Value> {
        let r = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("{path}: {status} {v}").into());
        }
        Ok(v)
    }

    async fn start_run(&self, acc: &str) -> TestResult<i64> {
        let v = self
            .send(
                reqwest::Method::POST,
                "/v1/runs",
                json!({"workflow": "training", "params": {"acc": acc}}),
            )
            .await?;
        v["run"]
            .as_i64()
            .ok_or_else(|| format!("no run in {v}").into())
    }

    async fn wait_run(&self, id: i64, within: Duration) -> TestResult<Value> {
        let deadline = Instant::now() + within;
        loop {
            let (_, v) = self.get(&format!("/v1/runs/{id}")).await?;
            if v["status"] != "running" && !v["status"].is_null() {
                return Ok(v);
            }
            if Instant::now() > deadline {
                return Err(format!("run {id} did not finish: {v}").into());
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

/// Waits for the Workflow of store run `run` and returns it.
async fn wait_workflow(client: &::kube::Client, run: i64) -> TestResult<DynamicObject> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = workflows(client)
            .list(&ListParams::default().labels(&format!("sflow.dev/run-id={run}")))
            .await?;
        if let Some(w) = list.items.into_iter().next() {
            return Ok(w);
        }
        if Instant::now() > deadline {
            return Err(format!("no Workflow for run {run}").into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Plays Argo: a failed first attempt (when `fail_first`), then a successful one that wrote
/// its model on the artifacts volume and reported `accuracy`.
async fn play_argo(
    client: &::kube::Client,
    wf: &DynamicObject,
    artifacts: &Path,
    acc: f64,
    fail_first: bool,
) -> TestResult<String> {
    let name = wf.metadata.name.clone().ok_or("no name")?;
    let api = workflows(client);
    let reported = format!("/artifacts/runs/{name}/fit/outputs/model");
    let local = artifacts.join(format!("runs/{name}/fit/outputs/model"));
    let patch = |v: Value| {
        let (api, name) = (api.clone(), name.clone());
        async move {
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&v))
                .await
                .map(|_| ())
        }
    };
    let mut nodes = serde_json::Map::new();
    nodes.insert(
        name.clone(),
        json!({"type": "DAG", "templateName": "Main", "phase": "Running"}),
    );
    nodes.insert(
        format!("{name}-r"),
        json!({"type": "Retry", "templateName": "fit", "phase": "Running"}),
    );
    if fail_first {
        nodes.insert(format!("{name}-1"), json!({"type": "Pod", "templateName": "fit", "phase": "Running", "startedAt": "2026-01-01T00:00:01Z"}));
        patch(json!({"status": {"phase": "Running", "nodes": nodes}})).await?;
        // Longer than the stand-in lets a watch live: the runtime must resume its watch.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        nodes.insert(format!("{name}-1"), json!({"type": "Pod", "templateName": "fit", "phase": "Failed", "message": "OOMKilled (exit code 137)", "startedAt": "2026-01-01T00:00:01Z", "outputs": {"exitCode": "137"}}));
        patch(json!({"status": {"phase": "Running", "nodes": nodes}})).await?;
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    std::fs::create_dir_all(local.parent().ok_or("parent")?)?;
    std::fs::write(&local, format!("model trained to {acc}"))?;
    nodes.insert(format!("{name}-2"), json!({"type": "Pod", "templateName": "fit", "phase": "Succeeded", "startedAt": "2026-01-01T00:00:09Z",
        "outputs": {"exitCode": "0", "parameters": [
            {"name": "output-model", "value": reported},
            {"name": "sflow-metrics", "value": format!("{{\"accuracy\": {acc}}}")}]}}));
    nodes.insert(
        format!("{name}-r"),
        json!({"type": "Retry", "templateName": "fit", "phase": "Succeeded"}),
    );
    nodes.insert(
        name.clone(),
        json!({"type": "DAG", "templateName": "Main", "phase": "Succeeded"}),
    );
    patch(json!({"status": {"phase": "Succeeded", "nodes": nodes}})).await?;
    Ok(reported)
}

async fn served_model(client: &::kube::Client) -> TestResult<Option<String>> {
    let d: Deployment = Api::namespaced(client.clone(), "loop")
        .get("predictor")
        .await?;
    Ok(d.spec
        .and_then(|s| s.template.spec)
        .and_then(|p| p.containers.into_iter().next())
        .and_then(|c| c.env)
        .and_then(|env| env.into_iter().find(|e| e.name == "SFLOW_MODEL"))
        .and_then(|e| e.value))
}

/// The service container's cpu and memory, when its requests equal its limits.
async fn container_resources(client: &::kube::Client) -> TestResult<Option<(String, String)>> {
    let d: Deployment = Api::namespaced(client.clone(), "loop")
        .get("predictor")
        .await?;
    let r = d
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|p| p.containers.into_iter().next())
        .and_then(|c| c.resources);
    let pick =
        |m: Option<
            &std::collections::BTreeMap<
                String,
                k8s_openapi::apimachinery::pkg::api::resource::Quantity,
            >,
        >| { m.and_then(|m| Some((m.get("cpu")?.0.clone(), m.get("memory")?.0.clone()))) };
    let (req, lim) = match &r {
        Some(r) => (pick(r.requests.as_ref()), pick(r.limits.as_ref())),
        None => (None, None),
    };
    Ok(if req == lim { req } else { None })
}

async fn wait_served(client: &::kube::Client, path: &str, rt: &Runtime) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(20);
    while served_model(client).await?.as_deref() != Some(path) {
        if Instant::now() > deadline {
            return Err(format!(
                "predictor does not serve {path}: {:?}\n{}",
                served_model(client).await?,
                rt.log()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

async fn hpa_floor(client: &::kube::Client) -> TestResult<Option<i32>> {
    let h: HorizontalPodAutoscaler = Api::namespaced(client.clone(), "loop")
        .get("predictor")
        .await?;
    Ok(h.spec.and_then(|s| s.min_replicas))
}

/// Is `req` allowed by one of the Role's rules?
fn allowed(rules: &[Value], req: &Value) -> bool {
    rules.iter().any(|r| rule_allows(r, req))
}

fn rule_allows(rule: &Value, req: &Value) -> bool {
    let has = |field: &str, v: &str| {
        rule[field]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == v))
    };
    let verb = req["verb"].as_str().unwrap_or("");
    let resource = match req["subresource"].as_str() {
        Some(s) => format!("{}/{s}", req["resource"].as_str().unwrap_or("")),
        None => req["resource"].as_str().unwrap_or("").to_string(),
    };
    let names_ok = match rule["resourceNames"].as_array() {
        None => true,
        // RBAC cannot limit create, list or watch by name.
        Some(names) => {
            !matches!(verb, "create" | "list" | "watch")
                && req["name"]
                    .as_str()
                    .is_some_and(|n| names.iter().any(|x| x == n))
        }
    };
    has("apiGroups", req["group"].as_str().unwrap_or(""))
        && has("resources", &resource)
        && has("verbs", verb)
        && names_ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Kubernetes stand-in: scripts/setup-kmock.sh (scripts/test-all.sh runs it)"]
async fn standin_runtime_runs_argo_workflows_serves_scales_and_acts_once_across_replicas(
) -> TestResult {
    let standin = Standin::start()?;
    let client = standin.client().await?;
    // The app, as `sflowc apply` puts it on the cluster.
    let plan = sflow_runtime::program::plan_of_source("loop.sflow", PROGRAM)?;
    let build = sflow_emit::build(&plan, &sflow_emit::Options::default())?;
    let cluster = sflow_kube::connect(&sflow_kube::ClusterOptions {
        kubeconfig: Some(standin.test_config.clone()),
        context: None,
    })
    .await?;
    let no_wait = sflow_kube::ApplyOptions {
        wait: None,
        ..sflow_kube::ApplyOptions::default()
    };
    sflow_kube::apply(&cluster, &build.manifests, &no_wait, &mut |_: &str| {}).await?;
    // The plan as the runtime's pod mounts it, and the artifacts volume.
    let plan_path = standin.dir.path().join("plan/plan.json");
    std::fs::create_dir_all(plan_path.parent().ok_or("parent")?)?;
    std::fs::write(&plan_path, &build.plan_json)?;
    let artifacts = standin.dir.path().join("artifacts");
    std::fs::create_dir_all(&artifacts)?;

    // One replica: it takes the Lease and acts.
    let mut a = Runtime::start(&standin, "runtime-a", &plan_path, &artifacts)?;
    a.wait_ready(true, Duration::from_secs(30)).await?;
    let api_a = ControlApi::new(&a, &artifacts)?;
    let lease: Lease = Api::namespaced(client.clone(), "loop")
        .get("loop-runtime")
        .await?;
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("runtime-a")
    );

    // Run 1: a Workflow from the WorkflowTemplate with the run's params; a failed attempt,
    // then a success (across more than one watch: the stand-in ends watches after 2 s).
    let r1 = api_a.start_run("0.8").await?;
    let wf1 = wait_workflow(&client, r1).await?;
    assert_eq!(wf1.data["spec"]["workflowTemplateRef"]["name"], "training");
    assert_eq!(
        wf1.data["spec"]["arguments"]["parameters"],
        json!([{"name": "acc", "value": "0.8"}])
    );
    let model1 = play_argo(&client, &wf1, &artifacts, 0.8, true).await?;
    let run1 = api_a.wait_run(r1, Duration::from_secs(20)).await?;
    assert_eq!(run1["status"], "succeeded", "{run1}\n{}", a.log());
    let attempts = run1["steps"].as_array().ok_or("no steps")?;
    let summary: Vec<(i64, &str)> = attempts
        .iter()
        .map(|s| {
            (
                s["attempt"].as_i64().unwrap_or(0),
                s["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(summary, [(1, "failed"), (2, "succeeded")], "{run1}");
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("OOMKilled"),
        "{run1}"
    );
    assert_eq!(attempts[0]["exitCode"], 137, "{run1}");
    let metrics = run1["metrics"].to_string();
    assert!(
        metrics.contains("accuracy") && metrics.contains("0.8"),
        "{metrics}"
    );
    let (_, models) = api_a.get("/v1/models").await?;
    assert_eq!(models[0]["name"], "training.fit.model", "{models}");
    assert_eq!(models[0]["path"], model1.as_str());
    // The first model is served: SFLOW_MODEL on the predictor's Deployment.
    wait_served(&client, &model1, &a).await?;

    // Run 2 is better: `better` fires, Planner.replace rolls the Deployment to it.
    let r2 = api_a.start_run("0.95").await?;
    let wf2 = wait_workflow(&client, r2).await?;
    let model2 = play_argo(&client, &wf2, &artifacts, 0.95, false).await?;
    assert_eq!(
        api_a.wait_run(r2, Duration::from_secs(20)).await?["status"],
        "succeeded"
    );
    wait_served(&client, &model2, &a).await?;
    let d: Deployment = Api::namespaced(client.clone(), "loop")
        .get("predictor")
        .await?;
    let annotations = d.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("sflow.dev/model").map(String::as_str),
        Some("training.fit.model v2")
    );

    // Latency over the objective: Planner.scale moves the autoscaler's floor to 2.
    assert_eq!(hpa_floor(&client).await?, Some(1));
    api_a
        .send(
            reqwest::Method::PUT,
            "/v1/services/predictor/signals/latency.p95",
            json!("80ms"),
        )
        .await?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while hpa_floor(&client).await? != Some(2) {
        assert!(
            Instant::now() < deadline,
            "the HPA's floor stayed {:?}\n{}",
            hpa_floor(&client).await?,
            a.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Planner.resize patched the Deployment's container resources (requests = limits).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = container_resources(&client).await?;
        if r == Some(("2000m".into(), "4Gi".into())) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "resources stayed {r:?}\n{}",
            a.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A second replica stands by: ready, not leading, no control API.
    let mut b = Runtime::start(&standin, "runtime-b", &plan_path, &artifacts)?;
    b.wait_ready(false, Duration::from_secs(30)).await?;
    let api_b = ControlApi::new(&b, &artifacts)?;
    assert_eq!(api_b.get("/v1/status").await?.0, 503);
    let metrics_b = reqwest::get(format!("{}/metrics", b.url))
        .await?
        .text()
        .await?;
    assert!(metrics_b.contains("sflow_runtime_leader 0"), "{metrics_b}");

    // The leader dies mid-run (SIGKILL: no goodbye). The other replica takes over once the
    // Lease expires, re-attaches to the run's Workflow (it does not create another) and
    // records its end.
    let r3 = api_a.start_run("0.5").await?;
    let wf3 = wait_workflow(&client, r3).await?;
    a.child.kill()?;
    a.child.wait()?;
    b.wait_ready(true, Duration::from_secs(20)).await?;
    play_argo(&client, &wf3, &artifacts, 0.5, false).await?;
    let run3 = api_b.wait_run(r3, Duration::from_secs(20)).await?;
    assert_eq!(run3["status"], "succeeded", "{run3}\n{}", b.log());
    let metrics_b = reqwest::get(format!("{}/metrics", b.url))
        .await?
        .text()
        .await?;
    assert!(
        metrics_b.contains("sflow_runtime_workflows_attached_total 1"),
        "{metrics_b}"
    );
    assert!(
        metrics_b.contains("sflow_runtime_workflows_created_total 0"),
        "{metrics_b}"
    );

    // A clean stop hands the Lease over at once; a restarted runtime acts again, with the
    // services' state re-applied (nothing to change).
    assert_eq!(b.terminate()?, 0, "{}", b.log());
    let a2 = Runtime::start(&standin, "runtime-a", &plan_path, &artifacts)?;
    a2.wait_ready(true, Duration::from_secs(10)).await?;
    let api_a2 = ControlApi::new(&a2, &artifacts)?;
    let (_, runs) = api_a2.get("/v1/runs").await?;
    assert_eq!(runs.as_array().map(Vec::len), Some(3), "{runs}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        served_model(&client).await?.as_deref(),
        Some(model2.as_str())
    );
    assert_eq!(hpa_floor(&client).await?, Some(2));

    // Each action happened once: one Workflow per run, two model changes, one scale.
    let (_, decisions) = api_a2.get("/v1/decisions").await?;
    let done = |name: &str| {
        decisions
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["name"] == name && d["status"] == "done")
            .count()
    };
    assert_eq!(
        (done("better"), done("hot"), done("grow")),
        (1, 1, 1),
        "{decisions}"
    );
    let requests = standin.runtime_requests()?;
    let count = |verb: &str, resource: &str| {
        requests
            .iter()
            .filter(|r| r["verb"] == verb && r["resource"] == resource)
            .count()
    };
    let created: BTreeSet<&str> = requests
        .iter()
        .filter(|r| r["verb"] == "create" && r["resource"] == "workflows")
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        (count("create", "workflows"), created.len()),
        (3, 3),
        "{created:?}"
    );
    // Run 1 lasted longer than a watch may (2 s): its end came through a resumed watch.
    assert!(
        count("watch", "workflows") > 3,
        "{} watches",
        count("watch", "workflows")
    );
    // Two model changes and one resize; the restart re-applied both without a patch.
    assert_eq!(count("patch", "deployments"), 3);
    assert_eq!(count("patch", "horizontalpodautoscalers"), 1);

    // RBAC: every request the runtime made is allowed by the Role the build grants it, and
    // every verb the Role grants was used.
    let role = build
        .manifests
        .iter()
        .find(|m| m.kind == "Role" && m.name == "loop-runtime")
        .ok_or("no Role loop-runtime")?;
    let role: Value = serde_yaml_ng::from_str(&role.yaml)?;
    let rules = role["rules"].as_array().ok_or("no rules")?.clone();
    let denied: Vec<&Value> = requests.iter().filter(|r| !allowed(&rules, r)).collect();
    assert!(
        denied.is_empty(),
        "requests the Role does not allow: {denied:#?}"
    );
    for rule in &rules {
        for verb in rule["verbs"].as_array().ok_or("no verbs")? {
            assert!(
                requests
                    .iter()
                    .any(|r| r["verb"] == *verb && rule_allows(rule, r)),
                "the Role grants {verb} in {rule} but the runtime never used it"
            );
        }
    }
    Ok(())
}
