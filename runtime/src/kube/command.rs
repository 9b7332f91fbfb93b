//! `sflow runtime`: loads the plan, serves health and metrics at once, and runs the engine with
//! the Kubernetes backend while — and only while — it holds the Lease.
//!
//! A replica that does not hold the Lease opens nothing of the store: it serves `/livez`,
//! `/readyz` and `/metrics`, answers the control API with 503, and tries for the Lease every
//! fifth of its duration. The leader renews every third; when it cannot renew for two thirds
//! (or finds that another identity holds the Lease) it stops the engine and exits with status
//! 1, so that Kubernetes restarts it as a follower: no replica ever acts on a Lease it might
//! have lost. SIGTERM stops the engine, gives the Lease up (the other replica takes over at
//! once) and exits 0. Firings and runs left unfinished are the store's pending firings and
//! interrupted runs, which the next leader continues from the store (docs/runtime.md §6) —
//! re-attaching to runs' Workflows rather than creating them again.

use super::args::RuntimeArgs;
use super::backend::{KubeBackend, KubeConfig, Stats};
use super::lease::{Elector, Round};
use super::server::{self, Port};
use crate::engine::{Engine, EngineConfig};
use crate::program::Program;
use sflow_compiler::lower::plan::{ActionPlan, Plan, TriggerSourcePlan};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs the command; returns the exit status.
pub async fn run(args: RuntimeArgs, state_dir: Option<PathBuf>) -> i32 {
    let cluster = match sflow_kube::connect(&sflow_kube::ClusterOptions::default()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let plan = match load_plan(&args, &cluster.client).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let app = plan.app.name.clone();
    if let Some(a) = args.app.as_deref().filter(|a| *a != app) {
        eprintln!("error: SFLOW_APP is `{a}` but the plan is app `{app}`");
        return 2;
    }
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| plan.app.namespace.clone());
    let identity = args.pod_name.clone().unwrap_or_else(default_identity);
    let lease = args
        .lease
        .clone()
        .unwrap_or_else(|| sflow_emit::conventions::names::runtime(&app));
    let state_dir = state_dir.unwrap_or_else(|| args.artifacts.join("sflow"));
    if let Err(e) = std::fs::create_dir_all(&state_dir) {
        eprintln!("error: cannot create {}: {e}", state_dir.display());
        return 2;
    }
    let token = match crate::state::token(&state_dir) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    // The model servers' token (`STATE/ingest/token`): it allows their reports and nothing
    // else; their pods read it from the artifacts volume (`SFLOW_RUNTIME_TOKEN_FILE`).
    let ingest_dir = state_dir.join("ingest");
    let ingest_token = match std::fs::create_dir_all(&ingest_dir)
        .map_err(|e| crate::error::Error::io(format!("cannot create {}", ingest_dir.display()), e))
        .and_then(|()| crate::state::token(&ingest_dir))
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };

    let stats = Arc::new(Stats::default());
    let port = Port::new(&identity, stats.clone());
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", args.listen);
            return 2;
        }
    };
    let routes = server::router(port.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, routes).await {
            tracing::error!("the HTTP port stopped: {e}");
        }
    });
    tracing::info!(app, namespace, identity, lease, listen = %args.listen, store = %state_dir.display(), "sflow runtime started; waiting for the lease");

    let mut elector = Elector::new(
        cluster.client.clone(),
        &namespace,
        &lease,
        &identity,
        args.lease_duration,
    );
    let stop = stopped();
    tokio::pin!(stop);

    // Follow until the Lease is ours.
    let mut last_holder: Option<Option<String>> = None;
    let mut first = true;
    loop {
        if !first {
            tokio::select! {
                () = &mut stop => return 0,
                () = tokio::time::sleep(elector.retry_interval()) => {}
            }
        }
        first = false;
        match elector.try_acquire_or_renew().await {
            Ok(Round::Leading) => break,
            Ok(Round::Following { holder }) => {
                if last_holder.as_ref() != Some(&holder) {
                    tracing::info!(
                        holder = holder.as_deref().unwrap_or("nobody"),
                        "another replica leads; standing by"
                    );
                    last_holder = Some(holder);
                }
            }
            Err(e) => tracing::warn!("leader election: {e}"),
        }
    }
    tracing::info!(identity, "acquired the lease: acting");
    let mut last_renew = Instant::now();

    let backend = KubeBackend::new(
        KubeConfig {
            client: cluster.client.clone(),
            app: app.clone(),
            namespace: namespace.clone(),
            artifacts: args.artifacts.clone(),
            identity: identity.clone(),
        },
        stats,
    );
    let mut cfg = EngineConfig::new(state_dir.clone());
    cfg.backend = Some(Arc::new(backend));
    cfg.external_schedules = cron_workflow_triggers(&plan);
    let argo_schedules = cfg.external_schedules.clone();
    let program = Program {
        plan,
        path: args.plan.clone(),
        dir: args.artifacts.clone(),
    };
    // The previous leader may still be letting go of the state directory.
    let mut tries = 0;
    let engine = loop {
        match Engine::start(program.clone(), cfg.clone()).await {
            Ok(e) => break e,
            Err(e) if tries < 30 && e.to_string().contains("another sflow runtime") => {
                tries += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Ok(Round::Leading) = elector.try_acquire_or_renew().await {
                    last_renew = Instant::now();
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                let _ = elector.release().await;
                return 2;
            }
        }
    };
    #[cfg(feature = "ml")]
    {
        let sink: Arc<dyn crate::executor::SignalSink> = engine.shared().clone();
        let ingest = crate::ml::ingest::Ingest::start(
            Arc::new(program.plan.clone()),
            state_dir.clone(),
            Arc::downgrade(&sink),
            engine.shutdown_signal(),
        );
        port.receive(ingest, vec![ingest_token.clone(), token.clone()]);
    }
    #[cfg(not(feature = "ml"))]
    let _ = &ingest_token;
    tokio::spawn(super::schedules::watch(
        cluster.client.clone(),
        namespace.clone(),
        app.clone(),
        engine.shared().clone(),
        argo_schedules,
    ));
    // What the runtime records goes to the app's MLflow server too (`tracking`); the
    // outbox is in the store, so a new leader sends what the previous one could not.
    let _mirror = match crate::mlflow::mirror::Mirror::start_for(&engine) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: MLflow mirror: {e}");
            engine.shutdown().await;
            let _ = elector.release().await;
            return 2;
        }
    };
    port.lead(crate::api::router(engine.clone(), token));

    // Lead until stopped or until the Lease may be lost.
    let code = loop {
        tokio::select! {
            () = &mut stop => {
                port.follow();
                engine.shutdown().await;
                if let Err(e) = elector.release().await {
                    tracing::warn!("could not give the lease up: {e}");
                }
                tracing::info!("stopped; the lease is free");
                break 0;
            }
            () = tokio::time::sleep(elector.renew_interval()) => {}
        }
        match elector.try_acquire_or_renew().await {
            Ok(Round::Leading) => last_renew = Instant::now(),
            Ok(Round::Following { holder }) => {
                tracing::error!(
                    holder = holder.as_deref().unwrap_or("nobody"),
                    "lost the lease"
                );
                break 1;
            }
            Err(e) if last_renew.elapsed() >= elector.renew_deadline() => {
                tracing::error!("could not renew the lease in time: {e}");
                break 1;
            }
            Err(e) => tracing::warn!("renewing the lease: {e}"),
        }
    };
    if code != 0 {
        port.follow();
        engine.shutdown().await;
        eprintln!("sflow runtime stopped acting: it may no longer hold the lease; exiting so that it restarts as a follower");
    }
    code
}

/// The plan: the ConfigMap through the API when it can be read (it is the newest), else the
/// mounted file.
async fn load_plan(args: &RuntimeArgs, client: &::kube::Client) -> crate::error::Result<Plan> {
    let mounted = super::plan::read_file(&args.plan);
    let namespace = args
        .namespace
        .clone()
        .or_else(|| mounted.as_ref().ok().map(|p| p.app.namespace.clone()));
    let from_api = match (&args.plan_configmap, namespace) {
        (Some(cm), Some(ns)) => match super::plan::read_configmap(client, &ns, cm).await {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!("{e}; using the mounted plan");
                None
            }
        },
        _ => None,
    };
    match (from_api, mounted) {
        (Some(api), Ok(file)) => {
            if serde_json::to_value(&api)? != serde_json::to_value(&file)? {
                tracing::info!(
                    "the plan's ConfigMap is newer than the mounted copy: using the ConfigMap's"
                );
            }
            Ok(api)
        }
        (Some(api), Err(e)) => {
            tracing::warn!("{e}; using the plan's ConfigMap");
            Ok(api)
        }
        (None, file) => file,
    }
}

/// `schedule` triggers that the manifests turned into CronWorkflows (a `run` of a workflow
/// with constant params, `sflow_emit::workflows::cron_workflow`): Argo fires those, not the
/// engine.
pub fn cron_workflow_triggers(plan: &Plan) -> BTreeSet<String> {
    plan.triggers
        .iter()
        .filter(|t| matches!(t.on, TriggerSourcePlan::Schedule { .. }))
        .filter(|t| match &t.action {
            ActionPlan::Run { workflow, with } => {
                plan.workflow(workflow).is_some()
                    && with
                        .values()
                        .all(|e| sflow_emit::workflows::const_text(e).is_some())
            }
            _ => false,
        })
        .map(|t| t.name.clone())
        .collect()
}

fn default_identity() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("sflow-runtime-{}", std::process::id()))
}

/// SIGTERM or Ctrl-C.
async fn stopped() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_with_constant_runs_are_left_to_argo() -> crate::error::Result<()> {
        let plan = crate::program::plan_of_source(
            "t.sflow",
            "app t { namespace = \"t\" }\nworkflow w {\n  param n: int = 1\n  step s {\n    image = \"busybox\"\n    run = \"true\"\n  }\n}\nagent kind K {\n  sensor x: int\n  action go()\n}\nagent k: K\ntrigger argo: schedule \"0 2 * * *\" -> run w with { n = 3 }\ntrigger mine: schedule \"0 3 * * *\" -> run w with { n = k.x }\ntrigger act: schedule \"0 4 * * *\" -> k.go()\n",
        )?;
        assert_eq!(
            cron_workflow_triggers(&plan),
            BTreeSet::from(["argo".to_string()])
        );
        Ok(())
    }
}
