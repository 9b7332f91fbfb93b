//! The runtime's side of the model servers' reports ([`super::report`]): what the replicas of a
//! service send becomes the same service signals and Tracker sensors and batches as local
//! serving's ([`super::serving`], [`super::tracker`]), through the engine's [`SignalSink`].
//!
//! **Aggregation over replicas** (each replica reports on its own):
//!
//! - `SERVICE.requests` — the sum: each report adds the requests its replica answered since its
//!   previous acknowledged report to the recorded value (so it continues across restarts);
//! - `SERVICE.errors` — exact: the 5xx answers of every live replica's window over all their
//!   requests;
//! - `SERVICE.latency.p50/p95/p99` — the **largest** of the live replicas' quantiles (replicas
//!   with requests in their window). This is an upper bound of the quantile over the merged
//!   requests (if each replica has 95% of its requests under its p95, 95% of all requests are
//!   under the largest p95), never below it: a policy `when latency.p95 > X` fires when the
//!   merged p95 could exceed X, which is what scaling out should react to. Replicas send
//!   summaries, not every latency, to keep reports small;
//! - a replica is live while it reported within the last [`WINDOW`]; with none live the
//!   latency and error signals go to 0, as locally when no request came in the window.
//!
//! Records go to the service's [`ServiceLog`] (one for all replicas), so a Tracker counts and
//! batches the requests of every replica: `STATE/batches/SERVICE/SEQ/` on the runtime's state
//! directory (the artifacts volume in a cluster), as locally.

use super::report::{Ack, Report, WINDOW};
use super::tracker::{self, ServiceLog, TrackerSpec};
use crate::executor::SignalSink;
use crate::value::RtValue;
use serde_json::{json, Value as Json};
use sflow_compiler::lower::plan::Plan;
use sflow_ml::serve::{RequestLog, WindowSummary};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Mutex};

/// How often the aggregated signals are recomputed without reports (replicas expiring).
pub const TICK: Duration = Duration::from_secs(1);

/// Why a report was refused.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The plan has no such service (404).
    #[error("the program has no service `{0}`")]
    NoService(String),
    /// The report is not usable (400).
    #[error("{0}")]
    Bad(String),
    /// The engine is gone (503).
    #[error("the runtime is stopping")]
    Stopping,
}

#[derive(Default)]
struct ServiceState {
    replicas: BTreeMap<String, (Instant, WindowSummary)>,
    log: Option<Arc<ServiceLog>>,
    last: BTreeMap<&'static str, Json>,
}

/// What the runtime received, for `/metrics`.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Reports accepted.
    pub reports: AtomicU64,
    /// Records accepted (handed to Trackers).
    pub records: AtomicU64,
    /// Records the replicas said they dropped.
    pub dropped: AtomicU64,
}

/// The receiver of the model servers' reports (one per engine).
pub struct Ingest {
    plan: Arc<Plan>,
    state_dir: PathBuf,
    sink: Weak<dyn SignalSink>,
    shutdown: watch::Receiver<bool>,
    trackers: BTreeMap<String, Vec<TrackerSpec>>,
    services: Mutex<BTreeMap<String, ServiceState>>,
    /// What it received.
    pub stats: IngestStats,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("state_dir", &self.state_dir)
            .finish_non_exhaustive()
    }
}

impl Ingest {
    /// A receiver feeding `sink` (the engine); its tick task stops with `shutdown`.
    pub fn start(
        plan: Arc<Plan>,
        state_dir: PathBuf,
        sink: Weak<dyn SignalSink>,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Ingest> {
        let ingest = Arc::new(Ingest {
            trackers: tracker::trackers_of(&plan),
            plan,
            state_dir,
            sink,
            shutdown: shutdown.clone(),
            services: Mutex::new(BTreeMap::new()),
            stats: IngestStats::default(),
        });
        let weak = Arc::downgrade(&ingest);
        let mut stop = shutdown;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(TICK) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                let Some(me) = weak.upgrade() else { return };
                let names: Vec<String> = me.services.lock().await.keys().cloned().collect();
                for service in names {
                    me.publish(&service).await;
                }
            }
        });
        ingest
    }

    /// Takes one report of `service`.
    pub async fn report(&self, service: &str, report: Report) -> Result<Ack, IngestError> {
        if self.plan.service(service).is_none() {
            return Err(IngestError::NoService(service.to_string()));
        }
        if report.replica.is_empty() {
            return Err(IngestError::Bad("the report names no replica".into()));
        }
        let sink = self.sink.upgrade().ok_or(IngestError::Stopping)?;
        let specs = self.trackers.get(service);
        let mut services = self.services.lock().await;
        let st = services.entry(service.to_string()).or_default();
        st.replicas
            .insert(report.replica.clone(), (Instant::now(), report.window));
        if report.requests > 0 {
            // Read and written under the services' lock: two replicas' reports never race.
            let key = format!("{service}.requests");
            let now = match sink.signal(&key) {
                Some(RtValue::Int { value }) => u64::try_from(value).unwrap_or(0),
                _ => 0,
            };
            let total = now.saturating_add(report.requests);
            match sink.set_service_signal(service, "requests", &json!(total)) {
                Ok(_) => {
                    st.last.insert("requests", json!(total));
                }
                Err(e) => tracing::warn!(service, "cannot set `requests`: {e}"),
            }
        }
        if report.dropped > 0 {
            self.stats
                .dropped
                .fetch_add(report.dropped, Ordering::Relaxed);
            tracing::warn!(
                service,
                replica = report.replica,
                dropped = report.dropped,
                "a model server dropped request records (its queue was full or the runtime unreachable)"
            );
        }
        let mut accepted = 0;
        if let Some(specs) = specs {
            if st.log.is_none() {
                st.log = ServiceLog::new(specs, &self.state_dir, &self.sink);
                for t in st.log.iter().flat_map(|l| l.trackers()) {
                    tokio::spawn(t.clone().publish(self.sink.clone(), self.shutdown.clone()));
                }
            }
            if let Some(log) = st.log.clone() {
                accepted = report.records.len();
                let records = report.records;
                // Batches are made (and pixels copied) off the async threads.
                let fed = tokio::task::spawn_blocking(move || {
                    for r in records {
                        log.record(r);
                    }
                })
                .await;
                if let Err(e) = fed {
                    return Err(IngestError::Bad(format!("feeding the Tracker: {e}")));
                }
                self.stats
                    .records
                    .fetch_add(accepted as u64, Ordering::Relaxed);
            }
        }
        drop(services);
        self.stats.reports.fetch_add(1, Ordering::Relaxed);
        self.publish(service).await;
        Ok(Ack {
            want_records: specs.is_some(),
            accepted,
        })
    }

    /// Sets the aggregated latency and error signals of `service` that changed.
    async fn publish(&self, service: &str) {
        let Some(sink) = self.sink.upgrade() else {
            return;
        };
        let mut services = self.services.lock().await;
        let Some(st) = services.get_mut(service) else {
            return;
        };
        st.replicas.retain(|_, (at, _)| at.elapsed() <= WINDOW);
        let (latency, errors) = aggregate(st.replicas.values().map(|(_, w)| w));
        let now = [
            ("latency.p50", json!(latency.0)),
            ("latency.p95", json!(latency.1)),
            ("latency.p99", json!(latency.2)),
            ("errors", json!(errors)),
        ];
        for (path, v) in now {
            if st.last.get(path) == Some(&v) {
                continue;
            }
            match sink.set_service_signal(service, path, &v) {
                Ok(_) => {
                    st.last.insert(path, v);
                }
                Err(e) => tracing::warn!(service, path, "cannot set a service signal: {e}"),
            }
        }
    }
}

/// The service's latency quantiles (the largest of the replicas' with requests) and its share
/// of 5xx answers, over the replicas' windows.
pub fn aggregate<'a>(windows: impl Iterator<Item = &'a WindowSummary>) -> ((f64, f64, f64), f64) {
    let (mut p50, mut p95, mut p99) = (0.0f64, 0.0f64, 0.0f64);
    let (mut requests, mut errors) = (0usize, 0usize);
    for w in windows {
        requests += w.requests;
        errors += w.server_errors;
        if w.requests > 0 {
            p50 = p50.max(w.latency.p50);
            p95 = p95.max(w.latency.p95);
            p99 = p99.max(w.latency.p99);
        }
    }
    let share = if requests == 0 {
        0.0
    } else {
        errors as f64 / requests as f64
    };
    ((p50, p95, p99), share)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sflow_ml::serve::LatencySummary;

    fn w(requests: usize, errors: usize, p95: f64) -> WindowSummary {
        WindowSummary {
            requests,
            server_errors: errors,
            latency: LatencySummary {
                samples: requests,
                p50: p95 / 2.0,
                p95,
                p99: p95 * 2.0,
            },
        }
    }

    #[test]
    fn latency_is_the_slowest_replica_errors_are_exact() {
        let ws = [w(100, 1, 0.010), w(50, 2, 0.030), w(0, 0, 9.0)];
        let ((p50, p95, p99), errors) = aggregate(ws.iter());
        assert_eq!((p50, p95, p99), (0.015, 0.030, 0.060));
        assert!((errors - 3.0 / 150.0).abs() < 1e-12);
        assert_eq!(aggregate([].iter()), ((0.0, 0.0, 0.0), 0.0));
    }
}
