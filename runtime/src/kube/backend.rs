//! The Kubernetes backend: runs execute as Argo `Workflow`s, services are Deployments.
//!
//! **Runs.** [`KubeBackend::run_workflow`] creates a `Workflow` that references the workflow's
//! `WorkflowTemplate` with the run's params ([`super::argo::workflow_object`]), named after
//! the run ([`super::argo::workflow_name`]), and follows it with kube-runtime's watcher (list,
//! then watch; a dropped or ended watch is resumed from the last resourceVersion it saw, with
//! backoff). Each `Pod` node of a step's template is one attempt in the store; when a node
//! succeeds, its `sflow-metrics` output parameter is checked against the step's declared
//! metrics (as `$SFLOW_METRICS` is locally), each `output-<name>` parameter is recorded as an
//! artifact (digested from the artifacts volume) and each `Model` output registered, all in
//! one transaction with the attempt's success. Which node became which attempt is kept in the
//! store (`kv`, key `kube:run:<id>`, written in the same transactions), so a runtime that
//! restarts re-attaches to the `Workflow` (the same name: it is found, not created again) and
//! records each node once.
//!
//! **Services.** `Serve` sets `SFLOW_MODEL` (the model's path on the artifacts volume) on the
//! service's Deployment with a strategic-merge patch, and annotates the Deployment and its pod
//! template with the model (`sflow.dev/model`, `sflow.dev/model-id`): the Deployment rolls its
//! replicas one by one. `Scale` moves the autoscaler's floor — the HorizontalPodAutoscaler's
//! `minReplicas` (or the KEDA ScaledObject's `minReplicaCount` with `autoscaler = "keda"`) —
//! within the autoscaler's own bounds: the Deployment has no `replicas` field, the autoscaler
//! owns it (docs/kubernetes-manifests.md §8). Both read the object first and change nothing
//! when it already says what the store says, so re-applying every service's state on start
//! is free.

use super::argo::{self, Node, Submit, RUN_LABEL};
use super::events::Recorder;
use super::lease::is_conflict;
use crate::clock::BoxFuture;
use crate::error::{Error, Result};
use crate::executor::{
    contract, digest, Backend, BackendHost, NewModel, RunContext, RunOutcome, RunStatus,
    ServiceChange,
};
use crate::store::{self, NewStepRun, RunRow, Store};
use crate::value::RtValue;
use ::kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use ::kube::runtime::watcher::{self, Event};
use ::kube::runtime::WatchStreamExt;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use sflow_compiler::lower::plan::{Autoscaler, PlanType, StepPlan, WorkflowPlan};
use sflow_emit::workflows::output_param;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The annotation naming the model a service serves (`training.fit.model v2`).
pub const MODEL_ANNOTATION: &str = "sflow.dev/model";
/// The annotation with the model's registry id (on the Deployment and its pod template).
pub const MODEL_ID_ANNOTATION: &str = "sflow.dev/model-id";
/// The variable the model server loads its model from.
pub const MODEL_ENV: &str = "SFLOW_MODEL";

/// What the backend did, for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// `Workflow`s created.
    pub workflows_created: AtomicU64,
    /// `Workflow`s found already there and re-attached to (after a restart).
    pub workflows_attached: AtomicU64,
    /// `Workflow`s that CronWorkflows started, followed as runs.
    pub workflows_adopted: AtomicU64,
    /// Errors of the watch streams (each followed by a resumption).
    pub watch_errors: AtomicU64,
    /// Step attempts recorded as finished.
    pub attempts_recorded: AtomicU64,
    /// Patches to Deployments and autoscalers.
    pub service_patches: AtomicU64,
}

/// Where the backend works.
pub struct KubeConfig {
    /// The client.
    pub client: ::kube::Client,
    /// The app.
    pub app: String,
    /// Its namespace.
    pub namespace: String,
    /// Where the artifacts volume is mounted in this process.
    pub artifacts: PathBuf,
    /// This replica (Events' reporting instance).
    pub identity: String,
}

/// The Kubernetes backend (cheap to clone).
#[derive(Clone)]
pub struct KubeBackend {
    inner: Arc<Inner>,
}

struct Inner {
    client: ::kube::Client,
    app: String,
    namespace: String,
    artifacts: PathBuf,
    events: Recorder,
    host: OnceLock<BackendHost>,
    stats: Arc<Stats>,
}

impl KubeBackend {
    /// A backend for the app in its namespace.
    pub fn new(cfg: KubeConfig, stats: Arc<Stats>) -> KubeBackend {
        KubeBackend {
            inner: Arc::new(Inner {
                events: Recorder::new(cfg.client.clone(), &cfg.namespace, &cfg.identity),
                client: cfg.client,
                app: cfg.app,
                namespace: cfg.namespace,
                artifacts: cfg.artifacts,
                host: OnceLock::new(),
                stats,
            }),
        }
    }
}

impl Backend for KubeBackend {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    fn run_workflow(&self, ctx: RunContext) -> BoxFuture<'static, RunOutcome> {
        let inner = self.inner.clone();
        Box::pin(async move {
            match inner.execute(&ctx).await {
                Ok(outcome) => outcome,
                Err(e) => RunOutcome {
                    status: RunStatus::Failed(e.to_string()),
                    metrics: Vec::new(),
                    models: Vec::new(),
                },
            }
        })
    }

    fn reap_interrupted(&self, _store: &Store, _run: &RunRow) -> Result<()> {
        // Nothing to stop: the Workflow went on in the cluster while no runtime watched it.
        // Its attempts stay `running` until the re-attached watch records how they ended.
        Ok(())
    }

    fn apply_service(&self, change: ServiceChange) -> BoxFuture<'static, Result<()>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            match change {
                ServiceChange::Serve {
                    service,
                    path,
                    model_id,
                } => inner.serve(&service, &path, model_id).await,
                ServiceChange::Scale { service, replicas } => inner.scale(&service, replicas).await,
                ServiceChange::Resize { service, resources } => {
                    inner.resize(&service, &resources).await
                }
            }
        })
    }

    fn attach(&self, host: BackendHost) {
        let _ = self.inner.host.set(host);
    }
}

/// Which node became which attempt, and what failed the contract: kept in the store.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    /// Node id → the attempt recorded for it.
    nodes: BTreeMap<String, Known>,
    /// Steps recorded as never run.
    skipped: Vec<String>,
    /// Contract failures (a metric of the wrong type, an output not written).
    problems: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Known {
    step_run: i64,
    done: bool,
}

fn progress_key(run_id: i64) -> String {
    format!("kube:run:{run_id}")
}

fn kube_err(doing: &str, e: ::kube::Error) -> Error {
    Error::Msg(format!("{doing}: {e}"))
}

impl Inner {
    fn workflows(&self) -> ::kube::Api<DynamicObject> {
        ::kube::Api::namespaced_with(self.client.clone(), &self.namespace, &argo::api_resource())
    }

    /// Creates (or finds) the run's Workflow and follows it to its end.
    async fn execute(&self, ctx: &RunContext) -> Result<RunOutcome> {
        let wf = ctx
            .workflow()
            .ok_or_else(|| Error::Msg("the run's workflow is not in the plan".into()))?;
        let run = ctx
            .store
            .with(|c| store::run(c, ctx.run_id))?
            .ok_or_else(|| Error::Msg(format!("no run {}", ctx.run_id)))?;
        // A run recorded from a CronWorkflow's Workflow follows that one (schedules.rs).
        let adopted = match run.firing_key.as_deref().and_then(|k| k.rsplit_once('#')) {
            Some((firing, _)) => ctx
                .store
                .with(|c| store::firing(c, firing))?
                .and_then(|f| super::schedules::adopted(&f.reads)),
            None => None,
        };
        let name = match &adopted {
            Some((name, _)) => name.clone(),
            None => argo::workflow_name(&wf.kube_name, ctx.run_id, run.created_ms),
        };
        let api = self.workflows();
        let doing = format!("Workflow {}/{name}", self.namespace);
        match api.get_opt(&name).await.map_err(|e| kube_err(&doing, e))? {
            None if adopted.is_some() => {
                return Err(Error::Msg(format!(
                    "{doing}, started by its CronWorkflow, is gone (deleted before the runtime followed it)"
                )));
            }
            Some(_) if adopted.is_some() => {
                self.stats.workflows_adopted.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    run = ctx.run_id,
                    workflow = name,
                    "following the Argo Workflow a CronWorkflow started"
                );
            }
            Some(_) => {
                self.stats
                    .workflows_attached
                    .fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    run = ctx.run_id,
                    workflow = name,
                    "following the run's existing Argo Workflow"
                );
            }
            None => {
                // The samples are on the artifacts volume, where step pods mount it.
                let labelled = ctx
                    .extra_env
                    .get("SFLOW_INPUT_LABELLED")
                    .map(|p| argo::pod_path(std::path::Path::new(p), &self.artifacts));
                let object: DynamicObject =
                    serde_json::from_value(argo::workflow_object(&Submit {
                        app: &self.app,
                        namespace: &self.namespace,
                        workflow: wf,
                        name: &name,
                        run_id: ctx.run_id,
                        params: &ctx.params,
                        labelled: labelled.as_deref(),
                    }))?;
                match api.create(&PostParams::default(), &object).await {
                    Ok(_) => {
                        self.stats.workflows_created.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            run = ctx.run_id,
                            workflow = name,
                            "created the run's Argo Workflow"
                        );
                    }
                    // Created by this runtime before a restart it did not record: follow it.
                    Err(e) if is_conflict(&e) => {}
                    Err(e) => return Err(kube_err(&format!("cannot create {doing}"), e)),
                }
            }
        }
        let mut tracker = Tracker {
            ctx,
            wf,
            artifacts: &self.artifacts,
            progress: ctx
                .store
                .with(|c| store::kv_get(c, &progress_key(ctx.run_id)))?
                .and_then(|v| serde_json::from_value(v).ok())
                .unwrap_or_default(),
            stats: &self.stats,
        };
        let selector = match &adopted {
            Some((_, trigger)) => format!("{}={trigger}", sflow_emit::conventions::TRIGGER_LABEL),
            None => format!("{RUN_LABEL}={name}"),
        };
        let config = watcher::Config::default().labels(&selector);
        let stream = watcher::watcher(api, config).default_backoff();
        futures_util::pin_mut!(stream);
        let mut shutdown = ctx.shutdown.clone();
        loop {
            if *shutdown.borrow() {
                return Ok(interrupted());
            }
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        return Ok(interrupted());
                    }
                }
                event = stream.next() => match event {
                    Some(Ok(Event::Apply(o) | Event::InitApply(o))) => {
                        if o.metadata.name.as_deref() != Some(name.as_str()) {
                            continue;
                        }
                        let object = serde_json::to_value(&o)?;
                        if let Some(outcome) = tracker.update(&object).await? {
                            return Ok(outcome);
                        }
                    }
                    Some(Ok(Event::Delete(o))) if o.metadata.name.as_deref() == Some(name.as_str()) => {
                        return Err(Error::Msg(format!("{doing} was deleted before it finished")));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        self.stats.watch_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(workflow = name, "watching the Argo Workflow: {e}; resuming");
                    }
                    None => return Err(Error::Msg(format!("the watch of {doing} ended"))),
                }
            }
        }
    }

    fn host(&self) -> Result<&BackendHost> {
        self.host
            .get()
            .ok_or_else(|| Error::Msg("the Kubernetes backend is not attached to an engine".into()))
    }

    fn kube_name(&self, service: &str) -> Result<String> {
        self.host()?
            .plan
            .service(service)
            .map(|s| s.kube_name.clone())
            .ok_or_else(|| Error::Msg(format!("no service `{service}`")))
    }

    /// Points the service's Deployment at a model file.
    async fn serve(&self, service: &str, path: &str, model_id: i64) -> Result<()> {
        let name = self.kube_name(service)?;
        let host = self.host()?;
        let model = host
            .store
            .with(|c| store::model(c, model_id))?
            .ok_or_else(|| Error::Msg(format!("no model {model_id}")))?;
        let label = format!("{} v{}", model.name, model.version);
        let api: ::kube::Api<Deployment> =
            ::kube::Api::namespaced(self.client.clone(), &self.namespace);
        let doing = format!("Deployment {}/{name}", self.namespace);
        let current = api
            .get(&name)
            .await
            .map_err(|e| kube_err(&format!("cannot read {doing}"), e))?;
        let containers = current
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|p| p.containers.clone())
            .unwrap_or_default();
        // The server is the pod's one container (sflow serve, or the service's image).
        let container = containers
            .first()
            .ok_or_else(|| Error::Msg(format!("{doing} has no container")))?;
        let served = container
            .env
            .iter()
            .flatten()
            .find(|e| e.name == MODEL_ENV)
            .and_then(|e| e.value.as_deref());
        let id_now = current
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(MODEL_ID_ANNOTATION))
            .map(String::as_str);
        let id_text = model_id.to_string();
        if served == Some(path) && id_now == Some(id_text.as_str()) {
            return Ok(());
        }
        let patch = json!({
            "metadata": { "annotations": { MODEL_ANNOTATION: label, MODEL_ID_ANNOTATION: id_text } },
            "spec": { "template": {
                "metadata": { "annotations": { MODEL_ID_ANNOTATION: id_text } },
                "spec": { "containers": [
                    { "name": container.name, "env": [ { "name": MODEL_ENV, "value": path } ] }
                ] }
            } }
        });
        api.patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .map_err(|e| kube_err(&format!("cannot patch {doing}"), e))?;
        self.stats.service_patches.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            service,
            model = label,
            "the service's Deployment serves a new model"
        );
        self.events
            .record(
                "apps/v1",
                "Deployment",
                &name,
                "ModelServed",
                &format!("serving {label} ({path})"),
            )
            .await;
        Ok(())
    }

    /// Moves the autoscaler's floor to `replicas`, within its bounds.
    /// `Planner.resize`: the Deployment's container gets the resources as requests and
    /// limits (equal, as the emitted manifests have them); a Deployment that has them already
    /// is not patched (no rollout).
    async fn resize(&self, service: &str, resources: &crate::executor::Resources) -> Result<()> {
        let name = self.kube_name(service)?;
        let api: ::kube::Api<Deployment> =
            ::kube::Api::namespaced(self.client.clone(), &self.namespace);
        let doing = format!("Deployment {}/{name}", self.namespace);
        let current = api
            .get(&name)
            .await
            .map_err(|e| kube_err(&format!("cannot read {doing}"), e))?;
        let container = current
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|p| p.containers.first().cloned())
            .ok_or_else(|| Error::Msg(format!("{doing} has no container")))?;
        let mut amounts = serde_json::Map::new();
        if let Some(m) = resources.cpu_millis {
            amounts.insert("cpu".into(), Json::from(format!("{m}m")));
        }
        if let Some(b) = resources.memory_bytes {
            amounts.insert(
                "memory".into(),
                Json::from(crate::executor::format_bytes(b)),
            );
        }
        if amounts.is_empty() {
            return Ok(());
        }
        let same = |list: Option<
            &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
        >| {
            amounts.iter().all(|(k, v)| {
                list.and_then(|l| l.get(k))
                    .is_some_and(|q| Some(q.0.as_str()) == v.as_str())
            })
        };
        let have = container.resources.as_ref();
        if same(have.and_then(|r| r.requests.as_ref()))
            && same(have.and_then(|r| r.limits.as_ref()))
        {
            return Ok(());
        }
        let patch = json!({
            "spec": { "template": { "spec": { "containers": [
                { "name": container.name, "resources": { "requests": amounts, "limits": amounts } }
            ] } } }
        });
        api.patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .map_err(|e| kube_err(&format!("cannot patch {doing}"), e))?;
        self.stats.service_patches.fetch_add(1, Ordering::Relaxed);
        tracing::info!(service, resources = %resources.describe(), "the service's Deployment has new resources");
        Ok(())
    }

    async fn scale(&self, service: &str, replicas: i64) -> Result<()> {
        let name = self.kube_name(service)?;
        let keda = matches!(self.host()?.plan.app.autoscaler, Some(Autoscaler::Keda));
        let (api_version, kind, min_field, max_field) = if keda {
            (
                "keda.sh/v1alpha1",
                "ScaledObject",
                "minReplicaCount",
                "maxReplicaCount",
            )
        } else {
            (
                "autoscaling/v2",
                "HorizontalPodAutoscaler",
                "minReplicas",
                "maxReplicas",
            )
        };
        let doing = format!("{kind} {}/{name}", self.namespace);
        let (min_now, max_now) = if keda {
            let api: ::kube::Api<DynamicObject> = ::kube::Api::namespaced_with(
                self.client.clone(),
                &self.namespace,
                &keda_resource(),
            );
            let o = api
                .get(&name)
                .await
                .map_err(|e| kube_err(&format!("cannot read {doing}"), e))?;
            (
                o.data
                    .pointer("/spec/minReplicaCount")
                    .and_then(Json::as_i64),
                o.data
                    .pointer("/spec/maxReplicaCount")
                    .and_then(Json::as_i64),
            )
        } else {
            let api: ::kube::Api<HorizontalPodAutoscaler> =
                ::kube::Api::namespaced(self.client.clone(), &self.namespace);
            let o = api
                .get(&name)
                .await
                .map_err(|e| kube_err(&format!("cannot read {doing}"), e))?;
            let spec = o.spec.unwrap_or_default();
            (
                spec.min_replicas.map(i64::from),
                Some(i64::from(spec.max_replicas)),
            )
        };
        let floor = match max_now {
            Some(max) => replicas.clamp(1, max.max(1)),
            None => replicas.max(1),
        };
        if min_now == Some(floor) {
            return Ok(());
        }
        let patch = json!({ "spec": { min_field: floor } });
        let params = PatchParams::default();
        let result = if keda {
            let api: ::kube::Api<DynamicObject> = ::kube::Api::namespaced_with(
                self.client.clone(),
                &self.namespace,
                &keda_resource(),
            );
            api.patch(&name, &params, &Patch::Merge(&patch))
                .await
                .map(|_| ())
        } else {
            let api: ::kube::Api<HorizontalPodAutoscaler> =
                ::kube::Api::namespaced(self.client.clone(), &self.namespace);
            api.patch(&name, &params, &Patch::Merge(&patch))
                .await
                .map(|_| ())
        };
        result.map_err(|e| kube_err(&format!("cannot patch {doing}"), e))?;
        self.stats.service_patches.fetch_add(1, Ordering::Relaxed);
        tracing::info!(service, replicas = floor, "moved the autoscaler's floor");
        let bound = max_now.map_or(String::new(), |m| format!(" (at most {m}: `{max_field}`)"));
        self.events
            .record(
                api_version,
                kind,
                &name,
                "Scaled",
                &format!("{min_field} set to {floor}{bound}"),
            )
            .await;
        Ok(())
    }
}

fn keda_resource() -> ::kube::core::ApiResource {
    ::kube::core::ApiResource::from_gvk_with_plural(
        &::kube::core::GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject"),
        "scaledobjects",
    )
}

fn interrupted() -> RunOutcome {
    RunOutcome {
        status: RunStatus::Interrupted,
        metrics: Vec::new(),
        models: Vec::new(),
    }
}

/// Records a Workflow's nodes as they change.
struct Tracker<'a> {
    ctx: &'a RunContext,
    wf: &'a WorkflowPlan,
    artifacts: &'a std::path::Path,
    progress: Progress,
    stats: &'a Stats,
}

impl Tracker<'_> {
    /// Records what changed; the outcome once the Workflow has ended.
    async fn update(&mut self, object: &Json) -> Result<Option<RunOutcome>> {
        let nodes = argo::nodes(object);
        let attempts = argo::attempts(self.wf, &nodes);
        for step in &self.wf.steps {
            let Some(list) = attempts.get(&step.name) else {
                continue;
            };
            for (i, node) in list.iter().enumerate() {
                let known = self.progress.nodes.get(&node.id);
                let status = argo::step_status(&node.phase);
                if known.is_some_and(|k| k.done) || (status == "running" && known.is_some()) {
                    continue;
                }
                let existing = known.map(|k| k.step_run);
                self.record(step, i as i64 + 1, node, existing).await?;
            }
        }
        let Some(phase) = argo::phase(object).filter(|p| argo::is_final(p)) else {
            return Ok(None);
        };
        let phase = phase.to_string();
        self.finish_leftovers(&attempts, &phase)?;
        let status = if phase == "Succeeded" && self.progress.problems.is_empty() {
            RunStatus::Succeeded
        } else if !self.progress.problems.is_empty() {
            RunStatus::Failed(self.progress.problems.join("; "))
        } else {
            RunStatus::Failed(argo::failure(object, &nodes))
        };
        let run_id = self.ctx.run_id;
        let metrics = self
            .ctx
            .store
            .with(|c| store::metrics_of_run(c, run_id))?
            .into_iter()
            .filter_map(|m| {
                Some((
                    m.step,
                    m.name,
                    serde_json::from_value::<RtValue>(m.value).ok()?,
                ))
            })
            .collect();
        let models = self
            .ctx
            .store
            .with(store::models)?
            .into_iter()
            .filter(|m| m.run_id == run_id)
            .map(|m| NewModel {
                id: m.id,
                name: m.name,
                version: m.version,
            })
            .collect();
        Ok(Some(RunOutcome {
            status,
            metrics,
            models,
        }))
    }

    /// At the end: steps that never ran are recorded as skipped, attempts Argo never finished
    /// as failed.
    fn finish_leftovers(
        &mut self,
        attempts: &BTreeMap<String, Vec<&Node>>,
        phase: &str,
    ) -> Result<()> {
        let now = self.ctx.clock.now_ms();
        let run_id = self.ctx.run_id;
        let key = progress_key(run_id);
        let progress = &mut self.progress;
        self.ctx.store.tx(|c| {
            for step in &self.wf.steps {
                let ran = attempts.get(&step.name).is_some_and(|a| !a.is_empty());
                if !ran && !progress.skipped.contains(&step.name) {
                    store::insert_step_run(
                        c,
                        &NewStepRun {
                            run_id,
                            step: &step.name,
                            attempt: 1,
                            status: "skipped",
                            error: Some(&format!(
                                "not run: the Argo workflow ended ({phase}) before it started"
                            )),
                            ..NewStepRun::default()
                        },
                        now,
                    )?;
                    progress.skipped.push(step.name.clone());
                }
            }
            for known in progress.nodes.values_mut().filter(|k| !k.done) {
                store::finish_step_run(
                    c,
                    known.step_run,
                    "failed",
                    None,
                    Some(&format!(
                        "the Argo workflow ended ({phase}) before this attempt did"
                    )),
                    now,
                )?;
                known.done = true;
            }
            store::kv_set(c, &key, &serde_json::to_value(&*progress)?)
        })
    }

    /// Records one node as attempt `attempt` of `step`.
    async fn record(
        &mut self,
        step: &StepPlan,
        attempt: i64,
        node: &Node,
        existing: Option<i64>,
    ) -> Result<()> {
        let status = argo::step_status(&node.phase);
        let wf_name = self.wf.name.clone();
        let run_id = self.ctx.run_id;
        let key = progress_key(run_id);
        // Outputs and metrics of a success are read (I/O) before the transaction.
        let mut checked = Vec::new();
        let mut arts = Vec::new();
        let mut problems = Vec::new();
        if status == "succeeded" {
            match contract::parse_metrics(node.metrics().unwrap_or(""))
                .and_then(|points| contract::check_metrics(&step.metrics, &points))
            {
                Ok(c) => checked = c,
                Err(e) => problems.push(e),
            }
            for o in &step.outputs {
                let Some(reported) = node.outputs.get(&output_param(&o.name)).cloned() else {
                    problems.push(format!(
                        "output `{}` was not reported (no output parameter `{}`)",
                        o.name,
                        output_param(&o.name)
                    ));
                    continue;
                };
                let local = argo::local_path(&reported, self.artifacts);
                let shown = local.display().to_string();
                match tokio::task::spawn_blocking(move || digest::digest_path(&local)).await {
                    Ok(Ok((sha, size))) => {
                        arts.push((o.name.clone(), o.ty.clone(), reported, sha, size))
                    }
                    Ok(Err(e)) => problems.push(format!(
                        "output `{}` ({}) cannot be read at {shown}: {e}",
                        o.name,
                        crate::value::type_name(&o.ty)
                    )),
                    Err(e) => problems.push(format!("output `{}`: {e}", o.name)),
                }
            }
        }
        let problem = (!problems.is_empty())
            .then(|| format!("step `{}`: {}", step.name, problems.join("; ")));
        let now = self.ctx.clock.now_ms();
        let params_json: serde_json::Map<String, Json> = self
            .ctx
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        let mut latest: BTreeMap<String, RtValue> = BTreeMap::new();
        for m in &checked {
            latest.insert(m.name.clone(), m.value.clone());
        }
        let metrics_json: serde_json::Map<String, Json> = latest
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        let progress = &mut self.progress;
        let models = self.ctx.store.tx(|c| {
            let sr = match existing {
                Some(id) => id,
                None => store::insert_step_run(
                    c,
                    &NewStepRun {
                        run_id,
                        step: &step.name,
                        attempt,
                        status: "running",
                        ..NewStepRun::default()
                    },
                    now,
                )?,
            };
            let mut models = Vec::new();
            let done = status != "running";
            match (status, &problem) {
                ("running", _) => {}
                ("succeeded", None) => {
                    let final_status = if node.cached { "cached" } else { "succeeded" };
                    store::finish_step_run(c, sr, final_status, node.exit_code.or(Some(0)), None, now)?;
                    for m in &checked {
                        let j = serde_json::to_value(&m.value)?;
                        store::insert_metric(c, run_id, sr, &wf_name, &step.name, &m.name, &crate::value::type_name(&m.ty), contract::metric_number(&m.value), &j, m.seq, now)?;
                    }
                    for (name, ty, path, sha, size) in &arts {
                        let size = i64::try_from(*size).unwrap_or(i64::MAX);
                        let art = store::insert_artifact(c, run_id, sr, &step.name, name, &crate::value::type_name(ty), path, sha, size, now)?;
                        if *ty == PlanType::Model && !node.cached {
                            let model_name = format!("{wf_name}.{}.{name}", step.name);
                            let lineage = json!({
                                "run": run_id, "workflow": wf_name, "step": step.name, "output": name,
                                "params": params_json, "argoNode": node.id,
                                "source": format!("{}:{}:{}", step.source.file, step.source.line, step.source.column),
                            });
                            let (id, version) = store::register_model(c, &model_name, run_id, Some(art), path, sha, size, &json!(metrics_json), &lineage, now)?;
                            models.push(NewModel { id, name: model_name, version });
                        }
                    }
                }
                ("succeeded", Some(p)) => {
                    store::finish_step_run(c, sr, "failed", node.exit_code, Some(p), now)?;
                    progress.problems.push(p.clone());
                }
                ("skipped", _) => {
                    let why = node
                        .message
                        .clone()
                        .unwrap_or_else(|| "Argo did not run it (a step it depends on failed)".to_string());
                    store::finish_step_run(c, sr, "skipped", None, Some(&format!("not run: {why}")), now)?;
                }
                _ => {
                    let why = node.message.clone().unwrap_or_else(|| format!("the pod ended {}", node.phase));
                    store::finish_step_run(c, sr, "failed", node.exit_code, Some(&why), now)?;
                }
            }
            progress.nodes.insert(node.id.clone(), Known { step_run: sr, done });
            store::kv_set(c, &key, &serde_json::to_value(&*progress)?)?;
            Ok(models)
        })?;
        if status != "running" {
            self.stats.attempts_recorded.fetch_add(1, Ordering::Relaxed);
        }
        if status == "succeeded" && problem.is_none() {
            if let Some(h) = &self.ctx.hooks {
                let metrics: Vec<(String, RtValue)> = latest.into_iter().collect();
                h.step_succeeded(&step.name, &metrics, &models);
            }
        }
        Ok(())
    }
}
