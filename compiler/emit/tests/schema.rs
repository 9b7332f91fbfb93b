//! `docs/plan.schema.json` is the JSON Schema of the plan types, as `sflowc schema` prints
//! it. Regenerate it with `SFLOW_BLESS=1 cargo test -p sflow-emit --test schema`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{golden_programs, plan_of, root};

#[test]
fn committed_schema_is_current() {
    let path = root().join("docs/plan.schema.json");
    let schema = sflow_emit::plan_schema();
    if std::env::var_os("SFLOW_BLESS").is_some() {
        std::fs::write(&path, &schema).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(committed == schema, "docs/plan.schema.json is stale: run `SFLOW_BLESS=1 cargo test -p sflow-emit --test schema`");
}

#[test]
fn plans_round_trip_through_json() {
    for (_, path) in golden_programs() {
        let text = std::fs::read_to_string(root().join(&path)).unwrap();
        if common::try_plan(&path, &text).is_err() {
            continue;
        }
        let plan = plan_of(&path);
        let json = serde_json::to_string(&plan).unwrap();
        let back: sflow_compiler::lower::plan::Plan = serde_json::from_str(&json).unwrap();
        assert_eq!(back, plan, "{path}");
    }
}
