//! The mirror: copies what the store records into an MLflow tracking server
//! (`app { tracking = mlflow("…") }`), through MLflow's REST API.
//!
//! The store stays the source of truth and is the outbox: the mirror never sits in the path of
//! a run or an agent. It is a task that reads the store and compares it with its own record of
//! what each server already has (`mlflow_map`, and a cursor over `metrics` in `kv`), then sends
//! the difference:
//!
//! | local | in MLflow |
//! | --- | --- |
//! | a workflow | the experiment `APP.WORKFLOW` |
//! | a run, its params | a run (`WORKFLOW-ID`) with the params; status and end time as it ends |
//! | a step attempt | a nested run (`mlflow.parentRunId`) named after the step; status as it ends |
//! | metric points | `log-batch`es of at most 1000 points (step = the point's position in the report) |
//! | artifacts | tags `sflow.artifact.NAME` (location) and `sflow.artifact.NAME.sha256` |
//! | source positions | tags `sflow.source` (`file:line:column`) on runs and nested runs |
//! | a service | the registered model `APP.SERVICE` |
//! | each model version it may serve | a model version (source `runs:/STEP_RUN/OUTPUT`, tags with the local path and digest) |
//! | the service's `production` alias | the registered model's `production` alias |
//!
//! When the server is down or failing, a pass stops at the first failed call and the next one
//! starts again (backing off up to 30 s); since the differences are computed from the store,
//! nothing is lost. Nothing is sent twice either: a create that may have reached the server
//! before a failure (or a crash) is recorded as in flight first and looked up by its
//! `sflow.key` tag before it is tried again; metrics carry their store timestamp and position,
//! and MLflow ignores a point it already has; params, tags, statuses and aliases are
//! idempotent. A call MLflow refuses outright (a 4xx) is logged and skipped, so one bad value
//! cannot stall the mirror.

use super::client::{Client, MetricPoint, MlResult, MlflowError};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::{self, Store};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;
use sflow_compiler::lower::plan::{Plan, Tracking};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// MLflow's limit on the metrics of one `log-batch`.
const METRICS_PER_BATCH: usize = 1000;
/// MLflow's limit on the params (and on the tags) of one `log-batch`.
const PARAMS_PER_BATCH: usize = 100;
/// How often the store is looked at for something new.
const POLL: Duration = Duration::from_millis(250);
/// The longest wait between tries while the server is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Counters of what the mirror did (for logs, tests and benchmarks).
#[derive(Debug, Default)]
pub struct Stats {
    /// Successful calls to MLflow.
    pub calls: AtomicU64,
    /// Metric points sent.
    pub points: AtomicU64,
    /// Calls that failed (and will be tried again, or were refused and skipped).
    pub failures: AtomicU64,
}

/// A running mirror.
pub struct Mirror {
    inner: Arc<Inner>,
    pending: watch::Receiver<bool>,
}

struct Inner {
    store: Arc<Store>,
    plan: Arc<Plan>,
    client: Client,
    target: String,
    clock: Arc<dyn Clock>,
    stats: Stats,
}

/// The MLflow server a plan mirrors into, if any.
pub fn target(plan: &Plan) -> Option<&str> {
    match &plan.app.tracking {
        Some(Tracking::Mlflow { uri }) => Some(uri),
        None => None,
    }
}

impl Mirror {
    /// Starts mirroring what `engine` records into its app's tracking server (`None` when the
    /// app has none), until the engine shuts down.
    pub fn start_for(engine: &crate::engine::Engine) -> Result<Option<Mirror>> {
        Mirror::start(
            engine.store().clone(),
            Arc::new(engine.plan().clone()),
            engine.shared().clock().clone(),
            engine.shutdown_signal(),
        )
    }

    /// Starts mirroring the store of `plan`'s app into its tracking server (`None` when the
    /// app has none). The task ends when `shutdown` becomes true.
    pub fn start(
        store: Arc<Store>,
        plan: Arc<Plan>,
        clock: Arc<dyn Clock>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Option<Mirror>> {
        let Some(uri) = target(&plan).map(str::to_string) else {
            return Ok(None);
        };
        let client =
            Client::new(&uri, Duration::from_secs(10)).map_err(|e| Error::Msg(e.to_string()))?;
        let inner = Arc::new(Inner {
            store,
            plan,
            client,
            target: uri,
            clock,
            stats: Stats::default(),
        });
        let (tx, rx) = watch::channel(true);
        tokio::spawn(run(inner.clone(), tx, shutdown));
        Ok(Some(Mirror { inner, pending: rx }))
    }

    /// What the mirror did so far.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// Waits until a pass found nothing left to send, or `timeout` passes; returns whether the
    /// mirror caught up. (What is left is sent by the next runtime on this store.)
    pub async fn flush(&self, timeout: Duration) -> bool {
        let mut rx = self.pending.clone();
        // Let a pass start after whatever was just committed.
        tokio::time::sleep(POLL * 2).await;
        let caught_up = tokio::time::timeout(timeout, async {
            rx.wait_for(|pending| !*pending).await.is_ok()
        })
        .await;
        matches!(caught_up, Ok(true))
    }
}

async fn run(inner: Arc<Inner>, pending: watch::Sender<bool>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::ZERO;
    let mut warned = false;
    let mut experiments: HashMap<String, String> = HashMap::new();
    loop {
        if *shutdown.borrow() {
            return;
        }
        match inner.pass(&mut experiments).await {
            Ok(work) => {
                if warned {
                    tracing::info!(
                        target = inner.target,
                        "MLflow is reachable again; the mirror is catching up"
                    );
                    warned = false;
                }
                backoff = Duration::ZERO;
                pending.send_replace(work);
                if work {
                    continue;
                }
            }
            Err(e) => {
                inner.stats.failures.fetch_add(1, Ordering::Relaxed);
                pending.send_replace(true);
                if !warned {
                    tracing::warn!(target = inner.target, "MLflow mirror: {e}; retrying (nothing is lost: the store keeps everything)");
                    warned = true;
                }
                backoff = (backoff * 2).clamp(Duration::from_millis(500), MAX_BACKOFF);
            }
        }
        let wait = if backoff.is_zero() { POLL } else { backoff };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// A failure that ends a pass (the server is unreachable or failing, or the store failed).
#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error("{0}")]
    Mlflow(#[from] MlflowError),
    #[error("{0}")]
    Store(#[from] Error),
}

type PassResult<T> = std::result::Result<T, PassError>;

fn mlflow_status(status: &str) -> &'static str {
    match status {
        "running" => "RUNNING",
        "succeeded" | "cached" => "FINISHED",
        "failed" => "FAILED",
        _ => "KILLED",
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

struct RunToSync {
    id: i64,
    workflow: String,
    status: String,
    origin: String,
    created_ms: i64,
    finished_ms: Option<i64>,
    error: Option<String>,
    remote: Option<String>,
    state: String,
    mapped: bool,
}

struct StepToSync {
    id: i64,
    run_id: i64,
    workflow: String,
    step: String,
    attempt: i64,
    status: String,
    started_ms: i64,
    finished_ms: Option<i64>,
    error: Option<String>,
    remote: Option<String>,
    mapped: bool,
    parent: String,
}

impl Inner {
    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    fn map_get(&self, kind: &str, local: &str) -> Result<Option<(Option<String>, String)>> {
        self.store.with(|c| {
            Ok(c.query_row(
                "SELECT remote, state FROM mlflow_map WHERE target = ?1 AND kind = ?2 AND local = ?3",
                params![self.target, kind, local],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
        })
    }

    fn map_set(&self, kind: &str, local: &str, remote: Option<&str>, state: &str) -> Result<()> {
        let now = self.now();
        self.store.with(|c| {
            c.prepare_cached(
                "INSERT INTO mlflow_map (target, kind, local, remote, state, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(target, kind, local) DO UPDATE SET remote = ?4, state = ?5, updated_ms = ?6",
            )?
            .execute(params![self.target, kind, local, remote, state, now])?;
            Ok(())
        })
    }

    /// Skips what MLflow refuses outright (logged), so that one bad value cannot stall the
    /// mirror; anything else ends the pass.
    fn refused<T>(&self, what: &str, r: MlResult<T>) -> PassResult<Option<T>> {
        match r {
            Ok(v) => {
                self.stats.calls.fetch_add(1, Ordering::Relaxed);
                Ok(Some(v))
            }
            Err(e) if !e.is_transient() => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target = self.target, "MLflow refused {what}: {e} (skipped)");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One pass: sends what the server lacks. Returns whether it sent anything (then another
    /// pass follows at once).
    async fn pass(&self, experiments: &mut HashMap<String, String>) -> PassResult<bool> {
        let mut work = false;
        work |= self.sync_runs(experiments).await?;
        work |= self.sync_steps(experiments).await?;
        work |= self.sync_metrics().await?;
        work |= self.sync_registry().await?;
        Ok(work)
    }

    async fn experiment(
        &self,
        experiments: &mut HashMap<String, String>,
        workflow: &str,
    ) -> PassResult<String> {
        if let Some(id) = experiments.get(workflow) {
            return Ok(id.clone());
        }
        let name = format!("{}.{workflow}", self.plan.app.name);
        let tags = vec![
            ("sflow.app".to_string(), self.plan.app.name.clone()),
            ("sflow.workflow".to_string(), workflow.to_string()),
        ];
        let id = self.client.ensure_experiment(&name, &tags).await?;
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        if id.is_empty() {
            return Err(Error::Msg(format!("MLflow gave no id for experiment `{name}`")).into());
        }
        self.map_set("experiment", workflow, Some(&id), "")?;
        experiments.insert(workflow.to_string(), id.clone());
        Ok(id)
    }

    /// Creates a run unless a create may already have reached the server (then finds it by its
    /// `sflow.key` tag). Returns its id, or `None` if MLflow refused it.
    #[allow(clippy::too_many_arguments)]
    async fn create_run(
        &self,
        kind: &str,
        local: &str,
        mapped: bool,
        experiment: &str,
        name: &str,
        start: i64,
        mut tags: Vec<(String, String)>,
    ) -> PassResult<Option<String>> {
        let key = format!("{}/{kind}/{local}", self.plan.app.name);
        if mapped {
            // A create was started before: it may have landed.
            if let Some(id) = self.client.find_run(experiment, "sflow.key", &key).await? {
                self.stats.calls.fetch_add(1, Ordering::Relaxed);
                self.map_set(kind, local, Some(&id), "")?;
                return Ok(Some(id));
            }
        }
        self.map_set(kind, local, None, "")?;
        tags.push(("sflow.key".into(), key));
        let r = self.client.create_run(experiment, name, start, &tags).await;
        match self.refused(&format!("creating the run for {kind} {local}"), r)? {
            Some(id) if !id.is_empty() => {
                self.map_set(kind, local, Some(&id), "")?;
                Ok(Some(id))
            }
            _ => {
                self.map_set(kind, local, Some(""), "refused")?;
                Ok(None)
            }
        }
    }

    async fn sync_runs(&self, experiments: &mut HashMap<String, String>) -> PassResult<bool> {
        let rows: Vec<RunToSync> = self.store.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT wr.id, wr.workflow, wr.status, wr.origin, wr.created_ms, wr.finished_ms, wr.error, m.remote, COALESCE(m.state, ''), m.local IS NOT NULL
                 FROM workflow_runs wr
                 LEFT JOIN mlflow_map m ON m.target = ?1 AND m.kind = 'run' AND m.local = CAST(wr.id AS TEXT)
                 WHERE wr.app = ?2 AND (m.remote IS NULL OR (m.state <> wr.status AND m.state <> 'refused'))
                 ORDER BY wr.id LIMIT 200",
            )?;
            let rows = st
                .query_map(params![self.target, self.plan.app.name], |r| {
                    Ok(RunToSync {
                        id: r.get(0)?,
                        workflow: r.get(1)?,
                        status: r.get(2)?,
                        origin: r.get(3)?,
                        created_ms: r.get(4)?,
                        finished_ms: r.get(5)?,
                        error: r.get(6)?,
                        remote: r.get(7)?,
                        state: r.get(8)?,
                        mapped: r.get(9)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        let work = !rows.is_empty();
        for run in rows {
            let local = run.id.to_string();
            let experiment = self.experiment(experiments, &run.workflow).await?;
            let (remote, fresh) = match run.remote.filter(|r| !r.is_empty()) {
                Some(r) => (r, run.state.is_empty()),
                None => {
                    let wf = self.plan.workflows.iter().find(|w| w.name == run.workflow);
                    let mut tags = vec![
                        (
                            "mlflow.runName".to_string(),
                            format!("{}-{}", run.workflow, run.id),
                        ),
                        ("sflow.app".to_string(), self.plan.app.name.clone()),
                        ("sflow.workflow".to_string(), run.workflow.clone()),
                        ("sflow.run_id".to_string(), local.clone()),
                        ("sflow.origin".to_string(), run.origin.clone()),
                    ];
                    if let Some(w) = wf {
                        tags.push((
                            "sflow.source".into(),
                            format!("{}:{}:{}", w.source.file, w.source.line, w.source.column),
                        ));
                    }
                    let name = format!("{}-{}", run.workflow, run.id);
                    let Some(id) = self
                        .create_run(
                            "run",
                            &local,
                            run.mapped,
                            &experiment,
                            &name,
                            run.created_ms,
                            tags,
                        )
                        .await?
                    else {
                        continue;
                    };
                    (id, true)
                }
            };
            if fresh {
                // The run's params (fixed when it was created); state '' until they are sent.
                let params: Vec<(String, String)> = self
                    .store
                    .with(|c| store::params_of(c, run.id))?
                    .into_iter()
                    .map(|p| (truncate(&p.name, 250), truncate(&p.value, 6000)))
                    .collect();
                for chunk in params.chunks(PARAMS_PER_BATCH) {
                    let r = self.client.log_batch(&remote, &[], chunk, &[]).await;
                    self.refused(&format!("the params of run {}", run.id), r)?;
                }
                self.map_set("run", &local, Some(&remote), "running")?;
            }
            if run.status != "running" {
                let mut tags = Vec::new();
                if let Some(e) = &run.error {
                    tags.push(("sflow.error".to_string(), truncate(e, 8000)));
                }
                if !tags.is_empty() {
                    let r = self.client.log_batch(&remote, &[], &[], &tags).await;
                    self.refused(&format!("the tags of run {}", run.id), r)?;
                }
                let r = self
                    .client
                    .update_run(&remote, mlflow_status(&run.status), run.finished_ms)
                    .await;
                self.refused(&format!("the status of run {}", run.id), r)?;
            }
            self.map_set("run", &local, Some(&remote), &run.status)?;
        }
        Ok(work)
    }

    async fn sync_steps(&self, experiments: &mut HashMap<String, String>) -> PassResult<bool> {
        let rows: Vec<StepToSync> = self.store.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT sr.id, sr.run_id, wr.workflow, sr.step, sr.attempt, sr.status, sr.started_ms, sr.finished_ms, sr.error,
                        m.remote, m.local IS NOT NULL, p.remote
                 FROM step_runs sr
                 JOIN workflow_runs wr ON wr.id = sr.run_id
                 JOIN mlflow_map p ON p.target = ?1 AND p.kind = 'run' AND p.local = CAST(wr.id AS TEXT) AND p.remote IS NOT NULL AND p.remote <> ''
                 LEFT JOIN mlflow_map m ON m.target = ?1 AND m.kind = 'step' AND m.local = CAST(sr.id AS TEXT)
                 WHERE wr.app = ?2 AND (m.remote IS NULL OR (m.state <> sr.status AND m.state <> 'refused'))
                 ORDER BY sr.id LIMIT 500",
            )?;
            let rows = st
                .query_map(params![self.target, self.plan.app.name], |r| {
                    Ok(StepToSync {
                        id: r.get(0)?,
                        run_id: r.get(1)?,
                        workflow: r.get(2)?,
                        step: r.get(3)?,
                        attempt: r.get(4)?,
                        status: r.get(5)?,
                        started_ms: r.get(6)?,
                        finished_ms: r.get(7)?,
                        error: r.get(8)?,
                        remote: r.get(9)?,
                        mapped: r.get(10)?,
                        parent: r.get(11)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        let work = !rows.is_empty();
        for s in rows {
            let local = s.id.to_string();
            let experiment = self.experiment(experiments, &s.workflow).await?;
            let remote = match s.remote.clone().filter(|r| !r.is_empty()) {
                Some(r) => r,
                None => {
                    let name = if s.attempt > 1 {
                        format!("{}#{}", s.step, s.attempt)
                    } else {
                        s.step.clone()
                    };
                    let mut tags = vec![
                        ("mlflow.parentRunId".to_string(), s.parent.clone()),
                        ("mlflow.runName".to_string(), name.clone()),
                        ("sflow.app".to_string(), self.plan.app.name.clone()),
                        ("sflow.workflow".to_string(), s.workflow.clone()),
                        ("sflow.run_id".to_string(), s.run_id.to_string()),
                        ("sflow.step".to_string(), s.step.clone()),
                        ("sflow.attempt".to_string(), s.attempt.to_string()),
                    ];
                    let step_plan = self
                        .plan
                        .workflows
                        .iter()
                        .find(|w| w.name == s.workflow)
                        .and_then(|w| w.steps.iter().find(|st| st.name == s.step));
                    if let Some(p) = step_plan {
                        tags.push((
                            "sflow.source".into(),
                            format!("{}:{}:{}", p.source.file, p.source.line, p.source.column),
                        ));
                    }
                    let Some(id) = self
                        .create_run(
                            "step",
                            &local,
                            s.mapped,
                            &experiment,
                            &name,
                            s.started_ms,
                            tags,
                        )
                        .await?
                    else {
                        continue;
                    };
                    self.map_set("step", &local, Some(&id), "running")?;
                    id
                }
            };
            if s.status != "running" {
                self.finish_step(&s, &remote).await?;
            }
            self.map_set("step", &local, Some(&remote), &s.status)?;
        }
        Ok(work)
    }

    /// An attempt ended: its artifacts' locations, what it logged through the MLflow API
    /// (params, tags), its error, then its status.
    async fn finish_step(&self, s: &StepToSync, remote: &str) -> PassResult<()> {
        let mut tags: Vec<(String, String)> = Vec::new();
        let mut params: Vec<(String, String)> = Vec::new();
        for a in self.store.with(|c| store::artifacts_of_step_run(c, s.id))? {
            tags.push((
                format!("sflow.artifact.{}", a.name),
                format!("file://{}", a.path),
            ));
            tags.push((
                format!("sflow.artifact.{}.sha256", a.name),
                a.sha256.clone(),
            ));
            tags.push((
                format!("sflow.artifact.{}.size", a.name),
                a.size.to_string(),
            ));
        }
        let logged: Vec<(String, String, String)> = self.store.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT kind, key, value FROM step_logged WHERE step_run_id = ?1 AND kind IN ('param', 'tag') ORDER BY id",
            )?;
            let rows = st
                .query_map([s.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        for (kind, k, v) in logged {
            if kind == "param" {
                params.push((k, v));
            } else {
                tags.push((k, v));
            }
        }
        if let Some(e) = &s.error {
            tags.push(("sflow.error".into(), truncate(e, 8000)));
        }
        for chunk in tags.chunks(PARAMS_PER_BATCH) {
            let r = self.client.log_batch(remote, &[], &[], chunk).await;
            self.refused(&format!("the tags of step attempt {}", s.id), r)?;
        }
        for chunk in params.chunks(PARAMS_PER_BATCH) {
            let r = self.client.log_batch(remote, &[], chunk, &[]).await;
            self.refused(&format!("the params of step attempt {}", s.id), r)?;
        }
        let r = self
            .client
            .update_run(remote, mlflow_status(&s.status), s.finished_ms)
            .await;
        self.refused(&format!("the status of step attempt {}", s.id), r)?;
        Ok(())
    }

    fn cursor_key(&self) -> String {
        format!("mlflow:{}:metrics", self.target)
    }

    /// Metric points after the cursor, in `log-batch`es per attempt; the cursor moves after
    /// each batch MLflow took (or refused).
    async fn sync_metrics(&self) -> PassResult<bool> {
        let key = self.cursor_key();
        let cursor = self
            .store
            .with(|c| store::kv_get(c, &key))?
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        // (metric id, attempt's MLflow run, point)
        type Row = (
            i64,
            Option<String>,
            String,
            Option<f64>,
            i64,
            i64,
            Option<String>,
        );
        let rows: Vec<Row> = self.store.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT mt.id, m.remote, mt.name, mt.value, mt.seq, mt.ts_ms, p.remote
                 FROM metrics mt
                 JOIN workflow_runs wr ON wr.id = mt.run_id
                 LEFT JOIN mlflow_map m ON m.target = ?1 AND m.kind = 'step' AND m.local = CAST(mt.step_run_id AS TEXT)
                 LEFT JOIN mlflow_map p ON p.target = ?1 AND p.kind = 'run' AND p.local = CAST(mt.run_id AS TEXT)
                 WHERE mt.id > ?2 AND wr.app = ?3
                 ORDER BY mt.id LIMIT 20000",
            )?;
            let rows = st
                .query_map(params![self.target, cursor, self.plan.app.name], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        // A point of an attempt whose run MLflow refused goes nowhere: as if sent.
        let rows: Vec<Row> = rows
            .into_iter()
            .map(|mut r| {
                if r.1.is_none() && r.6.as_deref() == Some("") {
                    r.1 = Some(String::new());
                }
                r
            })
            .collect();
        if rows.is_empty() {
            return Ok(false);
        }
        let mut sent_any = false;
        let mut i = 0;
        while i < rows.len() {
            // The attempt's run must exist first (the next pass creates it).
            let Some(remote) = rows[i].1.clone() else {
                // Not yet: the attempt's run is created by the next pass.
                return Ok(true);
            };
            let mut batch = Vec::new();
            let mut last = rows[i].0;
            while i < rows.len()
                && rows[i].1.as_deref() == Some(remote.as_str())
                && batch.len() < METRICS_PER_BATCH
            {
                let (id, _, name, value, seq, ts, _) = &rows[i];
                last = *id;
                if let Some(v) = value {
                    batch.push(MetricPoint {
                        key: name.clone(),
                        value: *v,
                        timestamp: *ts,
                        step: *seq,
                    });
                }
                i += 1;
            }
            if !remote.is_empty() && !batch.is_empty() {
                let r = self.client.log_batch(&remote, &batch, &[], &[]).await;
                if self.refused("a batch of metrics", r)?.is_some() {
                    self.stats
                        .points
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
            }
            self.store.with(|c| store::kv_set(c, &key, &json!(last)))?;
            sent_any = true;
        }
        Ok(sent_any)
    }

    /// The registry: a registered model per service, a version per model it may serve, and
    /// its `production` alias.
    async fn sync_registry(&self) -> PassResult<bool> {
        let mut work = false;
        for svc in &self.plan.services {
            let registered = format!("{}.{}", self.plan.app.name, svc.name);
            let source_model = format!(
                "{}.{}.{}",
                svc.model.workflow, svc.model.step, svc.model.output
            );
            // Candidates: versions of the model the service is declared with, and any model an
            // alias of the service pointed at (an Improver's candidate, …).
            let cands: Vec<Candidate> = self
                .store
                .with(|c| candidates(c, &self.target, &svc.name, &source_model))?;
            if cands.is_empty() && self.map_get("model", &svc.name)?.is_some() {
                // Nothing new; the alias may still have moved.
            } else if !cands.is_empty() {
                if self.map_get("model", &svc.name)?.is_none() {
                    let r = self
                        .client
                        .ensure_registered_model(
                            &registered,
                            &format!(
                                "The models of service `{}` of sflow app `{}`",
                                svc.name, self.plan.app.name
                            ),
                        )
                        .await;
                    self.refused(&format!("registered model {registered}"), r)?;
                    self.map_set("model", &svc.name, Some(&registered), "")?;
                }
                for (id, name, version, path, sha, run_remote, output) in cands {
                    let local = format!("{}:{id}", svc.name);
                    let Some(run_remote) = run_remote.filter(|r| !r.is_empty()) else {
                        // Its step's run is not in MLflow yet.
                        continue;
                    };
                    work = true;
                    let key = format!("{}/model/{id}", self.plan.app.name);
                    let pending = self.map_get("version", &local)?.is_some();
                    if pending {
                        if let Some(v) = self
                            .client
                            .find_model_version(&registered, &run_remote, "sflow.key", &key)
                            .await?
                        {
                            self.map_set("version", &local, Some(&v), "")?;
                            continue;
                        }
                    }
                    self.map_set("version", &local, None, "")?;
                    let tags = vec![
                        ("sflow.key".to_string(), key),
                        ("sflow.model".to_string(), name.clone()),
                        ("sflow.version".to_string(), version.to_string()),
                        ("sflow.path".to_string(), format!("file://{path}")),
                        ("sflow.sha256".to_string(), sha),
                    ];
                    let source = format!("runs:/{run_remote}/{output}");
                    let r = self
                        .client
                        .create_model_version(
                            &registered,
                            &source,
                            &run_remote,
                            &tags,
                            &format!("{name} v{version}"),
                        )
                        .await;
                    match self.refused(&format!("a version of {registered}"), r)? {
                        Some(v) if !v.is_empty() => {
                            self.map_set("version", &local, Some(&v), "")?
                        }
                        _ => self.map_set("version", &local, Some(""), "refused")?,
                    }
                }
            }
            // The alias.
            let Some((model_id, _)) = self
                .store
                .with(|c| store::alias(c, &svc.name, "production"))?
            else {
                continue;
            };
            let state = model_id.to_string();
            let alias_local = format!("{}:production", svc.name);
            if self.map_get("alias", &alias_local)?.map(|(_, s)| s) == Some(state.clone()) {
                continue;
            }
            let Some((Some(version), _)) =
                self.map_get("version", &format!("{}:{model_id}", svc.name))?
            else {
                continue;
            };
            if version.is_empty() {
                continue;
            }
            work = true;
            let r = self
                .client
                .set_alias(&registered, "production", &version)
                .await;
            self.refused(&format!("the production alias of {registered}"), r)?;
            self.map_set("alias", &alias_local, Some(&version), &state)?;
        }
        Ok(work)
    }
}

/// A model version to register: (id, name, version, path, sha256, the MLflow run of the
/// attempt that wrote it, the output's name).
type Candidate = (i64, String, i64, String, String, Option<String>, String);

/// Model versions a service may serve that the target lacks: (id, name, version, path,
/// sha256, the MLflow run of the attempt that wrote it, the output's name).
fn candidates(
    c: &Connection,
    target: &str,
    service: &str,
    source_model: &str,
) -> Result<Vec<Candidate>> {
    let mut st = c.prepare_cached(
        "SELECT mo.id, mo.name, mo.version, mo.path, mo.sha256, sm.remote, COALESCE(a.name, '')
         FROM models mo
         LEFT JOIN artifacts a ON a.id = mo.artifact_id
         LEFT JOIN mlflow_map sm ON sm.target = ?1 AND sm.kind = 'step' AND sm.local = CAST(a.step_run_id AS TEXT)
         LEFT JOIN mlflow_map v ON v.target = ?1 AND v.kind = 'version' AND v.local = ?2 || ':' || mo.id
         WHERE (v.remote IS NULL)
           AND (mo.name = ?3
                OR mo.id IN (SELECT model_id FROM model_aliases WHERE scope = ?2)
                OR mo.id IN (SELECT previous_model_id FROM model_aliases WHERE scope = ?2))
         ORDER BY mo.id LIMIT 100",
    )?;
    let rows = st
        .query_map(params![target, service, source_model], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
