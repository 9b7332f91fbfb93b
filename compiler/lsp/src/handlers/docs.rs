//! Short documentation of the language's built-in words, shown by hover and completion: the
//! built-in types, the fields of `app`, steps, services and `resources`, the keywords, and
//! the meaning of unit suffixes. (Declarations document themselves with `///` comments.)

/// `(name, one-line description)` of each built-in type.
pub const TYPES: &[(&str, &str)] = &[
    ("int", "a whole number"),
    ("float", "a number"),
    (
        "ratio",
        "a float in [0, 1] (a subtype of `float`); literals outside the range are errors",
    ),
    ("bool", "`true` or `false`"),
    ("string", "text, with `{{ … }}` templates"),
    (
        "duration",
        "a length of time: `250ms`, `10s`, `5m`, `2h`, `1d`; never compares with a plain number",
    ),
    ("cpu", "a cpu quantity: `2` cores or `500m` millicores"),
    (
        "memory",
        "a memory quantity: `512Mi`, `4Gi` (`Ki Mi Gi Ti Pi Ei`, `k M G T P E`) or plain bytes",
    ),
    (
        "Dataset",
        "an artifact: a dataset a step produces or a data source (`mnist(…)`)",
    ),
    (
        "Model",
        "an artifact: a model; it carries the metrics of the step that produced it",
    ),
    ("File", "an artifact: one file"),
    ("Dir", "an artifact: a directory"),
    ("Batch", "samples collected at run time, with `.size: int`"),
    (
        "Service",
        "a service: `.model`, `.latency.p50/.p95/.p99`, `.requests`, `.errors`, `.replicas`",
    ),
    ("Workflow", "a workflow"),
    ("Detector", "a drift detector (see `std.detectors`)"),
    ("LabelSource", "where labels come from (see `std.labels`)"),
    (
        "Objective",
        "what `Improver.tune` optimizes: `maximize(WORKFLOW.STEP.METRIC)` or `minimize(…)`",
    ),
    (
        "Search",
        "how `Improver.tune` proposes trials: `tpe(…)` or `random_search()`",
    ),
    ("list", "`list<T>`: a list of values of type T"),
];

/// `(block, field, description)` of the fields of `app`, steps, services and `resources`.
pub const FIELDS: &[(&str, &str, &str)] = &[
    ("app", "namespace", "the Kubernetes namespace (a DNS-1123 label); default: the app name"),
    ("app", "registry", "the image registry that `{{app.registry}}` stands for"),
    ("app", "labels", "a record of strings: labels put on every object"),
    ("app", "storage", "a memory quantity: the size of the artifacts volume (default 10Gi)"),
    ("step", "image", "the container image that runs the step (pin a tag)"),
    ("step", "run", "the command; `{{param}}`, `{{inputs.X}}`, `{{outputs.X}}` are substituted"),
    ("step", "uses", "a std step: `uses = train_classifier(…)` takes its command, ports and metrics"),
    ("step", "after", "steps that must finish first, without passing artifacts: `[a, b]`"),
    ("step", "cache", "reuse the outputs of an identical earlier run"),
    ("step", "env", "a record of strings: extra environment variables"),
    ("step", "input", "`input NAME: TYPE = SOURCE`: an artifact the step reads, bound to a step output or a data source"),
    ("step", "output", "`output NAME: TYPE`: an artifact the step writes (Dataset, Model, File, Dir)"),
    ("step", "metric", "`metric NAME: TYPE`: a value the step reports in the JSON file named by SFLOW_METRICS"),
    ("step", "resources", "`resources { cpu = …, memory = …, gpu = … }`"),
    ("step", "retry", "`retry N [backoff D]`: attempts after a failure (0..100)"),
    ("step", "timeout", "`timeout D`: the step fails when it runs longer"),
    ("service", "model", "the served model: a step output of type Model (`training.fit.model`)"),
    ("service", "image", "the server image (default: the built-in TorchScript server)"),
    ("service", "replicas", "`MIN..MAX` (autoscaled) or one number"),
    ("service", "port", "the port the server listens on (1..65535, default 8080)"),
    ("service", "slo", "`slo latency.p95 < 50ms` or `slo errors < 0.01`: an objective"),
    ("service", "resources", "`resources { cpu = …, memory = …, gpu = … }` of each replica"),
    ("resources", "cpu", "cores (`2`) or millicores (`500m`)"),
    ("resources", "memory", "`512Mi`, `4Gi`, …"),
    ("resources", "gpu", "the number of GPUs"),
];

/// `(keyword, description)`.
pub const KEYWORDS: &[(&str, &str)] = &[
    ("app", "`app NAME { … }`: the application; exactly one per program"),
    ("use", "`use std.a.b`, `use std.a.{x, y}` or `use \"./other.sflow\"`: import"),
    ("type", "`type NAME = TYPE`: a type alias"),
    ("workflow", "`workflow NAME { param …; step … }`: a DAG of steps"),
    ("param", "`param NAME: TYPE [= DEFAULT] [in SPACE]`: a workflow parameter, tunable over its space"),
    ("step", "`step NAME { … }`: a step of a workflow"),
    ("service", "`service NAME { model = …; replicas = …; slo … }`: online serving of a model"),
    ("agent", "`agent NAME: KIND { config = …, … }`, or `agent kind NAME { … }` to declare a kind"),
    ("kind", "`agent kind NAME { config …; sensor …; action … }`: a user-declared agent kind"),
    ("config", "`config NAME: TYPE [= DEFAULT]`: a setting of an agent kind"),
    ("sensor", "`sensor NAME: TYPE`: a value an agent keeps current"),
    ("action", "`action NAME(PARAMS) [-> run W | -> webhook URL]`: something an agent can do"),
    ("trigger", "`trigger NAME: SOURCE -> ACTION`: starts work on a schedule, a counter, an event or a webhook"),
    ("schedule", "`schedule \"CRON\"`: fires on a cron schedule"),
    ("every", "`every N AGENT.SENSOR`: fires each time an int counter sensor grows by N"),
    ("on", "`on EVENT`: fires on `WORKFLOW.started|succeeded|failed` or `SERVICE.model.replaced|rolled_back`, `SERVICE.scaled`"),
    ("webhook", "`webhook \"/path\"`: fires on a POST to the runtime's control API"),
    ("policy", "`policy NAME { when COND [for D] then ACTION … }`: a guarded rule"),
    ("when", "`when COND`: the policy's condition (a bool)"),
    ("for", "`for D`: how long the condition must hold before the policy fires"),
    ("then", "`then ACTION[, ACTION]`: what the policy does, in order"),
    ("cooldown", "`cooldown D`: the least time between two firings"),
    ("max", "`max N per D`: at most N firings per window D"),
    ("run", "`run WORKFLOW [with { param = value }]`: starts a workflow run"),
    ("with", "`with { param = value, … }`: overrides params of the run"),
    ("extern", "`extern fn` / `extern step`: a declaration implemented natively (standard library only)"),
    ("and", "logical and"),
    ("or", "logical or"),
    ("not", "logical not"),
];

/// The description of built-in type `name`.
pub fn ty(name: &str) -> Option<&'static str> {
    TYPES.iter().find(|(n, _)| *n == name).map(|(_, d)| *d)
}

/// The description of keyword `name`.
pub fn keyword(name: &str) -> Option<&'static str> {
    KEYWORDS.iter().find(|(n, _)| *n == name).map(|(_, d)| *d)
}

/// The description of field `name` of `block` (`app`, `step`, `service`, `resources`).
pub fn field(block: &str, name: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .find(|(b, n, _)| *b == block && *n == name)
        .map(|(_, _, d)| *d)
}

/// What a number with a unit suffix means. `cpu_context`/`duration_context` say what the
/// place it stands expects, when known (an `m` suffix is minutes or millicores).
pub fn unit(literal: &str, cpu_context: bool, duration_context: bool) -> Option<String> {
    // The suffix starts at the first letter that is not an exponent (`1e-3` has none).
    let bytes = literal.as_bytes();
    let split = (0..bytes.len()).find(|&i| {
        let c = bytes[i];
        let exponent = (c == b'e' || c == b'E')
            && bytes
                .get(i + 1)
                .is_some_and(|n| n.is_ascii_digit() || *n == b'+' || *n == b'-');
        c.is_ascii_alphabetic() && !exponent
    })?;
    let (digits, unit) = literal.split_at(split);
    let duration = |word: &str| format!("`{literal}`: a duration of {digits} {word}");
    let memory =
        |factor: &str| format!("`{literal}`: a memory quantity of {digits} × {factor} bytes");
    Some(match unit {
        "ms" => duration("milliseconds"),
        "s" => duration("seconds"),
        "h" => duration("hours"),
        "d" => duration("days"),
        "m" if cpu_context => format!("`{literal}`: {digits} millicores of cpu ({} cores)", millis(digits)),
        "m" if duration_context => duration("minutes"),
        "m" => format!("`{literal}`: {digits} minutes where a duration is expected, {digits} millicores where a cpu quantity is"),
        "Ki" => memory("1024"),
        "Mi" => memory("1024²"),
        "Gi" => memory("1024³"),
        "Ti" => memory("1024⁴"),
        "Pi" => memory("1024⁵"),
        "Ei" => memory("1024⁶"),
        "k" => memory("1000"),
        "M" => memory("1000²"),
        "G" => memory("1000³"),
        "T" => memory("1000⁴"),
        "P" => memory("1000⁵"),
        "E" => memory("1000⁶"),
        _ => format!("`{literal}`: `{unit}` is not a unit: durations take `ms s m h d`, memory `Ki Mi Gi Ti Pi Ei` or `k M G T P E`, cpu `m`"),
    })
}

fn millis(digits: &str) -> String {
    digits
        .parse::<f64>()
        .map_or_else(|_| "?".into(), |v| format!("{}", v / 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_in_words() {
        assert_eq!(
            unit("500m", true, false).as_deref(),
            Some("`500m`: 500 millicores of cpu (0.5 cores)")
        );
        assert_eq!(
            unit("30m", false, true).as_deref(),
            Some("`30m`: a duration of 30 minutes")
        );
        assert!(unit("4Gi", false, false).is_some_and(|s| s.contains("1024³")));
        assert_eq!(unit("42", false, false), None);
        assert_eq!(unit("1e-3", false, false), None);
        assert!(unit("1Ei", false, false).is_some_and(|s| s.contains("1024⁶")));
    }
}
