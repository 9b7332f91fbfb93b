//! `sflow runtime`: the runtime in a Kubernetes cluster (docs/kubernetes.md §8).
//!
//! The manifests (docs/kubernetes-manifests.md §9, §11) start the runtime Deployment as
//! `sflow runtime --plan /etc/sflow/plan/plan.json`. It runs the same engine as `sflow run`
//! (store, triggers, agents, policies, exactly-once firings) with a [`backend::KubeBackend`]:
//!
//! | module | job |
//! | --- | --- |
//! | [`args`] | the command's options and environment (every build) |
//! | `command` | the command: plan, client, HTTP, leader election, the engine while leading |
//! | `plan` | the plan from its ConfigMap through the API, or from the mounted file (`.gz` too) |
//! | `lease` | leader election on a `coordination.k8s.io/v1` Lease, resourceVersion-guarded |
//! | `argo` | Argo `Workflow` objects and their nodes (pure functions) |
//! | `backend` | runs as Argo `Workflow`s (created, watched, recorded); services as Deployments |
//! | `events` | Kubernetes Events about what the runtime did |
//! | `schedules` | the runs CronWorkflows start, recorded as the runtime's own (firings, adopted Workflows) |
//! | `server` | `/livez`, `/readyz`, `/metrics` and the control API while leading |
//!
//! Everything but [`args`] needs the `kubernetes` feature; without it `sflow runtime` says so
//! and exits with status 2.

#[cfg(feature = "kubernetes")]
pub mod argo;
pub mod args;
#[cfg(feature = "kubernetes")]
pub mod backend;
#[cfg(feature = "kubernetes")]
pub mod command;
#[cfg(feature = "kubernetes")]
pub mod events;
#[cfg(feature = "kubernetes")]
pub mod lease;
#[cfg(feature = "kubernetes")]
pub mod plan;
#[cfg(feature = "kubernetes")]
pub mod schedules;
#[cfg(feature = "kubernetes")]
pub mod server;

pub use args::RuntimeArgs;

/// Runs `sflow runtime`; returns the exit status.
pub fn main(args: RuntimeArgs, state_dir: Option<std::path::PathBuf>) -> i32 {
    #[cfg(feature = "kubernetes")]
    {
        match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(command::run(args, state_dir)),
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                2
            }
        }
    }
    #[cfg(not(feature = "kubernetes"))]
    {
        let _ = (args, state_dir);
        eprintln!("error: `sflow runtime` is not available in this build: it needs the Kubernetes feature (build with `--features kubernetes`, docs/kubernetes.md); `sflow run` runs a program locally");
        2
    }
}
