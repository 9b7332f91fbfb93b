//! `sflowc apply FILE` and `sflowc delete FILE`: the commands that talk to a cluster (through
//! the `sflow-kube` crate). Both build the program in memory exactly as `sflowc build` does.

use crate::commands::build::build_in_memory;
use crate::render::{self, Style};
use crate::{CliError, Status};
use sflow_kube::apply::{Action, ApplyOptions};
use sflow_kube::{ClusterOptions, KubeError};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// How to reach the cluster (shared by `apply` and `delete`).
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// The kubeconfig to use (default: `KUBECONFIG`, then `~/.kube/config`, then the in-cluster
    /// service account).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

impl ClusterArgs {
    fn options(&self) -> ClusterOptions {
        ClusterOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
    }
}

/// Arguments of `sflowc apply`.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The program.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// A directory of your own `*.yaml.hbs` templates, as for `sflowc build`.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Print what would be created, changed and pruned, and change nothing (computed from GETs
    /// of the live objects).
    #[arg(long)]
    pub dry_run: bool,
    /// Wait for the Deployments the apply changed to roll out (the default).
    #[arg(long, overrides_with = "no_wait")]
    pub wait: bool,
    /// Do not wait for rollouts.
    #[arg(long, overrides_with = "wait")]
    pub no_wait: bool,
    /// How long to wait for rollouts: a number and a unit (`90s`, `5m`).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_timeout)]
    pub timeout: Duration,
}

/// Arguments of `sflowc delete`.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The program whose app to delete.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// A directory of your own `*.yaml.hbs` templates, as for `sflowc build`.
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `90s`, `5m`, `1h` (the language's duration units).
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    sflow_compiler::values::parse_duration(digits, unit).map_err(|e| {
        format!("`{text}` is not a duration ({e}); write a number and a unit: 90s, 5m")
    })
}

/// Runs an async cluster operation to its end on a single-threaded runtime.
fn block_on<T>(future: impl std::future::Future<Output = T>) -> Result<T, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}

/// Prints a cluster error as a miette report; the status is 1 (the command failed), or 2 when
/// the kubeconfig is unusable (a usage error).
fn report_error(error: &KubeError) -> Result<Status, CliError> {
    std::io::stderr()
        .lock()
        .write_all(render::error_report(error, Style::for_stderr()).as_bytes())?;
    Ok(match error {
        KubeError::Kubeconfig { .. } | KubeError::NoConfig { .. } => Status::Usage,
        _ => Status::Failure,
    })
}

/// Runs `sflowc apply`.
pub fn apply(args: &ApplyArgs) -> Result<Status, CliError> {
    let Some((name, build)) = build_in_memory(&args.file, args.templates.as_deref())? else {
        return Ok(Status::Failure);
    };
    let options = ApplyOptions {
        dry_run: args.dry_run,
        wait: (!args.no_wait).then_some(args.timeout),
        ..ApplyOptions::default()
    };
    let result = block_on(async {
        let cluster = sflow_kube::connect(&args.cluster.options()).await?;
        let mut progress = |line: &str| eprintln!("waiting: {line}");
        let report = sflow_kube::apply(&cluster, &build.manifests, &options, &mut progress).await?;
        Ok::<_, KubeError>((cluster.server, report))
    })?;
    let (server, report) = match result {
        Ok(done) => done,
        Err(e) => return report_error(&e),
    };
    let mut out = std::io::stdout().lock();
    if report.dry_run {
        writeln!(
            out,
            "dry run of {name} against {server}: nothing was changed (computed from the live objects)"
        )?;
    }
    for outcome in &report.outcomes {
        match &outcome.action {
            Action::Created => writeln!(out, "+ {} created", outcome.object)?,
            Action::Pruned => writeln!(out, "- {} pruned", outcome.object)?,
            Action::Unchanged => {}
            Action::Configured(changes) => {
                writeln!(out, "~ {} configured", outcome.object)?;
                for change in changes {
                    writeln!(out, "    {change}")?;
                }
            }
        }
    }
    for rollout in &report.rollouts {
        writeln!(out, "rolled out {rollout}")?;
    }
    let verb = if report.dry_run {
        "would apply"
    } else {
        "applied"
    };
    writeln!(
        out,
        "{verb} {name} to namespace {}: {} created, {} configured, {} unchanged, {} pruned",
        report.app.namespace,
        report.count(|a| *a == Action::Created),
        report.count(|a| matches!(a, Action::Configured(_))),
        report.count(|a| *a == Action::Unchanged),
        report.count(|a| *a == Action::Pruned),
    )?;
    Ok(Status::Success)
}

/// Runs `sflowc delete`.
pub fn delete(args: &DeleteArgs) -> Result<Status, CliError> {
    let Some((name, build)) = build_in_memory(&args.file, args.templates.as_deref())? else {
        return Ok(Status::Failure);
    };
    let result = block_on(async {
        let cluster = sflow_kube::connect(&args.cluster.options()).await?;
        sflow_kube::delete(&cluster, &build.manifests).await
    })?;
    let report = match result {
        Ok(report) => report,
        Err(e) => return report_error(&e),
    };
    let mut out = std::io::stdout().lock();
    for object in &report.deleted {
        writeln!(out, "- {object} deleted")?;
    }
    if let Some(why) = &report.namespace_kept {
        writeln!(out, "kept {why}")?;
    }
    writeln!(
        out,
        "deleted {name} from namespace {}: {} deleted, {} already absent",
        report.app.namespace,
        report.deleted.len(),
        report.absent.len()
    )?;
    Ok(Status::Success)
}
