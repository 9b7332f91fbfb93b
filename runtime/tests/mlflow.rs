//! MLflow compatibility against the real thing: a real `mlflow server` (SQLite backend, on
//! loopback) and the real MLflow Python client, from the virtual environment that
//! `scripts/setup-mlflow.sh` makes (its `--env` prints `SFLOW_MLFLOW_PYTHON`).
//!
//! These tests are ignored by a plain `cargo test` (they need that environment and take about
//! a minute each); `scripts/test-all.sh` runs them:
//! `cargo test -p sflow-runtime --test mlflow -- --ignored --test-threads=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use serde_json::{json, Value};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NEEDS: &str = "needs a real MLflow server: run through scripts/test-all.sh";

/// The Python of the MLflow virtual environment.
fn mlflow_python() -> PathBuf {
    let p = std::env::var("SFLOW_MLFLOW_PYTHON").unwrap_or_else(|_| {
        let guess = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv-mlflow/bin/python");
        guess.to_string()
    });
    let p = PathBuf::from(p);
    assert!(
        p.exists(),
        "no MLflow environment at {}: run `eval \"$(scripts/setup-mlflow.sh --env)\"` first",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real `mlflow server` on loopback with a SQLite backend in a temporary directory, in its
/// own process group (killed, workers included, when dropped).
struct MlflowServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl MlflowServer {
    fn start() -> MlflowServer {
        let mut s = MlflowServer {
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            child: None,
        };
        s.up();
        s
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn up(&mut self) {
        let db = self.dir.path().join("mlflow.db");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let child = Command::new(mlflow_python())
            .args([
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--workers",
                "1",
            ])
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", db.display()))
            .arg("--default-artifact-root")
            .arg(self.dir.path().join("artifacts"))
            // Keeps the server near 0.5 GB (the job runner alone takes about 2 GB).
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start mlflow server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && http(&self.url(), "GET", "/health", None, None, &[]).0 == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mlflow server did not start: {}",
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Stops the server (its whole process group), as an outage.
    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Some(pid) = rustix::process::Pid::from_raw(c.id() as i32) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = c.wait();
        }
        // The port is free again once nothing listens.
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "mlflow server did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn get(&self, path: &str) -> Value {
        let (status, body) = http(
            &self.url(),
            "GET",
            &format!("/api/2.0/mlflow/{path}"),
            None,
            None,
            &[],
        );
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn post(&self, path: &str, body: &Value) -> Value {
        let (status, text) = http(
            &self.url(),
            "POST",
            &format!("/api/2.0/mlflow/{path}"),
            None,
            Some(&body.to_string()),
            &[],
        );
        assert_eq!(status, 200, "POST {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    fn experiment_id(&self, name: &str) -> Option<String> {
        let (status, body) = http(
            &self.url(),
            "GET",
            &format!("/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}"),
            None,
            None,
            &[],
        );
        (status == 200).then(|| {
            let v: Value = serde_json::from_str(&body).unwrap();
            v["experiment"]["experiment_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
    }

    /// Every run of an experiment (parents and nested).
    fn runs(&self, experiment: &str) -> Vec<Value> {
        let v = self.post(
            "runs/search",
            &json!({ "experiment_ids": [experiment], "max_results": 1000 }),
        );
        v["runs"].as_array().cloned().unwrap_or_default()
    }

    /// A metric's whole history on a run.
    fn history(&self, run_id: &str, key: &str) -> Vec<(i64, f64)> {
        let v = self.get(&format!(
            "metrics/get-history?run_id={run_id}&metric_key={key}&max_results=25000"
        ));
        let mut points: Vec<(i64, f64)> = v["metrics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| {
                (
                    m["step"].as_i64().unwrap_or(0),
                    m["value"].as_f64().unwrap(),
                )
            })
            .collect();
        points.sort_by_key(|p| p.0);
        points
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        self.down();
    }
}

fn tag<'a>(run: &'a Value, key: &str) -> Option<&'a str> {
    run["data"]["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)?
        .get("value")?
        .as_str()
}

/// A tag of a model version (its tags are not under `data`).
fn mv_tag<'a>(version: &'a Value, key: &str) -> Option<&'a str> {
    version["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)?
        .get("value")?
        .as_str()
}

fn param<'a>(run: &'a Value, key: &str) -> Option<&'a str> {
    run["data"]["params"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)?
        .get("value")?
        .as_str()
}

/// `sflow run app.sflow` (the app, with its control API and mirror), until dropped.
struct App {
    child: Child,
    url: String,
    token: String,
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(clippy::zombie_processes)] // waited for when `App` drops
fn start_app(p: &Prog) -> App {
    let _ = std::fs::remove_file(p.state().join("api.json"));
    let log = std::fs::File::create(p.path("sflow.log")).unwrap();
    let child = Command::new(sflow_bin())
        .arg("run")
        .arg(&p.file)
        .env("SFLOW_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start sflow");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(p.state().join("api.json")) {
            let info: Value = serde_json::from_str(&text).unwrap();
            let token = std::fs::read_to_string(p.state().join("token")).unwrap();
            return App {
                child,
                url: info["url"].as_str().unwrap().to_string(),
                token: token.trim().to_string(),
            };
        }
        assert!(
            Instant::now() < deadline,
            "the runtime did not start: {}",
            p.read("sflow.log")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl App {
    fn get(&self, path: &str) -> Value {
        let (status, body) = http(&self.url, "GET", path, Some(&self.token), None, &[]);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    fn start_run(&self, workflow: &str, params: Value) -> i64 {
        let body = json!({ "workflow": workflow, "params": params }).to_string();
        let (status, text) = http(
            &self.url,
            "POST",
            "/v1/runs",
            Some(&self.token),
            Some(&body),
            &[],
        );
        assert_eq!(status, 202, "{text}");
        serde_json::from_str::<Value>(&text).unwrap()["run"]
            .as_i64()
            .unwrap()
    }

    fn wait_run(&self, id: i64, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let run = self.get(&format!("/v1/runs/{id}"));
            if run["status"] != "running" {
                return run;
            }
            assert!(Instant::now() < deadline, "run {id} did not finish");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Polls `f` until it gives `Some`, for at most `secs`.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A training app: `fit` writes a loss series and an accuracy, and a model; `report` logs
/// through the MLflow Python client. A better model replaces the served one (Planner).
fn training_app(tracking: &str, points: usize) -> String {
    format!(
        r#"
app lab {{
  namespace = "lab"
  tracking  = mlflow("{tracking}")
}}

use std.tracking.mlflow

workflow training {{
  param acc: float = 0.8
  param points: int = {points}
  step fit {{
    image = "python:3.12-slim"
    run   = "i=0; while [ $i -lt {{{{points}}}} ]; do echo \"{{\\\"loss\\\": $i}}\"; i=$((i+1)); done > $SFLOW_METRICS; echo '{{\"accuracy\": {{{{acc}}}}}}' >> $SFLOW_METRICS; echo model-{{{{acc}}}} > {{{{outputs.model}}}}"
    output model: Model
    metric accuracy: ratio
    metric loss: float
  }}
  step report {{
    image = "python:3.12-slim"
    run   = "{python} report.py"
    after = [fit]
    metric seen: int
  }}
}}

service predictor {{
  model    = training.fit.model
  replicas = 1..2
}}

agent planner: Planner {{ target = predictor }}

policy better {{
  when training.fit.accuracy > predictor.model.accuracy
  then planner.replace(predictor, training.fit.model)
}}
"#,
        python = mlflow_python().display()
    )
}

const REPORT_PY: &str = r#"
import mlflow, os
mlflow.log_param("reporter", "python-client")
mlflow.set_tag("team", "vision")
mlflow.log_metric("seen", int(os.environ["SFLOW_RUN_ID"]) * 10)
"#;

/// Everything MLflow holds for app `lab`, checked against the store: returns the number of
/// parent runs found.
fn check_mirror(server: &MlflowServer, p: &Prog, runs: &[i64]) {
    let exp = wait_for(60, "the experiment", || {
        server.experiment_id("lab.training")
    });
    // Every run and attempt once, finished.
    let all = wait_for(60, "every run finished in MLflow", || {
        let all = server.runs(&exp);
        let parents = all
            .iter()
            .filter(|r| tag(r, "mlflow.parentRunId").is_none())
            .count();
        let done = all.iter().all(|r| r["info"]["status"] == "FINISHED");
        (parents == runs.len() && all.len() == runs.len() * 3 && done).then_some(all)
    });
    for &id in runs {
        let local = p.read_json(&["runs", "show", &id.to_string()]);
        let parent = all
            .iter()
            .find(|r| {
                tag(r, "sflow.run_id") == Some(&id.to_string())
                    && tag(r, "mlflow.parentRunId").is_none()
            })
            .unwrap_or_else(|| panic!("run {id} in MLflow"));
        let parent_id = parent["info"]["run_id"].as_str().unwrap();
        // Params, as the steps got them.
        for prm in local["params"].as_array().unwrap() {
            assert_eq!(
                param(parent, prm["name"].as_str().unwrap()),
                prm["value"].as_str(),
                "param {prm}"
            );
        }
        assert!(
            tag(parent, "sflow.source")
                .unwrap()
                .ends_with("app.sflow:9:10"),
            "{parent}"
        );
        let nested = |step: &str| {
            all.iter()
                .find(|r| {
                    tag(r, "mlflow.parentRunId") == Some(parent_id)
                        && tag(r, "sflow.step") == Some(step)
                })
                .unwrap_or_else(|| panic!("step {step} of run {id} in MLflow"))
        };
        let fit = nested("fit");
        let fit_id = fit["info"]["run_id"].as_str().unwrap();
        assert!(tag(fit, "sflow.source")
            .unwrap()
            .ends_with("app.sflow:12:8"));
        // The artifact's location and digest.
        let art = local["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["step"] == "fit")
            .unwrap();
        assert_eq!(
            tag(fit, "sflow.artifact.model"),
            Some(format!("file://{}", art["path"].as_str().unwrap()).as_str())
        );
        assert_eq!(
            tag(fit, "sflow.artifact.model.sha256"),
            art["sha256"].as_str()
        );
        // Every metric point once, in order.
        let local_loss: Vec<(i64, f64)> = local["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["step"] == "fit" && m["name"] == "loss")
            .map(|m| (m["seq"].as_i64().unwrap(), m["value"].as_f64().unwrap()))
            .collect();
        assert!(!local_loss.is_empty());
        // The points may still be on their way (the runs' statuses go first).
        let deadline = Instant::now() + Duration::from_secs(90);
        while server.history(fit_id, "loss").len() < local_loss.len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
        }
        assert_eq!(
            server.history(fit_id, "loss"),
            local_loss,
            "the loss series of run {id}"
        );
        assert_eq!(server.history(fit_id, "accuracy").len(), 1);
        // What the Python client logged, recorded by sflow and mirrored.
        let report = nested("report");
        assert_eq!(param(report, "reporter"), Some("python-client"));
        assert_eq!(tag(report, "team"), Some("vision"));
        let seen = server.history(report["info"]["run_id"].as_str().unwrap(), "seen");
        assert_eq!(seen, vec![(0, (id * 10) as f64)]);
    }
}

#[test]
#[ignore = "needs a real MLflow server: run through scripts/test-all.sh"]
fn a_training_workflow_is_mirrored_into_mlflow_with_its_registry() {
    let _ = NEEDS;
    let server = MlflowServer::start();
    let p = Prog::new(&training_app(&server.url(), 50));
    p.write("report.py", REPORT_PY);
    let app = start_app(&p);
    let r1 = app.start_run("training", json!({ "acc": 0.8 }));
    assert_eq!(
        app.wait_run(r1, 60)["status"],
        "succeeded",
        "{}",
        p.read("sflow.log")
    );
    let r2 = app.start_run("training", json!({ "acc": 0.95 }));
    assert_eq!(app.wait_run(r2, 60)["status"], "succeeded");
    // The Planner replaced the model: the alias moved locally.
    let model2 = wait_for(20, "the replace", || {
        let models = app.get("/v1/models");
        models
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["aliases"].as_array().is_some_and(|a| !a.is_empty()))
            .filter(|m| m["version"] == 2)
            .map(|m| m["version"].clone())
    });
    assert_eq!(model2, 2);

    check_mirror(&server, &p, &[r1, r2]);
    // The MLflow REST subset is behind the token, and an attempt that has ended takes nothing
    // more (as MLflow refuses writes to an ended run).
    let body =
        json!({ "run_id": "sflow-1", "key": "loss", "value": 1.0, "timestamp": 0, "step": 0 })
            .to_string();
    let path = "/api/2.0/mlflow/runs/log-metric";
    assert_eq!(http(&app.url, "POST", path, None, Some(&body), &[]).0, 401);
    let (status, text) = http(&app.url, "POST", path, Some(&app.token), Some(&body), &[]);
    assert_eq!(status, 400, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["error_code"],
        "INVALID_STATE"
    );
    // The registry: a registered model per service, a version per candidate, the alias moved.
    let versions = wait_for(60, "two model versions", || {
        let v = server.get("model-versions/search?filter=name%3D%27lab.predictor%27");
        let list = v["model_versions"].as_array().cloned().unwrap_or_default();
        (list.len() == 2).then_some(list)
    });
    for v in &versions {
        assert!(v["source"].as_str().unwrap().starts_with("runs:/"), "{v}");
    }
    let alias = wait_for(60, "the production alias on version 2's model", || {
        let (status, body) = http(
            &server.url(),
            "GET",
            "/api/2.0/mlflow/registered-models/alias?name=lab.predictor&alias=production",
            None,
            None,
            &[],
        );
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        (status == 200 && mv_tag(&v["model_version"], "sflow.version") == Some("2")).then_some(v)
    });
    assert_eq!(
        mv_tag(&alias["model_version"], "sflow.model"),
        Some("training.fit.model")
    );
}

#[test]
#[ignore = "needs a real MLflow server: run through scripts/test-all.sh"]
fn an_mlflow_outage_loses_nothing_and_duplicates_nothing() {
    let mut server = MlflowServer::start();
    let p = Prog::new(&training_app(&server.url(), 3000));
    p.write("report.py", REPORT_PY);
    let app = start_app(&p);
    let r1 = app.start_run("training", json!({ "acc": 0.8 }));
    assert_eq!(app.wait_run(r1, 60)["status"], "succeeded");
    wait_for(60, "run 1 mirrored", || {
        let exp = server.experiment_id("lab.training")?;
        (server.runs(&exp).len() == 3).then_some(())
    });

    // MLflow goes down mid-run; the runtime keeps working at its own pace.
    let r2 = app.start_run("training", json!({ "acc": 0.9 }));
    server.down();
    let started = Instant::now();
    assert_eq!(app.wait_run(r2, 60)["status"], "succeeded");
    let r3 = app.start_run("training", json!({ "acc": 0.95 }));
    assert_eq!(app.wait_run(r3, 60)["status"], "succeeded");
    let during = started.elapsed();
    assert!(
        during < Duration::from_secs(30),
        "runs were held up by the outage: {during:?}"
    );
    let local_models = app.get("/v1/models");
    assert_eq!(local_models.as_array().unwrap().len(), 3);
    std::thread::sleep(Duration::from_secs(2));

    // MLflow comes back: the mirror catches up, each thing once.
    server.up();
    check_mirror(&server, &p, &[r1, r2, r3]);
    let versions = wait_for(90, "three model versions", || {
        let v = server.get("model-versions/search?filter=name%3D%27lab.predictor%27");
        let list = v["model_versions"].as_array().cloned().unwrap_or_default();
        (list.len() == 3).then_some(list)
    });
    let mut local_ids: Vec<&str> = versions
        .iter()
        .filter_map(|v| mv_tag(v, "sflow.version"))
        .collect();
    local_ids.sort_unstable();
    assert_eq!(local_ids, vec!["1", "2", "3"]);
    wait_for(60, "the alias on the best model", || {
        let (status, body) = http(
            &server.url(),
            "GET",
            "/api/2.0/mlflow/registered-models/alias?name=lab.predictor&alias=production",
            None,
            None,
            &[],
        );
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        (status == 200 && mv_tag(&v["model_version"], "sflow.version") == Some("3")).then_some(())
    });
    // Still once each after the mirror has had time to (wrongly) send anything again.
    std::thread::sleep(Duration::from_secs(2));
    let exp = server.experiment_id("lab.training").unwrap();
    assert_eq!(server.runs(&exp).len(), 9);
    drop(app);
}

/// A program whose step logs with the real MLflow Python client.
fn client_app(script: &str) -> Prog {
    let p = Prog::new(&format!(
        r#"
app clients {{ namespace = "clients" }}
workflow training {{
  step fit {{
    image = "python:3.12-slim"
    run   = "{python} fit.py"
    metric accuracy: ratio
    metric loss: float
    metric epochs: int
  }}
}}
"#,
        python = mlflow_python().display()
    ));
    p.write("fit.py", script);
    p
}

#[test]
#[ignore = "needs a real MLflow server: run through scripts/test-all.sh"]
fn steps_logging_with_the_mlflow_python_client_record_their_metrics() {
    let p = client_app(
        r#"
import mlflow, os, time
from mlflow.entities import Metric, Param, RunTag
assert os.environ["MLFLOW_RUN_ID"].startswith("sflow-")
mlflow.log_param("optimizer", "sgd")
mlflow.set_tag("team", "vision")
for epoch in range(5):
    mlflow.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
ts = int(time.time() * 1000)
client = mlflow.MlflowClient()
run_id = mlflow.active_run().info.run_id
client.log_batch(run_id, metrics=[Metric("accuracy", 0.5 + i / 100, ts, i) for i in range(10)],
                 params=[Param("lr", "0.01")], tags=[RunTag("stage", "dev")])
mlflow.log_metric("epochs", 5)
mlflow.log_metric("undeclared", 1.5)
# What the client reads back is what it logged.
run = client.get_run(run_id)
assert run.data.params == {"optimizer": "sgd", "lr": "0.01"}, run.data.params
assert run.data.metrics["loss"] == 0.2, run.data.metrics
"#,
    );
    let out = p.run(&["--workflow", "training"]);
    assert!(
        out.status.success(),
        "{}",
        p.read(".sflow/runs/1/logs/fit.1.stderr")
    );
    let run = p.read_json(&["runs", "show", "1"]);
    let series = |name: &str| -> Vec<f64> {
        run["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["name"] == name)
            .map(|m| m["value"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(series("loss"), vec![1.0, 0.5, 1.0 / 3.0, 0.25, 0.2]);
    assert_eq!(series("accuracy").len(), 10);
    assert!((series("accuracy")[9] - 0.59).abs() < 1e-9);
    let epochs = run["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "epochs")
        .unwrap();
    assert_eq!(epochs["type"], "int");
    assert_eq!(
        epochs["value"], 5,
        "a whole number for an `int` metric is an integer"
    );
    assert!(
        series("undeclared").is_empty(),
        "undeclared keys are ignored, as in $SFLOW_METRICS"
    );

    // Checked against the declarations like $SFLOW_METRICS: a ratio outside [0, 1] fails the
    // step, naming the metric; so does a declared metric never logged.
    let bad = client_app(
        r#"
import mlflow
mlflow.log_metric("accuracy", 1.5)
mlflow.log_metric("loss", 0.1)
"#,
    );
    let out = bad.run(&["--workflow", "training"]);
    assert_eq!(out.status.code(), Some(1));
    let run = bad.read_json(&["runs", "show", "1"]);
    let err = run["steps"][0]["error"].as_str().unwrap().to_string();
    assert!(
        err.contains("metric `accuracy` is declared `ratio` but the step reported 1.5"),
        "{err}"
    );
    assert!(
        err.contains("metric `epochs` (int) was not reported"),
        "{err}"
    );
}

/// Metric logging throughput: into the embedded store, through the mirror, through the MLflow
/// REST subset the control API serves, and MLflow itself one call per point vs batched.
/// Prints the figures of docs/performance.md ("MLflow").
#[test]
#[ignore = "a benchmark: run by hand (docs/performance.md)"]
fn bench_metric_logging() {
    let server = MlflowServer::start();
    let n: usize = 10_000;
    let p = Prog::new(&format!(
        r#"
app lab {{
  namespace = "lab"
  tracking  = mlflow("{url}")
}}

use std.tracking.mlflow

workflow training {{
  step fit {{
    image = "python:3.12-slim"
    run   = "awk 'BEGIN {{ for (i = 0; i < {n}; i++) printf \"{{\\\"loss\\\": %d}}\\n\", i }}' > $SFLOW_METRICS"
    metric loss: float
  }}
}}
"#,
        url = server.url()
    ));
    let app = start_app(&p);
    let t = Instant::now();
    let r = app.start_run("training", json!({}));
    let run = app.wait_run(r, 120);
    assert_eq!(run["status"], "succeeded", "{run}");
    let run_s = t.elapsed().as_secs_f64();
    let local = p.read_json(&["runs", "show", &r.to_string()]);
    assert_eq!(local["metrics"].as_array().unwrap().len(), n);
    let step_ms = local["steps"][0]["durationMs"].as_i64().unwrap();
    let exp = wait_for(60, "experiment", || server.experiment_id("lab.training"));
    let fit = wait_for(60, "fit run", || {
        server
            .runs(&exp)
            .into_iter()
            .find(|r| tag(r, "sflow.step") == Some("fit"))
            .map(|r| r["info"]["run_id"].as_str().unwrap().to_string())
    });
    wait_for(120, "every point mirrored", || {
        (server.history(&fit, "loss").len() == n).then_some(())
    });
    let mirror_s = t.elapsed().as_secs_f64() - run_s;
    eprintln!("BENCH embedded: a step reporting {n} points: step {step_ms} ms (process, check, one transaction), run {run_s:.2}s end to end; every point in MLflow {mirror_s:.2}s after the run ended ({:.0} points/s through the mirror)", n as f64 / mirror_s);
    drop(app);

    // MLflow itself, with its Python client: one call per point vs one log_batch per 1000.
    let py = |uri: &str, script: &str, env: &[(&str, &str)]| -> String {
        let out = Command::new(mlflow_python())
            .arg("-c")
            .arg(script)
            .env("MLFLOW_TRACKING_URI", uri)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let script = r#"
import mlflow, time, os
from mlflow.entities import Metric
n = 1000
c = mlflow.MlflowClient()
rid = os.environ.get("MLFLOW_RUN_ID") or c.create_run(c.get_experiment_by_name("Default").experiment_id).info.run_id
t = time.time()
for i in range(n):
    c.log_metric(rid, "one", float(i), step=i)
one = time.time() - t
t = time.time()
ts = int(time.time() * 1000)
c.log_batch(rid, metrics=[Metric("batched", float(i), ts, i) for i in range(n)])
batched = time.time() - t
print(f"{one:.3f} {batched:.3f}")
"#;
    let real = py(&server.url(), script, &[]);
    eprintln!("BENCH mlflow server, python client, 1000 points: one call per point / one log_batch (s): {real}");
    // The same client against sflow's control API (the REST subset), inside a step.
    let q = Prog::new(&format!(
        r#"
app bench {{ namespace = "bench" }}
workflow w {{
  step s {{
    image = "python:3.12-slim"
    run   = "{python} bench.py > bench.out"
  }}
}}
"#,
        python = mlflow_python().display()
    ));
    q.write("bench.py", script);
    let out = q.run(&["--workflow", "w"]);
    assert!(out.status.success());
    eprintln!(
        "BENCH sflow control API, python client, 1000 points: one call per point / one log_batch (s): {}",
        q.read("bench.out").trim()
    );
}
