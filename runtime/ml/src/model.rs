//! A TorchScript classifier, as `std.torch.train_classifier` saves it and the server loads it.
//!
//! The contract of an sflow image classifier: a TorchScript module whose `forward` takes a
//! float tensor `[N, 1, rows, cols]` of pixels in [0, 1] and returns logits `[N, classes]`.
//! Any libtorch user (Python's `torch.jit.load`, C++, tch) can load and call it.

use std::path::{Path, PathBuf};

use tch::{CModule, Device, Kind, Tensor};

use crate::data::{Dataset, Layout, MNIST_SIDE};
use crate::error::{MlError, Result};

/// How many images one forward pass takes at most when predicting a whole dataset.
const CHUNK: usize = 2048;

/// A loaded TorchScript classifier.
#[derive(Debug)]
pub struct Classifier {
    module: CModule,
    path: PathBuf,
    rows: usize,
    cols: usize,
    classes: usize,
}

impl Classifier {
    /// Loads a classifier of 28×28 images (MNIST) from a TorchScript file.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with_shape(path, MNIST_SIDE, MNIST_SIDE)
    }

    /// Loads a classifier of `rows × cols` images; checks it with one forward pass on a blank
    /// image and learns the number of classes from it.
    pub fn load_with_shape(path: &Path, rows: usize, cols: usize) -> Result<Self> {
        if !path.is_file() {
            return Err(MlError::Model {
                path: path.to_path_buf(),
                reason: "no such file".into(),
            });
        }
        let mut module =
            CModule::load_on_device(path, Device::Cpu).map_err(|e| MlError::Model {
                path: path.to_path_buf(),
                reason: format!("not a TorchScript module libtorch can load: {e}"),
            })?;
        module.f_set_eval()?;
        let probe = Tensor::zeros([1, 1, rows as i64, cols as i64], (Kind::Float, Device::Cpu));
        let out = tch::no_grad(|| module.forward_ts(&[probe])).map_err(|e| MlError::Model {
            path: path.to_path_buf(),
            reason: format!("forward on a [1, 1, {rows}, {cols}] image failed: {e}"),
        })?;
        let size = out.size();
        let classes = match size[..] {
            [1, c] if c >= 2 => c as usize,
            _ => {
                return Err(MlError::Model {
                    path: path.to_path_buf(),
                    reason: format!(
                        "forward on a [1, 1, {rows}, {cols}] image returned shape {size:?}; an sflow classifier returns logits [N, classes]"
                    ),
                })
            }
        };
        Ok(Classifier {
            module,
            path: path.to_path_buf(),
            rows,
            cols,
            classes,
        })
    }

    /// Wraps a module already in memory (a freshly traced one).
    pub(crate) fn from_module(
        module: CModule,
        path: PathBuf,
        rows: usize,
        cols: usize,
        classes: usize,
    ) -> Self {
        Classifier {
            module,
            path,
            rows,
            cols,
            classes,
        }
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Image height and width it takes.
    pub fn image_shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Logits for a batch `[N, 1, rows, cols]` (or `[N, rows·cols]`, reshaped).
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let n = x.size().first().copied().unwrap_or(0);
        let x = x.f_reshape([n, 1, self.rows as i64, self.cols as i64])?;
        Ok(tch::no_grad(|| self.module.forward_ts(&[x]))?)
    }

    /// The gradient of each image's `targets[i]` logit with respect to its pixels, `[N, 1,
    /// rows, cols]` (gradient saliency, [`crate::explain`]). Gradients are computed even when
    /// the caller is inside `no_grad`; the model's weights are not touched.
    pub fn logit_gradients(&self, x: &Tensor, targets: &[i64]) -> Result<Tensor> {
        let n = x.size().first().copied().unwrap_or(0);
        if usize::try_from(n).ok() != Some(targets.len()) {
            return Err(MlError::arg(format!(
                "{} targets for {n} images",
                targets.len()
            )));
        }
        if let Some(&bad) = targets.iter().find(|&&t| t < 0 || t >= self.classes as i64) {
            return Err(MlError::arg(format!(
                "class {bad} is not one of the model's {} classes",
                self.classes
            )));
        }
        let x = x
            .f_reshape([n, 1, self.rows as i64, self.cols as i64])?
            .f_detach()?
            .set_requires_grad(true);
        tch::with_grad(|| -> Result<Tensor> {
            let logits = self.module.forward_ts(&[&x])?;
            let idx = Tensor::from_slice(targets).f_unsqueeze(1)?;
            let picked = logits.f_gather(1, &idx, false)?.f_sum(Kind::Float)?;
            let mut grads = Tensor::f_run_backward(&[&picked], &[&x], false, false)?;
            grads
                .pop()
                .ok_or_else(|| MlError::arg("libtorch returned no gradient"))
        })
    }

    /// Class probabilities (softmax of the logits) for a batch.
    pub fn probabilities(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.logits(x)?.f_softmax(-1, Kind::Float)?)
    }

    /// Class probabilities of every image of `data`, `[len × classes]` row-major.
    pub fn predict_proba(&self, data: &Dataset) -> Result<Vec<f32>> {
        self.check_shape(data)?;
        let mut out = Vec::with_capacity(data.len() * self.classes);
        let mut start = 0;
        while start < data.len() {
            let chunk = data.slice(start, start + CHUNK);
            let p = self.probabilities(&chunk.to_tensor(Layout::Nchw))?;
            out.extend(Vec::<f32>::try_from(p.f_flatten(0, -1)?)?);
            start += CHUNK;
        }
        Ok(out)
    }

    /// The predicted class of every image of `data`.
    pub fn predict(&self, data: &Dataset) -> Result<Vec<u8>> {
        let p = self.predict_proba(data)?;
        Ok(p.chunks_exact(self.classes).map(argmax).collect())
    }

    fn check_shape(&self, data: &Dataset) -> Result<()> {
        if (data.rows(), data.cols()) != (self.rows, self.cols) {
            return Err(MlError::dataset(format!(
                "the model takes {}×{} images; the dataset has {}×{}",
                self.rows,
                self.cols,
                data.rows(),
                data.cols()
            )));
        }
        Ok(())
    }
}

/// The index of the largest value (the first on ties), as a class label.
pub(crate) fn argmax(row: &[f32]) -> u8 {
    let mut best = 0usize;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best.min(u8::MAX as usize) as u8
}
