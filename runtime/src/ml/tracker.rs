//! The Tracker at run time: the request log of a served service, turned into the sensors of
//! each `Tracker` agent that watches it.
//!
//! For every tracker `T { watch = SERVICE, batch_size = B }`:
//!
//! - `T.requests` counts the inference requests the service answered, `T.new_samples` the
//!   images (samples) it logged; both continue from their recorded values after a restart,
//!   so `every N T.new_samples` keeps its rhythm;
//! - every `B` samples become a [`Batch`] directory `STATE/batches/SERVICE/SEQ/` (written by a
//!   background thread, `SEQ` counting up per service across trackers and restarts), and
//!   `T.batch` is set to `{size, path}` of the newest one.
//!
//! **Ordering.** `T.new_samples` never crosses a multiple of `B` before the batch that ends
//! there is on disk and `T.batch` points at it: a trigger `every B T.new_samples ->
//! checker.check(T.batch)` always sees the batch its firing is about.
//!
//! **Never on the request path.** The serving engine calls [`ServiceLog::record`] from its
//! log thread (through a bounded queue that drops records rather than slow requests down);
//! writing batches happens on a thread of its own; the sensors are published by a task at
//! most every [`FLUSH`] (coalescing), through the same checked path as the control API's
//! `PUT /v1/agents/AGENT/sensors/SENSOR`.

use super::batch::{Batch, Sample};
use crate::executor::SignalSink;
use crate::value::RtValue;
use serde_json::json;
use sflow_compiler::lower::plan::{Expr, Plan, Value};
use sflow_ml::serve::{InferenceRecord, RequestLog};
use sflow_ml::Dataset;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// How often a tracker's sensors are published at most.
pub const FLUSH: Duration = Duration::from_millis(100);

/// A `Tracker` agent of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerSpec {
    /// The agent's name.
    pub agent: String,
    /// The service it watches.
    pub service: String,
    /// Samples per batch.
    pub batch_size: usize,
}

/// The plan's trackers, by the service they watch.
pub fn trackers_of(plan: &Plan) -> BTreeMap<String, Vec<TrackerSpec>> {
    let mut out: BTreeMap<String, Vec<TrackerSpec>> = BTreeMap::new();
    for a in plan.agents.iter().filter(|a| a.kind == "Tracker") {
        let Some(Expr::Ref { name: service, .. }) = a.config.get("watch") else {
            continue;
        };
        let batch_size = match a.config.get("batch_size") {
            Some(Expr::Literal {
                value: Value::Int { value },
            }) => usize::try_from(*value).unwrap_or(1).max(1),
            _ => 1000,
        };
        out.entry(service.clone()).or_default().push(TrackerSpec {
            agent: a.name.clone(),
            service: service.clone(),
            batch_size,
        });
    }
    out
}

/// The next batch number under `dir` (one more than the highest `SEQ` there).
fn next_seq(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .map_or(1, |m| m + 1)
}

fn int_signal(sink: &Weak<dyn SignalSink>, key: &str) -> u64 {
    match sink.upgrade().and_then(|s| s.signal(key)) {
        Some(RtValue::Int { value }) => u64::try_from(value).unwrap_or(0),
        _ => 0,
    }
}

/// The request log of one service: every record goes to each tracker watching it.
#[derive(Debug)]
pub struct ServiceLog {
    trackers: Vec<Arc<Tracker>>,
}

impl ServiceLog {
    /// The log of `service` for its trackers (`None` when no tracker watches it: the engine
    /// then logs nothing). Counters continue from the values `sink` holds.
    pub fn new(
        specs: &[TrackerSpec],
        state_dir: &Path,
        sink: &Weak<dyn SignalSink>,
    ) -> Option<Arc<ServiceLog>> {
        let first = specs.first()?;
        let dir = state_dir.join("batches").join(&first.service);
        let seq = Arc::new(AtomicU64::new(next_seq(&dir)));
        let trackers = specs
            .iter()
            .map(|spec| Tracker::new(spec.clone(), dir.clone(), seq.clone(), sink))
            .collect();
        Some(Arc::new(ServiceLog { trackers }))
    }

    /// Its trackers.
    pub fn trackers(&self) -> &[Arc<Tracker>] {
        &self.trackers
    }
}

impl RequestLog for ServiceLog {
    fn record(&self, record: InferenceRecord) {
        for t in &self.trackers {
            t.record(&record);
        }
    }
}

/// One tracker's counters, pending samples and written batches.
#[derive(Debug)]
pub struct Tracker {
    spec: TrackerSpec,
    /// Recorded values at start (the counters continue from them).
    base_samples: u64,
    base_requests: u64,
    state: Mutex<State>,
    /// Batches handled by the writer (written, or failed and logged).
    done: Arc<Mutex<Done>>,
    writer: Mutex<Option<mpsc::Sender<(PathBuf, Batch)>>>,
    dir: PathBuf,
    seq: Arc<AtomicU64>,
}

#[derive(Debug, Default)]
struct State {
    requests: u64,
    samples: u64,
    pixels: Vec<f32>,
    samples_pending: Vec<Sample>,
    shape: (usize, usize),
}

#[derive(Debug, Default)]
struct Done {
    batches: u64,
    latest: Option<(usize, String)>,
}

impl Tracker {
    fn new(
        spec: TrackerSpec,
        dir: PathBuf,
        seq: Arc<AtomicU64>,
        sink: &Weak<dyn SignalSink>,
    ) -> Arc<Tracker> {
        let done = Arc::new(Mutex::new(Done::default()));
        let (tx, rx) = mpsc::channel::<(PathBuf, Batch)>();
        let d = done.clone();
        let agent = spec.agent.clone();
        let writer = std::thread::Builder::new()
            .name(format!("sflow-batches-{agent}"))
            .spawn(move || {
                while let Ok((path, batch)) = rx.recv() {
                    let written = write_batch(&path, &batch);
                    let mut d = d.lock().unwrap_or_else(|p| p.into_inner());
                    d.batches += 1;
                    match written {
                        Ok(()) => d.latest = Some((batch.len(), path.display().to_string())),
                        Err(e) => tracing::error!(tracker = agent, "cannot write a batch: {e}"),
                    }
                }
            })
            .ok()
            .map(|_| tx);
        Arc::new(Tracker {
            base_samples: int_signal(sink, &format!("{}.new_samples", spec.agent)),
            base_requests: int_signal(sink, &format!("{}.requests", spec.agent)),
            spec,
            state: Mutex::new(State::default()),
            done,
            writer: Mutex::new(writer),
            dir,
            seq,
        })
    }

    /// Its spec.
    pub fn spec(&self) -> &TrackerSpec {
        &self.spec
    }

    fn record(&self, rec: &InferenceRecord) {
        let n = rec.predictions.len();
        if n == 0 || rec.inputs.len() != n * rec.rows * rec.cols {
            return;
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.requests += 1;
        st.samples += n as u64;
        if st.shape != (rec.rows, rec.cols) {
            if !st.samples_pending.is_empty() {
                tracing::warn!(
                    tracker = self.spec.agent,
                    "images changed shape: {} pending samples are not batched",
                    st.samples_pending.len()
                );
            }
            st.pixels.clear();
            st.samples_pending.clear();
            st.shape = (rec.rows, rec.cols);
        }
        st.pixels.extend_from_slice(&rec.inputs);
        for i in 0..n {
            st.samples_pending.push(Sample {
                key: rec.sample_keys.as_ref().and_then(|k| k.get(i)).cloned(),
                prediction: rec.predictions.get(i).copied(),
                confidence: rec.confidences.get(i).copied(),
                served_ms: Some(rec.timestamp_ms),
            });
        }
        let b = self.spec.batch_size;
        while st.samples_pending.len() >= b {
            let per = st.shape.0 * st.shape.1;
            let rest_px = st.pixels.split_off(b * per);
            let pixels = std::mem::replace(&mut st.pixels, rest_px);
            let rest = st.samples_pending.split_off(b);
            let samples = std::mem::replace(&mut st.samples_pending, rest);
            match Dataset::new(pixels, st.shape.0, st.shape.1, None) {
                Ok(images) => self.hand_over(Batch { images, samples }),
                Err(e) => {
                    tracing::error!(tracker = self.spec.agent, "cannot make a batch: {e}");
                    self.count_failed();
                }
            }
        }
    }

    fn count_failed(&self) {
        self.done.lock().unwrap_or_else(|p| p.into_inner()).batches += 1;
    }

    fn hand_over(&self, batch: Batch) {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        let path = self.dir.join(seq.to_string());
        let sent = self
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|w| w.send((path, batch)).is_ok())
            .unwrap_or(false);
        if !sent {
            tracing::error!(tracker = self.spec.agent, "the batch writer is gone");
            self.count_failed();
        }
    }

    /// The sensor values to publish now: `new_samples` (held below the next multiple of
    /// the batch size until that batch is handled), `requests`, and the newest batch.
    fn sensors(&self) -> (u64, u64, Option<(usize, String)>) {
        let (samples, requests) = {
            let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            (st.samples, st.requests)
        };
        let (batches, latest) = {
            let d = self.done.lock().unwrap_or_else(|p| p.into_inner());
            (d.batches, d.latest.clone())
        };
        let b = self.spec.batch_size as u64;
        let visible = samples.min(batches.saturating_mul(b).saturating_add(b - 1));
        (
            self.base_samples + visible,
            self.base_requests + requests,
            latest,
        )
    }

    /// Publishes the sensors every [`FLUSH`] when they changed, until `shutdown` (or the
    /// engine is gone). The batch goes first, so a trigger on `new_samples` sees it.
    pub async fn publish(
        self: Arc<Self>,
        sink: Weak<dyn SignalSink>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let agent = self.spec.agent.clone();
        let mut last: (Option<u64>, Option<u64>, Option<(usize, String)>) = (None, None, None);
        loop {
            tokio::select! {
                () = tokio::time::sleep(FLUSH) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            let Some(sink) = sink.upgrade() else { return };
            let (samples, requests, batch) = self.sensors();
            let set = |sensor: &str, v: serde_json::Value| {
                if let Err(e) = sink.set_sensor(&agent, sensor, &v) {
                    tracing::warn!(tracker = agent, sensor, "cannot set the sensor: {e}");
                }
            };
            if batch.is_some() && batch != last.2 {
                if let Some((size, path)) = &batch {
                    set("batch", json!({ "size": size, "path": path }));
                }
                last.2 = batch;
            }
            if last.1 != Some(requests) {
                set("requests", json!(requests));
                last.1 = Some(requests);
            }
            if last.0 != Some(samples) {
                set("new_samples", json!(samples));
                last.0 = Some(samples);
            }
        }
    }
}

/// Writes a batch through a scratch directory and a rename, so `SEQ/` is either complete or
/// absent.
fn write_batch(path: &Path, batch: &Batch) -> Result<(), String> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scratch = parent.join(format!(".{name}.partial"));
    let _ = std::fs::remove_dir_all(&scratch);
    batch.write(&scratch).map_err(|e| e.to_string())?;
    std::fs::rename(&scratch, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize, keys: bool) -> InferenceRecord {
        InferenceRecord {
            id: None,
            sample_keys: keys.then(|| (0..n).map(|i| format!("k{i}")).collect()),
            model: "m".into(),
            version: "1".into(),
            timestamp_ms: 5,
            rows: 2,
            cols: 2,
            inputs: vec![0.5; n * 4],
            predictions: vec![3; n],
            confidences: vec![0.9; n],
            latency_s: 0.001,
        }
    }

    struct NoSink;
    impl SignalSink for NoSink {
        fn set_sensor(
            &self,
            _: &str,
            _: &str,
            _: &serde_json::Value,
        ) -> crate::error::Result<RtValue> {
            Err("no".into())
        }
        fn set_service_signal(
            &self,
            _: &str,
            _: &str,
            _: &serde_json::Value,
        ) -> crate::error::Result<RtValue> {
            Err("no".into())
        }
        fn signal(&self, key: &str) -> Option<RtValue> {
            (key == "t.new_samples").then_some(RtValue::Int { value: 7 })
        }
    }

    #[test]
    fn samples_become_batches_and_counters_wait_for_them() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("batches/svc/4"))?;
        let sink: Arc<dyn SignalSink> = Arc::new(NoSink);
        let weak = Arc::downgrade(&sink);
        let spec = TrackerSpec {
            agent: "t".into(),
            service: "svc".into(),
            batch_size: 3,
        };
        let log = ServiceLog::new(&[spec], dir.path(), &weak).ok_or("no log")?;
        log.record(record(2, true));
        log.record(record(2, false));
        let t = log.trackers()[0].clone();
        // 4 samples, batch of 3 handed over: wait until the writer is done with it.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let (samples, requests, latest) = loop {
            let s = t.sensors();
            if s.2.is_some() || std::time::Instant::now() > deadline {
                break s;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!((samples, requests), (7 + 4, 2));
        let (size, path) = latest.ok_or("no batch written")?;
        assert_eq!(size, 3);
        assert!(path.ends_with("batches/svc/5"), "{path}");
        let back = Batch::read(Path::new(&path))?;
        assert_eq!(back.len(), 3);
        assert_eq!(back.samples[0].key.as_deref(), Some("k0"));
        assert_eq!(back.samples[2].key, None);
        assert_eq!(back.samples[0].prediction, Some(3));
        Ok(())
    }

    #[test]
    fn new_samples_stop_short_of_an_unwritten_batch() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let sink: Arc<dyn SignalSink> = Arc::new(NoSink);
        let spec = TrackerSpec {
            agent: "u".into(),
            service: "svc".into(),
            batch_size: 10,
        };
        let log = ServiceLog::new(&[spec], dir.path(), &Arc::downgrade(&sink)).ok_or("no log")?;
        let t = log.trackers()[0].clone();
        // Pretend the writer is gone: the batch is counted as handled (failed), so the
        // counter is not stuck below 10 forever.
        t.writer.lock().map_err(|_| "poisoned")?.take();
        log.record(record(9, false));
        assert_eq!(t.sensors().0, 9);
        log.record(record(3, false));
        assert_eq!(t.sensors().0, 12);
        Ok(())
    }
}
