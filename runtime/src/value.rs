//! Run-time values: what params, metrics, sensors and signals hold, with the conversions the
//! step contract fixes (param text, metric JSON) and the checks it makes.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sflow_compiler::lower::plan::{PlanType, Value};
use std::collections::BTreeMap;

/// A value at run time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum RtValue {
    /// An integer.
    Int {
        /// The value.
        value: i64,
    },
    /// A float or ratio.
    Float {
        /// The value.
        value: f64,
    },
    /// A boolean.
    Bool {
        /// The value.
        value: bool,
    },
    /// A string.
    String {
        /// The value.
        value: String,
    },
    /// A duration.
    Duration {
        /// Milliseconds.
        ms: u64,
    },
    /// A cpu quantity.
    Cpu {
        /// Millicores.
        millis: u64,
    },
    /// A memory quantity.
    Memory {
        /// Bytes.
        bytes: u64,
    },
    /// A registered model version.
    Model {
        /// Its id in the registry (0 for a model reported from outside).
        id: i64,
        /// Its registered name (`training.fit.model`).
        name: String,
        /// Its version.
        version: i64,
        /// Where the file is.
        path: String,
        /// Its metric record.
        metrics: BTreeMap<String, RtValue>,
    },
    /// A batch of samples.
    Batch {
        /// How many samples.
        size: i64,
        /// Where they are, if anywhere.
        path: Option<String>,
    },
    /// A declaration passed by name.
    Ref {
        /// `workflow`, `service` or `agent`.
        kind: String,
        /// Its name.
        name: String,
    },
    /// A list.
    List {
        /// The items.
        items: Vec<RtValue>,
    },
    /// A record.
    Record {
        /// The fields.
        fields: BTreeMap<String, RtValue>,
    },
}

impl RtValue {
    /// The value of a plan literal.
    pub fn from_plan(v: &Value) -> RtValue {
        match v {
            Value::Int { value } => RtValue::Int { value: *value },
            Value::Float { value } => RtValue::Float { value: *value },
            Value::Bool { value } => RtValue::Bool { value: *value },
            Value::String { value } => RtValue::String {
                value: value.clone(),
            },
            Value::Duration { ms } => RtValue::Duration { ms: *ms },
            Value::Cpu { millis } => RtValue::Cpu { millis: *millis },
            Value::Memory { bytes } => RtValue::Memory { bytes: *bytes },
            Value::List { items } => RtValue::List {
                items: items.iter().map(RtValue::from_plan).collect(),
            },
            Value::Record { fields } => RtValue::Record {
                fields: fields
                    .iter()
                    .map(|(k, v)| (k.clone(), RtValue::from_plan(v)))
                    .collect(),
            },
            Value::Range { min, max } => RtValue::List {
                items: vec![RtValue::from_plan(min), RtValue::from_plan(max)],
            },
        }
    }

    /// The member `name` of this value: a model's metric, a batch's `size`, a record's field.
    pub fn member(&self, name: &str) -> Option<&RtValue> {
        match self {
            RtValue::Model { metrics, .. } => metrics.get(name),
            RtValue::Record { fields } => fields.get(name),
            _ => None,
        }
    }

    /// Follows a member path.
    pub fn project(&self, path: &[String]) -> Option<RtValue> {
        let mut v = self;
        let mut owned;
        for (i, name) in path.iter().enumerate() {
            match (v, name.as_str()) {
                (RtValue::Batch { size, .. }, "size") if i + 1 == path.len() => {
                    return Some(RtValue::Int { value: *size })
                }
                _ => {
                    owned = v.member(name)?.clone();
                    v = &owned;
                    if i + 1 == path.len() {
                        return Some(owned);
                    }
                }
            }
        }
        Some(v.clone())
    }

    /// The value as text, the way the step contract passes params: ints and floats in decimal,
    /// bools as `true`/`false`, strings as is, durations in seconds with `s`, cpu in
    /// millicores with `m`, memory in bytes.
    pub fn to_param_text(&self) -> String {
        match self {
            RtValue::Int { value } => value.to_string(),
            RtValue::Float { value } => format_float(*value),
            RtValue::Bool { value } => value.to_string(),
            RtValue::String { value } => value.clone(),
            RtValue::Duration { ms } => format!("{}s", format_float(*ms as f64 / 1000.0)),
            RtValue::Cpu { millis } => format!("{millis}m"),
            RtValue::Memory { bytes } => bytes.to_string(),
            RtValue::Model { path, .. } => path.clone(),
            RtValue::Batch { path, size } => path.clone().unwrap_or_else(|| size.to_string()),
            RtValue::Ref { name, .. } => name.clone(),
            RtValue::List { items } => items
                .iter()
                .map(RtValue::to_param_text)
                .collect::<Vec<_>>()
                .join(","),
            RtValue::Record { .. } => self.to_json().to_string(),
        }
    }

    /// The value as plain JSON (what the control API shows and what webhooks receive).
    pub fn to_json(&self) -> Json {
        match self {
            RtValue::Int { value } => Json::from(*value),
            RtValue::Float { value } => Json::from(*value),
            RtValue::Bool { value } => Json::from(*value),
            RtValue::String { value } => Json::from(value.clone()),
            RtValue::Duration { ms } => Json::from(format!("{ms}ms")),
            RtValue::Cpu { millis } => Json::from(format!("{millis}m")),
            RtValue::Memory { bytes } => Json::from(*bytes),
            RtValue::Model {
                id,
                name,
                version,
                path,
                metrics,
            } => serde_json::json!({
                "id": id, "name": name, "version": version, "path": path,
                "metrics": metrics.iter().map(|(k, v)| (k.clone(), v.to_json())).collect::<serde_json::Map<_, _>>(),
            }),
            RtValue::Batch { size, path } => serde_json::json!({ "size": size, "path": path }),
            RtValue::Ref { kind, name } => serde_json::json!({ "kind": kind, "name": name }),
            RtValue::List { items } => Json::Array(items.iter().map(RtValue::to_json).collect()),
            RtValue::Record { fields } => Json::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// A number, for comparisons: ints, floats, durations (ms), quantities.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            RtValue::Int { value } => Some(*value as f64),
            RtValue::Float { value } => Some(*value),
            RtValue::Duration { ms } => Some(*ms as f64),
            RtValue::Cpu { millis } => Some(*millis as f64),
            RtValue::Memory { bytes } => Some(*bytes as f64),
            RtValue::Batch { size, .. } => Some(*size as f64),
            _ => None,
        }
    }
}

/// A float in the shortest decimal that reads back the same (`0.001`, `3`, `1e-7`).
pub fn format_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The name of a plan type, as messages write it.
pub fn type_name(ty: &PlanType) -> String {
    match ty {
        PlanType::Int => "int".into(),
        PlanType::Float => "float".into(),
        PlanType::Ratio => "ratio".into(),
        PlanType::Bool => "bool".into(),
        PlanType::String => "string".into(),
        PlanType::Duration => "duration".into(),
        PlanType::Cpu => "cpu".into(),
        PlanType::Memory => "memory".into(),
        PlanType::Dataset => "Dataset".into(),
        PlanType::Model => "Model".into(),
        PlanType::File => "File".into(),
        PlanType::Dir => "Dir".into(),
        PlanType::Batch => "Batch".into(),
        PlanType::Service => "Service".into(),
        PlanType::Workflow => "Workflow".into(),
        PlanType::Detector => "Detector".into(),
        PlanType::LabelSource => "LabelSource".into(),
        PlanType::Tracking => "Tracking".into(),
        PlanType::Objective => "Objective".into(),
        PlanType::Search => "Search".into(),
        PlanType::List(t) => format!("list<{}>", type_name(t)),
        PlanType::Range(t) => format!("range<{}>", type_name(t)),
        PlanType::Record => "record".into(),
        PlanType::Latency => "latency".into(),
        PlanType::Event => "event".into(),
    }
}

/// A duration written as text: `90s`, `250ms`, `1.5m`, `2h`, `1d`, or a bare number of seconds.
pub fn parse_duration_text(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: f64 = digits.trim().parse().ok()?;
    let scale = match unit {
        "" | "s" => 1000.0,
        "ms" => 1.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    let ms = n * scale;
    (ms.is_finite() && ms >= 0.0).then_some(ms.round() as u64)
}

/// Parses a param given as text (`--param epochs=5`, a webhook) by its declared type.
pub fn parse_param(text: &str, ty: &PlanType) -> Result<RtValue, String> {
    let bad = || format!("`{text}` is not a valid {}", type_name(ty));
    Ok(match ty {
        PlanType::Int => RtValue::Int {
            value: text.trim().parse().map_err(|_| bad())?,
        },
        PlanType::Float => RtValue::Float {
            value: text.trim().parse().map_err(|_| bad())?,
        },
        PlanType::Ratio => {
            let value: f64 = text.trim().parse().map_err(|_| bad())?;
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("`{text}` is not a ratio: it must lie in [0, 1]"));
            }
            RtValue::Float { value }
        }
        PlanType::Bool => RtValue::Bool {
            value: text.trim().parse().map_err(|_| bad())?,
        },
        PlanType::Duration => RtValue::Duration {
            ms: parse_duration_text(text).ok_or_else(bad)?,
        },
        PlanType::Cpu => {
            let t = text.trim();
            let millis = match t.strip_suffix('m') {
                Some(m) => m.parse::<u64>().map_err(|_| bad())?,
                None => (t.parse::<f64>().map_err(|_| bad())? * 1000.0).round() as u64,
            };
            RtValue::Cpu { millis }
        }
        PlanType::Memory => RtValue::Memory {
            bytes: parse_memory_text(text).ok_or_else(bad)?,
        },
        _ => RtValue::String {
            value: text.to_string(),
        },
    })
}

fn parse_memory_text(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1000,
        "M" => 1000u64.pow(2),
        "G" => 1000u64.pow(3),
        "T" => 1000u64.pow(4),
        "Ki" => 1024,
        "Mi" => 1024u64.pow(2),
        "Gi" => 1024u64.pow(3),
        "Ti" => 1024u64.pow(4),
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Checks one reported metric against its declared type; the error says what was declared
/// and what was found.
pub fn check_metric(name: &str, ty: &PlanType, found: Option<&Json>) -> Result<RtValue, String> {
    let declared = type_name(ty);
    let Some(v) = found else {
        return Err(format!("metric `{name}` ({declared}) was not reported: write it to the JSON object in $SFLOW_METRICS"));
    };
    let wrong = || {
        format!(
            "metric `{name}` is declared `{declared}` but the step reported {}",
            describe_json(v)
        )
    };
    match ty {
        PlanType::Int => match v.as_i64() {
            Some(value) => Ok(RtValue::Int { value }),
            None => match v.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                    Ok(RtValue::Int { value: f as i64 })
                }
                _ => Err(wrong()),
            },
        },
        PlanType::Float => v
            .as_f64()
            .map(|value| RtValue::Float { value })
            .ok_or_else(wrong),
        PlanType::Ratio => {
            let value = v.as_f64().ok_or_else(wrong)?;
            if (0.0..=1.0).contains(&value) {
                Ok(RtValue::Float { value })
            } else {
                Err(format!("metric `{name}` is declared `ratio` but the step reported {value}, outside [0, 1]"))
            }
        }
        PlanType::Bool => v
            .as_bool()
            .map(|value| RtValue::Bool { value })
            .ok_or_else(wrong),
        PlanType::Duration => match v {
            Json::Number(n) => match n.as_f64() {
                Some(s) if s >= 0.0 => Ok(RtValue::Duration {
                    ms: (s * 1000.0).round() as u64,
                }),
                _ => Err(wrong()),
            },
            Json::String(s) => parse_duration_text(s)
                .map(|ms| RtValue::Duration { ms })
                .ok_or_else(wrong),
            _ => Err(wrong()),
        },
        _ => Err(format!(
            "metric `{name}` has type `{declared}`, which a metric cannot have"
        )),
    }
}

/// `the string "high"`, `the number 1.5`, …
pub fn describe_json(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(b) => format!("the bool {b}"),
        Json::Number(n) => format!("the number {n}"),
        Json::String(s) => format!("the string {s:?}"),
        Json::Array(_) => "a list".into(),
        Json::Object(_) => "an object".into(),
    }
}

/// Reads a value given as plain JSON (the control API) by its declared type.
pub fn from_json_typed(v: &Json, ty: &PlanType) -> Result<RtValue, String> {
    let wrong = || format!("expected a {} but got {}", type_name(ty), describe_json(v));
    match ty {
        PlanType::Int | PlanType::Float | PlanType::Ratio | PlanType::Bool | PlanType::Duration => {
            check_metric("value", ty, Some(v)).map_err(|_| {
                let article = if matches!(ty, PlanType::Int) {
                    "an"
                } else {
                    "a"
                };
                let range = if matches!(ty, PlanType::Ratio) {
                    " in [0, 1]"
                } else {
                    ""
                };
                format!(
                    "expected {article} {}{range} but got {}",
                    type_name(ty),
                    describe_json(v)
                )
            })
        }
        PlanType::String => v
            .as_str()
            .map(|s| RtValue::String {
                value: s.to_string(),
            })
            .ok_or_else(wrong),
        PlanType::Batch => match v {
            Json::Number(_) => Ok(RtValue::Batch {
                size: v.as_i64().ok_or_else(wrong)?,
                path: None,
            }),
            Json::Object(o) => Ok(RtValue::Batch {
                size: o.get("size").and_then(Json::as_i64).ok_or_else(wrong)?,
                path: o.get("path").and_then(Json::as_str).map(str::to_string),
            }),
            _ => Err(wrong()),
        },
        PlanType::Model => match v {
            Json::Object(o) => {
                let metrics = match o.get("metrics") {
                    Some(Json::Object(m)) => m
                        .iter()
                        .map(|(k, v)| (k.clone(), json_to_value(v)))
                        .collect(),
                    _ => BTreeMap::new(),
                };
                Ok(RtValue::Model {
                    id: o.get("id").and_then(Json::as_i64).unwrap_or(0),
                    name: o
                        .get("name")
                        .and_then(Json::as_str)
                        .unwrap_or("external")
                        .to_string(),
                    version: o.get("version").and_then(Json::as_i64).unwrap_or(0),
                    path: o
                        .get("path")
                        .and_then(Json::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    metrics,
                })
            }
            _ => Err(wrong()),
        },
        _ => Ok(json_to_value(v)),
    }
}

/// A best-effort reading of plain JSON.
pub fn json_to_value(v: &Json) -> RtValue {
    match v {
        Json::Bool(b) => RtValue::Bool { value: *b },
        Json::Number(n) => match n.as_i64() {
            Some(i) => RtValue::Int { value: i },
            None => RtValue::Float {
                value: n.as_f64().unwrap_or(0.0),
            },
        },
        Json::String(s) => RtValue::String { value: s.clone() },
        Json::Array(a) => RtValue::List {
            items: a.iter().map(json_to_value).collect(),
        },
        Json::Object(o) => RtValue::Record {
            fields: o
                .iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        },
        Json::Null => RtValue::List { items: Vec::new() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_as_text() {
        assert_eq!(RtValue::Duration { ms: 90_000 }.to_param_text(), "90s");
        assert_eq!(RtValue::Duration { ms: 250 }.to_param_text(), "0.25s");
        assert_eq!(RtValue::Float { value: 0.001 }.to_param_text(), "0.001");
        assert_eq!(RtValue::Cpu { millis: 500 }.to_param_text(), "500m");
        assert_eq!(
            parse_param("1.5m", &PlanType::Duration),
            Ok(RtValue::Duration { ms: 90_000 })
        );
        assert!(parse_param("1.5", &PlanType::Ratio).is_err());
        assert_eq!(
            parse_param("4Gi", &PlanType::Memory),
            Ok(RtValue::Memory { bytes: 4 << 30 })
        );
    }

    #[test]
    fn metrics_are_checked() {
        assert_eq!(
            check_metric("a", &PlanType::Ratio, Some(&json!(0.5))),
            Ok(RtValue::Float { value: 0.5 })
        );
        let e = check_metric("a", &PlanType::Ratio, Some(&json!(1.5))).expect_err("out of range");
        assert!(e.contains("outside [0, 1]"), "{e}");
        let e = check_metric("rows", &PlanType::Int, Some(&json!("many"))).expect_err("mistyped");
        assert!(
            e.contains("declared `int`") && e.contains("\"many\""),
            "{e}"
        );
        let e = check_metric("rows", &PlanType::Int, None).expect_err("missing");
        assert!(e.contains("not reported"), "{e}");
        assert_eq!(
            check_metric("t", &PlanType::Duration, Some(&json!("250ms"))),
            Ok(RtValue::Duration { ms: 250 })
        );
        assert_eq!(
            check_metric("t", &PlanType::Duration, Some(&json!(2))),
            Ok(RtValue::Duration { ms: 2000 })
        );
    }
}
