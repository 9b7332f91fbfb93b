//! The on-disk format of a `Batch` value: the samples a Tracker hands to a Checker, and the
//! samples a Checker picks for an Improver.
//!
//! A batch is a **directory** (the `path` of [`crate::value::RtValue::Batch`]) holding
//!
//! - the images in the dataset format of `sflow-ml` (`images-idx3-ubyte.gz`, unlabelled; see
//!   `sflow_ml::data`), so any dataset reader can open it;
//! - `samples.json`: one entry per image, in the same order — the sample's key (the
//!   `sample_keys` request parameter of the request it came in, if any: how an `oracle`
//!   label source finds its answer), the prediction and confidence the served model gave,
//!   and when it was served.
//!
//! Batches are written once and never changed: a new batch is a new directory, so a batch
//! value recorded in the store stays readable.

use serde::{Deserialize, Serialize};
use sflow_ml::Dataset;
use std::path::Path;

/// What is known of one sample of a batch besides its pixels.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Its key, when the client gave one (`sample_keys` parameter of the request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The class the served model predicted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<u8>,
    /// The model's highest softmax probability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    /// When it was served (milliseconds since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_ms: Option<u64>,
}

/// A batch in memory: the images and one [`Sample`] per image.
#[derive(Clone, Debug)]
pub struct Batch {
    /// The images (unlabelled).
    pub images: Dataset,
    /// One entry per image.
    pub samples: Vec<Sample>,
}

/// Why a batch cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The images.
    #[error("batch {path}: {source}")]
    Images {
        /// The batch directory.
        path: String,
        /// What went wrong.
        source: sflow_ml::MlError,
    },
    /// `samples.json`.
    #[error("batch {path}: samples.json: {message}")]
    Samples {
        /// The batch directory.
        path: String,
        /// What went wrong.
        message: String,
    },
}

const SAMPLES: &str = "samples.json";

impl Batch {
    /// The number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether it holds no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Result<Batch, sflow_ml::MlError> {
        let images = self.images.subset(indices)?;
        let samples = indices
            .iter()
            .filter_map(|&i| self.samples.get(i).cloned())
            .collect();
        Ok(Batch { images, samples })
    }

    /// Writes the batch to `dir` (created; it must not hold another batch).
    pub fn write(&self, dir: &Path) -> Result<(), BatchError> {
        let path = dir.display().to_string();
        if self.images.len() != self.samples.len() {
            return Err(BatchError::Samples {
                path,
                message: format!(
                    "{} images but {} samples",
                    self.images.len(),
                    self.samples.len()
                ),
            });
        }
        self.images
            .clone()
            .without_labels()
            .save_dir(dir)
            .map_err(|source| BatchError::Images {
                path: path.clone(),
                source,
            })?;
        let text = serde_json::to_vec(&self.samples).map_err(|e| BatchError::Samples {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(dir.join(SAMPLES), text).map_err(|e| BatchError::Samples {
            path,
            message: e.to_string(),
        })
    }

    /// Reads the batch in `dir`. A directory without `samples.json` (a plain dataset) reads
    /// as samples without keys.
    pub fn read(dir: &Path) -> Result<Batch, BatchError> {
        let path = dir.display().to_string();
        let images = sflow_ml::data::files(dir).map_err(|source| BatchError::Images {
            path: path.clone(),
            source,
        })?;
        let samples: Vec<Sample> = match std::fs::read(dir.join(SAMPLES)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| BatchError::Samples {
                path: path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                vec![Sample::default(); images.len()]
            }
            Err(e) => {
                return Err(BatchError::Samples {
                    path,
                    message: e.to_string(),
                })
            }
        };
        if samples.len() != images.len() {
            return Err(BatchError::Samples {
                path,
                message: format!("{} entries for {} images", samples.len(), images.len()),
            });
        }
        Ok(Batch { images, samples })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reads_back_as_written() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let images = Dataset::from_u8(&[0, 255, 128, 7, 9, 10, 11, 12], 2, 2, None)?;
        let samples = vec![
            Sample {
                key: Some("17".into()),
                prediction: Some(3),
                confidence: Some(0.5),
                served_ms: Some(1),
            },
            Sample::default(),
        ];
        let batch = Batch { images, samples };
        batch.write(&dir.path().join("b"))?;
        let back = Batch::read(&dir.path().join("b"))?;
        assert_eq!(back.samples, batch.samples);
        assert_eq!(back.images.pixels(), batch.images.pixels());
        let picked = back.subset(&[1])?;
        assert_eq!(picked.len(), 1);
        assert_eq!(picked.samples[0], Sample::default());
        Ok(())
    }

    #[test]
    fn a_batch_with_a_wrong_sample_count_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let images = Dataset::from_u8(&[0, 255, 128, 7], 2, 2, None)?;
        let batch = Batch {
            images,
            samples: vec![],
        };
        assert!(batch.write(&dir.path().join("b")).is_err());
        Ok(())
    }
}
