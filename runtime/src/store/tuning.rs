//! The records of `Improver.tune`: one [`TuningRow`] per tuning action and one [`TrialRow`]
//! per trial (schema migration 3). A trial is recorded with its proposed params *before* its
//! run starts, so a resumed tuning re-reads what it proposed instead of proposing again.

use super::json_col;
use crate::clock::Millis;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value as Json;

/// The origin of a tuning trial's run (`agent:AGENT.tune`). Trials are experiments: recorded in
/// full, but they move no signal and emit no workflow event (`crate::engine::is_experiment`).
pub fn trial_origin(agent: &str) -> String {
    format!("agent:{agent}.tune")
}

/// Whether a run that `origin` started is a tuning trial ([`trial_origin`]).
pub fn is_trial_origin(origin: &str) -> bool {
    origin.starts_with("agent:") && origin.ends_with(".tune")
}

/// SQL: the ids of the runs of tuning trials ([`trial_origin`]), for queries that leave them out.
pub(crate) const TRIAL_RUN_IDS: &str =
    "SELECT id FROM workflow_runs WHERE origin LIKE 'agent:%.tune'";

/// A tuning as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct TuningRow {
    /// The tuning action's idempotency key.
    pub action_key: String,
    /// The Improver.
    pub agent: String,
    /// The retrain workflow.
    pub workflow: String,
    /// The objective metric, `WORKFLOW.STEP.METRIC`.
    pub objective: String,
    /// `maximize` or `minimize`.
    pub direction: String,
    /// `random` or `tpe`.
    pub strategy: String,
    /// The strategy's options, `parallel`, the seed and the space.
    pub options: Json,
    /// The trial budget.
    pub trials: i64,
    /// `running` or `done`.
    pub status: String,
    /// The best trial's number, once done.
    pub best_trial: Option<i64>,
    /// The audit log's result, once done.
    pub result: Option<String>,
    /// When it started.
    pub created_ms: Millis,
    /// When it finished.
    pub finished_ms: Option<Millis>,
}

/// What a new tuning records.
pub struct NewTuning<'a> {
    /// The action's key.
    pub action_key: &'a str,
    /// The Improver.
    pub agent: &'a str,
    /// The retrain workflow.
    pub workflow: &'a str,
    /// `WORKFLOW.STEP.METRIC`.
    pub objective: &'a str,
    /// `maximize` or `minimize`.
    pub direction: &'a str,
    /// `random` or `tpe`.
    pub strategy: &'a str,
    /// Options (JSON).
    pub options: &'a Json,
    /// The budget.
    pub trials: i64,
}

const TUNING_COLS: &str = "action_key, agent, workflow, objective, direction, strategy, options, trials, status, best_trial, result, created_ms, finished_ms";

fn tuning_row(r: &Row<'_>) -> rusqlite::Result<TuningRow> {
    Ok(TuningRow {
        action_key: r.get(0)?,
        agent: r.get(1)?,
        workflow: r.get(2)?,
        objective: r.get(3)?,
        direction: r.get(4)?,
        strategy: r.get(5)?,
        options: json_col(r, 6)?,
        trials: r.get(7)?,
        status: r.get(8)?,
        best_trial: r.get(9)?,
        result: r.get(10)?,
        created_ms: r.get(11)?,
        finished_ms: r.get(12)?,
    })
}

/// Records a tuning (status `running`) unless its key is recorded already.
pub fn insert_tuning(c: &Connection, t: &NewTuning<'_>, now: Millis) -> Result<()> {
    c.execute(
        "INSERT OR IGNORE INTO tunings (action_key, agent, workflow, objective, direction, strategy, options, trials, status, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'running', ?9)",
        params![t.action_key, t.agent, t.workflow, t.objective, t.direction, t.strategy, t.options.to_string(), t.trials, now],
    )?;
    Ok(())
}

/// One tuning.
pub fn tuning(c: &Connection, key: &str) -> Result<Option<TuningRow>> {
    Ok(c.query_row(
        &format!("SELECT {TUNING_COLS} FROM tunings WHERE action_key = ?1"),
        [key],
        tuning_row,
    )
    .optional()?)
}

/// Marks a tuning done with its best trial (if any) and result.
pub fn finish_tuning(
    c: &Connection,
    key: &str,
    best: Option<i64>,
    result: &str,
    now: Millis,
) -> Result<()> {
    c.execute(
        "UPDATE tunings SET status = 'done', best_trial = ?2, result = ?3, finished_ms = ?4 WHERE action_key = ?1",
        params![key, best, result, now],
    )?;
    Ok(())
}

/// A trial as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct TrialRow {
    /// Its tuning.
    pub action_key: String,
    /// Its number (1, 2, …).
    pub trial: i64,
    /// Its run, once started.
    pub run_id: Option<i64>,
    /// `random`, `tpe:startup` or `tpe`.
    pub proposed_by: String,
    /// The tuned params' values (a JSON object).
    pub params: Json,
    /// The search's coordinates of them.
    pub point: Json,
    /// The objective's value, once measured.
    pub objective: Option<f64>,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was proposed.
    pub started_ms: Millis,
    /// When it finished.
    pub finished_ms: Option<Millis>,
}

const TRIAL_COLS: &str = "action_key, trial, run_id, proposed_by, params, point, objective, status, error, started_ms, finished_ms";

fn trial_row(r: &Row<'_>) -> rusqlite::Result<TrialRow> {
    Ok(TrialRow {
        action_key: r.get(0)?,
        trial: r.get(1)?,
        run_id: r.get(2)?,
        proposed_by: r.get(3)?,
        params: json_col(r, 4)?,
        point: json_col(r, 5)?,
        objective: r.get(6)?,
        status: r.get(7)?,
        error: r.get(8)?,
        started_ms: r.get(9)?,
        finished_ms: r.get(10)?,
    })
}

/// Records a proposed trial (status `running`) unless it is recorded already.
pub fn insert_trial(
    c: &Connection,
    key: &str,
    trial: i64,
    proposed_by: &str,
    params: &Json,
    point: &Json,
    now: Millis,
) -> Result<()> {
    c.execute(
        "INSERT OR IGNORE INTO tuning_trials (action_key, trial, proposed_by, params, point, status, started_ms) VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6)",
        params![key, trial, proposed_by, params.to_string(), point.to_string(), now],
    )?;
    Ok(())
}

/// Records the run of a trial.
pub fn set_trial_run(c: &Connection, key: &str, trial: i64, run: i64) -> Result<()> {
    c.execute(
        "UPDATE tuning_trials SET run_id = ?3 WHERE action_key = ?1 AND trial = ?2",
        params![key, trial, run],
    )?;
    Ok(())
}

/// Records how a trial ended.
pub fn finish_trial(
    c: &Connection,
    key: &str,
    trial: i64,
    status: &str,
    objective: Option<f64>,
    error: Option<&str>,
    now: Millis,
) -> Result<()> {
    c.execute(
        "UPDATE tuning_trials SET status = ?3, objective = ?4, error = ?5, finished_ms = ?6 WHERE action_key = ?1 AND trial = ?2",
        params![key, trial, status, objective, error, now],
    )?;
    Ok(())
}

/// The trials of a tuning, by number.
pub fn trials_of(c: &Connection, key: &str) -> Result<Vec<TrialRow>> {
    let mut st = c.prepare(&format!(
        "SELECT {TRIAL_COLS} FROM tuning_trials WHERE action_key = ?1 ORDER BY trial"
    ))?;
    let rows = st.query_map([key], trial_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The trial whose run is `run`, if it is one.
pub fn trial_of_run(c: &Connection, run: i64) -> Result<Option<TrialRow>> {
    Ok(c.query_row(
        &format!("SELECT {TRIAL_COLS} FROM tuning_trials WHERE run_id = ?1"),
        [run],
        trial_row,
    )
    .optional()?)
}

/// Tunings, newest first.
pub fn tunings(c: &Connection, limit: i64) -> Result<Vec<TuningRow>> {
    let mut st = c.prepare(&format!(
        "SELECT {TUNING_COLS} FROM tunings ORDER BY created_ms DESC, rowid DESC LIMIT ?1"
    ))?;
    let rows = st.query_map([limit], tuning_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
