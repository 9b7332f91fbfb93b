//! The traffic generator: real MNIST test digits sent to the served model over the Open
//! Inference Protocol v2, as a client would, clean at first and then corrupted.
//!
//! Each request carries `parameters.sample_keys`: the index of each digit in the MNIST test
//! split, which is the dataset of the program's `oracle` label source. That is how the oracle
//! answers for a corrupted digit (docs/ml.md); the generator itself keeps the true labels to
//! measure the accuracy of the live stream.

use crate::DemoError;
use serde_json::{json, Value};
use sflow_ml::corrupt::{corrupt_mixed, Corruption};
use sflow_ml::Dataset;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A stream batch: images, their true labels and their keys in the oracle's dataset.
pub struct StreamBatch {
    /// The images (pixels in [0, 1]).
    pub images: Dataset,
    /// The true labels.
    pub labels: Vec<u8>,
    /// The index of each image in the MNIST test split.
    pub keys: Vec<usize>,
}

/// Draws stream batches from the MNIST test split: a shuffled order, cycled, each batch
/// clean or corrupted by a mix of corruptions.
pub struct Stream {
    test: Dataset,
    order: Vec<usize>,
    next: usize,
    seed: u64,
}

impl Stream {
    /// A stream over `test` in an order fixed by `seed`.
    pub fn new(test: Dataset, seed: u64) -> Stream {
        let order = permutation(test.len(), seed);
        Stream {
            test,
            order,
            next: 0,
            seed,
        }
    }

    /// The next `n` digits, corrupted by `mix` when given.
    pub fn batch(
        &mut self,
        n: usize,
        mix: Option<&[(Corruption, u8)]>,
    ) -> Result<StreamBatch, DemoError> {
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            if self.next == self.order.len() {
                self.next = 0;
            }
            keys.push(self.order[self.next]);
            self.next += 1;
        }
        let clean = self.test.subset(&keys)?;
        let labels = clean
            .labels()
            .map(<[u8]>::to_vec)
            .ok_or_else(|| DemoError::Runtime("the MNIST test split has no labels".into()))?;
        self.seed = self.seed.wrapping_add(1);
        let images = match mix {
            Some(mix) => corrupt_mixed(&clean, mix, self.seed)?,
            None => clean,
        };
        Ok(StreamBatch {
            images,
            labels,
            keys,
        })
    }
}

fn permutation(n: usize, seed: u64) -> Vec<usize> {
    // A Fisher–Yates shuffle driven by splitmix64: deterministic, no dependency needed.
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// A client of one service's inference endpoint.
#[derive(Clone)]
pub struct Client {
    http: reqwest::blocking::Client,
    infer_url: String,
}

/// What one request got back.
pub struct Answer {
    /// The predicted label of each image.
    pub labels: Vec<u8>,
    /// The model version that answered.
    pub version: Option<String>,
}

impl Client {
    /// A client of `base` (the service's URL) for model `model`.
    pub fn new(base: &str, model: &str) -> Result<Client, DemoError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| DemoError::Http(e.to_string()))?;
        Ok(Client {
            http,
            infer_url: format!("{base}/v2/models/{model}/infer"),
        })
    }

    /// Classifies `images[range]`, tagging them with their keys.
    pub fn infer(
        &self,
        images: &[f32],
        keys: &[usize],
        pixels: usize,
    ) -> Result<Answer, DemoError> {
        let n = keys.len();
        let body = json!({
            "inputs": [{"name": "input", "shape": [n, pixels], "datatype": "FP32", "data": images}],
            "parameters": {"sample_keys": keys.iter().map(|k| k.to_string()).collect::<Vec<_>>()},
        });
        let resp = self
            .http
            .post(&self.infer_url)
            .json(&body)
            .send()
            .map_err(|e| DemoError::Http(format!("infer: {e}")))?;
        let status = resp.status();
        let v: Value = resp
            .json()
            .map_err(|e| DemoError::Http(format!("infer: {status}: {e}")))?;
        if !status.is_success() {
            return Err(DemoError::Http(format!("infer: {status}: {v}")));
        }
        let outputs = v
            .get("outputs")
            .and_then(Value::as_array)
            .ok_or_else(|| DemoError::Http(format!("infer: no outputs in {v}")))?;
        let label = outputs
            .iter()
            .find(|o| o.get("name").and_then(Value::as_str) == Some("label"))
            .and_then(|o| o.get("data"))
            .and_then(Value::as_array)
            .ok_or_else(|| DemoError::Http("infer: no `label` output".into()))?;
        let labels = label
            .iter()
            .map(|x| x.as_u64().unwrap_or(u64::MAX).min(255) as u8)
            .collect::<Vec<_>>();
        if labels.len() != n {
            return Err(DemoError::Http(format!(
                "infer: {} labels for {n} images",
                labels.len()
            )));
        }
        Ok(Answer {
            labels,
            version: v
                .get("model_version")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

/// How a stream batch was answered.
pub struct BatchResult {
    /// Share of the batch classified right.
    pub accuracy: f64,
    /// The model versions that answered, in order of first appearance.
    pub versions: Vec<String>,
}

/// Sends `batch` in requests of `per_request` images, in order; returns its live accuracy.
pub fn send_batch(
    client: &Client,
    batch: &StreamBatch,
    per_request: usize,
) -> Result<BatchResult, DemoError> {
    let pixels = batch.images.rows() * batch.images.cols();
    let all = batch.images.pixels();
    let mut right = 0usize;
    let mut versions: Vec<String> = Vec::new();
    let per_request = per_request.max(1);
    for start in (0..batch.keys.len()).step_by(per_request) {
        let end = (start + per_request).min(batch.keys.len());
        let answer = client.infer(
            &all[start * pixels..end * pixels],
            &batch.keys[start..end],
            pixels,
        )?;
        right += answer
            .labels
            .iter()
            .zip(&batch.labels[start..end])
            .filter(|(p, t)| p == t)
            .count();
        if let Some(v) = answer.version {
            if !versions.contains(&v) {
                versions.push(v);
            }
        }
    }
    Ok(BatchResult {
        accuracy: right as f64 / batch.keys.len().max(1) as f64,
        versions,
    })
}

/// Latency seen by the clients during one step of a load ramp.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LoadSample {
    /// Seconds since the ramp started.
    pub t_s: f64,
    /// Concurrent clients.
    pub clients: usize,
    /// Requests answered in this interval.
    pub requests: usize,
    /// Failed requests in this interval.
    pub failed: usize,
    /// Median client-side latency (ms).
    pub p50_ms: f64,
    /// 95th percentile client-side latency (ms).
    pub p95_ms: f64,
}

/// Runs `clients` closed-loop clients sending `images_per_request` digits each for `secs`,
/// reporting every second through `tick` (which also samples the runtime's signals).
pub fn load_step(
    client: &Client,
    batch: &StreamBatch,
    clients: usize,
    images_per_request: usize,
    secs: u64,
    t0: Instant,
    mut tick: impl FnMut(LoadSample),
) {
    let stop = Arc::new(AtomicBool::new(false));
    let latencies: Arc<Mutex<(Vec<f64>, usize)>> = Arc::new(Mutex::new((Vec::new(), 0)));
    let pixels = batch.images.rows() * batch.images.cols();
    let n = images_per_request.clamp(1, batch.keys.len().max(1));
    let images: Arc<Vec<f32>> = Arc::new(batch.images.pixels()[..n * pixels].to_vec());
    let keys: Arc<Vec<usize>> = Arc::new(batch.keys[..n].to_vec());
    let mut handles = Vec::new();
    for _ in 0..clients {
        let (client, stop, latencies, images, keys) = (
            client.clone(),
            stop.clone(),
            latencies.clone(),
            images.clone(),
            keys.clone(),
        );
        handles.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = client.infer(&images, &keys, pixels).is_ok();
                let ms = t.elapsed().as_secs_f64() * 1e3;
                if let Ok(mut g) = latencies.lock() {
                    if ok {
                        g.0.push(ms);
                    } else {
                        g.1 += 1;
                    }
                }
            }
        }));
    }
    for _ in 0..secs {
        thread::sleep(Duration::from_secs(1));
        let (mut lat, failed) = match latencies.lock() {
            Ok(mut g) => (std::mem::take(&mut g.0), std::mem::take(&mut g.1)),
            Err(_) => (Vec::new(), 0),
        };
        lat.sort_by(f64::total_cmp);
        tick(LoadSample {
            t_s: t0.elapsed().as_secs_f64(),
            clients,
            requests: lat.len(),
            failed,
            p50_ms: quantile(&lat, 0.5),
            p95_ms: quantile(&lat, 0.95),
        });
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Parses `rotate:3,shear:4` into a corruption mix.
pub fn parse_mix(text: &str) -> Result<Vec<(Corruption, u8)>, DemoError> {
    let mut mix = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, sev) = part.split_once(':').unwrap_or((part, "3"));
        let c = Corruption::ALL
            .iter()
            .copied()
            .find(|c| c.name() == name)
            .ok_or_else(|| {
                DemoError::Usage(format!(
                    "unknown corruption `{name}` (known: {})",
                    Corruption::ALL
                        .iter()
                        .map(|c| c.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let s: u8 = sev
            .parse()
            .map_err(|_| DemoError::Usage(format!("severity `{sev}` of `{name}` is not 1–5")))?;
        mix.push((c, s));
    }
    if mix.is_empty() {
        return Err(DemoError::Usage("no corruption given".into()));
    }
    Ok(mix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permutation_holds_every_index_once() {
        let mut p = permutation(1000, 7);
        assert_ne!(p, (0..1000).collect::<Vec<_>>());
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn mixes_parse_and_bad_ones_are_refused() -> Result<(), DemoError> {
        assert_eq!(
            parse_mix("rotate:4, shear")?,
            vec![(Corruption::Rotate, 4), (Corruption::Shear, 3)]
        );
        assert!(parse_mix("wobble:2").is_err());
        assert!(parse_mix("rotate:x").is_err());
        assert!(parse_mix("").is_err());
        Ok(())
    }

    #[test]
    fn quantiles_of_sorted_latencies() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 51.0);
        assert_eq!(quantile(&v, 0.95), 95.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }
}
