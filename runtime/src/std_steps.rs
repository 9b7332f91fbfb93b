//! `sflow step NAME [--arg k=v]… [--args JSON]`: the process a std step runs as (a step
//! written `uses = f(args)`). The runtime starts this binary with the step contract's
//! environment, so std steps behave like user steps (logs, retries, timeouts, metrics
//! checks), locally and in a cluster.
//!
//! Arguments come in either form of the contract: `--arg k=v` (text, as the local executor
//! passes them, typed by the std step's declaration) or `--args JSON` (the plan's argument
//! expressions, as the Kubernetes manifests pass them; a `param` expression is read from
//! `SFLOW_PARAM_<NAME>`). Before the body runs, every output's parent directory exists and,
//! when `SFLOW_OUTPUT_PATHS` is set (in a cluster), each output's path is recorded there;
//! after it, the metrics in `SFLOW_METRICS` are checked against the std step's declaration.
//!
//! The bodies (`std.torch.*`, `std.explain.*`, with tch) are in `ml::steps` and need the ML
//! feature; a build without it fails these steps with "not available in this build".

use crate::executor::contract::{self, var};
use crate::executor::data;
use crate::value::{self, RtValue};
use sflow_compiler::lower::plan::{Expr, PlanType, PortPlan};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A std step's declaration (as in `stdlib/torch.sflow`): what the process checks.
#[derive(Debug)]
pub struct StdStep {
    /// `std.torch.train_classifier`.
    pub name: &'static str,
    /// What it does, in words.
    pub what: &'static str,
    /// Its parameters: name, type, default (as param text).
    pub params: &'static [(&'static str, PlanType, Option<&'static str>)],
    /// Its inputs.
    pub inputs: &'static [(&'static str, PlanType)],
    /// Its outputs.
    pub outputs: &'static [(&'static str, PlanType)],
    /// Its metrics.
    pub metrics: &'static [(&'static str, PlanType)],
}

/// The std steps the standard library declares.
pub const STD_STEPS: &[StdStep] = &[
    StdStep {
        name: "std.torch.train_classifier",
        what: "trains a classifier with tch",
        params: &[
            ("arch", PlanType::String, None),
            ("epochs", PlanType::Int, None),
            ("lr", PlanType::Float, None),
            ("batch_size", PlanType::Int, Some("64")),
            ("seed", PlanType::Int, Some("0")),
        ],
        inputs: &[("data", PlanType::Dataset)],
        outputs: &[("model", PlanType::Model)],
        metrics: &[("accuracy", PlanType::Ratio)],
    },
    StdStep {
        name: "std.torch.evaluate",
        what: "evaluates a model with tch",
        params: &[],
        inputs: &[("model", PlanType::Model), ("data", PlanType::Dataset)],
        outputs: &[("report", PlanType::File)],
        metrics: &[("accuracy", PlanType::Ratio)],
    },
    StdStep {
        name: "std.explain.saliency",
        what: "writes gradient saliency maps of an image classifier with tch",
        params: &[("samples", PlanType::Int, Some("16"))],
        inputs: &[("model", PlanType::Model), ("data", PlanType::Dataset)],
        outputs: &[("maps", PlanType::Dir)],
        metrics: &[],
    },
    StdStep {
        name: "std.explain.permutation_importance",
        what: "ranks a tabular classifier's features by permutation importance with tch",
        params: &[
            ("label", PlanType::String, Some("label")),
            ("repeats", PlanType::Int, Some("5")),
            ("seed", PlanType::Int, Some("0")),
        ],
        inputs: &[("model", PlanType::Model), ("data", PlanType::Dataset)],
        outputs: &[("report", PlanType::File)],
        metrics: &[("accuracy", PlanType::Ratio)],
    },
];

/// What a std step's body gets: typed arguments and the contract's paths.
#[derive(Clone, Debug)]
pub struct StepCall {
    /// The arguments, typed, defaults filled in.
    pub args: BTreeMap<String, RtValue>,
    /// Each input's path (`SFLOW_INPUT_<NAME>`).
    pub inputs: BTreeMap<String, PathBuf>,
    /// Each output's path (`SFLOW_OUTPUT_<NAME>`).
    pub outputs: BTreeMap<String, PathBuf>,
    /// `SFLOW_METRICS`.
    pub metrics: Option<PathBuf>,
    /// `SFLOW_INPUT_LABELLED`, when the run is an Improver's.
    pub labelled: Option<PathBuf>,
}

impl StepCall {
    /// An argument as an integer.
    pub fn int(&self, name: &str) -> Result<i64, String> {
        match self.args.get(name) {
            Some(RtValue::Int { value }) => Ok(*value),
            other => Err(format!("argument `{name}` is not an int: {other:?}")),
        }
    }

    /// An argument as a number.
    pub fn float(&self, name: &str) -> Result<f64, String> {
        self.args
            .get(name)
            .and_then(RtValue::as_f64)
            .ok_or_else(|| format!("argument `{name}` is not a number"))
    }

    /// An argument as text.
    pub fn string(&self, name: &str) -> Result<String, String> {
        match self.args.get(name) {
            Some(RtValue::String { value }) => Ok(value.clone()),
            other => Err(format!("argument `{name}` is not a string: {other:?}")),
        }
    }

    /// An input's path.
    pub fn input(&self, name: &str) -> Result<&Path, String> {
        self.inputs
            .get(name)
            .map(PathBuf::as_path)
            .ok_or_else(|| format!("input `{name}`: ${} is not set", var("INPUT", name)))
    }

    /// An output's path.
    pub fn output(&self, name: &str) -> Result<&Path, String> {
        self.outputs
            .get(name)
            .map(PathBuf::as_path)
            .ok_or_else(|| format!("output `{name}`: ${} is not set", var("OUTPUT", name)))
    }
}

/// Runs a std step; returns the process's exit code (0 success, 1 the step failed, 2 bad
/// usage or not available).
pub fn run(name: &str, kv: &[(String, String)], json: Option<&str>) -> i32 {
    let Some(decl) = STD_STEPS.iter().find(|s| s.name == name) else {
        eprintln!(
            "sflow step {name}: unknown std step (the standard library declares: {})",
            STD_STEPS
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
        return 2;
    };
    let env = |k: &str| std::env::var(k).ok();
    let call = match prepare(decl, kv, json, &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sflow step {name}: {e}");
            return 2;
        }
    };
    match body(decl, &call) {
        Ok(()) => {}
        Err(Failure::NotAvailable(msg)) => {
            eprintln!("sflow step {name}: {msg}");
            return 2;
        }
        Err(Failure::Failed(msg)) => {
            eprintln!("sflow step {name}: {msg}");
            return 1;
        }
    }
    if let Err(e) = check_result(decl, &call) {
        eprintln!("sflow step {name}: {e}");
        return 1;
    }
    0
}

/// Why a body did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// This build cannot run it.
    NotAvailable(String),
    /// It ran and failed.
    Failed(String),
}

#[cfg(feature = "ml")]
fn body(decl: &StdStep, call: &StepCall) -> Result<(), Failure> {
    crate::ml::steps::run(decl.name, call).map_err(Failure::Failed)
}

#[cfg(not(feature = "ml"))]
fn body(decl: &StdStep, call: &StepCall) -> Result<(), Failure> {
    Err(Failure::NotAvailable(format!(
        "not available in this build: std.torch and std.explain steps need the ML feature (issue 5; build with `--features ml`); \
         this step {}. Arguments received: {}",
        decl.what,
        call.args
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_param_text()))
            .collect::<Vec<_>>()
            .join(" ")
    )))
}

/// Types the arguments, reads the contract's environment, creates the outputs' parents and
/// records the output paths (`SFLOW_OUTPUT_PATHS`).
pub fn prepare(
    decl: &StdStep,
    kv: &[(String, String)],
    json: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<StepCall, String> {
    let mut args: BTreeMap<String, RtValue> = BTreeMap::new();
    if let Some(text) = json {
        let exprs: BTreeMap<String, Expr> = serde_json::from_str(text).map_err(|e| {
            format!("--args must be a JSON object of the plan's argument expressions: {e}")
        })?;
        let params = data::params_from_env(&exprs, env)?;
        let scope = crate::eval::Params {
            params: &params,
            app: None,
        };
        for (k, e) in &exprs {
            let v = crate::eval::eval(e, &scope).map_err(|m| format!("argument `{k}`: {m}"))?;
            args.insert(k.clone(), v);
        }
    }
    for (k, text) in kv {
        let ty = decl
            .params
            .iter()
            .find(|(n, _, _)| n == k)
            .map(|(_, t, _)| t.clone())
            .ok_or_else(|| unknown_arg(decl, k))?;
        let v = value::parse_param(text, &ty).map_err(|e| format!("argument `{k}`: {e}"))?;
        args.insert(k.clone(), v);
    }
    for (name, ty, default) in decl.params {
        match (args.get(*name), default) {
            (Some(v), _) => {
                // `--args` values are typed already; check them against the declaration.
                let text = v.to_param_text();
                let typed =
                    value::parse_param(&text, ty).map_err(|e| format!("argument `{name}`: {e}"))?;
                args.insert((*name).to_string(), typed);
            }
            (None, Some(d)) => {
                args.insert((*name).to_string(), value::parse_param(d, ty)?);
            }
            (None, None) => return Err(format!("argument `{name}` is missing")),
        }
    }
    if let Some(k) = args
        .keys()
        .find(|k| !decl.params.iter().any(|(n, _, _)| n == k))
    {
        return Err(unknown_arg(decl, k));
    }
    let mut inputs = BTreeMap::new();
    for (name, _) in decl.inputs {
        if let Some(p) = env(&var("INPUT", name)) {
            inputs.insert((*name).to_string(), PathBuf::from(p));
        }
    }
    let mut outputs = BTreeMap::new();
    for (name, ty) in decl.outputs {
        let key = var("OUTPUT", name);
        let p =
            PathBuf::from(env(&key).ok_or_else(|| format!("output `{name}`: ${key} is not set"))?);
        if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        if contract::is_dir_type(ty) {
            std::fs::create_dir_all(&p)
                .map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        }
        if let Some(dir) = env("SFLOW_OUTPUT_PATHS") {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            std::fs::write(dir.join(name), p.to_string_lossy().as_bytes())
                .map_err(|e| format!("cannot record output `{name}` in {}: {e}", dir.display()))?;
        }
        outputs.insert((*name).to_string(), p);
    }
    Ok(StepCall {
        args,
        inputs,
        outputs,
        metrics: env("SFLOW_METRICS").map(PathBuf::from),
        labelled: env("SFLOW_INPUT_LABELLED")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from),
    })
}

fn unknown_arg(decl: &StdStep, k: &str) -> String {
    format!(
        "`{}` has no argument `{k}` (its arguments: {})",
        decl.name,
        decl.params
            .iter()
            .map(|(n, _, _)| *n)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// After the body: every output exists and the metrics match the declaration (the same check
/// the runtime makes; in a cluster this is the one before the record).
fn check_result(decl: &StdStep, call: &StepCall) -> Result<(), String> {
    for (name, p) in &call.outputs {
        if !p.exists() {
            return Err(format!(
                "output `{name}` was not written at {}",
                p.display()
            ));
        }
    }
    if let Some(m) = &call.metrics {
        let points = contract::read_metrics_file(m)?;
        let declared: Vec<PortPlan> = decl
            .metrics
            .iter()
            .map(|(n, t)| PortPlan {
                name: (*n).to_string(),
                ty: t.clone(),
            })
            .collect();
        contract::check_metrics(&declared, &points)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(name: &str) -> &'static StdStep {
        STD_STEPS
            .iter()
            .find(|s| s.name == name)
            .unwrap_or(&STD_STEPS[0])
    }

    #[test]
    fn both_argument_forms_give_the_same_typed_call() -> Result<(), String> {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = tmp.path().join("fit/model");
        let paths = tmp.path().join("paths");
        let env_map: BTreeMap<String, String> = [
            ("SFLOW_OUTPUT_MODEL", out.to_string_lossy().into_owned()),
            ("SFLOW_INPUT_DATA", "/data".to_string()),
            ("SFLOW_PARAM_EPOCHS", "3".to_string()),
            ("SFLOW_OUTPUT_PATHS", paths.to_string_lossy().into_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let env = |k: &str| env_map.get(k).cloned();
        let d = decl("std.torch.train_classifier");
        let kv: Vec<(String, String)> = [("arch", "mlp"), ("epochs", "3"), ("lr", "0.001")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let a = prepare(d, &kv, None, &env)?;
        let json = r#"{"arch": {"expr": "literal", "value": {"type": "string", "value": "mlp"}},
            "epochs": {"expr": "param", "name": "epochs", "type": "int"},
            "lr": {"expr": "literal", "value": {"type": "float", "value": 0.001}},
            "batch_size": {"expr": "literal", "value": {"type": "int", "value": 64}},
            "seed": {"expr": "literal", "value": {"type": "int", "value": 0}}}"#;
        let b = prepare(d, &[], Some(json), &env)?;
        assert_eq!(a.args, b.args);
        assert_eq!(a.int("epochs")?, 3);
        assert_eq!(a.int("batch_size")?, 64);
        assert_eq!(a.input("data")?, Path::new("/data"));
        assert!(out.parent().is_some_and(Path::is_dir));
        assert_eq!(
            std::fs::read_to_string(paths.join("model")).map_err(|e| e.to_string())?,
            out.to_string_lossy()
        );
        let e = prepare(d, &[("depth".into(), "3".into())], None, &env)
            .err()
            .unwrap_or_default();
        assert!(e.contains("no argument `depth`"), "{e}");
        let e = prepare(d, &[("epochs".into(), "many".into())], None, &env)
            .err()
            .unwrap_or_default();
        assert!(e.contains("epochs"), "{e}");
        Ok(())
    }

    #[cfg(not(feature = "ml"))]
    #[test]
    fn without_the_ml_feature_torch_steps_are_not_available() {
        let d = decl("std.torch.evaluate");
        let call = StepCall {
            args: BTreeMap::new(),
            inputs: BTreeMap::new(),
            outputs: BTreeMap::new(),
            metrics: None,
            labelled: None,
        };
        match body(d, &call) {
            Err(Failure::NotAvailable(m)) => assert!(m.contains("not available in this build")),
            other => panic!("{other:?}"),
        }
    }
}
