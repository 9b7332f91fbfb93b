//! Shared by the emit tests: programs from the repository, analyzed and lowered.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use sflow_compiler::analysis::analyze;
use sflow_compiler::lower::{lower, plan::Plan};
use sflow_compiler::sources::{join_relative, LoadedText, SourceLoader};
use std::path::PathBuf;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Reads files relative to the workspace root, so plans name them `examples/…` wherever the
/// test runs from.
pub struct RootLoader;

impl SourceLoader for RootLoader {
    fn load(&self, from: &str, relative: &str) -> Result<LoadedText, String> {
        let path = join_relative(from, relative);
        std::fs::read_to_string(root().join(&path))
            .map(|text| LoadedText { path, text })
            .map_err(|e| e.to_string())
    }
}

/// The plan of the program at `path` (relative to the root), or its diagnostics.
pub fn try_plan(path: &str, text: &str) -> Result<Plan, String> {
    let analysis = analyze(path, text, &RootLoader);
    if analysis.has_errors() {
        return Err(format!("{path} has errors: {:#?}", analysis.diagnostics));
    }
    lower(&analysis).map_err(|e| e.to_string())
}

/// The plan of a repository file.
pub fn plan_of(path: &str) -> Plan {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    try_plan(path, &text).unwrap()
}

/// The examples: (name, root file) for each directory of `examples/`, whose root is
/// `main.sflow` or `<name>.sflow`.
pub fn examples() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let main = ["main.sflow".to_string(), format!("{name}.sflow")]
            .into_iter()
            .find(|f| entry.path().join(f).is_file())
            .unwrap_or_else(|| panic!("examples/{name} has neither main.sflow nor {name}.sflow"));
        out.push((name.clone(), format!("examples/{name}/{main}")));
    }
    out.sort();
    out
}

/// Every program the golden tests build: the examples and `tests/golden/programs/*.sflow`.
pub fn golden_programs() -> Vec<(String, String)> {
    let mut out = examples();
    for entry in std::fs::read_dir(root().join("tests/golden/programs")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".sflow") {
            out.push((stem.to_string(), format!("tests/golden/programs/{name}")));
        }
    }
    out.sort();
    out
}

/// The user templates of `tests/golden/templates`.
pub fn golden_templates() -> Vec<sflow_emit::templates::UserTemplate> {
    let dir = root().join("tests/golden/templates");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml.hbs"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| sflow_emit::templates::UserTemplate {
            text: std::fs::read_to_string(dir.join(&name)).unwrap(),
            name,
        })
        .collect()
}

/// The documents of a YAML stream.
pub fn documents(stream: &str) -> Vec<serde_yaml_ng::Value> {
    sflow_emit::yaml::parse_documents(stream).unwrap()
}
