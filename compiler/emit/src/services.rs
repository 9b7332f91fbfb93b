//! Each service: a Service, a Deployment, an autoscaler and a PodDisruptionBudget, all named
//! after the service.

use crate::conventions::{self, names, RUNTIME_PORT};
use crate::meta::{Component, Context};
use crate::pod::{self, ARTIFACTS_VOLUME};
use crate::{EmitError, Objects};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSpec, PodTemplateSpec, Probe, Service, ServicePort, ServiceSpec,
    TopologySpreadConstraint,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sflow_compiler::lower::plan::{Autoscaler, ServicePlan};

/// Every service's objects, in source order.
pub fn services(ctx: &Context<'_>, out: &mut Objects) -> Result<(), EmitError> {
    for s in &ctx.plan.services {
        if s.image.as_deref().is_some_and(|i| i.trim().is_empty()) {
            return Err(EmitError::MissingImage {
                workflow: "service".to_string(),
                step: s.name.clone(),
            });
        }
        service(ctx, s, out)?;
        deployment(ctx, s, out)?;
        if ctx.plan.app.autoscaler != Some(Autoscaler::Keda) {
            autoscaler(ctx, s, out)?;
        }
        disruption_budget(ctx, s, out)?;
    }
    Ok(())
}

fn service(ctx: &Context<'_>, s: &ServicePlan, out: &mut Objects) -> Result<(), EmitError> {
    let object = Service {
        metadata: ctx.meta(&s.kube_name, &s.kube_name, Component::Service, &s.source),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(ctx.selector_labels(&s.kube_name, Component::Service)),
            ports: Some(vec![ServicePort {
                name: Some("http".to_string()),
                port: i32::from(s.port),
                target_port: Some(IntOrString::String("http".to_string())),
                protocol: Some("TCP".to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    };
    out.push("v1", "Service", &s.kube_name, &object)
}

/// The model server's container. Without `image`, the built-in server of the sflow image
/// (`sflow serve`); with one, the image's own entrypoint. Either way it listens on the
/// service's port, answers the Open Inference Protocol v2 health endpoints, and serves the
/// model file named by `SFLOW_MODEL` — which the runtime sets on the Deployment once a run
/// has produced the model (so a re-apply of these manifests never resets it).
fn container(ctx: &Context<'_>, s: &ServicePlan) -> Container {
    let builtin = s.image.is_none();
    let port = i32::from(s.port);
    let startup = Probe {
        failure_threshold: Some(60),
        ..pod::http_probe(conventions::SERVER_LIVE_PATH, "http", 5, 60)
    };
    Container {
        name: "server".to_string(),
        image: Some(s.image.clone().unwrap_or_else(|| ctx.sflow_image.clone())),
        image_pull_policy: Some("Always".to_string()),
        command: builtin.then(|| vec!["sflow".to_string()]),
        args: builtin.then(|| vec!["serve".to_string(), "--port".to_string(), port.to_string()]),
        env: Some(vec![
            pod::env("HOME", conventions::TMP_MOUNT),
            pod::env("SFLOW_APP", ctx.plan.app.name.clone()),
            pod::env("SFLOW_PORT", port.to_string()),
            pod::env("SFLOW_RUNTIME_TOKEN_FILE", conventions::INGEST_TOKEN_FILE),
            pod::env(
                "SFLOW_RUNTIME_URL",
                format!("http://{}:{RUNTIME_PORT}", names::runtime(&ctx.app)),
            ),
            pod::env("SFLOW_SERVICE", s.name.clone()),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_string()),
            container_port: port,
            protocol: Some("TCP".to_string()),
            ..Default::default()
        }]),
        startup_probe: Some(startup),
        readiness_probe: Some(pod::http_probe(
            conventions::SERVER_READY_PATH,
            "http",
            5,
            3,
        )),
        liveness_probe: Some(pod::http_probe(
            conventions::SERVER_LIVE_PATH,
            "http",
            10,
            3,
        )),
        resources: Some(pod::resources(
            &s.resources,
            conventions::DEFAULT_SERVICE_CPU_MILLIS,
            conventions::DEFAULT_SERVICE_MEMORY_BYTES,
        )),
        security_context: Some(pod::container_security_context()),
        // Only what a model server reads: the runs' artifacts (its model) and the ingest
        // token. Not the whole volume: the runtime's control-API token and store live there
        // too, and a model server must not be able to drive the runtime.
        volume_mounts: Some(vec![
            pod::sub_mount(ARTIFACTS_VOLUME, "runs", conventions::RUNS_DIR, true),
            pod::sub_mount(
                ARTIFACTS_VOLUME,
                conventions::INGEST_SUBPATH,
                conventions::INGEST_DIR,
                true,
            ),
            pod::tmp_mount(),
        ]),
        ..Default::default()
    }
}

fn deployment(ctx: &Context<'_>, s: &ServicePlan, out: &mut Objects) -> Result<(), EmitError> {
    let object = Deployment {
        metadata: ctx.meta(&s.kube_name, &s.kube_name, Component::Service, &s.source),
        spec: Some(DeploymentSpec {
            // No `replicas`: the autoscaler owns it, and re-applying must not reset it.
            revision_history_limit: Some(5),
            selector: ctx.selector(&s.kube_name, Component::Service),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(ctx.pod_labels(&s.kube_name, Component::Service)),
                    annotations: Some(ctx.annotations(&s.source)),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(s.kube_name.clone()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(pod::pod_security_context()),
                    containers: vec![container(ctx, s)],
                    volumes: Some(vec![
                        pod::artifacts_volume(&names::artifacts(&ctx.app), true),
                        pod::tmp_volume(),
                    ]),
                    topology_spread_constraints: Some(vec![TopologySpreadConstraint {
                        max_skew: 1,
                        topology_key: "kubernetes.io/hostname".to_string(),
                        when_unsatisfiable: "ScheduleAnyway".to_string(),
                        label_selector: Some(ctx.selector(&s.kube_name, Component::Service)),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    };
    out.push("apps/v1", "Deployment", &s.kube_name, &object)
}

fn autoscaler(ctx: &Context<'_>, s: &ServicePlan, out: &mut Objects) -> Result<(), EmitError> {
    let object = HorizontalPodAutoscaler {
        metadata: ctx.meta(&s.kube_name, &s.kube_name, Component::Service, &s.source),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_string()),
                kind: "Deployment".to_string(),
                name: s.kube_name.clone(),
            },
            min_replicas: Some(replicas(s.min_replicas)),
            max_replicas: replicas(s.max_replicas.max(s.min_replicas)),
            metrics: Some(vec![MetricSpec {
                type_: "Resource".to_string(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".to_string(),
                    target: MetricTarget {
                        type_: "Utilization".to_string(),
                        average_utilization: Some(conventions::HPA_CPU_UTILIZATION),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]),
            behavior: None,
        }),
        status: None,
    };
    out.push(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        &s.kube_name,
        &object,
    )
}

fn disruption_budget(
    ctx: &Context<'_>,
    s: &ServicePlan,
    out: &mut Objects,
) -> Result<(), EmitError> {
    let object = PodDisruptionBudget {
        metadata: ctx.meta(&s.kube_name, &s.kube_name, Component::Service, &s.source),
        spec: Some(PodDisruptionBudgetSpec {
            // One replica at a time: never blocks a node drain, even at one replica.
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(ctx.selector(&s.kube_name, Component::Service)),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".to_string()),
            min_available: None,
        }),
        status: None,
    };
    out.push("policy/v1", "PodDisruptionBudget", &s.kube_name, &object)
}

/// A replica count as the API takes it.
pub fn replicas(n: u32) -> i32 {
    i32::try_from(n.max(1)).unwrap_or(i32::MAX)
}
