//! A small client for the MLflow REST API (`/api/2.0/mlflow/…`): the calls the mirror makes.
//! Authentication comes from the runtime's environment as MLflow's own clients read it:
//! `MLFLOW_TRACKING_TOKEN` (bearer) or `MLFLOW_TRACKING_USERNAME` and
//! `MLFLOW_TRACKING_PASSWORD` (basic).

use serde_json::{json, Value as Json};
use std::time::Duration;

/// Why a call to MLflow failed.
#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    /// The server could not be reached or did not answer in time (it may be down).
    #[error("MLflow at {url} is unreachable: {reason}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered with an error.
    #[error("MLflow answered {status} to {path}: {code}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The REST path called.
        path: String,
        /// MLflow's `error_code` (`RESOURCE_ALREADY_EXISTS`, …).
        code: String,
        /// MLflow's message.
        message: String,
    },
}

impl MlflowError {
    /// Whether trying again later may succeed (the server is down, overloaded or failing),
    /// rather than the request itself being refused.
    pub fn is_transient(&self) -> bool {
        match self {
            MlflowError::Unreachable { .. } => true,
            MlflowError::Api { status, .. } => *status >= 500 || *status == 429,
        }
    }

    /// MLflow's error code, for API errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            MlflowError::Api { code, .. } => Some(code),
            MlflowError::Unreachable { .. } => None,
        }
    }
}

/// The result of an MLflow call.
pub type MlResult<T> = Result<T, MlflowError>;

/// A metric point as MLflow's `log-batch` takes it.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricPoint {
    /// The metric's key.
    pub key: String,
    /// Its value.
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The step (sflow: the point's position in the step's report).
    pub step: i64,
}

/// A client for one MLflow tracking server.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    auth: Auth,
}

#[derive(Clone, Debug)]
enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
}

impl Client {
    /// A client for the server at `uri` (`http://host:port`), with credentials from the
    /// environment, and `timeout` per request.
    pub fn new(uri: &str, timeout: Duration) -> MlResult<Client> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let auth = match (
            env("MLFLOW_TRACKING_TOKEN"),
            env("MLFLOW_TRACKING_USERNAME"),
            env("MLFLOW_TRACKING_PASSWORD"),
        ) {
            (Some(t), _, _) => Auth::Bearer(t),
            (None, Some(u), Some(p)) => Auth::Basic(u, p),
            _ => Auth::None,
        };
        Client::with_auth(uri, timeout, auth)
    }

    /// A client that sends `token` as a bearer token (tests, the runtime's own API).
    pub fn with_token(uri: &str, timeout: Duration, token: &str) -> MlResult<Client> {
        Client::with_auth(uri, timeout, Auth::Bearer(token.to_string()))
    }

    fn with_auth(uri: &str, timeout: Duration, auth: Auth) -> MlResult<Client> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| MlflowError::Unreachable {
                url: uri.to_string(),
                reason: format!("cannot build an HTTP client: {e}"),
            })?;
        Ok(Client {
            base: uri.trim_end_matches('/').to_string(),
            http,
            auth,
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Calls `METHOD /api/2.0/mlflow/PATH`: a JSON body for POST, a query for GET.
    pub async fn call(&self, get: bool, path: &str, body: &Json) -> MlResult<Json> {
        let url = format!("{}/api/2.0/mlflow/{path}", self.base);
        let mut req = if get {
            let query: Vec<(String, String)> = body
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| {
                            let v = match v {
                                Json::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            (k.clone(), v)
                        })
                        .collect()
                })
                .unwrap_or_default();
            self.http.get(&url).query(&query)
        } else {
            self.http.post(&url).json(body)
        };
        req = match &self.auth {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
        };
        let resp = req.send().await.map_err(|e| MlflowError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| MlflowError::Unreachable {
            url: url.clone(),
            reason: format!("reading the answer: {e}"),
        })?;
        let value: Json = serde_json::from_str(&text).unwrap_or(Json::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let field = |k: &str| value.get(k).and_then(Json::as_str).map(str::to_string);
        Err(MlflowError::Api {
            status,
            path: path.to_string(),
            code: field("error_code").unwrap_or_else(|| format!("HTTP {status}")),
            message: field("message").unwrap_or_else(|| text.chars().take(300).collect()),
        })
    }

    async fn post(&self, path: &str, body: Json) -> MlResult<Json> {
        self.call(false, path, &body).await
    }

    async fn get(&self, path: &str, query: Json) -> MlResult<Json> {
        self.call(true, path, &query).await
    }

    /// The id of the experiment named `name`, created if it does not exist.
    pub async fn ensure_experiment(
        &self,
        name: &str,
        tags: &[(String, String)],
    ) -> MlResult<String> {
        match self
            .get(
                "experiments/get-by-name",
                json!({ "experiment_name": name }),
            )
            .await
        {
            Ok(v) => return Ok(str_at(&v, &["experiment", "experiment_id"])),
            Err(e) if e.code() == Some("RESOURCE_DOES_NOT_EXIST") => {}
            Err(e) => return Err(e),
        }
        match self
            .post(
                "experiments/create",
                json!({ "name": name, "tags": tag_list(tags) }),
            )
            .await
        {
            Ok(v) => Ok(str_at(&v, &["experiment_id"])),
            // Created meanwhile (by another runtime on the same server).
            Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => {
                let v = self
                    .get(
                        "experiments/get-by-name",
                        json!({ "experiment_name": name }),
                    )
                    .await?;
                Ok(str_at(&v, &["experiment", "experiment_id"]))
            }
            Err(e) => Err(e),
        }
    }

    /// Creates a run; returns its id.
    pub async fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time: i64,
        tags: &[(String, String)],
    ) -> MlResult<String> {
        let v = self
            .post(
                "runs/create",
                json!({ "experiment_id": experiment_id, "run_name": run_name, "start_time": start_time, "tags": tag_list(tags) }),
            )
            .await?;
        Ok(str_at(&v, &["run", "info", "run_id"]))
    }

    /// The id of the run of `experiment_id` tagged `key = value`, if there is one.
    pub async fn find_run(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> MlResult<Option<String>> {
        let filter = format!("tags.`{key}` = '{}'", value.replace('\'', "\\'"));
        let v = self
            .post(
                "runs/search",
                json!({ "experiment_ids": [experiment_id], "filter": filter, "max_results": 1, "run_view_type": "ALL" }),
            )
            .await?;
        Ok(v.get("runs")
            .and_then(Json::as_array)
            .and_then(|r| r.first())
            .and_then(|r| r.pointer("/info/run_id"))
            .and_then(Json::as_str)
            .map(str::to_string))
    }

    /// Sets a run's status (`RUNNING`, `FINISHED`, `FAILED`, `KILLED`) and end time.
    pub async fn update_run(
        &self,
        run_id: &str,
        status: &str,
        end_time: Option<i64>,
    ) -> MlResult<()> {
        let mut body = json!({ "run_id": run_id, "status": status });
        if let Some(t) = end_time {
            body["end_time"] = json!(t);
        }
        self.post("runs/update", body).await.map(|_| ())
    }

    /// `runs/log-batch`: at most 1000 metrics, 100 params and 100 tags (MLflow's limits;
    /// callers split).
    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricPoint],
        params: &[(String, String)],
        tags: &[(String, String)],
    ) -> MlResult<()> {
        let metrics: Vec<Json> = metrics
            .iter()
            .map(|m| json!({ "key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step }))
            .collect();
        self.post(
            "runs/log-batch",
            json!({ "run_id": run_id, "metrics": metrics, "params": tag_list(params), "tags": tag_list(tags) }),
        )
        .await
        .map(|_| ())
    }

    /// Creates a registered model unless it exists.
    pub async fn ensure_registered_model(&self, name: &str, description: &str) -> MlResult<()> {
        match self
            .post(
                "registered-models/create",
                json!({ "name": name, "description": description }),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("RESOURCE_ALREADY_EXISTS") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates a version of a registered model; returns its version number.
    pub async fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: &str,
        tags: &[(String, String)],
        description: &str,
    ) -> MlResult<String> {
        let v = self
            .post(
                "model-versions/create",
                json!({ "name": name, "source": source, "run_id": run_id, "tags": tag_list(tags), "description": description }),
            )
            .await?;
        Ok(str_at(&v, &["model_version", "version"]))
    }

    /// The version of registered model `name` made from run `run_id` and tagged
    /// `key = value`, if there is one.
    pub async fn find_model_version(
        &self,
        name: &str,
        run_id: &str,
        key: &str,
        value: &str,
    ) -> MlResult<Option<String>> {
        let filter = format!(
            "name = '{}' and run_id = '{run_id}'",
            name.replace('\'', "\\'")
        );
        let v = self
            .get(
                "model-versions/search",
                json!({ "filter": filter, "max_results": 200 }),
            )
            .await?;
        let found = v
            .get("model_versions")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .find(|mv| {
                mv.get("tags").and_then(Json::as_array).is_some_and(|tags| {
                    tags.iter().any(|t| {
                        t.get("key").and_then(Json::as_str) == Some(key)
                            && t.get("value").and_then(Json::as_str) == Some(value)
                    })
                })
            })
            .and_then(|mv| mv.get("version"))
            .and_then(Json::as_str)
            .map(str::to_string);
        Ok(found)
    }

    /// Points `alias` of registered model `name` at `version`.
    pub async fn set_alias(&self, name: &str, alias: &str, version: &str) -> MlResult<()> {
        self.post(
            "registered-models/alias",
            json!({ "name": name, "alias": alias, "version": version }),
        )
        .await
        .map(|_| ())
    }
}

fn str_at(v: &Json, path: &[&str]) -> String {
    let mut cur = v;
    for p in path {
        cur = cur.get(p).unwrap_or(&Json::Null);
    }
    match cur {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

fn tag_list(pairs: &[(String, String)]) -> Vec<Json> {
    pairs
        .iter()
        .map(|(k, v)| json!({ "key": k, "value": v }))
        .collect()
}
