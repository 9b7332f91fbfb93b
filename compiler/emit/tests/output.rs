//! The output is byte-identical run to run, and a rebuild into the same directory leaves no
//! stale files and touches nothing it did not write.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{golden_programs, golden_templates, plan_of, try_plan};
use sflow_emit::output::{files, write_dir};
use sflow_emit::{build, Options};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sflow-emit-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn builds_are_byte_identical() {
    for (name, path) in golden_programs() {
        let Ok(text) = std::fs::read_to_string(common::root().join(&path)) else {
            continue;
        };
        let Ok(plan) = try_plan(&path, &text) else {
            continue;
        };
        let options = Options {
            templates: golden_templates(),
        };
        let a = build(&plan, &options).unwrap();
        // A fresh analysis, not just a second emit of the same plan.
        let b = build(&try_plan(&path, &text).unwrap(), &options).unwrap();
        assert_eq!(files(&a), files(&b), "{name}");
        assert_eq!(a.stream(), b.stream(), "{name}");
    }
}

#[test]
fn file_names_are_unique_and_listed_in_the_kustomization() {
    let out = build(&plan_of("examples/mnist/mnist.sflow"), &Options::default()).unwrap();
    let mut names: Vec<&str> = out.manifests.iter().map(|m| m.file_name.as_str()).collect();
    let kustomization = out.kustomization();
    for name in &names {
        assert!(kustomization.contains(&format!("\n- {name}\n")), "{name}");
    }
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count);
}

#[test]
fn rebuilds_update_in_place_and_remove_stale_files() {
    let dir = scratch("rebuild");
    let full = plan_of("examples/mnist/mnist.sflow");
    let first = write_dir(&dir, &build(&full, &Options::default()).unwrap()).unwrap();
    assert!(first.removed.is_empty() && first.unchanged.is_empty());
    assert!(dir.join("plan.json").is_file() && dir.join("kustomization.yaml").is_file());
    assert!(dir.join("deployment-predictor.yaml").is_file());

    // A file sflow did not write, and one that only looks generated after its first line.
    std::fs::write(dir.join("mine.yaml"), "apiVersion: v1\nkind: ConfigMap\n").unwrap();
    std::fs::write(dir.join("notes.txt"), sflow_emit::HEADER).unwrap();
    std::fs::write(
        dir.join("other.yaml"),
        format!("# mine\n{}", sflow_emit::HEADER),
    )
    .unwrap();

    // The same build again: nothing written.
    let again = write_dir(&dir, &build(&full, &Options::default()).unwrap()).unwrap();
    assert!(again.written.is_empty(), "{again:?}");
    assert!(again.removed.is_empty());

    // Delete the service (and what refers to it): its objects go, the user's files stay.
    let mut smaller = full.clone();
    smaller.services.clear();
    smaller
        .agents
        .retain(|a| a.kind != "Tracker" && a.kind != "Planner");
    smaller.triggers.clear();
    let report = write_dir(&dir, &build(&smaller, &Options::default()).unwrap()).unwrap();
    for gone in [
        "deployment-predictor.yaml",
        "service-predictor.yaml",
        "horizontalpodautoscaler-predictor.yaml",
        "poddisruptionbudget-predictor.yaml",
        "networkpolicy-predictor.yaml",
        "serviceaccount-predictor.yaml",
        "cronworkflow-nightly.yaml",
    ] {
        assert!(
            report.removed.contains(&gone.to_string()),
            "{gone}: {report:?}"
        );
        assert!(!dir.join(gone).exists(), "{gone}");
    }
    assert!(
        dir.join("mine.yaml").is_file()
            && dir.join("notes.txt").is_file()
            && dir.join("other.yaml").is_file()
    );
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = files(&build(&smaller, &Options::default()).unwrap())
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    expected.extend(["mine.yaml", "notes.txt", "other.yaml"].map(String::from));
    expected.sort();
    assert_eq!(on_disk, expected);
    let _ = std::fs::remove_dir_all(&dir);
}
