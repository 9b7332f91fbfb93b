//! `std.detectors.confidence`: picks samples on which the served model is unsure (highest
//! softmax probability below `threshold`).

use std::sync::Arc;

use super::{check_batch, per_sample_report, Detector, DriftReport};
use crate::data::Dataset;
use crate::error::{MlError, Result};
use crate::model::Classifier;

/// A fitted confidence detector.
#[derive(Debug, Clone)]
pub struct Confidence {
    model: Arc<Classifier>,
    threshold: f64,
    /// The share of reference images below the threshold (the binomial test's null rate).
    reference_rate: f64,
    alpha: f64,
}

impl Confidence {
    /// Measures on `reference` how often `model` is unsure; `alpha` is the significance level
    /// of the binomial test that decides `drifted`.
    pub fn fit(
        model: Arc<Classifier>,
        reference: &Dataset,
        threshold: f64,
        alpha: f64,
    ) -> Result<Self> {
        if !(threshold > 0.0 && threshold < 1.0) {
            return Err(MlError::arg(format!(
                "confidence: threshold must be in (0, 1), got {threshold}"
            )));
        }
        if reference.is_empty() {
            return Err(MlError::dataset("confidence: empty reference"));
        }
        let conf = max_softmax(&model, reference)?;
        let low = conf.iter().filter(|&&c| f64::from(c) < threshold).count();
        // One pseudo-count keeps the rate positive on a reference where the model is never
        // unsure (a rate of 0 would make a single unsure sample "drift").
        let reference_rate = (low as f64 + 1.0) / (conf.len() as f64 + 1.0);
        Ok(Confidence {
            model,
            threshold,
            reference_rate,
            alpha,
        })
    }

    /// The share of reference images below the threshold.
    pub fn reference_rate(&self) -> f64 {
        self.reference_rate
    }
}

/// The highest class probability of every image.
pub fn max_softmax(model: &Classifier, data: &Dataset) -> Result<Vec<f32>> {
    let c = model.classes();
    let p = model.predict_proba(data)?;
    Ok(p.chunks_exact(c)
        .map(|row| row.iter().copied().fold(0.0f32, f32::max))
        .collect())
}

impl Detector for Confidence {
    fn name(&self) -> &'static str {
        "confidence"
    }

    fn check(&self, batch: &Dataset) -> Result<DriftReport> {
        check_batch("confidence", self.model.image_shape(), batch)?;
        let conf = max_softmax(&self.model, batch)?;
        let picked = conf
            .iter()
            .enumerate()
            .filter(|(_, &c)| f64::from(c) < self.threshold)
            .map(|(i, _)| i)
            .collect();
        Ok(per_sample_report(
            "confidence",
            batch.len(),
            picked,
            self.reference_rate,
            self.alpha,
        ))
    }
}
