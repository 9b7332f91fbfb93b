//! The Improver's label sources (`std.labels`).
//!
//! **`oracle(dataset)`** labels a sample by its key: the key (the `sample_keys` a client sent
//! with its request, recorded in the batch) is an index into `dataset`, whose label is the
//! answer. Samples without a key, with a key that is not an index, or an index out of range
//! are skipped and reported.
//!
//! **`human_feedback(dir)`** asks people. For each improvement it writes a request directory
//! `DIR/REQUEST/` (`REQUEST` is `AGENT-` and a hash of the action, stable across restarts):
//!
//! ```text
//! DIR/REQUEST/00000.pgm …        each sample as a PGM picture (binary P5, 8-bit grey)
//! DIR/REQUEST/00000.saliency.pgm  the served model's gradient saliency map of its prediction
//! DIR/REQUEST/00000.runner-up.pgm … and of its second choice (why it hesitated; std.explain)
//! DIR/REQUEST/manifest.json      {"request", "agent", "created", "samples": [{"id": 0,
//!                                 "image": "00000.pgm", "saliency", "runnerUpSaliency",
//!                                 "key", "prediction", "confidence", "runnerUp"}],
//!                                 "labels": "labels.json", "instructions"}
//! DIR/REQUEST/labels.json        written by people: {"0": 7, "1": 2, "2": null, …}
//! ```
//!
//! `labels.json` maps each sample's `id` (as a string) to its class (an integer 0–255, the
//! model's class: 0–9 for MNIST) or `null` for "cannot tell" (the sample is skipped). The
//! Improver polls for it (every `SFLOW_LABELS_POLL_MS`, default 2000 ms) and goes on when
//! every sample has an entry; a partial or malformed file is waited on (its problem is
//! written to `labels.problems.txt` beside it). Resumable: a restarted runtime finds the
//! request already written and the labels given so far, and nothing is asked twice; write
//! the file atomically (to a temporary name, then rename) so a half-written file is never
//! read.

use crate::engine::Shared;
use crate::executor::data::DataSource;
use crate::ml::batch::Batch;
use crate::ml::support;
use crate::value::RtValue;
use serde_json::{json, Value as Json};
use sflow_ml::Dataset;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where labels come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelSource {
    /// `oracle(dataset)`.
    Oracle {
        /// The dataset with the answers.
        data: DataSource,
    },
    /// `human_feedback(dir)`.
    Human {
        /// The directory requests are written to (relative: the program's directory).
        dir: PathBuf,
    },
}

impl LabelSource {
    /// The source a config value names (`oracle(mnist(split = "test"))`).
    pub fn from_config(v: &RtValue, program_dir: &Path) -> Result<LabelSource, String> {
        let (function, args) = support::call_of(v)
            .ok_or_else(|| format!("`labels` is not a label source: {}", v.to_json()))?;
        match function.as_str() {
            "std.labels.oracle" => {
                let data = args
                    .get("data")
                    .ok_or_else(|| "`oracle` needs its `data`".to_string())?;
                Ok(LabelSource::Oracle {
                    data: DataSource::from_record(data)?,
                })
            }
            "std.labels.human_feedback" => match args.get("dir") {
                Some(RtValue::String { value }) => {
                    let p = Path::new(value);
                    Ok(LabelSource::Human {
                        dir: if p.is_absolute() {
                            p.to_path_buf()
                        } else {
                            program_dir.join(p)
                        },
                    })
                }
                _ => Err("`human_feedback` needs its `dir`".into()),
            },
            other => Err(format!(
                "unknown label source `{other}` (std.labels has oracle and human_feedback)"
            )),
        }
    }
}

/// Samples with their labels.
#[derive(Clone, Debug)]
pub struct Labelled {
    /// The labelled images (the batch's pixels, the source's labels).
    pub data: Dataset,
    /// Samples skipped, with the reason, in words (`sample 3: no key`).
    pub skipped: Vec<String>,
    /// The oracle indices the batch's keys named (kept out of the clean evaluation slice).
    pub used: BTreeSet<usize>,
}

/// Labels `batch` from `oracle` (blocking).
pub fn label_by_oracle(batch: &Batch, oracle: &Dataset) -> Result<Labelled, String> {
    let answers = oracle
        .require_labels("the oracle's dataset")
        .map_err(|e| e.to_string())?;
    let mut keep = Vec::new();
    let mut labels = Vec::new();
    let mut skipped = Vec::new();
    let mut used = BTreeSet::new();
    for (i, s) in batch.samples.iter().enumerate() {
        let Some(key) = &s.key else {
            skipped.push(format!("sample {i}: no key"));
            continue;
        };
        match key.trim().parse::<usize>() {
            Ok(ix) if ix < answers.len() => {
                used.insert(ix);
                keep.push(i);
                labels.push(answers[ix]);
            }
            Ok(ix) => skipped.push(format!(
                "sample {i}: key {ix} is beyond the oracle's {} samples",
                answers.len()
            )),
            Err(_) => skipped.push(format!("sample {i}: key {key:?} is not an index")),
        }
    }
    let data = batch
        .images
        .subset(&keep)
        .and_then(|d| d.with_labels(labels))
        .map_err(|e| e.to_string())?;
    Ok(Labelled {
        data,
        skipped,
        used,
    })
}

/// The request directory of an action for `agent`.
pub fn request_dir(dir: &Path, agent: &str, action_key: &str) -> PathBuf {
    dir.join(format!("{agent}-{}", support::short_hash(action_key)))
}

/// Writes the request for `batch` in `req` unless it is there already (blocking), with the
/// saliency maps of `model` (a TorchScript classifier) beside each picture when given.
pub fn write_request(
    batch: &Batch,
    req: &Path,
    agent: &str,
    now_ms: i64,
    model: Option<&Path>,
) -> Result<(), String> {
    if req.join("manifest.json").is_file() {
        return Ok(());
    }
    let parent = req
        .parent()
        .ok_or_else(|| format!("{} has no parent", req.display()))?;
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let name = req
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)
            .map_err(|e| format!("cannot clear {}: {e}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    // The maps land in the request itself (`sflow_ml::explain::write_maps`'s file names are
    // the request's: `NNNNN.pgm` is the same picture).
    let explained = model.is_some_and(|m| {
        crate::ml::explain::write_maps_or_log(batch, m, &tmp, "the label request")
    });
    let index: Option<Json> = explained
        .then(|| std::fs::read(tmp.join("saliency.json")).ok())
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let mut samples = Vec::new();
    for (i, s) in batch.samples.iter().enumerate() {
        let (image, saliency, runner_up) = sflow_ml::explain::map_names(i);
        batch
            .images
            .write_pgm(i, &tmp.join(&image))
            .map_err(|e| e.to_string())?;
        let runner = index
            .as_ref()
            .and_then(|x| x["samples"].get(i))
            .map(|e| json!({"class": e["runner_up"], "probability": e["runner_up_probability"]}));
        samples.push(json!({
            "id": i, "image": image, "key": s.key, "prediction": s.prediction, "confidence": s.confidence,
            "saliency": explained.then_some(saliency),
            "runnerUpSaliency": explained.then_some(runner_up),
            "runnerUp": runner,
        }));
    }
    let manifest = json!({
        "request": name,
        "agent": agent,
        "created": crate::clock::format_utc(now_ms),
        "samples": samples,
        "labels": "labels.json",
        "instructions": "Look at each NNNNN.pgm (with NNNNN.saliency.pgm: where the model looked for its prediction, and NNNNN.runner-up.pgm: for its second choice, when present). Write labels.json in this directory: a JSON object mapping each sample's id (as a string) to its class (an integer, 0-9 for digits) or null if you cannot tell. Write it to a temporary name and rename it. The Improver goes on when every sample has an entry.",
    });
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
    std::fs::write(tmp.join("manifest.json"), text)
        .map_err(|e| format!("cannot write the manifest: {e}"))?;
    std::fs::rename(&tmp, req).map_err(|e| format!("cannot write {}: {e}", req.display()))
}

/// What `labels.json` says so far: `Ok(Some(labels))` when every sample has an entry
/// (`None` entries skipped), `Ok(None)` while it is missing or incomplete, `Err` for a file
/// that cannot be right (it is waited on too, with the problem recorded).
pub fn read_labels(req: &Path, n: usize) -> Result<Option<Vec<Option<u8>>>, String> {
    let path = req.join("labels.json");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let v: Json =
        serde_json::from_slice(&bytes).map_err(|e| format!("labels.json is not JSON: {e}"))?;
    let Json::Object(map) = v else {
        return Err("labels.json must be an object: {\"0\": 7, \"1\": null, …}".into());
    };
    let mut out = vec![None; n];
    let mut seen = 0usize;
    for (k, v) in &map {
        let i: usize = k.parse().ok().filter(|i| *i < n).ok_or_else(|| {
            format!(
                "labels.json: {k:?} is not a sample id (0–{})",
                n.saturating_sub(1)
            )
        })?;
        out[i] = match v {
            Json::Null => None,
            Json::Number(x) => Some(x.as_u64().and_then(|x| u8::try_from(x).ok()).ok_or_else(
                || format!("labels.json: sample {k}: {x} is not a class (an integer 0–255)"),
            )?),
            other => {
                return Err(format!(
                    "labels.json: sample {k}: {other} is not a class (an integer) nor null"
                ))
            }
        };
        seen += 1;
    }
    Ok((seen == n).then_some(out))
}

/// Asks people to label `batch` (see the module documentation) and waits for the answers;
/// `Err` if the engine shuts down first (the action is then performed again on the next
/// start, and finds the request and the labels given so far).
pub async fn label_by_people(
    shared: &Shared,
    batch: &Batch,
    dir: &Path,
    agent: &str,
    action_key: &str,
) -> Result<Labelled, String> {
    let req = request_dir(dir, agent, action_key);
    {
        let (b, r, a) = (batch.clone(), req.clone(), agent.to_string());
        let now = shared.clock().now_ms();
        let model = crate::ml::reference::checked_service(shared.plan())
            .and_then(|s| crate::ml::reference::served_model(shared, &s))
            .map(|m| PathBuf::from(m.path));
        if let Err(e) = &model {
            tracing::warn!(%e, "the label request gets no saliency maps");
        }
        let model = model.ok();
        support::blocking(move || write_request(&b, &r, &a, now, model.as_deref())).await?;
    }
    let poll = std::env::var("SFLOW_LABELS_POLL_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(2000)
        .max(10);
    let mut shutdown = shared.shutdown_receiver();
    let mut told = false;
    let labels = loop {
        match read_labels(&req, batch.len()) {
            Ok(Some(l)) => break l,
            Ok(None) => {}
            Err(problem) => {
                let _ = std::fs::write(req.join("labels.problems.txt"), format!("{problem}\n"));
            }
        }
        if !told {
            tracing::info!(agent, request = %req.display(), samples = batch.len(), "waiting for people to label the samples (write labels.json there)");
            told = true;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(poll)) => {}
            _ = shutdown.wait_for(|s| *s) => return Err("the runtime stopped while waiting for labels".into()),
        }
    };
    let _ = std::fs::remove_file(req.join("labels.problems.txt"));
    let mut keep = Vec::new();
    let mut ys = Vec::new();
    let mut skipped = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        match l {
            Some(y) => {
                keep.push(i);
                ys.push(*y);
            }
            None => skipped.push(format!("sample {i}: labelled null (cannot tell)")),
        }
    }
    let data = batch
        .images
        .subset(&keep)
        .and_then(|d| d.with_labels(ys))
        .map_err(|e| e.to_string())?;
    Ok(Labelled {
        data,
        skipped,
        used: BTreeSet::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::batch::Sample;

    fn batch(keys: &[Option<&str>]) -> Result<Batch, String> {
        let n = keys.len();
        let images = Dataset::from_u8(&vec![7u8; n * 4], 2, 2, None).map_err(|e| e.to_string())?;
        Ok(Batch {
            images,
            samples: keys
                .iter()
                .map(|k| Sample {
                    key: k.map(str::to_string),
                    ..Sample::default()
                })
                .collect(),
        })
    }

    #[test]
    fn the_oracle_labels_by_key_and_reports_what_it_cannot() -> Result<(), String> {
        let oracle =
            Dataset::from_u8(&[0u8; 12], 2, 2, Some(vec![4, 5, 6])).map_err(|e| e.to_string())?;
        let b = batch(&[Some("2"), None, Some("9"), Some("x"), Some("0")])?;
        let l = label_by_oracle(&b, &oracle)?;
        assert_eq!(l.data.labels(), Some(&[6u8, 4][..]));
        assert_eq!(l.skipped.len(), 3, "{:?}", l.skipped);
        assert_eq!(l.used, BTreeSet::from([0, 2]));
        Ok(())
    }

    #[test]
    fn a_request_is_written_once_and_read_when_complete() -> Result<(), String> {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let b = batch(&[Some("1"), None, None])?;
        let req = request_dir(tmp.path(), "improver", "policy:x#0");
        write_request(&b, &req, "improver", 0, None)?;
        assert!(req.join("00002.pgm").is_file());
        let manifest =
            std::fs::read_to_string(req.join("manifest.json")).map_err(|e| e.to_string())?;
        assert!(manifest.contains("\"key\": \"1\""), "{manifest}");
        // Written again (a restart): kept as it is.
        std::fs::write(req.join("labels.json"), r#"{"0": 3}"#).map_err(|e| e.to_string())?;
        write_request(&b, &req, "improver", 0, None)?;
        assert!(req.join("labels.json").is_file());
        assert_eq!(read_labels(&req, 3)?, None, "incomplete");
        std::fs::write(req.join("labels.json"), r#"{"0": 3, "1": null, "2": 9}"#)
            .map_err(|e| e.to_string())?;
        assert_eq!(read_labels(&req, 3)?, Some(vec![Some(3), None, Some(9)]));
        std::fs::write(req.join("labels.json"), r#"{"0": "three"}"#).map_err(|e| e.to_string())?;
        assert!(read_labels(&req, 3).is_err());
        std::fs::write(req.join("labels.json"), r#"{"7": 1}"#).map_err(|e| e.to_string())?;
        assert!(read_labels(&req, 3).is_err());
        Ok(())
    }
}
