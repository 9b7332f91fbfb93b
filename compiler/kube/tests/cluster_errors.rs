//! The errors a user meets before any cluster answers: an unreadable or unusable kubeconfig,
//! a context it does not have, an API server that is not there. No stand-in needed.

mod common;

use common::{build, north_star, write_kubeconfig, TestResult};
use sflow_kube::apply::ApplyOptions;
use sflow_kube::{apply, connect, ClusterOptions, KubeError};
use std::time::Duration;

#[tokio::test]
async fn a_missing_kubeconfig_is_a_kubeconfig_error_naming_the_file() -> TestResult {
    let options = ClusterOptions {
        kubeconfig: Some("/nonexistent/sflow/kubeconfig".into()),
        context: None,
    };
    match connect(&options).await {
        Err(e @ KubeError::Kubeconfig { .. }) => {
            let text = e.to_string();
            assert!(text.contains("/nonexistent/sflow/kubeconfig"), "{text}");
            let code = miette::Diagnostic::code(&e).map(|c| c.to_string());
            assert_eq!(code.as_deref(), Some("sflowc::kube::kubeconfig"));
        }
        other => return Err(format!("expected a kubeconfig error, got {other:?}").into()),
    }
    Ok(())
}

#[tokio::test]
async fn an_unknown_context_is_a_kubeconfig_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let kubeconfig = write_kubeconfig(dir.path(), "http://127.0.0.1:9")?;
    let options = ClusterOptions {
        kubeconfig: Some(kubeconfig),
        context: Some("production".into()),
    };
    match connect(&options).await {
        Err(KubeError::Kubeconfig { reason, .. }) => {
            assert!(reason.contains("production"), "{reason}")
        }
        other => return Err(format!("expected a kubeconfig error, got {other:?}").into()),
    }
    Ok(())
}

#[tokio::test]
async fn an_api_server_that_is_not_there_is_unreachable_and_fails_fast() -> TestResult {
    // A port on loopback that nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = tempfile::tempdir()?;
    let kubeconfig = write_kubeconfig(dir.path(), &format!("http://127.0.0.1:{port}"))?;
    let cluster = connect(&ClusterOptions {
        kubeconfig: Some(kubeconfig),
        context: None,
    })
    .await?;
    let manifests = build("examples/mnist/mnist.sflow", &north_star()?)?.manifests;
    let started = std::time::Instant::now();
    let mut quiet = |_: &str| {};
    match apply(&cluster, &manifests, &ApplyOptions::default(), &mut quiet).await {
        Err(KubeError::Unreachable { server, reason, .. }) => {
            assert!(server.contains(&port.to_string()), "{server}");
            assert!(reason.to_lowercase().contains("refused"), "{reason}");
        }
        other => return Err(format!("expected Unreachable, got {other:?}").into()),
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

#[test]
fn every_kind_an_example_emits_is_one_prune_and_delete_look_in() -> TestResult {
    use sflow_kube::objects::{desired, APP_KINDS};
    let mut seen = 0;
    for dir in std::fs::read_dir(common::root().join("examples"))? {
        let dir = dir?.path();
        let Some(name) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let Some(file) = ["main.sflow".to_string(), format!("{name}.sflow")]
            .into_iter()
            .find(|f| dir.join(f).is_file())
        else {
            continue;
        };
        let relative = format!("examples/{name}/{file}");
        let text = std::fs::read_to_string(dir.join(&file))?;
        // Each example as it is, and with each standard template switched on in its `app`.
        let app = text.find("app ").ok_or("no app")?;
        let brace = app + text[app..].find('{').ok_or("no app body")? + 1;
        let mut variants = vec![text.clone()];
        for field in ["autoscaler = \"keda\"", "monitoring = \"prometheus\""] {
            variants.push(format!("{}\n  {field}{}", &text[..brace], &text[brace..]));
        }
        for variant in variants {
            let manifests = build(&relative, &variant)?.manifests;
            let (_, objects) = desired(&manifests)?;
            for o in objects {
                seen += 1;
                let listed = APP_KINDS
                    .iter()
                    .any(|(g, v, k)| *g == o.gvk.group && *v == o.gvk.version && *k == o.gvk.kind);
                let namespace = o.gvk.group.is_empty() && o.gvk.kind == "Namespace";
                assert!(
                    listed || namespace,
                    "{relative}: {} is not in APP_KINDS",
                    o.display()
                );
            }
        }
    }
    assert!(seen > 100, "only {seen} objects");
    Ok(())
}
