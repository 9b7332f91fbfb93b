//! The HTTP face of the engine: the Open Inference Protocol v2 REST API (as KServe, Triton
//! and Seldon speak it) and Prometheus `/metrics`, as an axum [`Router`] the runtime mounts
//! (or [`serve`] runs alone).
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /v2/health/live` | 200 `{"live": true}` |
//! | `GET /v2/health/ready` | 200 `{"ready": true}` once a model is loaded, else 503 |
//! | `GET /v2` | server metadata |
//! | `GET /v2/models/{name}[/versions/{v}]` | model metadata (inputs, outputs, versions) |
//! | `GET /v2/models/{name}[/versions/{v}]/ready` | 200 when that model is served |
//! | `POST /v2/models/{name}[/versions/{v}]/infer` | inference |
//! | `GET /metrics` | Prometheus text format |
//!
//! An inference request carries one input tensor of images, pixels as `FP32`/`FP64`/`FP16`
//! in [0, 1] or `UINT8` in 0–255, flat or nested row-major, with shape `[N, 784]`,
//! `[N, 28, 28]`, `[N, 1, 28, 28]`, or one image as `[784]` or `[28, 28]`:
//!
//! ```json
//! {"id": "r1", "inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32", "data": [0.0, …]}]}
//! ```
//!
//! A request may name the item each image is with the request-level parameter
//! `sample_keys`, one string per image (a wrong count is a 400); the keys travel with the
//! images into the request log ([`super::InferenceRecord::sample_keys`]), which is how the
//! runtime's Tracker tells an `oracle` label source which dataset item a logged image is:
//!
//! ```json
//! {"inputs": [{"name": "input", "shape": [2, 784], "datatype": "UINT8", "data": […]}],
//!  "parameters": {"sample_keys": ["test:17", "test:4242"]}}
//! ```
//!
//! The answer holds `probabilities` (`FP32`, `[N, classes]`) and `label` (`INT64`, `[N]`),
//! or those named in the request's `outputs`. Errors are `{"error": "…"}` with 400
//! (malformed), 404 (unknown model or version), 413 (too large), 503 (not ready, overloaded)
//! or 500.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Engine, ServeError};

/// HTTP limits.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest request body accepted (8 MiB); larger ones get 413.
    pub max_body_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 8 << 20,
        }
    }
}

#[derive(Clone)]
struct AppState {
    engine: Arc<Engine>,
}

/// The OIP v2 + `/metrics` routes over `engine`.
pub fn router(engine: Arc<Engine>, cfg: &HttpConfig) -> Router {
    Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2", get(server_metadata))
        .route("/v2/models/{name}", get(model_metadata))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(model_metadata_v),
        )
        .route("/v2/models/{name}/ready", get(model_ready))
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(model_ready_v),
        )
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_v))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        .with_state(AppState { engine })
}

/// Serves `router(engine)` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: Arc<Engine>,
    cfg: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(engine, cfg))
        .with_graceful_shutdown(shutdown)
        .await
}

fn error(status: u16, msg: impl Into<String>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

impl IntoResponse for ServeError {
    fn into_response(self) -> Response {
        error(self.status(), self.to_string())
    }
}

async fn not_found() -> Response {
    error(404, "no such route (the API is the Open Inference Protocol v2: /v2/health/live, /v2/health/ready, /v2/models/{name}, /v2/models/{name}/infer; and /metrics)")
}

async fn live() -> Response {
    Json(json!({ "live": true })).into_response()
}

async fn ready(State(st): State<AppState>) -> Response {
    if st.engine.is_ready() {
        Json(json!({ "ready": true })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false })),
        )
            .into_response()
    }
}

async fn server_metadata() -> Response {
    Json(json!({
        "name": "sflow",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": []
    }))
    .into_response()
}

/// The served model if `name` (and `version`, when given) designate it.
fn resolve(
    engine: &Engine,
    name: &str,
    version: Option<&str>,
) -> Result<Arc<super::ServedModel>, ServeError> {
    let model = engine.model().ok_or(ServeError::NotReady)?;
    if model.name != name {
        return Err(ServeError::NotFound(format!(
            "unknown model {name:?} (this server serves {:?})",
            model.name
        )));
    }
    if let Some(v) = version {
        if v != model.version {
            return Err(ServeError::NotFound(format!(
                "model {name:?} has no version {v:?} being served (the served version is {:?})",
                model.version
            )));
        }
    }
    Ok(model)
}

fn metadata(engine: &Engine, name: &str, version: Option<&str>) -> Response {
    match resolve(engine, name, version) {
        Err(e) => e.into_response(),
        Ok(m) => {
            let (rows, cols) = m.classifier.image_shape();
            Json(json!({
                "name": m.name,
                "versions": [m.version],
                "platform": "pytorch_torchscript",
                "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 1, rows, cols]}],
                "outputs": [
                    {"name": "probabilities", "datatype": "FP32", "shape": [-1, m.classifier.classes()]},
                    {"name": "label", "datatype": "INT64", "shape": [-1]}
                ],
                "parameters": {
                    "accuracy": m.accuracy,
                    "max_request_images": engine.config().max_request_images,
                    "accepted_datatypes": ["FP32", "FP64", "FP16", "UINT8"]
                }
            }))
            .into_response()
        }
    }
}

async fn model_metadata(State(st): State<AppState>, Path(name): Path<String>) -> Response {
    metadata(&st.engine, &name, None)
}

async fn model_metadata_v(
    State(st): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    metadata(&st.engine, &name, Some(&version))
}

fn model_ready_inner(engine: &Engine, name: &str, version: Option<&str>) -> Response {
    match resolve(engine, name, version) {
        Ok(m) => Json(json!({ "name": m.name, "ready": true })).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn model_ready(State(st): State<AppState>, Path(name): Path<String>) -> Response {
    model_ready_inner(&st.engine, &name, None)
}

async fn model_ready_v(
    State(st): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    model_ready_inner(&st.engine, &name, Some(&version))
}

async fn metrics(State(st): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.engine.metrics().render(),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct InferRequest {
    #[serde(default)]
    id: Option<String>,
    inputs: Vec<InputTensor>,
    #[serde(default)]
    outputs: Option<Vec<RequestedOutput>>,
    #[serde(default)]
    parameters: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
struct InputTensor {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    data: Value,
}

#[derive(Debug, Deserialize)]
struct RequestedOutput {
    name: String,
}

async fn infer(
    State(st): State<AppState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    infer_inner(&st.engine, &name, None, body).await
}

async fn infer_v(
    State(st): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    infer_inner(&st.engine, &name, Some(&version), body).await
}

async fn infer_inner(
    engine: &Engine,
    name: &str,
    version: Option<&str>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let start = Instant::now();
    let result = run_infer(engine, name, version, body).await;
    match result {
        Ok((resp, images)) => {
            engine.metrics().request_ok(images, start.elapsed());
            resp
        }
        Err(e) => {
            engine.metrics().request_error(e.status(), start.elapsed());
            if e.status() >= 500 {
                tracing::warn!(model = name, "inference request failed: {e}");
            }
            e.into_response()
        }
    }
}

async fn run_infer(
    engine: &Engine,
    name: &str,
    version: Option<&str>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Response, usize), ServeError> {
    let body = body.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ServeError::TooLarge(format!("request body too large: {}", rej.body_text()))
        } else {
            ServeError::BadRequest(format!("cannot read the request body: {}", rej.body_text()))
        }
    })?;
    let model = resolve(engine, name, version)?;
    let req: InferRequest = serde_json::from_slice(&body)
        .map_err(|e| ServeError::BadRequest(format!("malformed inference request: {e}")))?;
    let want = match &req.outputs {
        None => vec!["probabilities".to_owned(), "label".to_owned()],
        Some(outs) => {
            let mut v = Vec::new();
            for o in outs {
                if o.name != "probabilities" && o.name != "label" {
                    return Err(ServeError::BadRequest(format!(
                        "unknown output {:?} (the model has \"probabilities\" and \"label\")",
                        o.name
                    )));
                }
                v.push(o.name.clone());
            }
            v
        }
    };
    let [input] = &req.inputs[..] else {
        return Err(ServeError::BadRequest(format!(
            "the model takes exactly one input tensor; the request has {}",
            req.inputs.len()
        )));
    };
    let (rows, cols) = model.classifier.image_shape();
    let n = images_in_shape(&input.shape, rows, cols)?;
    if n > engine.config().max_request_images {
        return Err(ServeError::TooLarge(format!(
            "{n} images in one request; this server takes at most {}",
            engine.config().max_request_images
        )));
    }
    let keys = sample_keys(req.parameters.as_ref(), n)?;
    let pixels = decode_data(&input.data, &input.datatype, &input.name, n * rows * cols)?;
    let pred = engine.infer_keyed(req.id.clone(), keys, pixels, n).await?;
    let mut outputs = Vec::new();
    for w in &want {
        if w == "probabilities" {
            outputs.push(json!({
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [n, pred.classes],
                "data": pred.probabilities,
            }));
        } else {
            outputs.push(json!({
                "name": "label",
                "datatype": "INT64",
                "shape": [n],
                "data": pred.labels,
            }));
        }
    }
    let mut body = json!({
        "model_name": pred.model,
        "model_version": pred.version,
        "outputs": outputs,
    });
    if let (Some(id), Some(obj)) = (req.id, body.as_object_mut()) {
        obj.insert("id".into(), Value::String(id));
    }
    Ok((Json(body).into_response(), n))
}

/// The request-level `parameters.sample_keys`: absent, or exactly one string per image.
fn sample_keys(
    parameters: Option<&serde_json::Map<String, Value>>,
    n: usize,
) -> Result<Option<Vec<String>>, ServeError> {
    let Some(v) = parameters.and_then(|p| p.get("sample_keys")) else {
        return Ok(None);
    };
    let bad = |what: &str| {
        ServeError::BadRequest(format!(
            "parameters.sample_keys must be an array of {n} strings, one per image; {what}"
        ))
    };
    let Value::Array(items) = v else {
        return Err(bad("it is not an array"));
    };
    if items.len() != n {
        return Err(bad(&format!("it has {} entries", items.len())));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, k)| match k {
            Value::String(s) => Ok(s.clone()),
            _ => Err(bad(&format!("entry {i} is not a string"))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The number of images a request shape describes (see the module documentation).
fn images_in_shape(shape: &[i64], rows: usize, cols: usize) -> Result<usize, ServeError> {
    let (r, c) = (rows as i64, cols as i64);
    let bad = || {
        ServeError::BadRequest(format!(
            "input shape {shape:?} is not one of [N, {}], [N, {r}, {c}], [N, 1, {r}, {c}], [{}] or [{r}, {c}]",
            r * c,
            r * c
        ))
    };
    if shape.iter().any(|&d| d < 1) {
        return Err(bad());
    }
    let n = match *shape {
        [d] if d == r * c => 1,
        [a, b] if a == r && b == c && b != r * c => 1,
        [n, d] if d == r * c => n,
        [n, a, b] if a == r && b == c => n,
        [n, 1, a, b] if a == r && b == c => n,
        _ => return Err(bad()),
    };
    usize::try_from(n).map_err(|_| bad())
}

/// Flattens `data` (flat or nested arrays of numbers) into exactly `expected` pixels.
fn decode_data(
    data: &Value,
    datatype: &str,
    name: &str,
    expected: usize,
) -> Result<Vec<f32>, ServeError> {
    let scale = match datatype {
        "FP32" | "FP64" | "FP16" => None,
        "UINT8" => Some(255.0f64),
        other => {
            return Err(ServeError::BadRequest(format!(
                "input {name:?}: unsupported datatype {other:?} (use FP32, FP64 or FP16 pixels in [0, 1], or UINT8 in 0–255)"
            )))
        }
    };
    let mut out = Vec::with_capacity(expected);
    let mut stack: Vec<&Value> = vec![data];
    // Depth-first, left to right: push children reversed.
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => {
                for it in items.iter().rev() {
                    stack.push(it);
                }
            }
            Value::Number(num) => {
                if out.len() >= expected {
                    return Err(ServeError::BadRequest(format!(
                        "input {name:?}: more values than its shape holds ({expected})"
                    )));
                }
                let x = num.as_f64().ok_or_else(|| {
                    ServeError::BadRequest(format!(
                        "input {name:?}: {num} is not a number libtorch can use"
                    ))
                })?;
                let x = match scale {
                    None => x,
                    Some(s) => {
                        if x.fract() != 0.0 || !(0.0..=255.0).contains(&x) {
                            return Err(ServeError::BadRequest(format!(
                                "input {name:?}: UINT8 value {num} is not an integer in 0–255"
                            )));
                        }
                        x / s
                    }
                };
                out.push(x as f32);
            }
            other => {
                return Err(ServeError::BadRequest(format!(
                    "input {name:?}: data must hold numbers (flat or nested arrays), found {}",
                    match other {
                        Value::Null => "null",
                        Value::Bool(_) => "a boolean",
                        Value::String(_) => "a string",
                        Value::Object(_) => "an object",
                        _ => "something else",
                    }
                )))
            }
        }
    }
    if out.len() != expected {
        return Err(ServeError::BadRequest(format!(
            "input {name:?}: {} values, but its shape holds {expected}",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(images_in_shape(&[3, 784], 28, 28).ok(), Some(3));
        assert_eq!(images_in_shape(&[784], 28, 28).ok(), Some(1));
        assert_eq!(images_in_shape(&[28, 28], 28, 28).ok(), Some(1));
        assert_eq!(images_in_shape(&[2, 28, 28], 28, 28).ok(), Some(2));
        assert_eq!(images_in_shape(&[2, 1, 28, 28], 28, 28).ok(), Some(2));
        assert!(images_in_shape(&[2, 3, 28, 28], 28, 28).is_err());
        assert!(images_in_shape(&[-1, 784], 28, 28).is_err());
        assert!(images_in_shape(&[], 28, 28).is_err());
    }

    #[test]
    fn keys() {
        let p = |v: Value| v.as_object().cloned();
        assert_eq!(sample_keys(None, 2).ok(), Some(None));
        assert_eq!(sample_keys(p(json!({})).as_ref(), 2).ok(), Some(None));
        assert_eq!(
            sample_keys(p(json!({"sample_keys": ["a", "b"]})).as_ref(), 2).ok(),
            Some(Some(vec!["a".to_owned(), "b".to_owned()]))
        );
        let short = sample_keys(p(json!({"sample_keys": ["a"]})).as_ref(), 2);
        assert!(matches!(short, Err(ServeError::BadRequest(m)) if m.contains("1 entries")));
        assert!(sample_keys(p(json!({"sample_keys": "a"})).as_ref(), 1).is_err());
        assert!(sample_keys(p(json!({"sample_keys": [1]})).as_ref(), 1).is_err());
    }

    #[test]
    fn data() {
        let v = json!([[0.0, 1.0], [0.5, 0.25]]);
        assert_eq!(
            decode_data(&v, "FP32", "x", 4).ok(),
            Some(vec![0.0, 1.0, 0.5, 0.25])
        );
        assert!(decode_data(&v, "FP32", "x", 3).is_err());
        assert!(decode_data(&v, "FP32", "x", 5).is_err());
        assert!(decode_data(&json!([1, "a"]), "FP32", "x", 2).is_err());
        assert!(decode_data(&json!([1, 300]), "UINT8", "x", 2).is_err());
        assert_eq!(
            decode_data(&json!([0, 255]), "UINT8", "x", 2).ok(),
            Some(vec![0.0, 1.0])
        );
        assert!(decode_data(&json!([0]), "BYTES", "x", 1).is_err());
    }
}
