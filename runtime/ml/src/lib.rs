//! `sflow-ml`: the machine-learning core of sflow, the one crate that links libtorch (tch).
//!
//! - [`data`]: the MNIST IDX loader (`std.data.mnist`), `files(path)` (`std.data.files`),
//!   [`Dataset`], and the on-disk dataset format (a directory of IDX files), which is also the
//!   format of the Improver's `SFLOW_INPUT_LABELLED`;
//! - [`train`]: `std.torch.train_classifier` (MLP or CNN, TorchScript by tracing, accuracy on
//!   a held-out split) and `std.torch.evaluate` (accuracy, confusion matrix);
//! - [`model`]: a loaded TorchScript [`Classifier`];
//! - [`explain`]: `std.explain` — gradient saliency maps of image classifiers, permutation
//!   importance of tabular ones (and the CSV format they read);
//! - [`detectors`]: `std.detectors.ks`, `mmd`, `autoencoder_ood`, `confidence`;
//! - [`corrupt`]: MNIST-C-style corruptions (the demo's drift), deterministic by seed;
//! - [`steps`]: the std steps' bodies under the step contract (metrics as JSON lines);
//! - [`serve`]: the serving engine (hot swap, dynamic batching, workers, metrics, request
//!   log) and its Open Inference Protocol v2 HTTP router.
//!
//! Building needs libtorch 2.13.0: `scripts/setup-libtorch.sh` sets one up from PyPI wheels
//! and prints `LIBTORCH` and `LD_LIBRARY_PATH` to export (docs/ml.md).

pub mod corrupt;
pub mod data;
pub mod detectors;
pub mod error;
pub mod explain;
pub mod model;
pub mod rng;
pub mod serve;
pub mod steps;
pub mod train;

pub use data::{Dataset, Layout, Split};
pub use detectors::{Detector, DetectorSpec, DriftReport};
pub use error::{MlError, Result};
pub use model::Classifier;
pub use train::{
    evaluate, evaluate_file, train_classifier, Arch, EvalReport, TrainConfig, TrainReport,
};

/// Sets libtorch's intra-op thread count (all of the process's tensor work shares it).
pub fn set_torch_threads(n: usize) {
    tch::set_num_threads(n.clamp(1, 1024) as i32);
}

/// The libtorch version this crate is built for.
pub const LIBTORCH_VERSION: &str = "2.13.0";
