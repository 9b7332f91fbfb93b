//! Writing a build to a directory: `plan.json`, `kustomization.yaml` and one file per object.
//!
//! A rebuild into the same directory updates it in place: files whose content did not change
//! are left alone (their modification time too), and `*.yaml` files that a previous build
//! wrote (they start with [`HEADER`]) but this one does not are removed, so the objects of a
//! deleted declaration disappear with it. Files sflow did not write are never touched.

use crate::{Build, HEADER};
use std::io;
use std::path::Path;

/// What [`write_dir`] did, file names relative to the directory, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Files created or changed.
    pub written: Vec<String>,
    /// Files already up to date.
    pub unchanged: Vec<String>,
    /// Stale generated files removed.
    pub removed: Vec<String>,
}

/// The file name of the plan.
pub const PLAN_FILE: &str = "plan.json";
/// The file name of the kustomization.
pub const KUSTOMIZATION_FILE: &str = "kustomization.yaml";

/// Every file of a build: (name, content), in a stable order.
pub fn files(build: &Build) -> Vec<(String, String)> {
    let mut files = Vec::with_capacity(build.manifests.len() + 2);
    files.push((PLAN_FILE.to_string(), build.plan_json.clone()));
    files.push((KUSTOMIZATION_FILE.to_string(), build.kustomization()));
    files.extend(
        build
            .manifests
            .iter()
            .map(|m| (m.file_name.clone(), m.file_text())),
    );
    files
}

/// Writes `build` into `dir` (created if missing), removing stale generated files.
pub fn write_dir(dir: &Path, build: &Build) -> io::Result<WriteReport> {
    std::fs::create_dir_all(dir)?;
    let files = files(build);
    let mut report = WriteReport::default();
    for (name, content) in &files {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(existing) if existing == content.as_bytes() => report.unchanged.push(name.clone()),
            _ => {
                std::fs::write(&path, content)?;
                report.written.push(name.clone());
            }
        }
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".yaml")
            || files.iter().any(|(n, _)| *n == name)
            || !entry.file_type()?.is_file()
        {
            continue;
        }
        if is_generated(&entry.path())? {
            std::fs::remove_file(entry.path())?;
            report.removed.push(name);
        }
    }
    report.written.sort();
    report.unchanged.sort();
    Ok(report)
}

/// Whether a file starts with the header of generated files.
fn is_generated(path: &Path) -> io::Result<bool> {
    use std::io::Read;
    let mut start = vec![0u8; HEADER.len()];
    let mut file = std::fs::File::open(path)?;
    let mut read = 0;
    while read < start.len() {
        let n = file.read(&mut start[read..])?;
        if n == 0 {
            return Ok(false);
        }
        read += n;
    }
    Ok(start == HEADER.as_bytes())
}
