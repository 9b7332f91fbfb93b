//! The ML loop (feature `ml`): what the runtime does with tch through `sflow-ml`.
//!
//! | module | job |
//! | --- | --- |
//! | [`batch`] | the on-disk format of a `Batch` value (samples the Tracker hands on) |
//!
//! Everything here is reached from the engine through narrow entry points, so that a build
//! without the feature keeps the same engine and reports ML actions as not available.

pub mod batch;
