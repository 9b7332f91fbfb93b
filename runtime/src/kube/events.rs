//! Kubernetes Events about what the runtime did to the app's objects (a model served, a
//! service scaled), visible in `kubectl describe` and `kubectl get events`. The Role grants
//! `create` and `patch` on events: an event repeated on the same object for the same reason is
//! aggregated into one Event whose `count` grows (patched), as client-go's recorder does.
//!
//! Events are a courtesy: the store is the record. A failure to write one is logged, never
//! fails the action.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use std::collections::HashMap;
use std::sync::Mutex;

/// The component name on the runtime's Events.
pub const COMPONENT: &str = "sflow-runtime";

/// Writes Events in one namespace.
pub struct Recorder {
    api: ::kube::Api<Event>,
    namespace: String,
    instance: String,
    /// Each Event's count as this process last wrote it (the Role cannot read Events back).
    counts: Mutex<HashMap<String, i32>>,
}

impl Recorder {
    /// A recorder for `namespace`, reporting as `instance` (the pod).
    pub fn new(client: ::kube::Client, namespace: &str, instance: &str) -> Recorder {
        Recorder {
            api: ::kube::Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            instance: instance.to_string(),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// The name of the Event for `reason` on an object: the same object and reason aggregate.
    pub fn event_name(kind: &str, name: &str, reason: &str) -> String {
        let digest =
            crate::executor::digest::sha256_hex(format!("{kind}/{name}/{reason}").as_bytes());
        format!("{name}.{}", digest.get(..16).unwrap_or(&digest))
    }

    /// Records `reason` (`ModelServed`, `Scaled`) with `message` on an object of the app.
    pub async fn record(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
        reason: &str,
        message: &str,
    ) {
        let event_name = Self::event_name(kind, name, reason);
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(event_name.clone()),
                namespace: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some(api_version.to_string()),
                kind: Some(kind.to_string()),
                name: Some(name.to_string()),
                namespace: Some(self.namespace.clone()),
                ..ObjectReference::default()
            },
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some("Normal".to_string()),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now.clone()),
            source: Some(EventSource {
                component: Some(COMPONENT.to_string()),
                host: None,
            }),
            reporting_component: Some(COMPONENT.to_string()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        let result = match self
            .api
            .create(&::kube::api::PostParams::default(), &event)
            .await
        {
            Ok(_) => {
                self.set_count(&event_name, 1);
                Ok(())
            }
            Err(e) if super::lease::is_conflict(&e) => {
                let count = self.next_count(&event_name);
                let patch = serde_json::json!({
                    "count": count,
                    "lastTimestamp": now,
                    "message": message,
                });
                self.api
                    .patch(
                        &event_name,
                        &::kube::api::PatchParams::default(),
                        &::kube::api::Patch::Merge(&patch),
                    )
                    .await
                    .map(|_| ())
            }
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(kind, name, reason, "cannot record a Kubernetes Event: {e}");
        }
    }

    fn set_count(&self, name: &str, n: i32) {
        if let Ok(mut c) = self.counts.lock() {
            c.insert(name.to_string(), n);
        }
    }

    fn next_count(&self, name: &str) -> i32 {
        match self.counts.lock() {
            Ok(mut c) => {
                // Unknown after a restart: at least the one that exists plus this one.
                let n = c.get(name).map_or(2, |n| n + 1);
                c.insert(name.to_string(), n);
                n
            }
            Err(_) => 2,
        }
    }
}
