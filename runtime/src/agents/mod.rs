//! The agent framework: what an agent's action does when a trigger or policy calls it.
//!
//! - `Planner` (built in): `replace` moves the service's `production` alias to the model and
//!   tells the backend to serve it, `rollback` moves it back, `scale` sets the desired replicas
//!   within the service's range, `resize` sets the cpu and memory of each replica (the local
//!   backend's worker limits, the Deployment's resources in a cluster). Each emits its event
//!   (`SERVICE.model.replaced`, `SERVICE.scaled`, `SERVICE.resized`, …).
//! - `Checker`, `Improver` (built in): with the ML feature, `check` runs the drift detector
//!   ([`crate::ml::checker`]), `improve` labels, retrains and evaluates
//!   ([`crate::ml::improver`]) and `tune` searches the retrain workflow's hyper-parameters
//!   ([`crate::ml::tune`]); their results are sensor values recorded with the firing
//!   ([`Effect::Signals`]). Without the feature the firing fails with "not available",
//!   recorded in the audit log.
//! - user-declared kinds: an action bound `-> run WORKFLOW with {…}` starts the workflow (the
//!   action's parameters are in scope in `with`), one bound `-> webhook "URL"` POSTs its
//!   arguments as JSON with an `Idempotency-Key` header, and an unbound one is published on
//!   the control API (`GET /v1/agents/AGENT/actions`) for an external implementation.
//!
//! Sensors are values in the engine's signal board: the runtime keeps the built-in ones, and
//! the control API sets any of them (`PUT /v1/agents/AGENT/sensors/SENSOR`).

use crate::engine::{Effect, Shared};
use crate::eval::{self, Scope};
use crate::value::RtValue;
use serde_json::{json, Map, Value as Json};
use sflow_compiler::lower::plan::{AppPlan, BindingPlan, Expr, Signal};
use std::collections::BTreeMap;

/// The message for built-in actions this build cannot perform.
pub fn not_available(kind: &str, action: &str) -> String {
    if cfg!(feature = "ml") {
        // Every built-in action of this version is above: the plan came from a newer sflow.
        format!("not available in this build: this runtime has no built-in `{kind}.{action}` (was the plan built by a newer sflowc?)")
    } else {
        format!("not available in this build: `{kind}.{action}` needs the ML feature (drift detectors, labelling and retraining with tch; issue 5)")
    }
}

/// Decides what calling `agent.action(args)` does; a webhook binding is performed here
/// (before the effect is recorded), everything else is returned as an effect that the engine
/// records atomically with the firing.
pub async fn call(
    shared: &std::sync::Arc<Shared>,
    agent: &str,
    action: &str,
    args: &BTreeMap<String, Expr>,
    action_key: &str,
) -> Result<Effect, String> {
    let plan = shared.plan();
    let a = plan
        .agent(agent)
        .ok_or_else(|| format!("no agent `{agent}`"))?;
    let kind = plan
        .agent_kind(&a.kind)
        .ok_or_else(|| format!("agent `{agent}` has unknown kind `{}`", a.kind))?;
    let decl = kind
        .actions
        .iter()
        .find(|d| d.name == action)
        .ok_or_else(|| format!("kind `{}` has no action `{action}`", kind.name))?;
    let scope = shared.scope();
    let mut values: BTreeMap<String, RtValue> = BTreeMap::new();
    for p in &decl.params {
        let v = match args.get(&p.name) {
            Some(e) => eval::eval(e, &scope)
                .map_err(|m| format!("argument `{}` of `{agent}.{action}`: {m}", p.name))?,
            None => match &p.default {
                Some(d) => RtValue::from_plan(d),
                None => {
                    return Err(format!(
                        "argument `{}` of `{agent}.{action}` is missing",
                        p.name
                    ))
                }
            },
        };
        values.insert(p.name.clone(), v);
    }
    if kind.builtin {
        return match (kind.name.as_str(), action) {
            ("Planner", "replace") => replace(shared, &values),
            ("Planner", "rollback") => rollback(shared, &values),
            ("Planner", "scale") => scale(shared, &values),
            ("Planner", "resize") => resize(shared, &values),
            #[cfg(feature = "ml")]
            ("Checker", "check") => {
                crate::ml::checker::check(shared, agent, &values, action_key).await
            }
            #[cfg(feature = "ml")]
            ("Improver", "improve") => {
                crate::ml::improver::improve(shared, agent, &values, action_key).await
            }
            #[cfg(feature = "ml")]
            ("Improver", "tune") => crate::ml::tune::tune(shared, agent, &values, action_key).await,
            (k, a) => Err(not_available(k, a)),
        };
    }
    match &decl.binding {
        Some(BindingPlan::Run { workflow, with }) => {
            let scope = ActionScope {
                inner: &scope,
                args: &values,
            };
            let mut overrides = BTreeMap::new();
            for (k, e) in with {
                overrides.insert(
                    k.clone(),
                    eval::eval(e, &scope).map_err(|m| format!("`with {{ {k} = … }}`: {m}"))?,
                );
            }
            Ok(Effect::StartRun {
                workflow: workflow.clone(),
                overrides,
                origin: format!("agent:{agent}.{action}"),
            })
        }
        Some(BindingPlan::Webhook { url }) => {
            let body = json!({
                "agent": agent, "kind": kind.name, "action": action,
                "args": values.iter().map(|(k, v)| (k.clone(), v.to_json())).collect::<Map<String, Json>>(),
                "idempotencyKey": action_key,
            });
            let resp = shared
                .http()
                .post(url)
                .header("Idempotency-Key", action_key)
                .json(&body)
                .send()
                .await
                .map_err(|e| format!("POST {url}: {e}"))?;
            let status = resp.status();
            if status.is_success() {
                Ok(Effect::Nothing {
                    result: format!("POST {url}: {status}"),
                })
            } else {
                let text = resp.text().await.unwrap_or_default();
                Err(format!(
                    "POST {url}: {status} {}",
                    text.chars().take(200).collect::<String>()
                ))
            }
        }
        None => Ok(Effect::Publish {
            agent: agent.to_string(),
            action: action.to_string(),
            args: Json::Object(
                values
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }),
    }
}

struct ActionScope<'a> {
    inner: &'a dyn Scope,
    args: &'a BTreeMap<String, RtValue>,
}

impl Scope for ActionScope<'_> {
    fn param(&self, name: &str) -> Option<RtValue> {
        self.args
            .get(name)
            .cloned()
            .or_else(|| self.inner.param(name))
    }
    fn signal(&self, s: &Signal) -> Option<RtValue> {
        self.inner.signal(s)
    }
    fn app(&self) -> Option<&AppPlan> {
        self.inner.app()
    }
}

fn service_arg(shared: &Shared, values: &BTreeMap<String, RtValue>) -> Result<String, String> {
    match values.get("service") {
        Some(RtValue::Ref { name, .. }) if shared.plan().service(name).is_some() => {
            Ok(name.clone())
        }
        Some(RtValue::Ref { name, .. }) => Err(format!("no service `{name}`")),
        _ => Err("the `service` argument is not a service".into()),
    }
}

fn replace(shared: &Shared, values: &BTreeMap<String, RtValue>) -> Result<Effect, String> {
    let service = service_arg(shared, values)?;
    let (id, name, version) = match values.get("model") {
        Some(RtValue::Model {
            id, name, version, ..
        }) if *id > 0 => (*id, name.clone(), *version),
        Some(RtValue::Model { name, .. }) => {
            return Err(format!(
                "model `{name}` is not in the registry: only registered models can be served"
            ))
        }
        _ => return Err("the `model` argument is not a model".into()),
    };
    let current = shared.alias(&service).map_err(|e| e.to_string())?;
    if current.map(|(m, _)| m) == Some(id) {
        return Ok(Effect::Nothing {
            result: format!("{service} already serves {name} v{version}"),
        });
    }
    Ok(Effect::Alias {
        service,
        model_id: id,
        previous: current.map(|(m, _)| m),
        event: "model.replaced",
    })
}

fn rollback(shared: &Shared, values: &BTreeMap<String, RtValue>) -> Result<Effect, String> {
    let service = service_arg(shared, values)?;
    match shared.alias(&service).map_err(|e| e.to_string())? {
        Some((current, Some(previous))) => Ok(Effect::Alias {
            service,
            model_id: previous,
            previous: Some(current),
            event: "model.rolled_back",
        }),
        _ => Err(format!("{service} has no previous model to roll back to")),
    }
}

fn scale(shared: &Shared, values: &BTreeMap<String, RtValue>) -> Result<Effect, String> {
    let service = service_arg(shared, values)?;
    let by = match values.get("by") {
        Some(RtValue::Int { value }) => *value,
        _ => return Err("the `by` argument is not an int".into()),
    };
    let row = shared
        .service_row(&service)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no service `{service}` recorded"))?;
    let wanted = (row.replicas + by).clamp(row.min_replicas, row.max_replicas);
    if wanted == row.replicas {
        return Ok(Effect::Nothing {
            result: format!(
                "{service} stays at {} replicas (its range is {}..{})",
                row.replicas, row.min_replicas, row.max_replicas
            ),
        });
    }
    Ok(Effect::Scale {
        service,
        from: row.replicas,
        replicas: wanted,
    })
}

fn resize(shared: &Shared, values: &BTreeMap<String, RtValue>) -> Result<Effect, String> {
    let service = service_arg(shared, values)?;
    let cpu_millis = match values.get("cpu") {
        Some(RtValue::Cpu { millis }) if *millis > 0 => *millis,
        Some(RtValue::Cpu { .. }) => return Err("the `cpu` argument must be above 0".into()),
        _ => return Err("the `cpu` argument is not a cpu quantity".into()),
    };
    let memory_bytes = match values.get("memory") {
        Some(RtValue::Memory { bytes }) if *bytes > 0 => *bytes,
        Some(RtValue::Memory { .. }) => return Err("the `memory` argument must be above 0".into()),
        _ => return Err("the `memory` argument is not a memory quantity".into()),
    };
    let wanted = crate::executor::Resources {
        cpu_millis: Some(cpu_millis),
        memory_bytes: Some(memory_bytes),
    };
    let current = shared
        .service_resources(&service)
        .map_err(|e| e.to_string())?;
    if current == Some(wanted) {
        return Ok(Effect::Nothing {
            result: format!("{service} already has {}", wanted.describe()),
        });
    }
    Ok(Effect::Resize {
        service,
        from: current,
        to: wanted,
    })
}
