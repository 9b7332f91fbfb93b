//! Labels, annotations and object metadata: the conventions every generated object follows.
//!
//! Every object gets the six `app.kubernetes.io/*` labels:
//!
//! | label | value |
//! | --- | --- |
//! | `name` | the declaration's Kubernetes name (`predictor`, `training`), or the app's for app-wide objects |
//! | `instance` | the app's Kubernetes name |
//! | `component` | what the object is for: `service`, `workflow`, `schedule`, `runtime`, `plan`, `artifacts`, `network`, `app`, `extension` (user templates) |
//! | `part-of` | the app's Kubernetes name |
//! | `managed-by` | `sflowc` |
//! | `version` | the plan's revision: the first 12 hex digits of the SHA-256 of the plan |
//!
//! plus the app's own `labels`, and the annotation `sflow.dev/source: FILE:LINE`. Selectors
//! use only `name`, `instance` and `component`, which never change for a declaration, so a
//! rebuild never tries to change an immutable selector.

use crate::conventions::{self, MANAGED_BY, SOURCE_ANNOTATION};
use crate::EmitError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use sflow_compiler::lower::plan::{Plan, SourceRef};
use sflow_compiler::values;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// `app.kubernetes.io/name`
pub const NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/component`
pub const COMPONENT: &str = "app.kubernetes.io/component";
/// `app.kubernetes.io/part-of`
pub const PART_OF: &str = "app.kubernetes.io/part-of";
/// `app.kubernetes.io/managed-by`
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// `app.kubernetes.io/version`
pub const VERSION: &str = "app.kubernetes.io/version";

/// What objects are for: the `app.kubernetes.io/component` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// The namespace.
    App,
    /// The plan ConfigMap.
    Plan,
    /// The artifacts volume.
    Artifacts,
    /// App-wide network policies.
    Network,
    /// The runtime and its RBAC.
    Runtime,
    /// A workflow, its step pods and their RBAC.
    Workflow,
    /// A scheduled trigger.
    Schedule,
    /// A service.
    Service,
    /// An object of a user template.
    Extension,
}

impl Component {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::App => "app",
            Component::Plan => "plan",
            Component::Artifacts => "artifacts",
            Component::Network => "network",
            Component::Runtime => "runtime",
            Component::Workflow => "workflow",
            Component::Schedule => "schedule",
            Component::Service => "service",
            Component::Extension => "extension",
        }
    }
}

/// What every emitter needs: the plan and the values derived from it once.
pub struct Context<'p> {
    /// The plan.
    pub plan: &'p Plan,
    /// The app's Kubernetes name.
    pub app: String,
    /// The namespace of every object.
    pub namespace: String,
    /// The plan, compact JSON (the ConfigMap's content).
    pub plan_compact: String,
    /// SHA-256 of [`Context::plan_compact`], hex.
    pub plan_digest: String,
    /// The app's labels, checked.
    pub app_labels: BTreeMap<String, String>,
    /// The sflow image.
    pub sflow_image: String,
    /// Warnings collected while emitting.
    pub warnings: RefCell<Vec<String>>,
}

impl<'p> Context<'p> {
    /// Derives the context; refuses labels Kubernetes would reject.
    pub fn new(plan: &'p Plan) -> Result<Context<'p>, EmitError> {
        for (key, value) in &plan.app.labels {
            check_label(key, value)?;
        }
        let plan_compact = serde_json::to_string(plan).map_err(|e| EmitError::Serialize {
            what: "the plan".to_string(),
            message: e.to_string(),
        })?;
        let plan_digest = hex(&Sha256::digest(plan_compact.as_bytes()));
        Ok(Context {
            plan,
            app: values::kube_name(&plan.app.name),
            namespace: plan.app.namespace.clone(),
            plan_compact,
            plan_digest,
            app_labels: plan.app.labels.clone(),
            sflow_image: conventions::sflow_image(&plan.app),
            warnings: RefCell::new(Vec::new()),
        })
    }

    /// The plan's revision, the `app.kubernetes.io/version` label.
    pub fn version(&self) -> &str {
        self.plan_digest.get(..12).unwrap_or(&self.plan_digest)
    }

    /// The labels that select the pods of `name` (never change for a declaration).
    pub fn selector_labels(&self, name: &str, component: Component) -> BTreeMap<String, String> {
        BTreeMap::from([
            (NAME.to_string(), name.to_string()),
            (INSTANCE.to_string(), self.app.clone()),
            (COMPONENT.to_string(), component.as_str().to_string()),
        ])
    }

    /// A label selector on [`Context::selector_labels`].
    pub fn selector(&self, name: &str, component: Component) -> LabelSelector {
        LabelSelector {
            match_labels: Some(self.selector_labels(name, component)),
            ..Default::default()
        }
    }

    /// The labels of a pod template: the selector labels, `part-of`, `managed-by` and the app's
    /// labels. Not `version`: a new plan must not restart every pod.
    pub fn pod_labels(&self, name: &str, component: Component) -> BTreeMap<String, String> {
        let mut labels = self.app_labels.clone();
        labels.extend(self.selector_labels(name, component));
        labels.insert(PART_OF.to_string(), self.app.clone());
        labels.insert(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string());
        labels
    }

    /// The labels of an object.
    pub fn labels(&self, name: &str, component: Component) -> BTreeMap<String, String> {
        let mut labels = self.pod_labels(name, component);
        labels.insert(VERSION.to_string(), self.version().to_string());
        labels
    }

    /// The annotations of an object declared at `source`.
    pub fn annotations(&self, source: &SourceRef) -> BTreeMap<String, String> {
        BTreeMap::from([(SOURCE_ANNOTATION.to_string(), source_text(source))])
    }

    /// Metadata of a namespaced object named `name`, labelled as `label_name`'s `component`.
    pub fn meta(
        &self,
        name: &str,
        label_name: &str,
        component: Component,
        source: &SourceRef,
    ) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels(label_name, component)),
            annotations: Some(self.annotations(source)),
            ..Default::default()
        }
    }

    /// Metadata of an app-wide object (labelled with the app's name).
    pub fn app_meta(&self, name: &str, component: Component) -> ObjectMeta {
        self.meta(name, &self.app, component, &self.plan.app.source)
    }
}

/// `FILE:LINE`
pub fn source_text(source: &SourceRef) -> String {
    format!("{}:{}", source.file, source.line)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Checks a label as the API server does: the name part of the key and the value are at most
/// 63 characters of `[A-Za-z0-9._-]`, starting and ending alphanumeric (the value may be empty).
pub fn check_label(key: &str, value: &str) -> Result<(), EmitError> {
    let fail = |reason: String| EmitError::InvalidLabel {
        key: key.to_string(),
        value: value.to_string(),
        reason,
    };
    if let Some(reason) = label_part_problem(key, false) {
        return Err(fail(format!("the key {reason}")));
    }
    if let Some(reason) = label_part_problem(value, true) {
        return Err(fail(format!("the value {reason}")));
    }
    Ok(())
}

fn label_part_problem(text: &str, may_be_empty: bool) -> Option<String> {
    if text.is_empty() {
        return (!may_be_empty).then(|| "is empty".to_string());
    }
    if text.len() > 63 {
        return Some(format!("is longer than 63 characters ({})", text.len()));
    }
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!(
            "contains {c:?} (only letters, digits, `-`, `_` and `.` are allowed)"
        ));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(text.chars().next()) || !alnum(text.chars().last()) {
        return Some("must start and end with a letter or digit".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked_like_the_api_server() {
        assert!(check_label("team", "risk").is_ok());
        assert!(check_label("cost_center", "cc-42").is_ok());
        assert!(check_label("team", "").is_ok());
        assert!(check_label("team", "a b").is_err());
        assert!(check_label("team", "a\nkind: Secret").is_err());
        assert!(check_label("team", "-x").is_err());
        assert!(check_label("team", &"x".repeat(64)).is_err());
        assert!(check_label("_team", "x").is_err());
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
