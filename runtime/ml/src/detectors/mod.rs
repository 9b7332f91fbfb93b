//! `std.detectors`: the Checker's drift detectors.
//!
//! Each detector is fitted once on reference data (what the served model was trained on),
//! then [`Detector::check`]s batches of incoming images and returns a [`DriftReport`]: the
//! picked samples (indices into the batch, handed to the Improver for labelling), a drift
//! score in [0, 1], whether the batch drifted, and the test's p-value.
//!
//! | detector | kind | picks | score | drifted when |
//! | --- | --- | --- | --- | --- |
//! | [`Ks`] | batch test on a PCA reduction | the whole batch, when drifted | largest KS statistic | Bonferroni-corrected min p < `p_value` |
//! | [`Mmd`] | batch test on a PCA reduction | the whole batch, when drifted | MMD (RBF kernel), scaled to [0, 1] | permutation p < `p_value` |
//! | [`AutoencoderOod`] | per sample | reconstruction error above the reference `quantile` | share picked | binomial test of the count picked vs `1 − quantile` |
//! | [`Confidence`] | per sample | max softmax below `threshold` | share picked | binomial test vs the reference's share |

mod autoencoder;
mod confidence;
mod ks;
mod mmd;
mod pca;
pub mod stats;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use autoencoder::{AutoencoderConfig, AutoencoderOod};
pub use confidence::Confidence;
pub use ks::{Ks, KsConfig};
pub use mmd::{Mmd, MmdConfig};
pub use pca::Pca;

use crate::data::Dataset;
use crate::error::{MlError, Result};
use crate::model::Classifier;

/// What a detector says about one batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// The detector (`ks`, `mmd`, `autoencoder_ood`, `confidence`).
    pub detector: String,
    /// Images in the batch.
    pub samples: usize,
    /// Indices (into the batch, ascending) of the samples picked for labelling.
    pub picked: Vec<usize>,
    /// How much the batch departs from the reference, in [0, 1] (see the module table).
    pub score: f64,
    /// Whether the batch drifted, at the detector's significance level.
    pub drifted: bool,
    /// The p-value of the detector's test (Bonferroni-corrected for `ks`).
    pub p_value: Option<f64>,
}

/// A fitted drift detector.
pub trait Detector: Send + Sync {
    /// The detector's stdlib name.
    fn name(&self) -> &'static str;
    /// Checks a batch of images (labels, if any, are ignored).
    fn check(&self, batch: &Dataset) -> Result<DriftReport>;
}

/// A detector as a program names it (`std.detectors.*` with its arguments): what to fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DetectorSpec {
    /// `ks(p_value = 0.05)`.
    Ks {
        /// Significance level.
        p_value: f64,
    },
    /// `mmd(p_value = 0.05, permutations = 100)`.
    Mmd {
        /// Significance level.
        p_value: f64,
        /// Permutation rounds.
        permutations: usize,
    },
    /// `autoencoder_ood(quantile = 0.99)`.
    AutoencoderOod {
        /// The reference quantile of reconstruction errors above which a sample is picked.
        quantile: f64,
    },
    /// `confidence(threshold = 0.5)`.
    Confidence {
        /// Samples whose highest softmax probability is below this are picked.
        threshold: f64,
    },
}

impl DetectorSpec {
    /// The spec of `name` (a stdlib detector name) with its stdlib defaults, overridden by
    /// `args` (`("p_value", 0.01)`, …). Unknown names and arguments are errors.
    pub fn from_call(name: &str, args: &[(&str, f64)]) -> Result<Self> {
        let mut spec = match name {
            "ks" => DetectorSpec::Ks { p_value: 0.05 },
            "mmd" => DetectorSpec::Mmd {
                p_value: 0.05,
                permutations: 100,
            },
            "autoencoder_ood" => DetectorSpec::AutoencoderOod { quantile: 0.99 },
            "confidence" => DetectorSpec::Confidence { threshold: 0.5 },
            other => {
                return Err(MlError::arg(format!(
                    "unknown detector {other:?} (expected ks, mmd, autoencoder_ood or confidence)"
                )))
            }
        };
        for &(k, v) in args {
            match (&mut spec, k) {
                (DetectorSpec::Ks { p_value }, "p_value")
                | (DetectorSpec::Mmd { p_value, .. }, "p_value") => *p_value = v,
                (DetectorSpec::Mmd { permutations, .. }, "permutations") => {
                    if !(v.is_finite() && v >= 1.0 && v.fract() == 0.0) {
                        return Err(MlError::arg(format!(
                            "mmd: permutations must be a positive integer, got {v}"
                        )));
                    }
                    *permutations = v as usize;
                }
                (DetectorSpec::AutoencoderOod { quantile }, "quantile") => *quantile = v,
                (DetectorSpec::Confidence { threshold }, "threshold") => *threshold = v,
                _ => return Err(MlError::arg(format!("{name}: unknown argument `{k}`"))),
            }
        }
        spec.validate()?;
        Ok(spec)
    }

    /// The stdlib name.
    pub fn name(&self) -> &'static str {
        match self {
            DetectorSpec::Ks { .. } => "ks",
            DetectorSpec::Mmd { .. } => "mmd",
            DetectorSpec::AutoencoderOod { .. } => "autoencoder_ood",
            DetectorSpec::Confidence { .. } => "confidence",
        }
    }

    fn validate(&self) -> Result<()> {
        let ratio = |what: &str, v: f64| -> Result<()> {
            if v.is_finite() && v > 0.0 && v < 1.0 {
                Ok(())
            } else {
                Err(MlError::arg(format!(
                    "{}: {what} must be in (0, 1), got {v}",
                    self.name()
                )))
            }
        };
        match *self {
            DetectorSpec::Ks { p_value } => ratio("p_value", p_value),
            DetectorSpec::Mmd {
                p_value,
                permutations,
            } => {
                ratio("p_value", p_value)?;
                if permutations == 0 {
                    return Err(MlError::arg("mmd: permutations must be at least 1"));
                }
                Ok(())
            }
            DetectorSpec::AutoencoderOod { quantile } => ratio("quantile", quantile),
            DetectorSpec::Confidence { threshold } => ratio("threshold", threshold),
        }
    }

    /// Fits the detector on `reference`. `confidence` needs the served `model`; the others
    /// ignore it. `seed` fixes every random choice (subsamples, permutations, weights).
    pub fn fit(
        &self,
        reference: &Dataset,
        model: Option<Arc<Classifier>>,
        seed: u64,
    ) -> Result<Box<dyn Detector>> {
        self.validate()?;
        Ok(match *self {
            DetectorSpec::Ks { p_value } => Box::new(Ks::fit(
                reference,
                &KsConfig {
                    p_value,
                    seed,
                    ..KsConfig::default()
                },
            )?),
            DetectorSpec::Mmd {
                p_value,
                permutations,
            } => Box::new(Mmd::fit(
                reference,
                &MmdConfig {
                    p_value,
                    permutations,
                    seed,
                    ..MmdConfig::default()
                },
            )?),
            DetectorSpec::AutoencoderOod { quantile } => Box::new(AutoencoderOod::fit(
                reference,
                &AutoencoderConfig {
                    quantile,
                    seed,
                    ..AutoencoderConfig::default()
                },
            )?),
            DetectorSpec::Confidence { threshold } => {
                let model = model.ok_or_else(|| {
                    MlError::arg("confidence needs the served model to fit (none was given)")
                })?;
                Box::new(Confidence::fit(model, reference, threshold, 0.01)?)
            }
        })
    }
}

/// Checks a batch's image size against the reference's.
pub(crate) fn check_batch(name: &str, reference: (usize, usize), batch: &Dataset) -> Result<()> {
    if (batch.rows(), batch.cols()) != reference {
        return Err(MlError::dataset(format!(
            "{name}: the batch has {}×{} images, the reference {}×{}",
            batch.rows(),
            batch.cols(),
            reference.0,
            reference.1
        )));
    }
    if batch.is_empty() {
        return Err(MlError::dataset(format!("{name}: empty batch")));
    }
    Ok(())
}

/// Per-sample detectors: the report for `picked` out of `n`, with a one-sided binomial test
/// of the count against the reference rate `rate`.
pub(crate) fn per_sample_report(
    name: &str,
    n: usize,
    picked: Vec<usize>,
    rate: f64,
    alpha: f64,
) -> DriftReport {
    let k = picked.len();
    let p = stats::binomial_upper_tail(k, n, rate);
    DriftReport {
        detector: name.to_owned(),
        samples: n,
        score: k as f64 / n.max(1) as f64,
        drifted: p < alpha,
        p_value: Some(p),
        picked,
    }
}
