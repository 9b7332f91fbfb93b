//! `std.detectors.autoencoder_ood`: a small autoencoder trained on the reference data with
//! tch; a sample whose reconstruction error is above the reference `quantile` is picked.

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{CModule, Device, Kind, Tensor};

use super::stats::quantile;
use super::{check_batch, per_sample_report, Detector, DriftReport};
use crate::data::{Dataset, Layout};
use crate::error::{MlError, Result};
use crate::rng::Rng;
use crate::train::with_torch_seed;

/// How [`AutoencoderOod`] is fitted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AutoencoderConfig {
    /// The reference quantile of reconstruction errors above which a sample is picked
    /// (`autoencoder_ood(quantile = 0.99)`).
    pub quantile: f64,
    /// Significance level of the binomial test that decides `drifted` (0.01).
    pub alpha: f64,
    /// Hidden layer width (128).
    pub hidden: usize,
    /// Code width (32).
    pub code: usize,
    /// Training epochs (6).
    pub epochs: usize,
    /// Adam's learning rate (0.001).
    pub lr: f64,
    /// Batch size (128).
    pub batch_size: usize,
    /// Reference images used at most (8,000).
    pub max_reference: usize,
    /// The share of them kept out of training to calibrate the threshold (0.25).
    pub calibration: f64,
    /// Seeds the subsample, the weights and the shuffles.
    pub seed: u64,
}

impl Default for AutoencoderConfig {
    fn default() -> Self {
        AutoencoderConfig {
            quantile: 0.99,
            alpha: 0.01,
            hidden: 128,
            code: 32,
            epochs: 6,
            lr: 1e-3,
            batch_size: 128,
            max_reference: 8_000,
            calibration: 0.25,
            seed: 0,
        }
    }
}

/// A fitted autoencoder detector.
#[derive(Debug)]
pub struct AutoencoderOod {
    /// The traced autoencoder (a `CModule` is safe to share between threads).
    module: CModule,
    threshold: f64,
    cfg: AutoencoderConfig,
    shape: (usize, usize),
    train_loss: f64,
}

impl AutoencoderOod {
    /// Trains the autoencoder on `reference` and calibrates the threshold.
    pub fn fit(reference: &Dataset, cfg: &AutoencoderConfig) -> Result<Self> {
        if !(cfg.quantile > 0.0 && cfg.quantile < 1.0) {
            return Err(MlError::arg(format!(
                "autoencoder_ood: quantile must be in (0, 1), got {}",
                cfg.quantile
            )));
        }
        if !(cfg.calibration > 0.0 && cfg.calibration < 1.0)
            || cfg.epochs == 0
            || cfg.batch_size == 0
        {
            return Err(MlError::arg(
                "autoencoder_ood: calibration in (0, 1), epochs and batch_size ≥ 1",
            ));
        }
        if reference.len() < 50 {
            return Err(MlError::dataset(format!(
                "autoencoder_ood: the reference needs at least 50 images, it has {}",
                reference.len()
            )));
        }
        let sample = reference.shuffled(cfg.seed).take(cfg.max_reference);
        let n_cal = ((sample.len() as f64) * cfg.calibration).round().max(1.0) as usize;
        let calib = sample.slice(0, n_cal);
        let train = sample.slice(n_cal, sample.len());
        let d = train.features() as i64;
        let x_all = train.to_tensor(Layout::Flat);
        let n = train.len();
        let (module, train_loss) = with_torch_seed(cfg.seed, || -> Result<_> {
            let mut vs = nn::VarStore::new(Device::Cpu);
            let p = vs.root();
            let (h, c) = (cfg.hidden as i64, cfg.code as i64);
            let net = nn::seq()
                .add(nn::linear(&p / "enc1", d, h, Default::default()))
                .add_fn(|x| x.relu())
                .add(nn::linear(&p / "enc2", h, c, Default::default()))
                .add_fn(|x| x.relu())
                .add(nn::linear(&p / "dec1", c, h, Default::default()))
                .add_fn(|x| x.relu())
                .add(nn::linear(&p / "dec2", h, d, Default::default()))
                .add_fn(|x| x.sigmoid());
            let mut opt = nn::Adam::default().build(&vs, cfg.lr)?;
            let mut last = 0.0;
            for epoch in 0..cfg.epochs {
                let perm: Vec<i64> = Rng::for_item(cfg.seed, 0xae00 + epoch as u64)
                    .permutation(n)
                    .into_iter()
                    .map(|i| i as i64)
                    .collect();
                let perm = Tensor::from_slice(&perm);
                let (mut sum, mut b) = (0.0, 0);
                while b < n {
                    let e = (b + cfg.batch_size).min(n);
                    let xs =
                        x_all.f_index_select(0, &perm.f_narrow(0, b as i64, (e - b) as i64)?)?;
                    let loss = net.forward(&xs).f_mse_loss(&xs, tch::Reduction::Mean)?;
                    opt.backward_step(&loss);
                    sum += loss.f_double_value(&[])? * (e - b) as f64;
                    b = e;
                }
                last = sum / n.max(1) as f64;
            }
            vs.freeze();
            let example = Tensor::zeros([1, d], (Kind::Float, Device::Cpu));
            let module =
                CModule::create_by_tracing("SflowAutoencoder", "forward", &[example], &mut |xs| {
                    xs.iter().map(|x| net.forward(x)).collect()
                })?;
            Ok((module, last))
        })?;
        let mut det = AutoencoderOod {
            module,
            threshold: f64::INFINITY,
            cfg: cfg.clone(),
            shape: (reference.rows(), reference.cols()),
            train_loss,
        };
        let errors = det.errors(&calib)?;
        det.threshold = quantile(&errors, cfg.quantile)
            .ok_or_else(|| MlError::dataset("autoencoder_ood: no calibration error"))?;
        Ok(det)
    }

    /// The reconstruction error (mean squared error over pixels) of every image of `batch`.
    pub fn errors(&self, batch: &Dataset) -> Result<Vec<f32>> {
        check_batch("autoencoder_ood", self.shape, batch)?;
        let mut out = Vec::with_capacity(batch.len());
        let mut start = 0;
        while start < batch.len() {
            let chunk = batch.slice(start, start + 4096);
            let x = chunk.to_tensor(Layout::Flat);
            let r = tch::no_grad(|| self.module.forward_ts(&[&x]))?;
            let e = r.f_sub(&x)?.f_square()?.f_mean_dim(1, false, Kind::Float)?;
            out.extend(Vec::<f32>::try_from(e)?);
            start += 4096;
        }
        Ok(out)
    }

    /// The error threshold (the reference's `quantile`).
    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// The autoencoder's final training loss.
    pub fn train_loss(&self) -> f64 {
        self.train_loss
    }
}

impl Detector for AutoencoderOod {
    fn name(&self) -> &'static str {
        "autoencoder_ood"
    }

    fn check(&self, batch: &Dataset) -> Result<DriftReport> {
        let errors = self.errors(batch)?;
        let picked: Vec<usize> = errors
            .iter()
            .enumerate()
            .filter(|(_, &e)| f64::from(e) > self.threshold)
            .map(|(i, _)| i)
            .collect();
        Ok(per_sample_report(
            "autoencoder_ood",
            batch.len(),
            picked,
            1.0 - self.cfg.quantile,
            self.cfg.alpha,
        ))
    }
}
