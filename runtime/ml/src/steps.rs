//! The std steps' bodies as the step contract sees them (docs/language.md §8–9): what
//! `sflow step std.torch.train_classifier …` and `sflow step std.torch.evaluate …` do once
//! the runtime has resolved their parameters, inputs and outputs to values and paths.
//!
//! Metrics go to `SFLOW_METRICS` as JSON lines: one object per epoch (`loss`,
//! `train_accuracy`) and a last one with the declared metric (`accuracy`), so the runtime
//! records the series and takes the last value as the step's.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use crate::data::{files, Dataset};
use crate::error::{MlError, Result};
use crate::explain::{self, ImportanceReport, MapsIndex, TabularModel};
use crate::model::Classifier;
use crate::train::{evaluate_file, train_classifier_with, EvalReport, TrainConfig, TrainReport};

fn append_line(path: &Path, value: &serde_json::Value) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| MlError::io(path, e))?;
    writeln!(f, "{value}").map_err(|e| MlError::io(path, e))
}

/// `std.torch.train_classifier`: trains on `data` plus, when the Improver retrains, the
/// labelled samples in the dataset directory `labelled` (`SFLOW_INPUT_LABELLED`); writes the
/// TorchScript model to `model_out` (`SFLOW_OUTPUT_MODEL`) and the metrics to `metrics`
/// (`SFLOW_METRICS`).
pub fn train_classifier_step(
    cfg: &TrainConfig,
    data: &Dataset,
    labelled: Option<&Path>,
    model_out: &Path,
    metrics: Option<&Path>,
) -> Result<TrainReport> {
    let extra = match labelled {
        Some(dir) => Some(files(dir)?),
        None => None,
    };
    let mut write_err = None;
    let report = train_classifier_with(cfg, data, extra.as_ref(), model_out, &mut |e| {
        if let Some(m) = metrics {
            let line =
                json!({"epoch": e.epoch, "loss": e.loss, "train_accuracy": e.train_accuracy});
            if let Err(err) = append_line(m, &line) {
                write_err.get_or_insert(err);
            }
        }
    })?;
    if let Some(err) = write_err {
        return Err(err);
    }
    if let Some(m) = metrics {
        append_line(
            m,
            &json!({
                "accuracy": report.accuracy,
                "train_size": report.train_size,
                "labelled_size": report.extra_size,
                "holdout_size": report.holdout_size,
            }),
        )?;
    }
    Ok(report)
}

/// `std.torch.evaluate`: evaluates the model file on `data`, writes the JSON report
/// (accuracy, confusion matrix, per-class accuracy) to `report_out` and `accuracy` to
/// `metrics`.
pub fn evaluate_step(
    model: &Path,
    data: &Dataset,
    report_out: &Path,
    metrics: Option<&Path>,
) -> Result<EvalReport> {
    let report = evaluate_file(model, data)?;
    if let Some(parent) = report_out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| MlError::io(parent, e))?;
    }
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(report_out, text).map_err(|e| MlError::io(report_out, e))?;
    if let Some(m) = metrics {
        append_line(m, &json!({"accuracy": report.accuracy}))?;
    }
    Ok(report)
}

/// `std.explain.saliency`: gradient saliency maps of the first `samples` images of `data`
/// for the classifier in `model`, written to the directory `maps_out`
/// ([`explain::write_maps`]).
pub fn saliency_step(
    model: &Path,
    data: &Dataset,
    samples: usize,
    maps_out: &Path,
) -> Result<MapsIndex> {
    if samples == 0 {
        return Err(MlError::arg("samples must be at least 1"));
    }
    let m = Classifier::load_with_shape(model, data.rows(), data.cols())?;
    let data = data.take(samples);
    let explanations = explain::saliency(&m, &data)?;
    explain::write_maps(&data, &explanations, maps_out)
}

/// `std.explain.permutation_importance`: reads the tabular data (a CSV file, or a directory
/// with one, [`explain::read_csv`]), ranks its features for the TorchScript `model`, writes
/// the JSON report to `report_out` and the baseline `accuracy` to `metrics`.
pub fn permutation_importance_step(
    model: &Path,
    data: &Path,
    label: &str,
    repeats: usize,
    seed: u64,
    report_out: &Path,
    metrics: Option<&Path>,
) -> Result<ImportanceReport> {
    let table = explain::read_csv(data, label)?;
    let m = TabularModel::load(model, table.features.len())?;
    let report = explain::permutation_importance(&m, &table, repeats, seed)?;
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(report_out, text).map_err(|e| MlError::io(report_out, e))?;
    if let Some(m) = metrics {
        append_line(m, &json!({"accuracy": report.baseline_accuracy}))?;
    }
    Ok(report)
}
