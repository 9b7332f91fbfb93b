//! The runtime's HTTP port in the cluster (`SFLOW_LISTEN`, `:8080`): health, metrics, and the
//! control API of docs/runtime.md §8 while this replica leads.
//!
//! | path | answers |
//! | --- | --- |
//! | `GET /livez` | `ok` while the process runs |
//! | `GET /readyz` | 200 with `{"ready": true, "leader": BOOL, "identity": …}` once the plan is loaded: a replica waiting for the Lease is ready too (it must be, or a rolling update with `maxUnavailable: 0` could never replace the leader) |
//! | `GET /metrics` | Prometheus text: leadership, Workflows created and re-attached, watch errors, attempts recorded, service patches, model servers' reports |
//! | `POST /v1/services/SERVICE/report` | a model server's report (`crate::ml::report`; feature `ml`): the ingest token or the control API's; 503 on a replica that does not lead |
//! | anything else | the control API (bearer token) on the leader; 503 on a replica that does not lead |

use super::backend::Stats;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tower::ServiceExt;

/// What the HTTP port serves, shared with the election loop.
pub struct Port {
    /// This replica.
    pub identity: String,
    /// Whether it holds the Lease and runs the engine.
    pub leading: AtomicBool,
    /// Times it became the leader.
    pub acquisitions: AtomicU64,
    /// The control API, while leading.
    pub api: RwLock<Option<Router>>,
    /// What the backend did.
    pub stats: Arc<Stats>,
    /// The receiver of the model servers' reports and the tokens it accepts, while leading.
    #[cfg(feature = "ml")]
    pub ingest: RwLock<Option<(Arc<crate::ml::ingest::Ingest>, Vec<String>)>>,
}

impl Port {
    /// A port for `identity`, not leading.
    pub fn new(identity: &str, stats: Arc<Stats>) -> Arc<Port> {
        Arc::new(Port {
            identity: identity.to_string(),
            leading: AtomicBool::new(false),
            acquisitions: AtomicU64::new(0),
            api: RwLock::new(None),
            stats,
            #[cfg(feature = "ml")]
            ingest: RwLock::new(None),
        })
    }

    /// Starts serving the control API (this replica now leads).
    pub fn lead(&self, api: Router) {
        if let Ok(mut slot) = self.api.write() {
            *slot = Some(api);
        }
        self.leading.store(true, Ordering::SeqCst);
        self.acquisitions.fetch_add(1, Ordering::Relaxed);
    }

    /// Stops serving the control API.
    pub fn follow(&self) {
        self.leading.store(false, Ordering::SeqCst);
        if let Ok(mut slot) = self.api.write() {
            *slot = None;
        }
        #[cfg(feature = "ml")]
        if let Ok(mut slot) = self.ingest.write() {
            *slot = None;
        }
    }

    /// Starts taking the model servers' reports, authenticated by one of `tokens` (the
    /// ingest token, which allows nothing else, and the control API's).
    #[cfg(feature = "ml")]
    pub fn receive(&self, ingest: Arc<crate::ml::ingest::Ingest>, tokens: Vec<String>) {
        if let Ok(mut slot) = self.ingest.write() {
            *slot = Some((ingest, tokens));
        }
    }
}

/// The routes.
pub fn router(port: Arc<Port>) -> Router {
    let routes = Router::new();
    #[cfg(feature = "ml")]
    let routes = routes.route(
        "/v1/services/{service}/report",
        axum::routing::post(report).layer(axum::extract::DefaultBodyLimit::max(
            crate::ml::report::MAX_REPORT_BYTES,
        )),
    );
    routes
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(control)
        .with_state(port)
}

async fn readyz(State(port): State<Arc<Port>>) -> Response {
    Json(json!({
        "ready": true,
        "leader": port.leading.load(Ordering::SeqCst),
        "identity": port.identity,
    }))
    .into_response()
}

async fn metrics(State(port): State<Arc<Port>>) -> Response {
    let s = &port.stats;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    };
    metric(
        "sflow_runtime_leader",
        "gauge",
        "1 while this replica holds the Lease and acts.",
        u64::from(port.leading.load(Ordering::SeqCst)),
    );
    metric(
        "sflow_runtime_leader_acquisitions_total",
        "counter",
        "Times this replica became the leader.",
        port.acquisitions.load(Ordering::Relaxed),
    );
    metric(
        "sflow_runtime_workflows_created_total",
        "counter",
        "Argo Workflows created for runs.",
        s.workflows_created.load(Ordering::Relaxed),
    );
    metric(
        "sflow_runtime_workflows_attached_total",
        "counter",
        "Argo Workflows found already created and followed (after a restart).",
        s.workflows_attached.load(Ordering::Relaxed),
    );
    metric(
        "sflow_runtime_workflows_adopted_total",
        "counter",
        "Argo Workflows that CronWorkflows started, followed and recorded as runs.",
        s.workflows_adopted.load(Ordering::Relaxed),
    );
    metric(
        "sflow_runtime_watch_errors_total",
        "counter",
        "Errors of Workflow watches, each followed by a resumption.",
        s.watch_errors.load(Ordering::Relaxed),
    );
    metric(
        "sflow_runtime_attempts_recorded_total",
        "counter",
        "Step attempts recorded as finished.",
        s.attempts_recorded.load(Ordering::Relaxed),
    );
    metric(
        "sflow_runtime_service_patches_total",
        "counter",
        "Patches to services' Deployments and autoscalers.",
        s.service_patches.load(Ordering::Relaxed),
    );
    #[cfg(feature = "ml")]
    {
        let ingest = port
            .ingest
            .read()
            .ok()
            .and_then(|i| i.as_ref().map(|(i, _)| i.clone()));
        let read = |f: fn(&crate::ml::ingest::IngestStats) -> &AtomicU64| {
            ingest
                .as_ref()
                .map_or(0, |i| f(&i.stats).load(Ordering::Relaxed))
        };
        metric(
            "sflow_runtime_reports_total",
            "counter",
            "Model servers' reports taken while leading.",
            read(|s| &s.reports),
        );
        metric(
            "sflow_runtime_report_records_total",
            "counter",
            "Request records of the reports handed to Trackers.",
            read(|s| &s.records),
        );
        metric(
            "sflow_runtime_report_records_dropped_total",
            "counter",
            "Request records the model servers said they dropped.",
            read(|s| &s.dropped),
        );
    }
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
}

/// `POST /v1/services/SERVICE/report`: a model server's report.
#[cfg(feature = "ml")]
async fn report(
    State(port): State<Arc<Port>>,
    axum::extract::Path(service): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    use crate::ml::ingest::IngestError;
    let receiver = port.ingest.read().ok().and_then(|i| i.clone());
    let Some((ingest, tokens)) = receiver else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "error": format!("{} does not hold the lease: the leader takes reports", port.identity),
            })),
        )
            .into_response();
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if given.is_empty() || !tokens.iter().any(|t| t == given) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "a report needs the runtime's ingest token (Authorization: Bearer …)"})),
        )
            .into_response();
    }
    let parsed: crate::ml::report::Report = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("not a report: {e}")})),
            )
                .into_response()
        }
    };
    match ingest.report(&service, parsed).await {
        Ok(ack) => Json(ack).into_response(),
        Err(e) => {
            let status = match e {
                IngestError::NoService(_) => StatusCode::NOT_FOUND,
                IngestError::Bad(_) => StatusCode::BAD_REQUEST,
                IngestError::Stopping => StatusCode::SERVICE_UNAVAILABLE,
            };
            (status, Json(json!({"error": e.to_string()}))).into_response()
        }
    }
}

async fn control(State(port): State<Arc<Port>>, req: Request<Body>) -> Response {
    let api = port.api.read().ok().and_then(|a| a.clone());
    match api {
        Some(api) => match api.oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        },
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "error": format!("{} does not hold the lease: the leader serves the control API", port.identity),
            })),
        )
            .into_response(),
    }
}
