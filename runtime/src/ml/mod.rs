//! The ML loop (feature `ml`): what the runtime does with tch through `sflow-ml`.
//!
//! | module | job |
//! | --- | --- |
//! | [`batch`] | the on-disk format of a `Batch` value (samples the Tracker hands on) |
//! | [`serving`] | local serving of services (OIP v2 servers, hot swap, workers, measured signals) |
//! | [`tracker`] | the request log of a served service → the Tracker's sensors and batches |
//! | [`standalone`] | `sflow serve`: one model, served alone (the Kubernetes services' server) |
//! | [`report`] | `sflow serve`'s reports to the runtime in a cluster (request log, latency window) |
//! | [`ingest`] | the runtime's side of those reports: the same signals, Tracker sensors and batches |
//! | [`steps`] | the bodies of the `std.torch` steps (`sflow step std.torch.*`) |
//! | [`reference`] | which model a service serves, and the data it was trained on (the Checker's reference) |
//! | [`checker`] | `Checker.check(batch)`: the drift detector, fitted once per served model |
//! | [`explain`] | saliency maps of picked samples (the Checker) and of label requests |
//! | [`labels`] | the Improver's label sources: `oracle(dataset)`, `human_feedback(dir)` |
//! | [`improver`] | `Improver.improve(data)`: label, hold out, retrain, evaluate candidate vs served |
//! | [`tune`] | `Improver.tune(trials)`: a hyper-parameter search over the retrain workflow |
//! | [`support`] | what those share: agent configs, libtorch threads, batch directories |
//!
//! Everything here is reached from the engine through narrow entry points, so that a build
//! without the feature keeps the same engine and reports ML actions as not available.

pub mod batch;
pub mod checker;
pub mod explain;
pub mod improver;
pub mod ingest;
pub mod labels;
pub mod reference;
pub mod report;
pub mod serving;
pub mod standalone;
pub mod steps;
pub mod support;
pub mod tracker;
pub mod tune;
