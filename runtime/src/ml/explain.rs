//! Saliency maps for the samples people look at (`std.explain` inside the loop).
//!
//! The Checker writes the maps of the samples it picks into the picked batch
//! (`BATCH/saliency/`, [`sflow_ml::explain::write_maps`]'s layout: `NNNNN.pgm`,
//! `NNNNN.saliency.pgm`, `NNNNN.runner-up.pgm`, `saliency.json`), computed with the model the
//! service serves; `human_feedback` puts each sample's maps beside its picture in a label
//! request. Maps are an aid, never a condition: a model that cannot be explained (not an
//! image classifier of the batch's size) leaves the batch and the request without them, and
//! the reason is logged.

use crate::ml::batch::Batch;
use std::path::Path;

/// The sub-directory of a picked batch that holds its saliency maps.
pub const DIR: &str = "saliency";

/// Writes the saliency maps of every sample of `batch` for the TorchScript classifier at
/// `model` to `dir` (blocking); returns how many samples were explained.
pub fn write_maps(batch: &Batch, model: &Path, dir: &Path) -> Result<usize, String> {
    let images = &batch.images;
    let m = sflow_ml::Classifier::load_with_shape(model, images.rows(), images.cols())
        .map_err(|e| e.to_string())?;
    let explanations = sflow_ml::explain::saliency(&m, images).map_err(|e| e.to_string())?;
    sflow_ml::explain::write_maps(images, &explanations, dir).map_err(|e| e.to_string())?;
    Ok(explanations.len())
}

/// [`write_maps`], logging instead of failing (for the Checker and label requests).
pub fn write_maps_or_log(batch: &Batch, model: &Path, dir: &Path, what: &str) -> bool {
    match write_maps(batch, model, dir) {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(%e, dir = %dir.display(), "no saliency maps for {what}");
            false
        }
    }
}
