//! `sflowc graph FILE [--format dot|mermaid] [--workflow NAME | --wiring]`: print the DAG of
//! each workflow, or the wiring of triggers, agents, policies, workflows and services.

use crate::commands::check::load;
use crate::render::{self, Style};
use crate::{CliError, Status};
use sflow_compiler::graph::build::{build_wiring, WorkflowDag};
use sflow_compiler::graph::{wiring_dot, wiring_mermaid, workflow_dot, workflow_mermaid};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `sflowc graph`.
#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// The program.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The graph language. Several workflows give several graphs, one after another (`dot`
    /// draws each; Mermaid wants one per diagram).
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
    /// Only this workflow (by default every workflow, one graph each).
    #[arg(long, value_name = "NAME", conflicts_with = "wiring")]
    pub workflow: Option<String>,
    /// The wiring of triggers, agents, policies, workflows and services instead of the workflows.
    #[arg(long)]
    pub wiring: bool,
}

/// Graph languages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT (`sflowc graph f.sflow | dot -Tsvg > f.svg`).
    Dot,
    /// Mermaid flowcharts (for Markdown).
    Mermaid,
}

/// Runs `sflowc graph`. A program with errors has no trustworthy graph: its diagnostics are
/// printed and the status is 1. Warnings are printed on stderr, the graph on stdout.
pub fn run(args: &GraphArgs) -> Result<Status, CliError> {
    let (name, analysis) = load(&args.file)?;
    if !analysis.diagnostics.is_empty() {
        let style = Style::for_stderr();
        let mut stderr = std::io::stderr().lock();
        stderr
            .write_all(render::human(&analysis.diagnostics, &analysis.sources, style).as_bytes())?;
        if analysis.has_errors() {
            writeln!(
                stderr,
                "{}",
                render::summary_line(&name, &analysis.diagnostics, style)
            )?;
            return Ok(Status::Failure);
        }
    }
    let text = if args.wiring {
        let program = analysis.program();
        let app = program
            .app
            .as_ref()
            .map_or_else(|| "app".to_owned(), |a| a.ast.name.name.clone());
        let wiring = build_wiring(&program, &analysis.symbols);
        match args.format {
            GraphFormat::Dot => wiring_dot(&app, &wiring),
            GraphFormat::Mermaid => wiring_mermaid(&app, &wiring),
        }
    } else {
        let chosen: Vec<&WorkflowDag> = match &args.workflow {
            Some(wanted) => match analysis.workflows.iter().find(|w| &w.name == wanted) {
                Some(dag) => vec![dag],
                None => {
                    return Err(CliError::UnknownWorkflow {
                        file: name,
                        name: wanted.clone(),
                        available: analysis.workflows.iter().map(|w| w.name.clone()).collect(),
                    })
                }
            },
            None => analysis.workflows.iter().collect(),
        };
        if chosen.is_empty() {
            eprintln!(
                "note: {name} declares no workflows; `--wiring` draws its agents and policies"
            );
        }
        let graphs: Vec<String> = chosen
            .iter()
            .map(|dag| match args.format {
                GraphFormat::Dot => workflow_dot(&dag.name, &dag.graph),
                GraphFormat::Mermaid => workflow_mermaid(&dag.name, &dag.graph),
            })
            .collect();
        graphs.join("\n")
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(Status::Success)
}
