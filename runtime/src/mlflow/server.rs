//! The subset of the MLflow REST API that steps logging with MLflow's own clients use
//! (`mlflow.log_metric`, `log_param`, `log_batch`, `set_tag`), served by the control API under
//! `/api/2.0/mlflow/` behind its bearer token.
//!
//! Every step attempt gets `MLFLOW_TRACKING_URI` (the control API), `MLFLOW_TRACKING_TOKEN`
//! (its token) and `MLFLOW_RUN_ID` (`sflow-<attempt id>`), so `mlflow.log_metric(…)` logs into
//! the attempt's own "run". What it sends is kept in the store (`step_logged`) as it arrives;
//! when the attempt exits 0 the metrics are checked against the declared ones together with
//! `$SFLOW_METRICS` (see [`logged_points`]) and recorded as the step's metrics. Params and tags
//! are recorded as sent, and mirrored onto the step's MLflow run when a mirror is configured.
//! Writes to an attempt that has ended are refused, as MLflow refuses writes to a deleted run.

use crate::engine::Engine;
use crate::error::Result;
use crate::store::Store;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Value};
use sflow_compiler::lower::plan::{PlanType, PortPlan};
use std::collections::BTreeMap;

/// MLflow's limits on one key and one param or tag value.
const MAX_KEY: usize = 250;
const MAX_PARAM: usize = 6000;
const MAX_TAG: usize = 8000;
/// MLflow's limit on the entities of one `log-batch`.
const MAX_BATCH: usize = 1000;

/// The MLflow environment of every step of a runtime whose control API is at `api_url`.
pub fn step_env(api_url: &str, token: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("MLFLOW_TRACKING_URI".to_string(), api_url.to_string()),
        ("MLFLOW_TRACKING_TOKEN".to_string(), token.to_string()),
    ])
}

/// The MLflow run id of a step attempt.
pub fn run_id(step_run_id: i64) -> String {
    format!("sflow-{step_run_id}")
}

fn parse_run_id(id: &str) -> Option<i64> {
    id.strip_prefix("sflow-")?.parse().ok()
}

/// The routes, to be nested at `/api/2.0/mlflow` (behind the control API's token check).
pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/runs/get", get(run_get))
        .route("/runs/update", post(run_update))
        .route("/runs/log-metric", post(log_metric))
        .route("/runs/log-parameter", post(log_param))
        .route("/runs/set-tag", post(set_tag))
        .route("/runs/log-batch", post(log_batch))
        .route("/runs/create", post(run_create))
        .route("/experiments/get", get(experiment_get))
        .fallback(unsupported)
        .with_state(engine)
}

type Answer = std::result::Result<Response, ApiError>;

/// An error as MLflow's clients expect it: a status and `{"error_code", "message"}`.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error_code": self.code, "message": self.message })),
        )
            .into_response()
    }
}

fn mlflow_error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    mlflow_error(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
}

fn internal(e: crate::error::Error) -> ApiError {
    mlflow_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL_ERROR",
        e.to_string(),
    )
}

async fn unsupported(req: axum::extract::Request) -> Response {
    mlflow_error(
        StatusCode::NOT_FOUND,
        "ENDPOINT_NOT_FOUND",
        format!(
            "sflow serves the part of the MLflow REST API that logging from a step uses (runs/get, runs/update, runs/log-metric, runs/log-parameter, runs/set-tag, runs/log-batch, experiments/get); not {} {}",
            req.method(),
            req.uri().path()
        ),
    )
    .into_response()
}

/// A step attempt as an MLflow run.
struct Attempt {
    id: i64,
    status: String,
    step: String,
    attempt: i64,
    workflow: String,
    run_id: i64,
    started_ms: i64,
    finished_ms: Option<i64>,
    dir: Option<String>,
}

fn attempt(c: &Connection, id: i64) -> Result<Option<Attempt>> {
    Ok(c.query_row(
        "SELECT sr.id, sr.status, sr.step, sr.attempt, wr.workflow, wr.id, sr.started_ms, sr.finished_ms, sr.dir
         FROM step_runs sr JOIN workflow_runs wr ON wr.id = sr.run_id WHERE sr.id = ?1",
        [id],
        |r| {
            Ok(Attempt {
                id: r.get(0)?,
                status: r.get(1)?,
                step: r.get(2)?,
                attempt: r.get(3)?,
                workflow: r.get(4)?,
                run_id: r.get(5)?,
                started_ms: r.get(6)?,
                finished_ms: r.get(7)?,
                dir: r.get(8)?,
            })
        },
    )
    .optional()?)
}

fn find(engine: &Engine, id: &str) -> std::result::Result<Attempt, ApiError> {
    let not_found = || {
        mlflow_error(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!("Run '{id}' not found: sflow's runs are the step attempts it started, `sflow-<id>` as $MLFLOW_RUN_ID names them"),
        )
    };
    let n = parse_run_id(id).ok_or_else(not_found)?;
    engine
        .store()
        .with(|c| attempt(c, n))
        .map_err(internal)?
        .ok_or_else(not_found)
}

/// The attempt, if it may still be written to.
fn writable(engine: &Engine, id: &str) -> std::result::Result<Attempt, ApiError> {
    let a = find(engine, id)?;
    if a.status != "running" {
        return Err(mlflow_error(
            StatusCode::BAD_REQUEST,
            "INVALID_STATE",
            format!(
                "The run {id} must be in the 'active' state: attempt {} of step `{}` has ended ({})",
                a.attempt, a.step, a.status
            ),
        ));
    }
    Ok(a)
}

fn mlflow_status(status: &str) -> &'static str {
    match status {
        "running" => "RUNNING",
        "succeeded" | "cached" => "FINISHED",
        "failed" => "FAILED",
        _ => "KILLED",
    }
}

fn run_json(c: &Connection, a: &Attempt) -> Result<Value> {
    let mut metrics = Vec::new();
    let mut params = Vec::new();
    let mut tags = vec![
        json!({ "key": "mlflow.runName", "value": a.step }),
        json!({ "key": "sflow.workflow", "value": a.workflow }),
        json!({ "key": "sflow.step", "value": a.step }),
        json!({ "key": "sflow.run_id", "value": a.run_id.to_string() }),
        json!({ "key": "sflow.attempt", "value": a.attempt.to_string() }),
    ];
    let mut st = c.prepare(
        "SELECT kind, key, value, step, ts_ms FROM step_logged WHERE step_run_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([a.id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    let mut latest: BTreeMap<String, Value> = BTreeMap::new();
    for row in rows {
        let (kind, key, value, step, ts) = row?;
        match kind.as_str() {
            "metric" => {
                let v: f64 = value.parse().unwrap_or(0.0);
                latest.insert(
                    key.clone(),
                    json!({ "key": key, "value": v, "timestamp": ts, "step": step }),
                );
            }
            "param" => params.push(json!({ "key": key, "value": value })),
            _ => tags.push(json!({ "key": key, "value": value })),
        }
    }
    metrics.extend(latest.into_values());
    let id = run_id(a.id);
    let mut info = json!({
        "run_id": id, "run_uuid": id, "run_name": a.step, "experiment_id": "0",
        "user_id": "", "status": mlflow_status(&a.status), "start_time": a.started_ms,
        "artifact_uri": a.dir.as_deref().map(|d| format!("file://{d}")).unwrap_or_default(),
        "lifecycle_stage": "active",
    });
    if let Some(end) = a.finished_ms {
        info["end_time"] = json!(end);
    }
    Ok(
        json!({ "info": info, "data": { "metrics": metrics, "params": params, "tags": tags }, "inputs": {} }),
    )
}

#[derive(Deserialize)]
struct RunQuery {
    run_id: Option<String>,
    run_uuid: Option<String>,
}

fn the_run_id(
    run_id: &Option<String>,
    run_uuid: &Option<String>,
) -> std::result::Result<String, ApiError> {
    run_id
        .clone()
        .or_else(|| run_uuid.clone())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("Missing value for required parameter 'run_id'"))
}

async fn run_get(State(engine): State<Engine>, Query(q): Query<RunQuery>) -> Answer {
    let id = the_run_id(&q.run_id, &q.run_uuid)?;
    let a = find(&engine, &id)?;
    let run = engine.store().with(|c| run_json(c, &a)).map_err(internal)?;
    Ok(Json(json!({ "run": run })).into_response())
}

#[derive(Deserialize)]
struct UpdateRun {
    run_id: Option<String>,
    run_uuid: Option<String>,
}

/// `runs/update`: the client ends "its" run at exit (`mlflow.end_run()`); the attempt's status
/// is the runtime's to decide (from the exit status and the contract), so it is left as is.
async fn run_update(State(engine): State<Engine>, Json(body): Json<UpdateRun>) -> Answer {
    let id = the_run_id(&body.run_id, &body.run_uuid)?;
    let a = find(&engine, &id)?;
    let run = engine.store().with(|c| run_json(c, &a)).map_err(internal)?;
    Ok(Json(json!({ "run_info": run["info"] })).into_response())
}

async fn run_create() -> Answer {
    Err(bad("sflow creates the runs: each step attempt is one, named by $MLFLOW_RUN_ID; log to it (`mlflow.log_metric(…)` does) instead of starting a new run"))
}

async fn experiment_get(State(engine): State<Engine>) -> Answer {
    let name = engine.plan().app.name.clone();
    Ok(Json(json!({ "experiment": {
        "experiment_id": "0", "name": name, "artifact_location": "", "lifecycle_stage": "active", "tags": [],
    } }))
    .into_response())
}

/// One entity a client logs.
enum Logged {
    Metric {
        key: String,
        value: f64,
        step: i64,
        ts: i64,
    },
    Param {
        key: String,
        value: String,
    },
    Tag {
        key: String,
        value: String,
    },
}

fn number(v: &Value, what: &str) -> std::result::Result<f64, ApiError> {
    let f = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    }
    .ok_or_else(|| bad(format!("{what} must be a number, got {v}")))?;
    if f.is_finite() {
        Ok(f)
    } else {
        Err(bad(format!(
            "{what} is {f}: sflow records metrics as JSON numbers, which cannot be NaN or infinite"
        )))
    }
}

fn int_field(o: &Value, k: &str) -> i64 {
    match o.get(k) {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn text_field(o: &Value, k: &str) -> std::result::Result<String, ApiError> {
    match o.get(k) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Null) | None => Err(bad(format!("Missing value for required parameter '{k}'"))),
        Some(other) => Ok(other.to_string()),
    }
}

fn checked_key(key: String) -> std::result::Result<String, ApiError> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(bad(format!(
            "Invalid key '{key}': keys are 1 to {MAX_KEY} characters"
        )));
    }
    Ok(key)
}

fn metric(o: &Value, now: i64) -> std::result::Result<Logged, ApiError> {
    let key = checked_key(text_field(o, "key")?)?;
    let value = number(
        o.get("value").unwrap_or(&Value::Null),
        &format!("metric `{key}`"),
    )?;
    let ts = match int_field(o, "timestamp") {
        0 => now,
        t => t,
    };
    Ok(Logged::Metric {
        key,
        value,
        step: int_field(o, "step"),
        ts,
    })
}

fn param(o: &Value) -> std::result::Result<Logged, ApiError> {
    let key = checked_key(text_field(o, "key")?)?;
    let value = text_field(o, "value")?;
    if value.len() > MAX_PARAM {
        return Err(bad(format!(
            "param `{key}` is longer than {MAX_PARAM} characters"
        )));
    }
    Ok(Logged::Param { key, value })
}

fn tag(o: &Value) -> std::result::Result<Logged, ApiError> {
    let key = checked_key(text_field(o, "key")?)?;
    let value = text_field(o, "value")?;
    if value.len() > MAX_TAG {
        return Err(bad(format!(
            "tag `{key}` is longer than {MAX_TAG} characters"
        )));
    }
    Ok(Logged::Tag { key, value })
}

/// Records what a client logged, in one transaction: all of a batch or nothing. A param
/// already logged with another value is refused, as MLflow refuses it.
fn record(engine: &Engine, a: &Attempt, items: Vec<Logged>) -> Answer {
    let now = engine.shared().clock().now_ms();
    let outcome = engine.store().tx(|c| {
        let mut ins = c.prepare_cached(
            "INSERT INTO step_logged (step_run_id, kind, key, value, step, ts_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for item in &items {
            match item {
                Logged::Metric { key, value, step, ts } => {
                    ins.execute(params![a.id, "metric", key, value.to_string(), step, ts])?;
                }
                Logged::Param { key, value } => {
                    let before: Option<String> = c
                        .query_row(
                            "SELECT value FROM step_logged WHERE step_run_id = ?1 AND kind = 'param' AND key = ?2",
                            params![a.id, key],
                            |r| r.get(0),
                        )
                        .optional()?;
                    match before {
                        Some(v) if v == *value => {}
                        Some(v) => {
                            return Ok(Err(format!("Changing param values is not allowed. Param with key='{key}' was already logged with value='{v}' for run ID='{}'. Attempted logging new value '{value}'.", run_id(a.id))));
                        }
                        None => {
                            ins.execute(params![a.id, "param", key, value, 0, now])?;
                        }
                    }
                }
                Logged::Tag { key, value } => {
                    c.execute(
                        "DELETE FROM step_logged WHERE step_run_id = ?1 AND kind = 'tag' AND key = ?2",
                        params![a.id, key],
                    )?;
                    ins.execute(params![a.id, "tag", key, value, 0, now])?;
                }
            }
        }
        // The attempt may have ended while the request was on its way: check in the
        // transaction, so nothing is added to an attempt whose metrics were already checked.
        let status: String =
            c.query_row("SELECT status FROM step_runs WHERE id = ?1", [a.id], |r| r.get(0))?;
        if status != "running" {
            return Err(crate::error::Error::Msg(format!(
                "attempt {} of step `{}` has ended ({status})",
                a.attempt, a.step
            )));
        }
        Ok(Ok(()))
    });
    match outcome {
        Ok(Ok(())) => Ok(Json(json!({})).into_response()),
        Ok(Err(msg)) => Err(bad(msg)),
        Err(crate::error::Error::Msg(m)) => Err(mlflow_error(
            StatusCode::BAD_REQUEST,
            "INVALID_STATE",
            format!(
                "The run {} must be in the 'active' state: {m}",
                run_id(a.id)
            ),
        )),
        Err(e) => Err(internal(e)),
    }
}

async fn log_metric(State(engine): State<Engine>, Json(body): Json<Value>) -> Answer {
    let id = run_id_of(&body)?;
    let a = writable(&engine, &id)?;
    let m = metric(&body, engine.shared().clock().now_ms())?;
    record(&engine, &a, vec![m])
}

async fn log_param(State(engine): State<Engine>, Json(body): Json<Value>) -> Answer {
    let id = run_id_of(&body)?;
    let a = writable(&engine, &id)?;
    record(&engine, &a, vec![param(&body)?])
}

async fn set_tag(State(engine): State<Engine>, Json(body): Json<Value>) -> Answer {
    let id = run_id_of(&body)?;
    let a = writable(&engine, &id)?;
    record(&engine, &a, vec![tag(&body)?])
}

async fn log_batch(State(engine): State<Engine>, Json(body): Json<Value>) -> Answer {
    let id = run_id_of(&body)?;
    let a = writable(&engine, &id)?;
    let list = |k: &str| {
        body.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (metrics, params, tags) = (list("metrics"), list("params"), list("tags"));
    if metrics.len() + params.len() + tags.len() > MAX_BATCH {
        return Err(bad(format!(
            "A batch logging request can contain at most {MAX_BATCH} metrics, params and tags in total"
        )));
    }
    let now = engine.shared().clock().now_ms();
    let mut items = Vec::with_capacity(metrics.len() + params.len() + tags.len());
    for m in &metrics {
        items.push(metric(m, now)?);
    }
    for p in &params {
        items.push(param(p)?);
    }
    for t in &tags {
        items.push(tag(t)?);
    }
    record(&engine, &a, items)
}

fn run_id_of(body: &Value) -> std::result::Result<String, ApiError> {
    let s = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
    the_run_id(&s("run_id"), &s("run_uuid"))
}

/// The metric points an attempt logged through the MLflow API, as `$SFLOW_METRICS` points
/// (key, value, seq) that follow the file's (from `first_seq` on, in the order they
/// arrived), for the contract check. MLflow sends every value as a double: a declared `int`
/// gets a whole number as an integer and a declared `bool` gets 0 or 1 as a boolean, so that
/// the check sees what the step meant; anything else is checked as sent.
pub fn logged_points(
    store: &Store,
    step_run_id: i64,
    declared: &[PortPlan],
    first_seq: i64,
) -> Result<Vec<(String, Value, i64)>> {
    let rows: Vec<(String, String)> = store.with(|c| {
        let mut st = c.prepare_cached(
            "SELECT key, value FROM step_logged WHERE step_run_id = ?1 AND kind = 'metric' ORDER BY id",
        )?;
        let rows = st
            .query_map([step_run_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    })?;
    let ty = |k: &str| declared.iter().find(|m| m.name == k).map(|m| &m.ty);
    Ok(rows
        .into_iter()
        .enumerate()
        .map(|(i, (key, text))| {
            let f: f64 = text.parse().unwrap_or(f64::NAN);
            let value = match ty(&key) {
                Some(PlanType::Int) if f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
                Some(PlanType::Bool) if f == 0.0 || f == 1.0 => json!(f == 1.0),
                _ => json!(f),
            };
            (key, value, first_seq + i as i64)
        })
        .collect())
}
