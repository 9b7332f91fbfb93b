//! Which model a service serves, and what it was trained on: the Checker's reference data
//! and the Improver's "served model".
//!
//! **The checked service.** A Checker has no `watch` of its own: it checks the service the
//! program's Trackers watch (all of them must watch the same one), or, without Trackers, the
//! program's only service. Anything else is an error that says so.
//!
//! **Reference data = the training data of the served model.** The served model is the
//! version the service's `production` alias points at. Its lineage names the run and step
//! that produced it; the reference is every `Dataset` input of that step as that run read it
//! (a data source materialized for the run, `RUN/.inputs/STEP/INPUT`, re-materialized if
//! missing; or the producing step's recorded output), plus the labelled samples an Improver
//! gave the run (`SFLOW_INPUT_LABELLED`), which the model trained on too. Labels are dropped:
//! detectors look at images.

use crate::engine::Shared;
use crate::eval::Params;
use crate::executor::data::{input_dir, DataSource};
use crate::store::{self, ModelRow};
use crate::value::RtValue;
use sflow_compiler::lower::plan::{InputSource, Plan, PlanType, StepRun};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The service a Checker checks (see the module documentation).
pub fn checked_service(plan: &Plan) -> Result<String, String> {
    let watched: BTreeSet<String> = plan
        .agents
        .iter()
        .filter(|a| a.kind == "Tracker")
        .filter_map(|a| match a.config.get("watch") {
            Some(sflow_compiler::lower::plan::Expr::Ref { name, .. }) => Some(name.clone()),
            _ => None,
        })
        .collect();
    match (watched.len(), plan.services.len()) {
        (1, _) => Ok(watched.into_iter().next().unwrap_or_default()),
        (0, 1) => Ok(plan.services[0].name.clone()),
        (0, 0) => Err("the program has no service: a Checker checks a served model".into()),
        (0, _) => Err(
            "the program has several services and no Tracker: add a Tracker watching the service the Checker checks".into(),
        ),
        _ => Err(format!(
            "the program's Trackers watch several services ({}): the Checker cannot tell which model to check",
            watched.into_iter().collect::<Vec<_>>().join(", ")
        )),
    }
}

/// The model version a service serves (its `production` alias).
pub fn served_model(shared: &Shared, service: &str) -> Result<ModelRow, String> {
    let (id, _) = shared
        .alias(service)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("`{service}` serves no model yet (no run has produced one)"))?;
    shared
        .store()
        .with(|c| store::model(c, id))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("model {id} is not in the registry"))
}

/// What a model was trained on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainingData {
    /// Dataset directories: the step's `Dataset` inputs, then the Improver's labelled samples.
    pub parts: Vec<PathBuf>,
    /// How many of `parts` are the step's own inputs.
    pub inputs: usize,
    /// For a `std.torch.train_classifier` step: its seed, which fixes the 10% of `data` it
    /// held out and never trained on (`sflow_ml::Dataset::split(0.1, seed)`).
    pub heldout_seed: Option<u64>,
}

/// The data `model` was trained on (see the module documentation).
pub fn training_data(shared: &Shared, model: &ModelRow) -> Result<TrainingData, String> {
    let mut parts = model.name.splitn(3, '.');
    let (Some(wf_name), Some(step_name)) = (parts.next(), parts.next()) else {
        return Err(format!(
            "model `{}` is not named WORKFLOW.STEP.OUTPUT",
            model.name
        ));
    };
    let plan = shared.plan();
    let step = plan
        .workflow(wf_name)
        .and_then(|w| w.steps.iter().find(|s| s.name == step_name))
        .ok_or_else(|| {
            format!(
                "model `{}`: the program has no step `{wf_name}.{step_name}` any more",
                model.name
            )
        })?;
    let run = shared
        .store()
        .with(|c| store::run(c, model.run_id))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("run {} is not recorded", model.run_id))?;
    let mut params = BTreeMap::new();
    for p in shared
        .store()
        .with(|c| store::params_of(c, run.id))
        .map_err(|e| e.to_string())?
    {
        if let Ok(v) = serde_json::from_value::<RtValue>(p.json) {
            params.insert(p.name, v);
        }
    }
    let scope = Params {
        params: &params,
        app: Some(&plan.app),
    };
    let heldout_seed = match &step.run {
        StepRun::Std { step: f, args } if f == "std.torch.train_classifier" => args
            .get("seed")
            .and_then(|e| crate::eval::eval(e, &scope).ok())
            .and_then(|v| match v {
                RtValue::Int { value } => u64::try_from(value).ok(),
                _ => None,
            })
            .or(Some(0)),
        _ => None,
    };
    let mut out = Vec::new();
    for input in step.inputs.iter().filter(|i| i.ty == PlanType::Dataset) {
        match &input.from {
            InputSource::Data { function, args } => {
                let dest = input_dir(std::path::Path::new(&run.dir), step_name, &input.name);
                let src = DataSource::from_exprs(function, args, &scope)?;
                out.push(src.materialize_local(shared.program_dir(), &dest)?);
            }
            InputSource::Step {
                step: producer,
                output,
            } => {
                let arts = shared
                    .store()
                    .with(|c| store::artifacts_of_run(c, run.id))
                    .map_err(|e| e.to_string())?;
                let a = arts
                    .iter()
                    .rev()
                    .find(|a| &a.step == producer && &a.name == output)
                    .ok_or_else(|| {
                        format!(
                            "run {}: step `{producer}` recorded no output `{output}`",
                            run.id
                        )
                    })?;
                out.push(PathBuf::from(&a.path));
            }
        }
    }
    let inputs = out.len();
    if let Some(labelled) = labelled_of_run(shared, run.id)? {
        out.push(labelled);
    }
    if out.is_empty() {
        return Err(format!(
            "step `{wf_name}.{step_name}`, which produced `{}`, has no `Dataset` input: the Checker has no reference data",
            model.name
        ));
    }
    Ok(TrainingData {
        parts: out,
        inputs,
        heldout_seed,
    })
}

/// The labelled samples an Improver gave run `run` (`SFLOW_INPUT_LABELLED`), if any.
pub fn labelled_of_run(shared: &Shared, run: i64) -> Result<Option<PathBuf>, String> {
    let env = shared
        .store()
        .with(|c| store::kv_get(c, &Shared::run_env_key(run)))
        .map_err(|e| e.to_string())?;
    Ok(env
        .as_ref()
        .and_then(|e| e.get("SFLOW_INPUT_LABELLED"))
        .and_then(|v| v.as_str())
        .map(PathBuf::from))
}

/// Loads dataset directories as one unlabelled dataset (blocking: call from a blocking task).
pub fn load_images(parts: &[PathBuf]) -> Result<sflow_ml::Dataset, String> {
    let mut all: Option<sflow_ml::Dataset> = None;
    for p in parts {
        let d = sflow_ml::data::files(p)
            .map_err(|e| e.to_string())?
            .without_labels();
        all = Some(match all {
            None => d,
            Some(a) => a.concat(&d).map_err(|e| e.to_string())?,
        });
    }
    all.ok_or_else(|| "no reference data".to_string())
}
