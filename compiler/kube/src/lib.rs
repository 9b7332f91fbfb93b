//! The sflow cluster client: what `sflowc apply` and `sflowc delete` do to a cluster.
//!
//! This is the only crate that talks to a Kubernetes API server (with `kube`, over rustls). It
//! takes the manifests `sflow-emit` built and:
//!
//! - applies them server-side with the field manager `sflowc` ([`apply::apply`]), in the
//!   build's order (Namespace first, custom resources last), after checking that the cluster
//!   serves every kind (a cluster without Argo Workflows fails before anything is written);
//! - prunes the objects of declarations that were removed: objects found by the app's labels
//!   (`app.kubernetes.io/part-of` and `app.kubernetes.io/managed-by: sflowc`) in each kind the
//!   app can own ([`objects::APP_KINDS`]), never by guessing names;
//! - with `--dry-run`, computes the same changes from GETs and writes nothing ([`diff`]);
//! - waits for the Deployments it changed to roll out ([`rollout`]);
//! - deletes an app ([`apply::delete`]).
//!
//! Errors ([`KubeError`]) are miette diagnostics with codes `sflowc::kube::…` and a next step.
//! The compiler core never depends on this crate: it does no I/O.

pub mod apply;
pub mod config;
pub mod diff;
pub mod error;
pub mod objects;
pub mod rollout;

pub use apply::{apply, delete, ApplyOptions, ApplyReport, DeleteReport, FIELD_MANAGER};
pub use config::{connect, Cluster, ClusterOptions};
pub use error::KubeError;
