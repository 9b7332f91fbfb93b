//! `sflowc build FILE [-o DIR|-] [--templates DIR]`: the plan and the Kubernetes manifests;
//! `sflowc schema`: the plan's JSON Schema.

use crate::commands::check::load;
use crate::loader::io_reason;
use crate::render::{self, Style};
use crate::{CliError, Status};
use sflow_compiler::lower::lower;
use sflow_emit::output::write_dir;
use sflow_emit::templates::UserTemplate;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `sflowc build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The program.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Where to write `plan.json`, `kustomization.yaml` and one YAML file per object; `-`
    /// streams the manifests to stdout instead. An existing directory is updated: files of
    /// objects the program no longer declares are removed, files sflowc did not write are kept.
    #[arg(short = 'o', long = "out", value_name = "DIR", default_value = "build")]
    pub out: PathBuf,
    /// A directory of your own `*.yaml.hbs` templates, each rendered with the plan as context
    /// (see docs/kubernetes-manifests.md).
    #[arg(long, value_name = "DIR")]
    pub templates: Option<PathBuf>,
}

/// Arguments of `sflowc schema`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {}

/// Runs `sflowc schema`: prints the plan's JSON Schema.
pub fn schema(_: &SchemaArgs) -> Result<Status, CliError> {
    std::io::stdout()
        .lock()
        .write_all(sflow_emit::plan_schema().as_bytes())?;
    Ok(Status::Success)
}

/// The `*.yaml.hbs` files of `dir`, sorted by name.
fn read_templates(dir: &Path) -> Result<Vec<UserTemplate>, CliError> {
    let unreadable = |path: &Path, e: &std::io::Error| CliError::Read {
        path: path.display().to_string(),
        reason: io_reason(e),
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| unreadable(dir, &e))? {
        let path = entry.map_err(|e| unreadable(dir, &e))?.path();
        if path.is_file() && path.to_string_lossy().ends_with(".yaml.hbs") {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|e| unreadable(&path, &e))?;
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            Ok(UserTemplate { name, text })
        })
        .collect()
}

/// Checks, lowers and emits the program at `file` in memory, as `sflowc build` does (also used
/// by `apply` and `delete`). Diagnostics and warnings go to stderr; `Ok(None)` means the program
/// has errors (already reported): the status is 1.
pub fn build_in_memory(
    file: &Path,
    templates: Option<&Path>,
) -> Result<Option<(String, sflow_emit::Build)>, CliError> {
    let (name, analysis) = load(file)?;
    let mut stderr = std::io::stderr().lock();
    if !analysis.diagnostics.is_empty() {
        stderr.write_all(
            render::human(
                &analysis.diagnostics,
                &analysis.sources,
                Style::for_stderr(),
            )
            .as_bytes(),
        )?;
        if analysis.has_errors() {
            writeln!(stderr, "{}", render::summary(&name, &analysis.diagnostics))?;
            return Ok(None);
        }
    }
    let plan = match lower(&analysis) {
        Ok(plan) => plan,
        Err(e) => {
            writeln!(stderr, "error: {e}")?;
            return Ok(None);
        }
    };
    let templates = match templates {
        Some(dir) => read_templates(dir)?,
        None => Vec::new(),
    };
    let build = match sflow_emit::build(&plan, &sflow_emit::Options { templates }) {
        Ok(build) => build,
        Err(e) => {
            writeln!(stderr, "error: {name}: {e}")?;
            return Ok(None);
        }
    };
    for warning in &build.warnings {
        writeln!(stderr, "warning: {warning}")?;
    }
    Ok(Some((name, build)))
}

/// Runs `sflowc build`. A program with errors is not built: its diagnostics are printed as
/// `check` prints them and the status is 1. Warnings are printed and the build goes on.
pub fn run(args: &BuildArgs) -> Result<Status, CliError> {
    let Some((name, build)) = build_in_memory(&args.file, args.templates.as_deref())? else {
        return Ok(Status::Failure);
    };
    if args.out.as_os_str() == "-" {
        std::io::stdout()
            .lock()
            .write_all(build.stream().as_bytes())?;
        return Ok(Status::Success);
    }
    let report = write_dir(&args.out, &build)?;
    writeln!(
        std::io::stderr().lock(),
        "built {name}: {} objects in {} ({} written, {} unchanged, {} removed)",
        build.manifests.len(),
        args.out.display(),
        report.written.len(),
        report.unchanged.len(),
        report.removed.len()
    )?;
    Ok(Status::Success)
}
