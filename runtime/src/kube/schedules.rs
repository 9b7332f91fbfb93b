//! Runs that Argo's CronWorkflows start, recorded in the store like the runs the runtime
//! starts (docs/kubernetes.md §8).
//!
//! A `schedule` trigger with a constant `run` is a CronWorkflow in the manifests
//! (docs/kubernetes-manifests.md §7), so Argo, not the engine, fires it. The CronWorkflow labels
//! the `Workflow`s it creates with the app (`app.kubernetes.io/part-of`) and the trigger
//! (`sflow.dev/trigger`: the trigger's Kubernetes name). While it leads, the runtime watches
//! the app's `Workflow`s (kube-runtime's watcher: list, then watch, resumed with backoff) and
//! records each one such a trigger created as a **firing of that trigger**, keyed
//! `trigger:NAME:argo:WORKFLOW` — the same exactly-once record as any firing, so a restarted
//! or newly elected runtime records it once. Performing the firing starts the run (origin
//! `trigger:NAME`, as a local schedule's run), and the backend, seeing the firing's
//! `argoWorkflow`, follows that `Workflow` instead of creating one ([`adopted`]): its steps,
//! metrics and models are recorded as any run's, so they reach signals and policies.

use crate::engine::Shared;
use ::kube::api::DynamicObject;
use ::kube::runtime::watcher::{self, Event};
use ::kube::runtime::WatchStreamExt;
use futures_util::StreamExt;
use serde_json::{json, Value as Json};
use sflow_emit::conventions::TRIGGER_LABEL;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The firing reads' field naming the `Workflow` a CronWorkflow created.
pub const ADOPT_FIELD: &str = "argoWorkflow";
/// The firing reads' field with the trigger's Kubernetes name (the `sflow.dev/trigger` label).
pub const TRIGGER_FIELD: &str = "argoTrigger";

/// The key of the firing that records `workflow`, created by trigger `trigger`.
pub fn firing_key(trigger: &str, workflow: &str) -> String {
    format!("trigger:{trigger}:argo:{workflow}")
}

/// The `Workflow` (and its trigger label) a run follows instead of creating one: the firing
/// that started it recorded a CronWorkflow's `Workflow`. `reads` are the firing's.
pub fn adopted(reads: &Json) -> Option<(String, String)> {
    Some((
        reads.get(ADOPT_FIELD)?.as_str()?.to_string(),
        reads.get(TRIGGER_FIELD)?.as_str()?.to_string(),
    ))
}

/// Watches the app's `Workflow`s and records those the CronWorkflows of `triggers` created,
/// until the engine stops.
pub async fn watch(
    client: ::kube::Client,
    namespace: String,
    app: String,
    shared: Arc<Shared>,
    triggers: BTreeSet<String>,
) {
    // Kubernetes name → (the trigger's index, its name), for the triggers Argo fires.
    let by_kube_name: BTreeMap<String, (usize, String)> = shared
        .plan()
        .triggers
        .iter()
        .enumerate()
        .filter(|(_, t)| triggers.contains(&t.name))
        .map(|(i, t)| (t.kube_name.clone(), (i, t.name.clone())))
        .collect();
    if by_kube_name.is_empty() {
        return;
    }
    let api: ::kube::Api<DynamicObject> =
        ::kube::Api::namespaced_with(client, &namespace, &super::argo::api_resource());
    // Equality selectors only (every API server serves them); the trigger label is checked here.
    let config = watcher::Config::default().labels(&format!("app.kubernetes.io/part-of={app}"));
    let stream = watcher::watcher(api, config).default_backoff();
    futures_util::pin_mut!(stream);
    let mut shutdown = shared.shutdown_receiver();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return,
            event = stream.next() => match event {
                Some(Ok(Event::Apply(o) | Event::InitApply(o))) => {
                    let Some(name) = o.metadata.name.clone() else { continue };
                    let Some(kube) = o.metadata.labels.as_ref().and_then(|l| l.get(TRIGGER_LABEL)).cloned() else { continue };
                    let Some((index, trigger)) = by_kube_name.get(&kube) else { continue };
                    if seen.contains(&name) {
                        continue;
                    }
                    let scheduled = o
                        .metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get("workflows.argoproj.io/scheduled-time"))
                        .cloned()
                        .or_else(|| o.metadata.creation_timestamp.as_ref().map(|t| t.0.to_string()));
                    let reads = json!({ ADOPT_FIELD: name, TRIGGER_FIELD: kube, "scheduled": scheduled });
                    match shared.fire_trigger(*index, &firing_key(trigger, &name), reads) {
                        Ok(new) => {
                            if new {
                                tracing::info!(trigger, workflow = name, "recording a run its CronWorkflow started");
                            }
                            seen.insert(name);
                        }
                        Err(e) => tracing::warn!(trigger, workflow = name, "cannot record a CronWorkflow's run: {e}"),
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::warn!("watching the app's Argo Workflows: {e}; resuming"),
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adopted_workflows_come_from_the_firing_reads() {
        let reads = json!({ ADOPT_FIELD: "nightly-1767225600", TRIGGER_FIELD: "nightly" });
        assert_eq!(
            adopted(&reads),
            Some(("nightly-1767225600".to_string(), "nightly".to_string()))
        );
        assert_eq!(
            adopted(&json!({ "scheduled": "2026-01-01T02:00:00Z" })),
            None
        );
        assert_eq!(
            firing_key("nightly", "nightly-1767225600"),
            "trigger:nightly:argo:nightly-1767225600"
        );
    }
}
