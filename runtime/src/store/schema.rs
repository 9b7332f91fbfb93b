//! The store's schema, as numbered migrations. `PRAGMA user_version` records how many have
//! been applied; each runs once, in its own transaction, in order. Never edit a migration that
//! has shipped: add the next one.

/// The migrations, in order: migration `i` brings the schema to version `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    r#"
CREATE TABLE apps (
  name             TEXT PRIMARY KEY,
  source           TEXT NOT NULL,
  plan_sha256      TEXT NOT NULL,
  plan             TEXT NOT NULL,
  first_started_ms INTEGER NOT NULL,
  last_started_ms  INTEGER NOT NULL
);

CREATE TABLE workflow_runs (
  id          INTEGER PRIMARY KEY,
  app         TEXT NOT NULL,
  workflow    TEXT NOT NULL,
  status      TEXT NOT NULL,            -- running | succeeded | failed
  origin      TEXT NOT NULL,            -- cli | api | trigger:NAME | policy:NAME | agent:A.ACTION
  firing_key  TEXT UNIQUE,              -- the firing action that started it (exactly once)
  created_ms  INTEGER NOT NULL,
  finished_ms INTEGER,
  error       TEXT,
  dir         TEXT NOT NULL,
  resumed     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX workflow_runs_by_workflow ON workflow_runs(workflow, id);

CREATE TABLE params (
  run_id INTEGER NOT NULL REFERENCES workflow_runs(id),
  name   TEXT NOT NULL,
  type   TEXT NOT NULL,
  value  TEXT NOT NULL,                 -- the text the step gets (SFLOW_PARAM_*)
  json   TEXT NOT NULL,                 -- the typed value
  PRIMARY KEY (run_id, name)
);

CREATE TABLE step_runs (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES workflow_runs(id),
  step        TEXT NOT NULL,
  attempt     INTEGER NOT NULL,         -- 1, 2, … (0 for cached and skipped steps)
  status      TEXT NOT NULL,            -- running | succeeded | failed | cached | skipped | interrupted
  started_ms  INTEGER NOT NULL,
  finished_ms INTEGER,
  exit_code   INTEGER,
  error       TEXT,
  dir         TEXT,
  stdout      TEXT,
  stderr      TEXT,
  pid         INTEGER,                  -- the attempt's process (and process group)
  pid_start   TEXT,                     -- its start time in /proc, to tell it from a reused pid
  cache_key   TEXT,
  cached_from INTEGER REFERENCES step_runs(id)
);
CREATE INDEX step_runs_by_run ON step_runs(run_id, step);
CREATE INDEX step_runs_by_cache_key ON step_runs(cache_key);

CREATE TABLE metrics (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES workflow_runs(id),
  step_run_id INTEGER NOT NULL REFERENCES step_runs(id),
  workflow    TEXT NOT NULL,
  step        TEXT NOT NULL,
  name        TEXT NOT NULL,
  type        TEXT NOT NULL,
  value       REAL,                     -- numbers and bools (0/1); durations in seconds
  json        TEXT NOT NULL,            -- the typed value
  seq         INTEGER NOT NULL,         -- position in the step's report (JSON lines give series)
  ts_ms       INTEGER NOT NULL
);
CREATE INDEX metrics_series ON metrics(workflow, step, name, ts_ms);
CREATE INDEX metrics_by_step_run ON metrics(step_run_id);

CREATE TABLE artifacts (
  id          INTEGER PRIMARY KEY,
  run_id      INTEGER NOT NULL REFERENCES workflow_runs(id),
  step_run_id INTEGER NOT NULL REFERENCES step_runs(id),
  step        TEXT NOT NULL,
  name        TEXT NOT NULL,
  type        TEXT NOT NULL,
  path        TEXT NOT NULL,
  sha256      TEXT NOT NULL,
  size        INTEGER NOT NULL,
  created_ms  INTEGER NOT NULL
);
CREATE INDEX artifacts_by_run ON artifacts(run_id, step);

CREATE TABLE models (
  id          INTEGER PRIMARY KEY,
  name        TEXT NOT NULL,            -- WORKFLOW.STEP.OUTPUT
  version     INTEGER NOT NULL,
  run_id      INTEGER NOT NULL REFERENCES workflow_runs(id),
  artifact_id INTEGER REFERENCES artifacts(id),
  path        TEXT NOT NULL,
  sha256      TEXT NOT NULL,
  size        INTEGER NOT NULL,
  metrics     TEXT NOT NULL,            -- JSON object of the producing step's metrics
  lineage     TEXT NOT NULL,            -- JSON: run, step, params, input artifacts
  created_ms  INTEGER NOT NULL,
  UNIQUE (name, version)
);

CREATE TABLE model_aliases (
  scope             TEXT NOT NULL,      -- the service (or model) the alias belongs to
  alias             TEXT NOT NULL,      -- production, …
  model_id          INTEGER NOT NULL REFERENCES models(id),
  previous_model_id INTEGER REFERENCES models(id),
  updated_ms        INTEGER NOT NULL,
  PRIMARY KEY (scope, alias)
);

CREATE TABLE services (
  name         TEXT PRIMARY KEY,
  replicas     INTEGER NOT NULL,        -- desired replicas (the local backend records them)
  min_replicas INTEGER NOT NULL,
  max_replicas INTEGER NOT NULL,
  updated_ms   INTEGER NOT NULL
);

CREATE TABLE events (
  id      INTEGER PRIMARY KEY,
  ts_ms   INTEGER NOT NULL,
  subject TEXT NOT NULL,                -- training, predictor, …
  name    TEXT NOT NULL,                -- succeeded, model.replaced, …
  payload TEXT NOT NULL
);

CREATE TABLE firings (
  key         TEXT PRIMARY KEY,         -- the idempotency key
  source      TEXT NOT NULL,            -- trigger | policy
  name        TEXT NOT NULL,
  created_ms  INTEGER NOT NULL,
  status      TEXT NOT NULL,            -- pending | done | failed
  reads       TEXT NOT NULL,            -- JSON: the values that decided it
  actions     INTEGER NOT NULL,
  next_action INTEGER NOT NULL DEFAULT 0,
  finished_ms INTEGER
);
CREATE INDEX firings_pending ON firings(status);

CREATE TABLE decisions (
  id         INTEGER PRIMARY KEY,
  ts_ms      INTEGER NOT NULL,
  source     TEXT NOT NULL,             -- trigger | policy
  name       TEXT NOT NULL,
  firing_key TEXT,
  reads      TEXT NOT NULL,
  action     TEXT NOT NULL,
  status     TEXT NOT NULL,             -- done | failed | skipped
  result     TEXT NOT NULL
);

CREATE TABLE agent_actions (
  id         INTEGER PRIMARY KEY,
  ts_ms      INTEGER NOT NULL,
  agent      TEXT NOT NULL,
  action     TEXT NOT NULL,
  args       TEXT NOT NULL,
  firing_key TEXT UNIQUE
);

CREATE TABLE signals (
  key        TEXT PRIMARY KEY,          -- agent.sensor, service.latency.p95, …
  value      TEXT NOT NULL,
  updated_ms INTEGER NOT NULL
);

CREATE TABLE kv (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
"#,
    // 2: MLflow. What steps log through the MLflow REST API the control API serves (metrics
    // until the attempt ends and the contract checks them; params and tags as sent), and the
    // mirror's record of what it has sent to each tracking server (its outbox is the store
    // itself: cursors and this map say how far each server is).
    r#"
CREATE TABLE step_logged (
  id          INTEGER PRIMARY KEY,
  step_run_id INTEGER NOT NULL REFERENCES step_runs(id),
  kind        TEXT NOT NULL,            -- metric | param | tag
  key         TEXT NOT NULL,
  value       TEXT NOT NULL,            -- metrics: the number as text
  step        INTEGER NOT NULL DEFAULT 0,
  ts_ms       INTEGER NOT NULL
);
CREATE INDEX step_logged_by_step_run ON step_logged(step_run_id, kind, id);

CREATE TABLE mlflow_map (
  target     TEXT NOT NULL,             -- the tracking server's URI
  kind       TEXT NOT NULL,             -- experiment | run | step | model | version | alias
  local      TEXT NOT NULL,             -- the local id or name
  remote     TEXT,                      -- MLflow's id; NULL while a create may be in flight
  state      TEXT NOT NULL DEFAULT '',  -- what was last mirrored (a status, an alias target)
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (target, kind, local)
);
"#,
    // 3: hyper-parameter tuning (`Improver.tune`). One row per tuning action (keyed by its
    // idempotency key) and one per trial; a trial's run is keyed `ACTION#trial-N` in
    // `workflow_runs.firing_key`, so a resumed tuning finds its runs instead of starting others.
    r#"
CREATE TABLE tunings (
  action_key  TEXT PRIMARY KEY,         -- the Improver.tune action's idempotency key
  agent       TEXT NOT NULL,
  workflow    TEXT NOT NULL,            -- the retrain workflow
  objective   TEXT NOT NULL,            -- WORKFLOW.STEP.METRIC
  direction   TEXT NOT NULL,            -- maximize | minimize
  strategy    TEXT NOT NULL,            -- random | tpe
  options     TEXT NOT NULL,            -- JSON: strategy options, parallel, seed, the space
  trials      INTEGER NOT NULL,         -- the budget
  status      TEXT NOT NULL,            -- running | done
  best_trial  INTEGER,
  result      TEXT,
  created_ms  INTEGER NOT NULL,
  finished_ms INTEGER
);

CREATE TABLE tuning_trials (
  action_key  TEXT NOT NULL REFERENCES tunings(action_key),
  trial       INTEGER NOT NULL,         -- 1, 2, …
  run_id      INTEGER REFERENCES workflow_runs(id),
  proposed_by TEXT NOT NULL,            -- random | tpe:startup | tpe
  params      TEXT NOT NULL,            -- JSON object: the tuned params' values
  point       TEXT NOT NULL,            -- JSON: the search's coordinates of them
  objective   REAL,
  status      TEXT NOT NULL,            -- running | succeeded | failed
  error       TEXT,
  started_ms  INTEGER NOT NULL,
  finished_ms INTEGER,
  PRIMARY KEY (action_key, trial)
);
CREATE INDEX tuning_trials_by_run ON tuning_trials(run_id);
"#,
];
