//! Argo `Workflow`s as the runtime creates and reads them: the object that runs a workflow's
//! `WorkflowTemplate` with a run's parameters, and the nodes of its status. Pure functions
//! (no I/O), so that every mapping is unit-tested.
//!
//! The names come from the emit stage (`sflow_emit::conventions`, docs/kubernetes-manifests.md
//! §6): a step's template is named after its Kubernetes name, its outputs are the output
//! parameters `output-<name>` (the path it wrote), its metrics the output parameter
//! `sflow-metrics` (JSON), and an Improver's labelled samples go in the parameter
//! `sflow-labelled`.

use crate::value::RtValue;
use serde_json::{json, Value as Json};
use sflow_compiler::lower::plan::WorkflowPlan;
use sflow_emit::conventions::{ARTIFACTS_MOUNT, LABELLED_PARAM, METRICS_OUTPUT, WORKFLOW_LABEL};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Argo's API group and version.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";
/// The label naming the sflow run (the store's id) a `Workflow` executes.
pub const RUN_ID_LABEL: &str = "sflow.dev/run-id";
/// The label with the `Workflow`'s own name, which the runtime watches it by (label selectors
/// work on every API server; field selectors on custom resources are not guaranteed).
pub const RUN_LABEL: &str = "sflow.dev/run";
/// `app.kubernetes.io/managed-by` of the runs the runtime creates (not `sflowc`: `sflowc
/// apply` must never prune them).
pub const MANAGED_BY: &str = "sflow-runtime";

/// How `Workflow`s are addressed.
pub fn api_resource() -> ::kube::core::ApiResource {
    ::kube::core::ApiResource::from_gvk_with_plural(
        &::kube::core::GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Workflow"),
        "workflows",
    )
}

/// The `Workflow` of run `run_id`: deterministic, so that a runtime restarted between creating
/// it and recording that it did finds it again instead of starting a second one. The start
/// time makes it unique to this store's run (a store started afresh reuses ids).
pub fn workflow_name(kube_name: &str, run_id: i64, started_ms: i64) -> String {
    let digest = crate::executor::digest::sha256_hex(format!("{run_id}:{started_ms}").as_bytes());
    let stem: String = kube_name.chars().take(40).collect();
    let stem = stem.trim_end_matches('-');
    format!("{stem}-{run_id}-{}", digest.get(..6).unwrap_or(&digest))
}

/// What a `Workflow` is made from.
pub struct Submit<'a> {
    /// The app.
    pub app: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// The workflow.
    pub workflow: &'a WorkflowPlan,
    /// The object's name ([`workflow_name`]).
    pub name: &'a str,
    /// The store's run id.
    pub run_id: i64,
    /// Every param of the run.
    pub params: &'a BTreeMap<String, RtValue>,
    /// An Improver's labelled samples (`SFLOW_INPUT_LABELLED` of the local contract).
    pub labelled: Option<&'a str>,
}

/// The `Workflow` object: the workflow's `WorkflowTemplate` by reference, every param as
/// text in the contract's form (docs/kubernetes-manifests.md §6.4).
pub fn workflow_object(s: &Submit<'_>) -> Json {
    let mut parameters: Vec<Json> = s
        .workflow
        .params
        .iter()
        .filter_map(|p| {
            s.params
                .get(&p.name)
                .map(|v| json!({ "name": p.name, "value": v.to_param_text() }))
        })
        .collect();
    if let Some(l) = s.labelled {
        parameters.push(json!({ "name": LABELLED_PARAM, "value": l }));
    }
    json!({
        "apiVersion": API_VERSION,
        "kind": "Workflow",
        "metadata": {
            "name": s.name,
            "namespace": s.namespace,
            "labels": {
                "app.kubernetes.io/part-of": s.app,
                "app.kubernetes.io/managed-by": MANAGED_BY,
                WORKFLOW_LABEL: s.workflow.kube_name,
                RUN_LABEL: s.name,
                RUN_ID_LABEL: s.run_id.to_string(),
            },
        },
        "spec": {
            "workflowTemplateRef": { "name": s.workflow.kube_name },
            "arguments": { "parameters": parameters },
        },
    })
}

/// The `Workflow`'s phase (`Pending`, `Running`, `Succeeded`, `Failed`, `Error`), if any.
pub fn phase(workflow: &Json) -> Option<&str> {
    workflow.pointer("/status/phase").and_then(Json::as_str)
}

/// Whether a phase is final.
pub fn is_final(phase: &str) -> bool {
    matches!(phase, "Succeeded" | "Failed" | "Error")
}

/// One node of a `Workflow`'s status.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The node's id (the key of `status.nodes`).
    pub id: String,
    /// Its template (a step's Kubernetes name, or the DAG's).
    pub template: String,
    /// `Pod`, `Retry`, `DAG`, `Skipped`, …
    pub kind: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Error`, `Skipped`, `Omitted`.
    pub phase: String,
    /// Argo's message (why it failed).
    pub message: Option<String>,
    /// When it started (RFC 3339, sorts as text).
    pub started_at: Option<String>,
    /// Its output parameters.
    pub outputs: BTreeMap<String, String>,
    /// Its exit code, when Argo reported one.
    pub exit_code: Option<i64>,
    /// A memoization hit: Argo reused a cached result.
    pub cached: bool,
}

impl Node {
    /// The step's metrics report (the `sflow-metrics` output parameter).
    pub fn metrics(&self) -> Option<&str> {
        self.outputs.get(METRICS_OUTPUT).map(String::as_str)
    }
}

/// The status of a step attempt, as the store records it, for a node's phase.
pub fn step_status(phase: &str) -> &'static str {
    match phase {
        "Succeeded" => "succeeded",
        "Failed" | "Error" => "failed",
        "Skipped" | "Omitted" => "skipped",
        _ => "running",
    }
}

/// The nodes of a `Workflow`'s status.
pub fn nodes(workflow: &Json) -> Vec<Node> {
    let Some(map) = workflow.pointer("/status/nodes").and_then(Json::as_object) else {
        return Vec::new();
    };
    let text = |n: &Json, k: &str| n.get(k).and_then(Json::as_str).map(str::to_string);
    map.iter()
        .map(|(id, n)| Node {
            id: id.clone(),
            template: text(n, "templateName").unwrap_or_default(),
            kind: text(n, "type").unwrap_or_default(),
            phase: text(n, "phase").unwrap_or_default(),
            message: text(n, "message").filter(|m| !m.is_empty()),
            started_at: text(n, "startedAt"),
            outputs: n
                .pointer("/outputs/parameters")
                .and_then(Json::as_array)
                .map(|ps| {
                    ps.iter()
                        .filter_map(|p| Some((text(p, "name")?, text(p, "value")?)))
                        .collect()
                })
                .unwrap_or_default(),
            exit_code: n.pointer("/outputs/exitCode").and_then(|c| {
                c.as_i64()
                    .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
            }),
            cached: n
                .pointer("/memoizationStatus/hit")
                .and_then(Json::as_bool)
                .unwrap_or(false),
        })
        .collect()
}

/// Each step's attempts: the `Pod` nodes of its template in the order they started (a step
/// with `retry` has one per try under its `Retry` node), and a step Argo skipped as a
/// `Skipped`/`Omitted` node. Keys are the plan's step names.
pub fn attempts<'a>(workflow: &WorkflowPlan, nodes: &'a [Node]) -> BTreeMap<String, Vec<&'a Node>> {
    let mut out = BTreeMap::new();
    for step in &workflow.steps {
        let mut mine: Vec<&Node> = nodes
            .iter()
            .filter(|n| n.template == step.kube_name)
            .filter(|n| {
                n.kind == "Pod"
                    || n.kind == "Skipped"
                    || (n.kind != "Retry" && matches!(n.phase.as_str(), "Skipped" | "Omitted"))
            })
            .collect();
        mine.sort_by(|a, b| (&a.started_at, &a.id).cmp(&(&b.started_at, &b.id)));
        out.insert(step.name.clone(), mine);
    }
    out
}

/// Where the runtime reads a path a step reported: the steps' `/artifacts/…` is the volume
/// mounted at `artifacts` here (the same path in the runtime's pod).
pub fn local_path(reported: &str, artifacts: &Path) -> PathBuf {
    match Path::new(reported).strip_prefix(ARTIFACTS_MOUNT) {
        Ok(rest) => artifacts.join(rest),
        Err(_) => PathBuf::from(reported),
    }
}

/// Where a step pod sees `local`, a path of this process under the artifacts volume's mount
/// `artifacts` (the inverse of [`local_path`]); other paths are kept.
pub fn pod_path(local: &Path, artifacts: &Path) -> String {
    match local.strip_prefix(artifacts) {
        Ok(rest) => Path::new(ARTIFACTS_MOUNT).join(rest).display().to_string(),
        Err(_) => local.display().to_string(),
    }
}

/// Why a final `Workflow` failed: its message, or the first failed step's.
pub fn failure(workflow: &Json, nodes: &[Node]) -> String {
    // A step whose every attempt failed (a retried step that then succeeded is not the cause).
    let failed = nodes
        .iter()
        .filter(|n| n.kind == "Pod" && matches!(n.phase.as_str(), "Failed" | "Error"))
        .filter(|n| {
            !nodes
                .iter()
                .any(|o| o.template == n.template && o.kind == "Pod" && o.phase == "Succeeded")
        })
        .max_by(|a, b| a.started_at.cmp(&b.started_at));
    let phase = phase(workflow).unwrap_or("Failed");
    match (
        workflow
            .pointer("/status/message")
            .and_then(Json::as_str)
            .filter(|m| !m.is_empty()),
        failed,
    ) {
        (_, Some(n)) => format!(
            "the Argo workflow {phase}: step `{}` failed: {}",
            n.template,
            n.message.as_deref().unwrap_or("no message")
        ),
        (Some(m), None) => format!("the Argo workflow {phase}: {m}"),
        (None, None) => format!("the Argo workflow {phase}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;

    fn plan() -> Result<sflow_compiler::lower::plan::Plan> {
        Ok(crate::program::plan_of_source(
            "t.sflow",
            "app t { namespace = \"t\" }\nworkflow training {\n  param acc: float = 0.8\n  param epochs: int = 3\n  step fit {\n    image = \"busybox\"\n    run = \"true\"\n    output model: Model\n    metric accuracy: ratio\n    retry 2\n  }\n  step report {\n    image = \"busybox\"\n    run = \"true\"\n    input model: Model = fit.model\n  }\n}\n",
        )?)
    }

    #[test]
    fn names_are_deterministic_valid_and_unique_per_run() {
        let a = workflow_name("training", 7, 1000);
        assert_eq!(a, workflow_name("training", 7, 1000));
        assert_ne!(a, workflow_name("training", 7, 1001));
        assert!(a.starts_with("training-7-"));
        let long = workflow_name(&"x".repeat(100), 123_456, 0);
        assert!(long.len() <= 63, "{long}");
        assert!(long
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    }

    #[test]
    fn the_object_references_the_template_with_every_param() -> Result<()> {
        let plan = plan()?;
        let wf = plan.workflow("training").ok_or("no workflow")?;
        let params = BTreeMap::from([
            ("acc".to_string(), RtValue::Float { value: 0.95 }),
            ("epochs".to_string(), RtValue::Int { value: 3 }),
        ]);
        let o = workflow_object(&Submit {
            app: "t",
            namespace: "t",
            workflow: wf,
            name: "training-1-abc",
            run_id: 1,
            params: &params,
            labelled: Some("/artifacts/l"),
        });
        assert_eq!(o["spec"]["workflowTemplateRef"]["name"], "training");
        assert_eq!(
            o["spec"]["arguments"]["parameters"],
            json!([{"name": "acc", "value": "0.95"}, {"name": "epochs", "value": "3"}, {"name": "sflow-labelled", "value": "/artifacts/l"}])
        );
        assert_eq!(o["metadata"]["labels"][RUN_LABEL], "training-1-abc");
        assert_eq!(
            o["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "sflow-runtime"
        );
        Ok(())
    }

    #[test]
    fn attempts_are_pod_nodes_of_the_step_template_in_start_order() -> Result<()> {
        let plan = plan()?;
        let wf = plan.workflow("training").ok_or("no workflow")?;
        let status = json!({"status": {"phase": "Failed", "message": "child failed", "nodes": {
            "w": {"type": "DAG", "templateName": "Main", "phase": "Failed"},
            "w-r": {"type": "Retry", "templateName": "fit", "phase": "Succeeded"},
            "w-2": {"type": "Pod", "templateName": "fit", "phase": "Succeeded", "startedAt": "2026-01-01T00:00:09Z",
                    "outputs": {"parameters": [{"name": "output-model", "value": "/artifacts/runs/w/fit/outputs/model"},
                                               {"name": "sflow-metrics", "value": "{\"accuracy\": 0.9}"}], "exitCode": "0"}},
            "w-1": {"type": "Pod", "templateName": "fit", "phase": "Failed", "message": "OOMKilled", "startedAt": "2026-01-01T00:00:01Z"},
            "w-3": {"type": "Skipped", "templateName": "report", "phase": "Omitted"}
        }}});
        let nodes = nodes(&status);
        let a = attempts(wf, &nodes);
        let fit: Vec<&str> = a["fit"].iter().map(|n| n.id.as_str()).collect();
        assert_eq!(fit, ["w-1", "w-2"]);
        assert_eq!(a["fit"][1].exit_code, Some(0));
        assert_eq!(a["fit"][1].metrics(), Some("{\"accuracy\": 0.9}"));
        assert_eq!(step_status(&a["report"][0].phase), "skipped");
        assert_eq!(
            failure(&status, &nodes),
            "the Argo workflow Failed: child failed"
        );
        let only_failures: Vec<Node> = nodes.iter().filter(|n| n.id != "w-2").cloned().collect();
        assert_eq!(
            failure(&status, &only_failures),
            "the Argo workflow Failed: step `fit` failed: OOMKilled"
        );
        assert_eq!(
            local_path("/artifacts/runs/w/fit/outputs/model", Path::new("/data")),
            PathBuf::from("/data/runs/w/fit/outputs/model")
        );
        assert_eq!(
            local_path("/elsewhere/m", Path::new("/data")),
            PathBuf::from("/elsewhere/m")
        );
        assert!(is_final("Error") && !is_final("Running"));
        Ok(())
    }
}
