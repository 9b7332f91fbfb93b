//! sflow-ml benchmarks (`cargo bench -p sflow-ml --bench ml`, with LIBTORCH set):
//!
//! - criterion: a drift check of a 1000×784 batch with each detector (target < 50 ms), and
//!   one training epoch of the MLP on 10,000 digits;
//! - then, unless `SFLOW_BENCH_SKIP_SERVING` is set, a closed-loop HTTP load test of the
//!   Open Inference Protocol server on 127.0.0.1 (throughput, p50, p99), printed as a table.
//!   `SFLOW_BENCH_SERVE_SECS` sets each configuration's duration (5 s).
//!
//! libtorch runs with one intra-op thread (the setting for a shared 2-core machine, see
//! docs/ml.md) unless `SFLOW_BENCH_TORCH_THREADS` says otherwise.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use sflow_ml::data::{mnist, Split};
use sflow_ml::serve::http::{serve, HttpConfig};
use sflow_ml::serve::{Engine, EngineConfig, ServedModel};
use sflow_ml::{train_classifier, Arch, Classifier, Dataset, DetectorSpec, TrainConfig};

fn mnist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

fn drift_checks(c: &mut Criterion, train: &Dataset, test: &Dataset, model: &Arc<Classifier>) {
    let reference = train.take(12_000);
    let batch = test.take(1_000);
    let mut g = c.benchmark_group("drift_check_1000x784");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    for name in ["ks", "mmd", "autoencoder_ood", "confidence"] {
        let t = Instant::now();
        let det = DetectorSpec::from_call(name, &[])
            .unwrap()
            .fit(&reference, Some(model.clone()), 0)
            .unwrap();
        eprintln!("fit {name} on 12,000 digits: {:.2?}", t.elapsed());
        g.bench_function(name, |b| b.iter(|| det.check(&batch).unwrap()));
    }
    g.finish();
}

fn training(c: &mut Criterion, train: &Dataset) {
    let data = train.take(10_000);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.pt");
    let mut g = c.benchmark_group("train");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("mlp_1_epoch_10k", |b| {
        b.iter(|| {
            train_classifier(&TrainConfig::new(Arch::Mlp, 1, 1e-3), &data, None, &out).unwrap()
        })
    });
    g.finish();
}

struct LoadResult {
    requests: usize,
    failed: usize,
    secs: f64,
    p50: f64,
    p99: f64,
    mean_batch: f64,
}

async fn load(
    engine: Arc<Engine>,
    clients: usize,
    images_per_request: usize,
    secs: f64,
    test: &Dataset,
) -> LoadResult {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/v2/models/mnist/infer",
        listener.local_addr().unwrap()
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let e = engine.clone();
    let server = tokio::spawn(async move {
        serve(listener, e, &HttpConfig::default(), async move {
            let _ = rx.await;
        })
        .await
    });
    let client = reqwest::Client::new();
    let bodies: Vec<bytes_body::Body> = (0..16)
        .map(|i| {
            let imgs = test.slice(i * images_per_request, (i + 1) * images_per_request);
            bytes_body::make(&imgs)
        })
        .collect();
    let bodies = Arc::new(bodies);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|k| {
            let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
            tokio::spawn(async move {
                let (mut lat, mut failed, mut i) = (Vec::new(), 0usize, k);
                while Instant::now() < deadline && lat.len() + failed < 1_000_000 {
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(bodies[i % bodies.len()].clone())
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 200 => {
                            let _ = r.bytes().await;
                            lat.push(t.elapsed().as_secs_f64());
                        }
                        _ => failed += 1,
                    }
                    i += 1;
                }
                (lat, failed)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t.await.unwrap();
        all.extend(l);
        failed += f;
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = tx.send(());
    server.await.unwrap().unwrap();
    all.sort_by(f64::total_cmp);
    let q = |p: f64| {
        all.get(((all.len() as f64 * p).ceil() as usize).clamp(1, all.len().max(1)) - 1)
            .copied()
            .unwrap_or(0.0)
    };
    // Mean images per forward pass, from the Prometheus histogram.
    let text = engine.metrics().render();
    let grab = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let mean_batch =
        grab("sflow_serve_batch_images_sum") / grab("sflow_serve_batch_images_count").max(1.0);
    LoadResult {
        requests: all.len(),
        failed,
        secs,
        p50: q(0.50),
        p99: q(0.99),
        mean_batch,
    }
}

mod bytes_body {
    use sflow_ml::Dataset;

    pub type Body = Vec<u8>;

    pub fn make(imgs: &Dataset) -> Body {
        serde_json::to_vec(&serde_json::json!({
            "inputs": [{"name": "input", "shape": [imgs.len(), 784], "datatype": "FP32", "data": imgs.pixels()}]
        }))
        .unwrap()
    }
}

fn serving(model_path: &std::path::Path, test: &Dataset) {
    let secs: f64 = std::env::var("SFLOW_BENCH_SERVE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("\nserving: closed-loop HTTP load on 127.0.0.1 (client and server share the machine), {secs} s per row");
    println!("| clients | images/request | workers | max_wait | requests/s | images/s | p50 ms | p99 ms | mean batch | failed |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let rows: [(usize, usize, usize, u64); 8] = [
        (1, 1, 1, 0),
        (1, 1, 1, 2),
        (8, 1, 1, 0),
        (8, 1, 2, 0),
        (8, 1, 2, 2),
        (32, 1, 1, 0),
        (32, 1, 2, 0),
        (8, 16, 2, 0),
    ];
    for (clients, per_req, workers, wait_ms) in rows {
        let cfg = EngineConfig {
            workers,
            max_wait: Duration::from_millis(wait_ms),
            ..EngineConfig::default()
        };
        let engine = Engine::new(
            Some(ServedModel::load("mnist", "1", model_path).unwrap()),
            cfg,
            None,
        );
        let r = rt.block_on(load(engine, clients, per_req, secs, test));
        println!(
            "| {clients} | {per_req} | {workers} | {wait_ms} ms | {:.0} | {:.0} | {:.2} | {:.2} | {:.1} | {} |",
            r.requests as f64 / r.secs,
            (r.requests * per_req) as f64 / r.secs,
            r.p50 * 1e3,
            r.p99 * 1e3,
            r.mean_batch,
            r.failed
        );
    }
}

fn main() {
    let threads = std::env::var("SFLOW_BENCH_TORCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1usize);
    sflow_ml::set_torch_threads(threads);
    let train = mnist(&mnist_dir(), Split::Train).unwrap().shuffled(1);
    let test = mnist(&mnist_dir(), Split::Test).unwrap().shuffled(2);
    let dir = tempfile::tempdir().unwrap();
    let model_path = dir.path().join("mlp.pt");
    let rep = train_classifier(
        &TrainConfig::new(Arch::Mlp, 1, 1e-3),
        &train.slice(20_000, 30_000),
        None,
        &model_path,
    )
    .unwrap();
    eprintln!(
        "model: MLP, 1 epoch on 9,000 digits, held-out accuracy {:.4}",
        rep.accuracy
    );
    let model = Arc::new(Classifier::load(&model_path).unwrap());

    let mut c = Criterion::default().configure_from_args();
    drift_checks(&mut c, &train, &test, &model);
    training(&mut c, &train);
    c.final_summary();

    if std::env::var_os("SFLOW_BENCH_SKIP_SERVING").is_none() {
        serving(&model_path, &test);
    }
}
