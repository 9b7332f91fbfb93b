//! What every build must have, checked on every example and golden program: the labels and
//! annotations of every object, the "restricted" Pod Security Standard and requests = limits
//! on every pod, least-privilege RBAC, deny-by-default networking, and Argo DAGs that match
//! the plan.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{documents, golden_programs, golden_templates, root, try_plan};
use serde_yaml_ng::Value;
use sflow_compiler::lower::plan::Plan;
use sflow_emit::{build, Options};

fn builds() -> Vec<(String, Plan, Vec<Value>)> {
    let mut out = Vec::new();
    for (name, path) in golden_programs() {
        let text = std::fs::read_to_string(root().join(&path)).unwrap();
        match try_plan(&path, &text) {
            Ok(plan) => {
                let docs = documents(
                    &build(
                        &plan,
                        &Options {
                            templates: golden_templates(),
                        },
                    )
                    .unwrap()
                    .stream(),
                );
                out.push((name, plan, docs));
            }
            // The golden test reports a program that does not compile.
            Err(e) => eprintln!("skipping {name}: {e:.200}"),
        }
    }
    assert!(!out.is_empty());
    out
}

fn str_of<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
}

fn seq(v: &Value) -> Vec<Value> {
    v.as_sequence().cloned().unwrap_or_default()
}

#[test]
fn every_object_is_labelled_and_annotated() {
    for (name, _, docs) in builds() {
        for d in &docs {
            let what = format!(
                "{name}: {} {}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            );
            for label in [
                "name",
                "instance",
                "component",
                "part-of",
                "managed-by",
                "version",
            ] {
                let value = str_of(
                    d,
                    &["metadata", "labels", &format!("app.kubernetes.io/{label}")],
                );
                assert!(
                    value.is_some_and(|v| !v.is_empty()),
                    "{what}: no app.kubernetes.io/{label}"
                );
            }
            assert_eq!(
                str_of(d, &["metadata", "labels", "app.kubernetes.io/managed-by"]),
                Some("sflowc"),
                "{what}"
            );
            let source = str_of(d, &["metadata", "annotations", "sflow.dev/source"])
                .unwrap_or_else(|| panic!("{what}: no source"));
            assert!(
                source
                    .rsplit_once(':')
                    .is_some_and(|(_, line)| line.parse::<u32>().is_ok())
                    || source.starts_with("template:"),
                "{what}: {source}"
            );
            if d["kind"].as_str() != Some("Namespace") {
                assert!(
                    d["metadata"]["namespace"].as_str().is_some(),
                    "{what}: no namespace"
                );
            }
        }
    }
}

/// The pod specs of an object, with where they are: Deployments' templates, and for Argo
/// objects the workflow-level security context with every template's containers.
fn pods(d: &Value) -> Vec<(Value, Vec<Value>, Vec<Value>)> {
    match d["kind"].as_str() {
        Some("Deployment") => {
            let spec = d["spec"]["template"]["spec"].clone();
            let containers = seq(&spec["containers"])
                .into_iter()
                .chain(seq(&spec["initContainers"]))
                .collect();
            vec![(
                spec["securityContext"].clone(),
                containers,
                seq(&spec["volumes"]),
            )]
        }
        Some("WorkflowTemplate") => {
            let spec = &d["spec"];
            let mut containers = Vec::new();
            for t in seq(&spec["templates"]) {
                if !t["container"].is_null() {
                    containers.push(t["container"].clone());
                }
                containers.extend(seq(&t["initContainers"]));
            }
            vec![(
                spec["securityContext"].clone(),
                containers,
                seq(&spec["volumes"]),
            )]
        }
        _ => Vec::new(),
    }
}

#[test]
fn every_pod_is_restricted_with_requests_and_limits() {
    let allowed_volumes = [
        "configMap",
        "emptyDir",
        "persistentVolumeClaim",
        "projected",
        "secret",
        "downwardAPI",
        "csi",
        "ephemeral",
    ];
    let mut checked = 0;
    for (name, _, docs) in builds() {
        for d in &docs {
            for (pod, containers, volumes) in pods(d) {
                let what = format!(
                    "{name}: {} {}",
                    d["kind"].as_str().unwrap(),
                    d["metadata"]["name"].as_str().unwrap()
                );
                assert_eq!(pod["runAsNonRoot"].as_bool(), Some(true), "{what}");
                assert_eq!(
                    str_of(&pod, &["seccompProfile", "type"]),
                    Some("RuntimeDefault"),
                    "{what}"
                );
                assert!(
                    pod["runAsUser"].as_i64().is_some_and(|u| u >= 10000),
                    "{what}"
                );
                for v in &volumes {
                    let kinds: Vec<&str> = v
                        .as_mapping()
                        .unwrap()
                        .keys()
                        .filter_map(Value::as_str)
                        .filter(|k| *k != "name")
                        .collect();
                    assert!(
                        kinds.iter().all(|k| allowed_volumes.contains(k)),
                        "{what}: volume {kinds:?}"
                    );
                }
                assert!(!containers.is_empty(), "{what}");
                for c in &containers {
                    let cname = format!("{what} container {}", c["name"].as_str().unwrap());
                    let sc = &c["securityContext"];
                    assert_eq!(
                        sc["allowPrivilegeEscalation"].as_bool(),
                        Some(false),
                        "{cname}"
                    );
                    assert_eq!(
                        sc["readOnlyRootFilesystem"].as_bool(),
                        Some(true),
                        "{cname}"
                    );
                    assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true), "{cname}");
                    assert_eq!(
                        seq(&sc["capabilities"]["drop"]),
                        vec![Value::from("ALL")],
                        "{cname}"
                    );
                    assert!(sc["capabilities"]["add"].is_null(), "{cname}");
                    assert_eq!(
                        str_of(sc, &["seccompProfile", "type"]),
                        Some("RuntimeDefault"),
                        "{cname}"
                    );
                    let (req, lim) = (&c["resources"]["requests"], &c["resources"]["limits"]);
                    for r in ["cpu", "memory"] {
                        assert!(req[r].as_str().is_some(), "{cname}: no {r} request");
                        assert_eq!(req[r], lim[r], "{cname}: {r}");
                    }
                    let mounts = seq(&c["volumeMounts"]);
                    assert!(
                        mounts
                            .iter()
                            .any(|m| m["mountPath"].as_str() == Some("/tmp")),
                        "{cname}: no writable /tmp"
                    );
                    assert!(
                        c["image"]
                            .as_str()
                            .is_some_and(|i| i.contains(':') || i.contains('@')),
                        "{cname}: image without a tag"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 0);
}

#[test]
fn argo_executor_containers_are_hardened_too() {
    for (name, _, docs) in builds() {
        for d in docs
            .iter()
            .filter(|d| d["kind"].as_str() == Some("WorkflowTemplate"))
        {
            let patch: serde_json::Value =
                serde_json::from_str(d["spec"]["podSpecPatch"].as_str().unwrap()).unwrap();
            for (list, container) in [("initContainers", "init"), ("containers", "wait")] {
                let c = patch[list]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["name"] == container)
                    .unwrap();
                let sc = &c["securityContext"];
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
                assert_eq!(
                    sc["capabilities"]["drop"],
                    serde_json::json!(["ALL"]),
                    "{name}"
                );
                assert_eq!(sc["runAsNonRoot"], true, "{name}");
            }
        }
    }
}

#[test]
fn rbac_is_namespaced_and_least_privilege() {
    for (name, _, docs) in builds() {
        for d in &docs {
            let kind = d["kind"].as_str().unwrap();
            assert!(
                !matches!(kind, "ClusterRole" | "ClusterRoleBinding"),
                "{name}: {kind}"
            );
            if kind != "Role" {
                continue;
            }
            for rule in seq(&d["rules"]) {
                for field in ["apiGroups", "resources", "verbs"] {
                    for v in seq(&rule[field]) {
                        let v = v.as_str().unwrap();
                        assert_ne!(v, "*", "{name}: wildcard {field}");
                        assert!(
                            !matches!(
                                v,
                                "secrets"
                                    | "escalate"
                                    | "bind"
                                    | "impersonate"
                                    | "delete"
                                    | "deletecollection"
                            ),
                            "{name}: {v}"
                        );
                    }
                }
            }
        }
        // The runtime may touch only the Deployments it manages.
        let role = docs
            .iter()
            .find(|d| {
                d["kind"].as_str() == Some("Role")
                    && d["metadata"]["name"]
                        .as_str()
                        .is_some_and(|n| n.ends_with("-runtime"))
            })
            .unwrap();
        for rule in seq(&role["rules"]) {
            if seq(&rule["resources"]).contains(&Value::from("deployments")) {
                assert!(
                    !seq(&rule["resourceNames"]).is_empty(),
                    "{name}: deployments without resourceNames"
                );
            }
        }
    }
}

#[test]
fn networking_is_denied_by_default_and_every_pod_has_a_policy() {
    for (name, _, docs) in builds() {
        let policies: Vec<&Value> = docs
            .iter()
            .filter(|d| d["kind"].as_str() == Some("NetworkPolicy"))
            .collect();
        let deny = policies
            .iter()
            .find(|p| {
                p["spec"]["podSelector"]
                    .as_mapping()
                    .is_some_and(|m| m.is_empty())
                    && seq(&p["spec"]["ingress"]).is_empty()
                    && p["spec"]["egress"]
                        .as_sequence()
                        .is_some_and(|e| e.is_empty())
            })
            .unwrap_or_else(|| panic!("{name}: no default deny"));
        assert_eq!(
            seq(&deny["spec"]["policyTypes"]),
            vec![Value::from("Ingress"), Value::from("Egress")]
        );
        let selects = |labels: &Value| {
            policies.iter().any(|p| {
                p["spec"]["podSelector"]["matchLabels"]
                    .as_mapping()
                    .is_some_and(|m| {
                        !m.is_empty() && m.iter().all(|(k, v)| labels.get(k) == Some(v))
                    })
            })
        };
        for d in &docs {
            match d["kind"].as_str() {
                Some("Deployment") => assert!(
                    selects(&d["spec"]["template"]["metadata"]["labels"]),
                    "{name}: {:?}",
                    d["metadata"]["name"]
                ),
                Some("WorkflowTemplate") => assert!(
                    selects(&d["spec"]["podMetadata"]["labels"]),
                    "{name}: {:?}",
                    d["metadata"]["name"]
                ),
                _ => {}
            }
        }
    }
}

#[test]
fn dags_match_the_plan() {
    for (name, plan, docs) in builds() {
        for w in &plan.workflows {
            let wt = docs
                .iter()
                .find(|d| {
                    d["kind"].as_str() == Some("WorkflowTemplate")
                        && d["metadata"]["name"].as_str() == Some(&w.kube_name)
                })
                .unwrap();
            let templates = seq(&wt["spec"]["templates"]);
            let entry = wt["spec"]["entrypoint"].as_str().unwrap();
            let dag = templates
                .iter()
                .find(|t| t["name"].as_str() == Some(entry))
                .unwrap();
            let tasks = seq(&dag["dag"]["tasks"]);
            assert_eq!(tasks.len(), w.steps.len(), "{name}");
            for s in &w.steps {
                let task = tasks
                    .iter()
                    .find(|t| t["name"].as_str() == Some(&s.kube_name))
                    .unwrap();
                let deps: Vec<String> = seq(&task["dependencies"])
                    .iter()
                    .map(|d| d.as_str().unwrap().to_string())
                    .collect();
                let expected: Vec<String> = s
                    .depends_on
                    .iter()
                    .map(|d| w.step(d).unwrap().kube_name.clone())
                    .collect();
                assert_eq!(deps, expected, "{name}: {}", s.name);
                let template = templates
                    .iter()
                    .find(|t| t["name"].as_str() == task["template"].as_str())
                    .unwrap();
                let c = &template["container"];
                if let Some(ms) = s.timeout_ms {
                    assert_eq!(
                        template["activeDeadlineSeconds"].as_u64(),
                        Some(ms.div_ceil(1000))
                    );
                }
                if let Some(r) = &s.retry {
                    assert_eq!(
                        template["retryStrategy"]["limit"].as_u64(),
                        Some(u64::from(r.limit))
                    );
                }
                assert_eq!(
                    !template["memoize"].is_null(),
                    s.cache,
                    "{name}: {}",
                    s.name
                );
                let outputs: Vec<String> = seq(&template["outputs"]["parameters"])
                    .iter()
                    .map(|p| p["name"].as_str().unwrap().to_string())
                    .collect();
                assert!(outputs.contains(&"sflow-metrics".to_string()));
                let env: Vec<String> = seq(&c["env"])
                    .iter()
                    .map(|e| e["name"].as_str().unwrap().to_string())
                    .collect();
                for p in &w.params {
                    assert!(
                        env.contains(&format!("SFLOW_PARAM_{}", p.name.to_uppercase())),
                        "{name}: {}",
                        s.name
                    );
                }
                for i in &s.inputs {
                    assert!(env.contains(&format!("SFLOW_INPUT_{}", i.name.to_uppercase())));
                }
                for o in &s.outputs {
                    assert!(env.contains(&format!("SFLOW_OUTPUT_{}", o.name.to_uppercase())));
                    assert!(outputs.contains(&format!("output-{}", o.name)));
                }
                assert!(env.contains(&"SFLOW_METRICS".to_string()));
            }
        }
        let schedules = plan
            .triggers
            .iter()
            .filter(|t| {
                matches!(
                    t.on,
                    sflow_compiler::lower::plan::TriggerSourcePlan::Schedule { .. }
                )
            })
            .count();
        let crons = docs
            .iter()
            .filter(|d| d["kind"].as_str() == Some("CronWorkflow"))
            .count();
        assert!(crons <= schedules, "{name}");
    }
}

#[test]
fn services_scale_within_their_bounds_and_probe_oip_health() {
    for (name, plan, docs) in builds() {
        for s in &plan.services {
            let find = |kind: &str| {
                docs.iter().find(|d| {
                    d["kind"].as_str() == Some(kind)
                        && d["metadata"]["name"].as_str() == Some(&s.kube_name)
                })
            };
            let deployment = find("Deployment").unwrap();
            assert!(
                deployment["spec"]["replicas"].is_null(),
                "{name}: the autoscaler owns replicas"
            );
            let c = &deployment["spec"]["template"]["spec"]["containers"][0];
            assert_eq!(
                str_of(c, &["readinessProbe", "httpGet", "path"]),
                Some("/v2/health/ready")
            );
            assert_eq!(
                str_of(c, &["livenessProbe", "httpGet", "path"]),
                Some("/v2/health/live")
            );
            assert!(find("Service").is_some() && find("PodDisruptionBudget").is_some());
            let (min, max) = match find("HorizontalPodAutoscaler") {
                Some(hpa) => (
                    hpa["spec"]["minReplicas"].as_u64(),
                    hpa["spec"]["maxReplicas"].as_u64(),
                ),
                None => {
                    let so = find("ScaledObject")
                        .unwrap_or_else(|| panic!("{name}: no autoscaler for {}", s.name));
                    (
                        so["spec"]["minReplicaCount"].as_u64(),
                        so["spec"]["maxReplicaCount"].as_u64(),
                    )
                }
            };
            assert_eq!(
                (min, max),
                (
                    Some(u64::from(s.min_replicas)),
                    Some(u64::from(s.max_replicas))
                ),
                "{name}"
            );
        }
    }
}

#[test]
fn the_runtime_may_reach_the_mlflow_server_it_mirrors_into() {
    let text = r#"
app tracked {
  namespace = "tracked"
  tracking  = mlflow("http://mlflow.tools.svc:5000")
}
use std.tracking.mlflow
workflow w { step s { image = "busybox:1.36" run = "true" } }
"#;
    let plan = try_plan("tracked.sflow", text).unwrap();
    let docs = documents(&build(&plan, &Options::default()).unwrap().stream());
    let runtime_policy = docs
        .iter()
        .find(|d| {
            d["kind"].as_str() == Some("NetworkPolicy")
                && d["metadata"]["name"].as_str() == Some("tracked-runtime")
        })
        .expect("the runtime's NetworkPolicy");
    let ports: Vec<i64> = seq(&runtime_policy["spec"]["egress"])
        .iter()
        .flat_map(|rule| seq(&rule["ports"]))
        .filter_map(|p| p["port"].as_i64())
        .collect();
    assert!(ports.contains(&5000), "egress ports: {ports:?}");
}
