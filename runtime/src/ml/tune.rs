//! `Improver.tune(trials)`: a hyper-parameter search over the `retrain` workflow.
//!
//! 1. **Set up** from the plan: the `objective` (`maximize(W.STEP.METRIC)` or `minimize(…)`,
//!    a step metric of the retrain workflow), the `search` strategy (`random_search()` or
//!    `tpe(startup, gamma, candidates)`, [`crate::tune`]), `parallel` (trials at once) and
//!    the space: every param of the workflow declared with `in SPACE`; the others keep their
//!    defaults. A plan without an objective (a hand-written `plan.json`) fails clearly.
//! 2. **Search** in waves of `parallel` trials: each wave is proposed from the trials completed
//!    before it (seeded by the action's key, trial `i` from its own random stream), recorded
//!    in `tuning_trials` *before* its runs start, then run as runs of the retrain workflow
//!    with the proposed params, keyed `ACTION#trial-N` (a resumed tuning finds its trials
//!    and runs instead of starting others). The local backend's step semaphore bounds the
//!    processes of all runs together. The runs get the Improver's accumulated labelled data
//!    (`SFLOW_INPUT_LABELLED`) when it has any, as `improve`'s retraining does.
//! 3. **Measure** each trial by the objective metric its run recorded (the last point of the
//!    step's report). A failed run, or one without the metric, is a failed trial: recorded,
//!    and the search goes on (failed trials are not observations of the model).
//! 4. **Record** (with the firing, [`Effect::Signals`]): `AGENT.candidate` = the model the best
//!    trial's run registered, with that run's metric record, so the usual policies
//!    (`improver.candidate.accuracy > predictor.model.accuracy`) decide whether it is served;
//!    the event `AGENT.tuned` (or `AGENT.tuning_failed` when every trial failed) with the
//!    summary; and an audit result that names the best trial and compares it with the latest
//!    run of the workflow with its default params, if there is one.

use crate::engine::{model_value, Effect, Hold, Shared};
use crate::ml::improver::{self, ImproverState};
use crate::ml::support;
use crate::store::{self, tuning as records};
use crate::tune::{self, Coord, Dimension, Direction, Domain, Observation, Space, Strategy};
use crate::value::RtValue;
use serde_json::{json, Map, Value as Json};
use sflow_compiler::lower::plan::{Expr, PlanType, SearchSpace, Signal, Value, WorkflowPlan};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the objective is: a step metric of the retrain workflow and a direction.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    /// The workflow.
    pub workflow: String,
    /// The step.
    pub step: String,
    /// The metric.
    pub metric: String,
    /// `maximize` or `minimize`.
    pub direction: Direction,
}

impl Objective {
    /// `WORKFLOW.STEP.METRIC`.
    pub fn name(&self) -> String {
        format!("{}.{}.{}", self.workflow, self.step, self.metric)
    }
}

/// A tuned param: its name and, for a choice, the values by index.
#[derive(Clone, Debug)]
struct Tuned {
    name: String,
    choices: Vec<RtValue>,
}

/// Everything a tuning needs from the plan.
struct Setup {
    retrain: String,
    objective: Objective,
    strategy: Strategy,
    parallel: usize,
    space: Space,
    tuned: Vec<Tuned>,
}

/// `Improver.tune(trials)` (see the module documentation).
pub async fn tune(
    shared: &Arc<Shared>,
    agent: &str,
    values: &BTreeMap<String, RtValue>,
    action_key: &str,
) -> Result<Effect, String> {
    let trials = match values.get("trials") {
        Some(RtValue::Int { value }) if *value >= 1 => *value,
        Some(RtValue::Int { value }) => {
            return Err(format!("`trials` must be at least 1, got {value}"))
        }
        _ => return Err("the `trials` argument is not an int".into()),
    };
    let setup = setup(shared, agent)?;
    let lock = support::agent_lock::<ImproverState>(shared, agent);
    let own = lock.lock_owned().await;
    let seed = support::seed_of(action_key);
    let now = shared.clock().now_ms();
    let options = json!({
        "strategy": strategy_json(&setup.strategy),
        "parallel": setup.parallel,
        "seed": seed,
        "space": space_json(&setup.space),
        "env": labelled_env(shared, agent)?,
    });
    // Recorded once: a resumed tuning keeps the environment it started with (the labelled
    // data of that moment), even if an improvement ran in between.
    let recorded = shared
        .store()
        .with(|c| {
            records::insert_tuning(
                c,
                &records::NewTuning {
                    action_key,
                    agent,
                    workflow: &setup.retrain,
                    objective: &setup.objective.name(),
                    direction: setup.objective.direction.name(),
                    strategy: setup.strategy.name(),
                    options: &options,
                    trials,
                },
                now,
            )?;
            records::tuning(c, action_key)
        })
        .map_err(|e| e.to_string())?;
    let env: BTreeMap<String, String> = recorded
        .and_then(|t| serde_json::from_value(t.options.get("env")?.clone()).ok())
        .unwrap_or_default();
    search(shared, agent, action_key, &setup, trials, seed, &env).await?;

    let Summary {
        set,
        events,
        result,
        best_trial,
    } = summarize(shared, agent, action_key, &setup)?;
    let now = shared.clock().now_ms();
    shared
        .store()
        .with(|c| records::finish_tuning(c, action_key, best_trial, &result, now))
        .map_err(|e| e.to_string())?;
    Ok(Effect::Signals {
        set,
        kv: Vec::new(),
        events,
        refresh_services: Vec::new(),
        result,
        hold: Some(Hold(Arc::new(own))),
    })
}

/// What a finished tuning records: the candidate, the event and the audit result.
struct Summary {
    set: Vec<(String, RtValue)>,
    events: Vec<(String, String, Json)>,
    result: String,
    best_trial: Option<i64>,
}

/// The best trial becomes the candidate; the result compares it with the default params.
fn summarize(
    shared: &Shared,
    agent: &str,
    action_key: &str,
    setup: &Setup,
) -> Result<Summary, String> {
    let rows = shared
        .store()
        .with(|c| records::trials_of(c, action_key))
        .map_err(|e| e.to_string())?;
    let direction = setup.objective.direction;
    let best = rows
        .iter()
        .filter(|r| r.status == "succeeded")
        .filter_map(|r| Some((r, r.objective?, r.run_id?)))
        .fold(None::<(&records::TrialRow, f64, i64)>, |acc, x| match acc {
            Some(a) if !direction.better(x.1, a.1) => Some(a),
            _ => Some(x),
        });
    let failed = rows.iter().filter(|r| r.status == "failed").count();
    let baseline = default_objective(shared, setup);
    let head = format!(
        "{} trials ({}, {} at a time) of `{}`",
        rows.len(),
        setup.strategy.name(),
        setup.parallel,
        setup.retrain
    );
    let metric = &setup.objective.metric;
    let mut set = Vec::new();
    let mut events = Vec::new();
    let trials_json: Vec<Json> = rows.iter().map(trial_json).collect();
    let result = match best {
        Some((row, value, run)) => {
            let model = improver::candidate_of(shared, &setup.retrain, run);
            let default_note = match &baseline {
                Some((r, v)) => format!(
                    "; default params (run {r}): {metric} {}{}",
                    tune::format_number(*v),
                    if direction.better(value, *v) {
                        " → the best trial is better"
                    } else {
                        " → the best trial is not better"
                    }
                ),
                None => format!(
                    "; no run of `{}` with its default params to compare with",
                    setup.retrain
                ),
            };
            let failed_note = if failed > 0 {
                format!("; {failed} failed")
            } else {
                String::new()
            };
            let best_text = format!(
                "best #{} (run {run}) {}: {metric} {}",
                row.trial,
                describe_params(&row.params, &setup.tuned),
                tune::format_number(value)
            );
            match model {
                Ok(m) => {
                    let candidate = model_value(&m);
                    set.push((format!("{agent}.candidate"), candidate));
                    events.push((
                        agent.to_string(),
                        "tuned".to_string(),
                        json!({
                            "objective": setup.objective.name(), "direction": direction.name(),
                            "strategy": setup.strategy.name(), "parallel": setup.parallel,
                            "trials": trials_json, "failed": failed,
                            "best": { "trial": row.trial, "run": run, "params": row.params, "objective": value,
                                      "model": m.name, "version": m.version, "modelId": m.id },
                            "default": baseline.map(|(r, v)| json!({ "run": r, "objective": v })),
                        }),
                    ));
                    format!(
                        "{head}: {best_text} → candidate {} v{}{default_note}{failed_note}",
                        m.name, m.version
                    )
                }
                Err(e) => {
                    events.push((
                        agent.to_string(),
                        "tuning_failed".to_string(),
                        json!({ "trials": trials_json, "error": e }),
                    ));
                    format!("{head}: {best_text}, but {e}: no candidate{default_note}{failed_note}")
                }
            }
        }
        None => {
            // The distinct reasons (a trial's error without its run), most common first.
            let mut reasons: Vec<(String, Vec<i64>)> = Vec::new();
            for r in &rows {
                let Some(e) = &r.error else { continue };
                let e = abbreviate(
                    e.strip_prefix("run ")
                        .and_then(|x| x.split_once(": "))
                        .map_or(e.as_str(), |(_, rest)| rest),
                );
                match reasons.iter_mut().find(|(x, _)| *x == e) {
                    Some((_, ts)) => ts.push(r.trial),
                    None => reasons.push((e, vec![r.trial])),
                }
            }
            reasons.sort_by_key(|(_, ts)| std::cmp::Reverse(ts.len()));
            let why = reasons
                .iter()
                .take(2)
                .map(|(e, ts)| format!("{} of them: {e}", ts.len()))
                .collect::<Vec<_>>()
                .join("; ");
            events.push((
                agent.to_string(),
                "tuning_failed".to_string(),
                json!({ "trials": trials_json, "error": "every trial failed" }),
            ));
            format!("{head}: every trial failed ({why}): no candidate")
        }
    };
    Ok(Summary {
        set,
        events,
        result,
        best_trial: best.map(|(r, _, _)| r.trial),
    })
}

/// Runs the trials not run yet, in waves of `parallel`.
async fn search(
    shared: &Arc<Shared>,
    agent: &str,
    action_key: &str,
    setup: &Setup,
    trials: i64,
    seed: u64,
    env: &BTreeMap<String, String>,
) -> Result<(), String> {
    let store = shared.store();
    let origin = records::trial_origin(agent);
    let mut next: i64 = 0;
    while next < trials {
        let end = (next + setup.parallel as i64).min(trials);
        let recorded = store
            .with(|c| records::trials_of(c, action_key))
            .map_err(|e| e.to_string())?;
        // The wave's proposals come from every trial before it.
        let history: Vec<Observation> = recorded
            .iter()
            .filter(|r| r.trial <= next && r.status == "succeeded")
            .filter_map(|r| {
                Some(Observation {
                    point: serde_json::from_value(r.point.clone()).ok()?,
                    loss: setup.objective.direction.loss(r.objective?),
                })
            })
            .collect();
        let mut wave = Vec::new();
        for n in next + 1..=end {
            let row = match recorded.iter().find(|r| r.trial == n) {
                Some(r) => r.clone(),
                None => {
                    let p = tune::propose(
                        &setup.strategy,
                        &setup.space,
                        &history,
                        seed,
                        (n - 1) as u64,
                    );
                    let params = values_of(&p.point, &setup.tuned)?;
                    let plain: Map<String, Json> = params
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_json()))
                        .collect();
                    let point = serde_json::to_value(&p.point).map_err(|e| e.to_string())?;
                    let now = shared.clock().now_ms();
                    store
                        .with(|c| {
                            records::insert_trial(
                                c,
                                action_key,
                                n,
                                p.how.label(),
                                &Json::Object(plain),
                                &point,
                                now,
                            )?;
                            records::trials_of(c, action_key)
                        })
                        .map_err(|e| e.to_string())?
                        .into_iter()
                        .find(|r| r.trial == n)
                        .ok_or_else(|| format!("trial {n} was not recorded"))?
                }
            };
            wave.push(row);
        }
        // Start the wave's runs (a resumed tuning finds them by key).
        let mut running = Vec::new();
        for row in wave.iter().filter(|r| r.status == "running") {
            let started = serde_json::from_value::<Vec<Coord>>(row.point.clone())
                .map_err(|e| format!("its recorded point is unreadable: {e}"))
                .and_then(|p| values_of(&p, &setup.tuned))
                .and_then(|overrides| {
                    shared
                        .start_action_run_with(
                            &setup.retrain,
                            overrides,
                            &origin,
                            &trial_key(action_key, row.trial),
                            env,
                        )
                        .map_err(|e| e.to_string())
                });
            match started {
                Ok(run) => {
                    store
                        .with(|c| records::set_trial_run(c, action_key, row.trial, run))
                        .map_err(|e| e.to_string())?;
                    running.push((row.trial, run));
                }
                Err(e) => {
                    let now = shared.clock().now_ms();
                    let msg = format!("cannot start `{}`: {e}", setup.retrain);
                    store
                        .with(|c| {
                            records::finish_trial(
                                c,
                                action_key,
                                row.trial,
                                "failed",
                                None,
                                Some(&msg),
                                now,
                            )
                        })
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        // Wait for them and measure.
        for (n, run) in running {
            let row = shared
                .wait_run(run)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| {
                    format!("the runtime stopped while trial {n} (run {run}) was running")
                })?;
            let (status, objective, error) = if row.status == "succeeded" {
                match objective_of_run(shared, run, &setup.objective) {
                    Ok(v) => ("succeeded", Some(v), None),
                    Err(e) => ("failed", None, Some(e)),
                }
            } else {
                (
                    "failed",
                    None,
                    Some(format!(
                        "run {run} {}: {}",
                        row.status,
                        row.error.unwrap_or_default()
                    )),
                )
            };
            tracing::info!(
                agent,
                trial = n,
                of = trials,
                run,
                status,
                objective,
                "tuning trial finished"
            );
            let now = shared.clock().now_ms();
            store
                .with(|c| {
                    records::finish_trial(
                        c,
                        action_key,
                        n,
                        status,
                        objective,
                        error.as_deref(),
                        now,
                    )
                })
                .map_err(|e| e.to_string())?;
        }
        next = end;
    }
    Ok(())
}

/// The run key of trial `n` of a tuning.
pub fn trial_key(action_key: &str, n: i64) -> String {
    format!("{action_key}#trial-{n}")
}

fn setup(shared: &Shared, agent: &str) -> Result<Setup, String> {
    let retrain = match support::config(shared, agent, "retrain")? {
        RtValue::Ref { name, .. } => name,
        other => return Err(format!("`retrain` is not a workflow: {}", other.to_json())),
    };
    let a = shared
        .plan()
        .agent(agent)
        .ok_or_else(|| format!("no agent `{agent}`"))?;
    let objective = objective_of(a.config.get("objective"), agent)?;
    if objective.workflow != retrain {
        return Err(format!(
            "the objective `{}` is not a metric of the retrain workflow `{retrain}`",
            objective.name()
        ));
    }
    let strategy = match a.config.get("search") {
        Some(_) => strategy_of(&support::config(shared, agent, "search")?)?,
        None => Strategy::Tpe(tune::TpeOptions::default()),
    };
    strategy.validate().map_err(|e| e.to_string())?;
    let parallel = match a.config.get("parallel") {
        Some(_) => match support::config(shared, agent, "parallel")? {
            RtValue::Int { value } if value >= 1 => value as usize,
            other => {
                return Err(format!(
                    "`parallel` must be an int of at least 1, got {}",
                    other.to_json()
                ))
            }
        },
        None => 2,
    };
    let wf = shared
        .plan()
        .workflow(&retrain)
        .ok_or_else(|| format!("no workflow `{retrain}`"))?;
    let (space, tuned) = space_of(wf)?;
    Ok(Setup {
        retrain,
        objective,
        strategy,
        parallel,
        space,
        tuned,
    })
}

/// The objective of an Improver's `objective` config (`std.prelude.maximize(metric = …)`).
pub fn objective_of(e: Option<&Expr>, agent: &str) -> Result<Objective, String> {
    let Some(e) = e else {
        return Err(format!(
            "agent `{agent}` has no `objective`: `tune` needs one, e.g. `objective = maximize(training.fit.accuracy)` in the agent"
        ));
    };
    let Expr::Call { function, args, .. } = e else {
        return Err(format!(
            "the `objective` of `{agent}` is not `maximize(…)` or `minimize(…)`"
        ));
    };
    let direction = match function.rsplit('.').next() {
        Some("maximize") => Direction::Maximize,
        Some("minimize") => Direction::Minimize,
        _ => {
            return Err(format!(
            "the `objective` of `{agent}` is `{function}(…)`, not `maximize(…)` or `minimize(…)`"
        ))
        }
    };
    let signal = args.get("metric").or_else(|| args.values().next());
    match signal {
        Some(Expr::Signal {
            signal:
                Signal::StepMetric {
                    workflow,
                    step,
                    metric,
                },
            ..
        }) => Ok(Objective {
            workflow: workflow.clone(),
            step: step.clone(),
            metric: metric.clone(),
            direction,
        }),
        _ => Err(format!(
            "the `objective` of `{agent}` is not a step metric (`{}(WORKFLOW.STEP.METRIC)`)",
            direction.name()
        )),
    }
}

/// The strategy of a `search` config value (`std.prelude.tpe(startup = 10, …)`).
pub fn strategy_of(v: &RtValue) -> Result<Strategy, String> {
    let (function, args) =
        support::call_of(v).ok_or_else(|| "`search` is not a search strategy".to_string())?;
    let int = |k: &str, d: usize| -> Result<usize, String> {
        match args.get(k) {
            None => Ok(d),
            Some(RtValue::Int { value }) if *value >= 1 => Ok(*value as usize),
            Some(other) => Err(format!(
                "tpe's `{k}` must be an int of at least 1, got {}",
                other.to_json()
            )),
        }
    };
    match function.rsplit('.').next() {
        Some("random_search") => Ok(Strategy::Random),
        Some("tpe") => {
            let d = tune::TpeOptions::default();
            Ok(Strategy::Tpe(tune::TpeOptions {
                startup: int("startup", d.startup)?,
                gamma: args
                    .get("gamma")
                    .map_or(Some(d.gamma), RtValue::as_f64)
                    .ok_or("tpe's `gamma` is not a number")?,
                candidates: int("candidates", d.candidates)?,
            }))
        }
        _ => Err(format!(
            "`search = {function}(…)` is not a search strategy (random_search() or tpe(…))"
        )),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int { value } => Some(*value as f64),
        Value::Float { value } => Some(*value),
        _ => None,
    }
}

/// The search space of a workflow: its params declared `in SPACE`, in order.
fn space_of(wf: &WorkflowPlan) -> Result<(Space, Vec<Tuned>), String> {
    let mut dims = Vec::new();
    let mut tuned = Vec::new();
    for p in &wf.params {
        let Some(space) = &p.space else { continue };
        let int = p.ty == PlanType::Int;
        let bad = || {
            format!(
                "the search space of param `{}` of `{}` does not fit its type",
                p.name, wf.name
            )
        };
        let (domain, choices) = match space {
            SearchSpace::Range { min, max } => {
                let (lo, hi) = (number(min).ok_or_else(bad)?, number(max).ok_or_else(bad)?);
                if int {
                    (
                        Domain::Int {
                            min: lo.ceil() as i64,
                            max: hi.floor() as i64,
                            log: false,
                        },
                        Vec::new(),
                    )
                } else {
                    (
                        Domain::Float {
                            min: lo,
                            max: hi,
                            log: false,
                        },
                        Vec::new(),
                    )
                }
            }
            SearchSpace::Log { min, max } => {
                if int {
                    (
                        Domain::Int {
                            min: min.ceil() as i64,
                            max: max.floor() as i64,
                            log: true,
                        },
                        Vec::new(),
                    )
                } else {
                    (
                        Domain::Float {
                            min: *min,
                            max: *max,
                            log: true,
                        },
                        Vec::new(),
                    )
                }
            }
            SearchSpace::Choice { values } => (
                Domain::Choice { n: values.len() },
                values.iter().map(RtValue::from_plan).collect(),
            ),
        };
        dims.push(Dimension::new(p.name.clone(), domain));
        tuned.push(Tuned {
            name: p.name.clone(),
            choices,
        });
    }
    let space = Space::new(dims).map_err(|e| format!("workflow `{}`: {e}", wf.name))?;
    Ok((space, tuned))
}

/// The param values of a point.
fn values_of(point: &[Coord], tuned: &[Tuned]) -> Result<BTreeMap<String, RtValue>, String> {
    if point.len() != tuned.len() {
        return Err("the point does not fit the search space (did the program change?)".into());
    }
    let mut out = BTreeMap::new();
    for (c, t) in point.iter().zip(tuned) {
        let v =
            match c {
                Coord::Int(x) => RtValue::Int { value: *x },
                Coord::Float(x) => RtValue::Float { value: *x },
                Coord::Choice(i) => t.choices.get(*i).cloned().ok_or_else(|| {
                    format!("choice {i} of `{}` is not in its search space", t.name)
                })?,
            };
        out.insert(t.name.clone(), v);
    }
    Ok(out)
}

/// The objective's value in run `run`: the last point of the step's metric.
fn objective_of_run(shared: &Shared, run: i64, o: &Objective) -> Result<f64, String> {
    let metrics = shared
        .store()
        .with(|c| store::metrics_of_run(c, run))
        .map_err(|e| e.to_string())?;
    metrics
        .iter()
        .rev()
        .find(|m| m.step == o.step && m.name == o.metric)
        .and_then(|m| serde_json::from_value::<RtValue>(m.value.clone()).ok())
        .and_then(|v| v.as_f64())
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("run {run} recorded no `{}.{}`", o.step, o.metric))
}

/// The latest succeeded run of the retrain workflow with every param at its default (not a
/// trial), and its objective.
fn default_objective(shared: &Shared, setup: &Setup) -> Option<(i64, f64)> {
    let wf = shared.plan().workflow(&setup.retrain)?;
    let defaults: BTreeMap<String, Json> = wf
        .params
        .iter()
        .map(|p| {
            let d = p.default.as_ref()?;
            Some((
                p.name.clone(),
                serde_json::to_value(RtValue::from_plan(d)).ok()?,
            ))
        })
        .collect::<Option<_>>()?;
    let runs = shared.store().with(|c| store::runs(c, 10_000)).ok()?;
    runs.iter()
        .filter(|r| r.workflow == setup.retrain && r.status == "succeeded")
        .find_map(|r| {
            let is_trial = shared
                .store()
                .with(|c| records::trial_of_run(c, r.id))
                .ok()?
                .is_some();
            let params: BTreeMap<String, Json> = shared
                .store()
                .with(|c| store::params_of(c, r.id))
                .ok()?
                .into_iter()
                .map(|p| (p.name, p.json))
                .collect();
            if is_trial || params != defaults {
                return None;
            }
            Some((r.id, objective_of_run(shared, r.id, &setup.objective).ok()?))
        })
}

/// The Improver's accumulated labelled data, for the trials' runs (as `improve` retrains).
fn labelled_env(shared: &Shared, agent: &str) -> Result<BTreeMap<String, String>, String> {
    let labelled = shared
        .store()
        .with(|c| store::kv_get(c, &improver::labelled_key(agent)))
        .map_err(|e| e.to_string())?;
    let mut env = BTreeMap::new();
    if let Some(train) = labelled
        .as_ref()
        .and_then(|l| l.get("train"))
        .and_then(Json::as_str)
        .filter(|p| std::path::Path::new(p).is_dir())
    {
        env.insert("SFLOW_INPUT_LABELLED".to_string(), train.to_string());
    }
    Ok(env)
}

/// `lr=0.0031 epochs=2 arch=cnn`, in the order of the workflow's params.
fn describe_params(params: &Json, tuned: &[Tuned]) -> String {
    tuned
        .iter()
        .filter_map(|t| {
            let v = params.get(&t.name)?;
            Some(format!("{}={}", t.name, tune::describe_value(v)))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A long message cut in its middle (its start says what failed, its end why).
fn abbreviate(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 300 {
        return s.to_string();
    }
    let head: String = chars[..100].iter().collect();
    let tail: String = chars[chars.len() - 190..].iter().collect();
    format!("{head} … {tail}")
}

fn trial_json(r: &records::TrialRow) -> Json {
    json!({
        "trial": r.trial, "run": r.run_id, "params": r.params, "objective": r.objective,
        "status": r.status, "proposedBy": r.proposed_by, "error": r.error,
        "durationMs": r.finished_ms.map(|f| f - r.started_ms),
    })
}

fn strategy_json(s: &Strategy) -> Json {
    match s {
        Strategy::Random => json!({ "name": "random" }),
        Strategy::Tpe(o) => {
            json!({ "name": "tpe", "startup": o.startup, "gamma": o.gamma, "candidates": o.candidates })
        }
    }
}

fn space_json(s: &Space) -> Json {
    Json::Array(
        s.dims()
            .iter()
            .map(|d| match &d.domain {
                Domain::Int { min, max, log } => {
                    json!({ "param": d.name, "kind": if *log { "logInt" } else { "int" }, "min": min, "max": max })
                }
                Domain::Float { min, max, log } => {
                    json!({ "param": d.name, "kind": if *log { "log" } else { "float" }, "min": min, "max": max })
                }
                Domain::Choice { n } => json!({ "param": d.name, "kind": "choice", "n": n }),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(function: &str, args: BTreeMap<String, Expr>) -> Expr {
        Expr::Call {
            function: function.into(),
            args,
            ty: PlanType::Objective,
        }
    }

    fn metric() -> Expr {
        Expr::Signal {
            signal: Signal::StepMetric {
                workflow: "training".into(),
                step: "fit".into(),
                metric: "accuracy".into(),
            },
            ty: PlanType::Ratio,
        }
    }

    #[test]
    fn objectives_are_read_from_the_plan() {
        let o = objective_of(
            Some(&call(
                "std.prelude.minimize",
                BTreeMap::from([("metric".to_string(), metric())]),
            )),
            "improver",
        );
        assert_eq!(
            o,
            Ok(Objective {
                workflow: "training".into(),
                step: "fit".into(),
                metric: "accuracy".into(),
                direction: Direction::Minimize,
            })
        );
        let missing = objective_of(None, "improver").err().unwrap_or_default();
        assert!(missing.contains("has no `objective`"), "{missing}");
        let wrong = objective_of(Some(&call("std.prelude.tpe", BTreeMap::new())), "improver")
            .err()
            .unwrap_or_default();
        assert!(wrong.contains("not `maximize(…)`"), "{wrong}");
    }

    #[test]
    fn strategies_are_read_from_their_call_values() {
        let rec = |f: &str, args: &[(&str, RtValue)]| {
            let mut fields: BTreeMap<String, RtValue> = args
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect();
            fields.insert("function".into(), RtValue::String { value: f.into() });
            RtValue::Record { fields }
        };
        assert_eq!(
            strategy_of(&rec("std.prelude.random_search", &[])),
            Ok(Strategy::Random)
        );
        assert_eq!(
            strategy_of(&rec(
                "std.prelude.tpe",
                &[
                    ("startup", RtValue::Int { value: 4 }),
                    ("gamma", RtValue::Float { value: 0.3 }),
                    ("candidates", RtValue::Int { value: 12 }),
                ]
            )),
            Ok(Strategy::Tpe(tune::TpeOptions {
                startup: 4,
                gamma: 0.3,
                candidates: 12
            }))
        );
        assert!(strategy_of(&rec("std.prelude.grid", &[])).is_err());
    }
}
