//! The embedded store: one SQLite file (WAL) under the state directory that records apps,
//! runs, step attempts, params, metrics, artifacts, the model registry, events, firings and
//! the decisions audit log.
//!
//! The [`Store`] serialises access through one connection. Composite changes that must be
//! atomic (a firing's action and the record that it was done; an event and the trigger
//! firings it causes) go through [`Store::tx`] with the free functions of this module, which
//! take any `&Connection` (a transaction derefs to one).

pub mod schema;
pub mod tuning;

use crate::clock::Millis;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use serde_json::Value as Json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The store of one state directory.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    stop: Arc<AtomicBool>,
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        set_wal(&conn)?;
        // WAL with NORMAL: a commit survives the process being killed (it is in the OS), and
        // only an OS crash may lose the last commits.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(64);
        migrate(&conn)?;
        // Commits never wait for a checkpoint (the only fsync in WAL mode with NORMAL): a
        // background thread with its own connection checkpoints the WAL every second without
        // blocking writers.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let stop = Arc::new(AtomicBool::new(false));
        let checkpointer = Connection::open(path)?;
        checkpointer.busy_timeout(std::time::Duration::from_secs(1))?;
        let flag = stop.clone();
        let spawned = std::thread::Builder::new()
            .name("sflow-checkpoint".into())
            .spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    std::thread::sleep(std::time::Duration::from_millis(1000));
                    let _ =
                        checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            });
        if spawned.is_err() {
            // No thread: let commits checkpoint as usual.
            conn.pragma_update(None, "wal_autocheckpoint", 1000)?;
        }
        Ok(Store {
            conn: Mutex::new(conn),
            stop,
        })
    }

    /// Opens an existing store for reading commands (`sflow runs`); `None` if there is none.
    pub fn open_existing(path: &Path) -> Result<Option<Store>> {
        if !path.exists() {
            return Ok(None);
        }
        Store::open(path).map(Some)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` with the connection.
    pub fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(&self.lock())
    }

    /// Runs `f` in a transaction, committed if `f` succeeds.
    pub fn tx<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

/// Puts the database in WAL mode. Switching a new database to WAL needs its exclusive lock,
/// and SQLite answers `SQLITE_BUSY` at once, without waiting, when another connection opening
/// the same new file holds a read lock at that moment (waiting could deadlock): the switch is
/// retried for a while, as a second `sflow` command started with the runtime would need.
fn set_wal(conn: &Connection) -> Result<()> {
    let mut wait = std::time::Duration::from_millis(2);
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < give_up =>
            {
                std::thread::sleep(wait);
                wait = (wait * 2).min(std::time::Duration::from_millis(100));
            }
            other => return Ok(other?),
        }
    }
}

/// Applies the migrations the database lacks. Each runs in an immediate transaction that
/// re-reads the version first, so two processes opening a new store at once migrate it once.
pub fn migrate(conn: &Connection) -> Result<()> {
    for (i, sql) in schema::MIGRATIONS.iter().enumerate() {
        let target = i as i64 + 1;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version >= target {
            continue;
        }
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let applied = (|| -> rusqlite::Result<()> {
            let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version < target {
                conn.execute_batch(sql)?;
                conn.execute_batch(&format!("PRAGMA user_version = {target}"))?;
            }
            Ok(())
        })();
        match applied {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e.into());
            }
        }
    }
    Ok(())
}

/// The schema version of a database.
pub fn schema_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

fn json_col(row: &Row<'_>, idx: usize) -> rusqlite::Result<Json> {
    let text: String = row.get(idx)?;
    Ok(serde_json::from_str(&text).unwrap_or(Json::Null))
}

// ---------------------------------------------------------------------------------------------
// Apps

/// Records that the app started with this plan.
pub fn upsert_app(
    c: &Connection,
    name: &str,
    source: &str,
    plan_sha: &str,
    plan: &str,
    now: Millis,
) -> Result<()> {
    c.prepare_cached("INSERT INTO apps (name, source, plan_sha256, plan, first_started_ms, last_started_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT(name) DO UPDATE SET source = ?2, plan_sha256 = ?3, plan = ?4, last_started_ms = ?5")?.execute(
        params![name, source, plan_sha, plan, now],
    )?;
    Ok(())
}

/// An app as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct AppRow {
    /// Its name.
    pub name: String,
    /// The program it was started from.
    pub source: String,
    /// The digest of its plan.
    pub plan_sha256: String,
    /// When it first started.
    pub first_started_ms: Millis,
    /// When it last started.
    pub last_started_ms: Millis,
}

/// Every app.
pub fn apps(c: &Connection) -> Result<Vec<AppRow>> {
    let mut st = c.prepare("SELECT name, source, plan_sha256, first_started_ms, last_started_ms FROM apps ORDER BY name")?;
    let rows = st.query_map([], |r| {
        Ok(AppRow {
            name: r.get(0)?,
            source: r.get(1)?,
            plan_sha256: r.get(2)?,
            first_started_ms: r.get(3)?,
            last_started_ms: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The plan an app last started with.
pub fn app_plan(c: &Connection, name: &str) -> Result<Option<String>> {
    Ok(
        c.query_row("SELECT plan FROM apps WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?,
    )
}

// ---------------------------------------------------------------------------------------------
// Runs

/// A workflow run as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct RunRow {
    /// Its id.
    pub id: i64,
    /// The app.
    pub app: String,
    /// The workflow.
    pub workflow: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// What started it.
    pub origin: String,
    /// The firing action that started it.
    pub firing_key: Option<String>,
    /// When it was created.
    pub created_ms: Millis,
    /// When it finished.
    pub finished_ms: Option<Millis>,
    /// Why it failed.
    pub error: Option<String>,
    /// Its directory.
    pub dir: String,
    /// How many times it was resumed after an interruption.
    pub resumed: i64,
}

const RUN_COLS: &str =
    "id, app, workflow, status, origin, firing_key, created_ms, finished_ms, error, dir, resumed";

fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        app: r.get(1)?,
        workflow: r.get(2)?,
        status: r.get(3)?,
        origin: r.get(4)?,
        firing_key: r.get(5)?,
        created_ms: r.get(6)?,
        finished_ms: r.get(7)?,
        error: r.get(8)?,
        dir: r.get(9)?,
        resumed: r.get(10)?,
    })
}

/// A param of a run: name, type, text, typed JSON.
#[derive(Clone, Debug, Serialize)]
pub struct ParamRow {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: String,
    /// The text the steps get.
    pub value: String,
    /// The typed value.
    pub json: Json,
}

/// Creates a run (status `running`) with its params; its directory is `dir_root/<id>`.
#[allow(clippy::too_many_arguments)]
pub fn insert_run(
    c: &Connection,
    app: &str,
    workflow: &str,
    origin: &str,
    firing_key: Option<&str>,
    params: &[ParamRow],
    dir_root: &Path,
    now: Millis,
) -> Result<(i64, String)> {
    c.prepare_cached("INSERT INTO workflow_runs (app, workflow, status, origin, firing_key, created_ms, dir) VALUES (?1, ?2, 'running', ?3, ?4, ?5, '')")?.execute(
        params![app, workflow, origin, firing_key, now],
    )?;
    let id = c.last_insert_rowid();
    let dir = dir_root.join(id.to_string()).to_string_lossy().into_owned();
    c.prepare_cached("UPDATE workflow_runs SET dir = ?2 WHERE id = ?1")?
        .execute(params![id, dir])?;
    let mut st = c.prepare(
        "INSERT INTO params (run_id, name, type, value, json) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for p in params {
        st.execute(params![id, p.name, p.ty, p.value, p.json.to_string()])?;
    }
    Ok((id, dir))
}

/// The run a firing action started, if any.
pub fn run_by_firing(c: &Connection, key: &str) -> Result<Option<i64>> {
    Ok(c.query_row(
        "SELECT id FROM workflow_runs WHERE firing_key = ?1",
        [key],
        |r| r.get(0),
    )
    .optional()?)
}

/// Marks a run finished.
pub fn finish_run(
    c: &Connection,
    id: i64,
    status: &str,
    error: Option<&str>,
    now: Millis,
) -> Result<()> {
    c.prepare_cached(
        "UPDATE workflow_runs SET status = ?2, error = ?3, finished_ms = ?4 WHERE id = ?1",
    )?
    .execute(params![id, status, error, now])?;
    Ok(())
}

/// Counts a resumption of a run.
pub fn mark_resumed(c: &Connection, id: i64) -> Result<()> {
    c.prepare_cached("UPDATE workflow_runs SET resumed = resumed + 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// The latest runs, newest first.
pub fn runs(c: &Connection, limit: i64) -> Result<Vec<RunRow>> {
    let mut st = c.prepare(&format!(
        "SELECT {RUN_COLS} FROM workflow_runs ORDER BY id DESC LIMIT ?1"
    ))?;
    let rows = st.query_map([limit], run_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One run.
pub fn run(c: &Connection, id: i64) -> Result<Option<RunRow>> {
    Ok(c.query_row(
        &format!("SELECT {RUN_COLS} FROM workflow_runs WHERE id = ?1"),
        [id],
        run_row,
    )
    .optional()?)
}

/// Runs that were running when the runtime stopped.
pub fn unfinished_runs(c: &Connection, app: &str) -> Result<Vec<RunRow>> {
    let mut st = c.prepare(&format!(
        "SELECT {RUN_COLS} FROM workflow_runs WHERE status = 'running' AND app = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([app], run_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Counts runs by status.
pub fn run_counts(c: &Connection) -> Result<Vec<(String, i64)>> {
    let mut st =
        c.prepare("SELECT status, COUNT(*) FROM workflow_runs GROUP BY status ORDER BY status")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The params of a run.
pub fn params_of(c: &Connection, run: i64) -> Result<Vec<ParamRow>> {
    let mut st =
        c.prepare("SELECT name, type, value, json FROM params WHERE run_id = ?1 ORDER BY name")?;
    let rows = st.query_map([run], |r| {
        Ok(ParamRow {
            name: r.get(0)?,
            ty: r.get(1)?,
            value: r.get(2)?,
            json: json_col(r, 3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ---------------------------------------------------------------------------------------------
// Step runs

/// One attempt of a step (or the record of a cached or skipped step).
#[derive(Clone, Debug, Serialize)]
pub struct StepRunRow {
    /// Its id.
    pub id: i64,
    /// The run.
    pub run_id: i64,
    /// The step.
    pub step: String,
    /// The attempt number.
    pub attempt: i64,
    /// Its status.
    pub status: String,
    /// When it started.
    pub started_ms: Millis,
    /// When it finished.
    pub finished_ms: Option<Millis>,
    /// The exit code.
    pub exit_code: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Its directory.
    pub dir: Option<String>,
    /// The stdout log.
    pub stdout: Option<String>,
    /// The stderr log.
    pub stderr: Option<String>,
    /// Its process id.
    pub pid: Option<i64>,
    /// Its process's start time.
    pub pid_start: Option<String>,
    /// Its cache key.
    pub cache_key: Option<String>,
    /// The step run it reused.
    pub cached_from: Option<i64>,
}

const STEP_COLS: &str =
    "id, run_id, step, attempt, status, started_ms, finished_ms, exit_code, error, dir, stdout, stderr, pid, pid_start, cache_key, cached_from";

fn step_row(r: &Row<'_>) -> rusqlite::Result<StepRunRow> {
    Ok(StepRunRow {
        id: r.get(0)?,
        run_id: r.get(1)?,
        step: r.get(2)?,
        attempt: r.get(3)?,
        status: r.get(4)?,
        started_ms: r.get(5)?,
        finished_ms: r.get(6)?,
        exit_code: r.get(7)?,
        error: r.get(8)?,
        dir: r.get(9)?,
        stdout: r.get(10)?,
        stderr: r.get(11)?,
        pid: r.get(12)?,
        pid_start: r.get(13)?,
        cache_key: r.get(14)?,
        cached_from: r.get(15)?,
    })
}

/// A new step run.
#[derive(Clone, Debug, Default)]
pub struct NewStepRun<'a> {
    /// The run.
    pub run_id: i64,
    /// The step.
    pub step: &'a str,
    /// The attempt.
    pub attempt: i64,
    /// The status.
    pub status: &'a str,
    /// Its directory.
    pub dir: Option<&'a str>,
    /// Its stdout log.
    pub stdout: Option<&'a str>,
    /// Its stderr log.
    pub stderr: Option<&'a str>,
    /// Its cache key.
    pub cache_key: Option<&'a str>,
    /// The step run it reuses.
    pub cached_from: Option<i64>,
    /// Why (for skipped steps).
    pub error: Option<&'a str>,
}

/// Records a step run.
pub fn insert_step_run(c: &Connection, s: &NewStepRun<'_>, now: Millis) -> Result<i64> {
    let finished = (s.status != "running").then_some(now);
    c.prepare_cached("INSERT INTO step_runs (run_id, step, attempt, status, started_ms, finished_ms, dir, stdout, stderr, cache_key, cached_from, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)")?.execute(
        params![s.run_id, s.step, s.attempt, s.status, now, finished, s.dir, s.stdout, s.stderr, s.cache_key, s.cached_from, s.error],
    )?;
    Ok(c.last_insert_rowid())
}

/// Records an attempt that has already ended (an attempt too short to have been recorded
/// while it ran): one statement instead of an insert and an update.
pub fn insert_ended_step_run(
    c: &Connection,
    s: &NewStepRun<'_>,
    exit_code: Option<i64>,
    started: Millis,
    finished: Millis,
) -> Result<i64> {
    c.prepare_cached("INSERT INTO step_runs (run_id, step, attempt, status, started_ms, finished_ms, dir, stdout, stderr, cache_key, cached_from, error, exit_code)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)")?.execute(
        params![s.run_id, s.step, s.attempt, s.status, started, finished, s.dir, s.stdout, s.stderr, s.cache_key, s.cached_from, s.error, exit_code],
    )?;
    Ok(c.last_insert_rowid())
}

/// Records the process of a running attempt.
pub fn set_step_pid(c: &Connection, id: i64, pid: i64, start: Option<&str>) -> Result<()> {
    c.prepare_cached("UPDATE step_runs SET pid = ?2, pid_start = ?3 WHERE id = ?1")?
        .execute(params![id, pid, start])?;
    Ok(())
}

/// Marks an attempt finished.
pub fn finish_step_run(
    c: &Connection,
    id: i64,
    status: &str,
    exit_code: Option<i64>,
    error: Option<&str>,
    now: Millis,
) -> Result<()> {
    c.prepare_cached("UPDATE step_runs SET status = ?2, exit_code = ?3, error = ?4, finished_ms = ?5 WHERE id = ?1")?.execute(
        params![id, status, exit_code, error, now],
    )?;
    Ok(())
}

/// The step runs of a run, in order.
pub fn step_runs_of(c: &Connection, run: i64) -> Result<Vec<StepRunRow>> {
    let mut st = c.prepare(&format!(
        "SELECT {STEP_COLS} FROM step_runs WHERE run_id = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([run], step_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Attempts still marked running (of runs that were interrupted).
pub fn running_step_runs(c: &Connection, run: i64) -> Result<Vec<StepRunRow>> {
    let mut st = c.prepare(&format!(
        "SELECT {STEP_COLS} FROM step_runs WHERE run_id = ?1 AND status = 'running' ORDER BY id"
    ))?;
    let rows = st.query_map([run], step_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The latest successful (executed, not cached) step run with this cache key.
pub fn find_cached(c: &Connection, key: &str) -> Result<Option<StepRunRow>> {
    Ok(c
        .query_row(
            &format!("SELECT {STEP_COLS} FROM step_runs WHERE cache_key = ?1 AND status = 'succeeded' ORDER BY id DESC LIMIT 1"),
            [key],
            step_row,
        )
        .optional()?)
}

// ---------------------------------------------------------------------------------------------
// Metrics and artifacts

/// A recorded metric point.
#[derive(Clone, Debug, Serialize)]
pub struct MetricRow {
    /// The step run that reported it.
    pub step_run_id: i64,
    /// The run.
    pub run_id: i64,
    /// The workflow.
    pub workflow: String,
    /// The step.
    pub step: String,
    /// The metric.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: String,
    /// The typed value.
    pub value: Json,
    /// Its position in the step's report.
    pub seq: i64,
    /// When it was recorded.
    pub ts_ms: Millis,
}

/// Records a metric point.
#[allow(clippy::too_many_arguments)]
pub fn insert_metric(
    c: &Connection,
    run_id: i64,
    step_run_id: i64,
    workflow: &str,
    step: &str,
    name: &str,
    ty: &str,
    number: Option<f64>,
    json: &Json,
    seq: i64,
    now: Millis,
) -> Result<()> {
    c.prepare_cached("INSERT INTO metrics (run_id, step_run_id, workflow, step, name, type, value, json, seq, ts_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?.execute(
        params![run_id, step_run_id, workflow, step, name, ty, number, json.to_string(), seq, now],
    )?;
    Ok(())
}

const METRIC_COLS: &str = "step_run_id, run_id, workflow, step, name, type, json, seq, ts_ms";

fn metric_row(r: &Row<'_>) -> rusqlite::Result<MetricRow> {
    Ok(MetricRow {
        step_run_id: r.get(0)?,
        run_id: r.get(1)?,
        workflow: r.get(2)?,
        step: r.get(3)?,
        name: r.get(4)?,
        ty: r.get(5)?,
        value: json_col(r, 6)?,
        seq: r.get(7)?,
        ts_ms: r.get(8)?,
    })
}

/// The metrics a step run reported.
pub fn metrics_of_step_run(c: &Connection, step_run: i64) -> Result<Vec<MetricRow>> {
    let mut st = c.prepare(&format!(
        "SELECT {METRIC_COLS} FROM metrics WHERE step_run_id = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([step_run], metric_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The metrics of a run.
pub fn metrics_of_run(c: &Connection, run: i64) -> Result<Vec<MetricRow>> {
    let mut st = c.prepare(&format!(
        "SELECT {METRIC_COLS} FROM metrics WHERE run_id = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([run], metric_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every metric point, oldest first (for tests and exports).
pub fn all_metrics(c: &Connection) -> Result<Vec<MetricRow>> {
    let mut st = c.prepare(&format!("SELECT {METRIC_COLS} FROM metrics ORDER BY id"))?;
    let rows = st.query_map([], metric_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The latest value of each step metric (the last point of the latest report), leaving out
/// the runs of tuning trials (`agent:AGENT.tune`: experiments, which move no signal).
pub fn latest_step_metrics(c: &Connection) -> Result<Vec<MetricRow>> {
    let mut st = c.prepare(&format!(
        "SELECT {METRIC_COLS} FROM metrics WHERE id IN (SELECT MAX(id) FROM metrics
           WHERE run_id NOT IN ({}) GROUP BY workflow, step, name) ORDER BY id",
        tuning::TRIAL_RUN_IDS
    ))?;
    let rows = st.query_map([], metric_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A recorded artifact.
#[derive(Clone, Debug, Serialize)]
pub struct ArtifactRow {
    /// Its id.
    pub id: i64,
    /// The run.
    pub run_id: i64,
    /// The step run that wrote it (or reused it).
    pub step_run_id: i64,
    /// The step.
    pub step: String,
    /// The output.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: String,
    /// Where it is.
    pub path: String,
    /// Its content digest.
    pub sha256: String,
    /// Its size in bytes.
    pub size: i64,
}

/// Records an artifact.
#[allow(clippy::too_many_arguments)]
pub fn insert_artifact(
    c: &Connection,
    run_id: i64,
    step_run_id: i64,
    step: &str,
    name: &str,
    ty: &str,
    path: &str,
    sha256: &str,
    size: i64,
    now: Millis,
) -> Result<i64> {
    c.prepare_cached("INSERT INTO artifacts (run_id, step_run_id, step, name, type, path, sha256, size, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?.execute(
        params![run_id, step_run_id, step, name, ty, path, sha256, size, now],
    )?;
    Ok(c.last_insert_rowid())
}

const ARTIFACT_COLS: &str = "id, run_id, step_run_id, step, name, type, path, sha256, size";

fn artifact_row(r: &Row<'_>) -> rusqlite::Result<ArtifactRow> {
    Ok(ArtifactRow {
        id: r.get(0)?,
        run_id: r.get(1)?,
        step_run_id: r.get(2)?,
        step: r.get(3)?,
        name: r.get(4)?,
        ty: r.get(5)?,
        path: r.get(6)?,
        sha256: r.get(7)?,
        size: r.get(8)?,
    })
}

/// The artifacts of a step run.
pub fn artifacts_of_step_run(c: &Connection, step_run: i64) -> Result<Vec<ArtifactRow>> {
    let mut st = c.prepare(&format!(
        "SELECT {ARTIFACT_COLS} FROM artifacts WHERE step_run_id = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([step_run], artifact_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The artifacts of a run.
pub fn artifacts_of_run(c: &Connection, run: i64) -> Result<Vec<ArtifactRow>> {
    let mut st = c.prepare(&format!(
        "SELECT {ARTIFACT_COLS} FROM artifacts WHERE run_id = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([run], artifact_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ---------------------------------------------------------------------------------------------
// Models

/// A registered model version.
#[derive(Clone, Debug, Serialize)]
pub struct ModelRow {
    /// Its id.
    pub id: i64,
    /// `WORKFLOW.STEP.OUTPUT`.
    pub name: String,
    /// Its version (1, 2, …).
    pub version: i64,
    /// The run that produced it.
    pub run_id: i64,
    /// The file.
    pub path: String,
    /// Its digest.
    pub sha256: String,
    /// Its size.
    pub size: i64,
    /// Its metric record.
    pub metrics: Json,
    /// Where it comes from.
    pub lineage: Json,
    /// When it was registered.
    pub created_ms: Millis,
    /// The aliases pointing at it (`predictor@production`).
    pub aliases: Vec<String>,
}

const MODEL_COLS: &str =
    "id, name, version, run_id, path, sha256, size, metrics, lineage, created_ms";

fn model_row(r: &Row<'_>) -> rusqlite::Result<ModelRow> {
    Ok(ModelRow {
        id: r.get(0)?,
        name: r.get(1)?,
        version: r.get(2)?,
        run_id: r.get(3)?,
        path: r.get(4)?,
        sha256: r.get(5)?,
        size: r.get(6)?,
        metrics: json_col(r, 7)?,
        lineage: json_col(r, 8)?,
        created_ms: r.get(9)?,
        aliases: Vec::new(),
    })
}

/// Registers a new version of model `name`; returns its id and version.
#[allow(clippy::too_many_arguments)]
pub fn register_model(
    c: &Connection,
    name: &str,
    run_id: i64,
    artifact_id: Option<i64>,
    path: &str,
    sha256: &str,
    size: i64,
    metrics: &Json,
    lineage: &Json,
    now: Millis,
) -> Result<(i64, i64)> {
    let version: i64 = c.query_row(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM models WHERE name = ?1",
        [name],
        |r| r.get(0),
    )?;
    c.prepare_cached("INSERT INTO models (name, version, run_id, artifact_id, path, sha256, size, metrics, lineage, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?.execute(
        params![name, version, run_id, artifact_id, path, sha256, size, metrics.to_string(), lineage.to_string(), now],
    )?;
    Ok((c.last_insert_rowid(), version))
}

fn with_aliases(c: &Connection, mut rows: Vec<ModelRow>) -> Result<Vec<ModelRow>> {
    let mut st = c.prepare(
        "SELECT scope, alias FROM model_aliases WHERE model_id = ?1 ORDER BY scope, alias",
    )?;
    for m in &mut rows {
        let aliases = st.query_map([m.id], |r| {
            Ok(format!(
                "{}@{}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?
            ))
        })?;
        m.aliases = aliases.collect::<rusqlite::Result<_>>()?;
    }
    Ok(rows)
}

/// Every model version, newest first.
pub fn models(c: &Connection) -> Result<Vec<ModelRow>> {
    let mut st = c.prepare(&format!("SELECT {MODEL_COLS} FROM models ORDER BY id DESC"))?;
    let rows = st
        .query_map([], model_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    with_aliases(c, rows)
}

/// One model version.
pub fn model(c: &Connection, id: i64) -> Result<Option<ModelRow>> {
    let row = c
        .query_row(
            &format!("SELECT {MODEL_COLS} FROM models WHERE id = ?1"),
            [id],
            model_row,
        )
        .optional()?;
    Ok(with_aliases(c, row.into_iter().collect())?.pop())
}

/// The latest version of model `name`.
pub fn latest_model(c: &Connection, name: &str) -> Result<Option<ModelRow>> {
    let row = c
        .query_row(
            &format!(
                "SELECT {MODEL_COLS} FROM models WHERE name = ?1 ORDER BY version DESC LIMIT 1"
            ),
            [name],
            model_row,
        )
        .optional()?;
    Ok(with_aliases(c, row.into_iter().collect())?.pop())
}

/// The latest version of model `name` that a run of the workflow itself made (not a tuning
/// trial's: experiments move no signal), for the signal board.
pub fn latest_model_of_workflow(c: &Connection, name: &str) -> Result<Option<ModelRow>> {
    let row = c
        .query_row(
            &format!(
                "SELECT {MODEL_COLS} FROM models WHERE name = ?1 AND run_id NOT IN ({})
                 ORDER BY version DESC LIMIT 1",
                tuning::TRIAL_RUN_IDS
            ),
            [name],
            model_row,
        )
        .optional()?;
    Ok(with_aliases(c, row.into_iter().collect())?.pop())
}

/// The model an alias points at, and the one it pointed at before.
pub fn alias(c: &Connection, scope: &str, alias: &str) -> Result<Option<(i64, Option<i64>)>> {
    Ok(c.query_row(
        "SELECT model_id, previous_model_id FROM model_aliases WHERE scope = ?1 AND alias = ?2",
        params![scope, alias],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?)
}

/// Points an alias at a model, remembering where it pointed before.
pub fn set_alias(
    c: &Connection,
    scope: &str,
    alias_name: &str,
    model_id: i64,
    previous: Option<i64>,
    now: Millis,
) -> Result<()> {
    c.prepare_cached("INSERT INTO model_aliases (scope, alias, model_id, previous_model_id, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(scope, alias) DO UPDATE SET model_id = ?3, previous_model_id = ?4, updated_ms = ?5")?.execute(
        params![scope, alias_name, model_id, previous, now],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Services

/// A service's recorded state.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceRow {
    /// Its name.
    pub name: String,
    /// Desired replicas.
    pub replicas: i64,
    /// Minimum.
    pub min_replicas: i64,
    /// Maximum.
    pub max_replicas: i64,
}

/// Records a service if new (at its minimum replicas), updating its bounds.
pub fn ensure_service(c: &Connection, name: &str, min: i64, max: i64, now: Millis) -> Result<()> {
    c.prepare_cached("INSERT INTO services (name, replicas, min_replicas, max_replicas, updated_ms) VALUES (?1, ?2, ?2, ?3, ?4)
         ON CONFLICT(name) DO UPDATE SET min_replicas = ?2, max_replicas = ?3,
           replicas = MAX(?2, MIN(?3, replicas))")?.execute(
        params![name, min, max, now],
    )?;
    Ok(())
}

/// A service.
pub fn service(c: &Connection, name: &str) -> Result<Option<ServiceRow>> {
    Ok(c.query_row(
        "SELECT name, replicas, min_replicas, max_replicas FROM services WHERE name = ?1",
        [name],
        |r| {
            Ok(ServiceRow {
                name: r.get(0)?,
                replicas: r.get(1)?,
                min_replicas: r.get(2)?,
                max_replicas: r.get(3)?,
            })
        },
    )
    .optional()?)
}

/// Every service.
pub fn services(c: &Connection) -> Result<Vec<ServiceRow>> {
    let mut st =
        c.prepare("SELECT name, replicas, min_replicas, max_replicas FROM services ORDER BY name")?;
    let rows = st.query_map([], |r| {
        Ok(ServiceRow {
            name: r.get(0)?,
            replicas: r.get(1)?,
            min_replicas: r.get(2)?,
            max_replicas: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Sets a service's desired replicas.
pub fn set_replicas(c: &Connection, name: &str, replicas: i64, now: Millis) -> Result<()> {
    c.prepare_cached("UPDATE services SET replicas = ?2, updated_ms = ?3 WHERE name = ?1")?
        .execute(params![name, replicas, now])?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Events

/// An event.
#[derive(Clone, Debug, Serialize)]
pub struct EventRow {
    /// Its id (events are ordered by it).
    pub id: i64,
    /// When it happened.
    pub ts_ms: Millis,
    /// What it is about.
    pub subject: String,
    /// What happened.
    pub name: String,
    /// Details.
    pub payload: Json,
}

/// Records an event.
pub fn insert_event(
    c: &Connection,
    subject: &str,
    name: &str,
    payload: &Json,
    now: Millis,
) -> Result<i64> {
    c.prepare_cached("INSERT INTO events (ts_ms, subject, name, payload) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![now, subject, name, payload.to_string()])?;
    Ok(c.last_insert_rowid())
}

/// Events after `after`, oldest first.
pub fn events(c: &Connection, after: i64, limit: i64) -> Result<Vec<EventRow>> {
    let mut st = c.prepare(
        "SELECT id, ts_ms, subject, name, payload FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = st.query_map(params![after, limit], |r| {
        Ok(EventRow {
            id: r.get(0)?,
            ts_ms: r.get(1)?,
            subject: r.get(2)?,
            name: r.get(3)?,
            payload: json_col(r, 4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ---------------------------------------------------------------------------------------------
// Firings and decisions

/// A firing of a trigger or policy.
#[derive(Clone, Debug, Serialize)]
pub struct FiringRow {
    /// Its idempotency key.
    pub key: String,
    /// `trigger` or `policy`.
    pub source: String,
    /// The trigger or policy.
    pub name: String,
    /// When it was recorded.
    pub created_ms: Millis,
    /// `pending`, `done` or `failed`.
    pub status: String,
    /// The values that decided it.
    pub reads: Json,
    /// How many actions it has.
    pub actions: i64,
    /// The first action not yet performed.
    pub next_action: i64,
}

const FIRING_COLS: &str = "key, source, name, created_ms, status, reads, actions, next_action";

fn firing_row(r: &Row<'_>) -> rusqlite::Result<FiringRow> {
    Ok(FiringRow {
        key: r.get(0)?,
        source: r.get(1)?,
        name: r.get(2)?,
        created_ms: r.get(3)?,
        status: r.get(4)?,
        reads: json_col(r, 5)?,
        actions: r.get(6)?,
        next_action: r.get(7)?,
    })
}

/// Records a firing before anything is done for it; `false` if the key was already recorded
/// (the firing happened before: do nothing).
pub fn insert_firing(
    c: &Connection,
    key: &str,
    source: &str,
    name: &str,
    reads: &Json,
    actions: i64,
    now: Millis,
) -> Result<bool> {
    let n = c.prepare_cached("INSERT OR IGNORE INTO firings (key, source, name, created_ms, status, reads, actions) VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6)")?.execute(
        params![key, source, name, now, reads.to_string(), actions],
    )?;
    Ok(n == 1)
}

/// One firing.
pub fn firing(c: &Connection, key: &str) -> Result<Option<FiringRow>> {
    Ok(c.query_row(
        &format!("SELECT {FIRING_COLS} FROM firings WHERE key = ?1"),
        [key],
        firing_row,
    )
    .optional()?)
}

/// Firings not finished (to reconcile on start).
pub fn pending_firings(c: &Connection) -> Result<Vec<FiringRow>> {
    let mut st = c.prepare(&format!(
        "SELECT {FIRING_COLS} FROM firings WHERE status = 'pending' ORDER BY created_ms, key"
    ))?;
    let rows = st.query_map([], firing_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every firing of a source, oldest first.
pub fn firings_of(c: &Connection, source: &str, name: &str) -> Result<Vec<FiringRow>> {
    let mut st = c.prepare(&format!("SELECT {FIRING_COLS} FROM firings WHERE source = ?1 AND name = ?2 ORDER BY created_ms, key"))?;
    let rows = st.query_map(params![source, name], firing_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records that action `index` of a firing was performed (or failed), in the transaction
/// that performed it.
pub fn advance_firing(
    c: &Connection,
    key: &str,
    next: i64,
    status: &str,
    now: Millis,
) -> Result<()> {
    let finished = (status != "pending").then_some(now);
    c.prepare_cached(
        "UPDATE firings SET next_action = ?2, status = ?3, finished_ms = ?4 WHERE key = ?1",
    )?
    .execute(params![key, next, status, finished])?;
    Ok(())
}

/// An entry of the decisions audit log.
#[derive(Clone, Debug, Serialize)]
pub struct DecisionRow {
    /// Its id.
    pub id: i64,
    /// When.
    pub ts_ms: Millis,
    /// `trigger` or `policy`.
    pub source: String,
    /// Which.
    pub name: String,
    /// The firing.
    pub firing_key: Option<String>,
    /// The values it read.
    pub reads: Json,
    /// The action.
    pub action: String,
    /// `done`, `failed` or `skipped`.
    pub status: String,
    /// What came of it.
    pub result: String,
}

/// Appends to the audit log.
#[allow(clippy::too_many_arguments)]
pub fn insert_decision(
    c: &Connection,
    source: &str,
    name: &str,
    firing_key: Option<&str>,
    reads: &Json,
    action: &str,
    status: &str,
    result: &str,
    now: Millis,
) -> Result<i64> {
    c.prepare_cached("INSERT INTO decisions (ts_ms, source, name, firing_key, reads, action, status, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?.execute(
        params![now, source, name, firing_key, reads.to_string(), action, status, result],
    )?;
    Ok(c.last_insert_rowid())
}

/// The audit log, newest first.
pub fn decisions(c: &Connection, limit: i64) -> Result<Vec<DecisionRow>> {
    let mut st = c.prepare("SELECT id, ts_ms, source, name, firing_key, reads, action, status, result FROM decisions ORDER BY id DESC LIMIT ?1")?;
    let rows = st.query_map([limit], |r| {
        Ok(DecisionRow {
            id: r.get(0)?,
            ts_ms: r.get(1)?,
            source: r.get(2)?,
            name: r.get(3)?,
            firing_key: r.get(4)?,
            reads: json_col(r, 5)?,
            action: r.get(6)?,
            status: r.get(7)?,
            result: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ---------------------------------------------------------------------------------------------
// Published agent actions

/// An action published for an external agent implementation.
#[derive(Clone, Debug, Serialize)]
pub struct AgentActionRow {
    /// Its id (read them in order with `?after=`).
    pub id: i64,
    /// When.
    pub ts_ms: Millis,
    /// The agent.
    pub agent: String,
    /// The action.
    pub action: String,
    /// Its arguments.
    pub args: Json,
    /// The firing action it performs (an idempotency key for the implementation).
    pub firing_key: Option<String>,
}

/// Publishes an action.
pub fn insert_agent_action(
    c: &Connection,
    agent: &str,
    action: &str,
    args: &Json,
    firing_key: Option<&str>,
    now: Millis,
) -> Result<i64> {
    c.prepare_cached("INSERT INTO agent_actions (ts_ms, agent, action, args, firing_key) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(
        params![now, agent, action, args.to_string(), firing_key],
    )?;
    Ok(c.last_insert_rowid())
}

/// Published actions of an agent after `after`.
pub fn agent_actions(c: &Connection, agent: &str, after: i64) -> Result<Vec<AgentActionRow>> {
    let mut st = c.prepare("SELECT id, ts_ms, agent, action, args, firing_key FROM agent_actions WHERE agent = ?1 AND id > ?2 ORDER BY id")?;
    let rows = st.query_map(params![agent, after], |r| {
        Ok(AgentActionRow {
            id: r.get(0)?,
            ts_ms: r.get(1)?,
            agent: r.get(2)?,
            action: r.get(3)?,
            args: json_col(r, 4)?,
            firing_key: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ---------------------------------------------------------------------------------------------
// Signals and small state

/// Records a signal's value.
pub fn set_signal(c: &Connection, key: &str, value: &Json, now: Millis) -> Result<()> {
    c.prepare_cached("INSERT INTO signals (key, value, updated_ms) VALUES (?1, ?2, ?3) ON CONFLICT(key) DO UPDATE SET value = ?2, updated_ms = ?3")?.execute(
        params![key, value.to_string(), now],
    )?;
    Ok(())
}

/// Every recorded signal.
pub fn signals(c: &Connection) -> Result<Vec<(String, Json, Millis)>> {
    let mut st = c.prepare("SELECT key, value, updated_ms FROM signals ORDER BY key")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, json_col(r, 1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A small piece of state.
pub fn kv_get(c: &Connection, key: &str) -> Result<Option<Json>> {
    let text: Option<String> = c
        .query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
        .optional()?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

/// Sets a small piece of state.
pub fn kv_set(c: &Connection, key: &str, value: &Json) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO kv (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
    )?
    .execute(params![key, value.to_string()])?;
    Ok(())
}
