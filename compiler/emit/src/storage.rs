//! App-wide objects: the Namespace, the plan ConfigMap, the step-cache ConfigMap and the
//! artifacts PersistentVolumeClaim.

use crate::conventions::{names, CONFIG_MAP_DATA_MAX, PLAN_GZ_KEY, PLAN_KEY};
use crate::meta::{Component, Context};
use crate::{EmitError, Objects};
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::ByteString;
use sflow_compiler::values::format_memory;
use std::collections::BTreeMap;
use std::io::Write;

/// The Namespace, enforcing the "restricted" Pod Security Standard on everything in it.
pub fn namespace(ctx: &Context<'_>, out: &mut Objects) -> Result<(), EmitError> {
    let mut metadata = ctx.app_meta(&ctx.namespace, Component::App);
    metadata.namespace = None;
    if let Some(labels) = metadata.labels.as_mut() {
        for mode in ["enforce", "audit", "warn"] {
            labels.insert(
                format!("pod-security.kubernetes.io/{mode}"),
                "restricted".to_string(),
            );
            labels.insert(
                format!("pod-security.kubernetes.io/{mode}-version"),
                "latest".to_string(),
            );
        }
    }
    let ns = Namespace {
        metadata,
        ..Default::default()
    };
    out.push("v1", "Namespace", &ctx.namespace, &ns)
}

/// The plan as a ConfigMap, mounted by the runtime. Compact JSON under `plan.json` when it
/// fits a ConfigMap (1 MiB), gzipped under `binaryData` `plan.json.gz` otherwise.
pub fn plan_config_map(ctx: &Context<'_>, out: &mut Objects) -> Result<(), EmitError> {
    let name = names::plan(&ctx.app);
    let mut cm = ConfigMap {
        metadata: ctx.app_meta(&name, Component::Plan),
        ..Default::default()
    };
    match plan_entry(ctx) {
        PlanEntry::Text(text) => cm.data = Some(BTreeMap::from([(PLAN_KEY.to_string(), text)])),
        PlanEntry::Gzip(bytes) => {
            cm.binary_data = Some(BTreeMap::from([(
                PLAN_GZ_KEY.to_string(),
                ByteString(bytes),
            )]))
        }
    }
    out.push("v1", "ConfigMap", &name, &cm)
}

/// How the plan is stored in its ConfigMap.
pub enum PlanEntry {
    /// `data: {plan.json: …}`
    Text(String),
    /// `binaryData: {plan.json.gz: …}`
    Gzip(Vec<u8>),
}

/// The plan's key in its ConfigMap, and so its file name under the runtime's plan mount.
pub fn plan_key(ctx: &Context<'_>) -> &'static str {
    if ctx.plan_compact.len() <= CONFIG_MAP_DATA_MAX {
        PLAN_KEY
    } else {
        PLAN_GZ_KEY
    }
}

/// The plan's entry: text when it fits, gzip otherwise. Deterministic (no timestamp in the
/// gzip header).
pub fn plan_entry(ctx: &Context<'_>) -> PlanEntry {
    if plan_key(ctx) == PLAN_KEY {
        return PlanEntry::Text(ctx.plan_compact.clone());
    }
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::default());
    let bytes = encoder
        .write_all(ctx.plan_compact.as_bytes())
        .and_then(|()| encoder.finish());
    match bytes {
        Ok(bytes) => {
            // base64 grows it by a third.
            if bytes.len() * 4 / 3 > CONFIG_MAP_DATA_MAX {
                ctx.warnings.borrow_mut().push(format!(
                    "the plan is {} bytes even gzipped; a ConfigMap holds at most 1 MiB, so the plan ConfigMap will be rejected",
                    bytes.len()
                ));
            }
            PlanEntry::Gzip(bytes)
        }
        // Writing to memory does not fail.
        Err(_) => PlanEntry::Gzip(Vec::new()),
    }
}

/// The ConfigMap Argo memoizes `cache = true` steps in, when a step is cached. Argo only uses
/// a ConfigMap that carries its cache label.
pub fn cache_config_map(ctx: &Context<'_>, out: &mut Objects) -> Result<(), EmitError> {
    if !ctx
        .plan
        .workflows
        .iter()
        .any(|w| w.steps.iter().any(|s| s.cache))
    {
        return Ok(());
    }
    let name = names::step_cache(&ctx.app);
    let mut metadata = ctx.app_meta(&name, Component::Workflow);
    if let Some(labels) = metadata.labels.as_mut() {
        labels.insert(
            "workflows.argoproj.io/configmap-type".to_string(),
            "Cache".to_string(),
        );
    }
    let cm = ConfigMap {
        metadata,
        ..Default::default()
    };
    out.push("v1", "ConfigMap", &name, &cm)
}

/// The artifacts volume: `ReadWriteMany`, because step pods of a run (in parallel, on any
/// node), the services and the runtime all mount it. Its size is the app's `storage`.
pub fn artifacts(ctx: &Context<'_>, out: &mut Objects) -> Result<(), EmitError> {
    let name = names::artifacts(&ctx.app);
    let pvc = PersistentVolumeClaim {
        metadata: ctx.app_meta(&name, Component::Artifacts),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteMany".to_string()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(format_memory(ctx.plan.app.storage_bytes.max(1))),
                )])),
                limits: None,
            }),
            volume_mode: Some("Filesystem".to_string()),
            ..Default::default()
        }),
        status: None,
    };
    out.push("v1", "PersistentVolumeClaim", &name, &pvc)
}
