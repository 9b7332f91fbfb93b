//! The model-serving engine behind `sflow serve`: a TorchScript classifier behind a hot-swap
//! handle, dynamic batching over a bounded queue, worker threads (the local backend's
//! replicas), Prometheus metrics, and bounded request logging for the Tracker. The HTTP layer
//! ([`http::router`], Open Inference Protocol v2) is an axum `Router` the runtime mounts.
//!
//! Requests never fail because of a model swap: a batch takes the current model (an `Arc`)
//! when it starts and keeps it to the end, while [`Engine::swap_model`] only replaces the
//! pointer the next batch reads.

pub mod http;
mod metrics;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use serde::{Deserialize, Serialize};
use tch::Tensor;

pub use metrics::{LatencySummary, Metrics, WindowSummary};

use crate::data::Dataset;
use crate::error::Result;
use crate::model::{argmax, Classifier};

/// A model as served: the classifier and what the server says about it.
#[derive(Debug)]
pub struct ServedModel {
    /// The model's name in the API (`/v2/models/{name}`): the service's name.
    pub name: String,
    /// Its version (the store's model version, a run id, …).
    pub version: String,
    /// The classifier.
    pub classifier: Classifier,
    /// Its recorded accuracy, if known (shown in the metadata).
    pub accuracy: Option<f64>,
}

impl ServedModel {
    /// Loads a TorchScript classifier of 28×28 images.
    pub fn load(name: &str, version: &str, path: &Path) -> Result<Self> {
        Ok(ServedModel {
            name: name.to_owned(),
            version: version.to_owned(),
            classifier: Classifier::load(path)?,
            accuracy: None,
        })
    }
}

/// One served request, as the request log receives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InferenceRecord {
    /// The request's `id`, if it had one.
    pub id: Option<String>,
    /// The request's `parameters.sample_keys`, if it had them: one key per image, naming
    /// the item each image is (how an `oracle` label source finds its label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_keys: Option<Vec<String>>,
    /// Model name and version that answered.
    pub model: String,
    /// The version.
    pub version: String,
    /// Milliseconds since the Unix epoch when the answer was ready.
    pub timestamp_ms: u64,
    /// Image height and width.
    pub rows: usize,
    /// Width.
    pub cols: usize,
    /// The input images, pixels in [0, 1], image after image.
    pub inputs: Vec<f32>,
    /// The predicted class of each image.
    pub predictions: Vec<u8>,
    /// The highest softmax probability of each image.
    pub confidences: Vec<f32>,
    /// Seconds from enqueueing to the answer.
    pub latency_s: f64,
}

impl InferenceRecord {
    /// The inputs as an unlabelled dataset.
    pub fn to_dataset(&self) -> Result<Dataset> {
        Dataset::new(self.inputs.clone(), self.rows, self.cols, None)
    }
}

/// Where served requests go (the runtime implements it: to the store, or a spool the Tracker
/// reads). The engine calls it from one background thread through a bounded queue: a slow
/// sink makes the engine drop records (counted in `sflow_serve_log_dropped_total`), never
/// slows requests down.
pub trait RequestLog: Send + Sync {
    /// Records one request.
    fn record(&self, record: InferenceRecord);
}

/// A [`RequestLog`] that keeps the images of the latest `capacity` requests' samples in
/// memory (a ring buffer), for tests and for a Tracker in the same process.
#[derive(Debug)]
pub struct MemoryLog {
    capacity: usize,
    inner: Mutex<MemoryLogInner>,
}

#[derive(Debug, Default)]
struct MemoryLogInner {
    records: VecDeque<InferenceRecord>,
    samples: usize,
    total_samples: u64,
}

impl MemoryLog {
    /// Keeps at least the latest `capacity` samples.
    pub fn new(capacity: usize) -> Self {
        MemoryLog {
            capacity: capacity.max(1),
            inner: Mutex::new(MemoryLogInner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryLogInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Samples logged since the start.
    pub fn total_samples(&self) -> u64 {
        self.lock().total_samples
    }

    /// The records held, oldest first.
    pub fn records(&self) -> Vec<InferenceRecord> {
        self.lock().records.iter().cloned().collect()
    }

    /// Removes and returns the records held.
    pub fn drain(&self) -> Vec<InferenceRecord> {
        let mut g = self.lock();
        g.samples = 0;
        g.records.drain(..).collect()
    }
}

impl RequestLog for MemoryLog {
    fn record(&self, record: InferenceRecord) {
        let mut g = self.lock();
        let n = record.predictions.len();
        g.samples += n;
        g.total_samples += n as u64;
        g.records.push_back(record);
        while g.samples > self.capacity {
            match g.records.front() {
                Some(front) if g.samples - front.predictions.len() >= self.capacity => {
                    g.samples -= front.predictions.len();
                    g.records.pop_front();
                }
                _ => break,
            }
        }
    }
}

/// How the engine batches and queues.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Images one forward pass takes at most (64).
    pub max_batch: usize,
    /// How long a batch that is not full waits for more requests (0: a batch is what is
    /// queued when a worker becomes free — requests that arrived during the previous forward
    /// pass — so a lone request never waits, and batches grow with the load).
    pub max_wait: Duration,
    /// Requests waiting at most; past it, requests get 503 (1024).
    pub queue: usize,
    /// Worker threads, the local backend's replicas (1).
    pub workers: usize,
    /// Images one request may carry (256).
    pub max_request_images: usize,
    /// Records the request log queue holds before dropping (256).
    pub log_queue: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_batch: 64,
            max_wait: Duration::ZERO,
            queue: 1024,
            workers: 1,
            max_request_images: 256,
            log_queue: 256,
        }
    }
}

/// Why a request was not answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServeError {
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// Unknown model or version (404).
    #[error("{0}")]
    NotFound(String),
    /// Too large (413).
    #[error("{0}")]
    TooLarge(String),
    /// The queue is full (503).
    #[error("server overloaded: {0}")]
    Overloaded(String),
    /// No model is loaded yet (503).
    #[error("no model is loaded yet")]
    NotReady,
    /// The model failed (500).
    #[error("inference failed: {0}")]
    Internal(String),
}

impl ServeError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            ServeError::BadRequest(_) => 400,
            ServeError::NotFound(_) => 404,
            ServeError::TooLarge(_) => 413,
            ServeError::Overloaded(_) | ServeError::NotReady => 503,
            ServeError::Internal(_) => 500,
        }
    }
}

/// The answer to one request.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Model name.
    pub model: String,
    /// Model version.
    pub version: String,
    /// Classes per row of `probabilities`.
    pub classes: usize,
    /// `[n × classes]` softmax probabilities.
    pub probabilities: Vec<f32>,
    /// The predicted class of each image.
    pub labels: Vec<u8>,
    /// Images in the forward pass this request shared.
    pub batch_images: usize,
}

struct Job {
    id: Option<String>,
    keys: Option<Vec<String>>,
    inputs: Vec<f32>,
    n: usize,
    enqueued: Instant,
    reply: tokio::sync::oneshot::Sender<std::result::Result<Prediction, ServeError>>,
}

struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The serving engine. Cheap to share (`Arc<Engine>`); dropping the last handle stops the
/// workers.
pub struct Engine {
    cfg: EngineConfig,
    queue: SyncSender<Job>,
    jobs: Arc<Mutex<Receiver<Job>>>,
    workers: Mutex<Vec<Worker>>,
    metrics: Arc<Metrics>,
    log: Option<SyncSender<InferenceRecord>>,
    log_thread: Mutex<Option<JoinHandle<()>>>,
    swaps: AtomicU64,
    /// The current model, shared with the workers.
    shared: Arc<Shared>,
}

struct Shared {
    model: ArcSwapOption<ServedModel>,
    /// libtorch intra-op threads each worker uses (0: libtorch's default).
    threads: AtomicUsize,
    /// The most bytes of request pixels that may wait in the queue (0: no limit).
    queue_bytes_limit: AtomicU64,
    /// Bytes of request pixels waiting in the queue now.
    queued_bytes: AtomicU64,
}

/// The limits of a service's workers on the local backend, from its `cpu` and `memory`
/// (`resources { … }` or the Planner's `resize`).
///
/// What is enforced, and how: each worker thread runs its forward passes with
/// `threads_per_worker` libtorch intra-op threads (set on the worker's own thread before its
/// next batch); requests whose pixels would take the bytes waiting in the queue over
/// `queue_bytes` are refused with 503 (overloaded). What is not: the process's memory as a
/// whole (the model, libtorch's arenas, the request log) — in-process workers share one
/// address space, and only a container (Kubernetes) enforces a memory limit on a replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// libtorch intra-op threads per worker (`None`: libtorch's default).
    pub threads_per_worker: Option<usize>,
    /// The most bytes of request pixels waiting in the queue (`None`: only the queue's
    /// request count bounds it).
    pub queue_bytes: Option<u64>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine serving `model` (or nothing yet: not ready until [`Engine::swap_model`]),
    /// logging requests to `log`.
    pub fn new(
        model: Option<ServedModel>,
        cfg: EngineConfig,
        log: Option<Arc<dyn RequestLog>>,
    ) -> Arc<Self> {
        let cfg = EngineConfig {
            max_batch: cfg.max_batch.max(1),
            queue: cfg.queue.max(1),
            workers: cfg.workers.max(1),
            max_request_images: cfg.max_request_images.max(1),
            log_queue: cfg.log_queue.max(1),
            ..cfg
        };
        let (tx, rx) = mpsc::sync_channel(cfg.queue);
        let metrics = Arc::new(Metrics::new());
        let model = model.map(Arc::new);
        let shared = Arc::new(Shared {
            model: ArcSwapOption::new(model.clone()),
            threads: AtomicUsize::new(0),
            queue_bytes_limit: AtomicU64::new(0),
            queued_bytes: AtomicU64::new(0),
        });
        if let Some(m) = &model {
            metrics.set_model(&m.name, &m.version);
        }
        let (log_tx, log_thread) = match log {
            None => (None, None),
            Some(sink) => {
                let (ltx, lrx) = mpsc::sync_channel::<InferenceRecord>(cfg.log_queue);
                let t = std::thread::Builder::new()
                    .name("sflow-serve-log".into())
                    .spawn(move || {
                        while let Ok(rec) = lrx.recv() {
                            sink.record(rec);
                        }
                    })
                    .ok();
                (Some(ltx), t)
            }
        };
        let engine = Arc::new(Engine {
            cfg: cfg.clone(),
            queue: tx,
            jobs: Arc::new(Mutex::new(rx)),
            workers: Mutex::new(Vec::new()),
            metrics,
            log: log_tx,
            log_thread: Mutex::new(log_thread),
            swaps: AtomicU64::new(0),
            shared,
        });
        engine.set_workers(cfg.workers);
        engine
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The model served now.
    pub fn model(&self) -> Option<Arc<ServedModel>> {
        self.shared.model.load_full()
    }

    /// Whether a model is loaded.
    pub fn is_ready(&self) -> bool {
        self.shared.model.load().is_some()
    }

    /// Replaces the served model; returns the previous one. Requests in flight finish on the
    /// model their batch started with; none fails.
    pub fn swap_model(&self, model: ServedModel) -> Option<Arc<ServedModel>> {
        let new = Arc::new(model);
        self.metrics.set_model(&new.name, &new.version);
        let old = self.shared.model.swap(Some(new));
        self.swaps.fetch_add(1, Ordering::Relaxed);
        self.metrics.swapped();
        old
    }

    /// Model swaps so far.
    pub fn swaps(&self) -> u64 {
        self.swaps.load(Ordering::Relaxed)
    }

    /// Worker threads running now.
    pub fn workers(&self) -> usize {
        self.lock_workers().len()
    }

    fn lock_workers(&self) -> std::sync::MutexGuard<'_, Vec<Worker>> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the workers' limits ([`Limits`]: the Planner's `resize` on the local backend);
    /// running workers apply a new thread count before their next batch.
    pub fn set_limits(&self, limits: Limits) {
        self.shared.threads.store(
            limits.threads_per_worker.map_or(0, |t| t.clamp(1, 1024)),
            Ordering::Relaxed,
        );
        self.shared
            .queue_bytes_limit
            .store(limits.queue_bytes.unwrap_or(0), Ordering::Relaxed);
    }

    /// The workers' limits.
    pub fn limits(&self) -> Limits {
        let t = self.shared.threads.load(Ordering::Relaxed);
        let b = self.shared.queue_bytes_limit.load(Ordering::Relaxed);
        Limits {
            threads_per_worker: (t > 0).then_some(t),
            queue_bytes: (b > 0).then_some(b),
        }
    }

    /// Sets the number of worker threads (the Planner's `scale` on the local backend).
    /// Stopping workers finish their current batch first.
    pub fn set_workers(&self, n: usize) {
        let n = n.max(1);
        let mut workers = self.lock_workers();
        while workers.len() < n {
            let stop = Arc::new(AtomicBool::new(false));
            let ctx = WorkerCtx {
                jobs: self.jobs.clone(),
                shared: self.shared.clone(),
                metrics: self.metrics.clone(),
                log: self.log.clone(),
                max_batch: self.cfg.max_batch,
                max_wait: self.cfg.max_wait,
                stop: stop.clone(),
            };
            let idx = workers.len();
            match std::thread::Builder::new()
                .name(format!("sflow-serve-{idx}"))
                .spawn(move || ctx.run())
            {
                Ok(t) => workers.push(Worker {
                    stop,
                    thread: Some(t),
                }),
                Err(e) => {
                    tracing::error!("cannot start a serving worker: {e}");
                    break;
                }
            }
        }
        while workers.len() > n {
            if let Some(mut w) = workers.pop() {
                w.stop.store(true, Ordering::Relaxed);
                // Detach: it exits after its current batch (or its next idle poll).
                w.thread.take();
            }
        }
        self.metrics.set_workers(workers.len());
    }

    /// Validates and enqueues `n` images (`n × rows·cols` pixels), then waits for the answer.
    pub async fn infer(
        &self,
        id: Option<String>,
        inputs: Vec<f32>,
        n: usize,
    ) -> std::result::Result<Prediction, ServeError> {
        self.infer_keyed(id, None, inputs, n).await
    }

    /// [`Engine::infer`] with one key per image (`sample_keys`), handed to the request log.
    pub async fn infer_keyed(
        &self,
        id: Option<String>,
        keys: Option<Vec<String>>,
        inputs: Vec<f32>,
        n: usize,
    ) -> std::result::Result<Prediction, ServeError> {
        let rx = self.enqueue(id, keys, inputs, n)?;
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(ServeError::Internal(
                "the worker dropped the request".into(),
            )),
        }
    }

    /// [`Engine::infer`] for callers outside an async runtime.
    pub fn infer_blocking(
        &self,
        id: Option<String>,
        inputs: Vec<f32>,
        n: usize,
    ) -> std::result::Result<Prediction, ServeError> {
        let rx = self.enqueue(id, None, inputs, n)?;
        rx.blocking_recv().unwrap_or_else(|_| {
            Err(ServeError::Internal(
                "the worker dropped the request".into(),
            ))
        })
    }

    fn enqueue(
        &self,
        id: Option<String>,
        keys: Option<Vec<String>>,
        inputs: Vec<f32>,
        n: usize,
    ) -> std::result::Result<
        tokio::sync::oneshot::Receiver<std::result::Result<Prediction, ServeError>>,
        ServeError,
    > {
        let model = self.shared.model.load_full().ok_or(ServeError::NotReady)?;
        let (rows, cols) = model.classifier.image_shape();
        if n == 0 {
            return Err(ServeError::BadRequest("no image in the request".into()));
        }
        if n > self.cfg.max_request_images {
            return Err(ServeError::TooLarge(format!(
                "{n} images in one request; this server takes at most {}",
                self.cfg.max_request_images
            )));
        }
        if inputs.len() != n * rows * cols {
            return Err(ServeError::BadRequest(format!(
                "{} values for {n} images of {rows}×{cols} pixels (expected {})",
                inputs.len(),
                n * rows * cols
            )));
        }
        if let Some(k) = &keys {
            if k.len() != n {
                return Err(ServeError::BadRequest(format!(
                    "{} sample keys for {n} images: give one key per image",
                    k.len()
                )));
            }
        }
        if let Some(bad) = inputs.iter().find(|v| !v.is_finite()) {
            return Err(ServeError::BadRequest(format!(
                "input holds a non-finite value ({bad})"
            )));
        }
        let bytes = (inputs.len() * std::mem::size_of::<f32>()) as u64;
        let limit = self.shared.queue_bytes_limit.load(Ordering::Relaxed);
        let waiting = self.shared.queued_bytes.fetch_add(bytes, Ordering::SeqCst);
        if limit > 0 && waiting + bytes > limit {
            self.shared.queued_bytes.fetch_sub(bytes, Ordering::SeqCst);
            return Err(ServeError::Overloaded(format!(
                "{waiting} bytes of requests are already waiting; the service's memory limit allows {limit}"
            )));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job = Job {
            id,
            keys,
            inputs,
            n,
            enqueued: Instant::now(),
            reply: tx,
        };
        match self.queue.try_send(job) {
            Ok(()) => {
                self.metrics.queued(1);
                Ok(rx)
            }
            Err(e) => {
                self.shared.queued_bytes.fetch_sub(bytes, Ordering::SeqCst);
                match e {
                    TrySendError::Full(_) => Err(ServeError::Overloaded(format!(
                        "{} requests are already waiting",
                        self.cfg.queue
                    ))),
                    TrySendError::Disconnected(_) => {
                        Err(ServeError::Internal("the engine is shutting down".into()))
                    }
                }
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let mut workers = self.lock_workers();
        for w in workers.iter() {
            w.stop.store(true, Ordering::Relaxed);
        }
        for w in workers.iter_mut() {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
        drop(workers);
        self.log.take();
        if let Some(t) = self
            .log_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = t.join();
        }
    }
}

struct WorkerCtx {
    jobs: Arc<Mutex<Receiver<Job>>>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    log: Option<SyncSender<InferenceRecord>>,
    max_batch: usize,
    max_wait: Duration,
    stop: Arc<AtomicBool>,
}

impl WorkerCtx {
    fn run(self) {
        let mut threads = 0;
        while !self.stop.load(Ordering::Relaxed) {
            let batch = match self.collect() {
                Some(b) => b,
                None => continue,
            };
            self.metrics.queued(-(batch.len() as i64));
            let bytes: usize = batch.iter().map(|j| j.inputs.len()).sum();
            self.shared.queued_bytes.fetch_sub(
                (bytes * std::mem::size_of::<f32>()) as u64,
                Ordering::SeqCst,
            );
            // The thread count is libtorch's (OpenMP's) setting of the calling thread.
            let wanted = self.shared.threads.load(Ordering::Relaxed);
            if wanted > 0 && wanted != threads {
                crate::set_torch_threads(wanted);
                threads = wanted;
            }
            self.process(batch);
        }
    }

    /// Waits (polling the stop flag) for a first job, takes every job already queued (up to
    /// `max_batch` images: requests that arrived while the previous batch ran), then waits up
    /// to `max_wait` for more while the batch is not full.
    fn collect(&self) -> Option<Vec<Job>> {
        let rx = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let first = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(j) => j,
            Err(RecvTimeoutError::Timeout) => return None,
            Err(RecvTimeoutError::Disconnected) => {
                self.stop.store(true, Ordering::Relaxed);
                return None;
            }
        };
        let deadline = Instant::now() + self.max_wait;
        let mut images = first.n;
        let mut batch = vec![first];
        while images < self.max_batch {
            let next = match rx.try_recv() {
                Ok(j) => Some(j),
                Err(_) => {
                    let now = Instant::now();
                    if now >= deadline {
                        None
                    } else {
                        rx.recv_timeout(deadline - now).ok()
                    }
                }
            };
            match next {
                Some(j) => {
                    images += j.n;
                    batch.push(j);
                }
                None => break,
            }
        }
        Some(batch)
    }

    fn process(&self, batch: Vec<Job>) {
        let Some(model) = self.shared.model.load_full() else {
            for j in batch {
                let _ = j.reply.send(Err(ServeError::NotReady));
            }
            return;
        };
        let total: usize = batch.iter().map(|j| j.n).sum();
        let (rows, cols) = model.classifier.image_shape();
        let mut pixels = Vec::with_capacity(total * rows * cols);
        for j in &batch {
            pixels.extend_from_slice(&j.inputs);
        }
        let started = Instant::now();
        let result = forward(&model.classifier, &pixels, total, rows, cols);
        self.metrics.batch(total, started.elapsed());
        let classes = model.classifier.classes();
        match result {
            Err(e) => {
                let msg = e.to_string();
                for j in batch {
                    let _ = j.reply.send(Err(ServeError::Internal(msg.clone())));
                }
            }
            Ok(probs) => {
                let mut offset = 0;
                for j in batch {
                    let p = probs[offset * classes..(offset + j.n) * classes].to_vec();
                    offset += j.n;
                    let labels: Vec<u8> = p.chunks_exact(classes).map(argmax).collect();
                    if let Some(log) = &self.log {
                        let confidences = p
                            .chunks_exact(classes)
                            .map(|r| r.iter().copied().fold(0.0f32, f32::max))
                            .collect();
                        let rec = InferenceRecord {
                            id: j.id.clone(),
                            sample_keys: j.keys,
                            model: model.name.clone(),
                            version: model.version.clone(),
                            timestamp_ms: SystemTime::now()
                                .duration_since(UNIX_EPOCH)
                                .map(|d| d.as_millis() as u64)
                                .unwrap_or(0),
                            rows,
                            cols,
                            inputs: j.inputs,
                            predictions: labels.clone(),
                            confidences,
                            latency_s: j.enqueued.elapsed().as_secs_f64(),
                        };
                        if log.try_send(rec).is_err() {
                            self.metrics.log_dropped();
                        }
                    }
                    let _ = j.reply.send(Ok(Prediction {
                        model: model.name.clone(),
                        version: model.version.clone(),
                        classes,
                        probabilities: p,
                        labels,
                        batch_images: total,
                    }));
                }
            }
        }
    }
}

fn forward(
    model: &Classifier,
    pixels: &[f32],
    n: usize,
    rows: usize,
    cols: usize,
) -> Result<Vec<f32>> {
    let x = Tensor::from_slice(pixels).f_reshape([n as i64, 1, rows as i64, cols as i64])?;
    let p = model.probabilities(&x)?;
    let flat = p.f_flatten(0, -1)?;
    let v = Vec::<f32>::try_from(flat)?;
    if v.len() != n * model.classes() {
        return Err(crate::error::MlError::Model {
            path: model.path().to_path_buf(),
            reason: format!("returned {} values for {n} images", v.len()),
        });
    }
    Ok(v)
}
