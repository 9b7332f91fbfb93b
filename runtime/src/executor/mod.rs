//! Running workflows. A [`Backend`] runs a whole workflow run and records its steps, metrics
//! and artifacts in the store; the engine decides *which* runs happen and reacts to their
//! outcome. [`local::LocalBackend`] runs each step as a child process on this machine; a
//! Kubernetes backend (creating Argo `Workflow`s) implements the same trait.

pub mod contract;
pub mod data;
pub mod digest;
pub mod local;
pub mod process;

use crate::clock::{BoxFuture, Clock};
use crate::error::Result;
use crate::progress::Progress;
use crate::store::{RunRow, Store};
use crate::value::RtValue;
use sflow_compiler::lower::plan::{Plan, WorkflowPlan};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// Everything a backend needs to execute one run.
#[derive(Clone)]
pub struct RunContext {
    /// The store to record steps in.
    pub store: Arc<Store>,
    /// The plan.
    pub plan: Arc<Plan>,
    /// The workflow (index into the plan's workflows).
    pub workflow: usize,
    /// The run's id.
    pub run_id: i64,
    /// The run's directory (artifacts, logs).
    pub run_dir: PathBuf,
    /// The params of the run.
    pub params: BTreeMap<String, RtValue>,
    /// Where the program is (steps run there, data sources are found from there).
    pub program_dir: PathBuf,
    /// The `sflow` binary, for std steps.
    pub self_exe: PathBuf,
    /// Extra environment for every step of the run.
    pub extra_env: BTreeMap<String, String>,
    /// Whether the run is being resumed after an interruption.
    pub resume: bool,
    /// Progress display.
    pub progress: Arc<dyn Progress>,
    /// The engine's clock (timestamps of records).
    pub clock: Arc<dyn Clock>,
    /// Becomes `true` when the runtime shuts down: steps are stopped and the run is left to
    /// be resumed on the next start.
    pub shutdown: watch::Receiver<bool>,
    /// Told about each step that succeeds (the engine updates its signals).
    pub hooks: Option<Arc<dyn StepHooks>>,
}

/// Receives step results as they happen.
pub trait StepHooks: Send + Sync {
    /// A step succeeded (or was reused from the cache) with these metrics and models.
    fn step_succeeded(&self, step: &str, metrics: &[(String, RtValue)], models: &[NewModel]);
}

impl RunContext {
    /// The workflow being run.
    pub fn workflow(&self) -> Option<&WorkflowPlan> {
        self.plan.workflows.get(self.workflow)
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// Every step succeeded (or was cached).
    Succeeded,
    /// A step failed.
    Failed(String),
    /// The runtime is shutting down; the run stays `running` in the store and is resumed on
    /// the next start.
    Interrupted,
}

/// A model written by a successful step and registered.
#[derive(Clone, Debug)]
pub struct NewModel {
    /// Its id in the registry.
    pub id: i64,
    /// `WORKFLOW.STEP.OUTPUT`.
    pub name: String,
    /// Its version.
    pub version: i64,
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// How it ended.
    pub status: RunStatus,
    /// Metrics of the steps that succeeded (step, metric, latest value).
    pub metrics: Vec<(String, String, RtValue)>,
    /// Models it registered.
    pub models: Vec<NewModel>,
}

/// A change to a service the backend must apply.
#[derive(Clone, Debug)]
pub enum ServiceChange {
    /// Serve another model.
    Serve {
        /// The service.
        service: String,
        /// The model file.
        path: String,
        /// Its registry id.
        model_id: i64,
    },
    /// Run this many replicas.
    Scale {
        /// The service.
        service: String,
        /// Replicas wanted.
        replicas: i64,
    },
    /// Give each replica these resources (the Planner's `resize`, or the service's declared
    /// `resources` re-applied on start).
    Resize {
        /// The service.
        service: String,
        /// The resources of one replica.
        resources: Resources,
    },
}

impl ServiceChange {
    /// The service it changes.
    pub fn service(&self) -> &str {
        match self {
            ServiceChange::Serve { service, .. }
            | ServiceChange::Scale { service, .. }
            | ServiceChange::Resize { service, .. } => service,
        }
    }
}

/// The cpu and memory of one replica of a service (per pod in a cluster, per worker thread
/// on the local backend).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    /// Millicores.
    pub cpu_millis: Option<u64>,
    /// Bytes.
    pub memory_bytes: Option<u64>,
}

impl Resources {
    /// `cpu 2000m, memory 4294967296 bytes`, for logs and audit results.
    pub fn describe(&self) -> String {
        let cpu = self
            .cpu_millis
            .map_or_else(|| "-".to_string(), |m| format!("{m}m"));
        let mem = self
            .memory_bytes
            .map_or_else(|| "-".to_string(), crate::executor::format_bytes);
        format!("cpu {cpu}, memory {mem}")
    }
}

/// Bytes in the largest binary unit that divides them (`4Gi`, `512Mi`, `1000`).
pub fn format_bytes(bytes: u64) -> String {
    for (unit, size) in [
        ("Ti", 1u64 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes >= size && bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// Where runs execute.
pub trait Backend: Send + Sync {
    /// A short name (`local`).
    fn name(&self) -> &'static str;
    /// Executes a run to its end, recording its steps in the store.
    fn run_workflow(&self, ctx: RunContext) -> BoxFuture<'static, RunOutcome>;
    /// Stops whatever is left of an interrupted run's attempts (on start, before resuming).
    fn reap_interrupted(&self, store: &Store, run: &RunRow) -> Result<()>;
    /// Applies a change to a service: on the local backend built with the `ml` feature, it
    /// serves the service's current model with its desired replicas (the store holds the
    /// desired state; the change says which service to bring to it).
    fn apply_service(&self, change: ServiceChange) -> BoxFuture<'static, Result<()>>;
    /// Called once by the engine when it has started, before it re-applies each service's
    /// desired state: what the backend needs to run services and report what it measures of
    /// them. The default ignores it.
    fn attach(&self, _host: BackendHost) {}
    /// Called when the engine shuts down (after telling its tasks to stop), before it
    /// returns: a backend that serves in this process stops and says so. The default does
    /// nothing.
    fn shutdown(&self) {}
}

/// What the engine hands a backend once it has started ([`Backend::attach`]).
#[derive(Clone)]
pub struct BackendHost {
    /// The plan.
    pub plan: Arc<Plan>,
    /// The store (the services' desired state: `production` aliases, replicas).
    pub store: Arc<Store>,
    /// The state directory.
    pub state_dir: PathBuf,
    /// Where measured signals go (the engine; weak, so a backend never keeps it alive).
    pub signals: std::sync::Weak<dyn SignalSink>,
    /// Becomes `true` when the engine shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Addresses to serve services on (`sflow run --serve SERVICE=ADDR`), for backends that
    /// serve them in this process; the others get a free loopback port.
    pub serve_addrs: BTreeMap<String, std::net::SocketAddr>,
}

/// Receives what a backend measures: agents' sensors and service signals, checked and
/// recorded exactly as the control API's `PUT …/sensors/…` and `PUT …/signals/…` do.
pub trait SignalSink: Send + Sync {
    /// Sets an agent's sensor (plain JSON, checked against the sensor's type).
    fn set_sensor(&self, agent: &str, sensor: &str, value: &serde_json::Value) -> Result<RtValue>;
    /// Sets a service signal (`latency.p95`, `requests`, `errors`, …).
    fn set_service_signal(
        &self,
        service: &str,
        path: &str,
        value: &serde_json::Value,
    ) -> Result<RtValue>;
    /// The current value of a signal of the board (`tracker.new_samples`).
    fn signal(&self, key: &str) -> Option<RtValue>;
}
