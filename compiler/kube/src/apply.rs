//! `sflowc apply`: server-side apply of a build, prune of the app's objects the build no longer
//! has, and the wait for the rollouts it started; `--dry-run` computes the same changes from
//! GETs without writing.

use crate::config::Cluster;
use crate::diff::{changed_fields, FieldChange};
use crate::error::KubeError;
use crate::objects::{display, owned_kinds, App, Desired, Resolver};
use crate::rollout::{rollout, Rollout};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::Value;
use sflow_emit::Manifest;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The field manager of sflowc's server-side applies (`metadata.managedFields[].manager`).
pub const FIELD_MANAGER: &str = "sflowc";

/// How to apply.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// Compute and report the changes, write nothing.
    pub dry_run: bool,
    /// Wait this long for the Deployments the apply changed to roll out; `None`: do not wait.
    pub wait: Option<Duration>,
    /// How often to look at a rollout.
    pub poll: Duration,
}

impl Default for ApplyOptions {
    fn default() -> ApplyOptions {
        ApplyOptions {
            dry_run: false,
            wait: Some(Duration::from_secs(300)),
            poll: Duration::from_secs(2),
        }
    }
}

/// What happened (or, in a dry run, would happen) to one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// It did not exist and was created.
    Created,
    /// It existed and these fields changed.
    Configured(Vec<FieldChange>),
    /// It existed with the built values already.
    Unchanged,
    /// It carries the app's labels but is not in the build any more: deleted.
    Pruned,
}

/// One object's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// `Deployment mnist/predictor`.
    pub object: String,
    /// What happened to it.
    pub action: Action,
}

/// The result of an apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyReport {
    /// The app.
    pub app: App,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Every object of the build (in apply order), then every pruned one.
    pub outcomes: Vec<Outcome>,
    /// Each Deployment waited for, with how it ended (`Deployment mnist/mnist-runtime: 1 of 1
    /// available`).
    pub rollouts: Vec<String>,
}

impl ApplyReport {
    /// How many objects had `action`'s kind of outcome.
    pub fn count(&self, matches: impl Fn(&Action) -> bool) -> usize {
        self.outcomes.iter().filter(|o| matches(&o.action)).count()
    }
}

/// Applies a build to the cluster. `progress` is told about each rollout still going while
/// waiting.
pub async fn apply(
    cluster: &Cluster,
    manifests: &[Manifest],
    options: &ApplyOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<ApplyReport, KubeError> {
    let (app, objects) = crate::objects::desired(manifests)?;
    let mut resolver = Resolver::new(cluster);
    // Every kind must be served before anything is written: a cluster without Argo fails here,
    // not half-way through.
    let mut resources = Vec::with_capacity(objects.len());
    for o in &objects {
        resources.push(resolver.require(&o.gvk).await?);
    }

    let mut outcomes = Vec::with_capacity(objects.len());
    let mut changed_deployments = Vec::new();
    let params = PatchParams::apply(FIELD_MANAGER)
        // sflowc is the source of truth of every field it declares: take them over from another
        // manager (an earlier `kubectl apply --server-side -k build/`, a hand edit), as
        // `kubectl apply --server-side --force-conflicts` does. Fields sflowc does not declare
        // (the runtime's SFLOW_MODEL, defaults) keep their managers.
        .force();
    for (o, resource) in objects.iter().zip(&resources) {
        let namespace = o.namespace.as_deref().unwrap_or(&app.namespace);
        let api = resolver.api(resource, namespace);
        let doing = |what: &str| format!("{what} {}", o.display());
        let live = api
            .get_opt(&o.name)
            .await
            .map_err(|e| KubeError::from_kube(e, &cluster.server, doing("reading")))?;
        let action = match &live {
            None => Action::Created,
            Some(live) => {
                let live = serde_json::to_value(live).map_err(|e| KubeError::Client {
                    doing: doing("reading"),
                    message: e.to_string(),
                })?;
                let changes = changed_fields(&o.object, &live);
                if changes.is_empty() {
                    Action::Unchanged
                } else {
                    Action::Configured(changes)
                }
            }
        };
        if !options.dry_run && action != Action::Unchanged {
            api.patch(&o.name, &params, &Patch::Apply(&o.object))
                .await
                .map_err(|e| KubeError::from_kube(e, &cluster.server, doing("applying")))?;
            if o.gvk.group == "apps" && o.gvk.kind == "Deployment" {
                changed_deployments.push(o);
            }
        }
        outcomes.push(Outcome {
            object: o.display(),
            action,
        });
    }

    for (gvk, name) in leftovers(cluster, &mut resolver, &app, &objects).await? {
        if !options.dry_run {
            delete_one(cluster, &mut resolver, &app.namespace, &gvk, &name).await?;
        }
        outcomes.push(Outcome {
            object: display(&gvk.kind, Some(&app.namespace), &name),
            action: Action::Pruned,
        });
    }

    let rollouts = match options.wait {
        Some(timeout) if !options.dry_run && !changed_deployments.is_empty() => {
            wait_for_rollouts(
                cluster,
                &mut resolver,
                &app,
                &changed_deployments,
                timeout,
                options.poll,
                progress,
            )
            .await?
        }
        _ => Vec::new(),
    };
    Ok(ApplyReport {
        app,
        dry_run: options.dry_run,
        outcomes,
        rollouts,
    })
}

/// The app's objects in the cluster that the build does not have: found by the app's labels
/// in each kind the app can own (and checked again on our side), never by name.
async fn leftovers(
    cluster: &Cluster,
    resolver: &mut Resolver<'_>,
    app: &App,
    objects: &[Desired],
) -> Result<Vec<(GroupVersionKind, String)>, KubeError> {
    // By group, kind and name: the version an object is served at does not make it another.
    let keep: BTreeSet<(&str, &str, &str)> = objects
        .iter()
        .map(|o| (o.gvk.group.as_str(), o.gvk.kind.as_str(), o.name.as_str()))
        .collect();
    let mut found = Vec::new();
    let list = ListParams::default().labels(&app.selector());
    for gvk in owned_kinds(objects) {
        // A kind the cluster does not serve holds nothing of ours.
        let Some(resource) = resolver.resolve(&gvk).await? else {
            continue;
        };
        let api = resolver.api(&resource, &app.namespace);
        let items = api.list(&list).await.map_err(|e| {
            KubeError::from_kube(
                e,
                &cluster.server,
                format!("listing the app's {} objects", gvk.kind),
            )
        })?;
        for item in items {
            let Some(name) = item.metadata.name.clone() else {
                continue;
            };
            let in_namespace = item.metadata.namespace.as_deref() == Some(app.namespace.as_str());
            if !in_namespace
                || keep.contains(&(gvk.group.as_str(), gvk.kind.as_str(), name.as_str()))
            {
                continue;
            }
            let value = serde_json::to_value(&item).unwrap_or(Value::Null);
            if app.owns(&value) {
                found.push((gvk.clone(), name));
            }
        }
    }
    Ok(found)
}

/// Deletes one object of the app; one already gone is fine.
async fn delete_one(
    cluster: &Cluster,
    resolver: &mut Resolver<'_>,
    namespace: &str,
    gvk: &GroupVersionKind,
    name: &str,
) -> Result<bool, KubeError> {
    let resource = resolver.require(gvk).await?;
    let api = resolver.api(&resource, namespace);
    let params = DeleteParams::background();
    match api.delete(name, &params).await {
        Ok(_) => Ok(true),
        Err(e) if KubeError::is_not_found(&e) => Ok(false),
        Err(e) => Err(KubeError::from_kube(
            e,
            &cluster.server,
            format!("deleting {}", display(&gvk.kind, Some(namespace), name)),
        )),
    }
}

/// Polls the Deployments until each has rolled out, one fails, or `timeout` passes.
async fn wait_for_rollouts(
    cluster: &Cluster,
    resolver: &mut Resolver<'_>,
    app: &App,
    deployments: &[&Desired],
    timeout: Duration,
    poll: Duration,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Vec<String>, KubeError> {
    let started = Instant::now();
    let mut done: Vec<Option<String>> = vec![None; deployments.len()];
    // What was last said about each Deployment: progress is told about changes only.
    let mut said: Vec<Option<String>> = vec![None; deployments.len()];
    loop {
        let mut pending = Vec::new();
        for ((d, slot), said) in deployments.iter().zip(done.iter_mut()).zip(said.iter_mut()) {
            if slot.is_some() {
                continue;
            }
            let resource = resolver.require(&d.gvk).await?;
            let namespace = d.namespace.as_deref().unwrap_or(&app.namespace);
            let api = resolver.api(&resource, namespace);
            let live: DynamicObject = api.get(&d.name).await.map_err(|e| {
                KubeError::from_kube(e, &cluster.server, format!("reading {}", d.display()))
            })?;
            let live = serde_json::to_value(&live).unwrap_or(Value::Null);
            match rollout(&live) {
                Rollout::Done(how) => *slot = Some(format!("{}: {how}", d.display())),
                Rollout::Waiting(why) => {
                    let line = format!("{}: {why}", d.display());
                    if said.as_deref() != Some(line.as_str()) {
                        progress(&line);
                        *said = Some(line.clone());
                    }
                    pending.push(line);
                }
                Rollout::Failed(why) => {
                    return Err(KubeError::RolloutTimeout {
                        waited: started.elapsed(),
                        pending: vec![format!("{}: {why}", d.display())],
                    })
                }
            }
        }
        if pending.is_empty() {
            return Ok(done.into_iter().flatten().collect());
        }
        if started.elapsed() >= timeout {
            return Err(KubeError::RolloutTimeout {
                waited: timeout,
                pending,
            });
        }
        tokio::time::sleep(poll.min(timeout.saturating_sub(started.elapsed()))).await;
    }
}

/// What `sflowc delete` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteReport {
    /// The app.
    pub app: App,
    /// The objects deleted, in the order they were.
    pub deleted: Vec<String>,
    /// The build's objects that were already gone.
    pub absent: Vec<String>,
    /// Set when the namespace was left in place, with why.
    pub namespace_kept: Option<String>,
}

/// Namespaces Kubernetes itself owns: never deleted, even when an app lives in one.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Deletes what `apply` created for this build's app: the build's objects (in reverse apply
/// order), the app's labelled objects of earlier builds, and last the namespace, if it carries
/// the app's labels.
pub async fn delete(cluster: &Cluster, manifests: &[Manifest]) -> Result<DeleteReport, KubeError> {
    let (app, objects) = crate::objects::desired(manifests)?;
    let mut resolver = Resolver::new(cluster);
    let mut report = DeleteReport {
        app: app.clone(),
        deleted: Vec::new(),
        absent: Vec::new(),
        namespace_kept: None,
    };
    let is_namespace = |o: &Desired| o.gvk.group.is_empty() && o.gvk.kind == "Namespace";
    for o in objects.iter().rev().filter(|o| !is_namespace(o)) {
        // A kind the cluster does not serve has nothing to delete.
        if resolver.resolve(&o.gvk).await?.is_none() {
            report.absent.push(o.display());
            continue;
        }
        if delete_one(
            cluster,
            &mut resolver,
            o.namespace.as_deref().unwrap_or(&app.namespace),
            &o.gvk,
            &o.name,
        )
        .await?
        {
            report.deleted.push(o.display());
        } else {
            report.absent.push(o.display());
        }
    }
    for (gvk, name) in leftovers(cluster, &mut resolver, &app, &[]).await? {
        if delete_one(cluster, &mut resolver, &app.namespace, &gvk, &name).await? {
            report
                .deleted
                .push(display(&gvk.kind, Some(&app.namespace), &name));
        }
    }
    if let Some(ns) = objects.iter().find(|o| is_namespace(o)) {
        let resource = resolver.require(&ns.gvk).await?;
        let api = resolver.api(&resource, &app.namespace);
        let live = api.get_opt(&ns.name).await.map_err(|e| {
            KubeError::from_kube(e, &cluster.server, format!("reading {}", ns.display()))
        })?;
        match live {
            None => report.absent.push(ns.display()),
            Some(_) if SYSTEM_NAMESPACES.contains(&ns.name.as_str()) => {
                report.namespace_kept = Some(format!(
                    "{} is a namespace of Kubernetes itself",
                    ns.display()
                ));
            }
            Some(live) => {
                let live = serde_json::to_value(&live).unwrap_or(Value::Null);
                if !app.owns(&live) {
                    report.namespace_kept = Some(format!(
                        "{} does not carry the app's labels ({}): it was not created by sflowc",
                        ns.display(),
                        app.selector()
                    ));
                } else {
                    match api.delete(&ns.name, &DeleteParams::background()).await {
                        Ok(_) => report.deleted.push(ns.display()),
                        Err(e) if KubeError::is_not_found(&e) => report.absent.push(ns.display()),
                        Err(e) => {
                            return Err(KubeError::from_kube(
                                e,
                                &cluster.server,
                                format!("deleting {}", ns.display()),
                            ))
                        }
                    }
                }
            }
        }
    }
    Ok(report)
}
