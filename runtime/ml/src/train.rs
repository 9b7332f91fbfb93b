//! `std.torch.train_classifier` and `std.torch.evaluate`, with tch.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{CModule, Device, Kind, Tensor};

use crate::data::{Dataset, Layout};
use crate::error::{MlError, Result};
use crate::model::{argmax, Classifier};
use crate::rng::Rng;

/// libtorch's random generator is process-global: training holds this lock from seeding to
/// the end, so two trainings in one process never interleave their draws (determinism).
static TORCH_RNG: Mutex<()> = Mutex::new(());

/// Runs `f` with libtorch's global generator seeded with `seed`, exclusively.
pub(crate) fn with_torch_seed<T>(seed: u64, f: impl FnOnce() -> T) -> T {
    let _guard = TORCH_RNG
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    tch::manual_seed(seed as i64);
    f()
}

/// The network architecture of `train_classifier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// A multilayer perceptron: 784 → 256 → ReLU → 10.
    Mlp,
    /// A small convolutional network: two 5×5 convolutions (16 and 32 channels) with max
    /// pooling, then 512 → 128 → ReLU → 10.
    Cnn,
}

impl FromStr for Arch {
    type Err = MlError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mlp" => Ok(Arch::Mlp),
            "cnn" => Ok(Arch::Cnn),
            other => Err(MlError::arg(format!(
                "unknown architecture {other:?} (expected \"mlp\" or \"cnn\")"
            ))),
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Arch::Mlp => "mlp",
            Arch::Cnn => "cnn",
        })
    }
}

/// The parameters of `train_classifier`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The architecture.
    pub arch: Arch,
    /// Passes over the training data.
    pub epochs: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Images per optimisation step.
    pub batch_size: usize,
    /// Seeds the weights, the shuffles and the held-out split.
    pub seed: u64,
    /// The share of `data` held out to measure accuracy (0.1).
    pub holdout: f64,
    /// The number of classes (10); every label must be below it.
    pub classes: usize,
    /// The least share of each epoch the extra labelled samples make up (0.2): they are
    /// repeated as needed. A few hundred newly labelled samples of a drifted input would
    /// otherwise weigh nothing against tens of thousands of original ones, and the retrained
    /// model would not learn the new distribution.
    pub extra_share: f64,
}

impl TrainConfig {
    /// The stdlib's defaults (`batch_size = 64`, `seed = 0`) with a 10% held-out split.
    pub fn new(arch: Arch, epochs: usize, lr: f64) -> Self {
        TrainConfig {
            arch,
            epochs,
            lr,
            batch_size: 64,
            seed: 0,
            holdout: 0.1,
            classes: 10,
            extra_share: 0.2,
        }
    }

    fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(MlError::arg("epochs must be at least 1"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(MlError::arg(format!(
                "lr must be a positive number, got {}",
                self.lr
            )));
        }
        if self.batch_size == 0 {
            return Err(MlError::arg("batch_size must be at least 1"));
        }
        if !(0.0..1.0).contains(&self.holdout) {
            return Err(MlError::arg(format!(
                "holdout must be in [0, 1), got {}",
                self.holdout
            )));
        }
        if !(2..=256).contains(&self.classes) {
            return Err(MlError::arg(format!(
                "classes must be in 2..=256, got {}",
                self.classes
            )));
        }
        Ok(())
    }
}

/// One epoch's figures, passed to the progress callback.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based.
    pub epoch: usize,
    /// Mean training loss (cross-entropy) over the epoch.
    pub loss: f64,
    /// Accuracy on the training batches during the epoch.
    pub train_accuracy: f64,
    /// Seconds the epoch took.
    pub seconds: f64,
}

/// What `train_classifier` reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    /// The architecture.
    pub arch: Arch,
    /// Accuracy of the saved model on the held-out split of `data` (the step's `accuracy`
    /// metric). With `holdout = 0`, accuracy on the training data.
    pub accuracy: f64,
    /// Images trained on (from `data`, plus the extra labelled ones).
    pub train_size: usize,
    /// Of which extra labelled images.
    pub extra_size: usize,
    /// Images held out.
    pub holdout_size: usize,
    /// Per-epoch figures.
    pub epochs: Vec<EpochStats>,
    /// Seconds spent, training and tracing.
    pub seconds: f64,
    /// The TorchScript file written.
    pub model: PathBuf,
}

#[allow(clippy::large_enum_variant)] // built once per training
enum Net {
    Mlp {
        fc1: nn::Linear,
        fc2: nn::Linear,
    },
    Cnn {
        conv1: nn::Conv2D,
        conv2: nn::Conv2D,
        fc1: nn::Linear,
        fc2: nn::Linear,
    },
}

impl Net {
    fn new(p: &nn::Path, arch: Arch, rows: usize, cols: usize, classes: usize) -> Result<Self> {
        let d = (rows * cols) as i64;
        let c = classes as i64;
        Ok(match arch {
            Arch::Mlp => Net::Mlp {
                fc1: nn::linear(p / "fc1", d, 256, Default::default()),
                fc2: nn::linear(p / "fc2", 256, c, Default::default()),
            },
            Arch::Cnn => {
                // 5×5 convolution then 2×2 pooling, twice.
                let side = |s: usize| -> Option<usize> { s.checked_sub(4).map(|s| s / 2) };
                let (r, k) = match (side(rows).and_then(side), side(cols).and_then(side)) {
                    (Some(r), Some(k)) if r > 0 && k > 0 => (r, k),
                    _ => {
                        return Err(MlError::arg(format!(
                            "the cnn needs images of at least 12×12 pixels, got {rows}×{cols}"
                        )))
                    }
                };
                Net::Cnn {
                    conv1: nn::conv2d(p / "conv1", 1, 16, 5, Default::default()),
                    conv2: nn::conv2d(p / "conv2", 16, 32, 5, Default::default()),
                    fc1: nn::linear(p / "fc1", (32 * r * k) as i64, 128, Default::default()),
                    fc2: nn::linear(p / "fc2", 128, c, Default::default()),
                }
            }
        })
    }
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Net::Mlp { .. } => "Net::Mlp",
            Net::Cnn { .. } => "Net::Cnn",
        })
    }
}

impl ModuleT for Net {
    /// `xs`: `[N, 1, rows, cols]`; returns logits.
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        match self {
            Net::Mlp { fc1, fc2 } => xs.flatten(1, -1).apply(fc1).relu().apply(fc2),
            Net::Cnn {
                conv1,
                conv2,
                fc1,
                fc2,
            } => xs
                .apply(conv1)
                .max_pool2d_default(2)
                .relu()
                .apply(conv2)
                .max_pool2d_default(2)
                .relu()
                .flatten(1, -1)
                .apply(fc1)
                .relu()
                .apply(fc2),
        }
    }
}

fn check_labels(data: &Dataset, classes: usize, what: &str) -> Result<()> {
    let labels = data.require_labels(what)?;
    if let Some(&bad) = labels.iter().find(|&&l| usize::from(l) >= classes) {
        return Err(MlError::dataset(format!(
            "{what}: label {bad} is not below the number of classes ({classes})"
        )));
    }
    Ok(())
}

/// `train` followed by `extra` repeated as often as needed (at most 100 times) for it to make
/// up at least `share` of the result.
fn with_replayed(train: &Dataset, extra: &Dataset, share: f64) -> Result<Dataset> {
    let share = share.clamp(0.0, 0.95);
    let wanted = share / (1.0 - share) * train.len() as f64;
    let reps = ((wanted / extra.len().max(1) as f64).ceil() as usize).clamp(1, 100);
    let mut out = train.concat(extra)?;
    for _ in 1..reps {
        out = out.concat(extra)?;
    }
    Ok(out)
}

/// `std.torch.train_classifier`: trains `cfg.arch` on `data` (minus a held-out split) plus
/// every image of `extra` (the Improver's newly labelled samples; never held out), saves the
/// model as TorchScript at `out`, and reports its accuracy on the held-out split.
pub fn train_classifier(
    cfg: &TrainConfig,
    data: &Dataset,
    extra: Option<&Dataset>,
    out: &Path,
) -> Result<TrainReport> {
    train_classifier_with(cfg, data, extra, out, &mut |_| {})
}

/// [`train_classifier`], calling `progress` after each epoch.
pub fn train_classifier_with(
    cfg: &TrainConfig,
    data: &Dataset,
    extra: Option<&Dataset>,
    out: &Path,
    progress: &mut dyn FnMut(&EpochStats),
) -> Result<TrainReport> {
    cfg.validate()?;
    check_labels(data, cfg.classes, "train_classifier's data")?;
    if let Some(x) = extra {
        if !x.is_empty() {
            check_labels(x, cfg.classes, "train_classifier's extra labelled data")?;
        }
    }
    let start = Instant::now();
    let (train, holdout) = data.split(cfg.holdout, cfg.seed)?;
    let extra_size = extra.map_or(0, Dataset::len);
    let train = match extra {
        Some(x) if !x.is_empty() => with_replayed(&train, x, cfg.extra_share)?,
        _ => train,
    };
    if train.is_empty() {
        return Err(MlError::dataset("no training images"));
    }
    let (rows, cols) = (train.rows(), train.cols());
    let x_all = train.to_tensor(Layout::Nchw);
    let y_all = train.labels_tensor()?;
    let n = train.len();

    let (module, epochs) = with_torch_seed(cfg.seed, || -> Result<_> {
        let mut vs = nn::VarStore::new(Device::Cpu);
        let net = Net::new(&vs.root(), cfg.arch, rows, cols, cfg.classes)?;
        let mut opt = nn::Adam::default().build(&vs, cfg.lr)?;
        let mut epochs = Vec::with_capacity(cfg.epochs);
        for epoch in 1..=cfg.epochs {
            let t0 = Instant::now();
            let perm = Rng::for_item(cfg.seed, epoch as u64).permutation(n);
            let perm: Vec<i64> = perm.into_iter().map(|i| i as i64).collect();
            let perm = Tensor::from_slice(&perm);
            let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0i64, 0i64);
            let mut b = 0;
            while b < n {
                let e = (b + cfg.batch_size).min(n);
                let idx = perm.f_narrow(0, b as i64, (e - b) as i64)?;
                let xs = x_all.f_index_select(0, &idx)?;
                let ys = y_all.f_index_select(0, &idx)?;
                let logits = net.forward_t(&xs, true);
                let loss = logits
                    .f_log_softmax(-1, Kind::Float)?
                    .f_nll_loss::<Tensor>(&ys, None, tch::Reduction::Mean, -100)?;
                opt.backward_step(&loss);
                loss_sum += loss.f_double_value(&[])? * (e - b) as f64;
                correct +=
                    tch::no_grad(|| logits.argmax(-1, false).eq_tensor(&ys).sum(Kind::Int64))
                        .f_int64_value(&[])?;
                seen += (e - b) as i64;
                b = e;
            }
            let stats = EpochStats {
                epoch,
                loss: loss_sum / seen.max(1) as f64,
                train_accuracy: correct as f64 / seen.max(1) as f64,
                seconds: t0.elapsed().as_secs_f64(),
            };
            progress(&stats);
            epochs.push(stats);
        }
        vs.freeze();
        let example = Tensor::zeros([1, 1, rows as i64, cols as i64], (Kind::Float, Device::Cpu));
        let module =
            CModule::create_by_tracing("SflowClassifier", "forward", &[example], &mut |xs| {
                xs.iter().map(|x| net.forward_t(x, false)).collect()
            })?;
        Ok((module, epochs))
    })?;

    save_module(&module, out)?;
    let model = Classifier::from_module(module, out.to_path_buf(), rows, cols, cfg.classes);
    let eval_on = if holdout.is_empty() { &train } else { &holdout };
    let accuracy = evaluate(&model, eval_on)?.accuracy;
    Ok(TrainReport {
        arch: cfg.arch,
        accuracy,
        train_size: n,
        extra_size,
        holdout_size: holdout.len(),
        epochs,
        seconds: start.elapsed().as_secs_f64(),
        model: out.to_path_buf(),
    })
}

/// Saves through a temporary file in the same directory, then renames: a reader never sees
/// a half-written model.
fn save_module(module: &CModule, out: &Path) -> Result<()> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| MlError::io(dir, e))?;
    let name = out
        .file_name()
        .ok_or_else(|| MlError::arg(format!("{}: not a file path", out.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    module.save(&tmp)?;
    std::fs::rename(&tmp, out).map_err(|e| MlError::io(out, e))
}

/// What `evaluate` reports (the JSON of `std.torch.evaluate`'s `report` output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Share of images classified correctly.
    pub accuracy: f64,
    /// Images evaluated.
    pub samples: usize,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<u64>>,
    /// Accuracy per true class (`null` for a class with no image).
    pub per_class_accuracy: Vec<Option<f64>>,
}

/// `std.torch.evaluate`: accuracy and confusion matrix of `model` on the labelled `data`.
pub fn evaluate(model: &Classifier, data: &Dataset) -> Result<EvalReport> {
    let labels = data.require_labels("evaluate")?;
    if data.is_empty() {
        return Err(MlError::dataset("evaluate: no images"));
    }
    let c = model
        .classes()
        .max(usize::from(labels.iter().copied().max().unwrap_or(0)) + 1);
    let probs = model.predict_proba(data)?;
    let mut confusion = vec![vec![0u64; c]; c];
    let mut correct = 0usize;
    for (row, &y) in probs.chunks_exact(model.classes()).zip(labels) {
        let p = usize::from(argmax(row));
        let y = usize::from(y);
        if let Some(cell) = confusion.get_mut(y).and_then(|r| r.get_mut(p)) {
            *cell += 1;
        }
        if p == y {
            correct += 1;
        }
    }
    let per_class_accuracy = confusion
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let total: u64 = row.iter().sum();
            (total > 0).then(|| row.get(i).copied().unwrap_or(0) as f64 / total as f64)
        })
        .collect();
    Ok(EvalReport {
        accuracy: correct as f64 / data.len() as f64,
        samples: data.len(),
        confusion,
        per_class_accuracy,
    })
}

/// Loads the TorchScript model at `model` and evaluates it on `data`.
pub fn evaluate_file(model: &Path, data: &Dataset) -> Result<EvalReport> {
    let m = Classifier::load_with_shape(model, data.rows(), data.cols())?;
    evaluate(&m, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(n: usize, label: u8) -> Result<Dataset> {
        Dataset::from_u8(&vec![label; n * 4], 2, 2, Some(vec![label; n]))
    }

    #[test]
    fn extra_samples_are_replayed_up_to_their_share() -> Result<()> {
        let train = images(800, 0)?;
        let extra = images(10, 1)?;
        let mixed = with_replayed(&train, &extra, 0.2)?;
        // 0.2 / 0.8 × 800 = 200 extra images wanted: 20 repetitions of 10.
        assert_eq!(mixed.len(), 1000);
        let ones = mixed
            .labels()
            .map_or(0, |l| l.iter().filter(|&&x| x == 1).count());
        assert_eq!(ones, 200);
        // Many extra samples are not repeated; a tiny set is repeated at most 100 times.
        assert_eq!(with_replayed(&train, &images(400, 1)?, 0.2)?.len(), 1200);
        assert_eq!(with_replayed(&train, &images(1, 1)?, 0.2)?.len(), 900);
        Ok(())
    }
}
