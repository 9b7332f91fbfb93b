//! A model server's reports to the runtime: how `sflow serve` in a cluster feeds the runtime's
//! Tracker and service signals (docs/kubernetes.md §8, docs/kubernetes-manifests.md §11).
//!
//! Locally the runtime serves services itself and reads their request log in-process
//! ([`super::serving`]). In a cluster each service replica is a pod of its own running
//! `sflow serve`; with `SFLOW_RUNTIME_URL` set it sends, about once a second,
//!
//! ```text
//! POST $SFLOW_RUNTIME_URL/v1/services/SERVICE/report
//! Authorization: Bearer <the ingest token, read from $SFLOW_RUNTIME_TOKEN_FILE>
//! {"replica": "predictor-6f9c…", "requests": 12, "dropped": 0,
//!  "window": {"requests": 40, "server_errors": 0, "latency": {"samples": 40, "p50": …}},
//!  "records": [ …the request log's records (images, predictions) since the last report… ]}
//! ```
//!
//! and the runtime answers `{"wantRecords": BOOL, …}`: whether a Tracker watches the service
//! (no Tracker, no images on the wire). `requests` is the count answered since the last
//! report the runtime acknowledged; `window` the replica's latency and error summary over the
//! last [`WINDOW`]; `dropped` the records it could not send since the last acknowledged report.
//!
//! **Never on the request path.** The serving engine hands records to [`Reporter`] from its
//! log thread (its own bounded, dropping queue); the reporter keeps at most
//! [`QUEUE_SAMPLES`] samples and drops (counts) what does not fit; a task sends them. A
//! runtime that is down, or a replica of it that does not lead (503), costs records, never a
//! request: the records of a failed report go back to the queue as far as it has room.

use sflow_ml::serve::{Engine, InferenceRecord, RequestLog, WindowSummary};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The window a replica's latency and error summary covers (as local serving's signals).
pub const WINDOW: Duration = super::serving::WINDOW;
/// How often a replica reports.
pub const EVERY: Duration = Duration::from_secs(1);
/// Samples (images) the reporter holds at most before dropping records.
pub const QUEUE_SAMPLES: usize = 4096;
/// Samples one report carries at most (about 2 MB of JSON for 28×28 images; the runtime
/// takes reports of up to [`MAX_REPORT_BYTES`]).
pub const REPORT_SAMPLES: usize = 256;
/// The largest report body the runtime accepts.
pub const MAX_REPORT_BYTES: usize = 16 << 20;

/// One report, as sent and received.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// The replica (its pod name): the runtime keeps one window per replica.
    pub replica: String,
    /// Inference requests answered since the last acknowledged report.
    #[serde(default)]
    pub requests: u64,
    /// Records dropped since the last acknowledged report.
    #[serde(default)]
    pub dropped: u64,
    /// The replica's summary of the last [`WINDOW`].
    pub window: WindowSummary,
    /// The request log's records since the last report.
    #[serde(default)]
    pub records: Vec<InferenceRecord>,
}

/// The runtime's answer.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    /// Whether a Tracker watches the service (send records).
    pub want_records: bool,
    /// Records accepted.
    #[serde(default)]
    pub accepted: usize,
}

/// Where and how a server reports.
#[derive(Clone, Debug)]
pub struct ReportTo {
    /// The runtime (`http://<app>-runtime:8080`).
    pub url: String,
    /// The ingest token itself (`SFLOW_RUNTIME_TOKEN`), if given.
    pub token: Option<String>,
    /// The file holding it (`SFLOW_RUNTIME_TOKEN_FILE`), read again while it is missing or
    /// refused (the runtime writes it on its first start, maybe after the server's).
    pub token_file: Option<PathBuf>,
    /// The service.
    pub service: String,
    /// This replica.
    pub replica: String,
}

#[derive(Debug, Default)]
struct Queue {
    records: VecDeque<InferenceRecord>,
    samples: usize,
}

/// The request log of a server that reports to the runtime.
#[derive(Debug)]
pub struct Reporter {
    to: ReportTo,
    queue: Mutex<Queue>,
    /// Records dropped and not yet reported.
    dropped: AtomicU64,
    /// Records dropped in all.
    dropped_total: AtomicU64,
    /// Reports the runtime acknowledged.
    sent: AtomicU64,
    /// Until the runtime says otherwise, records are kept (it may have a Tracker).
    want: AtomicBool,
}

impl Reporter {
    /// A reporter to `to`.
    pub fn new(to: ReportTo) -> Arc<Reporter> {
        Arc::new(Reporter {
            to,
            queue: Mutex::new(Queue::default()),
            dropped: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            want: AtomicBool::new(true),
        })
    }

    /// Records dropped so far (the queue was full, or the runtime unreachable for long).
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total.load(Ordering::Relaxed)
    }

    /// Reports the runtime acknowledged so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn drop_records(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        self.dropped_total.fetch_add(n, Ordering::Relaxed);
    }

    /// Up to [`REPORT_SAMPLES`] samples of records, oldest first (at least one record).
    fn take(&self) -> Vec<InferenceRecord> {
        let mut q = self.lock();
        let mut out = Vec::new();
        let mut samples = 0;
        while let Some(front) = q.records.front() {
            let n = front.predictions.len();
            if !out.is_empty() && samples + n > REPORT_SAMPLES {
                break;
            }
            samples += n;
            q.samples -= n;
            if let Some(r) = q.records.pop_front() {
                out.push(r);
            }
        }
        out
    }

    /// Puts back the records of a failed report, as far as the queue has room.
    fn give_back(&self, records: Vec<InferenceRecord>) {
        let mut q = self.lock();
        let mut lost = 0;
        for r in records.into_iter().rev() {
            let n = r.predictions.len();
            if q.samples + n > QUEUE_SAMPLES {
                lost += 1;
                continue;
            }
            q.samples += n;
            q.records.push_front(r);
        }
        drop(q);
        if lost > 0 {
            self.drop_records(lost);
        }
    }

    fn token(&self) -> Option<String> {
        if let Some(t) = &self.to.token {
            return Some(t.clone());
        }
        let path = self.to.token_file.as_ref()?;
        let t = std::fs::read_to_string(path).ok()?;
        Some(t.trim().to_string()).filter(|t| !t.is_empty())
    }

    /// Reports every [`EVERY`] until `stop` completes.
    pub async fn run(
        self: Arc<Self>,
        engine: Arc<Engine>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let http = match reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // A new connection per report: behind the runtime's Service, a report refused by
            // a replica that does not lead (503) is tried again on whichever replica the next
            // connection reaches.
            .pool_max_idle_per_host(0)
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("cannot report to the runtime: {e}");
                return;
            }
        };
        let url = format!(
            "{}/v1/services/{}/report",
            self.to.url.trim_end_matches('/'),
            self.to.service
        );
        let mut acked_requests = 0u64;
        let mut failing = false;
        let mut stop = stop;
        loop {
            tokio::select! {
                () = tokio::time::sleep(EVERY) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            // Several reports in a row while records are waiting (bounded by the queue).
            for _ in 0..(QUEUE_SAMPLES / REPORT_SAMPLES + 1) {
                let records = self.take();
                let requests_now = engine.metrics().requests();
                let dropped = self.dropped.load(Ordering::Relaxed);
                let report = Report {
                    replica: self.to.replica.clone(),
                    requests: requests_now.saturating_sub(acked_requests),
                    dropped,
                    window: engine.metrics().window(WINDOW),
                    records,
                };
                let sent_records = report.records.len();
                match self.send(&http, &url, &report).await {
                    Ok(ack) => {
                        acked_requests += report.requests;
                        self.dropped.fetch_sub(dropped, Ordering::Relaxed);
                        self.want.store(ack.want_records, Ordering::Relaxed);
                        self.sent.fetch_add(1, Ordering::Relaxed);
                        if !ack.want_records {
                            let mut q = self.lock();
                            q.records.clear();
                            q.samples = 0;
                        }
                        if failing {
                            tracing::info!(url, "reporting to the runtime again");
                            failing = false;
                        }
                    }
                    Err(e) => {
                        if !failing {
                            tracing::warn!(url, "cannot report to the runtime (records wait, then are dropped and counted): {e}");
                            failing = true;
                        }
                        self.give_back(report.records);
                        break;
                    }
                }
                if sent_records == 0 || self.lock().records.is_empty() {
                    break;
                }
            }
        }
    }

    async fn send(
        &self,
        http: &reqwest::Client,
        url: &str,
        report: &Report,
    ) -> Result<Ack, String> {
        let token = self
            .token()
            .ok_or_else(|| "no ingest token yet (SFLOW_RUNTIME_TOKEN_FILE)".to_string())?;
        let r = http
            .post(url)
            .bearer_auth(token)
            .json(report)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status();
        if !status.is_success() {
            let body = r.text().await.unwrap_or_default();
            return Err(format!(
                "{status}: {}",
                body.chars().take(300).collect::<String>()
            ));
        }
        r.json::<Ack>().await.map_err(|e| e.to_string())
    }
}

impl RequestLog for Reporter {
    fn record(&self, record: InferenceRecord) {
        if !self.want.load(Ordering::Relaxed) {
            return;
        }
        let n = record.predictions.len();
        let mut q = self.lock();
        if q.samples + n > QUEUE_SAMPLES {
            drop(q);
            self.drop_records(1);
            return;
        }
        q.samples += n;
        q.records.push_back(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> InferenceRecord {
        InferenceRecord {
            id: None,
            sample_keys: None,
            model: "m".into(),
            version: "1".into(),
            timestamp_ms: 1,
            rows: 1,
            cols: 1,
            inputs: vec![0.0; n],
            predictions: vec![1; n],
            confidences: vec![0.5; n],
            latency_s: 0.001,
        }
    }

    fn reporter() -> Arc<Reporter> {
        Reporter::new(ReportTo {
            url: "http://127.0.0.1:9".into(),
            token: Some("t".into()),
            token_file: None,
            service: "s".into(),
            replica: "r".into(),
        })
    }

    #[test]
    fn the_queue_is_bounded_and_drops_are_counted() {
        let r = reporter();
        for _ in 0..(QUEUE_SAMPLES / 100 + 3) {
            r.record(record(100));
        }
        assert_eq!(r.lock().samples, QUEUE_SAMPLES / 100 * 100);
        assert_eq!(r.dropped_total(), 3);
        // A report takes at most REPORT_SAMPLES samples, oldest first.
        let taken = r.take();
        assert_eq!(taken.len(), REPORT_SAMPLES / 100);
        // A failed report's records go back in front, as far as there is room.
        r.record(record(100));
        r.give_back(taken);
        assert_eq!(r.lock().samples, QUEUE_SAMPLES / 100 * 100);
        assert_eq!(r.dropped_total(), 4);
    }

    #[test]
    fn no_tracker_no_records() {
        let r = reporter();
        r.want.store(false, Ordering::Relaxed);
        r.record(record(5));
        assert_eq!((r.lock().samples, r.dropped_total()), (0, 0));
    }
}
