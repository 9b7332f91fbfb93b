//! The one error type of sflow-ml.

use std::path::PathBuf;

/// What can go wrong in sflow-ml. Input-dependent failures (a truncated IDX file, a malformed
/// request, a dataset without labels) are errors, never panics.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An IDX file is malformed: wrong magic number, truncated, inconsistent sizes.
    #[error("{}: not a valid IDX file: {reason}", path.display())]
    Idx {
        /// The file.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// A dataset cannot be used as asked (no labels, mismatched image sizes, empty, …).
    #[error("dataset: {0}")]
    Dataset(String),
    /// An argument is out of range or unknown (an architecture name, a ratio above 1, …).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// A model file could not be loaded or does not behave like an sflow classifier.
    #[error("model {}: {reason}", path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// JSON (de)serialisation failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl MlError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        MlError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn idx(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        MlError::Idx {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn arg(msg: impl Into<String>) -> Self {
        MlError::InvalidArgument(msg.into())
    }

    pub(crate) fn dataset(msg: impl Into<String>) -> Self {
        MlError::Dataset(msg.into())
    }
}

/// The result type of sflow-ml.
pub type Result<T, E = MlError> = std::result::Result<T, E>;
