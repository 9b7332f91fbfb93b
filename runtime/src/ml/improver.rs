//! `Improver.improve(data)`: labels the picked samples, keeps a share aside, retrains, and
//! evaluates the candidate against the served model on the same held-out data.
//!
//! 1. **Label** `data` with the agent's `labels` ([`super::labels`]): `oracle(dataset)` by
//!    key, `human_feedback(dir)` by asking people (the action waits, resumably).
//! 2. **Hold out** `holdout` (default 20%) of the labelled samples, drawn with a seed fixed by
//!    the action. Labelled data **accumulates** across improvements under
//!    `STATE/ml/improver/AGENT/H/` (`H` names the action): `train/` is every labelled
//!    training sample so far, `holdout/` every held-out one (none was ever trained on). The
//!    pointer to the latest pair is engine state (`kv improver:AGENT:labelled`) written with
//!    the action's record, so a crash never counts an improvement twice.
//! 3. **Retrain**: a run of the `retrain` workflow whose steps get `SFLOW_INPUT_LABELLED` =
//!    `train/` (recorded with the run, so a resumed run gets it too; the run is keyed by the
//!    action, so performing the action again after a crash waits for the same run).
//! 4. **Evaluate** the candidate — the model of the run's last step (in source order) with a
//!    `Model` output — and the model each service of that workflow serves, on the same data:
//!    the held-out drifted samples and a clean slice of 1,000 samples (for `oracle`: of its
//!    dataset, not among the batch's keys; for `human_feedback`: of the served model's
//!    training data, which both models trained on). `accuracy` is the mean of the accuracy on
//!    the drifted part and on the clean part (drift and clean data weigh the same whatever
//!    their sizes; the clean part alone when nothing is held out).
//! 5. **Record** (with the firing, [`Effect::Signals`]): `AGENT.candidate` = the new model
//!    version with `accuracy` = that evaluation; the evaluation of the served model(s)
//!    (`kv evaluation:SERVICE`, which `SERVICE.model` reads, so `improver.candidate.accuracy >
//!    predictor.model.accuracy` compares figures from the same data); the event
//!    `AGENT.evaluated` (or `AGENT.retrain_failed`) with the figures; and the checker's
//!    `picked` without the samples just used. The audit log's result says why the candidate
//!    is or is not better.

use crate::engine::{Effect, Hold, Shared};
use crate::ml::batch::Batch;
use crate::ml::labels::{self, LabelSource, Labelled};
use crate::ml::support::{self, blocking};
use crate::ml::{checker, reference};
use crate::store::{self, ModelRow};
use crate::value::RtValue;
use serde_json::{json, Value as Json};
use sflow_compiler::lower::plan::PlanType;
use sflow_ml::Dataset;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Clean samples in the evaluation slice.
const CLEAN_SLICE: usize = 1_000;

/// An Improver's lock (its actions run one at a time).
#[derive(Default)]
pub struct ImproverState;

/// `kv` key of an Improver's accumulated labelled data.
pub(crate) fn labelled_key(agent: &str) -> String {
    format!("improver:{agent}:labelled")
}

/// One model's figures on the held-out data.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The balanced accuracy (mean of `drifted` and `clean`, or `clean` alone).
    pub accuracy: f64,
    /// Accuracy on the held-out labelled (drifted) samples.
    pub drifted: Option<f64>,
    /// Accuracy on the clean slice.
    pub clean: Option<f64>,
}

impl Evaluation {
    fn json(&self) -> Json {
        json!({ "accuracy": self.accuracy, "drifted": self.drifted, "clean": self.clean })
    }
    fn describe(&self) -> String {
        let part = |x: Option<f64>| x.map_or_else(|| "-".into(), |x| format!("{x:.3}"));
        format!(
            "{:.3} (drifted {}, clean {})",
            self.accuracy,
            part(self.drifted),
            part(self.clean)
        )
    }
}

/// Evaluates a model file on the drifted and clean parts (blocking).
pub fn evaluate(model: &Path, drifted: &Dataset, clean: &Dataset) -> Result<Evaluation, String> {
    let acc = |d: &Dataset| -> Result<Option<f64>, String> {
        if d.is_empty() {
            return Ok(None);
        }
        sflow_ml::evaluate_file(model, d)
            .map(|r| Some(r.accuracy))
            .map_err(|e| format!("evaluating {}: {e}", model.display()))
    };
    let (d, c) = (acc(drifted)?, acc(clean)?);
    let accuracy = match (d, c) {
        (Some(d), Some(c)) => (d + c) / 2.0,
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => return Err("nothing to evaluate on".into()),
    };
    Ok(Evaluation {
        accuracy,
        drifted: d,
        clean: c,
    })
}

/// `Improver.improve(data)` (see the module documentation).
pub async fn improve(
    shared: &Arc<Shared>,
    agent: &str,
    values: &BTreeMap<String, RtValue>,
    action_key: &str,
) -> Result<Effect, String> {
    let data = values
        .get("data")
        .map(|v| support::pin_argument(shared, action_key, "data", v))
        .transpose()?;
    let (batch_path, batch_size) = match data.as_ref() {
        Some(RtValue::Batch {
            path: Some(p),
            size,
        }) => (PathBuf::from(p), *size),
        Some(RtValue::Batch { path: None, .. }) => {
            return Err("the batch is empty: nothing to label".into())
        }
        _ => return Err("the `data` argument is not a batch".into()),
    };
    let retrain = match support::config(shared, agent, "retrain")? {
        RtValue::Ref { name, .. } => name,
        other => return Err(format!("`retrain` is not a workflow: {}", other.to_json())),
    };
    let source = LabelSource::from_config(
        &support::config(shared, agent, "labels")?,
        shared.program_dir(),
    )?;
    let holdout = support::config(shared, agent, "holdout")?
        .as_f64()
        .unwrap_or(0.2)
        .clamp(0.0, 0.95);
    let lock = support::agent_lock::<ImproverState>(shared, agent);
    let own = lock.lock_owned().await;
    let h = support::short_hash(action_key);
    let seed = support::seed_of(action_key);
    let work = support::agent_dir(shared, "improver", agent).join(&h);

    // 1. Label.
    let batch = {
        let p = batch_path.clone();
        blocking(move || Batch::read(&p).map_err(|e| e.to_string())).await?
    };
    let (labelled, oracle_dir) = match &source {
        LabelSource::Oracle { data } => {
            let dest = shared
                .state_dir()
                .join("ml/data")
                .join(support::short_hash(&format!("{data:?}")));
            let dir = data.materialize_local(shared.program_dir(), &dest)?;
            let (b, d) = (batch.clone(), dir.clone());
            let l = blocking(move || {
                let oracle =
                    sflow_ml::data::files(&d).map_err(|e| format!("the oracle's data: {e}"))?;
                labels::label_by_oracle(&b, &oracle)
            })
            .await?;
            (l, Some(dir))
        }
        LabelSource::Human { dir } => (
            labels::label_by_people(shared, &batch, dir, agent, action_key).await?,
            None,
        ),
    };
    let skipped_note = if labelled.skipped.is_empty() {
        String::new()
    } else {
        format!(
            " ({} skipped: {}{})",
            labelled.skipped.len(),
            labelled
                .skipped
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
            if labelled.skipped.len() > 3 {
                "; …"
            } else {
                ""
            }
        )
    };
    let checker_reset = consumed_checker(shared, &batch_path);
    if labelled.data.is_empty() {
        // Nothing can be learnt from these samples: say so, and let the checker start over.
        let mut set = Vec::new();
        let mut holds = vec![Hold(Arc::new(own))];
        if let Some(c) = &checker_reset {
            let (v, hold) = checker::reset_picked(shared, c, batch_size, action_key).await?;
            set.push((format!("{c}.picked"), v));
            holds.push(hold);
        }
        return Ok(Effect::Signals {
            set,
            kv: Vec::new(),
            events: vec![(
                agent.to_string(),
                "labelling_failed".into(),
                json!({ "samples": batch.len(), "skipped": labelled.skipped }),
            )],
            refresh_services: Vec::new(),
            result: format!(
                "none of the {} samples could be labelled{skipped_note}: no retraining",
                batch.len()
            ),
            hold: Some(Hold(Arc::new(holds))),
        });
    }

    // 2. Hold out, accumulate.
    let previous = shared
        .store()
        .with(|c| store::kv_get(c, &labelled_key(agent)))
        .map_err(|e| e.to_string())?;
    let prev_dir = |k: &str| {
        previous
            .as_ref()
            .and_then(|p| p.get(k))
            .and_then(Json::as_str)
            .map(PathBuf::from)
    };
    let (prev_train, prev_hold) = (prev_dir("train"), prev_dir("holdout"));
    let (train_dir, hold_dir) = (work.join("train"), work.join("holdout"));
    let (n_train, n_hold, n_train_all, n_hold_all) = {
        let (data, td, hd) = (labelled.data.clone(), train_dir.clone(), hold_dir.clone());
        blocking(move || accumulate(&data, holdout, seed, prev_train, prev_hold, &td, &hd)).await?
    };

    // 3. Retrain.
    let env = BTreeMap::from([(
        "SFLOW_INPUT_LABELLED".to_string(),
        train_dir.to_string_lossy().into_owned(),
    )]);
    let run_id = shared
        .start_action_run(
            &retrain,
            &format!("agent:{agent}.improve"),
            action_key,
            &env,
        )
        .map_err(|e| format!("cannot start `{retrain}`: {e}"))?;
    let row = shared
        .wait_run(run_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!("the runtime stopped while run {run_id} of `{retrain}` was running")
        })?;

    let labelled_kv = (
        labelled_key(agent),
        json!({ "train": train_dir, "holdout": hold_dir, "trainSize": n_train_all, "holdoutSize": n_hold_all }),
    );
    let label_note = format!(
        "labelled {} of {} samples{skipped_note}; {n_train} for training (now {n_train_all}), {n_hold} held out (now {n_hold_all})",
        labelled.data.len(),
        batch.len()
    );
    let mut set = Vec::new();
    let mut kv = vec![labelled_kv];
    let mut events = Vec::new();
    let mut refresh = Vec::new();
    let result;
    if row.status != "succeeded" {
        result = format!(
            "{label_note}; retrain run {run_id} of `{retrain}` {}: {}; no candidate",
            row.status,
            row.error.clone().unwrap_or_default()
        );
        events.push((
            agent.to_string(),
            "retrain_failed".to_string(),
            json!({ "run": run_id, "error": row.error }),
        ));
    } else {
        // 4. Evaluate.
        let candidate = candidate_of(shared, &retrain, run_id)?;
        let services: Vec<String> = shared
            .plan()
            .services
            .iter()
            .filter(|s| s.model.workflow == retrain)
            .map(|s| s.name.clone())
            .collect();
        let mut served: Vec<(String, ModelRow)> = Vec::new();
        for s in &services {
            if let Ok(m) = reference::served_model(shared, s) {
                served.push((s.clone(), m));
            }
        }
        let clean = clean_slice(
            shared,
            oracle_dir.as_deref(),
            &labelled,
            served.first().map(|(_, m)| m),
            seed,
        )
        .await?;
        let (cand_path, hd) = (PathBuf::from(&candidate.path), hold_dir.clone());
        let served_paths: Vec<PathBuf> =
            served.iter().map(|(_, m)| PathBuf::from(&m.path)).collect();
        let (cand_eval, served_evals, n_drift, n_clean) = blocking(move || {
            let drifted = match sflow_ml::data::files(&hd) {
                Ok(d) => d,
                Err(_) => Dataset::empty(clean.rows(), clean.cols(), true),
            };
            let c = evaluate(&cand_path, &drifted, &clean)?;
            let mut s = Vec::new();
            for p in &served_paths {
                s.push(evaluate(p, &drifted, &clean)?);
            }
            Ok((c, s, drifted.len(), clean.len()))
        })
        .await?;
        let mut metrics: BTreeMap<String, RtValue> = match crate::engine::model_value(&candidate) {
            RtValue::Model { metrics, .. } => metrics,
            _ => BTreeMap::new(),
        };
        metrics.insert(
            "accuracy".into(),
            RtValue::Float {
                value: cand_eval.accuracy,
            },
        );
        set.push((
            format!("{agent}.candidate"),
            RtValue::Model {
                id: candidate.id,
                name: candidate.name.clone(),
                version: candidate.version,
                path: candidate.path.clone(),
                metrics,
            },
        ));
        let mut verdicts = Vec::new();
        let mut served_json = Vec::new();
        for ((svc, m), e) in served.iter().zip(&served_evals) {
            kv.push((
                crate::engine::evaluation_key(svc),
                json!({
                    "by": agent, "action": action_key, "heldOut": {"drifted": n_drift, "clean": n_clean},
                    "models": { candidate.id.to_string(): {"accuracy": cand_eval.accuracy}, m.id.to_string(): {"accuracy": e.accuracy} },
                    "details": { candidate.id.to_string(): cand_eval.json(), m.id.to_string(): e.json() },
                }),
            ));
            refresh.push(svc.clone());
            let better = cand_eval.accuracy > e.accuracy;
            verdicts.push(format!(
                "{svc} serves {} v{}: {} → the candidate is {}",
                m.name,
                m.version,
                e.describe(),
                if better { "better" } else { "not better" }
            ));
            served_json.push(json!({ "service": svc, "model": m.name, "version": m.version, "modelId": m.id, "evaluation": e.json(), "candidateBetter": better }));
        }
        events.push((
            agent.to_string(),
            "evaluated".to_string(),
            json!({
                "run": run_id,
                "candidate": { "model": candidate.name, "version": candidate.version, "modelId": candidate.id, "evaluation": cand_eval.json() },
                "served": served_json,
                "heldOut": { "drifted": n_drift, "clean": n_clean },
                "labelled": { "now": labelled.data.len(), "train": n_train_all, "heldOut": n_hold_all },
            }),
        ));
        result = format!(
            "{label_note}; retrain run {run_id} gave {} v{}; on {n_drift} held-out drifted + {n_clean} clean samples: candidate {}{}{}",
            candidate.name,
            candidate.version,
            cand_eval.describe(),
            if verdicts.is_empty() { "; no service serves a model of this workflow yet" } else { "; " },
            verdicts.join("; ")
        );
    }

    // 5. The checker's picked samples were used.
    let mut holds = vec![Hold(Arc::new(own))];
    if let Some(c) = &checker_reset {
        let (v, hold) = checker::reset_picked(shared, c, batch_size, action_key).await?;
        set.push((format!("{c}.picked"), v));
        holds.push(hold);
    }
    Ok(Effect::Signals {
        set,
        kv,
        events,
        refresh_services: refresh,
        result,
        hold: Some(Hold(Arc::new(holds))),
    })
}

/// Splits the labelled samples and writes the accumulated sets (blocking). Directories
/// already written by an earlier attempt of the action are kept (a resumed run reads them).
fn accumulate(
    data: &Dataset,
    holdout: f64,
    seed: u64,
    prev_train: Option<PathBuf>,
    prev_hold: Option<PathBuf>,
    train_dir: &Path,
    hold_dir: &Path,
) -> Result<(usize, usize, usize, usize), String> {
    let (train, hold) = data.split(holdout, seed).map_err(|e| e.to_string())?;
    let join = |prev: Option<PathBuf>, new: &Dataset| -> Result<Dataset, String> {
        match prev.filter(|p| p.is_dir()) {
            Some(p) => {
                let old = sflow_ml::data::files(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                old.concat(new).map_err(|e| e.to_string())
            }
            None => Ok(new.clone()),
        }
    };
    let mut sizes = [0usize; 2];
    for (i, (prev, new, dir)) in [
        (prev_train, &train, train_dir),
        (prev_hold, &hold, hold_dir),
    ]
    .into_iter()
    .enumerate()
    {
        if dir.is_dir() {
            sizes[i] = sflow_ml::data::files(dir).map(|d| d.len()).unwrap_or(0);
            continue;
        }
        let all = join(prev, new)?;
        sizes[i] = all.len();
        if all.is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        } else {
            support::write_dataset(&all, dir)?;
        }
    }
    Ok((train.len(), hold.len(), sizes[0], sizes[1]))
}

/// The checker whose picked samples `path` is (so the Improver resets them).
fn consumed_checker(shared: &Shared, path: &Path) -> Option<String> {
    shared
        .plan()
        .agents
        .iter()
        .filter(|a| a.kind == "Checker")
        .find(|a| path.starts_with(checker::picked_dir(shared, &a.name)))
        .map(|a| a.name.clone())
}

/// The model run `run` of `workflow` registered for the workflow's last step (in source
/// order) with a `Model` output.
pub(crate) fn candidate_of(shared: &Shared, workflow: &str, run: i64) -> Result<ModelRow, String> {
    let wf = shared
        .plan()
        .workflow(workflow)
        .ok_or_else(|| format!("no workflow `{workflow}`"))?;
    let name = wf
        .steps
        .iter()
        .rev()
        .find_map(|s| {
            s.outputs
                .iter()
                .find(|o| o.ty == PlanType::Model)
                .map(|o| format!("{workflow}.{}.{}", s.name, o.name))
        })
        .ok_or_else(|| format!("workflow `{workflow}` has no step with a Model output"))?;
    shared
        .store()
        .with(store::models)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|m| m.run_id == run && m.name == name)
        .ok_or_else(|| format!("run {run} registered no `{name}`"))
}

/// The clean evaluation slice (see the module documentation).
async fn clean_slice(
    shared: &Shared,
    oracle_dir: Option<&Path>,
    labelled: &Labelled,
    served: Option<&ModelRow>,
    seed: u64,
) -> Result<Dataset, String> {
    if let Some(dir) = oracle_dir {
        let (dir, used) = (dir.to_path_buf(), labelled.used.clone());
        return blocking(move || {
            let all = sflow_ml::data::files(&dir).map_err(|e| e.to_string())?;
            let free: Vec<usize> = (0..all.len()).filter(|i| !used.contains(i)).collect();
            let pick = sflow_ml::rng::Rng::new(seed).permutation(free.len());
            let chosen: Vec<usize> = pick.iter().take(CLEAN_SLICE).map(|&i| free[i]).collect();
            all.subset(&chosen).map_err(|e| e.to_string())
        })
        .await;
    }
    let Some(m) = served else {
        return Ok(Dataset::empty(
            labelled.data.rows(),
            labelled.data.cols(),
            true,
        ));
    };
    let data = reference::training_data(shared, m)?;
    let parts = data.parts[..data.inputs].to_vec();
    blocking(move || {
        let mut all: Option<Dataset> = None;
        for p in &parts {
            let d = sflow_ml::data::files(p).map_err(|e| e.to_string())?;
            all = Some(match all {
                None => d,
                Some(a) => a.concat(&d).map_err(|e| e.to_string())?,
            });
        }
        let all = all.ok_or_else(|| "no clean data".to_string())?;
        Ok(all.shuffled(seed).take(CLEAN_SLICE))
    })
    .await
}
