//! MLflow compatibility (docs/runtime.md §10):
//!
//! - [`mirror`]: with `app { tracking = mlflow("http://…") }`, a task mirrors what the store
//!   records (runs, nested step runs, params, metrics in batches, artifacts' locations, the
//!   model registry and the `production` alias) into that MLflow server; the store stays the
//!   source of truth and the outbox, so an outage loses nothing;
//! - [`server`]: the part of the MLflow REST API that steps logging with MLflow's own clients
//!   use, served by the control API, so `mlflow.log_metric(…)` in a step records the step's
//!   metrics;
//! - [`client`]: the REST client the mirror uses.

pub mod client;
pub mod mirror;
pub mod server;
