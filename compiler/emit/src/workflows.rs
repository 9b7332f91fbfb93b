//! Workflows as Argo `WorkflowTemplate`s, `schedule` triggers as `CronWorkflow`s.
//!
//! A workflow becomes one DAG template ([`DAG_TEMPLATE`]) whose tasks are the steps, with the
//! plan's dependencies, and one container template per step, named after the step.
//!
//! Artifacts are passed by path on the app's `ReadWriteMany` volume, mounted at `/artifacts`
//! in every step pod: step `S` of run `R` writes output `O` to
//! `/artifacts/runs/R/S/outputs/O` and records that path in an output parameter `output-O`;
//! a step that consumes it receives the path as its input parameter `input-I`, from the
//! producing task's output parameter. A cached step that Argo skips replays the output
//! parameters of the run it reuses, so its consumers read the artifacts where that run left
//! them. No artifact repository is needed.

use crate::argo::{
    self, Arguments, Backoff, Cache, CronWorkflow, CronWorkflowSpec, DagTask, DagTemplate, Memoize,
    Metadata, Outputs, Parameter, PodGc, RetryStrategy, Template, TtlStrategy, ValueFrom,
    WorkflowSpec, WorkflowTemplate, WorkflowTemplateRef,
};
use crate::conventions::SOURCE_ANNOTATION;
use crate::conventions::{
    self, names, CACHE_MAX_AGE, DAG_TEMPLATE, LABELLED_PARAM, METRICS_FILE, METRICS_OUTPUT,
    OUTPUT_PATHS_DIR, RUNS_DIR, STEP_LABEL, TRIGGER_LABEL, WORKFLOW_LABEL,
};
use crate::meta::{hex, Component, Context};
use crate::pod::{self, ARTIFACTS_VOLUME};
use crate::{EmitError, Objects};
use k8s_openapi::api::core::v1::{Container, EnvVar, LocalObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sflow_compiler::lower::plan::{
    ActionPlan, Expr, InputPlan, InputSource, PlanType, StepPlan, StepRun, TemplatePart,
    TriggerPlan, TriggerSourcePlan, UnaryOp, Value, WorkflowPlan,
};
use sflow_compiler::values;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

/// The Argo parameter carrying the path of input `name`.
pub fn input_param(name: &str) -> String {
    format!("input-{name}")
}

/// The Argo output parameter carrying the path of output `name`.
pub fn output_param(name: &str) -> String {
    format!("output-{name}")
}

/// The directory of a step's files in the current run.
pub fn step_dir(step: &StepPlan) -> String {
    format!("{RUNS_DIR}/{{{{workflow.name}}}}/{}", step.kube_name)
}

/// Where a step writes output `name` in the current run.
pub fn output_path(step: &StepPlan, name: &str) -> String {
    format!("{}/outputs/{name}", step_dir(step))
}

/// Where a data-source input `name` of a step is materialized in the current run.
pub fn data_input_path(step: &StepPlan, name: &str) -> String {
    format!("{}/inputs/{name}", step_dir(step))
}

/// The path a step reads input `input` from (an Argo expression for a step-bound input).
pub fn input_path(step: &StepPlan, input: &InputPlan) -> String {
    match input.from {
        InputSource::Step { .. } => {
            format!("{{{{inputs.parameters.{}}}}}", input_param(&input.name))
        }
        InputSource::Data { .. } => data_input_path(step, &input.name),
    }
}

/// `SFLOW_PARAM_LR` for `lr`, and so on: the contract's variable names.
pub fn env_name(prefix: &str, name: &str) -> String {
    format!("{prefix}{}", name.to_ascii_uppercase())
}

/// A value as the step contract writes it in text: decimal numbers, `true`/`false`, strings as
/// they are, durations in seconds with an `s` (`90s`, `0.25s`), cpu in millicores (`500m`),
/// memory in bytes; lists and records as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Int { value } => value.to_string(),
        Value::Float { value } => value.to_string(),
        Value::Bool { value } => value.to_string(),
        Value::String { value } => value.clone(),
        Value::Duration { ms } => {
            let (secs, millis) = (ms / 1000, ms % 1000);
            if millis == 0 {
                format!("{secs}s")
            } else {
                format!("{secs}.{}s", format!("{millis:03}").trim_end_matches('0'))
            }
        }
        Value::Cpu { millis } => format!("{millis}m"),
        Value::Memory { bytes } => bytes.to_string(),
        Value::Range { min, max } => format!("{}..{}", value_text(min), value_text(max)),
        Value::List { .. } | Value::Record { .. } => {
            serde_json::to_string(&value_json(v)).unwrap_or_default()
        }
    }
}

fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::List { items } => serde_json::Value::Array(items.iter().map(value_json).collect()),
        Value::Record { fields } => serde_json::Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), value_json(v)))
                .collect(),
        ),
        Value::Int { value } => serde_json::Value::from(*value),
        Value::Float { value } => serde_json::Value::from(*value),
        Value::Bool { value } => serde_json::Value::from(*value),
        other => serde_json::Value::String(value_text(other)),
    }
}

/// The text of a constant expression (a literal, or a negated one); `None` for anything the
/// runtime must evaluate.
pub fn const_text(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal { value } => Some(value_text(value)),
        Expr::Unary {
            op: UnaryOp::Neg,
            operand,
            ..
        } => match operand.as_ref() {
            Expr::Literal {
                value: Value::Int { value },
            } => Some((-value).to_string()),
            Expr::Literal {
                value: Value::Float { value },
            } => Some((-value).to_string()),
            _ => None,
        },
        Expr::Template { parts }
            if parts.iter().all(|p| matches!(p, TemplatePart::Text { .. })) =>
        {
            Some(
                parts
                    .iter()
                    .map(|p| match p {
                        TemplatePart::Text { text } => text.as_str(),
                        _ => "",
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

/// Quotes a string for `/bin/sh`.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Every WorkflowTemplate, in source order.
pub fn workflow_templates(ctx: &Context<'_>, out: &mut Objects) -> Result<(), EmitError> {
    for w in &ctx.plan.workflows {
        for s in &w.steps {
            if let StepRun::Command { image, .. } = &s.run {
                if image.trim().is_empty() {
                    return Err(EmitError::MissingImage {
                        workflow: w.name.clone(),
                        step: s.name.clone(),
                    });
                }
            }
        }
        let object = workflow_template(ctx, w);
        out.push(argo::API_VERSION, "WorkflowTemplate", &w.kube_name, &object)?;
    }
    Ok(())
}

/// The labels of a workflow's runs and step pods.
fn run_labels(ctx: &Context<'_>, w: &WorkflowPlan) -> BTreeMap<String, String> {
    let mut labels = ctx.pod_labels(&w.kube_name, Component::Workflow);
    labels.insert(WORKFLOW_LABEL.to_string(), w.kube_name.clone());
    labels
}

/// A workflow's `WorkflowTemplate`.
pub fn workflow_template(ctx: &Context<'_>, w: &WorkflowPlan) -> WorkflowTemplate {
    let mut metadata = ctx.meta(&w.kube_name, &w.kube_name, Component::Workflow, &w.source);
    if let (Some(doc), Some(annotations)) = (&w.doc, metadata.annotations.as_mut()) {
        annotations.insert("workflows.argoproj.io/description".to_string(), doc.clone());
    }
    let mut parameters: Vec<Parameter> = w
        .params
        .iter()
        .map(|p| Parameter::value(p.name.clone(), p.default.as_ref().map(value_text)))
        .collect();
    parameters.push(Parameter {
        description: Some(
            "Set by the runtime in runs started by an Improver: the newly labelled samples."
                .to_string(),
        ),
        ..Parameter::value(LABELLED_PARAM, Some(String::new()))
    });

    let mut templates = vec![dag_template(w)];
    templates.extend(w.steps.iter().map(|s| step_template(ctx, w, s)));

    WorkflowTemplate {
        api_version: argo::API_VERSION,
        kind: "WorkflowTemplate",
        metadata,
        spec: WorkflowSpec {
            entrypoint: Some(DAG_TEMPLATE.to_string()),
            arguments: Some(Arguments { parameters }),
            service_account_name: Some(names::workflow(&ctx.app)),
            security_context: Some(pod::pod_security_context()),
            pod_spec_patch: Some(executor_patch()),
            pod_metadata: Some(Metadata {
                labels: run_labels(ctx, w),
                annotations: BTreeMap::new(),
            }),
            workflow_metadata: Some(Metadata {
                labels: run_labels(ctx, w),
                annotations: BTreeMap::new(),
            }),
            pod_gc: Some(PodGc {
                strategy: "OnPodSuccess".to_string(),
            }),
            ttl_strategy: Some(TtlStrategy {
                seconds_after_completion: conventions::WORKFLOW_TTL_SECONDS,
            }),
            volumes: vec![
                pod::artifacts_volume(&names::artifacts(&ctx.app), false),
                pod::tmp_volume(),
            ],
            templates,
            ..Default::default()
        },
    }
}

/// A workflow's steps by name.
fn steps_by_name(w: &WorkflowPlan) -> HashMap<&str, &StepPlan> {
    w.steps.iter().map(|s| (s.name.as_str(), s)).collect()
}

/// Argo adds its own containers to every step pod: `init` (an init container) and `wait`
/// (next to `main`). This patch gives them what the "restricted" Pod Security Standard asks of
/// every container beyond the pod-level settings (non-root, RuntimeDefault seccomp, which they
/// inherit): no privilege escalation and no capabilities. So the namespace can enforce
/// "restricted" whatever the controller's `executor.securityContext`.
pub fn executor_patch() -> String {
    let hardened = serde_json::json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": true,
    });
    serde_json::json!({
        "initContainers": [{"name": "init", "securityContext": hardened}],
        "containers": [{"name": "wait", "securityContext": hardened}],
    })
    .to_string()
}

fn kube_of(steps: &HashMap<&str, &StepPlan>, step: &str) -> String {
    steps
        .get(step)
        .map_or_else(|| values::kube_name(step), |s| s.kube_name.clone())
}

/// The DAG: one task per step, in the plan's topological order.
fn dag_template(w: &WorkflowPlan) -> Template {
    let by_name = steps_by_name(w);
    let ordered: Vec<&StepPlan> = {
        let mut seen: HashSet<&str> = HashSet::with_capacity(w.steps.len());
        let mut steps: Vec<&StepPlan> = Vec::with_capacity(w.steps.len());
        for s in w
            .order
            .iter()
            .filter_map(|n| by_name.get(n.as_str()).copied())
            .chain(w.steps.iter())
        {
            if seen.insert(s.name.as_str()) {
                steps.push(s);
            }
        }
        steps
    };
    let param_args: Vec<Parameter> = w
        .params
        .iter()
        .map(|p| {
            Parameter::value(
                p.name.clone(),
                Some(format!("{{{{workflow.parameters.{}}}}}", p.name)),
            )
        })
        .collect();
    let tasks = ordered
        .into_iter()
        .map(|s| {
            let mut parameters = param_args.clone();
            for input in &s.inputs {
                if let InputSource::Step { step, output } = &input.from {
                    parameters.push(Parameter::value(
                        input_param(&input.name),
                        Some(format!(
                            "{{{{tasks.{}.outputs.parameters.{}}}}}",
                            kube_of(&by_name, step),
                            output_param(output)
                        )),
                    ));
                }
            }
            DagTask {
                name: s.kube_name.clone(),
                template: s.kube_name.clone(),
                dependencies: s.depends_on.iter().map(|d| kube_of(&by_name, d)).collect(),
                arguments: (!parameters.is_empty()).then_some(Arguments { parameters }),
            }
        })
        .collect();
    Template {
        name: DAG_TEMPLATE.to_string(),
        dag: Some(DagTemplate { tasks }),
        ..Default::default()
    }
}

/// The environment of the step contract (and the user's `env`), sorted by name. The user's
/// variables come first, so the contract's own win a clash.
fn step_env(ctx: &Context<'_>, w: &WorkflowPlan, s: &StepPlan, user: bool) -> Vec<EnvVar> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("HOME".to_string(), conventions::TMP_MOUNT.to_string());
    if user {
        env.extend(s.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        // Templated values become what `run` would see: Argo parameters and artifact paths.
        env.extend(
            s.env_templates
                .iter()
                .map(|(k, parts)| (k.clone(), render_command(ctx, s, parts))),
        );
    }
    env.insert("SFLOW_APP".to_string(), ctx.plan.app.name.clone());
    env.insert("SFLOW_WORKFLOW".to_string(), w.name.clone());
    env.insert("SFLOW_STEP".to_string(), s.name.clone());
    env.insert("SFLOW_RUN".to_string(), "{{workflow.name}}".to_string());
    env.insert("SFLOW_METRICS".to_string(), METRICS_FILE.to_string());
    env.insert(
        "SFLOW_OUTPUT_PATHS".to_string(),
        OUTPUT_PATHS_DIR.to_string(),
    );
    for p in &w.params {
        env.insert(
            env_name("SFLOW_PARAM_", &p.name),
            format!("{{{{inputs.parameters.{}}}}}", p.name),
        );
    }
    for input in &s.inputs {
        env.insert(env_name("SFLOW_INPUT_", &input.name), input_path(s, input));
    }
    if s.inputs.iter().any(|i| i.ty == PlanType::Dataset) {
        env.insert(
            "SFLOW_INPUT_LABELLED".to_string(),
            format!("{{{{workflow.parameters.{LABELLED_PARAM}}}}}"),
        );
    }
    for output in &s.outputs {
        env.insert(
            env_name("SFLOW_OUTPUT_", &output.name),
            output_path(s, &output.name),
        );
    }
    env.into_iter()
        .map(|(name, value)| EnvVar {
            name,
            value: Some(value),
            value_from: None,
        })
        .collect()
}

/// The shell script of a user step: prepare the outputs, run the command, check the metrics.
pub fn step_script(ctx: &Context<'_>, s: &StepPlan, command: &[TemplatePart]) -> String {
    let mut script = String::new();
    let mut dirs = vec![
        OUTPUT_PATHS_DIR.to_string(),
        format!("{}/outputs", step_dir(s)),
    ];
    for o in &s.outputs {
        if matches!(o.ty, PlanType::Dataset | PlanType::Dir) {
            dirs.push(output_path(s, &o.name));
        }
    }
    script.push_str("# sflow: create the output directories and record where each output goes.\n");
    let quoted: Vec<String> = dirs.iter().map(|d| sh_quote(d)).collect();
    let _ = writeln!(script, "mkdir -p {} || exit 1", quoted.join(" "));
    for o in &s.outputs {
        let _ = writeln!(
            script,
            "printf '%s' {} > {} || exit 1",
            sh_quote(&output_path(s, &o.name)),
            sh_quote(&format!("{OUTPUT_PATHS_DIR}/{}", o.name))
        );
    }
    if s.inputs.iter().any(|i| i.ty == PlanType::Dataset) {
        script.push_str("[ -n \"${SFLOW_INPUT_LABELLED:-}\" ] || unset SFLOW_INPUT_LABELLED\n");
    }
    script.push_str("# The step's `run`:\n(\n");
    script.push_str(&render_command(ctx, s, command));
    script.push_str("\n) || exit $?\n");
    if !s.metrics.is_empty() {
        script.push_str(
            "# sflow: the step must report its metrics (the runtime checks their types).\n",
        );
        let _ = writeln!(
            script,
            "[ -s {METRICS_FILE} ] || {{ echo {} >&2; exit 1; }}",
            sh_quote(&format!(
                "sflow: step `{}` wrote no metrics to $SFLOW_METRICS ({METRICS_FILE})",
                s.name
            ))
        );
        let _ = writeln!(script, "sflow_metrics=$(cat {METRICS_FILE}) || exit 1");
        for m in &s.metrics {
            let _ = writeln!(
                script,
                "case \"$sflow_metrics\" in *{}*) ;; *) echo {} >&2; exit 1 ;; esac",
                sh_quote(&format!("\"{}\"", m.name)),
                sh_quote(&format!(
                    "sflow: step `{}` did not report its metric `{}` in $SFLOW_METRICS",
                    s.name, m.name
                ))
            );
        }
    }
    script
}

/// A `run` command with its templates resolved to Argo parameters and paths.
pub fn render_command(ctx: &Context<'_>, s: &StepPlan, parts: &[TemplatePart]) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            TemplatePart::Text { text } => out.push_str(text),
            TemplatePart::Param { name } => {
                let _ = write!(out, "{{{{inputs.parameters.{name}}}}}");
            }
            TemplatePart::Input { name } => match s.inputs.iter().find(|i| &i.name == name) {
                Some(input) => out.push_str(&input_path(s, input)),
                None => out.push_str(&data_input_path(s, name)),
            },
            TemplatePart::Output { name } => out.push_str(&output_path(s, name)),
            TemplatePart::App { field } => out.push_str(match field.as_str() {
                "name" => &ctx.plan.app.name,
                "namespace" => &ctx.plan.app.namespace,
                "registry" => ctx.plan.app.registry.as_deref().unwrap_or(""),
                _ => "",
            }),
        }
    }
    out
}

/// A step's container template.
fn step_template(ctx: &Context<'_>, w: &WorkflowPlan, s: &StepPlan) -> Template {
    let resources = pod::resources(
        &s.resources,
        conventions::DEFAULT_STEP_CPU_MILLIS,
        conventions::DEFAULT_STEP_MEMORY_BYTES,
    );
    let mounts = || {
        vec![
            pod::mount(ARTIFACTS_VOLUME, conventions::ARTIFACTS_MOUNT, false),
            pod::tmp_mount(),
        ]
    };
    let container = match &s.run {
        StepRun::Command { image, command } => Container {
            name: "main".to_string(),
            image: Some(image.clone()),
            image_pull_policy: Some("Always".to_string()),
            command: Some(vec!["/bin/sh".to_string(), "-c".to_string()]),
            args: Some(vec![step_script(ctx, s, command)]),
            env: Some(step_env(ctx, w, s, true)),
            resources: Some(resources.clone()),
            security_context: Some(pod::container_security_context()),
            volume_mounts: Some(mounts()),
            ..Default::default()
        },
        StepRun::Std { step, args } => Container {
            name: "main".to_string(),
            image: Some(ctx.sflow_image.clone()),
            image_pull_policy: Some("Always".to_string()),
            command: Some(vec!["sflow".to_string()]),
            args: Some(vec![
                "step".to_string(),
                step.clone(),
                "--args".to_string(),
                json_args(args),
            ]),
            env: Some(step_env(ctx, w, s, true)),
            resources: Some(resources.clone()),
            security_context: Some(pod::container_security_context()),
            volume_mounts: Some(mounts()),
            ..Default::default()
        },
    };
    let init_containers = s
        .inputs
        .iter()
        .filter_map(|input| match &input.from {
            InputSource::Data { function, args } => Some(Container {
                name: format!("data-{}", values::kube_name(&input.name)),
                image: Some(ctx.sflow_image.clone()),
                image_pull_policy: Some("Always".to_string()),
                command: Some(vec!["sflow".to_string()]),
                args: Some(vec![
                    "data".to_string(),
                    function.clone(),
                    "--args".to_string(),
                    json_args(args),
                    "--out".to_string(),
                    data_input_path(s, &input.name),
                ]),
                env: Some(step_env(ctx, w, s, false)),
                resources: Some(resources.clone()),
                security_context: Some(pod::container_security_context()),
                volume_mounts: Some(mounts()),
                ..Default::default()
            }),
            InputSource::Step { .. } => None,
        })
        .collect();

    let mut inputs: Vec<Parameter> = w
        .params
        .iter()
        .map(|p| Parameter::value(p.name.clone(), None))
        .collect();
    for input in &s.inputs {
        if matches!(input.from, InputSource::Step { .. }) {
            inputs.push(Parameter::value(input_param(&input.name), None));
        }
    }
    let mut outputs: Vec<Parameter> = s
        .outputs
        .iter()
        .map(|o| Parameter {
            value_from: Some(ValueFrom {
                path: format!("{OUTPUT_PATHS_DIR}/{}", o.name),
                default: None,
            }),
            ..Parameter::value(output_param(&o.name), None)
        })
        .collect();
    outputs.push(Parameter {
        value_from: Some(ValueFrom {
            path: METRICS_FILE.to_string(),
            default: Some("{}".to_string()),
        }),
        ..Parameter::value(METRICS_OUTPUT, None)
    });

    let memoize = s.cache.then(|| Memoize {
        key: cache_key(s, &inputs),
        max_age: CACHE_MAX_AGE.to_string(),
        cache: Cache {
            config_map: LocalObjectReference {
                name: names::step_cache(&ctx.app),
            },
        },
    });
    Template {
        name: s.kube_name.clone(),
        metadata: Some(Metadata {
            labels: BTreeMap::from([(STEP_LABEL.to_string(), s.kube_name.clone())]),
            annotations: BTreeMap::from([(
                SOURCE_ANNOTATION.to_string(),
                crate::meta::source_text(&s.source),
            )]),
        }),
        inputs: (!inputs.is_empty()).then_some(Arguments { parameters: inputs }),
        outputs: Some(Outputs {
            parameters: outputs,
        }),
        init_containers,
        container: Some(container),
        active_deadline_seconds: s
            .timeout_ms
            .map(|ms| IntOrString::Int(i32::try_from(ms.div_ceil(1000)).unwrap_or(i32::MAX))),
        retry_strategy: s
            .retry
            .as_ref()
            .filter(|r| r.limit > 0)
            .map(|r| RetryStrategy {
                limit: IntOrString::Int(i32::try_from(r.limit).unwrap_or(i32::MAX)),
                retry_policy: "Always".to_string(),
                backoff: r.backoff_ms.map(|ms| Backoff {
                    duration: value_text(&Value::Duration { ms }),
                    factor: IntOrString::Int(2),
                }),
            }),
        memoize,
        ..Default::default()
    }
}

/// A std step's or data source's arguments: the plan's expression trees, as compact JSON (the
/// runtime evaluates them, reading params from `SFLOW_PARAM_*`).
fn json_args(args: &BTreeMap<String, Expr>) -> String {
    serde_json::to_string(args).unwrap_or_else(|_| "{}".to_string())
}

/// The memoization key: a digest of what the step runs (image, command or std call, inputs'
/// sources, outputs, env) and, at run time, of every input parameter (the workflow params and
/// the paths of the inputs, which name the runs that produced them). Argo evaluates the
/// expression; the result is a hex digest, a valid cache key.
pub fn cache_key(s: &StepPlan, inputs: &[Parameter]) -> String {
    let mut fingerprint = serde_json::json!({
        "run": s.run,
        "inputs": s.inputs,
        "outputs": s.outputs,
        "env": s.env,
    });
    // Only when present, so the keys of steps without templated env stay as they were.
    if !s.env_templates.is_empty() {
        fingerprint["envTemplates"] = serde_json::json!(s.env_templates);
    }
    let digest = hex(&Sha256::digest(fingerprint.to_string().as_bytes()));
    let mut key = format!(
        "{{{{=sprig.sha256sum('{}'",
        digest.get(..32).unwrap_or(&digest)
    );
    for p in inputs {
        let _ = write!(key, " + '|' + inputs.parameters['{}']", p.name);
    }
    key.push_str(")}}");
    key
}

/// Every `schedule` trigger that runs a workflow with constant params, as a CronWorkflow.
/// (Other schedules — an agent action, params computed from signals — are run by the runtime.)
pub fn cron_workflows(ctx: &Context<'_>, out: &mut Objects) -> Result<(), EmitError> {
    for t in &ctx.plan.triggers {
        if let Some(object) = cron_workflow(ctx, t) {
            out.push(argo::API_VERSION, "CronWorkflow", &t.kube_name, &object)?;
        }
    }
    Ok(())
}

/// A trigger's CronWorkflow, if it is one.
pub fn cron_workflow(ctx: &Context<'_>, t: &TriggerPlan) -> Option<CronWorkflow> {
    let TriggerSourcePlan::Schedule { cron } = &t.on else {
        return None;
    };
    let ActionPlan::Run { workflow, with } = &t.action else {
        return None;
    };
    let w = ctx.plan.workflow(workflow)?;
    let overrides: Vec<Parameter> = with
        .iter()
        .map(|(name, e)| const_text(e).map(|v| Parameter::value(name.clone(), Some(v))))
        .collect::<Option<_>>()?;
    let mut labels = run_labels(ctx, w);
    labels.insert(TRIGGER_LABEL.to_string(), t.kube_name.clone());
    Some(CronWorkflow {
        api_version: argo::API_VERSION,
        kind: "CronWorkflow",
        metadata: ctx.meta(&t.kube_name, &t.kube_name, Component::Schedule, &t.source),
        spec: CronWorkflowSpec {
            schedules: vec![cron.clone()],
            timezone: "UTC".to_string(),
            // A run still going when the next is due is left to finish; the due one is skipped.
            concurrency_policy: "Forbid".to_string(),
            successful_jobs_history_limit: 3,
            failed_jobs_history_limit: 3,
            workflow_metadata: ObjectMeta {
                labels: Some(labels),
                ..Default::default()
            },
            workflow_spec: WorkflowSpec {
                workflow_template_ref: Some(WorkflowTemplateRef {
                    name: w.kube_name.clone(),
                }),
                arguments: (!overrides.is_empty()).then_some(Arguments {
                    parameters: overrides,
                }),
                ..Default::default()
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_the_contract_says() {
        assert_eq!(value_text(&Value::Duration { ms: 90_000 }), "90s");
        assert_eq!(value_text(&Value::Duration { ms: 250 }), "0.25s");
        assert_eq!(value_text(&Value::Duration { ms: 1005 }), "1.005s");
        assert_eq!(value_text(&Value::Cpu { millis: 500 }), "500m");
        assert_eq!(value_text(&Value::Memory { bytes: 4096 }), "4096");
        assert_eq!(value_text(&Value::Float { value: 0.001 }), "0.001");
        assert_eq!(value_text(&Value::Float { value: 1e-5 }), "0.00001");
        assert_eq!(value_text(&Value::Bool { value: true }), "true");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
    }
}
