//! Whether a Deployment has rolled out, read from its status as `kubectl rollout status` does.
//!
//! A service's model server is not ready until it has a model, and the model comes from the
//! runtime (it sets `SFLOW_MODEL` once a training run has produced one,
//! docs/kubernetes-manifests.md §8). So a service Deployment without `SFLOW_MODEL` counts as
//! rolled out once its pods are updated; waiting for readiness there would wait for a training
//! run. Every other Deployment (the runtime, a service with a model) must be available.

use serde_json::Value;
use sflow_emit::meta::COMPONENT;

/// Where a Deployment's rollout stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// Done; the text says how it stands (`1 of 1 available`).
    Done(String),
    /// Still going; the text says what it waits for.
    Waiting(String),
    /// The controller gave up (progress deadline exceeded).
    Failed(String),
}

/// The environment variable the runtime sets on a service's Deployment to serve a model.
pub const MODEL_ENV: &str = "SFLOW_MODEL";

/// Whether the Deployment must have available replicas to count as rolled out: not for a
/// service that has no model yet.
pub fn needs_ready(deployment: &Value) -> bool {
    let is_service = deployment["metadata"]["labels"][COMPONENT].as_str() == Some("service");
    if !is_service {
        return true;
    }
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    containers.iter().any(|c| {
        c["env"]
            .as_array()
            .is_some_and(|env| env.iter().any(|e| e["name"].as_str() == Some(MODEL_ENV)))
    })
}

/// Reads a live Deployment's rollout from its `metadata.generation`, `spec.replicas` and
/// `status`.
pub fn rollout(deployment: &Value) -> Rollout {
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let generation = int(&deployment["metadata"]["generation"]);
    let status = &deployment["status"];
    let observed = int(&status["observedGeneration"]);
    if observed < generation || status.is_null() {
        return Rollout::Waiting(format!(
            "waiting for the Deployment controller to observe generation {generation}"
        ));
    }
    if let Some(conditions) = status["conditions"].as_array() {
        if let Some(c) = conditions
            .iter()
            .find(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
        {
            return Rollout::Failed(format!(
                "progress deadline exceeded: {}",
                c["message"].as_str().unwrap_or("")
            ));
        }
    }
    // The API server defaults `spec.replicas` to 1; services leave it to their autoscaler.
    let wanted = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    let updated = int(&status["updatedReplicas"]);
    let replicas = int(&status["replicas"]);
    let available = int(&status["availableReplicas"]);
    if updated < wanted {
        return Rollout::Waiting(format!("{updated} of {wanted} replicas updated"));
    }
    if replicas > updated {
        return Rollout::Waiting(format!("{} old replicas terminating", replicas - updated));
    }
    if available < updated {
        if !needs_ready(deployment) {
            return Rollout::Done(format!(
                "{updated} of {wanted} updated, {available} available (no model yet: the runtime sets {MODEL_ENV} after the first training run)"
            ));
        }
        return Rollout::Waiting(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    Rollout::Done(format!("{available} of {wanted} available"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(component: &str, generation: i64, status: Value, env: Value) -> Value {
        json!({
            "metadata": {"generation": generation, "labels": {"app.kubernetes.io/component": component}},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "env": env}]}}},
            "status": status,
        })
    }

    #[test]
    fn a_deployment_waits_for_its_controller_then_its_replicas() {
        let d = deployment("runtime", 2, json!({"observedGeneration": 1}), json!([]));
        assert!(matches!(rollout(&d), Rollout::Waiting(w) if w.contains("generation 2")));
        let d = deployment(
            "runtime",
            2,
            json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 0}),
            json!([]),
        );
        assert_eq!(
            rollout(&d),
            Rollout::Waiting("0 of 1 replicas updated".into())
        );
        let d = deployment(
            "runtime",
            2,
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1}),
            json!([]),
        );
        assert_eq!(
            rollout(&d),
            Rollout::Waiting("1 old replicas terminating".into())
        );
        let d = deployment(
            "runtime",
            2,
            json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0}),
            json!([]),
        );
        assert_eq!(
            rollout(&d),
            Rollout::Waiting("0 of 1 updated replicas available".into())
        );
        let d = deployment(
            "runtime",
            2,
            json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}),
            json!([]),
        );
        assert_eq!(rollout(&d), Rollout::Done("1 of 1 available".into()));
    }

    #[test]
    fn a_service_without_a_model_does_not_wait_for_readiness() {
        let status = json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0});
        let d = deployment(
            "service",
            1,
            status.clone(),
            json!([{"name": "SFLOW_APP", "value": "a"}]),
        );
        assert!(matches!(rollout(&d), Rollout::Done(t) if t.contains("no model yet")));
        let d = deployment(
            "service",
            1,
            status,
            json!([{"name": MODEL_ENV, "value": "/artifacts/m"}]),
        );
        assert!(matches!(rollout(&d), Rollout::Waiting(_)));
    }

    #[test]
    fn a_stuck_rollout_fails() {
        let d = deployment(
            "runtime",
            1,
            json!({"observedGeneration": 1, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "too slow"}]}),
            json!([]),
        );
        assert_eq!(
            rollout(&d),
            Rollout::Failed("progress deadline exceeded: too slow".into())
        );
    }
}
