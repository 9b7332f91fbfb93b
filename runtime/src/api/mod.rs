//! The control API: HTTP on loopback (axum). Every request but `GET /healthz` needs the
//! bearer token from the state directory (`Authorization: Bearer TOKEN`); without it the
//! answer is 401.
//!
//! | method and path | does |
//! | --- | --- |
//! | `GET /healthz` | `ok` (no token needed) |
//! | `GET /v1/status` | apps, run counts, services, signals, pending firings |
//! | `GET /v1/runs?limit=N` | runs, newest first |
//! | `POST /v1/runs` `{"workflow": W, "params": {"k": "v"}}` | starts a run (202, `{"run": ID}`) |
//! | `GET /v1/runs/ID` | a run with params, attempts, metrics, artifacts |
//! | `GET /v1/models` | the model registry |
//! | `GET /v1/decisions?limit=N` | the decisions audit log |
//! | `GET /v1/events?after=ID&limit=N` | events |
//! | `GET /v1/agents` | agents, their kinds and current sensor values |
//! | `PUT /v1/agents/AGENT/sensors/SENSOR` (JSON value) | sets a sensor |
//! | `GET /v1/agents/AGENT/actions?after=ID` | actions published for an external implementation |
//! | `PUT /v1/services/SERVICE/signals/SIGNAL` (JSON value) | sets `latency.p95`, `requests`, `errors` |
//! | `GET/POST /api/2.0/mlflow/…` | the MLflow REST subset steps log to (`crate::mlflow::server`) |
//! | `POST /PATH` | a `webhook "/PATH"` trigger (an `Idempotency-Key` header makes retries fire once) |

use crate::engine::Engine;
use crate::report;
use crate::store;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
struct AppState {
    engine: Engine,
    token: Arc<str>,
}

type ApiResult = Result<Response, (StatusCode, Json<Value>)>;

fn err(status: StatusCode, msg: impl Into<String>) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "error": msg.into() })))
}

fn internal(e: crate::error::Error) -> (StatusCode, Json<Value>) {
    err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn ok(v: Value) -> ApiResult {
    Ok(Json(v).into_response())
}

/// Serves the control API on `addr` until the engine shuts down; returns the bound address
/// once listening (through `bound`).
pub async fn serve(
    engine: Engine,
    token: String,
    addr: SocketAddr,
    bound: tokio::sync::oneshot::Sender<SocketAddr>,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let _ = bound.send(local);
    serve_on(engine, token, listener).await
}

/// Serves the control API on a socket bound beforehand (so that its address could be given
/// to the engine's steps as `MLFLOW_TRACKING_URI`) until the engine shuts down.
pub async fn serve_on(
    engine: Engine,
    token: String,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    let mut shutdown = engine.shutdown_signal();
    let app = router(engine, token);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await
}

/// The API's routes.
pub fn router(engine: Engine, token: String) -> Router {
    let state = AppState {
        engine,
        token: Arc::from(token.as_str()),
    };
    let v1 = Router::new()
        .route("/v1/status", get(status))
        .route("/v1/runs", get(runs).post(start_run))
        .route("/v1/runs/{id}", get(run))
        .route("/v1/models", get(models))
        .route("/v1/decisions", get(decisions))
        .route("/v1/events", get(events))
        .route("/v1/agents", get(agents))
        .route("/v1/agents/{agent}/sensors/{sensor}", put(set_sensor))
        .route("/v1/agents/{agent}/actions", get(agent_actions))
        .route(
            "/v1/services/{service}/signals/{signal}",
            put(set_service_signal),
        )
        .nest_service(
            "/api/2.0/mlflow",
            crate::mlflow::server::router(state.engine.clone()),
        )
        .fallback(webhook)
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state);
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(v1)
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if same(t.as_bytes(), st.token.as_bytes()) => next.run(req).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Bearer")],
            Json(json!({ "error": "missing or wrong bearer token (it is in the state directory's `token` file)" })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct Page {
    limit: Option<i64>,
    after: Option<i64>,
}

async fn status(State(st): State<AppState>) -> ApiResult {
    let mut v = report::status(st.engine.store()).map_err(internal)?;
    report::add_serving(&mut v, crate::state::read_services(st.engine.state_dir()));
    if let Value::Object(o) = &mut v {
        o.insert(
            "live".into(),
            json!({ "signals": st.engine.signals(), "busy": st.engine.busy() }),
        );
    }
    ok(v)
}

async fn runs(State(st): State<AppState>, Query(p): Query<Page>) -> ApiResult {
    ok(report::runs(st.engine.store(), p.limit.unwrap_or(50)).map_err(internal)?)
}

async fn run(State(st): State<AppState>, Path(id): Path<i64>) -> ApiResult {
    report::run(st.engine.store(), id)
        .map(|v| Json(v).into_response())
        .map_err(|e| err(StatusCode::NOT_FOUND, e.to_string()))
}

#[derive(Deserialize)]
struct StartRun {
    workflow: String,
    #[serde(default)]
    params: BTreeMap<String, Value>,
}

async fn start_run(State(st): State<AppState>, Json(body): Json<StartRun>) -> ApiResult {
    let params: BTreeMap<String, String> = body
        .params
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                },
            )
        })
        .collect();
    match st.engine.run_workflow(&body.workflow, &params, "api") {
        Ok(id) => Ok((StatusCode::ACCEPTED, Json(json!({ "run": id }))).into_response()),
        Err(e) => Err(err(StatusCode::BAD_REQUEST, e.to_string())),
    }
}

async fn models(State(st): State<AppState>) -> ApiResult {
    ok(report::models(st.engine.store()).map_err(internal)?)
}

async fn decisions(State(st): State<AppState>, Query(p): Query<Page>) -> ApiResult {
    ok(report::decisions(st.engine.store(), p.limit.unwrap_or(100)).map_err(internal)?)
}

async fn events(State(st): State<AppState>, Query(p): Query<Page>) -> ApiResult {
    ok(report::events(
        st.engine.store(),
        p.after.unwrap_or(0),
        p.limit.unwrap_or(100),
    )
    .map_err(internal)?)
}

async fn agents(State(st): State<AppState>) -> ApiResult {
    let plan = st.engine.plan();
    let signals = st.engine.signals();
    let list: Vec<Value> = plan
        .agents
        .iter()
        .map(|a| {
            let kind = plan.agent_kind(&a.kind);
            let sensors: serde_json::Map<String, Value> = kind
                .map(|k| k.sensors.iter().map(|s| (s.name.clone(), signals.get(&format!("{}.{}", a.name, s.name)).cloned().unwrap_or(Value::Null))).collect())
                .unwrap_or_default();
            let actions: Vec<Value> = kind
                .map(|k| {
                    k.actions
                        .iter()
                        .map(|act| json!({ "name": act.name, "binding": act.binding.as_ref().map(|b| serde_json::to_value(b).unwrap_or(Value::Null)) }))
                        .collect()
                })
                .unwrap_or_default();
            json!({ "name": a.name, "kind": a.kind, "builtin": kind.is_some_and(|k| k.builtin), "sensors": sensors, "actions": actions })
        })
        .collect();
    ok(Value::Array(list))
}

async fn set_sensor(
    State(st): State<AppState>,
    Path((agent, sensor)): Path<(String, String)>,
    Json(v): Json<Value>,
) -> ApiResult {
    match st.engine.set_sensor(&agent, &sensor, &v) {
        Ok(value) => ok(json!({ "agent": agent, "sensor": sensor, "value": value.to_json() })),
        Err(e) => Err(err(StatusCode::BAD_REQUEST, e.to_string())),
    }
}

async fn set_service_signal(
    State(st): State<AppState>,
    Path((service, signal)): Path<(String, String)>,
    Json(v): Json<Value>,
) -> ApiResult {
    match st.engine.set_service_signal(&service, &signal, &v) {
        Ok(value) => ok(json!({ "service": service, "signal": signal, "value": value.to_json() })),
        Err(e) => Err(err(StatusCode::BAD_REQUEST, e.to_string())),
    }
}

async fn agent_actions(
    State(st): State<AppState>,
    Path(agent): Path<String>,
    Query(p): Query<Page>,
) -> ApiResult {
    if st.engine.plan().agent(&agent).is_none() {
        return Err(err(StatusCode::NOT_FOUND, format!("no agent `{agent}`")));
    }
    let rows = st
        .engine
        .store()
        .with(|c| store::agent_actions(c, &agent, p.after.unwrap_or(0)))
        .map_err(internal)?;
    ok(serde_json::to_value(rows).unwrap_or(Value::Null))
}

async fn webhook(
    State(st): State<AppState>,
    method: Method,
    headers: HeaderMap,
    req: Request,
) -> ApiResult {
    let path = req.uri().path().to_string();
    if method != Method::POST {
        return Err(err(
            StatusCode::NOT_FOUND,
            format!("no route {method} {path}"),
        ));
    }
    let idem = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match st.engine.webhook(&path, idem.as_deref()) {
        Ok(Some(key)) => {
            let (status, runs) = st
                .engine
                .firing_runs(&key, Duration::from_secs(5))
                .await
                .map_err(internal)?;
            Ok((
                StatusCode::ACCEPTED,
                Json(json!({ "firing": key, "status": status, "runs": runs })),
            )
                .into_response())
        }
        Ok(None) => Err(err(
            StatusCode::NOT_FOUND,
            format!("no webhook trigger on {path}"),
        )),
        Err(e) => Err(internal(e)),
    }
}
