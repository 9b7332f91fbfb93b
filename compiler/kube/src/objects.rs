//! The objects of a build as the cluster client sees them, the kinds an app can own, and the
//! discovery of how the cluster serves each kind.

use crate::config::Cluster;
use crate::error::KubeError;
use kube::api::{ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, Scope};
use kube::Api;
use serde_json::Value;
use sflow_emit::meta::{MANAGED_BY_LABEL, PART_OF};
use sflow_emit::{Manifest, MANAGED_BY};
use std::collections::BTreeMap;

/// One object of the build, parsed back from its YAML.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// Its group, version and kind.
    pub gvk: GroupVersionKind,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, for namespaced objects.
    pub namespace: Option<String>,
    /// The whole object, as applied.
    pub object: Value,
}

impl Desired {
    /// `Deployment mnist/predictor`, `Namespace mnist`.
    pub fn display(&self) -> String {
        display(&self.gvk.kind, self.namespace.as_deref(), &self.name)
    }
}

/// `KIND NAMESPACE/NAME` or `KIND NAME`.
pub fn display(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// The app a build belongs to, as its labels say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    /// The app's Kubernetes name: the value of `app.kubernetes.io/part-of`.
    pub name: String,
    /// The app's namespace.
    pub namespace: String,
}

impl App {
    /// The label selector of every object sflowc applied for this app. Prune and delete find
    /// objects by it, never by their names.
    pub fn selector(&self) -> String {
        format!("{PART_OF}={},{MANAGED_BY_LABEL}={MANAGED_BY}", self.name)
    }

    /// Whether `object`'s labels are this app's (checked on our side too, so that a server
    /// that ignored the selector can never make sflowc delete someone else's object).
    pub fn owns(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        labels[PART_OF].as_str() == Some(self.name.as_str())
            && labels[MANAGED_BY_LABEL].as_str() == Some(MANAGED_BY)
    }
}

/// The kinds the emit stage can produce (docs/kubernetes-manifests.md §3 and §12), as
/// `(group, version, kind)`. Prune and delete look for the app's leftovers in each, plus any
/// other kind in the build (user templates). `Namespace` is not here: sflowc never prunes a
/// namespace (that would delete everything in it); `sflowc delete` removes it on purpose.
pub const APP_KINDS: &[(&str, &str, &str)] = &[
    ("", "v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io", "v1", "Role"),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding"),
    ("", "v1", "ConfigMap"),
    ("", "v1", "PersistentVolumeClaim"),
    ("networking.k8s.io", "v1", "NetworkPolicy"),
    ("", "v1", "Service"),
    ("apps", "v1", "Deployment"),
    ("autoscaling", "v2", "HorizontalPodAutoscaler"),
    ("policy", "v1", "PodDisruptionBudget"),
    ("argoproj.io", "v1alpha1", "WorkflowTemplate"),
    ("argoproj.io", "v1alpha1", "CronWorkflow"),
    ("keda.sh", "v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com", "v1", "ServiceMonitor"),
];

/// Parses the build's manifests (in apply order) and finds the app they belong to.
pub fn desired(manifests: &[Manifest]) -> Result<(App, Vec<Desired>), KubeError> {
    let mut objects = Vec::with_capacity(manifests.len());
    for m in manifests {
        let bad = |message: String| KubeError::Manifest {
            file: m.file_name.clone(),
            message,
        };
        let object: Value = serde_yaml_ng::from_str(&m.yaml).map_err(|e| bad(e.to_string()))?;
        let (group, version) = match m.api_version.split_once('/') {
            Some((group, version)) => (group.to_string(), version.to_string()),
            None => (String::new(), m.api_version.clone()),
        };
        let namespace = object["metadata"]["namespace"].as_str().map(str::to_string);
        objects.push(Desired {
            gvk: GroupVersionKind::gvk(&group, &version, &m.kind),
            name: m.name.clone(),
            namespace,
            object,
        });
    }
    let first = objects.first().ok_or_else(|| KubeError::Manifest {
        file: "(the build)".to_string(),
        message: "the build has no objects".to_string(),
    })?;
    let name = first.object["metadata"]["labels"][PART_OF]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| KubeError::Manifest {
            file: first.display(),
            message: format!("it has no `{PART_OF}` label"),
        })?;
    let namespace = objects
        .iter()
        .find(|o| o.gvk.kind == "Namespace" && o.gvk.group.is_empty())
        .map(|o| o.name.clone())
        .or_else(|| objects.iter().find_map(|o| o.namespace.clone()))
        .ok_or_else(|| KubeError::Manifest {
            file: "(the build)".to_string(),
            message: "no object names the app's namespace".to_string(),
        })?;
    Ok((App { name, namespace }, objects))
}

/// The kinds to look for the app's objects in: [`APP_KINDS`] and the build's other kinds, in
/// that order, without duplicates and without `Namespace`.
pub fn owned_kinds(objects: &[Desired]) -> Vec<GroupVersionKind> {
    let mut kinds: Vec<GroupVersionKind> = APP_KINDS
        .iter()
        .map(|(g, v, k)| GroupVersionKind::gvk(g, v, k))
        .collect();
    for o in objects {
        let is_namespace = o.gvk.group.is_empty() && o.gvk.kind == "Namespace";
        if !is_namespace && !kinds.contains(&o.gvk) {
            kinds.push(o.gvk.clone());
        }
    }
    kinds
}

/// What to install for a kind the cluster does not serve.
pub fn install_hint(gvk: &GroupVersionKind) -> String {
    match gvk.group.as_str() {
        "argoproj.io" => "install Argo Workflows (≥ 3.6) in the cluster: its CRDs serve WorkflowTemplates and CronWorkflows (docs/kubernetes.md)".to_string(),
        "keda.sh" => "install KEDA, or drop `autoscaler = \"keda\"` from the app".to_string(),
        "monitoring.coreos.com" => "install the Prometheus Operator's CRDs, or drop `monitoring = \"prometheus\"` from the app".to_string(),
        _ => format!(
            "the cluster's Kubernetes version or installed CRDs do not include `{}`; `kubectl api-resources` lists what it serves",
            gvk.kind
        ),
    }
}

/// How the cluster serves each kind, asked once per kind (API discovery).
pub struct Resolver<'a> {
    cluster: &'a Cluster,
    known: BTreeMap<(String, String, String), Option<(ApiResource, ApiCapabilities)>>,
}

impl<'a> Resolver<'a> {
    /// A resolver that has asked nothing yet.
    pub fn new(cluster: &'a Cluster) -> Resolver<'a> {
        Resolver {
            cluster,
            known: BTreeMap::new(),
        }
    }

    /// The resource serving `gvk`, or `None` when the cluster does not serve it.
    pub async fn resolve(
        &mut self,
        gvk: &GroupVersionKind,
    ) -> Result<Option<(ApiResource, ApiCapabilities)>, KubeError> {
        let key = (gvk.group.clone(), gvk.version.clone(), gvk.kind.clone());
        if let Some(known) = self.known.get(&key) {
            return Ok(known.clone());
        }
        let found = match kube::discovery::pinned_kind(&self.cluster.client, gvk).await {
            Ok(found) => Some(found),
            Err(kube::Error::Discovery(_)) => None,
            Err(e) if KubeError::is_not_found(&e) => None,
            Err(e) => {
                return Err(KubeError::from_kube(
                    e,
                    &self.cluster.server,
                    format!("discovering how the cluster serves {}", gvk.kind),
                ))
            }
        };
        self.known.insert(key, found.clone());
        Ok(found)
    }

    /// Like [`Resolver::resolve`], but a kind the cluster does not serve is an error.
    pub async fn require(
        &mut self,
        gvk: &GroupVersionKind,
    ) -> Result<(ApiResource, ApiCapabilities), KubeError> {
        self.resolve(gvk)
            .await?
            .ok_or_else(|| KubeError::NotServed {
                api_version: gvk.api_version(),
                kind: gvk.kind.clone(),
                hint: install_hint(gvk),
            })
    }

    /// The API of one kind, in `namespace` when the kind is namespaced.
    pub fn api(
        &self,
        resource: &(ApiResource, ApiCapabilities),
        namespace: &str,
    ) -> Api<DynamicObject> {
        match resource.1.scope {
            Scope::Namespaced => {
                Api::namespaced_with(self.cluster.client.clone(), namespace, &resource.0)
            }
            Scope::Cluster => Api::all_with(self.cluster.client.clone(), &resource.0),
        }
    }
}
