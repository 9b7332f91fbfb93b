//! Shared by the integration tests: the MNIST copy shipped in data/mnist.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use sflow_ml::data::{mnist, Split};
use sflow_ml::Dataset;

pub fn mnist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

/// One libtorch thread: tests run side by side on a 2-core machine, where libgomp's spinning
/// threads slow everything down when oversubscribed.
fn init() {
    static I: OnceLock<()> = OnceLock::new();
    I.get_or_init(|| sflow_ml::set_torch_threads(1));
}

/// The 60,000 training digits, in file order.
pub fn train() -> &'static Dataset {
    init();
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| mnist(&mnist_dir(), Split::Train).expect("MNIST train split in data/mnist"))
}

/// The 10,000 test digits, in file order.
pub fn test() -> &'static Dataset {
    init();
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| mnist(&mnist_dir(), Split::Test).expect("MNIST test split in data/mnist"))
}

/// The training digits shuffled (MNIST's files are ordered by writer group: a slice of
/// consecutive digits is not a random sample).
pub fn train_shuffled() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| train().shuffled(1))
}

/// The test digits shuffled.
pub fn test_shuffled() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| test().shuffled(2))
}
