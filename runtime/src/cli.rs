//! The `sflow` command line.
//!
//! ```text
//! sflow run FILE.sflow|plan.json [--workflow NAME] [--param k=v]… [--listen ADDR] [--parallelism N]
//! sflow status | runs [--limit N] | runs show ID | models | decisions [--limit N]   [--format text|json]
//! sflow step QUALIFIED_NAME [--arg k=v]… [--args JSON]   (the process of a std step; started by the runtime)
//! sflow data FUNCTION [--args JSON] --out PATH  (materializes a std data source as a dataset directory)
//! sflow serve [--model PATH] [--port PORT] [--listen ADDR] [--replicas N]   (feature `ml`)
//! sflow runtime --plan PATH   (in a cluster, environment SFLOW_*; feature `kubernetes`)
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
    /// Materializes a std data source (`std.data.mnist`) as a dataset directory (the init
    /// container of a data-source input in a cluster).
    Data(DataArgs),
    /// Serves one TorchScript model (Open Inference Protocol v2 and /metrics) without a
    /// runtime; hot-swaps it when the model file changes. Needs the ML feature.
    Serve(ServeArgs),
    /// Runs the app in a Kubernetes cluster (the runtime Deployment's command): workflows as
    /// Argo Workflows, services as Deployments, acting only while holding the leader Lease.
    /// Needs the Kubernetes feature.
    Runtime(crate::kube::RuntimeArgs),
}

/// `sflow serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The TorchScript model to serve; watched, and hot-swapped when the file changes.
    /// Without it the server is live but not ready.
    #[arg(long, env = "SFLOW_MODEL")]
    pub model: Option<PathBuf>,
    /// The port to listen on (all interfaces), unless `--listen` is given.
    #[arg(long, env = "SFLOW_PORT", default_value_t = 8080)]
    pub port: u16,
    /// The address to listen on (overrides `--port`), e.g. `127.0.0.1:9000`.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Worker threads (the replicas of the local backend).
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// The model's name in the API (`/v2/models/NAME`).
    #[arg(long, env = "SFLOW_SERVICE", default_value = "model")]
    pub name: String,
    /// How often the model file is checked for a new version (`500ms`, `2s`).
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    pub watch_interval: std::time::Duration,
    /// The runtime to report the request log and latency to (a cluster's services get
    /// `SFLOW_RUNTIME_URL`; docs/kubernetes.md §8). Without it, nothing is reported.
    #[arg(long, env = "SFLOW_RUNTIME_URL")]
    pub runtime_url: Option<String>,
    /// The file holding the runtime's ingest token (`/artifacts/sflow/ingest-token`).
    #[arg(long, env = "SFLOW_RUNTIME_TOKEN_FILE")]
    pub runtime_token_file: Option<PathBuf>,
    /// This replica's name in its reports (a pod's name).
    #[arg(long, env = "HOSTNAME")]
    pub replica_id: Option<String>,
}

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 500ms or 2s"))?;
    match unit {
        "ms" => Ok(std::time::Duration::from_millis(n)),
        "s" => Ok(std::time::Duration::from_secs(n)),
        _ => Err(format!("`{s}` is not a duration like 500ms or 2s")),
    }
    .and_then(|d| {
        if d.is_zero() {
            Err("the interval must be more than 0".to_string())
        } else {
            Ok(d)
        }
    })
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
    /// Serve SERVICE on ADDR (`--serve predictor=127.0.0.1:9000`) instead of a free loopback
    /// port; repeatable. Needs the ML feature (local serving).
    #[arg(long = "serve", value_name = "SERVICE=ADDR")]
    pub serve: Vec<String>,
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
    /// The arguments as the plan's expression trees (a JSON object; `param` expressions are
    /// read from `SFLOW_PARAM_<NAME>`), as the Kubernetes manifests pass them.
    #[arg(long = "args", value_name = "JSON")]
    pub args_json: Option<String>,
    /// An argument, `NAME=VALUE`; repeatable.
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    pub args: Vec<String>,
}

/// `sflow data`
#[derive(Debug, Args)]
pub struct DataArgs {
    /// The data source, `std.data.mnist` (or `mnist`).
    pub function: String,
    /// Its arguments as the plan's expression trees (a JSON object; `param` expressions are
    /// read from `SFLOW_PARAM_<NAME>`).
    #[arg(long = "args", value_name = "JSON")]
    pub args_json: Option<String>,
    /// The dataset directory to write.
    #[arg(long)]
    pub out: PathBuf,
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
            std_steps::run(&a.name, &args, a.args_json.as_deref())
        }
        Command::Data(a) => {
            crate::executor::data::command(&a.function, a.args_json.as_deref(), &a.out)
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
        Command::Serve(a) => serve(a),
        Command::Runtime(a) => crate::kube::main(a, cli.state_dir),
        Command::Status(f) => {
            let dir = cli
                .state_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(".sflow"));
            read(cli.state_dir, f.format, |s| {
                let mut v = report::status(s)?;
                report::add_serving(&mut v, state::read_services(&dir));
                Ok(v)
            })
        }
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
    let mut serve_addrs = BTreeMap::new();
    for kv in &a.serve {
        let parsed = split_kv(kv).and_then(|(k, v)| Some((k, v.parse::<SocketAddr>().ok()?)));
        match parsed {
            Some((svc, _)) if program.plan.service(&svc).is_none() => {
                eprintln!(
                    "error: `--serve {kv}`: the program has no service `{svc}` (its services: {})",
                    program
                        .plan
                        .services
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return 2;
            }
            Some((svc, addr)) => {
                serve_addrs.insert(svc, addr);
            }
            None => {
                eprintln!("error: `--serve {kv}`: write SERVICE=ADDR (`predictor=127.0.0.1:9000`)");
                return 2;
            }
        }
    }
    if !serve_addrs.is_empty() && !cfg!(feature = "ml") {
        eprintln!("error: `--serve`: not available in this build: local serving needs the ML feature (build with `--features ml`, docs/ml.md)");
        return 2;
    }
    let state_dir = state_dir.unwrap_or_else(|| program.default_state_dir());
    let mut cfg = EngineConfig::new(state_dir.clone());
    cfg.serve_addrs = serve_addrs;
    cfg.progress = crate::progress::for_terminal();
    if let Some(n) = a.parallelism {
        cfg.parallelism = n.max(1);
    }
    // The control API's socket is bound before the engine starts, so that every step (even
    // one of a run resumed at start) gets MLFLOW_TRACKING_URI pointing at it.
    let api = if a.no_api {
        None
    } else {
        match bind_api(&state_dir, a.listen).await {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("error: control API: {e}");
                return 2;
            }
        }
    };
    if let Some(b) = &api {
        cfg.step_env
            .extend(crate::mlflow::server::step_env(&b.url, &b.token));
    }
    let engine = match Engine::start(program, cfg).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if let Some(b) = api {
        if let Err(e) = start_api(&engine, &state_dir, b).await {
            eprintln!("error: control API: {e}");
            engine.shutdown().await;
            return 2;
        }
    }
    let mirror = match crate::mlflow::mirror::Mirror::start_for(&engine) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: MLflow mirror: {e}");
            engine.shutdown().await;
            return 2;
        }
    };
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
    if let (Some(m), true) = (&mirror, a.workflow.is_some() && code != 130) {
        // Give the mirror a moment to send the run; whatever it could not send stays in the
        // store and is sent by the next `sflow run` on this state directory.
        if !m.flush(MIRROR_FLUSH).await {
            eprintln!("the MLflow mirror has not caught up (is the server up?): the next `sflow run` on this state directory sends the rest");
        }
    }
    engine.shutdown().await;
    code
}

/// How long `sflow run --workflow` waits for the MLflow mirror before it exits.
const MIRROR_FLUSH: std::time::Duration = std::time::Duration::from_secs(15);

/// `sflow serve`: the standalone model server (feature `ml`).
fn serve(a: ServeArgs) -> i32 {
    #[cfg(feature = "ml")]
    {
        let opts = crate::ml::standalone::Options {
            model: a.model,
            listen: a
                .listen
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], a.port))),
            replicas: a.replicas,
            name: a.name.clone(),
            watch_interval: a.watch_interval,
            report: a.runtime_url.filter(|u| !u.is_empty()).map(|url| {
                crate::ml::report::ReportTo {
                    url,
                    token: std::env::var("SFLOW_RUNTIME_TOKEN")
                        .ok()
                        .filter(|t| !t.is_empty()),
                    token_file: a.runtime_token_file,
                    service: a.name.clone(),
                    replica: a
                        .replica_id
                        .filter(|r| !r.is_empty())
                        .unwrap_or_else(|| format!("{}-{}", a.name, std::process::id())),
                }
            }),
        };
        match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(crate::ml::standalone::run(opts, interrupted())),
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                2
            }
        }
    }
    #[cfg(not(feature = "ml"))]
    {
        let _ = a;
        eprintln!("error: `sflow serve` is not available in this build: it needs the ML feature (build with `--features ml`, docs/ml.md)");
        2
    }
}

/// The control API's socket, bound, with its URL and token.
struct BoundApi {
    listener: tokio::net::TcpListener,
    url: String,
    token: String,
}

async fn bind_api(state_dir: &Path, listen: SocketAddr) -> Result<BoundApi, Error> {
    if !listen.ip().is_loopback() {
        return Err(Error::Msg(format!(
            "{listen} is not a loopback address: the control API only listens on loopback"
        )));
    }
    std::fs::create_dir_all(state_dir)
        .map_err(|e| Error::io(format!("cannot create {}", state_dir.display()), e))?;
    let token = state::token(state_dir)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::io(format!("cannot listen on {listen}"), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io(format!("cannot listen on {listen}"), e))?;
    Ok(BoundApi {
        listener,
        url: format!("http://{addr}"),
        token,
    })
}

async fn start_api(engine: &Engine, state_dir: &Path, bound: BoundApi) -> Result<(), Error> {
    let BoundApi {
        listener,
        url,
        token,
    } = bound;
    let e = engine.clone();
    tokio::spawn(async move {
        if let Err(err) = api::serve_on(e, token, listener).await {
            tracing::error!("control API: {err}");
        }
    });
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
                        "trial",
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
                    // A column some rows have (a run's `trial`) is shown when any has it.
                    preferred
                        .iter()
                        .copied()
                        .filter(|k| {
                            o.contains_key(*k)
                                || rows.iter().any(|r| r.get(*k).is_some_and(|x| !x.is_null()))
                        })
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
            if let Some(t) = v.get("tuning").filter(|t| t.is_object()) {
                out.push_str(&tuning_text(t));
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

/// The tuning a run is a trial of: its summary and every trial, the best marked.
fn tuning_text(t: &Json) -> String {
    let mut out = format!(
        "\ntuning (this run is trial #{} of {}): {}.tune {} {} with {}, {}\n",
        s(t, "thisTrial"),
        s(t, "budget"),
        s(t, "agent"),
        s(t, "direction"),
        s(t, "objective"),
        s(t, "strategy"),
        s(t, "status"),
    );
    if let Some(r) = t.get("result").and_then(Json::as_str) {
        out.push_str(&format!("  result: {r}\n"));
    }
    let mut table = vec![[
        "",
        "trial",
        "run",
        "params",
        "objective",
        "duration",
        "status",
        "proposed by",
    ]
    .iter()
    .map(|c| c.to_string())
    .collect::<Vec<_>>()];
    for r in t["trials"].as_array().into_iter().flatten() {
        let mut mark = Vec::new();
        if r.get("best").and_then(Json::as_bool) == Some(true) {
            mark.push("best");
        }
        if r.get("trial") == t.get("thisTrial") {
            mark.push("this");
        }
        table.push(vec![
            mark.join(","),
            format!("#{}", s(r, "trial")),
            s(r, "run"),
            crate::tune::describe_params(&r["params"]),
            r.get("objective")
                .and_then(Json::as_f64)
                .map_or_else(|| "-".into(), crate::tune::format_number),
            r.get("durationMs")
                .and_then(Json::as_i64)
                .map_or_else(|| "-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0)),
            match r.get("error").and_then(Json::as_str) {
                Some(e) => cell(Some(&Json::from(format!("{}: {e}", s(r, "status"))))),
                None => s(r, "status"),
            },
            s(r, "proposedBy"),
        ]);
    }
    for line in render_table(&table).lines() {
        out.push_str(&format!("  {line}\n"));
    }
    out
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
        if let Some(sv) = svc.get("serving").filter(|v| !v.is_null()) {
            out.push_str(&format!(
                "  serving on {} (model {} v{}, {} workers, pid {})\n",
                s(sv, "url"),
                s(&sv["model"], "name"),
                s(&sv["model"], "version"),
                s(sv, "workers"),
                s(sv, "pid")
            ));
        }
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
