//! The bodies of the `std.torch` steps (`sflow step std.torch.train_classifier`,
//! `std.torch.evaluate`) and the `std.explain` steps (`saliency`, `permutation_importance`) once [`crate::std_steps`] has typed the arguments and read the
//! contract's environment: `sflow_ml::steps` does the work.
//!
//! `train_classifier` reads its `data` input (a dataset directory: `mnist(split)` arrives as
//! the split alone) and, in an Improver's run, merges `SFLOW_INPUT_LABELLED` into the
//! training set. libtorch uses `SFLOW_TORCH_THREADS` threads (default 1: on a shared machine
//! more threads are slower, docs/ml.md §1).

use crate::std_steps::StepCall;
use sflow_ml::{Arch, TrainConfig};

/// Runs the std step `name`.
pub fn run(name: &str, call: &StepCall) -> Result<(), String> {
    super::support::init_torch_threads();
    match name {
        "std.torch.train_classifier" => train(call),
        "std.torch.evaluate" => evaluate(call),
        "std.explain.saliency" => saliency(call),
        "std.explain.permutation_importance" => permutation_importance(call),
        other => Err(format!("no body for `{other}`")),
    }
}

fn non_negative(call: &StepCall, name: &str) -> Result<usize, String> {
    let v = call.int(name)?;
    usize::try_from(v).map_err(|_| format!("argument `{name}` must not be negative, got {v}"))
}

fn train(call: &StepCall) -> Result<(), String> {
    let arch: Arch = call.string("arch")?.parse().map_err(|e| format!("{e}"))?;
    let cfg = TrainConfig {
        batch_size: non_negative(call, "batch_size")?,
        seed: non_negative(call, "seed")? as u64,
        ..TrainConfig::new(arch, non_negative(call, "epochs")?, call.float("lr")?)
    };
    let data_dir = call.input("data")?;
    let data = sflow_ml::data::files(data_dir).map_err(|e| format!("input `data`: {e}"))?;
    let out = call.output("model")?;
    if let Some(l) = &call.labelled {
        eprintln!(
            "merging the labelled samples in {} (SFLOW_INPUT_LABELLED)",
            l.display()
        );
    }
    let report = sflow_ml::steps::train_classifier_step(
        &cfg,
        &data,
        call.labelled.as_deref(),
        out,
        call.metrics.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    eprintln!(
        "trained {} for {} epochs on {} images ({} labelled by an Improver) in {:.1}s: held-out accuracy {:.4} on {} images",
        report.arch,
        report.epochs.len(),
        report.train_size,
        report.extra_size,
        report.seconds,
        report.accuracy,
        report.holdout_size
    );
    Ok(())
}

fn evaluate(call: &StepCall) -> Result<(), String> {
    let model = call.input("model")?;
    let data_dir = call.input("data")?;
    let data = sflow_ml::data::files(data_dir).map_err(|e| format!("input `data`: {e}"))?;
    let report = sflow_ml::steps::evaluate_step(
        model,
        &data,
        call.output("report")?,
        call.metrics.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    eprintln!(
        "evaluated {} on {} images: accuracy {:.4}",
        model.display(),
        report.samples,
        report.accuracy
    );
    Ok(())
}

fn saliency(call: &StepCall) -> Result<(), String> {
    let model = call.input("model")?;
    let data_dir = call.input("data")?;
    let data = sflow_ml::data::files(data_dir).map_err(|e| format!("input `data`: {e}"))?;
    let out = call.output("maps")?;
    let index = sflow_ml::steps::saliency_step(model, &data, non_negative(call, "samples")?, out)
        .map_err(|e| e.to_string())?;
    eprintln!(
        "wrote saliency maps of {} images to {} (mean saliency near the ink / in the empty border: {})",
        index.samples.len(),
        out.display(),
        index
            .mean_ink_focus
            .map_or_else(|| "-".to_string(), |r| format!("{r:.2}"))
    );
    Ok(())
}

fn permutation_importance(call: &StepCall) -> Result<(), String> {
    let report = sflow_ml::steps::permutation_importance_step(
        call.input("model")?,
        call.input("data")?,
        &call.string("label")?,
        non_negative(call, "repeats")?,
        non_negative(call, "seed")? as u64,
        call.output("report")?,
        call.metrics.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    eprintln!(
        "permutation importance on {} rows (baseline accuracy {:.4}): {}",
        report.samples,
        report.baseline_accuracy,
        report
            .features
            .iter()
            .map(|f| format!("{} {:.4}", f.feature, f.importance))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
