//! The part of the Argo Workflows API (`argoproj.io/v1alpha1`, Argo ≥ 3.6) that sflow emits,
//! as typed structs. `k8s-openapi` has no types for custom resources, so these mirror Argo's
//! Go types field for field (same names, same JSON shapes); containers, volumes and security
//! contexts are `k8s-openapi`'s own. `.ci/validate-manifests.sh` checks the output against the
//! schema of Argo's generated models with unknown fields forbidden.

use k8s_openapi::api::core::v1::{Container, LocalObjectReference, PodSecurityContext, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use std::collections::BTreeMap;

/// The API version of Argo's resources.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";

/// A `WorkflowTemplate`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowTemplate {
    /// Always [`API_VERSION`].
    pub api_version: &'static str,
    /// Always `WorkflowTemplate`.
    pub kind: &'static str,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// The spec.
    pub spec: WorkflowSpec,
}

/// A `CronWorkflow`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CronWorkflow {
    /// Always [`API_VERSION`].
    pub api_version: &'static str,
    /// Always `CronWorkflow`.
    pub kind: &'static str,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// The spec.
    pub spec: CronWorkflowSpec,
}

/// `CronWorkflowSpec`
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CronWorkflowSpec {
    /// Cron schedules (Argo ≥ 3.6 takes a list).
    pub schedules: Vec<String>,
    /// The time zone of the schedules.
    pub timezone: String,
    /// `Allow`, `Forbid` or `Replace`.
    pub concurrency_policy: String,
    /// How many successful runs to keep.
    pub successful_jobs_history_limit: i32,
    /// How many failed runs to keep.
    pub failed_jobs_history_limit: i32,
    /// Metadata of the workflows it starts.
    pub workflow_metadata: ObjectMeta,
    /// The workflow it starts.
    pub workflow_spec: WorkflowSpec,
}

/// `WorkflowSpec` (also the spec of a `WorkflowTemplate`).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSpec {
    /// The template to start with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
    /// The workflow's parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
    /// Runs a `WorkflowTemplate` (in a `CronWorkflow`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_template_ref: Option<WorkflowTemplateRef>,
    /// The service account of the step pods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// The pod-level security context of every step pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Labels and annotations of every step pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_metadata: Option<Metadata>,
    /// Labels and annotations of every workflow started from the template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow_metadata: Option<Metadata>,
    /// A strategic-merge patch of every step pod (hardens Argo's own containers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_spec_patch: Option<String>,
    /// When step pods are deleted.
    #[serde(rename = "podGC", skip_serializing_if = "Option::is_none")]
    pub pod_gc: Option<PodGc>,
    /// When finished workflows are deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_strategy: Option<TtlStrategy>,
    /// Volumes of every step pod.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// The templates.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<Template>,
}

/// `WorkflowTemplateRef`
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowTemplateRef {
    /// The template's name.
    pub name: String,
}

/// `Metadata` (labels and annotations only).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `PodGC`
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodGc {
    /// `OnPodSuccess`, …
    pub strategy: String,
}

/// `TTLStrategy`
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TtlStrategy {
    /// Seconds after the workflow finished.
    pub seconds_after_completion: i32,
}

/// `Arguments` / `Inputs`: parameters only (sflow passes artifacts by path on a volume).
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Arguments {
    /// The parameters.
    pub parameters: Vec<Parameter>,
}

/// `Outputs`: parameters only.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outputs {
    /// The parameters.
    pub parameters: Vec<Parameter>,
}

/// `Parameter`
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    /// Its name.
    pub name: String,
    /// Its value (a default, for workflow parameters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Where an output parameter's value comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
    /// A description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Parameter {
    /// A parameter with a value (or none: then it must be supplied).
    pub fn value(name: impl Into<String>, value: Option<String>) -> Parameter {
        Parameter {
            name: name.into(),
            value,
            value_from: None,
            description: None,
        }
    }
}

/// `ValueFrom`: an output parameter read from a file of the main container.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    /// The file.
    pub path: String,
    /// The value when the file is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// `Template`: a DAG or a container.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    /// Its name.
    pub name: String,
    /// Labels and annotations of its pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Its inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Arguments>,
    /// Its outputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Outputs>,
    /// A DAG of tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dag: Option<DagTemplate>,
    /// Containers run before the main one (data sources).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    /// The main container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// The time limit of each attempt, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<IntOrString>,
    /// Retries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategy>,
    /// Result caching.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memoize: Option<Memoize>,
}

/// `DAGTemplate`
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DagTemplate {
    /// The tasks.
    pub tasks: Vec<DagTask>,
}

/// `DAGTask`
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DagTask {
    /// Its name.
    pub name: String,
    /// The template it runs.
    pub template: String,
    /// The tasks that must succeed first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<String>,
    /// Its arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Arguments>,
}

/// `RetryStrategy`
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryStrategy {
    /// Retries after the first attempt.
    pub limit: IntOrString,
    /// `Always`: retry failures and errors.
    pub retry_policy: String,
    /// The delay between attempts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
}

/// `Backoff`
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// The first delay (`10s`).
    pub duration: String,
    /// The factor each later delay grows by.
    pub factor: IntOrString,
}

/// `Memoize`
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Memoize {
    /// The cache key (an expression).
    pub key: String,
    /// How long an entry is valid.
    pub max_age: String,
    /// Where entries are kept.
    pub cache: Cache,
}

/// `Cache`
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cache {
    /// The ConfigMap.
    pub config_map: LocalObjectReference,
}
