//! `std.detectors.ks`: per-feature two-sample Kolmogorov–Smirnov tests on a PCA reduction,
//! with Bonferroni correction.

use serde::{Deserialize, Serialize};

use super::stats::{ks_p_value, ks_statistic};
use super::{check_batch, Detector, DriftReport, Pca};
use crate::data::Dataset;
use crate::error::{MlError, Result};

/// How [`Ks`] is fitted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KsConfig {
    /// Significance level of the corrected test (`ks(p_value = 0.05)`).
    pub p_value: f64,
    /// PCA components tested (32).
    pub components: usize,
    /// Reference images used at most (4000: half fit the PCA, half are the KS reference).
    pub max_reference: usize,
    /// Seeds the reference subsample.
    pub seed: u64,
}

impl Default for KsConfig {
    fn default() -> Self {
        KsConfig {
            p_value: 0.05,
            components: 32,
            max_reference: 4000,
            seed: 0,
        }
    }
}

/// A fitted KS detector.
#[derive(Debug, Clone)]
pub struct Ks {
    pca: Pca,
    /// Per component, the sorted projections of the KS reference half.
    reference: Vec<Vec<f32>>,
    shape: (usize, usize),
    p_value: f64,
}

/// Splits a shuffled subsample of the reference in two disjoint parts: up to `fit_max`
/// images fit the PCA, up to `test_max` others are the test reference (so the reference
/// projections are not biased by the PCA having seen them). A smaller reference is split in
/// the same proportions.
pub(crate) fn reference_parts(
    reference: &Dataset,
    fit_max: usize,
    test_max: usize,
    seed: u64,
    name: &str,
) -> Result<(Dataset, Dataset)> {
    if reference.len() < 20 {
        return Err(MlError::dataset(format!(
            "{name}: the reference needs at least 20 images, it has {}",
            reference.len()
        )));
    }
    let (fit_max, test_max) = (fit_max.max(10), test_max.max(10));
    let sample = reference.shuffled(seed).take(fit_max + test_max);
    let n = sample.len();
    let test_n = ((n as f64) * test_max as f64 / (fit_max + test_max) as f64).round() as usize;
    let test_n = test_n.clamp(10, n - 10);
    Ok((sample.slice(0, n - test_n), sample.slice(n - test_n, n)))
}

/// Column `j` of a row-major `[n, k]` matrix, sorted.
pub(crate) fn sorted_column(x: &[f32], k: usize, j: usize) -> Vec<f32> {
    let mut col: Vec<f32> = x.iter().skip(j).step_by(k).copied().collect();
    col.sort_by(f32::total_cmp);
    col
}

impl Ks {
    /// Fits on `reference`.
    pub fn fit(reference: &Dataset, cfg: &KsConfig) -> Result<Self> {
        let (fit_half, ref_half) = reference_parts(
            reference,
            cfg.max_reference / 2,
            cfg.max_reference / 2,
            cfg.seed,
            "ks",
        )?;
        let pca = Pca::fit(
            fit_half.pixels(),
            fit_half.len(),
            fit_half.features(),
            cfg.components,
        )?;
        let z = pca.project(ref_half.pixels(), ref_half.len())?;
        let k = pca.k();
        let sorted = (0..k).map(|j| sorted_column(&z, k, j)).collect();
        Ok(Ks {
            pca,
            reference: sorted,
            shape: (reference.rows(), reference.cols()),
            p_value: cfg.p_value,
        })
    }
}

impl Ks {
    /// The PCA the tests run on.
    pub fn pca(&self) -> &Pca {
        &self.pca
    }

    /// Per component: the KS statistic and its (uncorrected) p-value for `batch`.
    pub fn feature_tests(&self, batch: &Dataset) -> Result<Vec<(f64, f64)>> {
        check_batch("ks", self.shape, batch)?;
        let m = batch.len();
        let z = self.pca.project(batch.pixels(), m)?;
        let k = self.pca.k();
        Ok((0..k)
            .map(|j| {
                let col = sorted_column(&z, k, j);
                let r = &self.reference[j];
                let d = ks_statistic(r, &col);
                (d, ks_p_value(d, r.len(), m))
            })
            .collect())
    }
}

impl Detector for Ks {
    fn name(&self) -> &'static str {
        "ks"
    }

    fn check(&self, batch: &Dataset) -> Result<DriftReport> {
        let tests = self.feature_tests(batch)?;
        let k = tests.len().max(1);
        let min_p = tests.iter().map(|t| t.1).fold(1.0f64, f64::min);
        let max_d = tests.iter().map(|t| t.0).fold(0.0f64, f64::max);
        let corrected = (min_p * k as f64).min(1.0);
        let drifted = corrected < self.p_value;
        Ok(DriftReport {
            detector: "ks".into(),
            samples: batch.len(),
            picked: if drifted {
                (0..batch.len()).collect()
            } else {
                Vec::new()
            },
            score: max_d.clamp(0.0, 1.0),
            drifted,
            p_value: Some(corrected),
        })
    }
}
