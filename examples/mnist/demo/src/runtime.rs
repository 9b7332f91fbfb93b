//! The runtime under demonstration: `sflow run PROGRAM` as a child process, and a client of
//! its control API (docs/runtime.md §8) — exactly what a user's own tooling would use.

use crate::DemoError;
use serde_json::{json, Value};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A running `sflow run` and its control API.
pub struct Runtime {
    child: Child,
    state_dir: PathBuf,
    url: String,
    token: String,
    http: reqwest::blocking::Client,
}

impl Runtime {
    /// Starts `sflow run PROGRAM --state-dir STATE` (logs to `log`) and waits for its control
    /// API to answer.
    pub fn start(
        sflow: &Path,
        program: &Path,
        state_dir: &Path,
        log: &Path,
    ) -> Result<Runtime, DemoError> {
        let out = File::create(log).map_err(|e| DemoError::io(log, e))?;
        let err = out.try_clone().map_err(|e| DemoError::io(log, e))?;
        let child = Command::new(sflow)
            .arg("--state-dir")
            .arg(state_dir)
            .arg("run")
            .arg(program)
            .env("SFLOW_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| DemoError::io(sflow, e))?;
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| DemoError::Http(e.to_string()))?;
        let mut rt = Runtime {
            child,
            state_dir: state_dir.to_path_buf(),
            url: String::new(),
            token: String::new(),
            http,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = rt.child.try_wait().map_err(|e| DemoError::io(sflow, e))? {
                return Err(DemoError::Runtime(format!(
                    "`sflow run` exited with {status} before its control API came up; see {}",
                    log.display()
                )));
            }
            let api = std::fs::read_to_string(state_dir.join("api.json")).ok();
            let token = std::fs::read_to_string(state_dir.join("token")).ok();
            if let (Some(api), Some(token)) = (api, token) {
                let api: Value = serde_json::from_str(&api).unwrap_or(Value::Null);
                if let Some(url) = api.get("url").and_then(Value::as_str) {
                    rt.url = url.trim_end_matches('/').to_string();
                    rt.token = token.trim().to_string();
                    if rt.get("/v1/status").is_ok() {
                        return Ok(rt);
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(DemoError::Runtime(format!(
                    "the control API did not come up within 60 s; see {}",
                    log.display()
                )));
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// `GET PATH` on the control API.
    pub fn get(&self, path: &str) -> Result<Value, DemoError> {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .map_err(|e| DemoError::Http(format!("GET {path}: {e}")))?;
        json_of(resp, path)
    }

    /// `POST PATH` with a JSON body on the control API.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, DemoError> {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .map_err(|e| DemoError::Http(format!("POST {path}: {e}")))?;
        json_of(resp, path)
    }

    /// Starts a run of `workflow` and returns its id.
    pub fn start_run(&self, workflow: &str, params: Value) -> Result<i64, DemoError> {
        let v = self.post(
            "/v1/runs",
            &json!({ "workflow": workflow, "params": params }),
        )?;
        v.get("run")
            .and_then(Value::as_i64)
            .ok_or_else(|| DemoError::Runtime(format!("POST /v1/runs answered {v}")))
    }

    /// Waits until run `id` has finished; returns its document.
    pub fn wait_run(&self, id: i64, limit: Duration) -> Result<Value, DemoError> {
        let deadline = Instant::now() + limit;
        loop {
            let run = self.get(&format!("/v1/runs/{id}"))?;
            match run.get("status").and_then(Value::as_str) {
                Some("running") | None => {}
                Some(_) => return Ok(run),
            }
            if Instant::now() > deadline {
                return Err(DemoError::Runtime(format!(
                    "run {id} did not finish within {} s",
                    limit.as_secs()
                )));
            }
            sleep(Duration::from_millis(200));
        }
    }

    /// The live signals (`GET /v1/status`, `live.signals`).
    pub fn signals(&self) -> Result<Value, DemoError> {
        let status = self.get("/v1/status")?;
        Ok(status
            .pointer("/live/signals")
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Whether the engine has work in flight (firings, runs, actions).
    pub fn busy(&self) -> Result<i64, DemoError> {
        let status = self.get("/v1/status")?;
        Ok(status
            .pointer("/live/busy")
            .and_then(Value::as_i64)
            .unwrap_or(0))
    }

    /// Waits until the engine has nothing in flight (at most `limit`); returns whether it got
    /// there.
    pub fn settle(&self, limit: Duration) -> Result<bool, DemoError> {
        let deadline = Instant::now() + limit;
        // Let what the last requests set off get recorded before asking.
        sleep(Duration::from_millis(300));
        loop {
            if self.busy()? == 0 {
                return Ok(true);
            }
            if Instant::now() > deadline {
                return Ok(false);
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// Events after `after` (`GET /v1/events`).
    pub fn events(&self, after: i64) -> Result<Vec<Value>, DemoError> {
        let v = self.get(&format!("/v1/events?after={after}&limit=1000"))?;
        Ok(list_of(v, "events"))
    }

    /// The decisions audit log, oldest first.
    pub fn decisions(&self) -> Result<Vec<Value>, DemoError> {
        let v = self.get("/v1/decisions?limit=10000")?;
        let mut list = list_of(v, "decisions");
        list.sort_by_key(|d| d.get("id").and_then(Value::as_i64).unwrap_or(0));
        Ok(list)
    }

    /// Where `service` serves (its base URL), once it does.
    pub fn service_url(&self, service: &str, limit: Duration) -> Result<String, DemoError> {
        let deadline = Instant::now() + limit;
        let path = self.state_dir.join("services.json");
        loop {
            if let Ok(text) = std::fs::read_to_string(&path) {
                if let Ok(v) = serde_json::from_str::<Value>(&text) {
                    let entry = v.get(service).or_else(|| {
                        v.get("services")
                            .and_then(|s| s.get(service).or_else(|| find_named(s, service)))
                    });
                    if let Some(url) = entry.and_then(|e| e.get("url")).and_then(Value::as_str) {
                        return Ok(url.trim_end_matches('/').to_string());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(DemoError::Runtime(format!(
                    "service `{service}` is not served after {} s ({} has no url for it)",
                    limit.as_secs(),
                    path.display()
                )));
            }
            sleep(Duration::from_millis(200));
        }
    }

    /// Stops the runtime (SIGTERM through `kill`, then waits).
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_named<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list.as_array()?
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
}

fn list_of(v: Value, key: &str) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        Value::Object(mut o) => match o.remove(key) {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn json_of(resp: reqwest::blocking::Response, what: &str) -> Result<Value, DemoError> {
    let status = resp.status();
    let text = resp
        .text()
        .map_err(|e| DemoError::Http(format!("{what}: {e}")))?;
    if !status.is_success() {
        return Err(DemoError::Http(format!("{what}: {status}: {text}")));
    }
    serde_json::from_str(&text).map_err(|e| DemoError::Http(format!("{what}: {e}: {text}")))
}
