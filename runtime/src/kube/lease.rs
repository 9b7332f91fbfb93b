//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection` does
//! it, with exactly the verbs the runtime's Role grants: `get` and `update` on the Lease
//! `<app>-runtime`, and `create` (the first time).
//!
//! - Every write is a `PUT` carrying the `resourceVersion` that was read, so of two replicas
//!   racing for the same Lease the API server accepts one and answers the other 409 Conflict.
//! - Expiry is judged on this replica's own clock: a Lease held by another identity is free
//!   only once it has not changed for `leaseDurationSeconds` since *this* replica first saw
//!   its current version. No clocks are compared between machines.
//! - The holder renews every third of the duration and must stop acting when it could not
//!   renew for two thirds of it ([`Elector::renew_deadline`]): it stops before anyone else
//!   may take over.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use std::time::{Duration, Instant};

/// What an election round found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Round {
    /// This replica holds the Lease (acquired or renewed now).
    Leading,
    /// Another identity holds it, or won the race for it.
    Following {
        /// Who holds it, if anyone.
        holder: Option<String>,
    },
}

/// One candidate for the Lease.
pub struct Elector {
    api: ::kube::Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
    /// The version of the Lease last seen, and when this replica first saw it.
    observed: Option<(String, Instant)>,
}

impl Elector {
    /// A candidate `identity` for the Lease `name` in `namespace`.
    pub fn new(
        client: ::kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Elector {
        Elector {
            api: ::kube::Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            duration,
            observed: None,
        }
    }

    /// How often the holder renews (a third of the duration).
    pub fn renew_interval(&self) -> Duration {
        self.duration / 3
    }

    /// How often a follower tries (a fifth of the duration).
    pub fn retry_interval(&self) -> Duration {
        self.duration / 5
    }

    /// How long the holder may go without renewing before it must stop acting.
    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }

    fn seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// Acquires or renews the Lease. `Err` only for API errors other than a lost race.
    pub async fn try_acquire_or_renew(&mut self) -> Result<Round, ::kube::Error> {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let Some(current) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.seconds()),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self
                .api
                .create(&::kube::api::PostParams::default(), &lease)
                .await
            {
                Ok(created) => {
                    self.observe(&created);
                    Ok(Round::Leading)
                }
                Err(e) if is_conflict(&e) => Ok(Round::Following { holder: None }),
                Err(e) => Err(e),
            };
        };
        self.observe(&current);
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_deref() == Some(self.identity.as_str());
        if !mine && holder.is_some() {
            let held_for = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(self.duration, Duration::from_secs);
            let unchanged_for = self
                .observed
                .as_ref()
                .map_or(Duration::ZERO, |o| o.1.elapsed());
            if unchanged_for < held_for {
                return Ok(Round::Following { holder });
            }
        }
        let mut next = current.clone();
        let mut new_spec = spec.clone();
        new_spec.holder_identity = Some(self.identity.clone());
        new_spec.lease_duration_seconds = Some(self.seconds());
        new_spec.renew_time = Some(now.clone());
        if !mine {
            new_spec.acquire_time = Some(now);
            new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        next.spec = Some(new_spec);
        match self
            .api
            .replace(&self.name, &::kube::api::PostParams::default(), &next)
            .await
        {
            Ok(updated) => {
                self.observe(&updated);
                Ok(Round::Leading)
            }
            Err(e) if is_conflict(&e) => Ok(Round::Following { holder }),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (on a clean stop), so that another replica takes over at once.
    pub async fn release(&mut self) -> Result<(), ::kube::Error> {
        let Some(mut current) = self.api.get_opt(&self.name).await? else {
            return Ok(());
        };
        let mut spec = current.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        current.spec = Some(spec);
        match self
            .api
            .replace(&self.name, &::kube::api::PostParams::default(), &current)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn observe(&mut self, lease: &Lease) {
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        if self.observed.as_ref().map(|o| &o.0) != Some(&version) {
            self.observed = Some((version, Instant::now()));
        }
    }
}

/// A 409: the object changed since it was read, or was created by someone else meanwhile.
pub fn is_conflict(e: &::kube::Error) -> bool {
    matches!(e, ::kube::Error::Api(s) if s.code == 409)
}
