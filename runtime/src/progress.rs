//! What a person sees while workflows run: progress bars (indicatif) on a terminal, plain
//! structured log lines (tracing) otherwise.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

/// Receives run and step progress.
pub trait Progress: Send + Sync {
    /// A run started (or resumed).
    fn run_started(&self, run: i64, workflow: &str, steps: usize, resumed: bool);
    /// A step finished: `succeeded`, `cached`, `failed`, `skipped`; `detail` says why.
    fn step_finished(
        &self,
        run: i64,
        workflow: &str,
        step: &str,
        status: &str,
        detail: Option<&str>,
    );
    /// A step attempt failed and will be retried.
    fn step_retrying(&self, run: i64, workflow: &str, step: &str, attempt: i64, detail: &str);
    /// A run finished.
    fn run_finished(&self, run: i64, workflow: &str, status: &str, error: Option<&str>);
}

/// The progress display for this process: bars when stderr is a terminal, logs otherwise.
pub fn for_terminal() -> Arc<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Arc::new(Bars::new())
    } else {
        Arc::new(Logs)
    }
}

/// Progress as log lines.
#[derive(Debug, Default)]
pub struct Logs;

impl Progress for Logs {
    fn run_started(&self, run: i64, workflow: &str, steps: usize, resumed: bool) {
        if resumed {
            tracing::info!(run, workflow, steps, "run resumed");
        } else {
            tracing::info!(run, workflow, steps, "run started");
        }
    }
    fn step_finished(
        &self,
        run: i64,
        workflow: &str,
        step: &str,
        status: &str,
        detail: Option<&str>,
    ) {
        match detail {
            Some(detail) if status == "failed" => {
                tracing::warn!(run, workflow, step, status, detail, "step finished")
            }
            Some(detail) => tracing::info!(run, workflow, step, status, detail, "step finished"),
            None => tracing::info!(run, workflow, step, status, "step finished"),
        }
    }
    fn step_retrying(&self, run: i64, workflow: &str, step: &str, attempt: i64, detail: &str) {
        tracing::warn!(
            run,
            workflow,
            step,
            attempt,
            detail,
            "attempt failed; retrying"
        );
    }
    fn run_finished(&self, run: i64, workflow: &str, status: &str, error: Option<&str>) {
        match error {
            Some(error) => tracing::warn!(run, workflow, status, error, "run finished"),
            None => tracing::info!(run, workflow, status, "run finished"),
        }
    }
}

/// Nothing at all (benchmarks, library use).
#[derive(Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn run_started(&self, _: i64, _: &str, _: usize, _: bool) {}
    fn step_finished(&self, _: i64, _: &str, _: &str, _: &str, _: Option<&str>) {}
    fn step_retrying(&self, _: i64, _: &str, _: &str, _: i64, _: &str) {}
    fn run_finished(&self, _: i64, _: &str, _: &str, _: Option<&str>) {}
}

/// Progress bars, one per run.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<i64, ProgressBar>>,
}

impl Bars {
    fn new() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, run: i64) -> Option<ProgressBar> {
        self.bars.lock().ok().and_then(|b| b.get(&run).cloned())
    }
}

impl Progress for Bars {
    fn run_started(&self, run: i64, workflow: &str, steps: usize, resumed: bool) {
        let bar = self.multi.add(ProgressBar::new(steps as u64));
        let style = ProgressStyle::with_template("{prefix:>20.bold} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(format!("{workflow} #{run}"));
        if resumed {
            bar.set_message("resumed");
        }
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(run, bar);
        }
    }
    fn step_finished(&self, run: i64, _: &str, step: &str, status: &str, detail: Option<&str>) {
        if let Some(bar) = self.bar(run) {
            bar.inc(1);
            bar.set_message(format!("{step} {status}"));
            if let (Some(detail), "failed") = (detail, status) {
                bar.println(format!("  {step} failed: {detail}"));
            }
        }
    }
    fn step_retrying(&self, run: i64, _: &str, step: &str, attempt: i64, detail: &str) {
        if let Some(bar) = self.bar(run) {
            bar.println(format!(
                "  {step} attempt {attempt} failed ({detail}); retrying"
            ));
        }
    }
    fn run_finished(&self, run: i64, workflow: &str, status: &str, error: Option<&str>) {
        if let Some(bar) = self.bars.lock().ok().and_then(|mut b| b.remove(&run)) {
            bar.finish_with_message(match error {
                Some(e) => format!("{status}: {e}"),
                None => status.to_string(),
            });
        } else {
            tracing::info!(run, workflow, status, "run finished");
        }
    }
}
