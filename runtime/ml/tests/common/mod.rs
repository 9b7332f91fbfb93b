//! Shared by the integration tests: the MNIST copy shipped in data/mnist.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use sflow_ml::data::{mnist, Split};
use sflow_ml::Dataset;

pub fn mnist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

pub fn train() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| mnist(&mnist_dir(), Split::Train).expect("MNIST train split in data/mnist"))
}

pub fn test() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| mnist(&mnist_dir(), Split::Test).expect("MNIST test split in data/mnist"))
}
