//! The sflow runtime: runs a program's workflows locally, records every run, metric,
//! artifact and model version in an embedded store, and runs its agents, triggers and
//! policies, each action exactly once.
//!
//! One module per job:
//!
//! | module | job |
//! | --- | --- |
//! | [`cli`] | the `sflow` command line |
//! | [`program`] | loading a `.sflow` program or a `plan.json` |
//! | [`engine`] | the app: runs, signals, firings, exactly-once actions, reconciliation |
//! | [`executor`] | running workflows behind a [`executor::Backend`] (local processes now) |
//! | [`policy`] | evaluating policies over signals with `for`, `cooldown`, `max … per` |
//! | [`triggers`] | schedules (cron on an injectable [`clock::Clock`]) |
//! | [`tune`] | hyper-parameter search strategies for `Improver.tune` (random search, TPE): plain math |
//! | [`agents`] | what agents' actions do (Planner; bindings of user kinds) |
//! | [`api`] | the control API (axum, bearer token) |
//! | [`store`] | the embedded SQLite store and its migrations |
//! | [`report`] | the store as JSON for the CLI and the API |
//! | [`mlflow`] | MLflow: the mirror into a tracking server, the REST subset steps log to |
//! | [`kube`] | `sflow runtime`: the runtime in a cluster (Argo Workflows, Deployments, a Lease; feature `kubernetes`) |
//! | `ml` (feature `ml`) | the ML loop: std.torch steps, serving, Tracker, Checker, Improver |

pub mod agents;
pub mod api;
pub mod busy;
pub mod cli;
pub mod clock;
pub mod engine;
pub mod error;
pub mod eval;
pub mod executor;
pub mod kube;
#[cfg(feature = "ml")]
pub mod ml;
pub mod mlflow;
pub mod policy;
pub mod program;
pub mod progress;
pub mod report;
pub mod state;
pub mod std_steps;
pub mod store;
pub mod triggers;
pub mod tune;
pub mod value;
