//! The engine: one process that runs an app's workflows, keeps its agents' sensors and the
//! other signals current, evaluates its policies, fires its triggers, and records everything.
//!
//! Exactly once. Every trigger or policy firing is recorded in the store with an idempotency
//! key (`firings`) *before* anything is done for it. Its actions are then performed in order;
//! the effect of each action inside the store (starting a run, moving an alias, setting
//! replicas, publishing an action, the events and trigger firings it causes) is committed in
//! the same transaction that advances the firing past the action, so after a crash an action
//! is either done and recorded, or not done at all. On start the engine reconciles: pending
//! firings continue from their first action not recorded as done; interrupted runs resume.
//! The one effect outside the store — a webhook binding's POST — is sent before the record,
//! with the action's idempotency key as the `Idempotency-Key` header, so a receiver that
//! honours it performs it once even if a crash makes the runtime send it again.

use crate::agents;
use crate::busy::{Busy, BusyGuard};
use crate::clock::{format_utc, Clock, Millis};
use crate::error::{Error, Result};
use crate::eval::Scope;
use crate::executor::local::LocalBackend;
use crate::executor::{
    Backend, BackendHost, NewModel, Resources, RunContext, RunStatus, ServiceChange, SignalSink,
};
use crate::policy::{PolicyEngine, PolicyState, Scalar, Verdict, VerdictKind};
use crate::program::Program;
use crate::progress::Progress;
use crate::store::{self, ParamRow, RunRow, Store};
use crate::triggers;
use crate::value::{self, RtValue};
use serde_json::{json, Map, Value as Json};
use sflow_compiler::lower::plan::{ActionPlan, AppPlan, Plan, PlanType, Signal, TriggerSourcePlan};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How to run the engine.
#[derive(Clone)]
pub struct EngineConfig {
    /// The state directory (store, runs, token).
    pub state_dir: PathBuf,
    /// Most step processes at once.
    pub parallelism: usize,
    /// The `sflow` binary, for std steps.
    pub self_exe: PathBuf,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The progress display.
    pub progress: Arc<dyn Progress>,
    /// The backend; `None`: the local backend.
    pub backend: Option<Arc<dyn Backend>>,
    /// Extra environment for every step.
    pub step_env: BTreeMap<String, String>,
    /// Addresses to serve services on when the backend serves them in this process
    /// (`sflow run --serve SERVICE=ADDR`); others get a free loopback port.
    pub serve_addrs: BTreeMap<String, std::net::SocketAddr>,
    /// `schedule` triggers that something else fires (in a cluster, the CronWorkflows the
    /// manifests make of them): the engine does not run their schedules.
    pub external_schedules: std::collections::BTreeSet<String>,
}

impl EngineConfig {
    /// Defaults: as many step processes as cores, the real clock, logs for progress.
    ///
    /// A relative `state_dir` is made absolute against the working directory now: steps run
    /// in other directories, and every path of the step contract must mean the same there.
    pub fn new(state_dir: PathBuf) -> EngineConfig {
        EngineConfig {
            state_dir: std::path::absolute(&state_dir).unwrap_or(state_dir),
            parallelism: std::thread::available_parallelism().map_or(2, |n| n.get()),
            self_exe: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("sflow")),
            clock: Arc::new(crate::clock::SystemClock),
            progress: Arc::new(crate::progress::Logs),
            backend: None,
            step_env: BTreeMap::new(),
            serve_addrs: BTreeMap::new(),
            external_schedules: std::collections::BTreeSet::new(),
        }
    }
}

/// What an action does to the store (committed with the firing's progress).
#[derive(Clone, Debug)]
pub enum Effect {
    /// Start a run.
    StartRun {
        /// The workflow.
        workflow: String,
        /// Param overrides.
        overrides: BTreeMap<String, RtValue>,
        /// Who asked.
        origin: String,
    },
    /// Point a service's `production` alias at a model.
    Alias {
        /// The service.
        service: String,
        /// The model.
        model_id: i64,
        /// What it served before.
        previous: Option<i64>,
        /// `model.replaced` or `model.rolled_back`.
        event: &'static str,
    },
    /// Set a service's replicas.
    Scale {
        /// The service.
        service: String,
        /// Replicas before.
        from: i64,
        /// Replicas wanted.
        replicas: i64,
    },
    /// Set the cpu and memory of each of a service's replicas.
    Resize {
        /// The service.
        service: String,
        /// Its resources before (recorded, or declared), if any.
        from: Option<Resources>,
        /// The resources wanted.
        to: Resources,
    },
    /// Publish an action for an external agent.
    Publish {
        /// The agent.
        agent: String,
        /// The action.
        action: String,
        /// Its arguments.
        args: Json,
    },
    /// Nothing to record but the result (performed already, or nothing to do).
    Nothing {
        /// What happened.
        result: String,
    },
    /// Set signals (the Checker's and Improver's sensors), with the engine state and events
    /// that go with them, in the firing's transaction; the board gets them together, so a
    /// policy never sees one without the others.
    Signals {
        /// Signal keys (`checker.drift`) and values, recorded as signals.
        set: Vec<(String, RtValue)>,
        /// Engine state (`kv`) written with them.
        kv: Vec<(String, Json)>,
        /// Events emitted with them: subject, name, payload.
        events: Vec<(String, String, Json)>,
        /// Services whose `model` signal is read again afterwards (their evaluation changed).
        refresh_services: Vec<String>,
        /// What happened, for the audit log.
        result: String,
        /// Held until the effect is recorded: serializes an agent's actions with their records.
        hold: Option<Hold>,
    },
}

/// Something an action keeps until its effect is recorded (a lock guard), then drops.
#[derive(Clone)]
pub struct Hold(pub Arc<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hold")
    }
}

/// What happens after a commit.
#[derive(Default)]
struct After {
    runs: Vec<Launch>,
    firings: Vec<String>,
    bases: Vec<(String, RtValue)>,
    services: Vec<ServiceChange>,
}

struct Launch {
    run_id: i64,
    dir: String,
    workflow: usize,
    params: BTreeMap<String, RtValue>,
    resume: bool,
    /// A trial of `Improver.tune` ([`is_experiment`]).
    experiment: bool,
}

/// Whether a run that `origin` started is an experiment: a trial of `Improver.tune`
/// (`agent:AGENT.tune`). Its runs, metrics and models are recorded like any other (the trials
/// table and `sflow runs` show them), but it is not the workflow running: it emits no
/// `WORKFLOW.started/succeeded/failed` events, does not move `WORKFLOW.STEP.METRIC` signals
/// and never becomes a service's first deployment. Otherwise a policy such as
/// `when training.fit.accuracy < 0.9 then improver.tune(20)` would fire again on every poor
/// trial, and `on training.succeeded` triggers once per trial. The tuning's result is the
/// Improver's `candidate`.
pub fn is_experiment(origin: &str) -> bool {
    store::tuning::is_trial_origin(origin)
}

enum Msg {
    Base {
        key: String,
        value: RtValue,
        _busy: BusyGuard,
    },
    Sync(tokio::sync::oneshot::Sender<()>),
    /// Several base signals set together (one policy evaluation after all of them).
    Bases {
        values: Vec<(String, RtValue)>,
        _busy: BusyGuard,
    },
}

/// The state the engine's tasks share.
pub struct Shared {
    plan: Arc<Plan>,
    program: Program,
    cfg: EngineConfig,
    store: Arc<Store>,
    backend: Arc<dyn Backend>,
    clock: Arc<dyn Clock>,
    tx: mpsc::UnboundedSender<Msg>,
    busy: Busy,
    shutdown: watch::Sender<bool>,
    runs_finished: watch::Sender<u64>,
    in_flight: Mutex<HashSet<String>>,
    active_runs: Mutex<HashSet<i64>>,
    board: Mutex<HashMap<String, RtValue>>,
    http: reqwest::Client,
    seq: AtomicU64,
    lock: Mutex<Option<std::fs::File>>,
}

/// A running engine (cheap to clone).
#[derive(Clone)]
pub struct Engine {
    s: Arc<Shared>,
}

/// The base key and member path of a signal: `checker.picked` + `[size]`.
pub fn base_of(s: &Signal) -> (String, Vec<String>) {
    match s {
        Signal::Sensor {
            agent,
            sensor,
            path,
        } => (format!("{agent}.{sensor}"), path.clone()),
        Signal::Service { service, path } => match path.first().map(String::as_str) {
            Some("model") => (format!("{service}.model"), path[1..].to_vec()),
            _ => (format!("{service}.{}", path.join(".")), Vec::new()),
        },
        Signal::StepMetric {
            workflow,
            step,
            metric,
        } => (format!("{workflow}.{step}.{metric}"), Vec::new()),
    }
}

/// The value of a registered model version: its id, name, version, file and metric record.
pub fn model_value(m: &store::ModelRow) -> RtValue {
    let metrics = match &m.metrics {
        Json::Object(o) => o
            .iter()
            .map(|(k, v)| (k.clone(), value::json_to_value(v)))
            .collect(),
        _ => BTreeMap::new(),
    };
    RtValue::Model {
        id: m.id,
        name: m.name.clone(),
        version: m.version,
        path: m.path.clone(),
        metrics,
    }
}

/// The kv key of a service's latest model evaluation (written by an Improver).
pub fn evaluation_key(service: &str) -> String {
    format!("evaluation:{service}")
}

/// The value of `SERVICE.model`: the served model with its metric record, where the latest
/// evaluation of the service's models (an Improver's, on its held-out data) overrides the
/// metrics it measured, so `improver.candidate.accuracy > SERVICE.model.accuracy` compares
/// figures from the same data. The registry keeps the training metrics.
fn served_value(c: &rusqlite::Connection, service: &str, m: &store::ModelRow) -> Result<RtValue> {
    let mut v = model_value(m);
    if let (Some(eval), RtValue::Model { metrics, .. }) =
        (store::kv_get(c, &evaluation_key(service))?, &mut v)
    {
        if let Some(Json::Object(measured)) =
            eval.get("models").and_then(|ms| ms.get(m.id.to_string()))
        {
            for (k, x) in measured {
                metrics.insert(k.clone(), value::json_to_value(x));
            }
        }
    }
    Ok(v)
}

impl Engine {
    /// Starts the engine for a program: opens the store, reconciles what a previous process
    /// left unfinished (resumes interrupted runs, continues pending firings), and starts the
    /// control loop and the schedules.
    pub async fn start(program: Program, cfg: EngineConfig) -> Result<Engine> {
        std::fs::create_dir_all(&cfg.state_dir)
            .map_err(|e| Error::io(format!("cannot create {}", cfg.state_dir.display()), e))?;
        let lock = crate::state::lock(&cfg.state_dir)?;
        let store = Arc::new(Store::open(&cfg.state_dir.join("store.db"))?);
        let plan = Arc::new(program.plan.clone());
        let clock = cfg.clock.clone();
        let now = clock.now_ms();
        let plan_text = serde_json::to_string(&*plan)?;
        let plan_sha = crate::executor::digest::sha256_hex(plan_text.as_bytes());
        store.with(|c| {
            store::upsert_app(
                c,
                &plan.app.name,
                &program.path.to_string_lossy(),
                &plan_sha,
                &plan_text,
                now,
            )
        })?;
        for s in &plan.services {
            store.with(|c| {
                store::ensure_service(
                    c,
                    &s.name,
                    i64::from(s.min_replicas),
                    i64::from(s.max_replicas),
                    now,
                )
            })?;
        }
        let backend: Arc<dyn Backend> = match &cfg.backend {
            Some(b) => b.clone(),
            None => Arc::new(LocalBackend::new(cfg.parallelism)),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Msg(format!("http client: {e}")))?;
        let shared = Arc::new(Shared {
            plan: plan.clone(),
            program,
            cfg: cfg.clone(),
            store: store.clone(),
            backend,
            clock: clock.clone(),
            tx,
            busy: Busy::default(),
            shutdown: watch::Sender::new(false),
            runs_finished: watch::Sender::new(0),
            in_flight: Mutex::new(HashSet::new()),
            active_runs: Mutex::new(HashSet::new()),
            board: Mutex::new(HashMap::new()),
            http,
            seq: AtomicU64::new(0),
            lock: Mutex::new(Some(lock)),
        });
        let board = shared.load_board()?;
        let mut policies = PolicyEngine::new(&plan.policies);
        for (i, p) in plan.policies.iter().enumerate() {
            if let Some(state) = store.with(|c| store::kv_get(c, &format!("policy:{}", p.name)))? {
                if let Ok(state) = serde_json::from_value::<PolicyState>(state) {
                    policies.restore(i, state);
                }
            }
        }
        let mut every = HashMap::new();
        for t in &plan.triggers {
            if let TriggerSourcePlan::Every { .. } = t.on {
                let base = store
                    .with(|c| store::kv_get(c, &format!("trigger:{}:baseline", t.name)))?
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0);
                every.insert(t.name.clone(), base);
            }
        }
        // Reconcile what a previous process left unfinished (read before anything new can
        // start): interrupted runs resume, pending firings continue.
        let interrupted = store.with(|c| store::unfinished_runs(c, &plan.app.name))?;
        let pending = store.with(store::pending_firings)?;
        for run in &interrupted {
            shared.resume_run(run)?;
        }
        for f in pending {
            shared.spawn_firing(f.key);
        }
        // The control loop starts from the restored values (see `ControlLoop::new`).
        let loop_state = ControlLoop::new(shared.clone(), policies, every, &board, now);
        tokio::spawn(loop_state.run(rx));
        // The backend learns where to report, then gets every service's desired state again
        // (what it served before a restart comes back from the store).
        let sink: Arc<dyn SignalSink> = shared.clone();
        shared.backend.attach(BackendHost {
            plan: plan.clone(),
            store: store.clone(),
            state_dir: cfg.state_dir.clone(),
            signals: Arc::downgrade(&sink),
            shutdown: shared.shutdown.subscribe(),
            serve_addrs: cfg.serve_addrs.clone(),
        });
        drop(sink);
        shared.reapply_services()?;
        for (i, t) in plan.triggers.iter().enumerate() {
            if let TriggerSourcePlan::Schedule { cron } = &t.on {
                if cfg.external_schedules.contains(&t.name) {
                    continue;
                }
                match sflow_compiler::values::check_cron(cron) {
                    Ok(schedule) => {
                        tokio::spawn(triggers::schedule_loop(shared.clone(), i, schedule));
                    }
                    Err(e) => tracing::warn!(trigger = t.name, "invalid schedule: {}", e.message),
                }
            }
        }
        Ok(Engine { s: shared })
    }

    /// The shared state (for the control API).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.s
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.s.plan
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.s.store
    }

    /// Starts a run of `workflow` with params given as text (`--param`, the control API).
    pub fn run_workflow(
        &self,
        workflow: &str,
        params: &BTreeMap<String, String>,
        origin: &str,
    ) -> Result<i64> {
        let wf = self
            .s
            .plan
            .workflow(workflow)
            .ok_or_else(|| self.s.unknown_workflow(workflow))?;
        let mut overrides = BTreeMap::new();
        for (k, v) in params {
            let p = wf.params.iter().find(|p| &p.name == k).ok_or_else(|| {
                Error::Msg(format!(
                    "workflow `{workflow}` has no param `{k}` (its params: {})",
                    wf.params
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            overrides.insert(
                k.clone(),
                value::parse_param(v, &p.ty)
                    .map_err(|e| Error::Msg(format!("param `{k}`: {e}")))?,
            );
        }
        self.s.start_run(workflow, overrides, origin, None)
    }

    /// Waits until run `id` has finished.
    pub async fn wait_run(&self, id: i64) -> Result<RunRow> {
        let mut rx = self.s.runs_finished.subscribe();
        loop {
            rx.borrow_and_update();
            let row = self
                .s
                .store
                .with(|c| store::run(c, id))?
                .ok_or_else(|| Error::Msg(format!("no run {id}")))?;
            if row.status != "running" {
                return Ok(row);
            }
            if rx.changed().await.is_err() {
                return Ok(row);
            }
        }
    }

    /// Waits until nothing is in flight: no run, no firing being performed, no signal change
    /// waiting to be evaluated.
    pub async fn wait_idle(&self) {
        self.s.busy.idle().await;
    }

    /// Waits until the control loop has handled every signal change sent so far and any
    /// `for` window or cooldown due at the clock's current time (tests move a test clock,
    /// then call this).
    pub async fn sync(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.s.tx.send(Msg::Sync(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// How much work is in flight.
    pub fn busy(&self) -> usize {
        self.s.busy.count()
    }

    /// Sets an agent's sensor from plain JSON (checked against the sensor's type).
    pub fn set_sensor(&self, agent: &str, sensor: &str, v: &Json) -> Result<RtValue> {
        self.s.set_sensor(agent, sensor, v)
    }

    /// Sets a service signal (`latency.p95`, `requests`, `errors`) from plain JSON.
    pub fn set_service_signal(&self, service: &str, path: &str, v: &Json) -> Result<RtValue> {
        self.s.set_service_signal(service, path, v)
    }

    /// Fires the trigger registered on webhook `path`; `idempotency` (the request's
    /// `Idempotency-Key`) makes a retried request fire once.
    pub fn webhook(&self, path: &str, idempotency: Option<&str>) -> Result<Option<String>> {
        let Some((i, t)) =
            self.s.plan.triggers.iter().enumerate().find(
                |(_, t)| matches!(&t.on, TriggerSourcePlan::Webhook { path: p } if p == path),
            )
        else {
            return Ok(None);
        };
        let id = match idempotency {
            Some(k) => k.to_string(),
            None => format!(
                "{}-{}",
                self.s.clock.now_ms(),
                self.s.seq.fetch_add(1, Ordering::SeqCst)
            ),
        };
        let key = format!("trigger:{}:webhook:{id}", t.name);
        self.s.fire_trigger(i, &key, json!({ "webhook": path }))?;
        Ok(Some(key))
    }

    /// The runs a firing started (waits up to `wait` for its actions to be performed).
    pub async fn firing_runs(&self, key: &str, wait: Duration) -> Result<(String, Vec<i64>)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let f = self.s.store.with(|c| store::firing(c, key))?;
            let status = f
                .as_ref()
                .map_or_else(|| "unknown".to_string(), |f| f.status.clone());
            if status != "pending" || tokio::time::Instant::now() >= deadline {
                let actions = f.map_or(0, |f| f.actions);
                let mut runs = Vec::new();
                for i in 0..actions {
                    if let Some(r) = self
                        .s
                        .store
                        .with(|c| store::run_by_firing(c, &format!("{key}#{i}")))?
                    {
                        runs.push(r);
                    }
                }
                return Ok((status, runs));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The current signal values (plain JSON).
    pub fn signals(&self) -> BTreeMap<String, Json> {
        self.s
            .board
            .lock()
            .map(|b| b.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            .unwrap_or_default()
    }

    /// Stops: running steps are killed and their runs left to be resumed by the next start.
    pub async fn shutdown(&self) {
        self.s.shutdown.send_replace(true);
        self.s.backend.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.s.busy.idle()).await;
        // The directory is free for the next runtime.
        if let Ok(mut lock) = self.s.lock.lock() {
            lock.take();
        }
    }

    /// A receiver that turns `true` when the engine shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.s.shutdown.subscribe()
    }

    /// The state directory.
    pub fn state_dir(&self) -> &std::path::Path {
        &self.s.cfg.state_dir
    }
}

impl SignalSink for Shared {
    fn set_sensor(&self, agent: &str, sensor: &str, value: &Json) -> Result<RtValue> {
        Shared::set_sensor(self, agent, sensor, value)
    }
    fn set_service_signal(&self, service: &str, path: &str, value: &Json) -> Result<RtValue> {
        Shared::set_service_signal(self, service, path, value)
    }
    fn signal(&self, key: &str) -> Option<RtValue> {
        self.board.lock().ok()?.get(key).cloned()
    }
}

impl Shared {
    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The HTTP client (webhook bindings).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Whether the engine is shutting down.
    pub fn shutdown_receiver(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    fn unknown_workflow(&self, name: &str) -> Error {
        Error::Msg(format!(
            "no workflow `{name}` (the program has: {})",
            self.plan
                .workflows
                .iter()
                .map(|w| w.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// A scope for evaluating action arguments against live signals.
    pub fn scope(&self) -> BoardScope<'_> {
        BoardScope { shared: self }
    }

    /// The `production` alias of a service: (model, previous model).
    pub fn alias(&self, service: &str) -> Result<Option<(i64, Option<i64>)>> {
        self.store.with(|c| store::alias(c, service, "production"))
    }

    /// Hands the backend every service's recorded desired state (on start): the model its
    /// `production` alias points at, and its replicas.
    fn reapply_services(self: &Arc<Self>) -> Result<()> {
        let mut after = After::default();
        for svc in self.store.with(store::services)? {
            if self.plan.service(&svc.name).is_none() {
                continue;
            }
            if let Some((id, _)) = self.alias(&svc.name)? {
                if let Some(m) = self.store.with(|c| store::model(c, id))? {
                    after.services.push(ServiceChange::Serve {
                        service: svc.name.clone(),
                        path: m.path.clone(),
                        model_id: id,
                    });
                }
            }
            after.services.push(ServiceChange::Scale {
                service: svc.name.clone(),
                replicas: svc.replicas,
            });
            // Only a recorded resize: declared resources are in the manifests already, and
            // the local backend reads them when it serves.
            if let Some(resources) = resized_resources(&self.store, &svc.name)? {
                after.services.push(ServiceChange::Resize {
                    service: svc.name.clone(),
                    resources,
                });
            }
        }
        self.after_commit(after);
        Ok(())
    }

    /// The state directory.
    pub fn state_dir(&self) -> &std::path::Path {
        &self.cfg.state_dir
    }

    /// The program's directory (data sources' relative paths).
    pub fn program_dir(&self) -> &std::path::Path {
        &self.program.dir
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The current value of a signal of the board (`checker.picked`, `predictor.model`).
    pub fn board_value(&self, key: &str) -> Option<RtValue> {
        self.board.lock().ok()?.get(key).cloned()
    }

    /// The kv key of a run's extra environment (recorded by [`Shared::start_action_run`]).
    pub fn run_env_key(run: i64) -> String {
        format!("run:{run}:env")
    }

    /// A run's environment: the engine's `step_env`, plus what the action that started it
    /// recorded (an Improver's `SFLOW_INPUT_LABELLED`), also when the run resumes.
    fn run_env(&self, run: i64) -> BTreeMap<String, String> {
        let mut env = self.cfg.step_env.clone();
        if let Ok(Some(Json::Object(extra))) = self
            .store
            .with(|c| store::kv_get(c, &Shared::run_env_key(run)))
        {
            for (k, v) in extra {
                if let Json::String(s) = v {
                    env.insert(k, s);
                }
            }
        }
        env
    }

    /// Starts the run of an agent's action that waits for it (an Improver's retraining): the
    /// run is recorded with the action's key, so performing the action again after a crash
    /// finds it instead of starting another; `env` is added to its steps' environment.
    pub fn start_action_run(
        self: &Arc<Self>,
        workflow: &str,
        origin: &str,
        action_key: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<i64> {
        self.start_action_run_with(workflow, BTreeMap::new(), origin, action_key, env)
    }

    /// [`Shared::start_action_run`] with param overrides (an Improver's tuning trial, keyed
    /// `ACTION#trial-N`).
    pub fn start_action_run_with(
        self: &Arc<Self>,
        workflow: &str,
        overrides: BTreeMap<String, RtValue>,
        origin: &str,
        action_key: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<i64> {
        let (idx, values, rows) = self.prepare_params(workflow, overrides)?;
        let mut after = After::default();
        let env_json = serde_json::to_value(env)?;
        let run_id = self.store.tx(|c| {
            if let Some(existing) = store::run_by_firing(c, action_key)? {
                return Ok(existing);
            }
            let id =
                self.insert_run(c, idx, values, &rows, origin, Some(action_key), &mut after)?;
            store::kv_set(c, &Shared::run_env_key(id), &env_json)?;
            Ok(id)
        })?;
        self.after_commit(after);
        Ok(run_id)
    }

    /// Waits until run `id` has finished; `None` if the engine shuts down first.
    pub async fn wait_run(&self, id: i64) -> Result<Option<RunRow>> {
        let mut rx = self.runs_finished.subscribe();
        let mut shutdown = self.shutdown.subscribe();
        loop {
            rx.borrow_and_update();
            let row = self
                .store
                .with(|c| store::run(c, id))?
                .ok_or_else(|| Error::Msg(format!("no run {id}")))?;
            if row.status != "running" {
                return Ok(Some(row));
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return Ok(None) },
                _ = shutdown.wait_for(|s| *s) => return Ok(None),
            }
        }
    }

    /// A service's recorded state.
    pub fn service_row(&self, service: &str) -> Result<Option<store::ServiceRow>> {
        self.store.with(|c| store::service(c, service))
    }

    /// The resources of one replica of `service`: the latest `resize` (engine state
    /// `kv service:NAME:resources`), else what the program declares (`resources { … }`),
    /// else `None`.
    pub fn service_resources(&self, service: &str) -> Result<Option<Resources>> {
        desired_resources(&self.store, &self.plan, service)
    }

    fn read_signal(&self, s: &Signal) -> Option<RtValue> {
        let (base, path) = base_of(s);
        let board = self.board.lock().ok()?;
        let v = board.get(&base)?;
        if path.is_empty() {
            Some(v.clone())
        } else {
            v.project(&path)
        }
    }

    /// Loads the signal board from the store: recorded sensors and service signals, the
    /// latest step metrics, the latest model of each model output, services' replicas and
    /// production models.
    fn load_board(&self) -> Result<HashMap<String, RtValue>> {
        let mut board = HashMap::new();
        for (k, v, _) in self.store.with(store::signals)? {
            if let Ok(v) = serde_json::from_value::<RtValue>(v) {
                board.insert(k, v);
            }
        }
        for m in self.store.with(store::latest_step_metrics)? {
            if let Ok(v) = serde_json::from_value::<RtValue>(m.value.clone()) {
                board.insert(format!("{}.{}.{}", m.workflow, m.step, m.name), v);
            }
        }
        for w in &self.plan.workflows {
            for s in &w.steps {
                for o in s.outputs.iter().filter(|o| o.ty == PlanType::Model) {
                    let name = format!("{}.{}.{}", w.name, s.name, o.name);
                    if let Some(m) = self
                        .store
                        .with(|c| store::latest_model_of_workflow(c, &name))?
                    {
                        board.insert(name, model_value(&m));
                    }
                }
            }
        }
        for svc in self.store.with(store::services)? {
            board.insert(
                format!("{}.replicas", svc.name),
                RtValue::Int {
                    value: svc.replicas,
                },
            );
            if let Some((id, _)) = self.alias(&svc.name)? {
                if let Some(m) = self.store.with(|c| store::model(c, id))? {
                    let v = self.store.with(|c| served_value(c, &svc.name, &m))?;
                    board.insert(format!("{}.model", svc.name), v);
                }
            }
        }
        if let Ok(mut b) = self.board.lock() {
            b.extend(board.clone());
        }
        Ok(board)
    }

    /// Sets base signals and hands them to the control loop as one change.
    fn set_bases(&self, values: Vec<(String, RtValue)>) {
        if values.len() <= 1 {
            for (k, v) in values {
                self.set_base(k, v);
            }
            return;
        }
        if let Ok(mut b) = self.board.lock() {
            for (k, v) in &values {
                b.insert(k.clone(), v.clone());
            }
        }
        let _ = self.tx.send(Msg::Bases {
            values,
            _busy: self.busy.enter(),
        });
    }

    /// Sets a base signal and hands it to the control loop.
    fn set_base(&self, key: String, value: RtValue) {
        if let Ok(mut b) = self.board.lock() {
            b.insert(key.clone(), value.clone());
        }
        let _ = self.tx.send(Msg::Base {
            key,
            value,
            _busy: self.busy.enter(),
        });
    }

    fn set_sensor(&self, agent: &str, sensor: &str, v: &Json) -> Result<RtValue> {
        let a = self
            .plan
            .agent(agent)
            .ok_or_else(|| Error::Msg(format!("no agent `{agent}`")))?;
        let kind = self
            .plan
            .agent_kind(&a.kind)
            .ok_or_else(|| Error::Msg(format!("unknown kind `{}`", a.kind)))?;
        let decl = kind
            .sensors
            .iter()
            .find(|s| s.name == sensor)
            .ok_or_else(|| {
                Error::Msg(format!(
                    "kind `{}` has no sensor `{sensor}` (its sensors: {})",
                    kind.name,
                    kind.sensors
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let value = value::from_json_typed(v, &decl.ty)
            .map_err(|e| Error::Msg(format!("sensor `{agent}.{sensor}`: {e}")))?;
        let key = format!("{agent}.{sensor}");
        self.store.with(|c| {
            store::set_signal(c, &key, &serde_json::to_value(&value)?, self.clock.now_ms())
        })?;
        self.set_base(key, value.clone());
        Ok(value)
    }

    fn set_service_signal(&self, service: &str, path: &str, v: &Json) -> Result<RtValue> {
        if self.plan.service(service).is_none() {
            return Err(Error::Msg(format!("no service `{service}`")));
        }
        let ty = match path {
            "latency.p50" | "latency.p95" | "latency.p99" => PlanType::Duration,
            "requests" => PlanType::Int,
            "errors" => PlanType::Ratio,
            _ => return Err(Error::Msg(format!("`{path}` is not a service signal that can be set (latency.p50|p95|p99, requests, errors)"))),
        };
        let value = value::from_json_typed(v, &ty)
            .map_err(|e| Error::Msg(format!("`{service}.{path}`: {e}")))?;
        let key = format!("{service}.{path}");
        self.store.with(|c| {
            store::set_signal(c, &key, &serde_json::to_value(&value)?, self.clock.now_ms())
        })?;
        self.set_base(key, value.clone());
        Ok(value)
    }

    /// Resolves a run's params: overrides, then defaults.
    fn prepare_params(
        &self,
        workflow: &str,
        mut overrides: BTreeMap<String, RtValue>,
    ) -> Result<(usize, BTreeMap<String, RtValue>, Vec<ParamRow>)> {
        let idx = self
            .plan
            .workflows
            .iter()
            .position(|w| w.name == workflow)
            .ok_or_else(|| self.unknown_workflow(workflow))?;
        let wf = &self.plan.workflows[idx];
        let mut values = BTreeMap::new();
        let mut rows = Vec::new();
        for p in &wf.params {
            let v = match overrides.remove(&p.name) {
                Some(v) => v,
                None => match &p.default {
                    Some(d) => RtValue::from_plan(d),
                    None => {
                        return Err(Error::Msg(format!(
                            "param `{}` of `{workflow}` has no default: give it (`--param {}=…`)",
                            p.name, p.name
                        )))
                    }
                },
            };
            rows.push(ParamRow {
                name: p.name.clone(),
                ty: value::type_name(&p.ty),
                value: v.to_param_text(),
                json: serde_json::to_value(&v)?,
            });
            values.insert(p.name.clone(), v);
        }
        if let Some(k) = overrides.keys().next() {
            return Err(Error::Msg(format!(
                "workflow `{workflow}` has no param `{k}`"
            )));
        }
        Ok((idx, values, rows))
    }

    /// Starts a run outside any firing (command line, control API).
    fn start_run(
        self: &Arc<Self>,
        workflow: &str,
        overrides: BTreeMap<String, RtValue>,
        origin: &str,
        firing: Option<&str>,
    ) -> Result<i64> {
        let (idx, values, rows) = self.prepare_params(workflow, overrides)?;
        let mut after = After::default();
        let run_id = self
            .store
            .tx(|c| self.insert_run(c, idx, values, &rows, origin, firing, &mut after))?;
        self.after_commit(after);
        Ok(run_id)
    }

    /// Records a run (and its `started` event) inside a transaction.
    #[allow(clippy::too_many_arguments)]
    fn insert_run(
        &self,
        c: &rusqlite::Connection,
        idx: usize,
        values: BTreeMap<String, RtValue>,
        rows: &[ParamRow],
        origin: &str,
        firing: Option<&str>,
        after: &mut After,
    ) -> Result<i64> {
        let now = self.clock.now_ms();
        let wf = &self.plan.workflows[idx];
        let runs_dir = self.cfg.state_dir.join("runs");
        let (run_id, dir) = store::insert_run(
            c,
            &self.plan.app.name,
            &wf.name,
            origin,
            firing,
            rows,
            &runs_dir,
            now,
        )?;
        let experiment = is_experiment(origin);
        if !experiment {
            after.firings.extend(self.emit_event(
                c,
                &wf.name,
                "started",
                &json!({ "run": run_id, "origin": origin }),
            )?);
        }
        after.runs.push(Launch {
            run_id,
            dir,
            workflow: idx,
            params: values,
            resume: false,
            experiment,
        });
        Ok(run_id)
    }

    /// Records an event and the `on` trigger firings it causes (one per trigger, keyed by the
    /// event), inside a transaction; returns the firings to perform after the commit.
    fn emit_event(
        &self,
        c: &rusqlite::Connection,
        subject: &str,
        name: &str,
        payload: &Json,
    ) -> Result<Vec<String>> {
        let now = self.clock.now_ms();
        let id = store::insert_event(c, subject, name, payload, now)?;
        let mut keys = Vec::new();
        for t in &self.plan.triggers {
            if let TriggerSourcePlan::On { target, event, .. } = &t.on {
                if target == subject && event == name {
                    let key = format!("trigger:{}:event:{id}", t.name);
                    let reads = json!({ "event": format!("{subject}.{name}"), "eventId": id, "payload": payload });
                    if store::insert_firing(c, &key, "trigger", &t.name, &reads, 1, now)? {
                        keys.push(key);
                    }
                }
            }
        }
        Ok(keys)
    }

    fn resume_run(self: &Arc<Self>, run: &RunRow) -> Result<()> {
        self.backend.reap_interrupted(&self.store, run)?;
        let Some(idx) = self
            .plan
            .workflows
            .iter()
            .position(|w| w.name == run.workflow)
        else {
            let now = self.clock.now_ms();
            self.store.with(|c| {
                store::finish_run(
                    c,
                    run.id,
                    "failed",
                    Some("interrupted, and its workflow is no longer in the program"),
                    now,
                )
            })?;
            return Ok(());
        };
        let mut params = BTreeMap::new();
        for p in self.store.with(|c| store::params_of(c, run.id))? {
            if let Ok(v) = serde_json::from_value::<RtValue>(p.json) {
                params.insert(p.name, v);
            }
        }
        self.store.with(|c| store::mark_resumed(c, run.id))?;
        tracing::info!(
            run = run.id,
            workflow = run.workflow,
            "resuming a run interrupted by a stop"
        );
        self.launch(Launch {
            run_id: run.id,
            dir: run.dir.clone(),
            workflow: idx,
            params,
            resume: true,
            experiment: is_experiment(&run.origin),
        });
        Ok(())
    }

    fn after_commit(self: &Arc<Self>, after: After) {
        self.set_bases(after.bases);
        for l in after.runs {
            self.launch(l);
        }
        for f in after.firings {
            self.spawn_firing(f);
        }
        for change in after.services {
            let backend = self.backend.clone();
            let guard = self.busy.enter();
            tokio::spawn(async move {
                if let Err(e) = backend.apply_service(change.clone()).await {
                    tracing::warn!(?change, "the backend could not apply a service change: {e}");
                }
                drop(guard);
            });
        }
    }

    fn launch(self: &Arc<Self>, l: Launch) {
        if let Ok(mut active) = self.active_runs.lock() {
            if !active.insert(l.run_id) {
                return;
            }
        }
        let guard = self.busy.enter();
        let me = self.clone();
        tokio::spawn(async move {
            let id = l.run_id;
            me.drive_run(l).await;
            if let Ok(mut active) = me.active_runs.lock() {
                active.remove(&id);
            }
            drop(guard);
        });
    }

    async fn drive_run(self: &Arc<Self>, l: Launch) {
        let Some(wf) = self.plan.workflows.get(l.workflow) else {
            return;
        };
        let wf_name = wf.name.clone();
        let hooks: Arc<dyn crate::executor::StepHooks> = Arc::new(Hooks {
            shared: Arc::downgrade(self),
            workflow: wf_name.clone(),
            experiment: l.experiment,
        });
        let ctx = RunContext {
            store: self.store.clone(),
            plan: self.plan.clone(),
            workflow: l.workflow,
            run_id: l.run_id,
            run_dir: PathBuf::from(&l.dir),
            params: l.params,
            program_dir: self.program.dir.clone(),
            self_exe: self.cfg.self_exe.clone(),
            extra_env: self.run_env(l.run_id),
            resume: l.resume,
            progress: self.cfg.progress.clone(),
            clock: self.clock.clone(),
            shutdown: self.shutdown.subscribe(),
            hooks: Some(hooks),
        };
        let outcome = self.backend.run_workflow(ctx).await;
        let (status, error) = match &outcome.status {
            RunStatus::Interrupted => return,
            RunStatus::Succeeded => ("succeeded", None),
            RunStatus::Failed(e) => ("failed", Some(e.clone())),
        };
        let mut after = After::default();
        let committed = self.store.tx(|c| {
            let now = self.clock.now_ms();
            store::finish_run(c, l.run_id, status, error.as_deref(), now)?;
            if l.experiment {
                return Ok(());
            }
            after.firings.extend(self.emit_event(
                c,
                &wf_name,
                status,
                &json!({ "run": l.run_id, "error": error }),
            )?);
            if status == "succeeded" {
                self.first_deployments(c, &wf_name, &outcome.models, &mut after)?;
            }
            Ok(())
        });
        if let Err(e) = committed {
            tracing::error!(run = l.run_id, "cannot record the end of the run: {e}");
        }
        self.cfg
            .progress
            .run_finished(l.run_id, &wf_name, status, error.as_deref());
        self.after_commit(after);
        self.runs_finished.send_modify(|n| *n += 1);
    }

    /// A service starts serving its model output once a run produced it (until then it
    /// waits); after that only a Planner changes what it serves.
    fn first_deployments(
        &self,
        c: &rusqlite::Connection,
        workflow: &str,
        models: &[NewModel],
        after: &mut After,
    ) -> Result<()> {
        for svc in &self.plan.services {
            if svc.model.workflow != workflow || store::alias(c, &svc.name, "production")?.is_some()
            {
                continue;
            }
            let name = format!(
                "{}.{}.{}",
                svc.model.workflow, svc.model.step, svc.model.output
            );
            let Some(m) = models.iter().find(|m| m.name == name) else {
                continue;
            };
            store::set_alias(c, &svc.name, "production", m.id, None, self.clock.now_ms())?;
            if let Some(row) = store::model(c, m.id)? {
                after.bases.push((
                    format!("{}.model", svc.name),
                    served_value(c, &svc.name, &row)?,
                ));
                after.services.push(ServiceChange::Serve {
                    service: svc.name.clone(),
                    path: row.path.clone(),
                    model_id: m.id,
                });
            }
        }
        Ok(())
    }

    /// Records a trigger firing (once per key) and performs it.
    pub fn fire_trigger(self: &Arc<Self>, trigger: usize, key: &str, reads: Json) -> Result<bool> {
        let Some(t) = self.plan.triggers.get(trigger) else {
            return Ok(false);
        };
        let now = self.clock.now_ms();
        let new = self
            .store
            .with(|c| store::insert_firing(c, key, "trigger", &t.name, &reads, 1, now))?;
        if new {
            self.spawn_firing(key.to_string());
        }
        Ok(new)
    }

    /// Performs a recorded firing in a task (at most one task per firing).
    pub fn spawn_firing(self: &Arc<Self>, key: String) {
        if let Ok(mut f) = self.in_flight.lock() {
            if !f.insert(key.clone()) {
                return;
            }
        }
        let guard = self.busy.enter();
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.perform_firing(&key).await {
                tracing::error!(firing = key, "cannot perform the firing: {e}");
            }
            if let Ok(mut f) = me.in_flight.lock() {
                f.remove(&key);
            }
            drop(guard);
        });
    }

    fn actions_of(&self, source: &str, name: &str) -> Option<Vec<ActionPlan>> {
        match source {
            "trigger" => self
                .plan
                .triggers
                .iter()
                .find(|t| t.name == name)
                .map(|t| vec![t.action.clone()]),
            "policy" => self
                .plan
                .policies
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.then.clone()),
            _ => None,
        }
    }

    async fn perform_firing(self: &Arc<Self>, key: &str) -> Result<()> {
        if let Ok(ms) = std::env::var("SFLOW_TEST_HOLD_ACTIONS_MS") {
            // Fault injection for the crash tests: widen the window between recording a
            // firing and acting on it.
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
        }
        let Some(f) = self.store.with(|c| store::firing(c, key))? else {
            return Ok(());
        };
        if f.status != "pending" {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let Some(actions) = self.actions_of(&f.source, &f.name) else {
            let why = format!("the {} `{}` is no longer in the program", f.source, f.name);
            self.store.tx(|c| {
                store::insert_decision(
                    c,
                    &f.source,
                    &f.name,
                    Some(key),
                    &f.reads,
                    "-",
                    "failed",
                    &why,
                    now,
                )?;
                store::advance_firing(c, key, f.actions, "failed", now)
            })?;
            return Ok(());
        };
        let total = actions.len() as i64;
        for i in f.next_action.max(0)..total {
            let Some(action) = actions.get(i as usize) else {
                break;
            };
            let action_key = format!("{key}#{i}");
            let described = describe_action(action);
            let decided = match action {
                ActionPlan::Run { workflow, with } => {
                    let scope = self.scope();
                    let mut overrides = BTreeMap::new();
                    let mut err = None;
                    for (k, e) in with {
                        match crate::eval::eval(e, &scope) {
                            Ok(v) => {
                                overrides.insert(k.clone(), v);
                            }
                            Err(m) => err = Some(format!("`with {{ {k} = … }}`: {m}")),
                        }
                    }
                    match err {
                        Some(e) => Err(e),
                        None => Ok(Effect::StartRun {
                            workflow: workflow.clone(),
                            overrides,
                            origin: format!("{}:{}", f.source, f.name),
                        }),
                    }
                }
                ActionPlan::Call {
                    agent,
                    action,
                    args,
                } => agents::call(self, agent, action, args, &action_key).await,
            };
            let last = i + 1 == total;
            let result = match decided {
                Ok(effect) => self.commit(&f, i, last, &action_key, &described, effect),
                Err(e) if *self.shutdown.borrow() => {
                    // Stopped while acting (an Improver waiting for its run or for labels):
                    // nothing was recorded, so the firing stays pending and the next start
                    // performs this action again.
                    tracing::info!(
                        firing = key,
                        action = described,
                        "left pending by the shutdown: {e}"
                    );
                    return Ok(());
                }
                Err(e) => Err(Error::Msg(e)),
            };
            if let Err(e) = result {
                let msg = e.to_string();
                tracing::warn!(firing = key, action = described, "action failed: {msg}");
                let now = self.clock.now_ms();
                self.store.tx(|c| {
                    store::insert_decision(
                        c,
                        &f.source,
                        &f.name,
                        Some(key),
                        &f.reads,
                        &described,
                        "failed",
                        &msg,
                        now,
                    )?;
                    for later in actions.iter().skip(i as usize + 1) {
                        store::insert_decision(
                            c,
                            &f.source,
                            &f.name,
                            Some(key),
                            &f.reads,
                            &describe_action(later),
                            "skipped",
                            "an earlier action failed",
                            now,
                        )?;
                    }
                    store::advance_firing(c, key, total, "failed", now)
                })?;
                return Ok(());
            }
        }
        if total == 0 {
            self.store
                .with(|c| store::advance_firing(c, key, 0, "done", now))?;
        }
        Ok(())
    }

    /// Applies an action's effect and records it done, in one transaction.
    fn commit(
        self: &Arc<Self>,
        f: &store::FiringRow,
        i: i64,
        last: bool,
        action_key: &str,
        described: &str,
        effect: Effect,
    ) -> Result<()> {
        let mut after = After::default();
        // Validate a run's params before the transaction (a bad override fails the action).
        let prepared = match &effect {
            Effect::StartRun {
                workflow,
                overrides,
                ..
            } => Some(self.prepare_params(workflow, overrides.clone())?),
            _ => None,
        };
        self.store.tx(|c| {
            let now = self.clock.now_ms();
            let result = match effect {
                Effect::StartRun { origin, .. } => {
                    let Some((idx, values, rows)) = prepared else { return Err(Error::Msg("internal: params not prepared".into())) };
                    let run_id = match store::run_by_firing(c, action_key)? {
                        Some(existing) => existing,
                        None => self.insert_run(c, idx, values, &rows, &origin, Some(action_key), &mut after)?,
                    };
                    format!("started run {run_id}")
                }
                Effect::Alias { service, model_id, previous, event } => {
                    let m = store::model(c, model_id)?.ok_or_else(|| Error::Msg(format!("model {model_id} is not in the registry")))?;
                    // Rolling back keeps the chain: the model rolled back from becomes the previous one.
                    store::set_alias(c, &service, "production", model_id, previous, now)?;
                    let payload = json!({ "model": m.name, "version": m.version, "modelId": model_id, "previousModelId": previous });
                    after.firings.extend(self.emit_event(c, &service, event, &payload)?);
                    after.bases.push((format!("{service}.model"), served_value(c, &service, &m)?));
                    after.services.push(ServiceChange::Serve { service: service.clone(), path: m.path.clone(), model_id });
                    format!("{service} now serves {} v{} ({event})", m.name, m.version)
                }
                Effect::Scale { service, from, replicas } => {
                    store::set_replicas(c, &service, replicas, now)?;
                    after.firings.extend(self.emit_event(c, &service, "scaled", &json!({ "from": from, "to": replicas }))?);
                    after.bases.push((format!("{service}.replicas"), RtValue::Int { value: replicas }));
                    after.services.push(ServiceChange::Scale { service: service.clone(), replicas });
                    format!("{service} scaled from {from} to {replicas} replicas")
                }
                Effect::Resize { service, from, to } => {
                    store::kv_set(c, &resources_key(&service), &serde_json::to_value(to)?)?;
                    after.firings.extend(self.emit_event(c, &service, "resized", &json!({ "from": from, "to": to }))?);
                    after.services.push(ServiceChange::Resize { service: service.clone(), resources: to });
                    format!("{service} resized from {} to {} per replica", from.map_or_else(|| "the defaults".to_string(), |f| f.describe()), to.describe())
                }
                Effect::Publish { agent, action, args } => {
                    let id = store::insert_agent_action(c, &agent, &action, &args, Some(action_key), now)?;
                    format!("published as action event {id} for an external `{agent}`")
                }
                Effect::Nothing { result } => result,
                Effect::Signals { set, kv, events, refresh_services, result, hold } => {
                    for (k, v) in &kv {
                        store::kv_set(c, k, v)?;
                    }
                    for (k, v) in set {
                        store::set_signal(c, &k, &serde_json::to_value(&v)?, now)?;
                        after.bases.push((k, v));
                    }
                    for (subject, name, payload) in &events {
                        after.firings.extend(self.emit_event(c, subject, name, payload)?);
                    }
                    for svc in refresh_services {
                        if let Some((id, _)) = store::alias(c, &svc, "production")? {
                            if let Some(m) = store::model(c, id)? {
                                after.bases.push((format!("{svc}.model"), served_value(c, &svc, &m)?));
                            }
                        }
                    }
                    // Released once the record is written (the commit follows in this
                    // transaction, before any other action of the agent can write its own).
                    drop(hold);
                    result
                }
            };
            store::insert_decision(c, &f.source, &f.name, Some(&f.key), &f.reads, described, "done", &result, now)?;
            store::advance_firing(c, &f.key, i + 1, if last { "done" } else { "pending" }, now)?;
            Ok(())
        })?;
        self.after_commit(after);
        Ok(())
    }

    /// Records a policy verdict: a firing to perform, or a skipped firing in the audit log.
    fn record_verdict(self: &Arc<Self>, v: &Verdict, state: Option<&PolicyState>) -> Result<()> {
        let Some(p) = self.plan.policies.get(v.policy) else {
            return Ok(());
        };
        let reads = Json::Object(
            v.reads
                .iter()
                .map(|(k, s)| (k.clone(), s.to_json()))
                .collect::<Map<String, Json>>(),
        );
        let state_json = serde_json::to_value(state.cloned().unwrap_or_default())?;
        match &v.kind {
            VerdictKind::Fire => {
                let key = format!(
                    "policy:{}:{}:{}",
                    p.name,
                    format_utc(v.at),
                    self.seq.fetch_add(1, Ordering::SeqCst)
                );
                self.store.tx(|c| {
                    store::insert_firing(
                        c,
                        &key,
                        "policy",
                        &p.name,
                        &reads,
                        p.then.len() as i64,
                        v.at,
                    )?;
                    store::kv_set(c, &format!("policy:{}", p.name), &state_json)
                })?;
                tracing::info!(policy = p.name, firing = key, "policy fired");
                self.spawn_firing(key);
            }
            VerdictKind::Skip(why) => {
                self.store.tx(|c| {
                    let actions = p
                        .then
                        .iter()
                        .map(describe_action)
                        .collect::<Vec<_>>()
                        .join(", ");
                    store::insert_decision(
                        c, "policy", &p.name, None, &reads, &actions, "skipped", why, v.at,
                    )?;
                    store::kv_set(c, &format!("policy:{}", p.name), &state_json)
                })?;
                tracing::info!(policy = p.name, "policy firing skipped: {why}");
            }
        }
        Ok(())
    }
}

/// Reads signals from the engine's board.
pub struct BoardScope<'a> {
    shared: &'a Shared,
}

impl Scope for BoardScope<'_> {
    fn param(&self, _: &str) -> Option<RtValue> {
        None
    }
    fn signal(&self, s: &Signal) -> Option<RtValue> {
        self.shared.read_signal(s)
    }
    fn app(&self) -> Option<&AppPlan> {
        Some(&self.shared.plan.app)
    }
}

struct Hooks {
    shared: std::sync::Weak<Shared>,
    workflow: String,
    /// The run is a tuning trial: its metrics and models move no signal ([`is_experiment`]).
    experiment: bool,
}

impl crate::executor::StepHooks for Hooks {
    fn step_succeeded(&self, step: &str, metrics: &[(String, RtValue)], models: &[NewModel]) {
        if self.experiment {
            return;
        }
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        for (name, v) in metrics {
            shared.set_base(format!("{}.{step}.{name}", self.workflow), v.clone());
        }
        for m in models {
            if let Ok(Some(row)) = shared.store.with(|c| store::model(c, m.id)) {
                shared.set_base(m.name.clone(), model_value(&row));
            }
        }
    }
}

/// `run training with {epochs = 10}`, `planner.scale(…)`.
pub fn describe_action(a: &ActionPlan) -> String {
    match a {
        ActionPlan::Run { workflow, with } if with.is_empty() => format!("run {workflow}"),
        ActionPlan::Run { workflow, with } => format!(
            "run {workflow} with {{{}}}",
            with.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        ActionPlan::Call { agent, action, .. } => format!("{agent}.{action}(…)"),
    }
}

/// The control loop: owns the policy engine and the `every` counters; evaluates policies when
/// the signals they read change and when a `for` window or cooldown ends.
struct ControlLoop {
    shared: Arc<Shared>,
    policies: PolicyEngine,
    derived: HashMap<String, Vec<(u32, Vec<String>)>>,
    every: HashMap<String, i64>,
    initial: Vec<Verdict>,
}

impl ControlLoop {
    fn new(
        shared: Arc<Shared>,
        mut policies: PolicyEngine,
        every: HashMap<String, i64>,
        board: &HashMap<String, RtValue>,
        now: Millis,
    ) -> ControlLoop {
        let mut derived: HashMap<String, Vec<(u32, Vec<String>)>> = HashMap::new();
        for (slot, s) in policies.signals().iter().enumerate() {
            let (base, path) = base_of(s);
            derived.entry(base).or_default().push((slot as u32, path));
        }
        for (key, value) in board {
            if let Some(slots) = derived.get(key) {
                for (slot, path) in slots {
                    let v = if path.is_empty() {
                        Some(value.clone())
                    } else {
                        value.project(path)
                    };
                    policies.preset(
                        *slot,
                        v.as_ref().map_or(Scalar::Missing, Scalar::from_value),
                    );
                }
            }
        }
        // Evaluate once with every restored value: a policy that fired before the stop stays
        // disarmed or cooling down (its state was restored), and one whose condition became
        // true just before a crash, without its firing being recorded, fires now.
        let mut initial = Vec::new();
        policies.tick(now, &mut initial);
        let mut me = ControlLoop {
            shared,
            policies,
            derived,
            every,
            initial,
        };
        // The same for `every` counters whose growth was recorded but not yet acted on.
        for (key, value) in board {
            me.every_triggers(key, value);
        }
        me
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut shutdown = self.shared.shutdown.subscribe();
        let mut out = std::mem::take(&mut self.initial);
        self.settle(&mut out);
        loop {
            let sleep = match self.policies.next_deadline() {
                Some(d) => self.shared.clock.sleep_until(d),
                None => Box::pin(std::future::pending()),
            };
            tokio::select! {
                msg = rx.recv() => match msg {
                    None => return,
                    Some(Msg::Base { key, value, _busy }) => {
                        let now = self.shared.clock.now_ms();
                        self.every_triggers(&key, &value);
                        if let Some(slots) = self.derived.get(&key) {
                            for (slot, path) in slots {
                                let v = if path.is_empty() { Some(value.clone()) } else { value.project(path) };
                                self.policies.set(*slot, v.as_ref().map_or(Scalar::Missing, Scalar::from_value), now, &mut out);
                            }
                        }
                        self.settle(&mut out);
                    }
                    Some(Msg::Bases { values, _busy }) => {
                        let now = self.shared.clock.now_ms();
                        let mut slots = Vec::new();
                        for (key, value) in &values {
                            self.every_triggers(key, value);
                            for (slot, path) in self.derived.get(key).into_iter().flatten() {
                                let v = if path.is_empty() { Some(value.clone()) } else { value.project(path) };
                                slots.push((*slot, v.as_ref().map_or(Scalar::Missing, Scalar::from_value)));
                            }
                        }
                        self.policies.set_many(slots, now, &mut out);
                        self.settle(&mut out);
                    }
                    Some(Msg::Sync(reply)) => {
                        let now = self.shared.clock.now_ms();
                        if self.policies.next_deadline().is_some_and(|d| d <= now) {
                            self.policies.tick(now, &mut out);
                            self.settle(&mut out);
                        }
                        let _ = reply.send(());
                    }
                },
                () = sleep => {
                    let now = self.shared.clock.now_ms();
                    self.policies.tick(now, &mut out);
                    self.settle(&mut out);
                }
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }

    fn settle(&mut self, out: &mut Vec<Verdict>) {
        for v in out.drain(..) {
            if let Err(e) = self
                .shared
                .record_verdict(&v, self.policies.state(v.policy))
            {
                tracing::error!(
                    policy = self.policies.name(v.policy),
                    "cannot record a policy decision: {e}"
                );
            }
        }
        for p in self.policies.take_dirty() {
            if let (Some(plan), Some(state)) =
                (self.shared.plan.policies.get(p), self.policies.state(p))
            {
                let key = format!("policy:{}", plan.name);
                let _ = serde_json::to_value(state)
                    .map_err(Error::from)
                    .and_then(|j| self.shared.store.with(|c| store::kv_set(c, &key, &j)));
            }
        }
    }

    /// `every N agent.sensor`: fires once each time the counter has grown by N since the
    /// trigger last fired.
    fn every_triggers(&mut self, key: &str, value: &RtValue) {
        let RtValue::Int { value: v } = value else {
            return;
        };
        for (i, t) in self.shared.plan.triggers.iter().enumerate() {
            let TriggerSourcePlan::Every {
                count,
                agent,
                sensor,
            } = &t.on
            else {
                continue;
            };
            if format!("{agent}.{sensor}") != key {
                continue;
            }
            let base = self.every.get(&t.name).copied().unwrap_or(0);
            if *v < base {
                // The counter was reset: count from here.
                self.every.insert(t.name.clone(), *v);
                continue;
            }
            if (*v - base) as u64 >= *count {
                let fkey = format!("trigger:{}:every:{v}", t.name);
                let reads = json!({ key: v, "baseline": base });
                let name = t.name.clone();
                let r = self.shared.store.tx(|c| {
                    let new = store::insert_firing(
                        c,
                        &fkey,
                        "trigger",
                        &name,
                        &reads,
                        1,
                        self.shared.clock.now_ms(),
                    )?;
                    store::kv_set(c, &format!("trigger:{name}:baseline"), &json!(v))?;
                    Ok(new)
                });
                self.every.insert(t.name.clone(), *v);
                match r {
                    Ok(true) => self.shared.spawn_firing(fkey),
                    Ok(false) => {}
                    Err(e) => tracing::error!(trigger = t.name, "cannot record a firing: {e}"),
                }
                let _ = i;
            }
        }
    }
}

/// The resources of one replica of `service` (see [`Shared::service_resources`]).
pub fn desired_resources(store: &Store, plan: &Plan, service: &str) -> Result<Option<Resources>> {
    if let Some(r) = resized_resources(store, service)? {
        return Ok(Some(r));
    }
    Ok(plan.service(service).and_then(|s| {
        let r = Resources {
            cpu_millis: s.resources.cpu_millis,
            memory_bytes: s.resources.memory_bytes,
        };
        (r != Resources::default()).then_some(r)
    }))
}

/// The resources the Planner's latest `resize` of `service` set, if any.
pub fn resized_resources(store: &Store, service: &str) -> Result<Option<Resources>> {
    let key = resources_key(service);
    Ok(store
        .with(|c| store::kv_get(c, &key))?
        .and_then(|v| serde_json::from_value::<Resources>(v).ok()))
}

/// The `kv` key of a service's resources set by the Planner's `resize`.
pub fn resources_key(service: &str) -> String {
    format!("service:{service}:resources")
}
