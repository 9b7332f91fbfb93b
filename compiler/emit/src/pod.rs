//! What every pod and container gets: the Pod Security Standards "restricted" profile, a
//! read-only root filesystem with a writable `/tmp`, and requests equal to limits.
//!
//! "restricted" asks for: `runAsNonRoot`, no privilege escalation, every capability dropped,
//! the `RuntimeDefault` seccomp profile, and only the allowed volume types (`configMap`,
//! `emptyDir`, `persistentVolumeClaim`, `projected`, …). On top, every container runs as the
//! fixed unprivileged id 65532 (images whose default user is root still start), with a
//! read-only root filesystem.

use crate::conventions::{self, GPU_RESOURCE, RUN_AS_ID, TMP_MOUNT};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapProjection, DownwardAPIProjection, DownwardAPIVolumeFile,
    EmptyDirVolumeSource, EnvVar, EnvVarSource, HTTPGetAction, KeyToPath, ObjectFieldSelector,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, Probe, ProjectedVolumeSource,
    ResourceRequirements, SeccompProfile, SecurityContext, ServiceAccountTokenProjection, Volume,
    VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sflow_compiler::lower::plan::ResourcesPlan;
use sflow_compiler::values::{format_cpu, format_memory};
use std::collections::BTreeMap;

/// The volume name of `/tmp`.
pub const TMP_VOLUME: &str = "tmp";
/// The volume name of the artifacts claim.
pub const ARTIFACTS_VOLUME: &str = "artifacts";
/// The volume name of the plan ConfigMap.
pub const PLAN_VOLUME: &str = "plan";
/// The volume name of the runtime's service-account token.
pub const TOKEN_VOLUME: &str = "kube-api-access";
/// Where client libraries look for the service-account token.
pub const TOKEN_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The pod-level security context.
pub fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_ID),
        run_as_group: Some(RUN_AS_ID),
        fs_group: Some(RUN_AS_ID),
        fs_group_change_policy: Some("OnRootMismatch".to_string()),
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    }
}

/// The container-level security context.
pub fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_ID),
        run_as_group: Some(RUN_AS_ID),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            add: None,
        }),
        seccomp_profile: Some(runtime_default()),
        ..Default::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_string(),
        localhost_profile: None,
    }
}

/// Requests and limits (equal: the pod is in the Guaranteed QoS class, and what a program
/// declares is what it gets). GPUs are asked for as `nvidia.com/gpu`.
pub fn resources(
    r: &ResourcesPlan,
    default_cpu_millis: u64,
    default_memory_bytes: u64,
) -> ResourceRequirements {
    let mut amounts = BTreeMap::new();
    amounts.insert(
        "cpu".to_string(),
        Quantity(format_cpu(r.cpu_millis.unwrap_or(default_cpu_millis))),
    );
    amounts.insert(
        "memory".to_string(),
        Quantity(format_memory(
            r.memory_bytes.unwrap_or(default_memory_bytes),
        )),
    );
    if let Some(gpu) = r.gpu.filter(|&g| g > 0) {
        amounts.insert(GPU_RESOURCE.to_string(), Quantity(gpu.to_string()));
    }
    ResourceRequirements {
        requests: Some(amounts.clone()),
        limits: Some(amounts),
        ..Default::default()
    }
}

/// The writable `/tmp`.
pub fn tmp_volume() -> Volume {
    Volume {
        name: TMP_VOLUME.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }
}

/// The artifacts claim.
pub fn artifacts_volume(claim: &str, read_only: bool) -> Volume {
    Volume {
        name: ARTIFACTS_VOLUME.to_string(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.to_string(),
            read_only: read_only.then_some(true),
        }),
        ..Default::default()
    }
}

/// The service-account token, mounted explicitly where the API is needed (pods set
/// `automountServiceAccountToken: false`): a bound token, the cluster CA and the namespace,
/// exactly what the kubelet would mount.
pub fn token_volume() -> Volume {
    Volume {
        name: TOKEN_VOLUME.to_string(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o444),
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        path: "token".to_string(),
                        expiration_seconds: Some(conventions::TOKEN_EXPIRATION_SECONDS),
                        audience: None,
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "kube-root-ca.crt".to_string(),
                        items: Some(vec![KeyToPath {
                            key: "ca.crt".to_string(),
                            path: "ca.crt".to_string(),
                            mode: None,
                        }]),
                        optional: None,
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![DownwardAPIVolumeFile {
                            path: "namespace".to_string(),
                            field_ref: Some(ObjectFieldSelector {
                                api_version: Some("v1".to_string()),
                                field_path: "metadata.namespace".to_string(),
                            }),
                            ..Default::default()
                        }]),
                    }),
                    ..Default::default()
                },
            ]),
        }),
        ..Default::default()
    }
}

/// A volume mount.
pub fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.to_string(),
        mount_path: path.to_string(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

/// `sub_path` of `volume` mounted at `path` (only that directory of the volume is visible).
pub fn sub_mount(volume: &str, sub_path: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        sub_path: Some(sub_path.to_string()),
        ..mount(volume, path, read_only)
    }
}

/// The `/tmp` mount.
pub fn tmp_mount() -> VolumeMount {
    mount(TMP_VOLUME, TMP_MOUNT, false)
}

/// A plain environment variable.
pub fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.into()),
        value_from: None,
    }
}

/// An environment variable from a field of the pod.
pub fn env_field(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".to_string()),
                field_path: field_path.to_string(),
            }),
            ..Default::default()
        }),
    }
}

/// An HTTP probe on the named port.
pub fn http_probe(path: &str, port: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String(port.to_string()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}
