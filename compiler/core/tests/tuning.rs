//! Hyper-parameter tuning in the plan: what the runtime's `Improver.tune` reads. These tests
//! pin the contract of /work/notes/tune-plan-contract.md (docs/language.md, "Tuning"): the
//! `objective`, `search` and `parallel` configs of an Improver, lowered with their defaults,
//! and optional configs (`config NAME: TYPE?`) left out of the plan when not given.

use serde_json::{json, Value};
use sflow_compiler::analysis::analyze;
use sflow_compiler::lower::lower;
use sflow_compiler::lower::plan::Plan;
use sflow_compiler::sources::NoFiles;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The tuning program of tests/cases/ok-tuning, with `IMPROVER` standing for the Improver's
/// extra configs.
const PROGRAM: &str = r#"
app demo { namespace = "demo" }

use std.data.mnist
use std.torch.train_classifier
use std.labels.oracle

workflow training {
  param epochs: int    = 3     in 1..10
  param lr:     float  = 0.001 in log(1e-4, 1e-1)
  param arch:   string = "mlp" in ["mlp", "cnn"]

  step fit {
    uses   = train_classifier(arch = arch, epochs = epochs, lr = lr)
    input  data: Dataset = mnist(split = "train")
    output model: Model
    metric accuracy: ratio
  }
}

agent improver: Improver {
  retrain = training
  labels  = oracle(mnist(split = "test"))
  IMPROVER
}

policy retune {
  when training.fit.accuracy < 0.9
  then improver.tune(20)
}
"#;

fn plan(text: &str) -> Result<Plan> {
    let analysis = analyze("main.sflow", text, &NoFiles);
    let errors: Vec<String> = analysis
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{}: {}", d.code, d.message))
        .collect();
    if !errors.is_empty() {
        return Err(errors.join("\n").into());
    }
    Ok(lower(&analysis)?)
}

/// The improver's `config` of the tuning program with `configs` added, as JSON.
fn improver_config(configs: &str) -> Result<Value> {
    let plan = plan(&PROGRAM.replace("IMPROVER", configs))?;
    let agent = plan.agent("improver").ok_or("no improver in the plan")?;
    Ok(serde_json::to_value(&agent.config)?)
}

fn tpe(startup: i64, gamma: f64, candidates: i64) -> Value {
    json!({
        "expr": "call",
        "function": "std.prelude.tpe",
        "args": {
            "candidates": { "expr": "literal", "value": { "type": "int", "value": candidates } },
            "gamma": { "expr": "literal", "value": { "type": "float", "value": gamma } },
            "startup": { "expr": "literal", "value": { "type": "int", "value": startup } }
        },
        "type": "Search"
    })
}

#[test]
fn tune_plan_contract() -> Result<()> {
    let config = improver_config(
        "objective = maximize(training.fit.accuracy)\n  search = tpe(startup = 3)\n  parallel = 4",
    )?;
    assert_eq!(
        config["objective"],
        json!({
            "expr": "call",
            "function": "std.prelude.maximize",
            "args": {
                "metric": {
                    "expr": "signal",
                    "signal": {
                        "kind": "stepMetric",
                        "workflow": "training",
                        "step": "fit",
                        "metric": "accuracy"
                    },
                    "type": "ratio"
                }
            },
            "type": "Objective"
        })
    );
    assert_eq!(config["search"], tpe(3, 0.25, 24));
    assert_eq!(
        config["parallel"],
        json!({ "expr": "literal", "value": { "type": "int", "value": 4 } })
    );
    assert_eq!(
        config["retrain"],
        json!({ "expr": "ref", "targetKind": "workflow", "name": "training" })
    );
    Ok(())
}

#[test]
fn search_and_parallel_default_to_tpe_and_two() -> Result<()> {
    let config = improver_config("objective = minimize(training.fit.accuracy)")?;
    assert_eq!(config["objective"]["function"], "std.prelude.minimize");
    assert_eq!(config["search"], tpe(10, 0.25, 24));
    assert_eq!(
        config["parallel"],
        json!({ "expr": "literal", "value": { "type": "int", "value": 2 } })
    );
    Ok(())
}

#[test]
fn random_search_has_no_arguments() -> Result<()> {
    let config =
        improver_config("objective = maximize(training.fit.accuracy)\n  search = random_search()")?;
    assert_eq!(
        config["search"],
        json!({ "expr": "call", "function": "std.prelude.random_search", "args": {}, "type": "Search" })
    );
    Ok(())
}

#[test]
fn an_improver_without_objective_has_none_in_the_plan() -> Result<()> {
    // Without `tune` calls an Improver needs no objective (it may only `improve`).
    let text = PROGRAM
        .replace("IMPROVER", "")
        .replace("then improver.tune(20)", "then run training");
    let plan = plan(&text)?;
    let agent = plan.agent("improver").ok_or("no improver")?;
    assert!(!agent.config.contains_key("objective"));
    assert!(agent.config.contains_key("search"));
    let kind = plan.agent_kind("Improver").ok_or("no Improver kind")?;
    let types: Vec<(String, Value)> = kind
        .configs
        .iter()
        .map(|c| Ok((c.name.clone(), serde_json::to_value(&c.ty)?)))
        .collect::<Result<_>>()?;
    assert!(types.contains(&("objective".to_string(), json!("Objective"))));
    assert!(types.contains(&("search".to_string(), json!("Search"))));
    Ok(())
}

#[test]
fn optional_configs_of_user_kinds_are_left_out_when_not_given() -> Result<()> {
    let text = r##"
app demo { namespace = "demo" }

agent kind Notifier {
  config channel: string?
  config severity: string = "high"
  action page(msg: string)
}

agent pager:  Notifier { }
agent mirror: Notifier { channel = "#oncall" }

trigger a: webhook "/a" -> pager.page("a")
trigger b: webhook "/b" -> mirror.page("b")
"##;
    let plan = plan(text)?;
    let pager = plan.agent("pager").ok_or("no pager")?;
    assert_eq!(
        pager.config.keys().collect::<Vec<_>>(),
        vec!["severity"],
        "an optional config without a value is absent"
    );
    let mirror = plan.agent("mirror").ok_or("no mirror")?;
    assert_eq!(
        serde_json::to_value(&mirror.config["channel"])?,
        json!({ "expr": "literal", "value": { "type": "string", "value": "#oncall" } })
    );
    Ok(())
}

#[test]
fn a_user_workflow_named_tpe_does_not_change_the_default_search() -> Result<()> {
    // The prelude's `search: Search = tpe()` is resolved in the prelude, not in the program.
    let text = format!(
        "{}\nworkflow tpe {{\n  step s {{\n    image = \"busybox:1.36\"\n    run   = \"echo\"\n  }}\n}}\n",
        PROGRAM.replace("IMPROVER", "objective = maximize(training.fit.accuracy)")
    );
    let plan = plan(&text)?;
    let agent = plan.agent("improver").ok_or("no improver")?;
    assert_eq!(
        serde_json::to_value(&agent.config["search"])?,
        tpe(10, 0.25, 24)
    );
    Ok(())
}
