//! The local backend: a workflow's DAG runs on this machine with bounded parallelism, each
//! step attempt a child process (in its own process group) with the step contract.
//!
//! Layout of a run directory (`STATE/runs/RUN/`):
//!
//! ```text
//! STEP/OUTPUT                  the step's outputs (files, or directories for Dataset/Dir);
//!                              STEP/ exists only for steps with outputs
//! logs/STEP.N.stdout           attempt N's output streams
//! logs/STEP.N.stderr
//! logs/STEP.N.metrics.json     $SFLOW_METRICS of attempt N
//! ```
//!
//! Steps run with the program's directory as working directory (where the user's scripts
//! are, as the image's working directory holds them in a cluster).
//!
//! Services: built with the `ml` feature, the local backend serves each service in this
//! process ([`crate::ml::serving::LocalServing`], created when the engine attaches):
//! `apply_service` brings the service to the desired state the store records (its
//! `production` model, its replicas as worker threads). Without the feature it does nothing.

use super::contract::{self, Paths};
use super::digest;
use super::process::{self, ProcessEnd, ProcessSpec};
use super::{Backend, BackendHost, NewModel, RunContext, RunOutcome, RunStatus, ServiceChange};
use crate::clock::BoxFuture;
use crate::error::{IoContext, Result};
use crate::eval::{self, Params};
use crate::store::{self, NewStepRun, RunRow, Store};
use crate::value::RtValue;
use serde_json::json;
use sflow_compiler::lower::plan::{InputSource, PlanType, StepPlan, StepRun};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Runs steps as local child processes, at most `parallelism` at a time across all runs.
#[derive(Debug)]
pub struct LocalBackend {
    permits: Arc<Semaphore>,
    /// The services served in this process (set by [`Backend::attach`]).
    #[cfg(feature = "ml")]
    serving: std::sync::OnceLock<Arc<crate::ml::serving::LocalServing>>,
}

impl LocalBackend {
    /// A backend running at most `parallelism` step processes at once.
    pub fn new(parallelism: usize) -> LocalBackend {
        LocalBackend {
            permits: Arc::new(Semaphore::new(parallelism.max(1))),
            #[cfg(feature = "ml")]
            serving: std::sync::OnceLock::new(),
        }
    }

    /// The services served in this process, once the engine has attached (feature `ml`).
    #[cfg(feature = "ml")]
    pub fn serving(&self) -> Option<&Arc<crate::ml::serving::LocalServing>> {
        self.serving.get()
    }
}

impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    fn run_workflow(&self, ctx: RunContext) -> BoxFuture<'static, RunOutcome> {
        Box::pin(execute(ctx, self.permits.clone()))
    }

    fn reap_interrupted(&self, store: &Store, run: &RunRow) -> Result<()> {
        let now = crate::clock::system_now_ms();
        for attempt in store.with(|c| store::running_step_runs(c, run.id))? {
            let killed = match attempt.pid {
                Some(pid) => process::reap(pid, attempt.pid_start.as_deref()),
                None => process::reap_by_env(&run.dir, &attempt.step, attempt.attempt) > 0,
            };
            let why = if killed {
                "the runtime stopped during this attempt; its process group was killed"
            } else {
                "the runtime stopped during this attempt"
            };
            store.with(|c| {
                store::finish_step_run(c, attempt.id, "interrupted", None, Some(why), now)
            })?;
        }
        // Attempts stopped in their first moments have no row (`AttemptRecord`).
        let unrecorded = process::reap_run_by_env(&run.dir);
        if unrecorded > 0 {
            tracing::info!(
                run = run.id,
                processes = unrecorded,
                "killed what was left of unrecorded attempts"
            );
        }
        Ok(())
    }

    fn apply_service(&self, change: ServiceChange) -> BoxFuture<'static, Result<()>> {
        #[cfg(feature = "ml")]
        if let Some(serving) = self.serving.get().cloned() {
            return Box::pin(async move { serving.apply(change).await });
        }
        // Without serving, the desired state stays what the store records.
        let _ = change;
        Box::pin(async { Ok(()) })
    }

    fn attach(&self, host: BackendHost) {
        #[cfg(feature = "ml")]
        {
            let _ = self
                .serving
                .set(crate::ml::serving::LocalServing::new(host));
        }
        #[cfg(not(feature = "ml"))]
        let _ = host;
    }

    fn shutdown(&self) {
        #[cfg(feature = "ml")]
        if let Some(serving) = self.serving.get() {
            serving.stop();
        }
    }
}

/// An artifact a step can read.
#[derive(Clone, Debug)]
struct Art {
    path: PathBuf,
    sha256: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Pending,
    Running,
    Done,
    Failed,
    Skipped,
    Interrupted,
}

enum StepResult {
    Done {
        outputs: Vec<(String, Art)>,
        metrics: Vec<(String, RtValue)>,
        models: Vec<NewModel>,
        cached: bool,
    },
    Failed(String),
    Interrupted,
}

struct Job {
    step: Arc<StepPlan>,
    inputs: BTreeMap<String, Art>,
    first_attempt: i64,
    failures: i64,
}

fn failed(msg: String) -> RunOutcome {
    RunOutcome {
        status: RunStatus::Failed(msg),
        metrics: Vec::new(),
        models: Vec::new(),
    }
}

async fn execute(ctx: RunContext, permits: Arc<Semaphore>) -> RunOutcome {
    let Some(wf) = ctx.workflow().cloned() else {
        return failed("the workflow is not in the plan".into());
    };
    let ctx = Arc::new(ctx);
    let n = wf.steps.len();
    let index: HashMap<&str, usize> = wf
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let deps: Vec<Vec<usize>> = wf
        .steps
        .iter()
        .map(|s| {
            s.depends_on
                .iter()
                .filter_map(|d| index.get(d.as_str()).copied())
                .collect()
        })
        .collect();
    let mut order: Vec<usize> = wf
        .order
        .iter()
        .filter_map(|s| index.get(s.as_str()).copied())
        .collect();
    if order.len() != n {
        order = (0..n).collect();
    }
    // Shared with the step tasks (a clone of a step's plan per task was measurable).
    let steps: Vec<Arc<StepPlan>> = wf.steps.iter().cloned().map(Arc::new).collect();
    let mut state = vec![St::Pending; n];
    let mut first_attempt = vec![1i64; n];
    let mut failures = vec![0i64; n];
    let mut arts: HashMap<(String, String), Art> = HashMap::new();
    let mut metrics_out: Vec<(String, String, RtValue)> = Vec::new();
    let mut models_out: Vec<NewModel> = Vec::new();
    let mut first_error: Option<String> = None;

    if ctx.resume {
        if let Err(e) = load_progress(
            &ctx,
            &wf.steps,
            &mut state,
            &mut first_attempt,
            &mut failures,
            &mut arts,
            &mut metrics_out,
        ) {
            return failed(format!("cannot resume: {e}"));
        }
        for (i, s) in wf.steps.iter().enumerate() {
            if state[i] == St::Failed {
                first_error.get_or_insert_with(|| format!("step `{}` failed", s.name));
            }
        }
    }
    // The run's log directory, once (steps create their log files in it on the first byte).
    let logs = ctx.run_dir.join("logs");
    if let Err(e) = std::fs::create_dir_all(&logs) {
        return failed(format!("cannot create {}: {e}", logs.display()));
    }
    ctx.progress
        .run_started(ctx.run_id, &wf.name, n, ctx.resume);

    let mut set: JoinSet<(usize, StepResult)> = JoinSet::new();
    let mut interrupted = false;
    // Steps not yet started, in topological order (each pass looks at these only).
    let mut pending: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| state[i] == St::Pending)
        .collect();
    loop {
        // Steps below a failure do not run.
        for &i in &pending {
            if state[i] != St::Pending {
                continue;
            }
            if let Some(&bad) = deps[i]
                .iter()
                .find(|&&d| matches!(state[d], St::Failed | St::Skipped))
            {
                state[i] = St::Skipped;
                let why = format!(
                    "not run: step `{}` {}",
                    wf.steps[bad].name,
                    if state[bad] == St::Failed {
                        "failed"
                    } else {
                        "did not run"
                    }
                );
                let rec = NewStepRun {
                    run_id: ctx.run_id,
                    step: &wf.steps[i].name,
                    status: "skipped",
                    error: Some(&why),
                    ..NewStepRun::default()
                };
                let _ = ctx
                    .store
                    .with(|c| store::insert_step_run(c, &rec, ctx.clock.now_ms()));
                ctx.progress.step_finished(
                    ctx.run_id,
                    &wf.name,
                    &wf.steps[i].name,
                    "skipped",
                    Some(&why),
                );
            }
        }
        if !interrupted {
            for &i in &pending {
                if state[i] != St::Pending || !deps[i].iter().all(|&d| state[d] == St::Done) {
                    continue;
                }
                let step = steps[i].clone();
                match resolve_inputs(&ctx, &step, &arts) {
                    Ok(inputs) => {
                        state[i] = St::Running;
                        let job = Job {
                            step,
                            inputs,
                            first_attempt: first_attempt[i],
                            failures: failures[i],
                        };
                        let (c, p) = (ctx.clone(), permits.clone());
                        set.spawn(async move { (i, run_step(c, p, job).await) });
                    }
                    Err(e) => {
                        state[i] = St::Failed;
                        let msg = format!("step `{}` failed: {e}", wf.steps[i].name);
                        let rec = NewStepRun {
                            run_id: ctx.run_id,
                            step: &wf.steps[i].name,
                            status: "failed",
                            error: Some(&e),
                            ..NewStepRun::default()
                        };
                        let _ = ctx
                            .store
                            .with(|c| store::insert_step_run(c, &rec, ctx.clock.now_ms()));
                        ctx.progress.step_finished(
                            ctx.run_id,
                            &wf.name,
                            &wf.steps[i].name,
                            "failed",
                            Some(&e),
                        );
                        first_error.get_or_insert(msg);
                    }
                }
            }
        }
        pending.retain(|&i| state[i] == St::Pending);
        let Some(joined) = set.join_next().await else {
            break;
        };
        match joined {
            Ok((
                i,
                StepResult::Done {
                    outputs,
                    metrics,
                    models,
                    cached,
                },
            )) => {
                state[i] = St::Done;
                let name = wf.steps[i].name.clone();
                for (out, art) in outputs {
                    arts.insert((name.clone(), out), art);
                }
                if let Some(h) = &ctx.hooks {
                    h.step_succeeded(&name, &metrics, &models);
                }
                metrics_out.extend(metrics.into_iter().map(|(m, v)| (name.clone(), m, v)));
                models_out.extend(models);
                ctx.progress.step_finished(
                    ctx.run_id,
                    &wf.name,
                    &name,
                    if cached { "cached" } else { "succeeded" },
                    None,
                );
            }
            Ok((i, StepResult::Failed(e))) => {
                state[i] = St::Failed;
                ctx.progress.step_finished(
                    ctx.run_id,
                    &wf.name,
                    &wf.steps[i].name,
                    "failed",
                    Some(&e),
                );
                first_error.get_or_insert(format!("step `{}` failed: {e}", wf.steps[i].name));
            }
            Ok((i, StepResult::Interrupted)) => {
                state[i] = St::Interrupted;
                interrupted = true;
            }
            Err(e) => {
                interrupted = interrupted || e.is_cancelled();
                first_error.get_or_insert(format!("a step task ended abnormally: {e}"));
            }
        }
        if *ctx.shutdown.borrow() {
            interrupted = true;
        }
    }
    let status = if interrupted {
        RunStatus::Interrupted
    } else if let Some(e) = first_error {
        RunStatus::Failed(e)
    } else if state.iter().all(|s| *s == St::Done) {
        RunStatus::Succeeded
    } else {
        RunStatus::Failed("some steps did not run".into())
    };
    RunOutcome {
        status,
        metrics: metrics_out,
        models: models_out,
    }
}

/// What a resumed run already did: finished steps keep their outputs and metrics; a step
/// whose attempts are used up stays failed; any other step runs again (the interrupted
/// attempt does not count against its retries).
fn load_progress(
    ctx: &RunContext,
    steps: &[StepPlan],
    state: &mut [St],
    first_attempt: &mut [i64],
    failures: &mut [i64],
    arts: &mut HashMap<(String, String), Art>,
    metrics_out: &mut Vec<(String, String, RtValue)>,
) -> Result<()> {
    let rows = ctx.store.with(|c| store::step_runs_of(c, ctx.run_id))?;
    for (i, step) in steps.iter().enumerate() {
        let mine: Vec<_> = rows.iter().filter(|r| r.step == step.name).collect();
        if let Some(ok) = mine
            .iter()
            .rev()
            .find(|r| r.status == "succeeded" || r.status == "cached")
        {
            state[i] = St::Done;
            for a in ctx.store.with(|c| store::artifacts_of_step_run(c, ok.id))? {
                arts.insert(
                    (step.name.clone(), a.name.clone()),
                    Art {
                        path: PathBuf::from(&a.path),
                        sha256: Some(a.sha256.clone()),
                    },
                );
            }
            for m in ctx.store.with(|c| store::metrics_of_step_run(c, ok.id))? {
                if let Ok(v) = serde_json::from_value::<RtValue>(m.value.clone()) {
                    metrics_out.push((step.name.clone(), m.name.clone(), v));
                }
            }
            continue;
        }
        if mine.iter().any(|r| r.status == "skipped") {
            state[i] = St::Skipped;
            continue;
        }
        failures[i] = mine.iter().filter(|r| r.status == "failed").count() as i64;
        first_attempt[i] = mine.iter().map(|r| r.attempt).max().unwrap_or(0) + 1;
        let limit = step.retry.as_ref().map_or(0, |r| i64::from(r.limit));
        if failures[i] > limit {
            state[i] = St::Failed;
        }
    }
    Ok(())
}

fn resolve_inputs(
    ctx: &RunContext,
    step: &StepPlan,
    arts: &HashMap<(String, String), Art>,
) -> Result<BTreeMap<String, Art>, String> {
    let mut out = BTreeMap::new();
    for input in &step.inputs {
        let art = match &input.from {
            InputSource::Step {
                step: producer,
                output,
            } => arts
                .get(&(producer.clone(), output.clone()))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "input `{}`: step `{producer}` recorded no output `{output}`",
                        input.name
                    )
                })?,
            InputSource::Data { function, args } => {
                // `mnist(split)` gives exactly the split: materialized (linked) once per run
                // and input at RUN/.inputs/STEP/INPUT (no step can be named `.inputs`).
                let scope = Params {
                    params: &ctx.params,
                    app: Some(&ctx.plan.app),
                };
                let dest = super::data::input_dir(&ctx.run_dir, &step.name, &input.name);
                let path = super::data::DataSource::from_exprs(function, args, &scope)
                    .and_then(|src| src.materialize_local(&ctx.program_dir, &dest))
                    .map_err(|e| format!("input `{}`: {e}", input.name))?;
                Art { path, sha256: None }
            }
        };
        out.insert(input.name.clone(), art);
    }
    Ok(out)
}

async fn run_step(ctx: Arc<RunContext>, permits: Arc<Semaphore>, job: Job) -> StepResult {
    match step_inner(&ctx, &permits, job).await {
        Ok(r) => r,
        Err(e) => StepResult::Failed(e.to_string()),
    }
}

fn stderr_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    if tail.is_empty() {
        String::new()
    } else {
        let cut: String = tail
            .chars()
            .rev()
            .take(400)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!(" (stderr: {cut})")
    }
}

async fn step_inner(ctx: &RunContext, permits: &Semaphore, job: Job) -> Result<StepResult> {
    let step = &job.step;
    let plan = &ctx.plan;
    let wf_name = ctx.workflow().map(|w| w.name.clone()).unwrap_or_default();
    let out_dir = ctx.run_dir.join(&step.name);
    let logs_dir = ctx.run_dir.join("logs");
    let outputs: BTreeMap<String, PathBuf> = step
        .outputs
        .iter()
        .map(|o| (o.name.clone(), out_dir.join(&o.name)))
        .collect();
    let inputs: BTreeMap<String, PathBuf> = job
        .inputs
        .iter()
        .map(|(k, a)| (k.clone(), a.path.clone()))
        .collect();

    // The command, and (for the cache key only) its identity with placeholder paths.
    let (program, args, identity) = match &step.run {
        StepRun::Command { image, command } => {
            let real = contract::substitute(
                command,
                &ctx.params,
                &inputs,
                &outputs,
                &plan.app,
                Paths::Real,
            );
            let identity = step.cache.then(|| {
                let keyed = contract::substitute(
                    command,
                    &ctx.params,
                    &inputs,
                    &outputs,
                    &plan.app,
                    Paths::Placeholders,
                );
                json!({ "image": image, "command": keyed })
            });
            (
                PathBuf::from("/bin/sh"),
                vec!["-c".to_string(), real],
                identity,
            )
        }
        StepRun::Std { step: name, args } => {
            let scope = Params {
                params: &ctx.params,
                app: Some(&plan.app),
            };
            let mut argv = vec!["step".to_string(), name.clone()];
            let mut keyed = BTreeMap::new();
            for (k, e) in args {
                let v = eval::eval(e, &scope).map_err(|m| format!("argument `{k}`: {m}"))?;
                argv.push("--arg".into());
                argv.push(format!("{k}={}", v.to_param_text()));
                keyed.insert(k.clone(), v.to_param_text());
            }
            (
                ctx.self_exe.clone(),
                argv,
                Some(json!({ "std": name, "args": keyed })),
            )
        }
    };

    // The environment.
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &ctx.params {
        env.insert(contract::var("PARAM", k), v.to_param_text());
    }
    for (k, p) in &inputs {
        env.insert(contract::var("INPUT", k), p.to_string_lossy().into_owned());
    }
    for (k, p) in &outputs {
        env.insert(contract::var("OUTPUT", k), p.to_string_lossy().into_owned());
    }
    env.insert("SFLOW_APP".into(), plan.app.name.clone());
    env.insert("SFLOW_WORKFLOW".into(), wf_name.clone());
    env.insert("SFLOW_STEP".into(), step.name.clone());
    env.insert("SFLOW_RUN_ID".into(), ctx.run_id.to_string());
    env.insert(
        "SFLOW_RUN_DIR".into(),
        ctx.run_dir.to_string_lossy().into_owned(),
    );
    env.extend(ctx.extra_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    // The Improver's labelled samples are for steps with a `Dataset` input (language §9.1).
    if !step.inputs.iter().any(|i| i.ty == PlanType::Dataset) {
        env.remove("SFLOW_INPUT_LABELLED");
    }
    env.extend(step.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    // Templated `env` values are substituted exactly like `run`; the cache key sees them with
    // placeholder paths (paths differ between runs; the inputs' digests are keyed anyway).
    let substitute_env =
        |parts, mode| contract::substitute(parts, &ctx.params, &inputs, &outputs, &plan.app, mode);
    for (k, parts) in &step.env_templates {
        env.insert(k.clone(), substitute_env(parts, Paths::Real));
    }

    // The cache.
    let cache_key = if step.cache {
        let mut keyed_env = step.env.clone();
        for (k, parts) in &step.env_templates {
            keyed_env.insert(k.clone(), substitute_env(parts, Paths::Placeholders));
        }
        let mut input_digests = BTreeMap::new();
        for (k, a) in &job.inputs {
            let d = match &a.sha256 {
                Some(d) => d.clone(),
                None => {
                    let p = a.path.clone();
                    tokio::task::spawn_blocking(move || digest::digest_path(&p))
                        .await
                        .map_err(|e| e.to_string())?
                        .ctx(|| format!("input `{k}`: cannot read {}", a.path.display()))?
                        .0
                }
            };
            input_digests.insert(k.clone(), d);
        }
        let params: BTreeMap<&String, String> = ctx
            .params
            .iter()
            .map(|(k, v)| (k, v.to_param_text()))
            .collect();
        let mut key_doc = json!({
            "v": 1, "run": identity, "env": keyed_env, "params": params, "inputs": input_digests,
            "outputs": step.outputs.iter().map(|o| format!("{}:{:?}", o.name, o.ty)).collect::<Vec<_>>(),
        });
        // An Improver's labelled samples are an input too (each set is a new, unchanging
        // directory, so its path names its content).
        if let Some(labelled) = env.get("SFLOW_INPUT_LABELLED") {
            key_doc["labelled"] = json!(labelled);
        }
        Some(digest::sha256_hex(key_doc.to_string().as_bytes()))
    } else {
        None
    };
    if let Some(key) = &cache_key {
        if let Some(hit) = reuse_cached(ctx, step, key)? {
            return Ok(hit);
        }
    }

    let limit = step.retry.as_ref().map_or(0, |r| i64::from(r.limit));
    let backoff = step.retry.as_ref().and_then(|r| r.backoff_ms).unwrap_or(0);
    let mut failures = job.failures;
    let mut attempt = job.first_attempt;
    let mut retrying = false;
    loop {
        if retrying && backoff > 0 {
            let wait = backoff.saturating_mul(1u64 << (failures - 1).clamp(0, 20));
            let mut shutdown = ctx.shutdown.clone();
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = shutdown.wait_for(|s| *s) => return Ok(StepResult::Interrupted),
            }
        }
        // The attempt is recorded when it can start (not while it waits for a slot).
        let permit = permits.acquire().await.map_err(|e| e.to_string())?;
        prepare_out_dir(&out_dir, step)?;
        let metrics_path = logs_dir.join(format!("{}.{attempt}.metrics.json", step.name));
        let stdout = logs_dir.join(format!("{}.{attempt}.stdout", step.name));
        let stderr = logs_dir.join(format!("{}.{attempt}.stderr", step.name));
        env.insert(
            "SFLOW_METRICS".into(),
            metrics_path.to_string_lossy().into_owned(),
        );
        env.insert("SFLOW_ATTEMPT".into(), attempt.to_string());
        let (dir_s, out_s, err_s) = (
            out_dir.to_string_lossy(),
            stdout.to_string_lossy(),
            stderr.to_string_lossy(),
        );
        let record = AttemptRecord::new(
            NewStepRun {
                run_id: ctx.run_id,
                step: &step.name,
                attempt,
                status: "running",
                dir: (!step.outputs.is_empty()).then_some(&*dir_s),
                stdout: Some(&out_s),
                stderr: Some(&err_s),
                cache_key: cache_key.as_deref(),
                ..NewStepRun::default()
            },
            ctx.clock.now_ms(),
        );
        // MLflow clients in the step log into this attempt through the control API (unless
        // the step points MLFLOW_TRACKING_URI elsewhere itself): their run id is the
        // attempt's row, so that row is written before the process starts.
        let mlflow_attempt = ctx.extra_env.contains_key("MLFLOW_TRACKING_URI")
            && !step.env.contains_key("MLFLOW_TRACKING_URI")
            && !step.env_templates.contains_key("MLFLOW_TRACKING_URI");
        if mlflow_attempt {
            let sr_id = ctx.store.with(|c| record.id(c))?;
            env.insert("MLFLOW_RUN_ID".into(), crate::mlflow::server::run_id(sr_id));
        }

        let end = {
            let spec = ProcessSpec {
                program: &program,
                args: &args,
                cwd: &ctx.program_dir,
                env: &env,
                stdout: &stdout,
                stderr: &stderr,
                timeout: step.timeout_ms.map(Duration::from_millis),
            };
            let (store, record) = (ctx.store.clone(), &record);
            process::run(
                spec,
                move |pid| {
                    let start = process::start_time(pid);
                    let _ = record.tx(&store, |c| {
                        store::set_step_pid(c, record.id(c)?, i64::from(pid), start.as_deref())
                    });
                },
                ctx.shutdown.clone(),
                permit,
            )
            .await
        };
        let (code, error) = match end {
            ProcessEnd::Stopped => {
                let why = "the runtime stopped during this attempt";
                record.tx(&ctx.store, |c| {
                    record.finish(c, "interrupted", None, Some(why), ctx.clock.now_ms())
                })?;
                return Ok(StepResult::Interrupted);
            }
            ProcessEnd::Exited(0) => match finish_success(
                ctx,
                step,
                &wf_name,
                &record,
                &outputs,
                &metrics_path,
                mlflow_attempt,
            )
            .await
            {
                Ok(done) => return Ok(done),
                Err(e) => (Some(0), e),
            },
            ProcessEnd::Exited(c) => (
                Some(i64::from(c)),
                format!("exited with status {c}{}", stderr_tail(&stderr)),
            ),
            ProcessEnd::Signaled(s) => (
                None,
                format!("killed by signal {s}{}", stderr_tail(&stderr)),
            ),
            ProcessEnd::TimedOut => (
                None,
                format!(
                    "timed out after {} (its process group was killed)",
                    crate::policy::format_ms(step.timeout_ms.unwrap_or(0) as i64)
                ),
            ),
            ProcessEnd::SpawnFailed(e) => (None, e),
        };
        record.tx(&ctx.store, |c| {
            record.finish(c, "failed", code, Some(&error), ctx.clock.now_ms())
        })?;
        failures += 1;
        if failures > limit {
            let attempts = if limit > 0 {
                format!(" (attempt {attempt} of {})", limit + 1)
            } else {
                String::new()
            };
            return Ok(StepResult::Failed(format!("{error}{attempts}")));
        }
        ctx.progress
            .step_retrying(ctx.run_id, &wf_name, &step.name, attempt, &error);
        attempt += 1;
        retrying = true;
    }
}

/// An attempt's row in the store, written when first needed: when the process has run for
/// [`process::REPORT_AFTER`] (with its pid), or in the transaction that records its end. A
/// short step thus costs one commit instead of two; a crash during an attempt that was never
/// written loses nothing (the step had not finished, so a resumed run starts it again, as it
/// does any interrupted attempt, and no process of it outlives 50 ms unrecorded).
struct AttemptRecord<'a> {
    rec: NewStepRun<'a>,
    started_ms: crate::clock::Millis,
    /// The row, once written (by a transaction that committed: see [`AttemptRecord::tx`]).
    id: std::sync::Mutex<Option<i64>>,
}

impl<'a> AttemptRecord<'a> {
    fn new(rec: NewStepRun<'a>, started_ms: crate::clock::Millis) -> AttemptRecord<'a> {
        AttemptRecord {
            rec,
            started_ms,
            id: std::sync::Mutex::new(None),
        }
    }

    fn written(&self) -> Option<i64> {
        *self
            .id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_written(&self, id: Option<i64>) {
        *self
            .id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = id;
    }

    /// Runs `f` in a transaction of `store`; if it does not commit, a row that `f` wrote is
    /// forgotten (it was rolled back), so a later record writes it again.
    fn tx<T>(
        &self,
        store: &Store,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T>,
    ) -> Result<T> {
        let before = self.written();
        let out = store.tx(f);
        if out.is_err() {
            self.set_written(before);
        }
        out
    }

    /// The row's id, inserting the row (status `running`, the attempt's start time) on
    /// first use. Call it inside the transaction that also records what happened, so the row
    /// never exists without it.
    fn id(&self, c: &rusqlite::Connection) -> Result<i64> {
        if let Some(id) = self.written() {
            return Ok(id);
        }
        let id = store::insert_step_run(c, &self.rec, self.started_ms)?;
        self.set_written(Some(id));
        Ok(id)
    }

    /// Records the attempt's end (its row is written now if it was not yet). Returns the
    /// row's id. Call it inside the transaction that records what the attempt produced.
    fn finish(
        &self,
        c: &rusqlite::Connection,
        status: &str,
        exit_code: Option<i64>,
        error: Option<&str>,
        now: crate::clock::Millis,
    ) -> Result<i64> {
        if let Some(id) = self.written() {
            store::finish_step_run(c, id, status, exit_code, error, now)?;
            return Ok(id);
        }
        let rec = NewStepRun {
            status,
            error,
            ..self.rec
        };
        let id = store::insert_ended_step_run(c, &rec, exit_code, self.started_ms, now)?;
        self.set_written(Some(id));
        Ok(id)
    }
}

/// Creates a fresh output directory for a step with outputs (a step without outputs gets
/// none: creating and even looking up directories is much of what the executor costs per
/// attempt beyond spawning the process).
fn prepare_out_dir(out_dir: &Path, step: &StepPlan) -> Result<()> {
    if step.outputs.is_empty() {
        return Ok(());
    }
    // A directory left by an earlier attempt is cleared.
    match std::fs::create_dir(out_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_dir_all(out_dir)
                .ctx(|| format!("cannot clear {}", out_dir.display()))?;
            std::fs::create_dir(out_dir)
        }
        other => other,
    }
    .ctx(|| format!("cannot create {}", out_dir.display()))?;
    for o in &step.outputs {
        if contract::is_dir_type(&o.ty) {
            let d = out_dir.join(&o.name);
            std::fs::create_dir_all(&d).ctx(|| format!("cannot create {}", d.display()))?;
        }
    }
    Ok(())
}

/// The attempt exited 0: check its outputs and metrics, then record them with the attempt's
/// success in one transaction (and register the models it wrote).
async fn finish_success(
    ctx: &RunContext,
    step: &StepPlan,
    wf_name: &str,
    record: &AttemptRecord<'_>,
    outputs: &BTreeMap<String, PathBuf>,
    metrics_path: &Path,
    mlflow_attempt: bool,
) -> Result<StepResult, String> {
    let mut problems = Vec::new();
    for o in &step.outputs {
        let Some(p) = outputs.get(&o.name) else {
            continue;
        };
        let ok = if contract::is_dir_type(&o.ty) {
            p.is_dir()
        } else {
            p.is_file()
        };
        if !ok {
            problems.push(format!(
                "output `{}` ({}) was not written at {}",
                o.name,
                crate::value::type_name(&o.ty),
                p.display()
            ));
        }
    }
    let mut points = contract::read_metrics_file(metrics_path)?;
    // What the step logged through the MLflow API follows the file's points (only an attempt
    // given an MLflow run id can have logged any: no query per step otherwise).
    if mlflow_attempt {
        let sr_id = ctx
            .store
            .with(|c| record.id(c))
            .map_err(|e| e.to_string())?;
        let next_seq = points.iter().map(|p| p.2 + 1).max().unwrap_or(0);
        points.extend(
            crate::mlflow::server::logged_points(&ctx.store, sr_id, &step.metrics, next_seq)
                .map_err(|e| e.to_string())?,
        );
    }
    let checked = match contract::check_metrics(&step.metrics, &points) {
        Ok(c) => c,
        Err(e) => {
            problems.push(e);
            Vec::new()
        }
    };
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    // Digests (I/O) before the transaction.
    let mut arts = Vec::new();
    for o in &step.outputs {
        let Some(p) = outputs.get(&o.name).cloned() else {
            continue;
        };
        let p2 = p.clone();
        let (sha, size) = tokio::task::spawn_blocking(move || digest::digest_path(&p2))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot read output `{}`: {e}", o.name))?;
        arts.push((o.name.clone(), o.ty.clone(), p, sha, size));
    }
    let now = ctx.clock.now_ms();
    let mut latest: BTreeMap<String, RtValue> = BTreeMap::new();
    for m in &checked {
        latest.insert(m.name.clone(), m.value.clone());
    }
    let metrics_json: serde_json::Map<String, serde_json::Value> = latest
        .iter()
        .map(|(k, v)| (k.clone(), v.to_json()))
        .collect();
    let params_json: serde_json::Map<String, serde_json::Value> = ctx
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.to_json()))
        .collect();
    let models = record
                .tx(&ctx.store, |c| {
            let sr_id = record.finish(c, "succeeded", Some(0), None, now)?;
            for m in &checked {
                let j = serde_json::to_value(&m.value)?;
                store::insert_metric(c, ctx.run_id, sr_id, wf_name, &step.name, &m.name, &crate::value::type_name(&m.ty), contract::metric_number(&m.value), &j, m.seq, now)?;
            }
            let mut models = Vec::new();
            for (name, ty, path, sha, size) in &arts {
                let path_s = path.to_string_lossy();
                let art_id = store::insert_artifact(c, ctx.run_id, sr_id, &step.name, name, &crate::value::type_name(ty), &path_s, sha, *size as i64, now)?;
                if *ty == PlanType::Model {
                    let model_name = format!("{wf_name}.{}.{name}", step.name);
                    let lineage = json!({
                        "run": ctx.run_id, "workflow": wf_name, "step": step.name, "output": name,
                        "params": params_json,
                        "source": format!("{}:{}:{}", step.source.file, step.source.line, step.source.column),
                    });
                    let (id, version) = store::register_model(c, &model_name, ctx.run_id, Some(art_id), &path_s, sha, *size as i64, &json!(metrics_json), &lineage, now)?;
                    models.push(NewModel { id, name: model_name, version });
                }
            }
            Ok(models)
        })
        .map_err(|e| e.to_string())?;
    Ok(StepResult::Done {
        outputs: arts
            .into_iter()
            .map(|(n, _, p, sha, _)| {
                (
                    n,
                    Art {
                        path: p,
                        sha256: Some(sha),
                    },
                )
            })
            .collect(),
        metrics: latest.into_iter().collect(),
        models,
        cached: false,
    })
}

/// A cache hit: the latest successful run of the step with the same key, whose outputs still
/// exist, is reused (its outputs and metrics recorded again for this run).
fn reuse_cached(ctx: &RunContext, step: &StepPlan, key: &str) -> Result<Option<StepResult>> {
    let Some(hit) = ctx.store.with(|c| store::find_cached(c, key))? else {
        return Ok(None);
    };
    let arts = ctx
        .store
        .with(|c| store::artifacts_of_step_run(c, hit.id))?;
    let complete = step.outputs.iter().all(|o| {
        arts.iter()
            .any(|a| a.name == o.name && Path::new(&a.path).exists())
    });
    if !complete {
        return Ok(None);
    }
    let metrics = ctx.store.with(|c| store::metrics_of_step_run(c, hit.id))?;
    let now = ctx.clock.now_ms();
    let wf_name = ctx.workflow().map(|w| w.name.clone()).unwrap_or_default();
    let reason = format!("reused step run {} (run {})", hit.id, hit.run_id);
    ctx.store.tx(|c| {
        let rec = NewStepRun {
            run_id: ctx.run_id,
            step: &step.name,
            attempt: 0,
            status: "cached",
            cache_key: Some(key),
            cached_from: Some(hit.id),
            error: Some(&reason),
            ..NewStepRun::default()
        };
        let id = store::insert_step_run(c, &rec, now)?;
        for m in &metrics {
            let v: Option<RtValue> = serde_json::from_value(m.value.clone()).ok();
            store::insert_metric(
                c,
                ctx.run_id,
                id,
                &wf_name,
                &step.name,
                &m.name,
                &m.ty,
                v.as_ref().and_then(contract::metric_number),
                &m.value,
                m.seq,
                now,
            )?;
        }
        for a in &arts {
            store::insert_artifact(
                c, ctx.run_id, id, &step.name, &a.name, &a.ty, &a.path, &a.sha256, a.size, now,
            )?;
        }
        Ok(())
    })?;
    let mut latest: BTreeMap<String, RtValue> = BTreeMap::new();
    for m in metrics {
        if let Ok(v) = serde_json::from_value::<RtValue>(m.value) {
            latest.insert(m.name, v);
        }
    }
    Ok(Some(StepResult::Done {
        outputs: arts
            .into_iter()
            .map(|a| {
                (
                    a.name,
                    Art {
                        path: PathBuf::from(a.path),
                        sha256: Some(a.sha256),
                    },
                )
            })
            .collect(),
        metrics: latest.into_iter().collect(),
        models: Vec::new(),
        cached: true,
    }))
}
