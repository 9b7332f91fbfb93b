//! What the store says, as JSON documents shared by the command line (`sflow runs --format
//! json`) and the control API (`GET /v1/runs`).

use crate::clock::format_utc;
use crate::error::{Error, Result};
use crate::store::{self, tuning, Store};
use crate::value::RtValue;
use serde_json::{json, Value as Json};

fn plain(v: &Json) -> Json {
    serde_json::from_value::<RtValue>(v.clone()).map_or_else(|_| v.clone(), |r| r.to_json())
}

fn time(ms: Option<i64>) -> Json {
    ms.map_or(Json::Null, |t| Json::from(format_utc(t)))
}

/// Adds to a [`status`] document where each service is served locally (`serving`: url,
/// model, replicas, workers, pid), from `services.json` (see `state::read_services`).
pub fn add_serving(status: &mut Json, services: Option<Json>) {
    let Some(Json::Object(serving)) = services else {
        return;
    };
    for svc in status
        .get_mut("services")
        .and_then(Json::as_array_mut)
        .into_iter()
        .flatten()
    {
        let name = svc.get("name").and_then(Json::as_str).map(str::to_owned);
        if let (Some(name), Json::Object(o)) = (name, svc) {
            if let Some(sv) = serving.get(&name) {
                o.insert("serving".into(), sv.clone());
            }
        }
    }
}

/// Runs, newest first. A trial of a tuning (`Improver.tune`) carries `trial`: `#N/TRIALS`.
pub fn runs(store: &Store, limit: i64) -> Result<Json> {
    let rows = store.with(|c| store::runs(c, limit))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let mut v = json!({
            "id": r.id, "workflow": r.workflow, "status": r.status, "origin": r.origin,
            "created": time(Some(r.created_ms)), "finished": time(r.finished_ms),
            "durationMs": r.finished_ms.map(|f| f - r.created_ms), "error": r.error, "resumed": r.resumed,
        });
        if let (Some(t), Json::Object(o)) = (store.with(|c| tuning::trial_of_run(c, r.id))?, &mut v)
        {
            let of = store
                .with(|c| tuning::tuning(c, &t.action_key))?
                .map(|u| u.trials);
            o.insert(
                "trial".into(),
                Json::from(match of {
                    Some(n) => format!("#{}/{n}", t.trial),
                    None => format!("#{}", t.trial),
                }),
            );
        }
        out.push(v);
    }
    Ok(Json::Array(out))
}

/// The tuning run `run` is a trial of, with every trial (`None` for other runs).
pub fn tuning_of_run(store: &Store, run: i64) -> Result<Option<Json>> {
    let Some(t) = store.with(|c| tuning::trial_of_run(c, run))? else {
        return Ok(None);
    };
    let Some(u) = store.with(|c| tuning::tuning(c, &t.action_key))? else {
        return Ok(None);
    };
    let trials = store.with(|c| tuning::trials_of(c, &t.action_key))?;
    Ok(Some(json!({
        "agent": u.agent, "action": u.action_key, "workflow": u.workflow, "objective": u.objective,
        "direction": u.direction, "strategy": u.strategy, "options": u.options, "budget": u.trials,
        "status": u.status, "bestTrial": u.best_trial, "result": u.result, "thisTrial": t.trial,
        "created": time(Some(u.created_ms)), "finished": time(u.finished_ms),
        "trials": trials.iter().map(|x| json!({
            "trial": x.trial, "run": x.run_id, "params": x.params, "objective": x.objective,
            "durationMs": x.finished_ms.map(|f| f - x.started_ms), "status": x.status,
            "proposedBy": x.proposed_by, "error": x.error, "best": u.best_trial == Some(x.trial),
        })).collect::<Vec<_>>(),
    })))
}

/// One run with its params, steps (every attempt), metrics and artifacts.
pub fn run(store: &Store, id: i64) -> Result<Json> {
    let r = store
        .with(|c| store::run(c, id))?
        .ok_or_else(|| Error::Msg(format!("no run {id}")))?;
    let params = store.with(|c| store::params_of(c, id))?;
    let steps = store.with(|c| store::step_runs_of(c, id))?;
    let metrics = store.with(|c| store::metrics_of_run(c, id))?;
    let artifacts = store.with(|c| store::artifacts_of_run(c, id))?;
    let tuning = tuning_of_run(store, id)?;
    Ok(json!({
        "id": r.id, "app": r.app, "workflow": r.workflow, "status": r.status, "origin": r.origin,
        "firingKey": r.firing_key, "created": time(Some(r.created_ms)), "finished": time(r.finished_ms),
        "error": r.error, "dir": r.dir, "resumed": r.resumed,
        "params": params.iter().map(|p| json!({ "name": p.name, "type": p.ty, "value": p.value })).collect::<Vec<_>>(),
        "steps": steps.iter().map(|s| json!({
            "id": s.id, "step": s.step, "attempt": s.attempt, "status": s.status,
            "started": time(Some(s.started_ms)), "finished": time(s.finished_ms),
            "durationMs": s.finished_ms.map(|f| f - s.started_ms), "exitCode": s.exit_code, "error": s.error,
            "stdout": s.stdout, "stderr": s.stderr, "cacheKey": s.cache_key, "cachedFrom": s.cached_from,
        })).collect::<Vec<_>>(),
        "metrics": metrics.iter().map(|m| json!({
            "step": m.step, "name": m.name, "type": m.ty, "value": plain(&m.value), "seq": m.seq, "stepRun": m.step_run_id,
        })).collect::<Vec<_>>(),
        "artifacts": artifacts.iter().map(|a| json!({
            "step": a.step, "name": a.name, "type": a.ty, "path": a.path, "sha256": a.sha256, "size": a.size,
        })).collect::<Vec<_>>(),
        "tuning": tuning,
    }))
}

/// The model registry, newest first.
pub fn models(store: &Store) -> Result<Json> {
    let rows = store.with(store::models)?;
    Ok(Json::Array(
        rows.into_iter()
            .map(|m| {
                json!({
                    "id": m.id, "name": m.name, "version": m.version, "run": m.run_id, "path": m.path,
                    "sha256": m.sha256, "size": m.size, "metrics": m.metrics, "lineage": m.lineage,
                    "created": time(Some(m.created_ms)), "aliases": m.aliases,
                })
            })
            .collect(),
    ))
}

/// The decisions audit log, newest first.
pub fn decisions(store: &Store, limit: i64) -> Result<Json> {
    let rows = store.with(|c| store::decisions(c, limit))?;
    Ok(Json::Array(
        rows.into_iter()
            .map(|d| {
                json!({
                    "id": d.id, "time": time(Some(d.ts_ms)), "source": d.source, "name": d.name,
                    "firing": d.firing_key, "reads": d.reads, "action": d.action, "status": d.status, "result": d.result,
                })
            })
            .collect(),
    ))
}

/// Events after `after`.
pub fn events(store: &Store, after: i64, limit: i64) -> Result<Json> {
    let rows = store.with(|c| store::events(c, after, limit))?;
    Ok(Json::Array(
        rows.into_iter()
            .map(|e| json!({ "id": e.id, "time": time(Some(e.ts_ms)), "event": format!("{}.{}", e.subject, e.name), "payload": e.payload }))
            .collect(),
    ))
}

/// A summary: apps, run counts, services, signals, pending firings, schema version.
pub fn status(store: &Store) -> Result<Json> {
    let apps = store.with(store::apps)?;
    let counts = store.with(store::run_counts)?;
    let services = store.with(store::services)?;
    let mut svc = Vec::new();
    for s in services {
        let alias = store.with(|c| store::alias(c, &s.name, "production"))?;
        let model = match alias {
            Some((id, _)) => store
                .with(|c| store::model(c, id))?
                .map(|m| json!({ "name": m.name, "version": m.version, "metrics": m.metrics })),
            None => None,
        };
        svc.push(json!({ "name": s.name, "replicas": s.replicas, "range": [s.min_replicas, s.max_replicas], "model": model }));
    }
    let signals = store.with(store::signals)?;
    let pending = store.with(store::pending_firings)?;
    let schema = store.with(store::schema_version)?;
    Ok(json!({
        "apps": apps.iter().map(|a| json!({ "name": a.name, "source": a.source, "planSha256": a.plan_sha256, "lastStarted": time(Some(a.last_started_ms)) })).collect::<Vec<_>>(),
        "runs": counts.into_iter().map(|(s, n)| (s, Json::from(n))).collect::<serde_json::Map<_, _>>(),
        "services": svc,
        "signals": signals.into_iter().map(|(k, v, _)| (k, plain(&v))).collect::<serde_json::Map<_, _>>(),
        "pendingFirings": pending.len(),
        "schemaVersion": schema,
    }))
}
