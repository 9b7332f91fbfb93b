//! Local serving: the services of a program, served by this process while `sflow run` runs.
//!
//! **The seam.** Serving is the local backend's way of applying a service change
//! ([`crate::executor::Backend::apply_service`]), as creating a Deployment is a Kubernetes
//! backend's. The engine never knows how a service is served: it records the desired state
//! in the store (the service's `production` alias, its replicas) and tells the backend which
//! service changed; it hands the backend, once started, a [`BackendHost`] (store, plan,
//! state directory, a weak [`SignalSink`] for what the backend measures) and re-applies every
//! service's state, so serving comes back after a restart. [`LocalServing`] is what the
//! local backend keeps in this build; it only ever reads the store, and reports through the
//! same checked path as the control API.
//!
//! For each service, on its first model:
//!
//! - an Open Inference Protocol v2 server (`sflow_ml::serve::http`) on `127.0.0.1` at a free
//!   port, or the address given with `sflow run --serve SERVICE=ADDR`;
//! - the desired replicas as the serving engine's worker threads;
//! - a task publishing the measured service signals about once a second, when they change:
//!   `SERVICE.latency.p50/p95/p99` (over the requests of the last [`WINDOW`]; 0 when there
//!   was none), `SERVICE.requests` (answered requests, continuing across restarts) and
//!   `SERVICE.errors` (the share of the window's requests that failed with a 5xx);
//! - the request log that feeds the Tracker agents watching it ([`super::tracker`]).
//!
//! A later model is **hot-swapped**: it is loaded (and checked with one forward pass) beside
//! the served one, then replaces it; requests in flight finish on the model their batch
//! started with, so none fails. A change of replicas sets the number of workers.
//!
//! **Resources** (the service's `resources { cpu, memory }`, or the Planner's latest
//! `resize`, per replica) become the workers' limits ([`worker_limits`],
//! [`sflow_ml::serve::Limits`]): each worker runs its forward passes with `cpu` / 1000
//! libtorch intra-op threads (at least 1), and the requests waiting in the queue may hold at
//! most `memory` × replicas bytes of pixels (more is refused with 503). The process's memory as
//! a whole is not limited: only a container can do that (Kubernetes, where `resize` patches
//! the Deployment's resources).
//!
//! Where each service listens is written to `STATE/services.json` (name → url, model,
//! replicas, workers, pid), which `sflow status` and `GET /v1/status` show; the file is
//! removed when the runtime stops.

use super::tracker::{self, ServiceLog, TrackerSpec};
use crate::error::{Error, IoContext, Result};
use crate::executor::{BackendHost, Resources, ServiceChange, SignalSink};
use crate::store;
use crate::value::RtValue;
use serde_json::{json, Value as Json};
use sflow_ml::serve::http::{self, HttpConfig};
use sflow_ml::serve::Limits;
use sflow_ml::serve::{Engine, EngineConfig, RequestLog, ServedModel};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::{watch, Mutex};

/// The window of requests the latency and error signals are measured over.
pub const WINDOW: Duration = Duration::from_secs(30);
/// How often the service signals are published (when they changed).
pub const PUBLISH: Duration = Duration::from_secs(1);

fn services_file(state_dir: &Path) -> PathBuf {
    crate::state::services_path(state_dir)
}

/// A service being served.
struct Served {
    engine: Arc<Engine>,
    url: String,
    model: store::ModelRow,
    replicas: usize,
}

/// The services served by this process (one per service of the plan, once it has a model).
pub struct LocalServing {
    host: BackendHost,
    trackers: BTreeMap<String, Vec<TrackerSpec>>,
    /// Changes are applied one at a time, each bringing a service to what the store says.
    services: Mutex<BTreeMap<String, Served>>,
    /// Set when the engine stops: `services.json` is removed and not written again.
    stopped: AtomicBool,
}

impl std::fmt::Debug for LocalServing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalServing")
            .field("state_dir", &self.host.state_dir)
            .finish_non_exhaustive()
    }
}

/// What a service serves now, as `GET /v1/status` and tests see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServingInfo {
    /// Where its OIP v2 server listens (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The registry id of the model served (its OIP version).
    pub model_id: i64,
    /// Worker threads running.
    pub workers: usize,
    /// The workers' limits (from the service's resources).
    pub limits: Limits,
}

/// The workers' limits for `resources` per replica and `replicas` workers (see the module
/// documentation).
pub fn worker_limits(resources: Option<&Resources>, replicas: usize) -> Limits {
    let Some(r) = resources else {
        return Limits::default();
    };
    Limits {
        threads_per_worker: r
            .cpu_millis
            .map(|m| usize::try_from(m / 1000).unwrap_or(usize::MAX).max(1)),
        queue_bytes: r
            .memory_bytes
            .map(|b| b.saturating_mul(replicas.max(1) as u64)),
    }
}

impl LocalServing {
    /// Serving for the engine that attached `host` (a `services.json` left by a runtime
    /// that did not stop cleanly is removed). The servers stop when the engine shuts down.
    pub fn new(host: BackendHost) -> Arc<LocalServing> {
        let _ = std::fs::remove_file(services_file(&host.state_dir));
        Arc::new(LocalServing {
            trackers: tracker::trackers_of(&host.plan),
            services: Mutex::new(BTreeMap::new()),
            stopped: AtomicBool::new(false),
            host,
        })
    }

    /// The engine stops: `services.json` goes (the servers stop with the engine's shutdown
    /// signal).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _ = std::fs::remove_file(services_file(&self.host.state_dir));
    }

    /// Brings the service a change is about to what the store records: its `production`
    /// model (started, or hot-swapped) and its replicas (worker threads).
    pub async fn apply(&self, change: ServiceChange) -> Result<()> {
        self.reconcile(change.service()).await
    }

    /// What `service` serves now, if it serves.
    pub async fn info(&self, service: &str) -> Option<ServingInfo> {
        let services = self.services.lock().await;
        services.get(service).map(|s| ServingInfo {
            url: s.url.clone(),
            model_id: s.model.id,
            workers: s.engine.workers(),
            limits: s.engine.limits(),
        })
    }

    /// The serving engine of `service` (metrics, workers), if it serves.
    pub async fn engine(&self, service: &str) -> Option<Arc<Engine>> {
        self.services
            .lock()
            .await
            .get(service)
            .map(|s| s.engine.clone())
    }

    async fn reconcile(&self, service: &str) -> Result<()> {
        if *self.host.shutdown.borrow() || self.host.plan.service(service).is_none() {
            return Ok(());
        }
        let mut services = self.services.lock().await;
        let st = &self.host.store;
        let replicas = st
            .with(|c| store::service(c, service))?
            .map_or(1, |r| r.replicas)
            .max(1) as usize;
        let resources = crate::engine::desired_resources(st, &self.host.plan, service)?;
        let limits = worker_limits(resources.as_ref(), replicas);
        let model = match st.with(|c| store::alias(c, service, "production"))? {
            Some((id, _)) => st.with(|c| store::model(c, id))?,
            None => None,
        };
        match (services.get_mut(service), model) {
            // Waits for its first model.
            (None, None) => return Ok(()),
            (None, Some(m)) => {
                let served = self.start(service, m, replicas).await?;
                services.insert(service.to_string(), served);
            }
            (Some(s), model) => {
                if let Some(m) = model.filter(|m| m.id != s.model.id) {
                    let loaded = load(service, &m).await?;
                    s.engine.swap_model(loaded);
                    tracing::info!(
                        service,
                        model = m.name,
                        version = m.version,
                        "hot-swapped the served model"
                    );
                    s.model = m;
                }
                if s.replicas != replicas {
                    s.engine.set_workers(replicas);
                    s.replicas = replicas;
                    tracing::info!(service, replicas, "serving workers set");
                }
            }
        }
        if let Some(s) = services.get(service) {
            if s.engine.limits() != limits {
                s.engine.set_limits(limits);
                tracing::info!(
                    service,
                    threads_per_worker = ?limits.threads_per_worker,
                    queue_bytes = ?limits.queue_bytes,
                    "serving workers' limits set"
                );
            }
        }
        self.write_file(&services)
    }

    async fn start(&self, service: &str, m: store::ModelRow, replicas: usize) -> Result<Served> {
        let loaded = load(service, &m).await?;
        let sink = self.host.signals.clone();
        let log = self
            .trackers
            .get(service)
            .and_then(|specs| ServiceLog::new(specs, &self.host.state_dir, &sink));
        let engine = Engine::new(
            Some(loaded),
            EngineConfig {
                workers: replicas,
                ..EngineConfig::default()
            },
            log.clone().map(|l| l as Arc<dyn RequestLog>),
        );
        let addr = self
            .host
            .serve_addrs
            .get(service)
            .copied()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .ctx(|| format!("service `{service}`: cannot listen on {addr}"))?;
        let local = listener
            .local_addr()
            .ctx(|| format!("service `{service}`: its address"))?;
        let url = format!("http://{local}");
        let mut shutdown = self.host.shutdown.clone();
        let e = engine.clone();
        let name = service.to_string();
        tokio::spawn(async move {
            let stop = async move {
                let _ = shutdown.wait_for(|s| *s).await;
            };
            if let Err(err) = http::serve(listener, e, &HttpConfig::default(), stop).await {
                tracing::error!(service = name, "serving stopped: {err}");
            }
        });
        tokio::spawn(publish_signals(
            service.to_string(),
            engine.clone(),
            sink.clone(),
            self.host.shutdown.clone(),
        ));
        for t in log.iter().flat_map(|l| l.trackers()) {
            tokio::spawn(t.clone().publish(sink.clone(), self.host.shutdown.clone()));
        }
        tracing::info!(
            service,
            url,
            model = m.name,
            version = m.version,
            replicas,
            "serving (Open Inference Protocol v2)"
        );
        Ok(Served {
            engine,
            url,
            model: m,
            replicas,
        })
    }

    fn write_file(&self, services: &BTreeMap<String, Served>) -> Result<()> {
        if self.stopped.load(Ordering::SeqCst) {
            return Ok(());
        }
        let doc: serde_json::Map<String, Json> = services
            .iter()
            .map(|(name, s)| {
                (
                    name.clone(),
                    json!({
                        "url": s.url,
                        "model": { "id": s.model.id, "name": s.model.name, "version": s.model.version },
                        "replicas": s.replicas,
                        "workers": s.engine.workers(),
                        "limits": s.engine.limits(),
                        "pid": std::process::id(),
                    }),
                )
            })
            .collect();
        let path = services_file(&self.host.state_dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&doc)?)
            .ctx(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).ctx(|| format!("cannot write {}", path.display()))
    }
}

/// Loads (and checks with one forward pass) a registered model, off the async threads.
async fn load(service: &str, m: &store::ModelRow) -> Result<ServedModel> {
    let (name, path) = (service.to_string(), PathBuf::from(&m.path));
    let version = m.id.to_string();
    let accuracy = m.metrics.get("accuracy").and_then(Json::as_f64);
    let model = tokio::task::spawn_blocking(move || ServedModel::load(&name, &version, &path))
        .await
        .map_err(|e| Error::Msg(format!("loading a model: {e}")))?
        .map_err(|e| {
            Error::Msg(format!(
                "service `{service}` cannot serve {} v{} ({}): {e}",
                m.name, m.version, m.path
            ))
        })?;
    Ok(ServedModel { accuracy, ..model })
}

/// Publishes `service`'s measured signals every [`PUBLISH`] while they change.
async fn publish_signals(
    service: String,
    engine: Arc<Engine>,
    sink: Weak<dyn SignalSink>,
    mut shutdown: watch::Receiver<bool>,
) {
    let base = match sink
        .upgrade()
        .and_then(|s| s.signal(&format!("{service}.requests")))
    {
        Some(RtValue::Int { value }) => u64::try_from(value).unwrap_or(0),
        _ => 0,
    };
    let mut last: BTreeMap<&'static str, Json> = BTreeMap::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(PUBLISH) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        let Some(sink) = sink.upgrade() else { return };
        let m = engine.metrics();
        let w = m.window(WINDOW);
        let errors = if w.requests == 0 {
            0.0
        } else {
            w.server_errors as f64 / w.requests as f64
        };
        let now = [
            ("latency.p50", json!(w.latency.p50)),
            ("latency.p95", json!(w.latency.p95)),
            ("latency.p99", json!(w.latency.p99)),
            ("requests", json!(base + m.requests())),
            ("errors", json!(errors)),
        ];
        for (path, v) in now {
            if last.get(path) == Some(&v) {
                continue;
            }
            match sink.set_service_signal(&service, path, &v) {
                Ok(_) => {
                    last.insert(path, v);
                }
                Err(e) => tracing::warn!(service, path, "cannot set a service signal: {e}"),
            }
        }
    }
}
