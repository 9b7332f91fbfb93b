//! The plan: the versioned intermediate representation the runtime executes.
//!
//! `plan.json` holds everything the runtime needs, resolved: names are checked, units are
//! converted (durations in milliseconds, cpu in millicores, memory in bytes), std calls are
//! fully qualified, and policies are typed expression trees. Nothing the runtime needs is left
//! in the source text.
//!
//! Compatibility: [`API_VERSION`] names the schema. Adding an optional field keeps the
//! version; any other change bumps it. The JSON Schema (`docs/plan.schema.json`) is generated
//! from these types by `sflowc schema` and checked in by a test.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The plan schema's version.
pub const API_VERSION: &str = "sflow.dev/v1alpha1";

/// A whole application, ready to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plan {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always `Plan`.
    pub kind: String,
    /// The application.
    pub app: AppPlan,
    /// Workflows, in source order.
    pub workflows: Vec<WorkflowPlan>,
    /// Services, in source order.
    pub services: Vec<ServicePlan>,
    /// Every agent kind the agents use (the prelude's and the user's).
    pub agent_kinds: Vec<AgentKindPlan>,
    /// Agents, in source order.
    pub agents: Vec<AgentPlan>,
    /// Triggers, in source order.
    pub triggers: Vec<TriggerPlan>,
    /// Policies, in source order.
    pub policies: Vec<PolicyPlan>,
}

impl Plan {
    /// The workflow named `name`.
    pub fn workflow(&self, name: &str) -> Option<&WorkflowPlan> {
        self.workflows.iter().find(|w| w.name == name)
    }

    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&ServicePlan> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The agent named `name`.
    pub fn agent(&self, name: &str) -> Option<&AgentPlan> {
        self.agents.iter().find(|a| a.name == name)
    }

    /// The agent kind named `name`.
    pub fn agent_kind(&self, name: &str) -> Option<&AgentKindPlan> {
        self.agent_kinds.iter().find(|k| k.name == name)
    }
}

/// Where a declaration is written, for annotations and messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceRef {
    /// The file, as given to the compiler.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

/// The `app` declaration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppPlan {
    /// The app name.
    pub name: String,
    /// The Kubernetes namespace (defaults to the app name).
    pub namespace: String,
    /// The registry that relative image names are pulled from.
    pub registry: Option<String>,
    /// Extra labels for every object.
    pub labels: BTreeMap<String, String>,
    /// The size of the artifacts volume, in bytes.
    pub storage_bytes: u64,
    /// `monitoring = "prometheus"`: emit Prometheus `ServiceMonitor`s for the services and the
    /// runtime. Absent: no monitoring objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<Monitoring>,
    /// `autoscaler = "hpa" | "keda"`: what scales the services. Absent: `hpa`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<Autoscaler>,
    /// `tracking = mlflow("http://…")` (`std.tracking`): where the runtime mirrors what it
    /// records. Absent: nothing is mirrored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<Tracking>,
    /// Where the app is declared.
    pub source: SourceRef,
}

/// The monitoring stack an app's objects are emitted for (`app { monitoring = "…" }`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Monitoring {
    /// Prometheus Operator `ServiceMonitor`s.
    Prometheus,
}

impl Monitoring {
    /// The spellings `app { monitoring = … }` accepts.
    pub const NAMES: &'static [&'static str] = &["prometheus"];

    /// The value spelled `name`.
    pub fn from_name(name: &str) -> Option<Monitoring> {
        match name {
            "prometheus" => Some(Monitoring::Prometheus),
            _ => None,
        }
    }
}

/// An experiment tracker the runtime mirrors into (`app { tracking = … }`, `std.tracking`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", tag = "kind", deny_unknown_fields)]
pub enum Tracking {
    /// `std.tracking.mlflow(uri)`: an MLflow tracking server, through its REST API.
    Mlflow {
        /// The server's base URL (`http://host:port`), without a trailing `/`.
        uri: String,
    },
}

/// What scales an app's services (`app { autoscaler = "…" }`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Autoscaler {
    /// A `HorizontalPodAutoscaler` (autoscaling/v2) per service.
    Hpa,
    /// A KEDA `ScaledObject` per service (KEDA then owns the HorizontalPodAutoscaler).
    Keda,
}

impl Autoscaler {
    /// The spellings `app { autoscaler = … }` accepts.
    pub const NAMES: &'static [&'static str] = &["hpa", "keda"];

    /// The value spelled `name`.
    pub fn from_name(name: &str) -> Option<Autoscaler> {
        match name {
            "hpa" => Some(Autoscaler::Hpa),
            "keda" => Some(Autoscaler::Keda),
            _ => None,
        }
    }
}

/// A type, as the plan spells it: `"int"`, `"Model"`, `{"list": "int"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PlanType {
    /// `int`
    Int,
    /// `float`
    Float,
    /// `ratio`: a float in [0, 1]
    Ratio,
    /// `bool`
    Bool,
    /// `string`
    String,
    /// `duration` (milliseconds)
    Duration,
    /// `cpu` (millicores)
    Cpu,
    /// `memory` (bytes)
    Memory,
    /// `Dataset`
    #[serde(rename = "Dataset")]
    Dataset,
    /// `Model`
    #[serde(rename = "Model")]
    Model,
    /// `File`
    #[serde(rename = "File")]
    File,
    /// `Dir`
    #[serde(rename = "Dir")]
    Dir,
    /// `Batch`
    #[serde(rename = "Batch")]
    Batch,
    /// `Service`
    #[serde(rename = "Service")]
    Service,
    /// `Workflow`
    #[serde(rename = "Workflow")]
    Workflow,
    /// `Detector`
    #[serde(rename = "Detector")]
    Detector,
    /// `LabelSource`
    #[serde(rename = "LabelSource")]
    LabelSource,
    /// `Tracking`
    #[serde(rename = "Tracking")]
    Tracking,
    /// `Objective`: what `Improver.tune` optimizes (`std.prelude.maximize`/`minimize`)
    #[serde(rename = "Objective")]
    Objective,
    /// `Search`: a search strategy (`std.prelude.random_search`/`tpe`)
    #[serde(rename = "Search")]
    Search,
    /// `list<T>`
    List(Box<PlanType>),
    /// A range of values.
    Range(Box<PlanType>),
    /// A record `{ key = value }`.
    Record,
    /// A service's latency record.
    Latency,
    /// An event.
    Event,
}

/// A literal value with its unit resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Value {
    /// An integer.
    Int {
        /// The value.
        value: i64,
    },
    /// A float (or ratio).
    Float {
        /// The value.
        value: f64,
    },
    /// A boolean.
    Bool {
        /// The value.
        value: bool,
    },
    /// A string (without interpolations).
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
    /// A list.
    List {
        /// The elements.
        items: Vec<Value>,
    },
    /// A record.
    Record {
        /// The fields.
        fields: BTreeMap<String, Value>,
    },
    /// An inclusive range.
    Range {
        /// Lower bound.
        min: Box<Value>,
        /// Upper bound.
        max: Box<Value>,
    },
}

/// A workflow: a DAG of steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowPlan {
    /// The name in the program.
    pub name: String,
    /// The Kubernetes name of its WorkflowTemplate.
    pub kube_name: String,
    /// Doc comment.
    pub doc: Option<String>,
    /// Its params.
    pub params: Vec<ParamPlan>,
    /// Its steps, in source order.
    pub steps: Vec<StepPlan>,
    /// The step names in a topological order (source order among ready steps).
    pub order: Vec<String>,
    /// Where it is declared.
    pub source: SourceRef,
}

impl WorkflowPlan {
    /// The step named `name`.
    pub fn step(&self, name: &str) -> Option<&StepPlan> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// A workflow param.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParamPlan {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: PlanType,
    /// Its default.
    pub default: Option<Value>,
    /// Its tuning search space.
    pub space: Option<SearchSpace>,
}

/// A param's search space.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum SearchSpace {
    /// `lo..hi`, uniform.
    Range {
        /// Lower bound (inclusive).
        min: Value,
        /// Upper bound (inclusive).
        max: Value,
    },
    /// `log(lo, hi)`, log-uniform.
    Log {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// `[a, b, …]`
    Choice {
        /// The choices.
        values: Vec<Value>,
    },
}

/// One step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepPlan {
    /// The name in the program.
    pub name: String,
    /// The Kubernetes name of its Argo template.
    pub kube_name: String,
    /// Doc comment.
    pub doc: Option<String>,
    /// What it runs.
    pub run: StepRun,
    /// Its inputs.
    pub inputs: Vec<InputPlan>,
    /// Its outputs.
    pub outputs: Vec<PortPlan>,
    /// The metrics it must report.
    pub metrics: Vec<PortPlan>,
    /// Every step it waits for (inputs and `after`), in the workflow's order.
    pub depends_on: Vec<String>,
    /// Resource requests (also used as limits).
    pub resources: ResourcesPlan,
    /// Retries.
    pub retry: Option<RetryPlan>,
    /// Time limit per attempt, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Whether results may be reused when command, params and inputs are unchanged.
    pub cache: bool,
    /// Extra environment: the `env` values that are constants (`{{app.*}}` is resolved at
    /// compile time, so it lands here too).
    pub env: BTreeMap<String, String>,
    /// Extra environment whose values have run-time templates (`{{param}}`,
    /// `{{inputs.NAME}}`, `{{outputs.NAME}}`), split at their templates like `run`'s command
    /// and substituted the same way. Disjoint from `env`; absent from plans without any
    /// (additive to `sflow.dev/v1alpha1`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_templates: BTreeMap<String, Vec<TemplatePart>>,
    /// Where it is declared.
    pub source: SourceRef,
}

/// What a step runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum StepRun {
    /// A container image and a shell command with templates.
    Command {
        /// The image, qualified with the app's registry unless already qualified.
        image: String,
        /// The command, split at its templates.
        command: Vec<TemplatePart>,
    },
    /// A std step implemented by the runtime.
    Std {
        /// Its qualified name, `std.torch.train_classifier`.
        step: String,
        /// Its arguments by parameter name (defaults filled in).
        args: BTreeMap<String, Expr>,
    },
}

/// A piece of a templated string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum TemplatePart {
    /// Literal text.
    Text {
        /// The text.
        text: String,
    },
    /// `{{param}}`
    Param {
        /// The param.
        name: String,
    },
    /// `{{inputs.NAME}}`: the input's path.
    Input {
        /// The input.
        name: String,
    },
    /// `{{outputs.NAME}}`: the output's path.
    Output {
        /// The output.
        name: String,
    },
    /// `{{app.FIELD}}`
    App {
        /// `name`, `namespace` or `registry`.
        field: String,
    },
}

/// An input port and what it is bound to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InputPlan {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: PlanType,
    /// What it is bound to.
    pub from: InputSource,
}

/// What an input is bound to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum InputSource {
    /// An output of another step of the workflow.
    Step {
        /// The producing step.
        step: String,
        /// Its output.
        output: String,
    },
    /// A std data source, `std.data.mnist(split = "train")`.
    Data {
        /// Its qualified name.
        function: String,
        /// Its arguments by name (defaults filled in).
        args: BTreeMap<String, Expr>,
    },
}

/// An output or a metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortPlan {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: PlanType,
}

/// Resources of a step or service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourcesPlan {
    /// CPU in millicores.
    pub cpu_millis: Option<u64>,
    /// Memory in bytes.
    pub memory_bytes: Option<u64>,
    /// GPUs.
    pub gpu: Option<u32>,
}

/// `retry N backoff D`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPlan {
    /// Retries after the first attempt.
    pub limit: u32,
    /// The first delay; it doubles after each attempt.
    pub backoff_ms: Option<u64>,
}

/// A service that serves a model online.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePlan {
    /// The name in the program.
    pub name: String,
    /// The Kubernetes name of its Deployment and Service.
    pub kube_name: String,
    /// Doc comment.
    pub doc: Option<String>,
    /// The model it serves: a step output.
    pub model: ModelRef,
    /// A custom server image; `None` runs the built-in TorchScript server.
    pub image: Option<String>,
    /// Minimum replicas.
    pub min_replicas: u32,
    /// Maximum replicas.
    pub max_replicas: u32,
    /// The port it listens on.
    pub port: u16,
    /// Its objectives.
    pub slos: Vec<SloPlan>,
    /// Resources per replica.
    pub resources: ResourcesPlan,
    /// Where it is declared.
    pub source: SourceRef,
}

/// A step output holding a model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelRef {
    /// The workflow.
    pub workflow: String,
    /// The step.
    pub step: String,
    /// The output.
    pub output: String,
}

/// `slo latency.p95 < 50ms`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SloPlan {
    /// The signal: `latency.p50`, `latency.p95`, `latency.p99` or `errors`.
    pub signal: String,
    /// `<` or `<=`.
    pub op: BinaryOp,
    /// The objective.
    pub threshold: Value,
}

/// An agent kind: what its instances are configured with, sense and do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentKindPlan {
    /// Its name.
    pub name: String,
    /// Whether the runtime implements it natively (the prelude's kinds).
    pub builtin: bool,
    /// Its configs.
    pub configs: Vec<MemberPlan>,
    /// Its sensors.
    pub sensors: Vec<MemberPlan>,
    /// Its actions.
    pub actions: Vec<ActionDeclPlan>,
}

/// A typed member (config, sensor, parameter).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberPlan {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: PlanType,
    /// Its default, if it has one.
    pub default: Option<Value>,
}

/// An action of a kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionDeclPlan {
    /// Its name.
    pub name: String,
    /// Its parameters.
    pub params: Vec<MemberPlan>,
    /// What performs it; `None`: built in, or published as an event for an external agent.
    pub binding: Option<BindingPlan>,
}

/// What performs a user-declared action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum BindingPlan {
    /// Runs a workflow; the action's params may appear in `with`.
    Run {
        /// The workflow.
        workflow: String,
        /// Param overrides.
        with: BTreeMap<String, Expr>,
    },
    /// POSTs the arguments as JSON to a URL.
    Webhook {
        /// The URL.
        url: String,
    },
}

/// An agent instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentPlan {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: String,
    /// Its configs, defaults filled in.
    pub config: BTreeMap<String, Expr>,
    /// Where it is declared.
    pub source: SourceRef,
}

/// A trigger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerPlan {
    /// Its name.
    pub name: String,
    /// The Kubernetes name (of its CronWorkflow, for schedules).
    pub kube_name: String,
    /// What sets it off.
    pub on: TriggerSourcePlan,
    /// What it does.
    pub action: ActionPlan,
    /// Where it is declared.
    pub source: SourceRef,
}

/// What sets a trigger off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum TriggerSourcePlan {
    /// A cron schedule (UTC), in standard five-field form.
    Schedule {
        /// The schedule.
        cron: String,
    },
    /// Each time a counter sensor grows by `count`.
    Every {
        /// The step of the counter.
        count: u64,
        /// The agent.
        agent: String,
        /// Its counter sensor.
        sensor: String,
    },
    /// An event.
    On {
        /// `workflow` or `service`.
        target_kind: TargetKind,
        /// The workflow or service.
        target: String,
        /// `started`, `succeeded`, `failed`, `model.replaced`, `model.rolled_back`, `scaled`.
        event: String,
    },
    /// A POST to a path of the control API.
    Webhook {
        /// The path.
        path: String,
    },
}

/// The sort of a declaration that an expression or event refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TargetKind {
    /// A workflow.
    Workflow,
    /// A service.
    Service,
    /// An agent.
    Agent,
}

/// What a trigger or policy does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ActionPlan {
    /// Run a workflow.
    Run {
        /// The workflow.
        workflow: String,
        /// Param overrides.
        with: BTreeMap<String, Expr>,
    },
    /// Call an agent's action.
    Call {
        /// The agent.
        agent: String,
        /// The action.
        action: String,
        /// Arguments by parameter name (defaults filled in).
        args: BTreeMap<String, Expr>,
    },
}

/// A policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyPlan {
    /// Its name.
    pub name: String,
    /// The condition.
    pub when: Expr,
    /// How long the condition must hold before firing, in milliseconds.
    pub hold_for_ms: Option<u64>,
    /// The actions, in order.
    pub then: Vec<ActionPlan>,
    /// Minimum time between firings, in milliseconds.
    pub cooldown_ms: Option<u64>,
    /// At most `count` firings per window.
    pub rate_limit: Option<RateLimitPlan>,
    /// The signals the condition reads: the runtime re-evaluates it when one changes.
    pub reads: Vec<Signal>,
    /// Where it is declared.
    pub source: SourceRef,
}

/// `max N per D`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitPlan {
    /// Maximum firings.
    pub count: u32,
    /// The window, in milliseconds.
    pub per_ms: u64,
}

/// A value the runtime keeps current and policies read.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Signal {
    /// An agent's sensor, or a member of it (`checker.picked.size`, `improver.candidate.accuracy`).
    Sensor {
        /// The agent.
        agent: String,
        /// The sensor.
        sensor: String,
        /// Members read from the sensor's value (`size`, `accuracy`).
        path: Vec<String>,
    },
    /// A service signal: `latency.p95`, `errors`, `requests`, `replicas`, `model.accuracy`.
    Service {
        /// The service.
        service: String,
        /// The dotted member path.
        path: Vec<String>,
    },
    /// The latest value of a step's metric.
    StepMetric {
        /// The workflow.
        workflow: String,
        /// The step.
        step: String,
        /// The metric.
        metric: String,
    },
}

impl Signal {
    /// A stable, human-readable key: `checker.picked.size`.
    pub fn key(&self) -> String {
        match self {
            Signal::Sensor {
                agent,
                sensor,
                path,
            } => {
                let mut parts = vec![agent.as_str(), sensor.as_str()];
                parts.extend(path.iter().map(String::as_str));
                parts.join(".")
            }
            Signal::Service { service, path } => {
                let mut parts = vec![service.as_str()];
                parts.extend(path.iter().map(String::as_str));
                parts.join(".")
            }
            Signal::StepMetric {
                workflow,
                step,
                metric,
            } => format!("{workflow}.{step}.{metric}"),
        }
    }
}

/// A typed expression tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(
    tag = "expr",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Expr {
    /// A literal.
    Literal {
        /// The value.
        value: Value,
    },
    /// A workflow param or an action parameter.
    Param {
        /// Its name.
        name: String,
        /// Its type.
        #[serde(rename = "type")]
        ty: PlanType,
    },
    /// A signal, read at evaluation time.
    Signal {
        /// The signal.
        signal: Signal,
        /// Its type.
        #[serde(rename = "type")]
        ty: PlanType,
    },
    /// A declaration passed by name (`planner.scale(predictor, +1)`).
    Ref {
        /// Its sort.
        target_kind: TargetKind,
        /// Its name.
        name: String,
    },
    /// A std function call (`std.detectors.autoencoder_ood(quantile = 0.99)`).
    Call {
        /// Its qualified name.
        function: String,
        /// Arguments by parameter name (defaults filled in).
        args: BTreeMap<String, Expr>,
        /// Its result type.
        #[serde(rename = "type")]
        ty: PlanType,
    },
    /// A string with templates.
    Template {
        /// The pieces.
        parts: Vec<TemplatePart>,
    },
    /// A list.
    List {
        /// The elements.
        items: Vec<Expr>,
    },
    /// A prefix operation.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        operand: Box<Expr>,
        /// The result type.
        #[serde(rename = "type")]
        ty: PlanType,
    },
    /// An infix operation.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        lhs: Box<Expr>,
        /// Right operand.
        rhs: Box<Expr>,
        /// The result type.
        #[serde(rename = "type")]
        ty: PlanType,
    },
}

/// Prefix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `not x`
    Not,
}

/// Infix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BinaryOp {
    /// `or`
    #[serde(rename = "or")]
    Or,
    /// `and`
    #[serde(rename = "and")]
    And,
    /// `==`
    #[serde(rename = "==")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
    /// `+`
    #[serde(rename = "+")]
    Add,
    /// `-`
    #[serde(rename = "-")]
    Sub,
    /// `*`
    #[serde(rename = "*")]
    Mul,
    /// `/`
    #[serde(rename = "/")]
    Div,
}
