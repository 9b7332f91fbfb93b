//! Connecting to a cluster: a kubeconfig (`--kubeconfig`, `KUBECONFIG`, `~/.kube/config`) and a
//! context (`--context`, or the kubeconfig's current one), or the in-cluster service account.

use crate::error::{chain, KubeError};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::path::PathBuf;
use std::time::Duration;

/// How to find the cluster.
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// A kubeconfig file; `None`: `KUBECONFIG`, then `~/.kube/config`, then in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig; `None`: its current context.
    pub context: Option<String>,
}

/// A connected client and what error messages say about it.
#[derive(Clone)]
pub struct Cluster {
    /// The client.
    pub client: kube::Client,
    /// The API server's URL.
    pub server: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.server)
            .finish()
    }
}

/// How long to wait for a TCP/TLS connection: a wrong address fails in seconds, not minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take (an apply of a large WorkflowTemplate included).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads the configuration and builds a client. Nothing is sent to the cluster yet.
pub async fn connect(options: &ClusterOptions) -> Result<Cluster, KubeError> {
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    let mut config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig_error = |reason: String| KubeError::Kubeconfig {
                path: Some(path.display().to_string()),
                reason,
            };
            let kubeconfig =
                Kubeconfig::read_from(path).map_err(|e| kubeconfig_error(chain(&e)))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
                .await
                .map_err(|e| kubeconfig_error(chain(&e)))?
        }
        // A context was asked for: it can only come from a kubeconfig.
        None if options.context.is_some() => kube::Config::from_kubeconfig(&kube_options)
            .await
            .map_err(|e| KubeError::Kubeconfig {
                path: None,
                reason: chain(&e),
            })?,
        None => kube::Config::infer()
            .await
            .map_err(|e| KubeError::NoConfig { reason: chain(&e) })?,
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(|e| KubeError::Kubeconfig {
        path: options.kubeconfig.as_ref().map(|p| p.display().to_string()),
        reason: chain(&e),
    })?;
    Ok(Cluster { client, server })
}
