//! The fields an apply would change: the built object compared with the live one.
//!
//! Computed on our side from a GET, for `--dry-run` and for the apply report, because the
//! Kubernetes stand-in ignores `dryRun=All` (a real API server would answer a dry-run apply
//! with the merged object; comparing with it would also show defaulted fields). Only fields the
//! build sets are compared: what the API server or controllers add (defaults, `status`,
//! `metadata.uid`, the runtime's `SFLOW_MODEL`) is not a change sflowc would make.

use serde_json::Value;

/// One field the apply would change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    /// The field's path: `spec.template.spec.containers[0].image`, `data["plan.json"]`.
    pub path: String,
    /// The live value, when both values are scalars (shortened).
    pub from: Option<String>,
    /// The built value, when both values are scalars (shortened).
    pub to: Option<String>,
}

impl std::fmt::Display for FieldChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.from, &self.to) {
            (Some(from), Some(to)) => write!(f, "{}: {from} → {to}", self.path),
            (None, Some(to)) => write!(f, "{}: (unset) → {to}", self.path),
            _ => write!(f, "{}", self.path),
        }
    }
}

/// Metadata fields the build sets and an apply would change; the rest of `metadata` belongs to
/// the API server.
const COMPARED_METADATA: &[&str] = &["labels", "annotations"];

/// The fields of `built` whose value differs in `live`, sorted by path (deterministic whatever
/// order the JSON maps keep).
pub fn changed_fields(built: &Value, live: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let (Value::Object(built), Value::Object(live)) = (built, live) else {
        return out;
    };
    for (key, value) in built {
        match key.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                for field in COMPARED_METADATA {
                    if let Some(b) = value.get(*field) {
                        let path = format!("metadata.{field}");
                        compare(
                            b,
                            live.get("metadata").and_then(|m| m.get(*field)),
                            &path,
                            &mut out,
                        );
                    }
                }
            }
            _ => compare(value, live.get(key), &field_path("", key), &mut out),
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Compares a built value with the live one (`None`: absent), recording differences under `path`.
fn compare(built: &Value, live: Option<&Value>, path: &str, out: &mut Vec<FieldChange>) {
    match (built, live) {
        (_, None) | (_, Some(Value::Null)) if !built.is_null() => out.push(FieldChange {
            path: path.to_string(),
            from: None,
            to: scalar(built),
        }),
        (Value::Object(b), Some(Value::Object(l))) => {
            for (key, value) in b {
                compare(value, l.get(key), &field_path(path, key), out);
            }
        }
        (Value::Array(b), Some(Value::Array(l))) => {
            if b.len() != l.len() {
                out.push(FieldChange {
                    path: path.to_string(),
                    from: Some(format!("{} items", l.len())),
                    to: Some(format!("{} items", b.len())),
                });
            } else {
                for (i, (bi, li)) in b.iter().zip(l).enumerate() {
                    compare(bi, Some(li), &format!("{path}[{i}]"), out);
                }
            }
        }
        (b, Some(l)) if !same_scalar(b, l) => out.push(FieldChange {
            path: path.to_string(),
            from: scalar(l),
            to: scalar(b),
        }),
        _ => {}
    }
}

/// Scalars equal as the API server stores them: `1` and `1.0` are the same number.
fn same_scalar(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// `parent.key`, or `parent["key"]` when the key is not a plain identifier.
fn field_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{}]", Value::String(key.to_string())),
    }
}

/// A scalar's short display; `None` for arrays and objects.
fn scalar(value: &Value) -> Option<String> {
    const MAX: usize = 48;
    let text = match value {
        Value::Array(_) | Value::Object(_) => return None,
        Value::String(s) => Value::String(s.clone()).to_string(),
        other => other.to_string(),
    };
    if text.chars().count() <= MAX {
        Some(text)
    } else {
        let short: String = text.chars().take(MAX - 1).collect();
        Some(format!("{short}…"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_fields_the_build_sets_are_compared() {
        let built = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}});
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "uid": "u", "resourceVersion": "7", "labels": {"x": "1", "extra": "y"}},
            "data": {"k": "v"}, "status": {"anything": true}});
        assert_eq!(changed_fields(&built, &live), Vec::new());
    }

    #[test]
    fn changes_are_reported_with_their_paths_and_values() {
        let built = json!({"metadata": {"labels": {"app.kubernetes.io/version": "b"}},
            "data": {"plan.json": "{}", "new": "x"},
            "spec": {"containers": [{"image": "i:2", "env": [{"name": "A"}]}]}});
        let live = json!({"metadata": {"labels": {"app.kubernetes.io/version": "a"}},
            "data": {"plan.json": "{\"a\":1}"},
            "spec": {"containers": [{"image": "i:1", "env": []}]}});
        let changes: Vec<String> = changed_fields(&built, &live)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            changes,
            vec![
                r#"data.new: (unset) → "x""#.to_string(),
                r#"data["plan.json"]: "{\"a\":1}" → "{}""#.to_string(),
                r#"metadata.labels["app.kubernetes.io/version"]: "a" → "b""#.to_string(),
                "spec.containers[0].env: 0 items → 1 items".to_string(),
                r#"spec.containers[0].image: "i:1" → "i:2""#.to_string(),
            ]
        );
    }

    #[test]
    fn numbers_compare_by_value_and_long_values_are_shortened() {
        let built = json!({"spec": {"n": 1, "s": "x".repeat(100)}});
        let live = json!({"spec": {"n": 1.0, "s": "y"}});
        let changes = changed_fields(&built, &live);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "spec.s");
        assert!(changes[0]
            .to
            .as_deref()
            .is_some_and(|t| t.ends_with('…') && t.chars().count() == 48));
    }
}
