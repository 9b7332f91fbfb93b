//! `sflowc apply` and `sflowc delete` as a user runs them: the real binary against the
//! Kubernetes stand-in (tests marked `standin_`, run by scripts/test-all.sh after
//! scripts/setup-kmock.sh), and the errors a user meets without any cluster (always run).

#[path = "../../kube/tests/common/mod.rs"]
mod common;

use common::{write_kubeconfig, Standin, TestResult};
use std::path::Path;
use std::process::{Command, Output};

fn sflowc(args: &[&str], kubeconfig: &Path) -> TestResult<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_sflowc"))
        .current_dir(common::root())
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env("NO_COLOR", "1")
        .output()?)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
#[ignore = "needs the Kubernetes stand-in: scripts/test-all.sh runs them"]
fn standin_apply_dry_run_prints_the_diff_and_delete_cleans_up() -> TestResult {
    let standin = Standin::start(&[])?;
    let north_star = std::fs::read_to_string(common::root().join("examples/mnist/mnist.sflow"))?;
    let with_shadow = standin.dir.path().join("mnist.sflow");
    std::fs::write(
        &with_shadow,
        format!("{north_star}\nservice shadow {{\n  model    = training.fit.model\n  replicas = 1\n}}\n"),
    )?;
    let with_shadow = with_shadow.to_string_lossy().into_owned();

    let out = sflowc(&["apply", &with_shadow, "--no-wait"], &standin.kubeconfig)?;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("+ Namespace mnist created\n"), "{stdout}");
    assert!(
        stdout.contains("+ Deployment mnist/shadow created\n"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("29 created, 0 configured, 0 unchanged, 0 pruned\n"),
        "{stdout}"
    );

    let out = sflowc(
        &["apply", "examples/mnist/mnist.sflow", "--dry-run"],
        &standin.kubeconfig,
    )?;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("dry run of examples/mnist/mnist.sflow against http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("nothing was changed"), "{stdout}");
    assert!(
        stdout.contains("~ ConfigMap mnist/mnist-plan configured\n    data[\"plan.json\"]: "),
        "{stdout}"
    );
    assert!(
        stdout.contains("- Deployment mnist/shadow pruned\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("would apply examples/mnist/mnist.sflow to namespace mnist: 0 created, "),
        "{stdout}"
    );
    assert!(stdout.ends_with(", 6 pruned\n"), "{stdout}");

    // The dry run changed nothing: the same dry run again reports the same.
    let again = sflowc(
        &["apply", "examples/mnist/mnist.sflow", "--dry-run"],
        &standin.kubeconfig,
    )?;
    assert_eq!(text(&again.stdout), stdout);

    let out = sflowc(
        &["apply", "examples/mnist/mnist.sflow", "--no-wait"],
        &standin.kubeconfig,
    )?;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.ends_with(", 6 pruned\n"), "{stdout}");

    let out = sflowc(
        &["delete", "examples/mnist/mnist.sflow"],
        &standin.kubeconfig,
    )?;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("- Namespace mnist deleted\n"), "{stdout}");
    assert!(
        stdout.ends_with("23 deleted, 0 already absent\n"),
        "{stdout}"
    );
    Ok(())
}

#[test]
fn apply_without_a_cluster_says_so_with_a_code_and_status_1() -> TestResult {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = tempfile::tempdir()?;
    let kubeconfig = write_kubeconfig(dir.path(), &format!("http://127.0.0.1:{port}"))?;
    let out = sflowc(&["apply", "examples/mnist/mnist.sflow"], &kubeconfig)?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("sflowc::kube::unreachable"), "{stderr}");
    assert!(
        stderr.contains("cannot reach the Kubernetes API server"),
        "{stderr}"
    );
    assert!(stderr.contains("kubectl cluster-info"), "{stderr}");
    Ok(())
}

#[test]
fn a_bad_kubeconfig_is_a_usage_error_with_status_2() -> TestResult {
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, "clusters: [this is: not a kubeconfig")?;
    let out = sflowc(&["delete", "examples/mnist/mnist.sflow"], &kubeconfig)?;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("sflowc::kube::kubeconfig"), "{stderr}");
    Ok(())
}

#[test]
fn a_program_with_errors_is_not_applied() -> TestResult {
    let dir = tempfile::tempdir()?;
    let program = dir.path().join("broken.sflow");
    std::fs::write(&program, "app broken { namespace = 42 }\n")?;
    // No cluster at all: the program's errors stop `apply` before it looks for one.
    let out = sflowc(
        &["apply", &program.to_string_lossy()],
        &dir.path().join("no-kubeconfig"),
    )?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("sflowc::kube"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}
