//! Objects that have no Rust types, from handlebars templates: the standard library's
//! (`stdlib/templates/*.yaml.hbs`: a KEDA `ScaledObject` per service for
//! `autoscaler = "keda"`, Prometheus `ServiceMonitor`s for `monitoring = "prometheus"`) and the
//! user's own (`sflowc build --templates DIR`), rendered once each with the plan as context.
//!
//! A value can never inject YAML:
//! - `{{x}}` is escaped for YAML, not HTML: it always renders as one double-quoted scalar with
//!   every non-printable or non-ASCII character escaped, so quotes, newlines, `: `, `---` or
//!   `{{` inside a value stay inside the string;
//! - `{{yaml x}}` renders any value as JSON flow YAML (numbers and booleans bare, strings
//!   quoted as above, lists and records as `[…]` / `{…}`);
//! - the unescaped forms (`{{{x}}}`, `{{& x}}`) are refused when a template is loaded;
//! - strict mode: a missing value is an error, not an empty string;
//! - the output is parsed back as YAML (duplicate keys are an error), every document must be
//!   a Kubernetes object with a valid kind and name and valid labels, and what is written is
//!   the re-serialized parse, never the raw text.

use crate::conventions::{self, names, RUNTIME_PORT, SOURCE_ANNOTATION};
use crate::meta::{self, Component, Context};
use crate::{yaml, EmitError, Objects};
use handlebars::template::{Template, TemplateElement};
use handlebars::{
    Context as HbContext, Handlebars, Helper, HelperResult, Output, RenderContext,
    RenderErrorReason,
};
use serde_json::json;
use sflow_compiler::lower::plan::{Autoscaler, Monitoring};
use sflow_compiler::values;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A user template: its file name and text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserTemplate {
    /// The file name (`extra.yaml.hbs`), for messages and the source annotation.
    pub name: String,
    /// The template.
    pub text: String,
}

/// The standard library's templates, by file name.
pub const STD_TEMPLATES: &[(&str, &str)] = &[
    (
        "keda-scaledobject.yaml.hbs",
        include_str!("../../../stdlib/templates/keda-scaledobject.yaml.hbs"),
    ),
    (
        "prometheus-servicemonitor.yaml.hbs",
        include_str!("../../../stdlib/templates/prometheus-servicemonitor.yaml.hbs"),
    ),
];

fn std_template(name: &str) -> &'static str {
    STD_TEMPLATES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, t)| t)
}

/// A string as a YAML double-quoted scalar that any YAML 1.1 or 1.2 parser reads back exactly:
/// printable ASCII as is (`"` and `\` escaped), everything else as an escape.
pub fn yaml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Any JSON value as flow YAML.
pub fn yaml_flow(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => yaml_quote(s),
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items.iter().map(yaml_flow).collect::<Vec<_>>().join(", ")
        ),
        serde_json::Value::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("{}: {}", yaml_quote(k), yaml_flow(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn yaml_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &HbContext,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let value = h
        .param(0)
        .ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex("yaml", 0))?;
    if value.is_value_missing() {
        return Err(RenderErrorReason::MissingVariable(value.relative_path().cloned()).into());
    }
    out.write(&yaml_flow(value.value()))?;
    Ok(())
}

handlebars::handlebars_helper!(concat: |*args| {
    args.iter().map(|a| match a { serde_json::Value::String(s) => s.clone(), other => other.to_string() }).collect::<String>()
});

/// The template engine: strict, YAML-escaping, with the `yaml` and `concat` helpers.
fn engine() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(yaml_quote);
    hb.register_helper("yaml", Box::new(yaml_helper));
    hb.register_helper("concat", Box::new(concat));
    hb
}

/// Refuses the unescaped forms, anywhere in the template.
fn check_escaping(name: &str, template: &Template) -> Result<(), EmitError> {
    for element in &template.elements {
        match element {
            TemplateElement::HtmlExpression(_) => {
                return Err(EmitError::Template {
                    template: name.to_string(),
                    message: "unescaped output (`{{{…}}}` or `{{& …}}`) is not allowed: write `{{value}}` for a quoted string \
                              or `{{yaml value}}` for a number, boolean, list or record"
                        .to_string(),
                })
            }
            TemplateElement::HelperBlock(block) => {
                for inner in [&block.template, &block.inverse].into_iter().flatten() {
                    check_escaping(name, inner)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Renders a template and checks the result: every document a Kubernetes object.
pub fn render(
    name: &str,
    text: &str,
    context: &serde_json::Value,
) -> Result<Vec<serde_yaml_ng::Value>, EmitError> {
    let fail = |message: String| EmitError::Template {
        template: name.to_string(),
        message,
    };
    let template = Template::compile(text).map_err(|e| fail(e.to_string()))?;
    check_escaping(name, &template)?;
    let rendered = engine()
        .render_template(text, context)
        .map_err(|e| fail(e.to_string()))?;
    let docs = yaml::parse_documents(&rendered).map_err(|e| EmitError::InvalidObject {
        template: name.to_string(),
        message: format!("not valid YAML: {e}"),
    })?;
    for doc in &docs {
        check_object(doc).map_err(|message| EmitError::InvalidObject {
            template: name.to_string(),
            message,
        })?;
    }
    Ok(docs)
}

fn str_at<'v>(v: &'v serde_yaml_ng::Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(serde_yaml_ng::Value::as_str)
}

/// A document is an object: `apiVersion`, a `kind` of letters and digits, `metadata.name` a
/// DNS subdomain (it names a file), labels and annotations maps of strings, labels valid.
pub fn check_object(doc: &serde_yaml_ng::Value) -> Result<(), String> {
    if !doc.is_mapping() {
        return Err("a document is not a mapping".to_string());
    }
    let api_version = str_at(doc, "apiVersion")
        .filter(|s| !s.is_empty())
        .ok_or("`apiVersion` is missing or not a string")?;
    if api_version
        .chars()
        .any(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '/')))
    {
        return Err(format!(
            "`apiVersion` {api_version:?} is not an API version"
        ));
    }
    let kind = str_at(doc, "kind").ok_or("`kind` is missing or not a string")?;
    if !kind.starts_with(|c: char| c.is_ascii_uppercase())
        || !kind.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(format!("`kind` {kind:?} is not a kind"));
    }
    let metadata = doc
        .get("metadata")
        .filter(|m| m.is_mapping())
        .ok_or("`metadata` is missing")?;
    let name = str_at(metadata, "name").ok_or("`metadata.name` is missing or not a string")?;
    values::check_dns_subdomain(name).map_err(|e| format!("`metadata.name` {name:?} {e}"))?;
    if let Some(ns) = metadata.get("namespace") {
        let ns = ns.as_str().ok_or("`metadata.namespace` is not a string")?;
        values::check_dns_label(ns).map_err(|e| format!("`metadata.namespace` {ns:?} {e}"))?;
    }
    for field in ["labels", "annotations"] {
        if let Some(map) = metadata.get(field) {
            let map = map
                .as_mapping()
                .ok_or(format!("`metadata.{field}` is not a map"))?;
            for (k, v) in map {
                let (Some(k), Some(v)) = (k.as_str(), v.as_str()) else {
                    return Err(format!("`metadata.{field}` must map strings to strings"));
                };
                if field == "labels" {
                    let name_part = k.rsplit('/').next().unwrap_or(k);
                    meta::check_label(name_part, v).map_err(|e| e.to_string())?;
                }
            }
        }
    }
    Ok(())
}

/// Adds the app's labels (without overriding the template's) and the source annotation, then
/// serializes the object and adds it.
fn push_rendered(
    _ctx: &Context<'_>,
    doc: serde_yaml_ng::Value,
    labels: &BTreeMap<String, String>,
    source: &str,
    out: &mut Objects,
) -> Result<(), EmitError> {
    let mut doc = doc;
    let api_version = str_at(&doc, "apiVersion").unwrap_or_default().to_string();
    let kind = str_at(&doc, "kind").unwrap_or_default().to_string();
    let name = doc
        .get("metadata")
        .and_then(|m| str_at(m, "name"))
        .unwrap_or_default()
        .to_string();
    if let Some(metadata) = doc
        .get_mut("metadata")
        .and_then(serde_yaml_ng::Value::as_mapping_mut)
    {
        for (field, extra) in [
            ("labels", labels.clone()),
            (
                "annotations",
                BTreeMap::from([(SOURCE_ANNOTATION.to_string(), source.to_string())]),
            ),
        ] {
            let key = serde_yaml_ng::Value::from(field);
            if metadata.get(&key).is_none() {
                metadata.insert(
                    key.clone(),
                    serde_yaml_ng::Value::Mapping(Default::default()),
                );
            }
            if let Some(map) = metadata
                .get_mut(&key)
                .and_then(serde_yaml_ng::Value::as_mapping_mut)
            {
                for (k, v) in extra {
                    let k = serde_yaml_ng::Value::from(k);
                    if map.get(&k).is_none() {
                        map.insert(k, serde_yaml_ng::Value::from(v));
                    }
                }
            }
        }
    }
    let text = yaml::to_yaml(&doc).map_err(|message| EmitError::Serialize {
        what: format!("{kind} `{name}`"),
        message,
    })?;
    out.push_yaml(&api_version, &kind, &name, text)
}

/// The context of a standard template for one target (a service or the runtime).
fn target_context(
    ctx: &Context<'_>,
    name: &str,
    label_name: &str,
    component: Component,
    source: &sflow_compiler::lower::plan::SourceRef,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut target = json!({
        "name": name,
        "portName": "http",
        "component": component.as_str(),
        "cpuUtilization": conventions::HPA_CPU_UTILIZATION.to_string(),
        "metricsPath": conventions::METRICS_PATH,
    });
    if let (Some(t), Some(e)) = (target.as_object_mut(), extra.as_object()) {
        t.extend(e.clone());
    }
    json!({
        "app": ctx.plan.app,
        "namespace": ctx.namespace,
        "labels": ctx.labels(label_name, component),
        "selector": ctx.selector_labels(label_name, component),
        "annotations": ctx.annotations(source),
        "target": target,
    })
}

/// The standard templates the app selects.
pub fn stdlib_objects(ctx: &Context<'_>, out: &mut Objects) -> Result<(), EmitError> {
    let mut renders: Vec<(&str, serde_json::Value)> = Vec::new();
    if ctx.plan.app.autoscaler == Some(Autoscaler::Keda) {
        for s in &ctx.plan.services {
            let extra = json!({"minReplicas": s.min_replicas.max(1), "maxReplicas": s.max_replicas.max(s.min_replicas).max(1), "port": s.port});
            renders.push((
                "keda-scaledobject.yaml.hbs",
                target_context(
                    ctx,
                    &s.kube_name,
                    &s.kube_name,
                    Component::Service,
                    &s.source,
                    extra,
                ),
            ));
        }
    }
    if ctx.plan.app.monitoring == Some(Monitoring::Prometheus) {
        let runtime = names::runtime(&ctx.app);
        let app = ctx.app.clone();
        renders.push((
            "prometheus-servicemonitor.yaml.hbs",
            target_context(
                ctx,
                &runtime,
                &app,
                Component::Runtime,
                &ctx.plan.app.source,
                json!({"port": RUNTIME_PORT}),
            ),
        ));
        for s in &ctx.plan.services {
            renders.push((
                "prometheus-servicemonitor.yaml.hbs",
                target_context(
                    ctx,
                    &s.kube_name,
                    &s.kube_name,
                    Component::Service,
                    &s.source,
                    json!({"port": s.port}),
                ),
            ));
        }
    }
    for (template, context) in renders {
        for doc in render(template, std_template(template), &context)? {
            out_push_std(ctx, doc, out)?;
        }
    }
    Ok(())
}

fn out_push_std(
    ctx: &Context<'_>,
    doc: serde_yaml_ng::Value,
    out: &mut Objects,
) -> Result<(), EmitError> {
    let source = doc
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| str_at(a, SOURCE_ANNOTATION))
        .unwrap_or_default()
        .to_string();
    push_rendered(ctx, doc, &BTreeMap::new(), &source, out)
}

/// The context of a user template: the plan's fields at the top, plus `sflow` with what the
/// objects should carry (`labels`, `namespace`, `version`, `image`).
pub fn user_context(ctx: &Context<'_>) -> serde_json::Value {
    let mut context = serde_json::to_value(ctx.plan).unwrap_or_default();
    if let Some(map) = context.as_object_mut() {
        map.insert(
            "sflow".to_string(),
            json!({
                "labels": ctx.labels(&ctx.app, Component::Extension),
                "namespace": ctx.namespace,
                "version": ctx.version(),
                "image": ctx.sflow_image,
            }),
        );
    }
    context
}

/// The objects of one user template.
pub fn user_objects(
    ctx: &Context<'_>,
    template: &UserTemplate,
    out: &mut Objects,
) -> Result<(), EmitError> {
    let docs = render(&template.name, &template.text, &user_context(ctx))?;
    for doc in docs {
        let name = doc
            .get("metadata")
            .and_then(|m| str_at(m, "name"))
            .unwrap_or_default()
            .to_string();
        let mut labels = ctx.labels(&ctx.app, Component::Extension);
        if name.len() <= 63 {
            labels.insert(meta::NAME.to_string(), name);
        }
        push_rendered(
            ctx,
            doc,
            &labels,
            &format!("template:{}", template.name),
            out,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_reads_back_exactly() {
        for s in [
            "plain",
            "a\"b",
            "a\\b",
            "line\nbreak: x",
            "---",
            "{{x}}",
            "é😀",
            "\u{7f}\u{85}\u{2028}",
            "tab\there",
        ] {
            let text = format!("k: {}\n", yaml_quote(s));
            let back: BTreeMap<String, String> = serde_yaml_ng::from_str(&text).expect("parses");
            assert_eq!(back["k"], s);
            assert!(yaml_quote(s).is_ascii());
        }
    }

    #[test]
    fn unescaped_output_is_refused() {
        let ctx = json!({"x": "v"});
        for text in [
            "a: {{{x}}}\n",
            "{{#if x}}a: {{{x}}}{{/if}}\n",
            "a: {{& x}}\n",
        ] {
            let e = render("t", text, &ctx);
            assert!(
                matches!(e, Err(EmitError::Template { .. })),
                "{text}: {e:?}"
            );
        }
    }

    #[test]
    fn missing_values_are_errors() {
        let e = render(
            "t",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{nope}}\n",
            &json!({}),
        );
        assert!(matches!(e, Err(EmitError::Template { .. })), "{e:?}");
    }
}
