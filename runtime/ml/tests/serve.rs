//! The serving engine over HTTP (Open Inference Protocol v2), with a plain HTTP client:
//! health, metadata, inference, malformed and oversized requests, hot swap under load,
//! metrics and the request log.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sflow_ml::serve::http::{serve, HttpConfig};
use sflow_ml::serve::{Engine, EngineConfig, MemoryLog, RequestLog, ServedModel};
use sflow_ml::{train_classifier, Arch, Classifier, Dataset, TrainConfig};

fn train_small(path: &Path, seed: u64) {
    let cfg = TrainConfig {
        seed,
        ..TrainConfig::new(Arch::Mlp, 1, 1e-3)
    };
    train_classifier(
        &cfg,
        &common::train_shuffled().slice(seed as usize * 3_000, seed as usize * 3_000 + 3_000),
        None,
        path,
    )
    .unwrap();
}

struct Server {
    url: String,
    engine: Arc<Engine>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(
        model: Option<ServedModel>,
        cfg: EngineConfig,
        http: HttpConfig,
        log: Option<Arc<dyn RequestLog>>,
    ) -> Self {
        let engine = Engine::new(model, cfg, log);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let e = engine.clone();
        let task = tokio::spawn(async move {
            serve(listener, e, &http, async move {
                let _ = rx.await;
            })
            .await
        });
        Server {
            url,
            engine,
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

fn infer_body(images: &Dataset, id: &str) -> Value {
    json!({
        "id": id,
        "inputs": [{
            "name": "input",
            "shape": [images.len(), 784],
            "datatype": "FP32",
            "data": images.pixels(),
        }]
    })
}

fn labels_of(resp: &Value) -> Vec<u8> {
    let outs = resp["outputs"].as_array().unwrap();
    let label = outs.iter().find(|o| o["name"] == "label").unwrap();
    label["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oip_v2_health_metadata_and_inference() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.pt");
    train_small(&p, 1);
    let log = Arc::new(MemoryLog::new(10_000));
    let mut model = ServedModel::load("mnist", "1", &p).unwrap();
    model.accuracy = Some(0.9);
    let srv = Server::start(
        Some(model),
        EngineConfig::default(),
        HttpConfig::default(),
        Some(log.clone()),
    )
    .await;
    let c = reqwest::Client::new();
    let u = &srv.url;

    let r = c.get(format!("{u}/v2/health/live")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["live"], true);
    let r = c.get(format!("{u}/v2/health/ready")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r: Value = c
        .get(format!("{u}/v2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["name"], "sflow");
    let meta: Value = c
        .get(format!("{u}/v2/models/mnist"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["name"], "mnist");
    assert_eq!(meta["versions"], json!(["1"]));
    assert_eq!(meta["platform"], "pytorch_torchscript");
    assert_eq!(meta["inputs"][0]["shape"], json!([-1, 1, 28, 28]));
    assert_eq!(meta["outputs"][0]["shape"], json!([-1, 10]));
    assert_eq!(
        c.get(format!("{u}/v2/models/mnist/versions/1"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(format!("{u}/v2/models/mnist/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Inference: predictions equal the classifier's, in every accepted layout.
    let images = common::test().take(20);
    let expected = Classifier::load(&p).unwrap().predict(&images).unwrap();
    let r = c
        .post(format!("{u}/v2/models/mnist/infer"))
        .json(&infer_body(&images, "r1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["model_name"], "mnist");
    assert_eq!(body["model_version"], "1");
    assert_eq!(body["id"], "r1");
    assert_eq!(labels_of(&body), expected);
    let probs = &body["outputs"][0];
    assert_eq!(probs["name"], "probabilities");
    assert_eq!(probs["shape"], json!([20, 10]));
    let row: f64 = probs["data"].as_array().unwrap()[..10]
        .iter()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((row - 1.0).abs() < 1e-4);

    // UINT8, nested [N, 28, 28], versioned route, only the label output.
    let nested: Vec<Vec<Vec<u8>>> = (0..3)
        .map(|i| {
            images
                .image(i)
                .unwrap()
                .chunks(28)
                .map(|r| r.iter().map(|&p| (p * 255.0).round() as u8).collect())
                .collect()
        })
        .collect();
    let req = json!({"inputs": [{"name": "x", "shape": [3, 28, 28], "datatype": "UINT8", "data": nested}], "outputs": [{"name": "label"}]});
    let r = c
        .post(format!("{u}/v2/models/mnist/versions/1/infer"))
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(labels_of(&body), expected[..3].to_vec());
    // One image as [784].
    let req = json!({"inputs": [{"name": "x", "shape": [784], "datatype": "FP64", "data": images.image(5).unwrap()}]});
    let body: Value = c
        .post(format!("{u}/v2/models/mnist/infer"))
        .json(&req)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(labels_of(&body), vec![expected[5]]);

    // Metrics and the request log.
    let text = c
        .get(format!("{u}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("sflow_serve_requests_total{model=\"mnist\"} 3"),
        "{text}"
    );
    assert!(text.contains("sflow_serve_images_total{model=\"mnist\"} 24"));
    assert!(text.contains("sflow_serve_request_duration_seconds_bucket"));
    assert!(text.contains("sflow_serve_model_info{model=\"mnist\",version=\"1\"} 1"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while log.total_samples() < 24 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let recs = log.records();
    assert_eq!(log.total_samples(), 24);
    let first = recs.iter().find(|r| r.id.as_deref() == Some("r1")).unwrap();
    assert_eq!(first.to_dataset().unwrap().pixels(), images.pixels());
    assert_eq!(first.predictions, expected);
    assert_eq!(first.version, "1");
    let lat = srv.engine.metrics().latency();
    assert_eq!(lat.samples, 3);
    assert!(lat.p50 > 0.0 && lat.p99 >= lat.p50);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_get_4xx_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.pt");
    train_small(&p, 2);
    let cfg = EngineConfig {
        max_request_images: 8,
        ..EngineConfig::default()
    };
    let http = HttpConfig {
        max_body_bytes: 200_000,
    };
    let srv = Server::start(
        Some(ServedModel::load("mnist", "7", &p).unwrap()),
        cfg,
        http,
        None,
    )
    .await;
    let c = reqwest::Client::new();
    let u = &srv.url;
    let infer = format!("{u}/v2/models/mnist/infer");
    let img: Vec<f32> = common::test().image(0).unwrap().to_vec();
    let input = |shape: Value, datatype: &str, data: Value| json!({"inputs": [{"name": "input", "shape": shape, "datatype": datatype, "data": data}]});

    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        ("not json", c.post(&infer).body("{not json"), 400, "malformed inference request"),
        ("no inputs field", c.post(&infer).json(&json!({"id": "x"})), 400, "malformed"),
        ("zero inputs", c.post(&infer).json(&json!({"inputs": []})), 400, "exactly one input"),
        ("two inputs", c.post(&infer).json(&json!({"inputs": [input(json!([784]), "FP32", json!(img))["inputs"][0], input(json!([784]), "FP32", json!(img))["inputs"][0]]})), 400, "exactly one input"),
        ("bad shape", c.post(&infer).json(&input(json!([1, 3, 28, 28]), "FP32", json!(img))), 400, "input shape"),
        ("negative shape", c.post(&infer).json(&input(json!([-1, 784]), "FP32", json!(img))), 400, "input shape"),
        ("too few values", c.post(&infer).json(&input(json!([2, 784]), "FP32", json!(img))), 400, "its shape holds 1568"),
        ("strings", c.post(&infer).json(&input(json!([1, 784]), "FP32", json!(vec!["a"; 784]))), 400, "must hold numbers"),
        ("datatype", c.post(&infer).json(&input(json!([784]), "BYTES", json!(img))), 400, "unsupported datatype"),
        ("uint8 range", c.post(&infer).json(&input(json!([784]), "UINT8", json!(vec![300; 784]))), 400, "0–255"),
        ("infinite", c.post(&infer).json(&input(json!([784]), "FP32", json!(vec![1e39f64; 784]))), 400, "non-finite"),
        ("unknown output", c.post(&infer).json(&json!({"inputs": input(json!([784]), "FP32", json!(img))["inputs"], "outputs": [{"name": "logits"}]})), 400, "unknown output"),
        ("unknown model", c.post(format!("{u}/v2/models/cifar/infer")).json(&input(json!([784]), "FP32", json!(img))), 404, "unknown model"),
        ("unknown version", c.post(format!("{u}/v2/models/mnist/versions/3/infer")).json(&input(json!([784]), "FP32", json!(img))), 404, "no version"),
        ("too many images", c.post(&infer).json(&input(json!([9, 784]), "FP32", json!(vec![0.0f32; 9 * 784]))), 413, "at most 8"),
        ("body too large", c.post(&infer).body(vec![b' '; 300_000]), 413, "too large"),
        ("unknown route", c.get(format!("{u}/v1/predict")), 404, "Open Inference Protocol"),
    ];
    for (what, req, status, needle) in cases {
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{what}");
        let body: Value = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
        let msg = body["error"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{what}: {msg}");
    }
    assert_eq!(c.get(&infer).send().await.unwrap().status(), 405);
    // Still serving.
    let r = c
        .post(&infer)
        .json(&input(json!([1, 784]), "FP32", json!(img)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = c
        .get(format!("{u}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("sflow_serve_request_errors_total{model=\"mnist\",code=\"400\"} 12"),
        "{text}"
    );
    assert!(text.contains("code=\"413\"} 2"));
    srv.stop().await;

    // No model yet: not ready, and inference says so.
    let srv = Server::start(None, EngineConfig::default(), HttpConfig::default(), None).await;
    assert_eq!(
        c.get(format!("{}/v2/health/ready", srv.url))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert_eq!(
        c.get(format!("{}/v2/health/live", srv.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = c
        .post(format!("{}/v2/models/mnist/infer", srv.url))
        .json(&input(json!([784]), "FP32", json!(img)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    srv.engine
        .swap_model(ServedModel::load("mnist", "7", &p).unwrap());
    assert_eq!(
        c.get(format!("{}/v2/health/ready", srv.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swap_under_concurrent_load_fails_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (dir.path().join("a.pt"), dir.path().join("b.pt"));
    train_small(&pa, 3);
    train_small(&pb, 4);
    let images = common::test().take(200);
    let expect_a = Classifier::load(&pa).unwrap().predict(&images).unwrap();
    let expect_b = Classifier::load(&pb).unwrap().predict(&images).unwrap();
    assert_ne!(expect_a, expect_b, "the two models should differ somewhere");
    let cfg = EngineConfig {
        workers: 2,
        ..EngineConfig::default()
    };
    let srv = Server::start(
        Some(ServedModel::load("mnist", "a", &pa).unwrap()),
        cfg,
        HttpConfig::default(),
        None,
    )
    .await;
    let url = format!("{}/v2/models/mnist/infer", srv.url);
    let done = Arc::new(AtomicBool::new(false));
    let c = reqwest::Client::new();
    let mut clients = Vec::new();
    for k in 0..6usize {
        let (c, url, done, images) = (c.clone(), url.clone(), done.clone(), images.clone());
        let (ea, eb) = (expect_a.clone(), expect_b.clone());
        clients.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut seen_a, mut seen_b) = (0usize, Vec::new(), 0usize, 0usize);
            let mut i = k;
            // Bounded: stops when told, or after 3000 requests.
            while !done.load(Ordering::Relaxed) && ok + failed.len() < 3000 {
                let n = 1 + i % 4;
                let start = (i * 7) % (images.len() - n);
                let batch = images.slice(start, start + n);
                let r = c.post(&url).json(&infer_body(&batch, "x")).send().await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        let body: Value = r.json().await.unwrap();
                        let labels = labels_of(&body);
                        let (expected, seen) = match body["model_version"].as_str().unwrap() {
                            "a" => (&ea, &mut seen_a),
                            _ => (&eb, &mut seen_b),
                        };
                        *seen += 1;
                        assert_eq!(
                            labels,
                            expected[start..start + n].to_vec(),
                            "answer of the version it names"
                        );
                        ok += 1;
                    }
                    Ok(r) => failed.push(format!("status {}", r.status())),
                    Err(e) => failed.push(e.to_string()),
                }
                i += 6;
            }
            (ok, failed, seen_a, seen_b)
        }));
    }
    // 40 swaps, 25 ms apart, while the clients hammer the server; the models are loaded from
    // disk each time, as a replacement would be.
    for s in 0..40 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        let (v, p) = if s % 2 == 0 { ("b", &pb) } else { ("a", &pa) };
        srv.engine
            .swap_model(ServedModel::load("mnist", v, p).unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    done.store(true, Ordering::Relaxed);
    let (mut ok, mut seen_a, mut seen_b, mut failures) = (0, 0, 0, Vec::new());
    for cl in clients {
        let (o, f, a, b) = cl.await.unwrap();
        ok += o;
        seen_a += a;
        seen_b += b;
        failures.extend(f);
    }
    eprintln!("hot swap: {ok} requests answered during 40 swaps ({seen_a} by a, {seen_b} by b), {} failed", failures.len());
    assert!(failures.is_empty(), "{failures:?}");
    assert!(ok > 100 && seen_a > 0 && seen_b > 0);
    assert_eq!(srv.engine.swaps(), 40);
    assert_eq!(srv.engine.metrics().errors(), 0);
    // Scaling the workers while serving.
    srv.engine.set_workers(4);
    assert_eq!(srv.engine.workers(), 4);
    srv.engine.set_workers(1);
    assert_eq!(srv.engine.workers(), 1);
    let r = c
        .post(&url)
        .json(&infer_body(&images.take(2), "y"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    srv.stop().await;
}

#[test]
fn dynamic_batching_groups_concurrent_requests() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.pt");
    train_small(&p, 5);
    let cfg = EngineConfig {
        max_batch: 32,
        max_wait: Duration::from_millis(20),
        ..EngineConfig::default()
    };
    let engine = Engine::new(Some(ServedModel::load("m", "1", &p).unwrap()), cfg, None);
    let images = common::test().take(16);
    let expected = Classifier::load(&p).unwrap().predict(&images).unwrap();
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let (e, img) = (engine.clone(), images.image(i).unwrap().to_vec());
            std::thread::spawn(move || e.infer_blocking(None, img, 1).unwrap())
        })
        .collect();
    let preds: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (i, p) in preds.iter().enumerate() {
        assert_eq!(p.labels, vec![expected[i]]);
    }
    let largest = preds.iter().map(|p| p.batch_images).max().unwrap();
    assert!(
        largest > 1,
        "16 concurrent requests within 20 ms should share a forward pass"
    );
    // Wrong sizes are refused before queueing.
    assert!(engine.infer_blocking(None, vec![0.0; 10], 1).is_err());
    assert!(engine.infer_blocking(None, vec![], 0).is_err());
}
