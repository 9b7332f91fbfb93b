//! The step contract (docs/language.md §9): what a step gets (templates substituted, the
//! `SFLOW_*` environment) and what it must give back (outputs, metrics in `$SFLOW_METRICS`).

use crate::eval::app_field;
use crate::value::{check_metric, RtValue};
use serde_json::Value as Json;
use sflow_compiler::lower::plan::{AppPlan, PlanType, PortPlan, TemplatePart};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The environment variable name of a port or param: `SFLOW_PARAM_LR`.
pub fn var(prefix: &str, name: &str) -> String {
    format!("SFLOW_{prefix}_{}", name.to_ascii_uppercase())
}

/// How `{{inputs.X}}` and `{{outputs.X}}` are written when substituting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paths {
    /// Their real paths (what the step runs with).
    Real,
    /// Placeholders (what the cache key is computed over: paths differ between runs).
    Placeholders,
}

/// Substitutes a template.
pub fn substitute(
    parts: &[TemplatePart],
    params: &BTreeMap<String, RtValue>,
    inputs: &BTreeMap<String, PathBuf>,
    outputs: &BTreeMap<String, PathBuf>,
    app: &AppPlan,
    mode: Paths,
) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            TemplatePart::Text { text } => out.push_str(text),
            TemplatePart::Param { name } => out.push_str(
                &params
                    .get(name)
                    .map(RtValue::to_param_text)
                    .unwrap_or_default(),
            ),
            TemplatePart::App { field } => out.push_str(&app_field(Some(app), field)),
            TemplatePart::Input { name } => match (mode, inputs.get(name)) {
                (Paths::Real, Some(p)) => out.push_str(&p.to_string_lossy()),
                _ => out.push_str(&format!("{{{{inputs.{name}}}}}")),
            },
            TemplatePart::Output { name } => match (mode, outputs.get(name)) {
                (Paths::Real, Some(p)) => out.push_str(&p.to_string_lossy()),
                _ => out.push_str(&format!("{{{{outputs.{name}}}}}")),
            },
        }
    }
    out
}

/// Whether an artifact type is a directory (`Dataset`, `Dir`) rather than a file.
pub fn is_dir_type(ty: &PlanType) -> bool {
    matches!(ty, PlanType::Dataset | PlanType::Dir)
}

/// Reads `$SFLOW_METRICS`: one JSON object, or JSON lines (one object per line, a series
/// whose last value of each key is the step's value). A missing or empty file reports
/// nothing. Returns every point as (key, value, seq).
pub fn read_metrics_file(path: &Path) -> Result<Vec<(String, Json, i64)>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(format!(
                "cannot read $SFLOW_METRICS ({}): {e}",
                path.display()
            ))
        }
    };
    parse_metrics(&text)
}

/// Parses a metrics report (the text of `$SFLOW_METRICS`, or the `sflow-metrics` output
/// parameter of an Argo step): one JSON object, or JSON lines. Returns every point as (key,
/// value, seq).
pub fn parse_metrics(text: &str) -> Result<Vec<(String, Json, i64)>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let objects: Vec<Json> = match serde_json::from_str::<Json>(text) {
        Ok(v) => vec![v],
        Err(_) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str::<Json>(l).map_err(|e| {
                    format!(
                        "$SFLOW_METRICS is not a JSON object (nor JSON lines): line {}: {e}",
                        i + 1
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let mut points = Vec::new();
    for (seq, obj) in objects.into_iter().enumerate() {
        let Json::Object(map) = obj else {
            return Err(format!(
                "$SFLOW_METRICS must hold a JSON object keyed by metric name, not {}",
                crate::value::describe_json(&obj)
            ));
        };
        for (k, v) in map {
            points.push((k, v, seq as i64));
        }
    }
    Ok(points)
}

/// A metric point checked against its declaration.
#[derive(Clone, Debug)]
pub struct MetricPoint {
    /// The metric.
    pub name: String,
    /// Its declared type.
    pub ty: PlanType,
    /// The value.
    pub value: RtValue,
    /// Its position in the report.
    pub seq: i64,
}

/// Checks the reported points against the declared metrics: every declared metric must be
/// reported with its type (every point of a series is checked); undeclared keys are ignored.
pub fn check_metrics(
    declared: &[PortPlan],
    points: &[(String, Json, i64)],
) -> Result<Vec<MetricPoint>, String> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for m in declared {
        let mine: Vec<&(String, Json, i64)> =
            points.iter().filter(|(k, _, _)| *k == m.name).collect();
        if mine.is_empty() {
            if let Err(e) = check_metric(&m.name, &m.ty, None) {
                errors.push(e);
            }
            continue;
        }
        for (_, v, seq) in mine {
            match check_metric(&m.name, &m.ty, Some(v)) {
                Ok(value) => out.push(MetricPoint {
                    name: m.name.clone(),
                    ty: m.ty.clone(),
                    value,
                    seq: *seq,
                }),
                Err(e) => {
                    errors.push(e);
                    break;
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("; "))
    }
}

/// The number a metric is stored as (bools 0/1, durations in seconds).
pub fn metric_number(v: &RtValue) -> Option<f64> {
    match v {
        RtValue::Bool { value } => Some(if *value { 1.0 } else { 0.0 }),
        RtValue::Duration { ms } => Some(*ms as f64 / 1000.0),
        other => other.as_f64(),
    }
}
