//! Serving metrics, exposed in the Prometheus text format and as latency quantiles for the
//! Planner's service signals (`latency.p50/p95/p99`).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// Requests kept for exact recent quantiles (and the time windows of [`Metrics::window`]).
const WINDOW: usize = 16384;
/// The quantiles of [`Metrics::latency`] are over at most this many of the latest requests.
const LATEST: usize = 4096;

#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| v <= b) {
            if let Some(c) = self.counts.get(i) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros
            .fetch_add((v * 1e6).round().max(0.0) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cum = 0u64;
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cum += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cum}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Recent request latency quantiles, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Requests in the window.
    pub samples: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// The engine's and the HTTP layer's counters.
#[derive(Debug)]
pub struct Metrics {
    requests: AtomicU64,
    images: AtomicU64,
    errors: Mutex<BTreeMap<u16, u64>>,
    latency: Histogram,
    batch_size: Histogram,
    inference: Histogram,
    queue_depth: AtomicI64,
    workers: AtomicU64,
    swaps: AtomicU64,
    log_dropped: AtomicU64,
    recent: Mutex<VecDeque<Recent>>,
    model: Mutex<(String, String)>,
}

/// One request as the windows see it.
#[derive(Debug, Clone, Copy)]
struct Recent {
    at: Instant,
    latency: f64,
    server_error: bool,
}

/// What the requests of a recent time window say: the service signals the runtime measures
/// (`latency.p50/p95/p99`, `errors`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowSummary {
    /// Requests answered in the window (any status).
    pub requests: usize,
    /// Of which failed with a 5xx status.
    pub server_errors: usize,
    /// Their latency quantiles (zeros when the window holds no request).
    pub latency: LatencySummary,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Zeroed metrics.
    pub fn new() -> Self {
        Metrics {
            requests: AtomicU64::new(0),
            images: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            latency: Histogram::new(&LATENCY_BUCKETS),
            batch_size: Histogram::new(&BATCH_BUCKETS),
            inference: Histogram::new(&LATENCY_BUCKETS),
            queue_depth: AtomicI64::new(0),
            workers: AtomicU64::new(0),
            swaps: AtomicU64::new(0),
            log_dropped: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::with_capacity(WINDOW)),
            model: Mutex::new((String::new(), String::new())),
        }
    }

    /// Records an answered inference request of `images` images (status 200).
    pub fn request_ok(&self, images: usize, latency: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.images.fetch_add(images as u64, Ordering::Relaxed);
        self.observe_latency(latency, false);
    }

    /// Records a failed inference request with its HTTP status.
    pub fn request_error(&self, status: u16, latency: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        *self
            .errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(status)
            .or_insert(0) += 1;
        self.observe_latency(latency, status >= 500);
    }

    fn observe_latency(&self, latency: Duration, server_error: bool) {
        let s = latency.as_secs_f64();
        self.latency.observe(s);
        let mut w = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() == WINDOW {
            w.pop_front();
        }
        w.push_back(Recent {
            at: Instant::now(),
            latency: s,
            server_error,
        });
    }

    pub(crate) fn batch(&self, images: usize, took: Duration) {
        self.batch_size.observe(images as f64);
        self.inference.observe(took.as_secs_f64());
    }

    pub(crate) fn queued(&self, delta: i64) {
        self.queue_depth.fetch_add(delta, Ordering::Relaxed);
    }

    pub(crate) fn set_workers(&self, n: usize) {
        self.workers.store(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn swapped(&self) {
        self.swaps.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn log_dropped(&self) {
        self.log_dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_model(&self, name: &str, version: &str) {
        *self.model.lock().unwrap_or_else(|p| p.into_inner()) =
            (name.to_owned(), version.to_owned());
    }

    /// Inference requests so far (answered or not).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Failed inference requests so far, all statuses.
    pub fn errors(&self) -> u64 {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }

    /// Failed requests with a 5xx status (the service's `errors` signal counts these).
    pub fn server_errors(&self) -> u64 {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(s, _)| **s >= 500)
            .map(|(_, c)| c)
            .sum()
    }

    /// Quantiles of the latest 4096 request latencies.
    pub fn latency(&self) -> LatencySummary {
        let v: Vec<f64> = {
            let w = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            w.iter()
                .skip(w.len().saturating_sub(LATEST))
                .map(|r| r.latency)
                .collect()
        };
        quantiles(v)
    }

    /// The requests answered in the last `window` (at most the latest 16,384): how many,
    /// how many failed with a 5xx status, and their latency quantiles.
    pub fn window(&self, window: Duration) -> WindowSummary {
        let now = Instant::now();
        let (v, server_errors) = {
            let w = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            let recent = w
                .iter()
                .rev()
                .take_while(|r| now.saturating_duration_since(r.at) <= window);
            let mut v = Vec::new();
            let mut errors = 0;
            for r in recent {
                v.push(r.latency);
                errors += usize::from(r.server_error);
            }
            (v, errors)
        };
        WindowSummary {
            requests: v.len(),
            server_errors,
            latency: quantiles(v),
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let (name, version) = self.model.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let esc = |s: &str| {
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n")
        };
        let model = format!("model=\"{}\"", esc(&name));
        let _ = writeln!(out, "# HELP sflow_serve_model_info The model served now.");
        let _ = writeln!(out, "# TYPE sflow_serve_model_info gauge");
        let _ = writeln!(
            out,
            "sflow_serve_model_info{{{model},version=\"{}\"}} 1",
            esc(&version)
        );
        let _ = writeln!(
            out,
            "# HELP sflow_serve_requests_total Inference requests, answered or not."
        );
        let _ = writeln!(out, "# TYPE sflow_serve_requests_total counter");
        let _ = writeln!(
            out,
            "sflow_serve_requests_total{{{model}}} {}",
            self.requests()
        );
        let _ = writeln!(out, "# HELP sflow_serve_images_total Images classified.");
        let _ = writeln!(out, "# TYPE sflow_serve_images_total counter");
        let _ = writeln!(
            out,
            "sflow_serve_images_total{{{model}}} {}",
            self.images.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP sflow_serve_request_errors_total Failed inference requests, by HTTP status."
        );
        let _ = writeln!(out, "# TYPE sflow_serve_request_errors_total counter");
        for (code, n) in self.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "sflow_serve_request_errors_total{{{model},code=\"{code}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP sflow_serve_request_duration_seconds Inference request latency, from the request to the answer.");
        let _ = writeln!(out, "# TYPE sflow_serve_request_duration_seconds histogram");
        self.latency
            .write(&mut out, "sflow_serve_request_duration_seconds", &model);
        let _ = writeln!(
            out,
            "# HELP sflow_serve_batch_images Images per forward pass (dynamic batching)."
        );
        let _ = writeln!(out, "# TYPE sflow_serve_batch_images histogram");
        self.batch_size
            .write(&mut out, "sflow_serve_batch_images", &model);
        let _ = writeln!(
            out,
            "# HELP sflow_serve_inference_seconds Time of one forward pass."
        );
        let _ = writeln!(out, "# TYPE sflow_serve_inference_seconds histogram");
        self.inference
            .write(&mut out, "sflow_serve_inference_seconds", &model);
        let _ = writeln!(
            out,
            "# HELP sflow_serve_queue_depth Requests waiting for a worker."
        );
        let _ = writeln!(out, "# TYPE sflow_serve_queue_depth gauge");
        let _ = writeln!(
            out,
            "sflow_serve_queue_depth{{{model}}} {}",
            self.queue_depth.load(Ordering::Relaxed).max(0)
        );
        let _ = writeln!(
            out,
            "# HELP sflow_serve_workers Worker threads (replicas on the local backend)."
        );
        let _ = writeln!(out, "# TYPE sflow_serve_workers gauge");
        let _ = writeln!(
            out,
            "sflow_serve_workers{{{model}}} {}",
            self.workers.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP sflow_serve_model_swaps_total Hot model replacements."
        );
        let _ = writeln!(out, "# TYPE sflow_serve_model_swaps_total counter");
        let _ = writeln!(
            out,
            "sflow_serve_model_swaps_total{{{model}}} {}",
            self.swaps.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# HELP sflow_serve_log_dropped_total Request-log records dropped because the log queue was full.");
        let _ = writeln!(out, "# TYPE sflow_serve_log_dropped_total counter");
        let _ = writeln!(
            out,
            "sflow_serve_log_dropped_total{{{model}}} {}",
            self.log_dropped.load(Ordering::Relaxed)
        );
        out
    }
}

/// Nearest-rank quantiles of `v` (zeros when empty).
fn quantiles(mut v: Vec<f64>) -> LatencySummary {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
        v[i]
    };
    LatencySummary {
        samples: v.len(),
        p50: q(0.50),
        p95: q(0.95),
        p99: q(0.99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counts_recent_requests_and_their_quantiles() {
        let m = Metrics::new();
        for ms in 1..=100u64 {
            m.request_ok(1, Duration::from_millis(ms));
        }
        m.request_error(503, Duration::from_millis(1));
        m.request_error(400, Duration::from_millis(1));
        let w = m.window(Duration::from_secs(30));
        assert_eq!(w.requests, 102);
        assert_eq!(w.server_errors, 1);
        assert!((w.latency.p95 - 0.095).abs() < 1e-9, "{w:?}");
        std::thread::sleep(Duration::from_millis(30));
        let empty = m.window(Duration::from_millis(10));
        assert_eq!(empty.requests, 0);
        assert_eq!(empty.latency.p99, 0.0);
    }
}
