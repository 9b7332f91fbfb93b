//! The runtime's HTTP port in the cluster (`SFLOW_LISTEN`, `:8080`): health, metrics, and the
//! control API of docs/runtime.md §8 while this replica leads.
//!
//! | path | answers |
//! | --- | --- |
//! | `GET /livez` | `ok` while the process runs |
//! | `GET /readyz` | 200 with `{"ready": true, "leader": BOOL, "identity": …}` once the plan is loaded: a replica waiting for the Lease is ready too (it must be, or a rolling update with `maxUnavailable: 0` could never replace the leader) |
//! | `GET /metrics` | Prometheus text: leadership, Workflows created and re-attached, watch errors, attempts recorded, service patches |
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
    }
}

/// The routes.
pub fn router(port: Arc<Port>) -> Router {
    Router::new()
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
    ([("content-type", "text/plain; version=0.0.4")], out).into_response()
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
