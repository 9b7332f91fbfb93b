//! What the ML agents share: evaluating an agent's configs, libtorch's thread count, short
//! names for an action's files, per-agent locks, and writing batch directories atomically.

use crate::engine::Shared;
use crate::eval;
use crate::ml::batch::Batch;
use crate::value::RtValue;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Sets libtorch's thread count once per process: `SFLOW_TORCH_THREADS`, default 1 (libgomp's
/// spinning threads make 2 threads many times slower on a busy machine, docs/ml.md §1).
pub fn init_torch_threads() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let n = std::env::var("SFLOW_TORCH_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(1);
        sflow_ml::set_torch_threads(n.max(1));
    });
}

/// A short, stable name for an action (its idempotency key): the first 16 hex digits of its
/// SHA-256. Files an action writes are named by it, so performing the action again after a
/// crash rewrites the same files instead of adding others.
pub fn short_hash(key: &str) -> String {
    crate::executor::digest::sha256_hex(key.as_bytes())
        .chars()
        .take(16)
        .collect()
}

/// A seed derived from an action key (holdout splits, clean slices).
pub fn seed_of(key: &str) -> u64 {
    u64::from_str_radix(&short_hash(key), 16).unwrap_or(0)
}

/// The value of config `name` of `agent` (a call such as `autoencoder_ood(quantile = 0.99)`
/// becomes a record with its `function` and arguments).
pub fn config(shared: &Shared, agent: &str, name: &str) -> Result<RtValue, String> {
    let a = shared
        .plan()
        .agent(agent)
        .ok_or_else(|| format!("no agent `{agent}`"))?;
    let e = a
        .config
        .get(name)
        .ok_or_else(|| format!("agent `{agent}` has no config `{name}`"))?;
    eval::eval(e, &shared.scope()).map_err(|m| format!("config `{name}` of `{agent}`: {m}"))
}

/// The function and arguments of a call value (`std.detectors.mmd`, {p_value: 0.05, …}).
pub fn call_of(v: &RtValue) -> Option<(String, std::collections::BTreeMap<String, RtValue>)> {
    match v {
        RtValue::Record { fields } => {
            let f = match fields.get("function") {
                Some(RtValue::String { value }) => value.clone(),
                _ => return None,
            };
            let mut args = fields.clone();
            args.remove("function");
            Some((f, args))
        }
        _ => None,
    }
}

/// The directory the ML agents keep their files in: `STATE/ml/KIND/AGENT`.
pub fn agent_dir(shared: &Shared, kind: &str, agent: &str) -> PathBuf {
    shared.state_dir().join("ml").join(kind).join(agent)
}

/// One async lock per (state directory, agent): an agent's actions run one at a time, and
/// each keeps its lock until its effect is recorded (see `Effect::Signals::hold`).
pub fn agent_lock<T: Default + Send + 'static>(
    shared: &Shared,
    agent: &str,
) -> Arc<tokio::sync::Mutex<T>> {
    type Locks = HashMap<(PathBuf, String, std::any::TypeId), Arc<dyn std::any::Any + Send + Sync>>;
    static LOCKS: OnceLock<Mutex<Locks>> = OnceLock::new();
    let key = (
        shared.state_dir().to_path_buf(),
        agent.to_string(),
        std::any::TypeId::of::<T>(),
    );
    let mut map = LOCKS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let entry = map
        .entry(key)
        .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(T::default())));
    match entry.clone().downcast::<tokio::sync::Mutex<T>>() {
        Ok(m) => m,
        // Unreachable (the key holds the type), but never panic: a fresh lock.
        Err(_) => Arc::new(tokio::sync::Mutex::new(T::default())),
    }
}

/// Writes `batch` to `dir` atomically (a temporary directory renamed into place), replacing
/// what an earlier attempt of the same action left there.
pub fn write_batch(batch: &Batch, dir: &Path) -> Result<(), String> {
    write_atomically(dir, |tmp| batch.write(tmp).map_err(|e| e.to_string()))
}

/// Writes a dataset directory atomically.
pub fn write_dataset(data: &sflow_ml::Dataset, dir: &Path) -> Result<(), String> {
    write_atomically(dir, |tmp| data.save_dir(tmp).map_err(|e| e.to_string()))
}

fn write_atomically(dir: &Path, f: impl FnOnce(&Path) -> Result<(), String>) -> Result<(), String> {
    let parent = dir
        .parent()
        .ok_or_else(|| format!("{} has no parent", dir.display()))?;
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)
            .map_err(|e| format!("cannot clear {}: {e}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    f(&tmp)?;
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| format!("cannot replace {}: {e}", dir.display()))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| format!("cannot write {}: {e}", dir.display()))
}

/// Runs blocking work (libtorch, files) off the async executor.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(move || {
        init_torch_threads();
        f()
    })
    .await
    .map_err(|e| format!("a background task failed: {e}"))?
}

/// The value an action's argument had when the action was first performed. Arguments are
/// evaluated against live signals each time a firing is performed, so an action performed
/// again after a crash would otherwise see a newer `checker.picked` than the one it began
/// with (and a human-feedback request written for other samples). The first value is kept
/// in the store (`kv action:KEY:NAME`); it is a memo of the input, not an effect.
pub fn pin_argument(
    shared: &Shared,
    action_key: &str,
    name: &str,
    value: &RtValue,
) -> Result<RtValue, String> {
    let key = format!("action:{action_key}:{name}");
    shared
        .store()
        .tx(|c| {
            if let Some(j) = crate::store::kv_get(c, &key)? {
                if let Ok(v) = serde_json::from_value::<RtValue>(j) {
                    return Ok(v);
                }
            }
            crate::store::kv_set(c, &key, &serde_json::to_value(value)?)?;
            Ok(value.clone())
        })
        .map_err(|e| e.to_string())
}
