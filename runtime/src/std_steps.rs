//! `sflow step NAME --arg k=v …`: the process a std step runs as (a step written
//! `uses = f(args)`). The runtime starts this binary with the step contract's environment, so
//! std steps behave like user steps (logs, retries, timeouts, metrics checks), locally and in
//! a cluster.
//!
//! The std steps of this build: none runs yet. `std.torch.*` needs the ML feature (libtorch
//! through tch), which this build does not include; the step fails with that message rather
//! than pretending to train.

/// The std steps the standard library declares, and what this build can do about them.
pub const STD_STEPS: &[(&str, &str)] = &[
    ("std.torch.train_classifier", "trains a classifier with tch"),
    ("std.torch.evaluate", "evaluates a model with tch"),
];

/// Runs a std step; returns the process's exit code.
pub fn run(name: &str, args: &[(String, String)]) -> i32 {
    match STD_STEPS.iter().find(|(n, _)| *n == name) {
        Some((n, what)) if n.starts_with("std.torch.") => {
            eprintln!(
                "sflow step {n}: not available in this build: std.torch steps need the ML feature (issue 5); \
                 this step {what}. Arguments received: {}",
                args.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
            );
            2
        }
        _ => {
            eprintln!(
                "sflow step {name}: unknown std step (the standard library declares: {})",
                STD_STEPS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            2
        }
    }
}
