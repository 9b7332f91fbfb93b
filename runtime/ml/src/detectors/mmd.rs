//! `std.detectors.mmd`: maximum mean discrepancy with an RBF kernel (bandwidth by the median
//! heuristic) on a PCA reduction, with a permutation test.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::ks::reference_parts;
use super::{check_batch, Detector, DriftReport, Pca};
use crate::data::Dataset;
use crate::error::{MlError, Result};
use crate::rng::Rng;

/// How [`Mmd`] is fitted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MmdConfig {
    /// Significance level (`mmd(p_value = 0.05)`).
    pub p_value: f64,
    /// Permutation rounds (`mmd(permutations = 100)`).
    pub permutations: usize,
    /// PCA components the kernel sees (32).
    pub components: usize,
    /// Reference images each check compares the batch with (500), drawn afresh for each
    /// batch from a pool of four times as many (3000 more fit the PCA). Fresh draws keep the
    /// false-alarm rate near `p_value` whatever the reference sample.
    pub max_reference: usize,
    /// Batch images tested at most (500; a larger batch is subsampled for the test, which
    /// keeps a check of 1000 images under 50 ms on 2 cores).
    pub max_batch: usize,
    /// Seeds the subsamples and the permutations.
    pub seed: u64,
}

impl Default for MmdConfig {
    fn default() -> Self {
        MmdConfig {
            p_value: 0.05,
            permutations: 100,
            components: 32,
            max_reference: 500,
            max_batch: 500,
            seed: 0,
        }
    }
}

/// A fitted MMD detector.
#[derive(Debug, Clone)]
pub struct Mmd {
    pca: Pca,
    /// Reduced reference pool, `[pool, k]` row-major.
    reference: Vec<f32>,
    pool: usize,
    /// The RBF bandwidth σ² (median squared distance between reference points).
    sigma2: f64,
    cfg: MmdConfig,
    shape: (usize, usize),
}

fn sq_distances(z: &Tensor) -> Result<Tensor> {
    let sq = z.f_mul(z)?.f_sum_dim_intlist(1, true, Kind::Float)?;
    let gram = z.f_mm(&z.f_transpose(0, 1)?)?;
    Ok(sq
        .f_add(&sq.f_transpose(0, 1)?)?
        .f_sub(&gram.f_mul_scalar(2.0)?)?
        .f_clamp_min(0.0)?)
}

impl Mmd {
    /// Fits on `reference`.
    pub fn fit(reference: &Dataset, cfg: &MmdConfig) -> Result<Self> {
        if cfg.permutations == 0 {
            return Err(MlError::arg("mmd: permutations must be at least 1"));
        }
        let (fit_half, ref_half) = reference_parts(
            reference,
            3000,
            cfg.max_reference.saturating_mul(4),
            cfg.seed,
            "mmd",
        )?;
        let pca = Pca::fit(
            fit_half.pixels(),
            fit_half.len(),
            fit_half.features(),
            cfg.components,
        )?;
        let z = pca.project_tensor(ref_half.pixels(), ref_half.len())?;
        // Bandwidth from (at most) 1000 pool points.
        let nb = ref_half.len().min(1000) as i64;
        let d2 = sq_distances(&z.f_narrow(0, 0, nb)?)?;
        let n = nb;
        // Off-diagonal squared distances: their median is the bandwidth.
        let mask = Tensor::ones([n, n], (Kind::Bool, tch::Device::Cpu)).f_triu(1)?;
        let off = d2.f_masked_select(&mask)?;
        let sigma2 = off.f_median()?.f_double_value(&[])?;
        let sigma2 = if sigma2.is_finite() && sigma2 > 0.0 {
            sigma2
        } else {
            1.0
        };
        let reference_z = Vec::<f32>::try_from(z.f_contiguous()?.f_flatten(0, -1)?)?;
        Ok(Mmd {
            pca,
            reference: reference_z,
            pool: ref_half.len(),
            sigma2,
            cfg: cfg.clone(),
            shape: (reference.rows(), reference.cols()),
        })
    }

    /// The kernel bandwidth σ² chosen by the median heuristic.
    pub fn bandwidth(&self) -> f64 {
        self.sigma2
    }

    /// The biased MMD² estimate between the reference and `batch`, and the permutation
    /// p-value.
    pub fn test(&self, batch: &Dataset) -> Result<(f64, f64)> {
        check_batch("mmd", self.shape, batch)?;
        let batch = if batch.len() > self.cfg.max_batch {
            batch
                .shuffled(self.cfg.seed ^ 0x6d6d64)
                .take(self.cfg.max_batch)
        } else {
            batch.clone()
        };
        let m = batch.len();
        let k = self.pca.k();
        let zb = self.pca.project_tensor(batch.pixels(), m)?;
        // A fresh reference draw for this batch, fixed by the seed and the batch's content.
        let mut rng = Rng::new(self.cfg.seed ^ content_hash(batch.pixels()));
        let n = self.cfg.max_reference.clamp(1, self.pool);
        let mut idx: Vec<usize> = (0..self.pool).collect();
        for i in 0..n {
            let j = i + rng.below(self.pool - i);
            idx.swap(i, j);
        }
        let mut zr = Vec::with_capacity(n * k);
        for &i in &idx[..n] {
            zr.extend_from_slice(&self.reference[i * k..(i + 1) * k]);
        }
        let zr = Tensor::from_slice(&zr).f_reshape([n as i64, k as i64])?;
        let z = Tensor::f_cat(&[zr, zb], 0)?;
        let kernel = sq_distances(&z)?
            .f_div_scalar(-2.0 * self.sigma2)?
            .f_exp()?;
        // Each column is an assignment: +1/n for "reference", −1/m for "batch"; MMD²_b of
        // that split is wᵀKw. Column 0 is the observed split, the others permutations.
        let total = n + m;
        let rounds = self.cfg.permutations;
        let (wr, wb) = (1.0 / n as f32, -1.0 / m as f32);
        let mut w = vec![0f32; total * (rounds + 1)];
        let cols = rounds + 1;
        for i in 0..total {
            w[i * cols] = if i < n { wr } else { wb };
        }
        for r in 1..=rounds {
            let perm = rng.permutation(total);
            for (rank, &i) in perm.iter().enumerate() {
                w[i * cols + r] = if rank < n { wr } else { wb };
            }
        }
        let w = Tensor::from_slice(&w).f_reshape([total as i64, cols as i64])?;
        let stats = w
            .f_mul(&kernel.f_mm(&w)?)?
            .f_sum_dim_intlist(0, false, Kind::Float)?;
        let stats = Vec::<f32>::try_from(stats)?;
        let observed = f64::from(stats.first().copied().unwrap_or(0.0));
        let at_least = stats
            .iter()
            .skip(1)
            .filter(|&&s| f64::from(s) >= observed)
            .count();
        Ok((observed, (1 + at_least) as f64 / (rounds + 1) as f64))
    }
}

impl Detector for Mmd {
    fn name(&self) -> &'static str {
        "mmd"
    }

    fn check(&self, batch: &Dataset) -> Result<DriftReport> {
        let (mmd2, p) = self.test(batch)?;
        let drifted = p < self.cfg.p_value;
        Ok(DriftReport {
            detector: "mmd".into(),
            samples: batch.len(),
            picked: if drifted {
                (0..batch.len()).collect()
            } else {
                Vec::new()
            },
            // MMD² with a kernel bounded by 1 lies in [0, 2].
            score: (mmd2.max(0.0) / 2.0).sqrt().clamp(0.0, 1.0),
            drifted,
            p_value: Some(p),
        })
    }
}

/// FNV-1a over the pixels' bits.
fn content_hash(px: &[f32]) -> u64 {
    px.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, p| {
        (h ^ u64::from(p.to_bits())).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
