//! The runtime (agents, triggers, policies) and the identities of every pod: the
//! ServiceAccounts, and the Roles granting exactly what the runtime and the Argo executor use.
//!
//! docs/kubernetes-manifests.md justifies every rule; keep the two in step.

use crate::conventions::{self, names, RUNTIME_PORT};
use crate::meta::{Component, Context};
use crate::pod::{self, ARTIFACTS_VOLUME, PLAN_VOLUME, TOKEN_MOUNT, TOKEN_VOLUME};
use crate::storage::plan_key;
use crate::{EmitError, Objects};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, PodSpec, PodTemplateSpec, Service,
    ServiceAccount, ServicePort, ServiceSpec,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sflow_compiler::lower::plan::{
    Autoscaler, BindingPlan, Monitoring, Tracking, TriggerSourcePlan,
};

/// The ServiceAccounts: the runtime's, the step pods' and one per service. Only the step pods'
/// mounts its token automatically (Argo's executor needs it); the runtime mounts a projected
/// token explicitly; services never talk to the API.
pub fn service_accounts(ctx: &Context<'_>, out: &mut Objects) -> Result<(), EmitError> {
    let runtime = names::runtime(&ctx.app);
    out.push(
        "v1",
        "ServiceAccount",
        &runtime,
        &ServiceAccount {
            metadata: ctx.app_meta(&runtime, Component::Runtime),
            automount_service_account_token: Some(false),
            ..Default::default()
        },
    )?;
    if !ctx.plan.workflows.is_empty() {
        let workflow = names::workflow(&ctx.app);
        out.push(
            "v1",
            "ServiceAccount",
            &workflow,
            &ServiceAccount {
                metadata: ctx.app_meta(&workflow, Component::Workflow),
                automount_service_account_token: Some(true),
                ..Default::default()
            },
        )?;
    }
    for s in &ctx.plan.services {
        out.push(
            "v1",
            "ServiceAccount",
            &s.kube_name,
            &ServiceAccount {
                metadata: ctx.meta(&s.kube_name, &s.kube_name, Component::Service, &s.source),
                automount_service_account_token: Some(false),
                ..Default::default()
            },
        )?;
    }
    Ok(())
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str], names: &[String]) -> PolicyRule {
    let strings = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        resource_names: (!names.is_empty()).then(|| names.to_vec()),
        non_resource_urls: None,
    }
}

/// The rules of the runtime's Role: only what it does, only in its namespace, and where the
/// API allows it only on the objects this build creates (`resourceNames`).
pub fn runtime_rules(ctx: &Context<'_>) -> Vec<PolicyRule> {
    let runtime = names::runtime(&ctx.app);
    let services: Vec<String> = ctx
        .plan
        .services
        .iter()
        .map(|s| s.kube_name.clone())
        .collect();
    let mut rules = Vec::new();
    if !ctx.plan.workflows.is_empty() {
        // Starts runs (triggers, `run` actions, the Improver) and follows them to their end,
        // reading each step's metrics from the run's status.
        rules.push(rule(
            &["argoproj.io"],
            &["workflows"],
            &["create", "get", "list", "watch"],
            &[],
        ));
    }
    if !services.is_empty() {
        // Planner.replace / rollback: sets the served model (the SFLOW_MODEL variable) on the
        // service's Deployment; Planner.resize: its container's resources; reads its status
        // for the `replicas` signal.
        rules.push(rule(
            &["apps"],
            &["deployments"],
            &["get", "patch"],
            &services,
        ));
        // Planner.scale: moves the autoscaler's floor between the service's MIN and MAX.
        match ctx.plan.app.autoscaler {
            Some(Autoscaler::Keda) => rules.push(rule(
                &["keda.sh"],
                &["scaledobjects"],
                &["get", "patch"],
                &services,
            )),
            _ => rules.push(rule(
                &["autoscaling"],
                &["horizontalpodautoscalers"],
                &["get", "patch"],
                &services,
            )),
        }
    }
    // Reads its plan through the API when it reloads (the mounted copy lags behind).
    rules.push(rule(
        &[""],
        &["configmaps"],
        &["get"],
        &[names::plan(&ctx.app)],
    ));
    // Leader election: one replica acts at a time, also during a rolling update. `create`
    // cannot be limited by name (the object does not exist yet).
    rules.push(rule(
        &["coordination.k8s.io"],
        &["leases"],
        &["get", "update"],
        &[runtime],
    ));
    rules.push(rule(
        &["coordination.k8s.io"],
        &["leases"],
        &["create"],
        &[],
    ));
    // Records what it did (a policy fired, a model was replaced) as Events on its objects.
    rules.push(rule(&[""], &["events"], &["create", "patch"], &[]));
    rules
}

/// The rules of the step pods' Role: what Argo's executor (≥ 3.4) needs to report a step's
/// outputs, and nothing else.
pub fn workflow_rules() -> Vec<PolicyRule> {
    vec![rule(
        &["argoproj.io"],
        &["workflowtaskresults"],
        &["create", "patch"],
        &[],
    )]
}

/// The Roles and RoleBindings.
pub fn rbac(ctx: &Context<'_>, out: &mut Objects) -> Result<(), EmitError> {
    let runtime = names::runtime(&ctx.app);
    role(ctx, out, &runtime, Component::Runtime, runtime_rules(ctx))?;
    if !ctx.plan.workflows.is_empty() {
        role(
            ctx,
            out,
            &names::workflow(&ctx.app),
            Component::Workflow,
            workflow_rules(),
        )?;
    }
    Ok(())
}

fn role(
    ctx: &Context<'_>,
    out: &mut Objects,
    name: &str,
    component: Component,
    rules: Vec<PolicyRule>,
) -> Result<(), EmitError> {
    let role = Role {
        metadata: ctx.app_meta(name, component),
        rules: Some(rules),
    };
    out.push("rbac.authorization.k8s.io/v1", "Role", name, &role)?;
    let binding = RoleBinding {
        metadata: ctx.app_meta(name, component),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_string(),
            kind: "Role".to_string(),
            name: name.to_string(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_string(),
            name: name.to_string(),
            namespace: Some(ctx.namespace.clone()),
            api_group: None,
        }]),
    };
    out.push(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        name,
        &binding,
    )
}

/// Whether clients outside the app call the runtime's control API: webhook triggers, agents of
/// user-declared kinds (their sensors are set and their unbound actions performed from
/// outside), or a Prometheus scraping its metrics.
pub fn runtime_has_external_clients(ctx: &Context<'_>) -> bool {
    let webhooks = ctx
        .plan
        .triggers
        .iter()
        .any(|t| matches!(t.on, TriggerSourcePlan::Webhook { .. }));
    let external_kinds = ctx
        .plan
        .agents
        .iter()
        .any(|a| ctx.plan.agent_kind(&a.kind).is_some_and(|k| !k.builtin));
    webhooks || external_kinds || ctx.plan.app.monitoring == Some(Monitoring::Prometheus)
}

/// The TCP ports the runtime calls out to: its outbound webhooks (`action … -> webhook "URL"`)
/// and the MLflow server it mirrors into (`app { tracking = mlflow("URL") }`).
pub fn outbound_ports(ctx: &Context<'_>) -> Vec<i32> {
    let mut ports: Vec<i32> = ctx
        .plan
        .agent_kinds
        .iter()
        .flat_map(|k| k.actions.iter())
        .filter_map(|a| match &a.binding {
            Some(BindingPlan::Webhook { url }) => Some(url_port(url)),
            _ => None,
        })
        .collect();
    // The MLflow server the runtime mirrors into (`app { tracking = mlflow("…") }`).
    if let Some(Tracking::Mlflow { uri }) = &ctx.plan.app.tracking {
        ports.push(url_port(uri));
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The port a URL connects to: explicit, or the scheme's default.
pub fn url_port(url: &str) -> i32 {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let explicit = match host_port.rsplit_once(':') {
        Some((_, port)) => port.parse::<i32>().ok(),
        None => None,
    };
    explicit
        .filter(|p| (1..=65535).contains(p))
        .unwrap_or(if scheme.eq_ignore_ascii_case("http") {
            80
        } else {
            443
        })
}

/// The runtime's Deployment and Service.
pub fn runtime(ctx: &Context<'_>, out: &mut Objects) -> Result<(), EmitError> {
    let name = names::runtime(&ctx.app);
    let source = &ctx.plan.app.source;
    let service = Service {
        metadata: ctx.meta(&name, &ctx.app, Component::Runtime, source),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(ctx.selector_labels(&ctx.app, Component::Runtime)),
            ports: Some(vec![ServicePort {
                name: Some("http".to_string()),
                port: RUNTIME_PORT,
                target_port: Some(IntOrString::String("http".to_string())),
                protocol: Some("TCP".to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    };
    out.push("v1", "Service", &name, &service)?;

    let plan_path = format!("{}/{}", conventions::PLAN_MOUNT, plan_key(ctx));
    let container = Container {
        name: "runtime".to_string(),
        image: Some(ctx.sflow_image.clone()),
        image_pull_policy: Some("Always".to_string()),
        command: Some(vec!["sflow".to_string()]),
        args: Some(vec!["runtime".to_string(), "--plan".to_string(), plan_path]),
        env: Some(vec![
            pod::env("HOME", conventions::TMP_MOUNT),
            pod::env("SFLOW_APP", ctx.plan.app.name.clone()),
            pod::env("SFLOW_ARTIFACTS", conventions::ARTIFACTS_MOUNT),
            pod::env("SFLOW_LEASE", name.clone()),
            pod::env("SFLOW_LISTEN", format!(":{RUNTIME_PORT}")),
            pod::env("SFLOW_PLAN_CONFIGMAP", names::plan(&ctx.app)),
            pod::env_field("SFLOW_NAMESPACE", "metadata.namespace"),
            pod::env_field("SFLOW_POD_NAME", "metadata.name"),
        ]),
        ports: Some(vec![ContainerPort {
            name: Some("http".to_string()),
            container_port: RUNTIME_PORT,
            protocol: Some("TCP".to_string()),
            ..Default::default()
        }]),
        readiness_probe: Some(pod::http_probe(
            conventions::RUNTIME_READY_PATH,
            "http",
            10,
            3,
        )),
        liveness_probe: Some(pod::http_probe(
            conventions::RUNTIME_LIVE_PATH,
            "http",
            20,
            3,
        )),
        resources: Some(pod::resources(
            &Default::default(),
            conventions::RUNTIME_CPU_MILLIS,
            conventions::RUNTIME_MEMORY_BYTES,
        )),
        security_context: Some(pod::container_security_context()),
        volume_mounts: Some(vec![
            pod::mount(ARTIFACTS_VOLUME, conventions::ARTIFACTS_MOUNT, false),
            pod::mount(TOKEN_VOLUME, TOKEN_MOUNT, true),
            pod::mount(PLAN_VOLUME, conventions::PLAN_MOUNT, true),
            pod::tmp_mount(),
        ]),
        ..Default::default()
    };
    let mut annotations = ctx.annotations(source);
    annotations.insert(
        conventions::PLAN_DIGEST_ANNOTATION.to_string(),
        ctx.plan_digest.clone(),
    );
    let deployment = Deployment {
        metadata: ctx.meta(&name, &ctx.app, Component::Runtime, source),
        spec: Some(DeploymentSpec {
            // One runtime acts; the lease keeps it that way while a rollout overlaps two pods.
            replicas: Some(1),
            revision_history_limit: Some(5),
            selector: ctx.selector(&ctx.app, Component::Runtime),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(ctx.pod_labels(&ctx.app, Component::Runtime)),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(name.clone()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(pod::pod_security_context()),
                    containers: vec![container],
                    volumes: Some(vec![
                        pod::artifacts_volume(&names::artifacts(&ctx.app), false),
                        pod::token_volume(),
                        k8s_openapi::api::core::v1::Volume {
                            name: PLAN_VOLUME.to_string(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: names::plan(&ctx.app),
                                default_mode: Some(0o444),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                        pod::tmp_volume(),
                    ]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    };
    out.push("apps/v1", "Deployment", &name, &deployment)
}

#[cfg(test)]
mod tests {
    use super::url_port;

    #[test]
    fn url_ports() {
        assert_eq!(url_port("https://hooks.example.com/page"), 443);
        assert_eq!(url_port("http://hooks.example.com/page"), 80);
        assert_eq!(url_port("https://hooks.example.com:8443/page"), 8443);
        assert_eq!(url_port("https://user:pw@hooks.example.com/x"), 443);
        assert_eq!(url_port("https://[::1]:9000/x"), 9000);
        assert_eq!(url_port("https://[::1]/x"), 443);
        assert_eq!(url_port("https://h:99999/x"), 443);
    }
}
