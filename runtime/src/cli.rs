//! The `sflow` command line.
//!
//! ```text
//! sflow run FILE.sflow|plan.json [--workflow NAME] [--param k=v]… [--listen ADDR] [--parallelism N]
//! sflow status | runs [--limit N] | runs show ID | models | decisions [--limit N]   [--format text|json]
//! sflow step QUALIFIED_NAME [--arg k=v]…      (the process of a std step; started by the runtime)
//! ```
//!
//! Every command takes `--state-dir DIR` (or `SFLOW_STATE_DIR`); `run` defaults to `.sflow/`
//! beside the program, the reading commands to `./.sflow`.
//!
//! Exit status: 0 success; 1 the workflow failed; 2 bad usage, a program with errors, or no
//! store; 130 interrupted.

use crate::engine::{Engine, EngineConfig};
use crate::error::Error;
use crate::store::Store;
use crate::{api, program, report, state, std_steps};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Runs sflow programs: workflows, agents, triggers and policies, recorded in an embedded store.
#[derive(Debug, Parser)]
#[command(name = "sflow", version, about)]
pub struct Cli {
    /// The state directory (store, runs, token). Default: `.sflow/` beside the program for
    /// `run`, `./.sflow` for the other commands.
    #[arg(long, global = true, env = "SFLOW_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of the reading commands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    #[default]
    Text,
    /// For scripts.
    Json,
}

/// A command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a program: with `--workflow`, one run (and what it sets off), then exits;
    /// without, the app (triggers, policies, agents, control API) until interrupted.
    Run(RunArgs),
    /// Summarises the store: apps, runs, services, signals.
    Status(FormatArg),
    /// Lists runs, or shows one (`sflow runs show ID`).
    Runs(RunsArgs),
    /// Lists the model registry.
    Models(FormatArg),
    /// Shows the decisions audit log (which trigger or policy fired, on which values, what it did).
    Decisions(DecisionsArgs),
    /// Runs a std step (the runtime starts this for `uses = …` steps).
    Step(StepArgs),
}

/// `sflow run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The program (`.sflow`) or a built plan (`plan.json`).
    pub file: PathBuf,
    /// Run this workflow once, let what it sets off finish, and exit (non-zero if it failed).
    #[arg(long, short = 'w')]
    pub workflow: Option<String>,
    /// Set a param of the workflow (`--param epochs=5`); repeatable.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Address of the control API (loopback). Port 0 picks a free port, recorded in
    /// `STATE/api.json`.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Do not serve the control API.
    #[arg(long)]
    pub no_api: bool,
    /// Most step processes at once (default: the number of cores).
    #[arg(long, short = 'j')]
    pub parallelism: Option<usize>,
}

/// `--format`
#[derive(Debug, Args)]
pub struct FormatArg {
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `sflow runs`
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// `show ID`
    #[command(subcommand)]
    pub show: Option<RunsCommand>,
    /// How many runs.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    /// Output format.
    #[arg(long, value_enum, default_value_t, global = true)]
    pub format: Format,
}

/// `sflow runs show`
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Shows one run: params, every attempt, metrics, artifacts.
    Show {
        /// The run.
        id: i64,
    },
}

/// `sflow decisions`
#[derive(Debug, Args)]
pub struct DecisionsArgs {
    /// How many entries.
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `sflow step`
#[derive(Debug, Args)]
pub struct StepArgs {
    /// The std step, `std.torch.train_classifier`.
    pub name: String,
    /// An argument, `NAME=VALUE`; repeatable.
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    pub args: Vec<String>,
}

/// Runs the command line; returns the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Step(a) => {
            let args: Vec<(String, String)> = a
                .args
                .iter()
                .map(|kv| split_kv(kv).unwrap_or_else(|| (kv.clone(), String::new())))
                .collect();
            std_steps::run(&a.name, &args)
        }
        Command::Run(a) => {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return 2;
                }
            };
            rt.block_on(run(a, cli.state_dir))
        }
        Command::Status(f) => read(cli.state_dir, f.format, report::status),
        Command::Runs(r) => match r.show {
            Some(RunsCommand::Show { id }) => read(cli.state_dir, r.format, |s| report::run(s, id)),
            None => read(cli.state_dir, r.format, |s| report::runs(s, r.limit)),
        },
        Command::Models(f) => read(cli.state_dir, f.format, report::models),
        Command::Decisions(d) => read(cli.state_dir, d.format, |s| report::decisions(s, d.limit)),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

fn split_kv(kv: &str) -> Option<(String, String)> {
    kv.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
}

async fn run(a: RunArgs, state_dir: Option<PathBuf>) -> i32 {
    let program = match program::load(&a.file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut params = BTreeMap::new();
    for kv in &a.params {
        match split_kv(kv) {
            Some((k, v)) => {
                params.insert(k, v);
            }
            None => {
                eprintln!("error: `--param {kv}`: write NAME=VALUE");
                return 2;
            }
        }
    }
    if a.workflow.is_none() && !params.is_empty() {
        eprintln!("error: `--param` sets params of the workflow given with `--workflow`");
        return 2;
    }
    let state_dir = state_dir.unwrap_or_else(|| program.default_state_dir());
    let mut cfg = EngineConfig::new(state_dir.clone());
    cfg.progress = crate::progress::for_terminal();
    if let Some(n) = a.parallelism {
        cfg.parallelism = n.max(1);
    }
    let engine = match Engine::start(program, cfg).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if !a.no_api {
        if let Err(e) = start_api(&engine, &state_dir, a.listen).await {
            eprintln!("error: control API: {e}");
            engine.shutdown().await;
            return 2;
        }
    }
    let code = match &a.workflow {
        Some(w) => {
            let id = match engine.run_workflow(w, &params, "cli") {
                Ok(id) => id,
                Err(e) => {
                    eprintln!("error: {e}");
                    engine.shutdown().await;
                    return 2;
                }
            };
            tokio::select! {
                r = async {
                    let row = engine.wait_run(id).await;
                    engine.wait_idle().await;
                    row
                } => match r {
                    Ok(row) if row.status == "succeeded" => {
                        eprintln!("run {id} of `{w}` succeeded");
                        0
                    }
                    Ok(row) => {
                        eprintln!("run {id} of `{w}` {}: {}", row.status, row.error.unwrap_or_default());
                        1
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        2
                    }
                },
                () = interrupted() => {
                    eprintln!("interrupted: the run is left to be resumed by the next `sflow run`");
                    130
                }
            }
        }
        None => {
            eprintln!(
                "{} is running; Ctrl-C stops it (interrupted runs resume on the next start)",
                engine.plan().app.name
            );
            interrupted().await;
            0
        }
    };
    engine.shutdown().await;
    code
}

async fn start_api(engine: &Engine, state_dir: &Path, listen: SocketAddr) -> Result<(), Error> {
    if !listen.ip().is_loopback() {
        return Err(Error::Msg(format!(
            "{listen} is not a loopback address: the control API only listens on loopback"
        )));
    }
    let token = state::token(state_dir)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let e = engine.clone();
    tokio::spawn(async move {
        if let Err(err) = api::serve(e, token, listen, tx).await {
            tracing::error!("control API: {err}");
        }
    });
    let addr = rx
        .await
        .map_err(|_| Error::Msg(format!("cannot listen on {listen}")))?;
    let url = format!("http://{addr}");
    state::write_api_info(state_dir, &url)?;
    tracing::info!(url, token = %state_dir.join("token").display(), "control API listening");
    Ok(())
}

async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn read(
    state_dir: Option<PathBuf>,
    format: Format,
    f: impl FnOnce(&Store) -> crate::error::Result<Json>,
) -> i32 {
    let dir = state_dir.unwrap_or_else(|| PathBuf::from(".sflow"));
    let store = match Store::open_existing(&state::store_path(&dir)) {
        Ok(Some(s)) => s,
        Ok(None) => {
            eprintln!(
                "error: no store at {}: pass --state-dir (or SFLOW_STATE_DIR) naming the directory `sflow run` used (by default `.sflow/` beside the program)",
                state::store_path(&dir).display()
            );
            return 2;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    match f(&store) {
        Ok(v) => {
            match format {
                Format::Json => {
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())
                }
                Format::Text => print!("{}", text(&v)),
            }
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn s(v: &Json, k: &str) -> String {
    match v.get(k) {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

/// Renders a report for people: arrays as aligned tables, objects as `key: value` lines.
fn text(v: &Json) -> String {
    match v {
        Json::Array(rows) if rows.is_empty() => "(none)\n".into(),
        Json::Array(rows) => {
            let keys: Vec<&str> = match rows.first() {
                Some(Json::Object(o)) => {
                    let preferred = [
                        "id",
                        "time",
                        "workflow",
                        "name",
                        "version",
                        "status",
                        "source",
                        "origin",
                        "action",
                        "created",
                        "durationMs",
                        "aliases",
                        "metrics",
                        "result",
                        "error",
                    ];
                    preferred
                        .iter()
                        .copied()
                        .filter(|k| o.contains_key(*k))
                        .collect()
                }
                _ => Vec::new(),
            };
            let mut table: Vec<Vec<String>> = vec![keys.iter().map(|k| k.to_string()).collect()];
            for r in rows {
                table.push(keys.iter().map(|k| cell(r.get(*k))).collect());
            }
            render_table(&table)
        }
        Json::Object(o) if o.contains_key("steps") => {
            let mut out = format!(
                "run {} of {} ({}): {}\n  origin: {}\n  created: {}  finished: {}\n",
                s(v, "id"),
                s(v, "workflow"),
                s(v, "app"),
                s(v, "status"),
                s(v, "origin"),
                s(v, "created"),
                s(v, "finished")
            );
            if let Some(e) = v.get("error").and_then(Json::as_str) {
                out.push_str(&format!("  error: {e}\n"));
            }
            for (title, key, cols) in [
                ("params", "params", vec!["name", "type", "value"]),
                (
                    "steps",
                    "steps",
                    vec![
                        "step",
                        "attempt",
                        "status",
                        "durationMs",
                        "exitCode",
                        "error",
                    ],
                ),
                (
                    "metrics",
                    "metrics",
                    vec!["step", "name", "type", "value", "seq"],
                ),
                (
                    "artifacts",
                    "artifacts",
                    vec!["step", "name", "type", "size", "sha256", "path"],
                ),
            ] {
                let rows = v
                    .get(key)
                    .and_then(Json::as_array)
                    .cloned()
                    .unwrap_or_default();
                out.push_str(&format!("\n{title}:\n"));
                if rows.is_empty() {
                    out.push_str("  (none)\n");
                    continue;
                }
                let mut table = vec![cols.iter().map(|c| c.to_string()).collect::<Vec<_>>()];
                for r in &rows {
                    table.push(cols.iter().map(|c| cell(r.get(*c))).collect());
                }
                for line in render_table(&table).lines() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
            out
        }
        Json::Object(o) if o.contains_key("schemaVersion") => status_text(v),
        Json::Object(o) => o
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", cell(Some(v))))
            .collect(),
        other => format!("{other}\n"),
    }
}

fn cell(v: Option<&Json>) -> String {
    let t = match v {
        None | Some(Json::Null) => "-".to_string(),
        Some(Json::String(s)) => s.clone(),
        Some(Json::Array(a)) if a.iter().all(Json::is_string) => a
            .iter()
            .filter_map(Json::as_str)
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    };
    let t = t.replace('\n', " ");
    if t.chars().count() > 80 {
        format!("{}…", t.chars().take(79).collect::<String>())
    } else {
        t
    }
}

fn render_table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |x| x.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, x)| format!("{x:<w$}", w = widths.get(i).copied().unwrap_or(0)))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn status_text(v: &Json) -> String {
    let mut out = String::new();
    for a in v["apps"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "app {} ({}), last started {}\n",
            s(a, "name"),
            s(a, "source"),
            s(a, "lastStarted")
        ));
    }
    let runs: Vec<String> = v["runs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    out.push_str(&format!(
        "runs: {}\n",
        if runs.is_empty() {
            "none".into()
        } else {
            runs.join(", ")
        }
    ));
    out.push_str(&format!(
        "pending firings: {}\n",
        cell(v.get("pendingFirings"))
    ));
    for svc in v["services"].as_array().into_iter().flatten() {
        let model = match svc.get("model") {
            Some(m) if !m.is_null() => format!(
                "serves {} v{} {}",
                s(m, "name"),
                s(m, "version"),
                cell(m.get("metrics"))
            ),
            _ => "waits for its first model".into(),
        };
        out.push_str(&format!(
            "service {}: {} replicas (range {}), {model}\n",
            s(svc, "name"),
            s(svc, "replicas"),
            cell(svc.get("range"))
        ));
    }
    let signals = v["signals"].as_object().cloned().unwrap_or_default();
    if !signals.is_empty() {
        out.push_str("signals:\n");
        for (k, val) in signals {
            out.push_str(&format!("  {k} = {}\n", cell(Some(&val))));
        }
    }
    out.push_str(&format!(
        "store schema version: {}\n",
        cell(v.get("schemaVersion"))
    ));
    out
}
