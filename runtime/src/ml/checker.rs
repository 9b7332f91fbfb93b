//! `Checker.check(batch)`: runs the agent's `detector` (`autoencoder_ood(quantile = 0.99)`,
//! …) on a batch of served samples.
//!
//! - **Reference.** The detector is fitted on the training data of the model the checked
//!   service serves ([`super::reference`]): up to 12,000 of its images, shuffled (MNIST's
//!   files are ordered by writer group). `confidence` must not see the model's training
//!   images (its confidence on them is too high): for a `train_classifier` model it is fitted
//!   on the 10% of `data` the step held out (same seed), otherwise on the reference as is.
//! - **Fitted once per served model**: the fitted detector is kept in memory, keyed by the
//!   model file's digest and the detector's configuration, and fitted again only when the
//!   service serves another model (or the runtime restarts). Fitting and checking run on
//!   blocking threads, never on the async executor.
//! - **Effects** (recorded with the firing, [`Effect::Signals`]): `AGENT.drift` = the
//!   detector's score; when the batch drifted, its picked samples are appended to
//!   `AGENT.picked`, a new batch directory `STATE/ml/checker/AGENT/picked/H` (`H` names the
//!   action) holding the samples picked since the last improvement, with the served model's
//!   saliency maps of them in its `saliency/` ([`super::explain`]). A batch that did not
//!   drift adds nothing: a per-sample detector picks ~1% of clean samples by design, and
//!   those would otherwise pile up into a retraining on noise.
//! - **One at a time.** A checker's actions are serialized and each keeps the agent's lock
//!   until its effect is recorded, so two checks never append to the same `picked` value and
//!   an Improver's reset of `picked` ([`reset_picked`]) is never overwritten by a check.

use crate::engine::{Effect, Hold, Shared};
use crate::ml::batch::Batch;
use crate::ml::explain;
use crate::ml::reference;
use crate::ml::support::{self, blocking};
use crate::value::RtValue;
use sflow_ml::{Detector, DetectorSpec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The most reference images a detector is fitted on.
const REFERENCE_MAX: usize = 12_000;

/// A checker's state between actions (behind its lock).
#[derive(Default)]
pub struct CheckerState {
    /// The fitted detector and its key (model digest, detector configuration).
    fitted: Option<(String, Arc<dyn Detector>)>,
    /// The latest `picked` value this process handed to a record (newer than the board's
    /// while that record is being written).
    picked: Option<RtValue>,
}

/// The detector a Checker is configured with.
pub fn detector_spec(shared: &Shared, agent: &str) -> Result<DetectorSpec, String> {
    let v = support::config(shared, agent, "detector")?;
    let (function, args) = support::call_of(&v)
        .ok_or_else(|| format!("`detector` of `{agent}` is not a detector: {}", v.to_json()))?;
    let name = function.strip_prefix("std.detectors.").unwrap_or(&function);
    let mut numbers = Vec::new();
    for (k, v) in &args {
        let x = v
            .as_f64()
            .ok_or_else(|| format!("`{name}`: argument `{k}` is not a number"))?;
        numbers.push((k.clone(), x));
    }
    let refs: Vec<(&str, f64)> = numbers.iter().map(|(k, x)| (k.as_str(), *x)).collect();
    DetectorSpec::from_call(name, &refs).map_err(|e| e.to_string())
}

/// The directory of a checker's picked batches.
pub fn picked_dir(shared: &Shared, agent: &str) -> PathBuf {
    support::agent_dir(shared, "checker", agent).join("picked")
}

/// `Checker.check(batch)` (see the module documentation).
pub async fn check(
    shared: &Arc<Shared>,
    agent: &str,
    values: &BTreeMap<String, RtValue>,
    action_key: &str,
) -> Result<Effect, String> {
    let batch = values
        .get("batch")
        .map(|v| support::pin_argument(shared, action_key, "batch", v))
        .transpose()?;
    let batch_path = match batch.as_ref() {
        Some(RtValue::Batch { path: Some(p), .. }) => PathBuf::from(p),
        Some(RtValue::Batch { path: None, size }) => {
            return Err(format!(
            "the batch ({size} samples) has no directory: a Checker needs the samples themselves"
        ))
        }
        _ => return Err("the `batch` argument is not a batch".into()),
    };
    let spec = detector_spec(shared, agent)?;
    let service = reference::checked_service(shared.plan())?;
    let model = reference::served_model(shared, &service)?;
    let fit_key = format!(
        "{}:{}",
        model.sha256,
        serde_json::to_string(&spec).map_err(|e| e.to_string())?
    );
    let lock = support::agent_lock::<CheckerState>(shared, agent);
    let mut state = lock.lock_owned().await;

    let detector = match &state.fitted {
        Some((k, d)) if *k == fit_key => d.clone(),
        _ => {
            let data = reference::training_data(shared, &model)?;
            let (spec2, model_path, seed) = (spec.clone(), model.path.clone(), model.id as u64);
            let started = std::time::Instant::now();
            let d = blocking(move || fit(&spec2, &data, Path::new(&model_path), seed)).await?;
            tracing::info!(
                agent,
                detector = spec.name(),
                model = %format!("{} v{}", model.name, model.version),
                seconds = started.elapsed().as_secs_f64(),
                "fitted the drift detector on the served model's training data"
            );
            state.fitted = Some((fit_key, d.clone()));
            d
        }
    };

    let (report, batch) = {
        let p = batch_path.clone();
        let d = detector.clone();
        blocking(move || {
            let b = Batch::read(&p).map_err(|e| e.to_string())?;
            let r = d.check(&b.images).map_err(|e| e.to_string())?;
            Ok((r, b))
        })
        .await?
    };

    let key = format!("{agent}.picked");
    let current = state.picked.clone().or_else(|| shared.board_value(&key));
    let mut set = vec![(
        format!("{agent}.drift"),
        RtValue::Float {
            value: report.score.clamp(0.0, 1.0),
        },
    )];
    let picked_now = if report.drifted && !report.picked.is_empty() {
        let add = batch.subset(&report.picked).map_err(|e| e.to_string())?;
        let dir = picked_dir(shared, agent).join(support::short_hash(action_key));
        let base = current.clone();
        let combined_len = {
            let dir = dir.clone();
            let model_path = PathBuf::from(&model.path);
            blocking(move || {
                let combined = match base_batch(base.as_ref())? {
                    Some(prev) => concat(&prev, &add)?,
                    None => add,
                };
                support::write_batch(&combined, &dir)?;
                explain::write_maps_or_log(
                    &combined,
                    &model_path,
                    &dir.join(explain::DIR),
                    "the picked samples",
                );
                Ok(combined.len())
            })
            .await?
        };
        let v = RtValue::Batch {
            size: combined_len as i64,
            path: Some(dir.to_string_lossy().into_owned()),
        };
        set.push((key.clone(), v.clone()));
        Some(v)
    } else if current.is_none() {
        // The first check: `picked` gets a value (empty), so policies can read its size.
        let v = RtValue::Batch {
            size: 0,
            path: None,
        };
        set.push((key.clone(), v.clone()));
        Some(v)
    } else {
        None
    };
    let total = picked_now
        .as_ref()
        .or(current.as_ref())
        .map_or(0, |v| match v {
            RtValue::Batch { size, .. } => *size,
            _ => 0,
        });
    if picked_now.is_some() {
        state.picked = picked_now;
    }
    let result = format!(
        "{} on {} samples of {} (serving {} v{}): score {:.3}{}, {}; picked {} (now {total} since the last improvement)",
        report.detector,
        report.samples,
        batch_path.display(),
        model.name,
        model.version,
        report.score,
        report
            .p_value
            .map_or_else(String::new, |p| format!(", p = {p:.3e}")),
        if report.drifted { "drifted" } else { "no drift" },
        if report.drifted { report.picked.len() } else { 0 },
    );
    // A judgement of drift is an event too (`on checker.drift_detected`, the audit trail of
    // when drift was first seen); a clean batch is only in the firing's result.
    let events = if report.drifted {
        vec![(
            agent.to_string(),
            "drift_detected".to_string(),
            serde_json::json!({
                "detector": report.detector, "score": report.score, "pValue": report.p_value,
                "samples": report.samples, "picked": report.picked.len(), "pickedTotal": total,
                "batch": batch_path.display().to_string(), "model": model.name, "version": model.version,
            }),
        )]
    } else {
        Vec::new()
    };
    Ok(Effect::Signals {
        set,
        kv: Vec::new(),
        events,
        refresh_services: Vec::new(),
        result,
        hold: Some(Hold(Arc::new(state))),
    })
}

/// Fits the detector (blocking).
fn fit(
    spec: &DetectorSpec,
    data: &reference::TrainingData,
    model_path: &Path,
    seed: u64,
) -> Result<Arc<dyn Detector>, String> {
    let (reference, classifier) = match spec {
        DetectorSpec::Confidence { .. } => {
            let classifier = sflow_ml::Classifier::load(model_path).map_err(|e| e.to_string())?;
            let own =
                reference::load_images(&data.parts[..data.inputs.max(1).min(data.parts.len())])?;
            let reference = match data.heldout_seed {
                // The part of `data` the model never trained on.
                Some(s) => own.split(0.1, s).map_err(|e| e.to_string())?.1,
                None => own,
            };
            (reference, Some(Arc::new(classifier)))
        }
        _ => (reference::load_images(&data.parts)?, None),
    };
    let reference = reference.shuffled(seed).take(REFERENCE_MAX);
    let d = spec
        .fit(&reference, classifier, seed)
        .map_err(|e| format!("fitting {}: {e}", spec.name()))?;
    Ok(Arc::from(d))
}

/// The batch a `picked` value holds, if any.
fn base_batch(v: Option<&RtValue>) -> Result<Option<Batch>, String> {
    match v {
        Some(RtValue::Batch {
            path: Some(p),
            size,
        }) if *size > 0 => Batch::read(Path::new(p))
            .map(Some)
            .map_err(|e| e.to_string()),
        _ => Ok(None),
    }
}

/// `a` then `b`.
fn concat(a: &Batch, b: &Batch) -> Result<Batch, String> {
    Ok(Batch {
        images: a.images.concat(&b.images).map_err(|e| e.to_string())?,
        samples: a.samples.iter().chain(&b.samples).cloned().collect(),
    })
}

/// After an improvement used `consumed` (a `picked` value of checker `agent`): `picked`
/// keeps only the samples picked since (they were appended after the consumed ones). Returns
/// the new value and the lock, to be held until the Improver's effect is recorded.
pub async fn reset_picked(
    shared: &Arc<Shared>,
    agent: &str,
    consumed: i64,
    action_key: &str,
) -> Result<(RtValue, Hold), String> {
    let lock = support::agent_lock::<CheckerState>(shared, agent);
    let mut state = lock.lock_owned().await;
    let key = format!("{agent}.picked");
    let current = state.picked.clone().or_else(|| shared.board_value(&key));
    let size = match &current {
        Some(RtValue::Batch { size, .. }) => *size,
        _ => 0,
    };
    let n = usize::try_from(consumed.max(0)).unwrap_or(0);
    let value = if size as usize > n {
        let dir =
            picked_dir(shared, agent).join(format!("rest-{}", support::short_hash(action_key)));
        let base = current.clone();
        let len = {
            let dir = dir.clone();
            blocking(move || {
                let Some(b) = base_batch(base.as_ref())? else {
                    return Ok(0);
                };
                let rest: Vec<usize> = (n..b.len()).collect();
                let rest = b.subset(&rest).map_err(|e| e.to_string())?;
                support::write_batch(&rest, &dir)?;
                Ok(rest.len())
            })
            .await?
        };
        RtValue::Batch {
            size: len as i64,
            path: Some(dir.to_string_lossy().into_owned()),
        }
    } else {
        RtValue::Batch {
            size: 0,
            path: None,
        }
    };
    state.picked = Some(value.clone());
    Ok((value, Hold(Arc::new(state))))
}
