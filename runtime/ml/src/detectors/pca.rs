//! Principal component analysis, the reduced representation `ks` and `mmd` test on.
//!
//! Why PCA and not the model's penultimate features: a detector is fitted on reference data
//! alone, before (and independently of) whichever model is served, it stays valid across
//! model replacements, and it sees drift in directions the model ignores. PCA to a few dozen
//! dimensions keeps most of MNIST's pixel variance (32 components: about 75%) while making
//! the per-feature tests few enough for Bonferroni to keep power ("Failing Loudly", Rabanser
//! et al. 2019, found PCA and classifier-output reductions with univariate KS + Bonferroni
//! among the most reliable).

use tch::{Device, Kind, Tensor};

use crate::error::{MlError, Result};

/// A fitted PCA: the mean and the top `k` principal directions.
#[derive(Debug, Clone)]
pub struct Pca {
    mean: Vec<f32>,
    /// `[d, k]` row-major.
    components: Vec<f32>,
    d: usize,
    k: usize,
    explained: f64,
}

impl Pca {
    /// Fits on `x` (`[n, d]` row-major), keeping `k` components (`k ≤ d`, `n ≥ 2`).
    pub fn fit(x: &[f32], n: usize, d: usize, k: usize) -> Result<Self> {
        if n < 2 || d == 0 || x.len() != n * d {
            return Err(MlError::dataset(format!(
                "PCA needs at least 2 samples of {d} features (got {} values for {n} samples)",
                x.len()
            )));
        }
        let k = k.clamp(1, d);
        let xt = Tensor::from_slice(x).f_reshape([n as i64, d as i64])?;
        let mean = xt.f_mean_dim(0, true, Kind::Float)?;
        let xc = xt.f_sub(&mean)?.to_kind(Kind::Double);
        let cov = xc
            .f_transpose(0, 1)?
            .f_mm(&xc)?
            .f_div_scalar((n - 1) as f64)?;
        // Eigenvalues in ascending order: the last k columns are the top k directions.
        let (evals, evecs) = cov.f_linalg_eigh("L")?;
        let top = evecs.f_narrow(1, (d - k) as i64, k as i64)?.f_flip([1])?;
        let total = evals.f_sum(Kind::Double)?.f_double_value(&[])?;
        let kept = evals
            .f_narrow(0, (d - k) as i64, k as i64)?
            .f_sum(Kind::Double)?
            .f_double_value(&[])?;
        let components =
            Vec::<f32>::try_from(top.to_kind(Kind::Float).f_contiguous()?.f_flatten(0, -1)?)?;
        let mean = Vec::<f32>::try_from(mean.f_flatten(0, -1)?)?;
        Ok(Pca {
            mean,
            components,
            d,
            k,
            explained: if total > 0.0 { kept / total } else { 0.0 },
        })
    }

    /// Output dimensions.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Input dimensions.
    pub fn d(&self) -> usize {
        self.d
    }

    /// The share of the reference variance the components keep.
    pub fn explained_variance(&self) -> f64 {
        self.explained
    }

    /// Projects `x` (`[n, d]` row-major) to `[n, k]`, as a tensor.
    pub fn project_tensor(&self, x: &[f32], n: usize) -> Result<Tensor> {
        if x.len() != n * self.d {
            return Err(MlError::dataset(format!(
                "PCA: {} values are not {n} samples of {} features",
                x.len(),
                self.d
            )));
        }
        let xt = Tensor::from_slice(x).f_reshape([n as i64, self.d as i64])?;
        let mean = Tensor::from_slice(&self.mean).f_reshape([1, self.d as i64])?;
        let comps =
            Tensor::from_slice(&self.components).f_reshape([self.d as i64, self.k as i64])?;
        Ok(xt.f_sub(&mean)?.f_mm(&comps)?.f_to_device(Device::Cpu)?)
    }

    /// Projects `x` to `[n, k]` row-major.
    pub fn project(&self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        let t = self.project_tensor(x, n)?;
        Ok(Vec::<f32>::try_from(t.f_contiguous()?.f_flatten(0, -1)?)?)
    }
}
