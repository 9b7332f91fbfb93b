//! The sflow compiler's back end: a [`Plan`] becomes the Kubernetes manifests a platform team
//! applies to a cluster.
//!
//! This is the only crate of the compiler that knows Kubernetes: objects are built from the
//! typed structs of `k8s-openapi` (compiled against Kubernetes 1.31, the oldest version sflow
//! supports, so no newer field can slip in) and, for Argo Workflows, from the typed structs of
//! [`argo`]. Resources that have no Rust types (a KEDA `ScaledObject`, a Prometheus
//! `ServiceMonitor`, the user's own) are rendered from handlebars templates ([`templates`]),
//! parsed back and checked before they are written.
//!
//! Invariants:
//! - the output is a pure function of the plan and the options: the same plan gives the same
//!   files, byte for byte (source order, sorted maps, no clock, no randomness);
//! - every object carries the `app.kubernetes.io/*` labels and the source annotation
//!   ([`meta`]), and every pod meets the Pod Security Standards "restricted" profile with
//!   requests and limits ([`pod`]);
//! - no value from the program is ever pasted into YAML text: typed objects go through the YAML
//!   serializer, and template output is quoted by the template engine's escape function and
//!   parsed back, so a hostile string (quotes, newlines, `{{`, `: `, `---`) stays one string.
//!
//! Entry points: [`build`] turns a plan into a [`Build`]; [`output::write_dir`] writes a build
//! to a directory without leaving stale files; [`Build::stream`] is the `-o -` form.

pub mod argo;
pub mod conventions;
pub mod meta;
pub mod network;
pub mod output;
pub mod pod;
pub mod runtime;
pub mod services;
pub mod storage;
pub mod templates;
pub mod workflows;
pub mod yaml;

use sflow_compiler::lower::plan::Plan;
use std::collections::BTreeSet;

pub use conventions::{sflow_image, HEADER, MANAGED_BY, SFLOW_VERSION};

/// Why a plan cannot be turned into manifests.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmitError {
    /// A label from the program is not a valid Kubernetes label.
    #[error("app label `{key}` = {value:?} is not a valid Kubernetes label: {reason}")]
    InvalidLabel {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
    /// Two generated objects of the same kind have the same name.
    #[error("two generated objects are both {kind} `{name}`; rename one of the declarations behind them")]
    Collision {
        /// The kind.
        kind: String,
        /// The name.
        name: String,
    },
    /// A template could not be compiled or rendered.
    #[error("template `{template}`: {message}")]
    Template {
        /// The template's name.
        template: String,
        /// What went wrong.
        message: String,
    },
    /// A template rendered something that is not a valid Kubernetes object.
    #[error("template `{template}` rendered an invalid object: {message}")]
    InvalidObject {
        /// The template's name.
        template: String,
        /// What is wrong.
        message: String,
    },
    /// A step or service has an empty image (a plan the compiler did not lower completely).
    #[error("`{workflow}.{step}` has an empty image")]
    MissingImage {
        /// The workflow.
        workflow: String,
        /// The step.
        step: String,
    },
    /// An object could not be serialized (a bug: every object is serializable).
    #[error("cannot serialize {what}: {message}")]
    Serialize {
        /// The object.
        what: String,
        /// The serializer's message.
        message: String,
    },
}

/// What [`build`] needs besides the plan.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The user's own templates (`--templates DIR`), rendered once each with the plan as context.
    pub templates: Vec<templates::UserTemplate>,
}

/// One generated Kubernetes object: one YAML document in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The file name, `<kind>-<name>.yaml` in lower case: stable, and unique in a build.
    pub file_name: String,
    /// The object's `apiVersion`.
    pub api_version: String,
    /// The object's `kind`.
    pub kind: String,
    /// The object's `metadata.name`.
    pub name: String,
    /// The YAML document, without the file header or a `---` separator.
    pub yaml: String,
}

impl Manifest {
    /// The file's content: the header comment, then the document.
    pub fn file_text(&self) -> String {
        let mut text = String::with_capacity(HEADER.len() + self.yaml.len());
        text.push_str(HEADER);
        text.push_str(&self.yaml);
        text
    }
}

/// Everything `sflowc build` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Build {
    /// `plan.json`: the plan, pretty-printed, with a final newline.
    pub plan_json: String,
    /// The objects, in apply order.
    pub manifests: Vec<Manifest>,
    /// Things worth telling the user that do not stop the build (an object too large for the
    /// API server, …).
    pub warnings: Vec<String>,
}

impl Build {
    /// The manifests as one multi-document YAML stream (`sflowc build -o -`).
    pub fn stream(&self) -> String {
        let mut out = String::from(HEADER);
        for m in &self.manifests {
            out.push_str("---\n");
            out.push_str(&m.yaml);
        }
        out
    }

    /// `kustomization.yaml`: the manifests' files, in apply order.
    pub fn kustomization(&self) -> String {
        let mut out = String::from(HEADER);
        out.push_str(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n",
        );
        for m in &self.manifests {
            // File names are `<kind>-<dns name>.yaml`: plain scalars, nothing to quote.
            out.push_str("- ");
            out.push_str(&m.file_name);
            out.push('\n');
        }
        out
    }
}

/// Turns a plan into manifests.
pub fn build(plan: &Plan, options: &Options) -> Result<Build, EmitError> {
    let plan_json = serde_json::to_string_pretty(plan).map_err(|e| EmitError::Serialize {
        what: "the plan".to_string(),
        message: e.to_string(),
    })? + "\n";
    let ctx = meta::Context::new(plan)?;
    let mut out = Objects::default();

    storage::namespace(&ctx, &mut out)?;
    runtime::service_accounts(&ctx, &mut out)?;
    runtime::rbac(&ctx, &mut out)?;
    storage::plan_config_map(&ctx, &mut out)?;
    storage::cache_config_map(&ctx, &mut out)?;
    storage::artifacts(&ctx, &mut out)?;
    network::policies(&ctx, &mut out)?;
    runtime::runtime(&ctx, &mut out)?;
    services::services(&ctx, &mut out)?;
    workflows::workflow_templates(&ctx, &mut out)?;
    workflows::cron_workflows(&ctx, &mut out)?;
    templates::stdlib_objects(&ctx, &mut out)?;
    for template in &options.templates {
        templates::user_objects(&ctx, template, &mut out)?;
    }

    let mut warnings = ctx.warnings.into_inner();
    for m in &out.manifests {
        if m.yaml.len() > conventions::MAX_OBJECT_BYTES {
            warnings.push(format!(
                "{} `{}` is {} bytes of YAML; the Kubernetes API server stores objects of at most about 1.5 MB: \
                 split the declaration, or it will be rejected when applied",
                m.kind,
                m.name,
                m.yaml.len()
            ));
        }
    }
    Ok(Build {
        plan_json,
        manifests: out.manifests,
        warnings,
    })
}

/// The JSON Schema of the plan (`sflowc schema`, `docs/plan.schema.json`), pretty-printed with a
/// final newline.
pub fn plan_schema() -> String {
    let schema = schemars::schema_for!(Plan);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

/// The objects built so far; refuses two objects of the same kind and name.
#[derive(Default)]
pub struct Objects {
    manifests: Vec<Manifest>,
    seen: BTreeSet<(String, String)>,
}

impl Objects {
    /// Serializes `object` (a `k8s-openapi` resource or an [`argo`] object) and adds it.
    pub fn push<T: serde::Serialize>(
        &mut self,
        api_version: &str,
        kind: &str,
        name: &str,
        object: &T,
    ) -> Result<(), EmitError> {
        let yaml = yaml::to_yaml(object).map_err(|message| EmitError::Serialize {
            what: format!("{kind} `{name}`"),
            message,
        })?;
        self.push_yaml(api_version, kind, name, yaml)
    }

    /// Adds an object already serialized (template output, parsed back and re-serialized).
    pub fn push_yaml(
        &mut self,
        api_version: &str,
        kind: &str,
        name: &str,
        yaml: String,
    ) -> Result<(), EmitError> {
        let key = (kind.to_string(), name.to_string());
        if !self.seen.insert(key) {
            return Err(EmitError::Collision {
                kind: kind.to_string(),
                name: name.to_string(),
            });
        }
        let file_name = format!("{}-{}.yaml", kind.to_ascii_lowercase(), name);
        if self.manifests.iter().any(|m| m.file_name == file_name) {
            return Err(EmitError::Collision {
                kind: kind.to_string(),
                name: name.to_string(),
            });
        }
        self.manifests.push(Manifest {
            file_name,
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
            yaml,
        });
        Ok(())
    }

    /// The objects so far.
    pub fn manifests(&self) -> &[Manifest] {
        &self.manifests
    }
}
