//! `sflow-mnist-demo`: the Scanflow MNIST case study, end to end (run it through
//! `examples/mnist/run-demo`, which builds what it needs first).
//!
//! It plays the world around an sflow app: it starts `sflow run examples/mnist/mnist.sflow`,
//! asks for a training run through the control API, then sends the served model a stream of
//! real MNIST test digits — clean at first, then corrupted (MNIST-C-style) — and watches what
//! the agents do about it through the control API: the Tracker's batches, the Checker's drift
//! judgements, the Improver's retraining, the Planner's replacement; then it ramps the load to
//! show latency and replicas. It writes `report.json` and `report.png` into `--out`, and the
//! Checker's saliency maps of a few picked digits into `--out/saliency/`.
//!
//! Nothing in the loop is driven by the demo: between stream batches it only waits for the
//! runtime to settle, so that "after which batch did it happen" has one answer.

mod report;
mod runtime;
mod saliency;
mod traffic;

use clap::Parser;
use report::{BatchRow, RampRow, Replacement, Report};
use runtime::Runtime;
use serde_json::{json, Value};
use sflow_ml::data::Split;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use traffic::{Client, Stream};

/// Runs the MNIST case study against `sflow run` and reports what the agents did.
#[derive(Debug, Parser)]
#[command(name = "sflow-mnist-demo", version)]
struct Args {
    /// Where to write report.json, report.png, the runtime's log and its state directory.
    #[arg(long)]
    out: PathBuf,
    /// A shorter run (about 3 minutes on 2 cores once built): one training epoch, fewer
    /// batches, a short load ramp.
    #[arg(long)]
    quick: bool,
    /// The `sflow` binary (built with the `ml` feature).
    #[arg(long, default_value = "target/release/sflow")]
    sflow: PathBuf,
    /// The program.
    #[arg(long, default_value = "examples/mnist/mnist.sflow")]
    program: PathBuf,
    /// The MNIST directory (IDX files).
    #[arg(long, default_value = "data/mnist")]
    data: PathBuf,
    /// The corruptions of the drifted stream, `name:severity` (severity 1–5), comma-separated.
    #[arg(long, default_value = "zigzag:3,impulse_noise:4,fog:3,stripe:2")]
    corruptions: String,
    /// Digits per inference request in the stream.
    #[arg(long, default_value_t = 25)]
    per_request: usize,
    /// The stream's order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// A file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// An HTTP exchange with the runtime or the service.
    #[error("{0}")]
    Http(String),
    /// The runtime did not do what the demo needs.
    #[error("{0}")]
    Runtime(String),
    /// Data.
    #[error(transparent)]
    Ml(#[from] sflow_ml::MlError),
}

impl DemoError {
    fn io(path: &Path, source: std::io::Error) -> DemoError {
        DemoError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The shape of a run, quick or full.
struct Plan {
    epochs: i64,
    clean_batches: usize,
    max_drifted_batches: usize,
    batches_after_replacement: usize,
    ramp: Vec<(usize, u64)>,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                epochs: 1,
                clean_batches: 4,
                max_drifted_batches: 10,
                batches_after_replacement: 3,
                ramp: vec![(1, 5), (8, 10), (32, 10)],
            }
        } else {
            Plan {
                epochs: 3,
                clean_batches: 8,
                max_drifted_batches: 20,
                batches_after_replacement: 5,
                ramp: vec![(1, 10), (4, 20), (16, 30), (48, 90), (4, 30)],
            }
        }
    }
}

const BATCH: usize = 1000;
const SERVICE: &str = "predictor";

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn say(msg: impl AsRef<str>) {
    eprintln!("demo: {}", msg.as_ref());
}

fn run(args: &Args) -> Result<(), DemoError> {
    let started = Instant::now();
    sflow_ml::set_torch_threads(1);
    let plan = Plan::new(args.quick);
    let mix = traffic::parse_mix(&args.corruptions)?;
    std::fs::create_dir_all(&args.out).map_err(|e| DemoError::io(&args.out, e))?;
    let state = args.out.join("state");
    if state.exists() {
        // A previous demo's state: the demo starts from nothing, as on a fresh machine.
        if !state.join("store.db").exists() {
            return Err(DemoError::Usage(format!(
                "{} exists and is not an sflow state directory; choose another --out",
                state.display()
            )));
        }
        std::fs::remove_dir_all(&state).map_err(|e| DemoError::io(&state, e))?;
    }
    if !args.sflow.exists() {
        return Err(DemoError::Usage(format!(
            "{} does not exist: build it with `cargo build --release -p sflow-runtime --features ml` (examples/mnist/run-demo does)",
            args.sflow.display()
        )));
    }
    let test = sflow_ml::data::mnist(&args.data, Split::Test)?;
    say(format!(
        "{} MNIST test digits loaded from {}",
        test.len(),
        args.data.display()
    ));

    let log = args.out.join("runtime.log");
    let rt = Runtime::start(&args.sflow, &args.program, &state, &log)?;
    say(format!(
        "`sflow run {}` started (log: {})",
        args.program.display(),
        log.display()
    ));
    let result = drive(args, &plan, &mix, test, &rt, started);
    rt.stop();
    let report = result?;
    report.write(&args.out)?;
    print_summary(&report, &args.out);
    // The Checker's saliency maps of a few picked digits, next to the report.
    match saliency::save_picked(&state, "checker", &args.out, 6)? {
        0 => say("no saliency maps: the Checker picked no digits (or wrote no maps)"),
        n => say(format!(
            "saliency maps of {n} picked digits: {}",
            args.out.join("saliency").display()
        )),
    }
    Ok(())
}

fn drive(
    args: &Args,
    plan: &Plan,
    mix: &[(sflow_ml::corrupt::Corruption, u8)],
    test: sflow_ml::Dataset,
    rt: &Runtime,
    started: Instant,
) -> Result<Report, DemoError> {
    // 1. Train the first model: the program's `training` workflow, through the control API.
    say(format!(
        "training: run of `training` with epochs = {}",
        plan.epochs
    ));
    let run_id = rt.start_run("training", json!({ "epochs": plan.epochs }))?;
    let run = rt.wait_run(run_id, Duration::from_secs(1800))?;
    if run.get("status").and_then(Value::as_str) != Some("succeeded") {
        return Err(DemoError::Runtime(format!(
            "the training run failed: {}",
            run.get("error").unwrap_or(&Value::Null)
        )));
    }
    let trained_accuracy = run
        .get("metrics")
        .and_then(Value::as_array)
        .and_then(|ms| {
            ms.iter().rev().find(|m| {
                m.get("step").and_then(Value::as_str) == Some("fit")
                    && m.get("name").and_then(Value::as_str) == Some("accuracy")
            })
        })
        .and_then(|m| m.get("value"))
        .and_then(Value::as_f64);
    say(format!(
        "training: done, held-out accuracy {}",
        trained_accuracy.map_or("?".into(), |a| format!("{a:.4}"))
    ));

    // 2. The service serves it.
    let url = rt.service_url(SERVICE, Duration::from_secs(120))?;
    let client = Client::new(&url, SERVICE)?;
    say(format!("`{SERVICE}` serves at {url}"));

    // 3. The stream: clean, then drifted, until the loop has acted and been measured.
    let t0 = Instant::now();
    let mut stream = Stream::new(test, args.seed);
    let mut rows: Vec<BatchRow> = Vec::new();
    let mut cursor = last_event_id(rt)?;
    let mut replaced_after: Option<usize> = None;
    let mut replaced_batches: Vec<usize> = Vec::new();
    let mut all_events: Vec<Value> = Vec::new();
    let mut first_detection: Option<usize> = None;
    let total = plan.clean_batches + plan.max_drifted_batches;
    for i in 1..=total {
        let drifted = i > plan.clean_batches;
        let batch = stream.batch(BATCH, drifted.then_some(mix))?;
        let res = traffic::send_batch(&client, &batch, args.per_request)?;
        // Let the loop act on this batch (check, and when it fires, label + retrain +
        // evaluate + replace) before sending the next one.
        let settled = rt.settle(Duration::from_secs(600))?;
        if !settled {
            say("the runtime is still busy after 600 s; going on");
        }
        let events = rt.events(cursor)?;
        all_events.extend(events.iter().cloned());
        cursor = events
            .iter()
            .filter_map(|e| e.get("id").and_then(Value::as_i64))
            .max()
            .unwrap_or(cursor);
        let detected = events.iter().any(is_drift_event);
        let replaced = events
            .iter()
            .any(|e| event_name(e) == format!("{SERVICE}.model.replaced"));
        let signals = rt.signals()?;
        let row = BatchRow {
            batch: i,
            phase: if drifted { "drifted" } else { "clean" },
            accuracy: res.accuracy,
            versions: res.versions,
            drift_score: number(&signals, "checker.drift"),
            drift_detected: detected,
            t_s: t0.elapsed().as_secs_f64(),
        };
        say(format!(
            "batch {i:>2} ({:>7}): accuracy {:.3}{}{}",
            row.phase,
            row.accuracy,
            if detected { ", drift detected" } else { "" },
            if replaced { ", model replaced" } else { "" }
        ));
        if drifted && detected && first_detection.is_none() {
            first_detection = Some(i - plan.clean_batches);
        }
        rows.push(row);
        if replaced {
            replaced_after = Some(i);
            replaced_batches.push(i);
        }
        if let Some(r) = replaced_after {
            if i >= r + plan.batches_after_replacement {
                break;
            }
        }
    }

    // 4. What the audit log says.
    let decisions = rt.decisions()?;
    let replacements = replacements(&decisions, &replaced_batches);
    let labels_used = labels_used(&all_events);

    // 5. The load ramp.
    say("load ramp");
    let ramp_batch = stream.batch(BATCH, None)?;
    let mut ramp: Vec<RampRow> = Vec::new();
    let ramp_t0 = Instant::now();
    let decisions_before = decisions.len();
    for &(clients, secs) in &plan.ramp {
        traffic::load_step(&client, &ramp_batch, clients, 16, secs, ramp_t0, |load| {
            let signals = rt.signals().unwrap_or(Value::Null);
            let row = RampRow {
                service_p95_ms: number(&signals, &format!("{SERVICE}.latency.p95"))
                    .map(|s| s * 1e3),
                replicas: number(&signals, &format!("{SERVICE}.replicas")).map(|r| r as i64),
                load,
            };
            ramp.push(row);
        });
        if let Some(last) = ramp.last() {
            say(format!(
                "  {clients:>2} clients: client p95 {:.1} ms, runtime p95 {}, replicas {}",
                last.load.p95_ms,
                last.service_p95_ms
                    .map_or("-".into(), |p| format!("{p:.1} ms")),
                last.replicas.map_or("-".into(), |r| r.to_string())
            ));
        }
    }
    let scalings = rt
        .decisions()?
        .into_iter()
        .skip(decisions_before)
        .filter(|d| {
            d.get("action")
                .and_then(Value::as_str)
                .is_some_and(|a| a.contains("scale"))
        })
        .map(|d| {
            format!(
                "{} {}: {}",
                d.get("time").and_then(Value::as_str).unwrap_or(""),
                d.get("name").and_then(Value::as_str).unwrap_or(""),
                d.get("result").and_then(Value::as_str).unwrap_or("")
            )
        })
        .collect();

    // 6. The figures.
    let clean: Vec<f64> = rows
        .iter()
        .filter(|r| r.phase == "clean")
        .map(|r| r.accuracy)
        .collect();
    let first_version = rows.first().and_then(|r| r.versions.first().cloned());
    let before: Vec<f64> = rows
        .iter()
        .filter(|r| {
            r.phase == "drifted"
                && r.versions.len() == 1
                && r.versions.first() == first_version.as_ref()
        })
        .map(|r| r.accuracy)
        .collect();
    let after: Vec<f64> = match replaced_after {
        Some(r) => rows
            .iter()
            .filter(|row| row.phase == "drifted" && row.batch > r)
            .map(|row| row.accuracy)
            .collect(),
        None => Vec::new(),
    };
    let clean_checks = rows.iter().filter(|r| r.phase == "clean").count();
    let false_alarms = rows
        .iter()
        .filter(|r| r.phase == "clean" && r.drift_detected)
        .count();
    Ok(Report {
        mode: if args.quick { "quick" } else { "full" },
        program: args.program.display().to_string(),
        corruptions: mix
            .iter()
            .map(|(c, s)| format!("{}:{s}", c.name()))
            .collect(),
        clean_accuracy: mean(&clean).unwrap_or(0.0),
        trained_accuracy,
        stream_accuracy_before: mean(&before),
        stream_accuracy_after: mean(&after),
        labels_used,
        detection_delay_batches: first_detection,
        false_alarm_rate: (clean_checks > 0).then(|| false_alarms as f64 / clean_checks as f64),
        replacements,
        batches: rows,
        ramp,
        scalings,
        duration_s: started.elapsed().as_secs_f64(),
    })
}

fn last_event_id(rt: &Runtime) -> Result<i64, DemoError> {
    Ok(rt
        .events(0)?
        .iter()
        .filter_map(|e| e.get("id").and_then(Value::as_i64))
        .max()
        .unwrap_or(0))
}

fn event_name(e: &Value) -> String {
    e.get("event")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A Checker's judgement that a batch drifted.
fn is_drift_event(e: &Value) -> bool {
    let name = event_name(e);
    name.ends_with(".drift.detected") || name.ends_with(".drift_detected")
}

/// A signal's number; a duration (`"12ms"`) in seconds.
fn number(signals: &Value, key: &str) -> Option<f64> {
    let v = signals.get(key)?;
    v.as_f64()
        .or_else(|| v.get("value").and_then(Value::as_f64))
        .or_else(|| v.as_str().and_then(seconds))
}

/// `"12ms"`, `"1.5s"`, `"2m"` in seconds.
fn seconds(text: &str) -> Option<f64> {
    let (digits, scale) = if let Some(d) = text.strip_suffix("ms") {
        (d, 1e-3)
    } else if let Some(d) = text.strip_suffix('s') {
        (d, 1.0)
    } else if let Some(d) = text.strip_suffix('m') {
        (d, 60.0)
    } else if let Some(d) = text.strip_suffix('h') {
        (d, 3600.0)
    } else {
        return None;
    };
    digits.parse::<f64>().ok().map(|x| x * scale)
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The replacements the audit log records, in order, placed after the stream batch whose
/// events showed them (`batches`, in the same order).
fn replacements(decisions: &[Value], batches: &[usize]) -> Vec<Replacement> {
    decisions
        .iter()
        .filter(|d| {
            d.get("status").and_then(Value::as_str) == Some("done")
                && d.get("action")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a.contains("replace"))
                && d.get("result")
                    .and_then(Value::as_str)
                    .is_some_and(|r| r.contains("now serves"))
        })
        .enumerate()
        .map(|(k, d)| {
            let reads = d.get("reads").cloned().unwrap_or(Value::Null);
            Replacement {
                after_batch: batches.get(k).copied().unwrap_or(0),
                time: d
                    .get("time")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                policy: d
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                old_accuracy: read_accuracy(&reads, &format!("{SERVICE}.model.accuracy")),
                new_accuracy: read_accuracy(&reads, "improver.candidate.accuracy"),
                result: d
                    .get("result")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            }
        })
        .collect()
}

fn read_accuracy(reads: &Value, key: &str) -> Option<f64> {
    number(reads, key)
}

/// Samples the Improver had labelled by its last evaluation (for training and held out), from
/// its `evaluated` events.
fn labels_used(events: &[Value]) -> Option<i64> {
    events
        .iter()
        .filter(|e| event_name(e).ends_with(".evaluated"))
        .filter_map(|e| {
            let l = e.pointer("/payload/labelled")?;
            Some(l.get("train")?.as_i64()? + l.get("heldOut")?.as_i64()?)
        })
        .max()
}

fn print_summary(r: &Report, out: &Path) {
    let f = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("{x:.3}"));
    println!("MNIST case study ({} mode)", r.mode);
    println!(
        "  accuracy on the clean stream        {:.3}",
        r.clean_accuracy
    );
    println!(
        "  drifted stream, before the loop     {}",
        f(r.stream_accuracy_before)
    );
    println!(
        "  drifted stream, after replacement   {}",
        f(r.stream_accuracy_after)
    );
    println!(
        "  labels used                         {}",
        r.labels_used.map_or("n/a".into(), |n| n.to_string())
    );
    println!(
        "  detection delay (drifted batches)   {}",
        r.detection_delay_batches
            .map_or("not detected".into(), |n| n.to_string())
    );
    println!(
        "  false alarm rate (clean batches)    {}",
        f(r.false_alarm_rate)
    );
    println!(
        "  replacements                        {}",
        r.replacements.len()
    );
    for x in &r.replacements {
        println!(
            "    {} by `{}`: {} -> {}",
            x.time,
            x.policy,
            f(x.old_accuracy),
            f(x.new_accuracy)
        );
    }
    println!("  scale actions during the ramp       {}", r.scalings.len());
    println!(
        "  took {:.0} s; report: {}",
        r.duration_s,
        out.join("report.json").display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_read_as_numbers() {
        let s = json!({"a.latency.p95": "12ms", "b": 3, "c": "2m", "d": "x"});
        assert_eq!(number(&s, "a.latency.p95"), Some(0.012));
        assert_eq!(number(&s, "b"), Some(3.0));
        assert_eq!(number(&s, "c"), Some(120.0));
        assert_eq!(number(&s, "d"), None);
        assert_eq!(number(&s, "e"), None);
    }
}
