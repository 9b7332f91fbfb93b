//! `sflow serve`: one TorchScript model served alone, without a runtime — the server of a
//! Kubernetes service without `image` (docs/kubernetes-manifests.md §11), and a quick way to
//! serve any sflow model file.
//!
//! ```text
//! sflow serve [--model PATH | $SFLOW_MODEL] [--port PORT | $SFLOW_PORT] [--listen ADDR]
//!             [--replicas N] [--name NAME | $SFLOW_SERVICE] [--watch-interval 1s]
//!             [--runtime-url URL | $SFLOW_RUNTIME_URL]
//!             [--runtime-token-file PATH | $SFLOW_RUNTIME_TOKEN_FILE] [--replica-id ID | $HOSTNAME]
//! ```
//!
//! With a runtime URL (a Kubernetes service's pods get `SFLOW_RUNTIME_URL`) it reports its
//! request log and latency window to the runtime about once a second ([`super::report`]), so
//! the runtime's Trackers and service signals follow the traffic of every replica.
//!
//! It answers the Open Inference Protocol v2 and `/metrics` (see `sflow_ml::serve::http`).
//! Until a model is loaded, `/v2/health/ready` says 503 and inference requests get 503: a
//! server started before the runtime has set `SFLOW_MODEL` — or before the file exists —
//! is live but not ready.
//!
//! **Hot replacement: the model file is watched.** Every `--watch-interval` the server looks
//! at the file (size, modification time, inode); when it changed, it loads the new model
//! beside the served one (checked with one forward pass) and swaps it in without failing a
//! request. Replace the file atomically (write elsewhere, then `mv`): a half-written file
//! fails to load, is logged, and the served model stays until the next change. The OIP
//! version of the model is the first 12 hex digits of the file's SHA-256. Watching was chosen
//! over the model-repository extension (`POST /v2/repository/models/{name}/load`) because
//! that endpoint, unauthenticated, would let anyone who reaches the port load any file of the
//! server's file system; changing what is served should need write access to the model file.

use crate::executor::digest;
use sflow_ml::serve::http::{self, HttpConfig};
use sflow_ml::serve::{Engine, EngineConfig, ServedModel};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How to run `sflow serve`.
#[derive(Clone, Debug)]
pub struct Options {
    /// The TorchScript model to serve (`None`: not ready until restarted with one).
    pub model: Option<PathBuf>,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Worker threads.
    pub replicas: usize,
    /// The model's name in the API (`/v2/models/NAME`).
    pub name: String,
    /// How often the model file is looked at.
    pub watch_interval: Duration,
    /// Where to report the request log and latency (`None`: nowhere).
    pub report: Option<super::report::ReportTo>,
}

/// What identifies a version of the file on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime_ns: i128,
    ino: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        ino: m.ino(),
    })
}

/// Loads the model at `path`, named `name`, versioned by its digest.
fn load(name: &str, path: &Path) -> Result<ServedModel, String> {
    let (sha, _) = digest::digest_path(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let version: String = sha.chars().take(12).collect();
    ServedModel::load(name, &version, path).map_err(|e| e.to_string())
}

/// Watches `path` and swaps in each new version that loads.
async fn watch_model(engine: Arc<Engine>, name: String, path: PathBuf, every: Duration) {
    let mut seen: Option<Stamp> = None;
    loop {
        let now = stamp(&path);
        if now.is_some() && now != seen {
            seen = now;
            let (n, p) = (name.clone(), path.clone());
            match tokio::task::spawn_blocking(move || load(&n, &p)).await {
                Ok(Ok(model)) => {
                    let version = model.version.clone();
                    let first = engine.swap_model(model).is_none();
                    tracing::info!(
                        model = %path.display(),
                        version,
                        "{}",
                        if first { "model loaded: ready" } else { "model file changed: hot-swapped" }
                    );
                }
                Ok(Err(e)) => tracing::warn!(
                    "cannot load the model (the served one, if any, stays until the file changes again): {e}"
                ),
                Err(e) => tracing::warn!("loading the model: {e}"),
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Runs the server until `shutdown` completes; returns the exit status (0, or 2 when it
/// cannot listen).
pub async fn run(
    opts: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> i32 {
    // One libtorch thread per process: parallelism comes from the workers (docs/ml.md).
    sflow_ml::set_torch_threads(1);
    let reporter = opts.report.clone().map(super::report::Reporter::new);
    let engine = Engine::new(
        None,
        EngineConfig {
            workers: opts.replicas.max(1),
            ..EngineConfig::default()
        },
        reporter
            .clone()
            .map(|r| r as Arc<dyn sflow_ml::serve::RequestLog>),
    );
    let (stop_reports, reports_stopped) = tokio::sync::watch::channel(false);
    if let Some(r) = &reporter {
        tracing::info!(
            url = r_url(&opts),
            "reporting requests and latency to the runtime"
        );
        tokio::spawn(r.clone().run(engine.clone(), reports_stopped));
    }
    let listener = match tokio::net::TcpListener::bind(opts.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", opts.listen);
            return 2;
        }
    };
    let addr = listener
        .local_addr()
        .map_or_else(|_| opts.listen.to_string(), |a| a.to_string());
    match &opts.model {
        Some(path) => {
            tokio::spawn(watch_model(
                engine.clone(),
                opts.name.clone(),
                path.clone(),
                opts.watch_interval,
            ));
        }
        None => tracing::warn!(
            "no model (--model or SFLOW_MODEL): live, but not ready until restarted with one"
        ),
    }
    eprintln!(
        "serving `{}` on http://{addr} (Open Inference Protocol v2, /metrics), {} workers",
        opts.name,
        opts.replicas.max(1)
    );
    let served = http::serve(listener, engine, &HttpConfig::default(), shutdown).await;
    let _ = stop_reports.send(true);
    if let Some(r) = &reporter {
        tracing::info!(
            reports = r.sent(),
            dropped = r.dropped_total(),
            "stopped reporting to the runtime"
        );
    }
    match served {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: serving: {e}");
            1
        }
    }
}

fn r_url(opts: &Options) -> String {
    opts.report
        .as_ref()
        .map(|r| r.url.clone())
        .unwrap_or_default()
}
