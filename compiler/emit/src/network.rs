//! NetworkPolicies: everything in the namespace is denied by default, then each kind of pod
//! gets exactly the traffic the app needs.
//!
//! | pods | may receive | may send |
//! | --- | --- | --- |
//! | every pod | — | DNS (kube-dns, port 53) |
//! | runtime | the control port, from the app's services (metrics, request samples); from anywhere when outside clients use the control API (webhooks, user agent kinds, Prometheus) | the Kubernetes API (443, 6443); the services' ports; the ports of outbound webhooks and of the MLflow server (`tracking`) |
//! | service `S` | its port, from anywhere (its clients) | the runtime's control port |
//! | workflow steps | — | the Kubernetes API (Argo's executor reports outputs); the services' ports |

use crate::conventions::{names, RUNTIME_PORT};
use crate::meta::{Component, Context, COMPONENT, INSTANCE};
use crate::runtime::{outbound_ports, runtime_has_external_clients};
use crate::{EmitError, Objects};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The ports of the Kubernetes API server: the `kubernetes` Service's and the usual endpoint
/// port behind it (policies see the traffic after the Service's address translation).
pub const KUBE_API_PORTS: [i32; 2] = [443, 6443];

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some("TCP".to_string()),
        end_port: None,
    }
}

fn selector(labels: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    }
}

fn pods(labels: LabelSelector) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(labels),
        ..Default::default()
    }
}

fn policy(
    meta: ObjectMeta,
    pod_selector: LabelSelector,
    ingress: Option<Vec<NetworkPolicyIngressRule>>,
    egress: Option<Vec<NetworkPolicyEgressRule>>,
) -> NetworkPolicy {
    let mut types = Vec::new();
    if ingress.is_some() {
        types.push("Ingress".to_string());
    }
    if egress.is_some() {
        types.push("Egress".to_string());
    }
    NetworkPolicy {
        metadata: meta,
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pod_selector),
            ingress,
            egress,
            policy_types: Some(types),
        }),
    }
}

/// Every NetworkPolicy of the app.
pub fn policies(ctx: &Context<'_>, out: &mut Objects) -> Result<(), EmitError> {
    let app = ctx.app.as_str();
    let service_pods = selector(&[(INSTANCE, app), (COMPONENT, Component::Service.as_str())]);
    let service_ports: Vec<i32> = {
        let mut ports: Vec<i32> = ctx
            .plan
            .services
            .iter()
            .map(|s| i32::from(s.port))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    };
    let to_services = || NetworkPolicyEgressRule {
        to: Some(vec![pods(service_pods.clone())]),
        ports: Some(service_ports.iter().map(|&p| tcp(p)).collect()),
    };
    let kube_api = |extra: &[i32]| {
        let mut ports: Vec<i32> = KUBE_API_PORTS.iter().chain(extra).copied().collect();
        ports.sort_unstable();
        ports.dedup();
        NetworkPolicyEgressRule {
            to: None,
            ports: Some(ports.into_iter().map(tcp).collect()),
        }
    };

    // Deny everything, both ways, to every pod of the namespace.
    let name = names::default_deny(app);
    out.push(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        &name,
        &policy(
            ctx.app_meta(&name, Component::Network),
            LabelSelector::default(),
            Some(Vec::new()),
            Some(Vec::new()),
        ),
    )?;

    // DNS for every pod.
    let name = names::dns(app);
    let dns = NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(selector(&[("kubernetes.io/metadata.name", "kube-system")])),
            pod_selector: Some(selector(&[("k8s-app", "kube-dns")])),
            ip_block: None,
        }]),
        ports: Some(vec![
            NetworkPolicyPort {
                port: Some(IntOrString::Int(53)),
                protocol: Some("UDP".to_string()),
                end_port: None,
            },
            tcp(53),
        ]),
    };
    out.push(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        &name,
        &policy(
            ctx.app_meta(&name, Component::Network),
            LabelSelector::default(),
            None,
            Some(vec![dns]),
        ),
    )?;

    // The runtime.
    let name = names::runtime(app);
    let from = if runtime_has_external_clients(ctx) {
        None
    } else {
        Some(vec![pods(service_pods.clone())])
    };
    let ingress = if from.is_none() || !ctx.plan.services.is_empty() {
        vec![NetworkPolicyIngressRule {
            from,
            ports: Some(vec![tcp(RUNTIME_PORT)]),
        }]
    } else {
        Vec::new()
    };
    let mut egress = vec![kube_api(&outbound_ports(ctx))];
    if !service_ports.is_empty() {
        egress.push(to_services());
    }
    out.push(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        &name,
        &policy(
            ctx.app_meta(&name, Component::Runtime),
            ctx.selector(app, Component::Runtime),
            Some(ingress),
            Some(egress),
        ),
    )?;

    // Workflow step pods.
    if !ctx.plan.workflows.is_empty() {
        let name = names::workflow(app);
        let mut egress = vec![kube_api(&[])];
        if !service_ports.is_empty() {
            egress.push(to_services());
        }
        out.push(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            &name,
            &policy(
                ctx.app_meta(&name, Component::Workflow),
                selector(&[(INSTANCE, app), (COMPONENT, Component::Workflow.as_str())]),
                Some(Vec::new()),
                Some(egress),
            ),
        )?;
    }

    // Each service: its clients in, its reports to the runtime out.
    let runtime_pods = ctx.selector(app, Component::Runtime);
    for s in &ctx.plan.services {
        let ingress = NetworkPolicyIngressRule {
            from: None,
            ports: Some(vec![tcp(i32::from(s.port))]),
        };
        let egress = NetworkPolicyEgressRule {
            to: Some(vec![pods(runtime_pods.clone())]),
            ports: Some(vec![tcp(RUNTIME_PORT)]),
        };
        out.push(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            &s.kube_name,
            &policy(
                ctx.meta(&s.kube_name, &s.kube_name, Component::Service, &s.source),
                ctx.selector(&s.kube_name, Component::Service),
                Some(vec![ingress]),
                Some(vec![egress]),
            ),
        )?;
    }
    Ok(())
}
