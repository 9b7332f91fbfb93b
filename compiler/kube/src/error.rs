//! What can go wrong between sflowc and a cluster, in the user's words.
//!
//! Every error has a miette code (`sflowc::kube::…`, the CLI's style for errors that are not
//! program diagnostics) and, where there is one, a next step to take.

use std::time::Duration;

/// Why applying, diffing or deleting an app did not complete.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum KubeError {
    /// The kubeconfig could not be read, parsed or used (missing context, bad certificate, …).
    #[error("cannot use the kubeconfig{}: {reason}", at(.path))]
    #[diagnostic(
        code(sflowc::kube::kubeconfig),
        help("check the file (`kubectl config view`) and the context (`kubectl config get-contexts`); pass another one with --kubeconfig and --context")
    )]
    Kubeconfig {
        /// The kubeconfig named with `--kubeconfig`, or none for the default one.
        path: Option<String>,
        /// Why, as the client library said it.
        reason: String,
    },

    /// No kubeconfig was given or found, and sflowc is not running in a cluster.
    #[error("no cluster configured: {reason}")]
    #[diagnostic(
        code(sflowc::kube::no_config),
        help("pass --kubeconfig PATH, set KUBECONFIG, or create ~/.kube/config (kind, k3s and managed clusters write one)")
    )]
    NoConfig {
        /// Why, as the client library said it.
        reason: String,
    },

    /// The API server did not answer (connection refused, DNS, TLS, timeout).
    #[error("cannot reach the Kubernetes API server at {server} while {doing}: {reason}")]
    #[diagnostic(
        code(sflowc::kube::unreachable),
        help("is the cluster running and is this the right context? try `kubectl cluster-info`")
    )]
    Unreachable {
        /// The API server's URL.
        server: String,
        /// What sflowc was doing.
        doing: String,
        /// The transport's message.
        reason: String,
    },

    /// The API server did not accept the credentials (401).
    #[error(
        "the Kubernetes API server at {server} refused the credentials while {doing}: {message}"
    )]
    #[diagnostic(
        code(sflowc::kube::unauthorized),
        help("the kubeconfig's user has no valid token or certificate: log in again (`kubectl get ns` shows the same error)")
    )]
    Unauthorized {
        /// The API server's URL.
        server: String,
        /// What sflowc was doing.
        doing: String,
        /// The server's message.
        message: String,
    },

    /// The user may not do something sflowc needs (403).
    #[error("forbidden while {doing}: {message}")]
    #[diagnostic(
        code(sflowc::kube::forbidden),
        help("sflowc needs get, list, patch and delete on the app's objects in its namespace (and create on namespaces for the first apply); ask your cluster admin, or check with `kubectl auth can-i patch deployments -n NAMESPACE`")
    )]
    Forbidden {
        /// What sflowc was doing.
        doing: String,
        /// The server's message.
        message: String,
    },

    /// The cluster does not serve a kind the app needs (a CRD is not installed).
    #[error("the cluster does not serve {api_version} {kind}, which the app uses")]
    #[diagnostic(code(sflowc::kube::missing_kind), help("{hint}"))]
    NotServed {
        /// The object's `apiVersion`.
        api_version: String,
        /// The object's `kind`.
        kind: String,
        /// What to install.
        hint: String,
    },

    /// The API server refused an object or a request (validation, admission, conflict, …).
    #[error("the Kubernetes API server refused {doing}: {message} ({code} {reason})")]
    #[diagnostic(code(sflowc::kube::rejected))]
    Rejected {
        /// What sflowc was doing.
        doing: String,
        /// The HTTP status.
        code: u16,
        /// The server's reason (`Invalid`, `Conflict`, …).
        reason: String,
        /// The server's message.
        message: String,
    },

    /// Something else went wrong talking to the API server.
    #[error("the Kubernetes client failed while {doing}: {message}")]
    #[diagnostic(code(sflowc::kube::client))]
    Client {
        /// What sflowc was doing.
        doing: String,
        /// The client's message.
        message: String,
    },

    /// A built manifest could not be read back (a bug in sflowc: manifests are generated).
    #[error("cannot read back the manifest `{file}`: {message}")]
    #[diagnostic(code(sflowc::kube::manifest))]
    Manifest {
        /// The manifest's file name.
        file: String,
        /// What is wrong.
        message: String,
    },

    /// Deployments were not rolled out in time.
    #[error("not rolled out after {}s: {}", .waited.as_secs(), .pending.join("; "))]
    #[diagnostic(
        code(sflowc::kube::rollout_timeout),
        help("the objects were applied; see why with `kubectl -n NAMESPACE describe deployment NAME` and `kubectl -n NAMESPACE get events`, or wait longer with --timeout")
    )]
    RolloutTimeout {
        /// How long sflowc waited.
        waited: Duration,
        /// Each Deployment still rolling out, with its state.
        pending: Vec<String>,
    },
}

/// ` \`PATH\`` or nothing.
fn at(path: &Option<String>) -> String {
    path.as_ref().map(|p| format!(" `{p}`")).unwrap_or_default()
}

impl KubeError {
    /// Translates a client error into the user's terms. `server` is the API server's URL and
    /// `doing` says what sflowc was doing (`applying Deployment mnist/predictor`).
    pub fn from_kube(error: kube::Error, server: &str, doing: impl Into<String>) -> KubeError {
        let doing = doing.into();
        match error {
            kube::Error::Api(status) => match status.code {
                401 => KubeError::Unauthorized {
                    server: server.to_string(),
                    doing,
                    message: status.message,
                },
                403 => KubeError::Forbidden {
                    doing,
                    message: status.message,
                },
                code => KubeError::Rejected {
                    doing,
                    code,
                    reason: status.reason,
                    message: status.message,
                },
            },
            kube::Error::HyperError(e) => KubeError::Unreachable {
                server: server.to_string(),
                doing,
                reason: chain(&e),
            },
            kube::Error::Service(e) => KubeError::Unreachable {
                server: server.to_string(),
                doing,
                reason: chain(e.as_ref()),
            },
            kube::Error::Auth(e) => KubeError::Unauthorized {
                server: server.to_string(),
                doing,
                message: chain(&e),
            },
            other => KubeError::Client {
                doing,
                message: chain(&other),
            },
        }
    }

    /// Whether this is the API server's "not found" (404).
    pub fn is_not_found(error: &kube::Error) -> bool {
        matches!(error, kube::Error::Api(status) if status.code == 404)
    }
}

/// An error with its sources, `outer: inner: innermost` (a transport error's useful part,
/// "Connection refused", is usually the innermost).
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}
