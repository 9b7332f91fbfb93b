//! Loading a program: a `.sflow` file (checked and lowered by the compiler core, imports read
//! from the disk) or a built `plan.json`.

use sflow_compiler::analysis::analyze;
use sflow_compiler::diagnostics::Severity;
use sflow_compiler::lower::{lower, plan::Plan, plan::API_VERSION};
use sflow_compiler::sources::{join_relative, LoadedText, SourceLoader};
use std::path::{Path, PathBuf};

/// Reads imported files from the disk, relative to the importing file (as `sflowc` does).
#[derive(Clone, Copy, Debug, Default)]
pub struct DiskLoader;

impl SourceLoader for DiskLoader {
    fn load(&self, from: &str, relative: &str) -> Result<LoadedText, String> {
        let path = join_relative(from, relative);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(LoadedText { path, text }),
            Err(e) => Err(format!("{e} (looked for `{path}`)")),
        }
    }
}

/// A loaded program.
#[derive(Clone, Debug)]
pub struct Program {
    /// Its plan.
    pub plan: Plan,
    /// The file it was loaded from.
    pub path: PathBuf,
    /// The directory steps run in and data sources are found from.
    pub dir: PathBuf,
}

impl Program {
    /// The default state directory: `.sflow/` beside the program.
    pub fn default_state_dir(&self) -> PathBuf {
        self.dir.join(".sflow")
    }
}

/// Loads a program from a `.sflow` file or a `plan.json`.
pub fn load(path: &Path) -> Result<Program, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let plan = if path.extension().is_some_and(|e| e == "json") {
        let plan: Plan = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a plan: {e}", path.display()))?;
        if plan.api_version != API_VERSION {
            return Err(format!(
                "{} has apiVersion `{}`; this runtime reads `{API_VERSION}`",
                path.display(),
                plan.api_version
            ));
        }
        plan
    } else {
        plan_of_source(&path.to_string_lossy(), &text)?
    };
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = abs
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    Ok(Program {
        plan,
        path: abs,
        dir,
    })
}

/// Checks and lowers program text; errors are listed one per line (`sflowc check` shows them
/// with their context).
pub fn plan_of_source(path: &str, text: &str) -> Result<Plan, String> {
    let analysis = analyze(path, text, &DiskLoader);
    let errors: Vec<String> = analysis
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| {
            let src = analysis.sources.get(d.primary.at.file);
            let lc = src.line_col(d.primary.at.span.start());
            format!(
                "{}:{}:{}: error[{}]: {}",
                src.path, lc.line, lc.column, d.code, d.message
            )
        })
        .collect();
    if !errors.is_empty() {
        return Err(format!(
            "{path} has errors (run `sflowc check {path}` for details):\n{}",
            errors.join("\n")
        ));
    }
    lower(&analysis).map_err(|e| e.to_string())
}
