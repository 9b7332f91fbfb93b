//! Stand-in tests: `sflowc apply`'s library against the Kubernetes stand-in
//! (tests/standin/kube_standin.py: PyPI kmock's KubernetesEmulator, a stateful in-memory API
//! server on loopback, with the gaps that matter fixed). They need `scripts/setup-kmock.sh`;
//! `scripts/test-all.sh` runs them with `cargo test -p sflow-kube -- --ignored`.
//!
//! What the stand-in cannot show (docs/kubernetes.md): controllers (the tests write Deployment
//! status themselves), field ownership, admission, defaulting, namespace garbage collection.

mod common;

use common::{build, north_star, Standin, TestResult};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;
use sflow_kube::apply::{Action, ApplyOptions};
use sflow_kube::objects::{desired, Resolver};
use sflow_kube::{apply, connect, delete, KubeError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The north-star program with one more service, `shadow`: applying the plain program after it
/// is "a service was removed from the program".
fn with_shadow_service(text: &str) -> String {
    format!("{text}\nservice shadow {{\n  model    = training.fit.model\n  replicas = 1\n}}\n")
}

fn no_wait() -> ApplyOptions {
    ApplyOptions {
        wait: None,
        ..ApplyOptions::default()
    }
}

fn names(report: &sflow_kube::ApplyReport, action: fn(&Action) -> bool) -> Vec<String> {
    report
        .outcomes
        .iter()
        .filter(|o| action(&o.action))
        .map(|o| o.object.clone())
        .collect()
}

/// The resourceVersion of every object of a build, as the cluster has it (`None`: absent).
async fn versions(
    cluster: &sflow_kube::Cluster,
    manifests: &[sflow_emit::Manifest],
) -> TestResult<BTreeMap<String, Option<String>>> {
    let (app, objects) = desired(manifests)?;
    let mut resolver = Resolver::new(cluster);
    let mut out = BTreeMap::new();
    for o in &objects {
        let resource = resolver.require(&o.gvk).await?;
        let api = resolver.api(&resource, o.namespace.as_deref().unwrap_or(&app.namespace));
        let live: Option<DynamicObject> = api.get_opt(&o.name).await?;
        out.insert(o.display(), live.and_then(|l| l.metadata.resource_version));
    }
    Ok(out)
}

#[tokio::test]
#[ignore = "needs the Kubernetes stand-in: scripts/test-all.sh runs them"]
async fn standin_apply_prune_dry_run_and_delete_the_north_star() -> TestResult {
    let standin = Standin::start(&[])?;
    let cluster = connect(&standin.options()).await?;
    let text = north_star()?;
    let v1 = build("examples/mnist/mnist.sflow", &with_shadow_service(&text))?;
    let v2 = build("examples/mnist/mnist.sflow", &text)?;
    let mut quiet = |_: &str| {};

    // 1. First apply: every object is created, in the build's order.
    let report = apply(&cluster, &v1.manifests, &no_wait(), &mut quiet).await?;
    assert_eq!(report.app.name, "mnist");
    assert_eq!(report.app.namespace, "mnist");
    assert_eq!(report.outcomes.len(), v1.manifests.len());
    assert!(
        report.outcomes.iter().all(|o| o.action == Action::Created),
        "{report:#?}"
    );
    assert_eq!(report.outcomes[0].object, "Namespace mnist");

    // The objects are there, as typed Kubernetes objects read back through the API.
    let client = cluster.client.clone();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "mnist");
    let predictor = deployments.get("predictor").await?;
    let labels = predictor.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("sflowc")
    );
    assert_eq!(
        labels.get("app.kubernetes.io/part-of").map(String::as_str),
        Some("mnist")
    );
    assert!(predictor.metadata.uid.is_some());
    deployments.get("shadow").await?;
    deployments.get("mnist-runtime").await?;
    let plan = Api::<ConfigMap>::namespaced(client.clone(), "mnist")
        .get("mnist-plan")
        .await?;
    let plan_json = plan
        .data
        .and_then(|d| d.get("plan.json").cloned())
        .ok_or("mnist-plan has no plan.json")?;
    let plan: serde_json::Value = serde_json::from_str(&plan_json)?;
    assert_eq!(plan["app"]["name"], "mnist");
    Api::<Namespace>::all(client.clone()).get("mnist").await?;

    // Objects of others in the namespace: one without our labels, one that claims the app but
    // is managed by someone else. Prune and delete must leave both alone.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "mnist");
    for (name, labels) in [
        ("team-notes", json!({})),
        (
            "other-tool",
            json!({"app.kubernetes.io/part-of": "mnist", "app.kubernetes.io/managed-by": "helm"}),
        ),
    ] {
        let cm: ConfigMap = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "mnist", "labels": labels},
            "data": {"k": "v"}}))?;
        config_maps.create(&PostParams::default(), &cm).await?;
    }

    // 2. Dry run of the program without `shadow`: the diff is printed, nothing changes.
    let before = versions(&cluster, &v1.manifests).await?;
    let dry = ApplyOptions {
        dry_run: true,
        ..no_wait()
    };
    let report = apply(&cluster, &v2.manifests, &dry, &mut quiet).await?;
    assert!(report.dry_run);
    let mut pruned = names(&report, |a| *a == Action::Pruned);
    pruned.sort();
    assert_eq!(
        pruned,
        [
            "Deployment mnist/shadow",
            "HorizontalPodAutoscaler mnist/shadow",
            "NetworkPolicy mnist/shadow",
            "PodDisruptionBudget mnist/shadow",
            "Service mnist/shadow",
            "ServiceAccount mnist/shadow",
        ]
    );
    // The plan changed, so its ConfigMap and every object's version label change with it.
    let plan_change = report
        .outcomes
        .iter()
        .find(|o| o.object == "ConfigMap mnist/mnist-plan")
        .ok_or("no outcome for the plan")?;
    let Action::Configured(changes) = &plan_change.action else {
        return Err(format!("the plan ConfigMap should change: {plan_change:?}").into());
    };
    let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
    assert!(paths.contains(&r#"data["plan.json"]"#), "{paths:?}");
    assert!(
        paths.contains(&r#"metadata.labels["app.kubernetes.io/version"]"#),
        "{paths:?}"
    );
    assert_eq!(
        versions(&cluster, &v1.manifests).await?,
        before,
        "a dry run wrote"
    );
    deployments.get("shadow").await?;

    // 3. The real apply prunes exactly the removed service's objects.
    let report = apply(&cluster, &v2.manifests, &no_wait(), &mut quiet).await?;
    let mut really_pruned = names(&report, |a| *a == Action::Pruned);
    really_pruned.sort();
    assert_eq!(really_pruned, pruned);
    for name in ["shadow"] {
        assert!(
            deployments.get_opt(name).await?.is_none(),
            "{name} was not pruned"
        );
        assert!(Api::<Service>::namespaced(client.clone(), "mnist")
            .get_opt(name)
            .await?
            .is_none());
    }
    deployments.get("predictor").await?;
    config_maps.get("team-notes").await?;
    config_maps.get("other-tool").await?;
    let after = versions(&cluster, &v2.manifests).await?;
    assert!(after.values().all(Option::is_some), "{after:#?}");

    // 4. Applying the same build again changes nothing.
    let report = apply(&cluster, &v2.manifests, &no_wait(), &mut quiet).await?;
    assert_eq!(
        report.count(|a| *a == Action::Unchanged),
        v2.manifests.len(),
        "{report:#?}"
    );
    assert_eq!(report.count(|a| *a == Action::Pruned), 0);
    assert_eq!(
        versions(&cluster, &v2.manifests).await?,
        after,
        "an unchanged apply wrote"
    );

    // 5. Delete removes what apply created, and only that.
    let report = delete(&cluster, &v2.manifests).await?;
    assert_eq!(report.deleted.len(), v2.manifests.len(), "{report:#?}");
    assert_eq!(
        report.deleted.last().map(String::as_str),
        Some("Namespace mnist")
    );
    assert!(versions(&cluster, &v2.manifests)
        .await?
        .values()
        .all(Option::is_none));
    config_maps.get("team-notes").await?;
    config_maps.get("other-tool").await?;
    // Deleting again finds nothing to delete.
    let report = delete(&cluster, &v2.manifests).await?;
    assert!(report.deleted.is_empty());
    assert_eq!(report.absent.len(), v2.manifests.len());
    Ok(())
}

#[tokio::test]
#[ignore = "needs the Kubernetes stand-in: scripts/test-all.sh runs them"]
async fn standin_apply_waits_for_the_rollouts_it_started() -> TestResult {
    let standin = Standin::start(&[])?;
    let cluster = connect(&standin.options()).await?;
    let v = build("examples/mnist/mnist.sflow", &north_star()?)?;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "mnist");

    // Nothing runs controllers here: with no status, the wait times out and says on what.
    let short = ApplyOptions {
        wait: Some(Duration::from_millis(600)),
        poll: Duration::from_millis(100),
        ..ApplyOptions::default()
    };
    let mut quiet = |_: &str| {};
    match apply(&cluster, &v.manifests, &short, &mut quiet).await {
        Err(KubeError::RolloutTimeout { pending, .. }) => {
            assert_eq!(pending.len(), 2, "{pending:?}");
            assert!(pending
                .iter()
                .any(|p| p.starts_with("Deployment mnist/mnist-runtime:")));
            assert!(pending
                .iter()
                .any(|p| p.starts_with("Deployment mnist/predictor:")));
        }
        other => return Err(format!("expected a rollout timeout, got {other:?}").into()),
    }

    // Change the plan so the runtime's Deployment changes again, then play the Deployment
    // controller while sflowc waits: the runtime becomes available; the predictor has no model
    // yet, so updated replicas are enough.
    let text = north_star()?.replace("param epochs: int   = 3", "param epochs: int   = 4");
    let v2 = build("examples/mnist/mnist.sflow", &text)?;
    let options = ApplyOptions {
        wait: Some(Duration::from_secs(20)),
        poll: Duration::from_millis(100),
        ..ApplyOptions::default()
    };
    let waiting = AtomicBool::new(false);
    let mut seen = Vec::new();
    let mut progress = |line: &str| {
        waiting.store(true, Ordering::SeqCst);
        seen.push(line.to_string());
    };
    let controller = async {
        // Once sflowc has applied everything and waits (it reports progress), roll out.
        for _ in 0..200 {
            if waiting.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for (name, available) in [("mnist-runtime", 1), ("predictor", 0)] {
            let d = deployments.get(name).await?;
            let generation = d.metadata.generation.unwrap_or(1);
            let status = json!({"status": {"observedGeneration": generation, "replicas": 1,
                "updatedReplicas": 1, "readyReplicas": available, "availableReplicas": available}});
            deployments
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
                .await?;
        }
        Ok::<_, kube::Error>(())
    };
    let (report, controlled) = tokio::join!(
        apply(&cluster, &v2.manifests, &options, &mut progress),
        controller
    );
    controlled?;
    let report = report?;
    assert!(
        seen.iter()
            .any(|l| l.starts_with("Deployment mnist/mnist-runtime:")),
        "sflowc reported no progress while waiting: {seen:?}"
    );
    // Every object's version label follows the plan, so both Deployments changed.
    assert_eq!(
        report.rollouts,
        [
            "Deployment mnist/mnist-runtime: 1 of 1 available",
            "Deployment mnist/predictor: 1 of 1 updated, 0 available (no model yet: the runtime sets SFLOW_MODEL after the first training run)",
        ]
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the Kubernetes stand-in: scripts/test-all.sh runs them"]
async fn standin_a_cluster_without_argo_is_refused_before_anything_is_written() -> TestResult {
    let standin = Standin::start(&["--without-argo"])?;
    let cluster = connect(&standin.options()).await?;
    let v = build("examples/mnist/mnist.sflow", &north_star()?)?;
    let mut quiet = |_: &str| {};
    match apply(&cluster, &v.manifests, &no_wait(), &mut quiet).await {
        Err(KubeError::NotServed { kind, hint, .. }) => {
            assert_eq!(kind, "WorkflowTemplate");
            assert!(hint.contains("Argo Workflows"), "{hint}");
        }
        other => return Err(format!("expected NotServed, got {other:?}").into()),
    }
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    assert!(
        namespaces.get_opt("mnist").await?.is_none(),
        "something was written"
    );
    Ok(())
}
