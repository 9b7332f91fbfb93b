//! Std data sources (`std.data.mnist`, `std.data.files`): what a step input bound to one
//! reads, and `sflow data` (the init container of a data-source input in a cluster).
//!
//! - `mnist(split, path)` gives the step **exactly that split**: a dataset directory holding
//!   only the split's two IDX files (`train-*` or `t10k-*`), hard-linked (or copied, across
//!   file systems) from `path`. Locally it is materialized once per run and step input at
//!   `RUN/.inputs/STEP/INPUT` ([`input_dir`]) and reused when the run resumes; in a cluster
//!   `sflow data` copies it onto the artifacts volume.
//! - `files(path)` is the directory itself, read in place locally; `sflow data` copies it.
//!
//! A relative `path` is the program's directory's (`sflow data`: the working directory's);
//! for `mnist`, whose default `data/mnist` is the copy shipped at the root of the sflow
//! repository, the parent directories are searched too, so `examples/mnist/mnist.sflow` finds
//! `data/mnist`. Nothing here needs libtorch: files are linked, not decoded.

use crate::eval::{self, Scope};
use crate::value::{self, RtValue};
use sflow_compiler::lower::plan::{Expr, PlanType};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A data source as a program names it, its arguments evaluated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// `std.data.mnist(split, path)`.
    Mnist {
        /// `train` or `t10k` (the file prefix of the split).
        prefix: &'static str,
        /// The directory of IDX files, as written.
        path: String,
    },
    /// `std.data.files(path)`.
    Files {
        /// The directory (or file), as written.
        path: String,
    },
}

impl DataSource {
    /// The source of `function` (`std.data.mnist`) with its arguments evaluated in `scope`.
    pub fn from_exprs(
        function: &str,
        args: &BTreeMap<String, Expr>,
        scope: &dyn Scope,
    ) -> Result<DataSource, String> {
        let mut values = BTreeMap::new();
        for (k, e) in args {
            values.insert(
                k.clone(),
                eval::eval(e, scope).map_err(|m| format!("argument `{k}` of `{function}`: {m}"))?,
            );
        }
        DataSource::from_values(function, &values)
    }

    /// The source of `function` with evaluated arguments (a `Dataset` config value such as
    /// the oracle's `mnist(split = "test")` is a record of these).
    pub fn from_values(
        function: &str,
        args: &BTreeMap<String, RtValue>,
    ) -> Result<DataSource, String> {
        let string = |name: &str| match args.get(name) {
            Some(RtValue::String { value }) => Ok(value.clone()),
            Some(other) => Err(format!(
                "`{function}`: `{name}` must be a string, not {}",
                other.to_json()
            )),
            None => Err(format!("`{function}` needs `{name}`")),
        };
        match function {
            "std.data.mnist" => {
                let split = string("split")?;
                let prefix = match split.as_str() {
                    "train" => "train",
                    "test" | "t10k" => "t10k",
                    other => {
                        return Err(format!(
                            "`std.data.mnist`: unknown split {other:?} (expected \"train\" or \"test\")"
                        ))
                    }
                };
                let path = match args.get("path") {
                    None => "data/mnist".to_string(),
                    Some(_) => string("path")?,
                };
                Ok(DataSource::Mnist { prefix, path })
            }
            "std.data.files" => Ok(DataSource::Files {
                path: string("path")?,
            }),
            other => Err(format!(
                "unknown data source `{other}` (the standard library has std.data.mnist and std.data.files)"
            )),
        }
    }

    /// The source of a `Dataset` value held in a config (`oracle(mnist(split = "test"))`):
    /// a record with `function` and the arguments.
    pub fn from_record(v: &RtValue) -> Result<DataSource, String> {
        match v {
            RtValue::Record { fields } => {
                let function = match fields.get("function") {
                    Some(RtValue::String { value }) => value.clone(),
                    _ => return Err(format!("{} is not a data source", v.to_json())),
                };
                let mut args = fields.clone();
                args.remove("function");
                DataSource::from_values(&function, &args)
            }
            other => Err(format!("{} is not a data source", other.to_json())),
        }
    }

    /// Where the source's files are, `path` resolved against `base` (see the module
    /// documentation for the search).
    pub fn locate(&self, base: &Path) -> Result<PathBuf, String> {
        match self {
            DataSource::Files { path } => {
                let p = Path::new(path);
                let full = if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    base.join(p)
                };
                if full.exists() {
                    Ok(full)
                } else {
                    Err(format!(
                        "`files({path:?})`: {} does not exist",
                        full.display()
                    ))
                }
            }
            DataSource::Mnist { path, prefix } => {
                let p = Path::new(path);
                let tried: Vec<PathBuf> = if p.is_absolute() {
                    vec![p.to_path_buf()]
                } else {
                    base.ancestors().map(|a| a.join(p)).collect()
                };
                tried
                    .iter()
                    .find(|d| mnist_files(d, prefix).is_some())
                    .cloned()
                    .ok_or_else(|| {
                        format!(
                            "`mnist(path = {path:?})`: no MNIST {prefix} files ({prefix}-images-idx3-ubyte[.gz] and {prefix}-labels-idx1-ubyte[.gz]) in {}{}",
                            tried.first().map_or_else(String::new, |d| d.display().to_string()),
                            if tried.len() > 1 { " nor in its parent directories" } else { "" }
                        )
                    })
            }
        }
    }

    /// The path a step reads locally: `files` in place; `mnist` the split alone, linked into
    /// `dest` (created; reused if it already holds the split).
    pub fn materialize_local(&self, base: &Path, dest: &Path) -> Result<PathBuf, String> {
        match self {
            DataSource::Files { .. } => self.locate(base),
            DataSource::Mnist { prefix, .. } => {
                let dir = self.locate(base)?;
                let (images, labels) = mnist_files(&dir, prefix)
                    .ok_or_else(|| format!("no MNIST {prefix} files in {}", dir.display()))?;
                place_files(&[images, labels], dest, Place::Link)?;
                Ok(dest.to_path_buf())
            }
        }
    }

    /// `sflow data`: writes the source as a self-contained dataset directory at `dest`
    /// (copies: in a cluster, `dest` is on the shared artifacts volume).
    pub fn materialize_copy(&self, base: &Path, dest: &Path) -> Result<(), String> {
        let src = self.locate(base)?;
        match self {
            DataSource::Files { .. } => {
                if src.is_file() {
                    place_files(std::slice::from_ref(&src), dest, Place::Copy)
                } else {
                    copy_tree(&src, dest, 0)
                }
            }
            DataSource::Mnist { prefix, .. } => {
                let (images, labels) = mnist_files(&src, prefix)
                    .ok_or_else(|| format!("no MNIST {prefix} files in {}", src.display()))?;
                place_files(&[images, labels], dest, Place::Copy)
            }
        }
    }
}

/// Where a run materializes a step's data-source input locally: `RUN/.inputs/STEP/INPUT`.
pub fn input_dir(run_dir: &Path, step: &str, input: &str) -> PathBuf {
    run_dir.join(".inputs").join(step).join(input)
}

/// The image and label files of an MNIST split in `dir` (the names `sflow_ml::data::mnist`
/// accepts).
fn mnist_files(dir: &Path, prefix: &str) -> Option<(PathBuf, PathBuf)> {
    let find = |kind: &str, idx: &str| {
        ['-', '.']
            .iter()
            .flat_map(|sep| {
                ["", ".gz"]
                    .iter()
                    .map(move |gz| format!("{prefix}-{kind}{sep}{idx}-ubyte{gz}"))
            })
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
    };
    Some((find("images", "idx3")?, find("labels", "idx1")?))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Hard link, or copy when the link fails (another file system).
    Link,
    /// Copy.
    Copy,
}

/// Puts `files` (by their names) into `dest`. A file already there with the same size is
/// kept (a resumed run, a cached materialization). Each file is written under a temporary
/// name and renamed, so an interrupted copy never looks complete.
fn place_files(files: &[PathBuf], dest: &Path, how: Place) -> Result<(), String> {
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    for src in files {
        let name = src
            .file_name()
            .ok_or_else(|| format!("{} has no file name", src.display()))?;
        let target = dest.join(name);
        let src_len = std::fs::metadata(src)
            .map_err(|e| format!("cannot read {}: {e}", src.display()))?
            .len();
        if std::fs::metadata(&target).is_ok_and(|m| m.len() == src_len) {
            continue;
        }
        let tmp = dest.join(format!(".{}.tmp", name.to_string_lossy()));
        let _ = std::fs::remove_file(&tmp);
        let linked = how == Place::Link && std::fs::hard_link(src, &tmp).is_ok();
        if !linked {
            std::fs::copy(src, &tmp)
                .map_err(|e| format!("cannot copy {} to {}: {e}", src.display(), tmp.display()))?;
        }
        std::fs::rename(&tmp, &target)
            .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    }
    Ok(())
}

fn copy_tree(src: &Path, dest: &Path, depth: usize) -> Result<(), String> {
    if depth > 32 {
        return Err(format!("{}: directories nested too deep", src.display()));
    }
    std::fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(src)
        .map_err(|e| format!("cannot read {}: {e}", src.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut files = Vec::new();
    for p in entries {
        if p.is_dir() {
            let name = p.file_name().map(PathBuf::from).unwrap_or_default();
            copy_tree(&p, &dest.join(name), depth + 1)?;
        } else if p.is_file() {
            files.push(p);
        }
    }
    place_files(&files, dest, Place::Copy)
}

/// The params an argument tree reads, with their types (`{"expr": "param", "name":
/// "epochs", "type": "int"}`), for reading them from `SFLOW_PARAM_<NAME>`.
pub fn params_read(args: &BTreeMap<String, Expr>) -> BTreeMap<String, PlanType> {
    fn walk(e: &Expr, out: &mut BTreeMap<String, PlanType>) {
        match e {
            Expr::Param { name, ty } => {
                out.insert(name.clone(), ty.clone());
            }
            Expr::Call { args, .. } => args.values().for_each(|a| walk(a, out)),
            Expr::List { items } => items.iter().for_each(|a| walk(a, out)),
            Expr::Unary { operand, .. } => walk(operand, out),
            Expr::Binary { lhs, rhs, .. } => {
                walk(lhs, out);
                walk(rhs, out);
            }
            Expr::Template { parts } => {
                for p in parts {
                    if let sflow_compiler::lower::plan::TemplatePart::Param { name } = p {
                        out.entry(name.clone()).or_insert(PlanType::String);
                    }
                }
            }
            Expr::Literal { .. } | Expr::Signal { .. } | Expr::Ref { .. } => {}
        }
    }
    let mut out = BTreeMap::new();
    args.values().for_each(|e| walk(e, &mut out));
    out
}

/// The values of the params `args` reads, from `SFLOW_PARAM_<NAME>` (text, as the step
/// contract writes them), through `get` (the environment).
pub fn params_from_env(
    args: &BTreeMap<String, Expr>,
    get: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, RtValue>, String> {
    let mut out = BTreeMap::new();
    for (name, ty) in params_read(args) {
        let var = super::contract::var("PARAM", &name);
        let text = get(&var).ok_or_else(|| format!("param `{name}`: ${var} is not set"))?;
        let v =
            value::parse_param(&text, &ty).map_err(|e| format!("param `{name}` (${var}): {e}"))?;
        out.insert(name, v);
    }
    Ok(out)
}

/// `sflow data FUNCTION --args JSON --out PATH`: materializes the data source as a dataset
/// directory at `out`; params come from `SFLOW_PARAM_*`, relative paths from the working
/// directory (the image's). Returns the exit status.
pub fn command(function: &str, args_json: Option<&str>, out: &Path) -> i32 {
    match command_inner(function, args_json, out) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sflow data {function}: {e}");
            1
        }
    }
}

fn command_inner(function: &str, args_json: Option<&str>, out: &Path) -> Result<(), String> {
    let function = if function.starts_with("std.") {
        function.to_string()
    } else {
        format!("std.data.{function}")
    };
    let args: BTreeMap<String, Expr> = match args_json {
        Some(text) => serde_json::from_str(text).map_err(|e| {
            format!("--args must be a JSON object of the plan's argument expressions: {e}")
        })?,
        None => BTreeMap::new(),
    };
    let params = params_from_env(&args, |k| std::env::var(k).ok())?;
    let scope = eval::Params {
        params: &params,
        app: None,
    };
    let source = DataSource::from_exprs(&function, &args, &scope)?;
    let cwd = std::env::current_dir().map_err(|e| format!("no working directory: {e}"))?;
    source.materialize_copy(&cwd, out)?;
    eprintln!(
        "sflow data {function}: wrote {} from {}",
        out.display(),
        source
            .locate(&cwd)
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mnist_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist")
    }

    fn s(v: &str) -> RtValue {
        RtValue::String { value: v.into() }
    }

    #[test]
    fn a_split_is_materialized_alone_and_reused() -> Result<(), String> {
        let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
        let args = BTreeMap::from([
            ("split".to_string(), s("test")),
            ("path".to_string(), s("data/mnist")),
        ]);
        let src = DataSource::from_values("std.data.mnist", &args)?;
        // Found from a subdirectory of the repository (as examples/mnist does).
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        assert_eq!(
            src.locate(&base)?
                .canonicalize()
                .map_err(|e| e.to_string())?,
            mnist_dir().canonicalize().map_err(|e| e.to_string())?
        );
        let dest = tmp.path().join("inputs/fit/data");
        src.materialize_local(&base, &dest)?;
        let mut names: Vec<String> = std::fs::read_dir(&dest)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec!["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
        );
        // Again: kept.
        src.materialize_local(&base, &dest)?;
        // A copy for `sflow data`.
        let copy = tmp.path().join("copy");
        src.materialize_copy(&base, &copy)?;
        assert_eq!(
            std::fs::metadata(copy.join("t10k-images-idx3-ubyte.gz"))
                .map_err(|e| e.to_string())?
                .len(),
            std::fs::metadata(mnist_dir().join("t10k-images-idx3-ubyte.gz"))
                .map_err(|e| e.to_string())?
                .len()
        );
        Ok(())
    }

    #[test]
    fn bad_sources_are_explained() {
        let bad_split = BTreeMap::from([("split".to_string(), s("validation"))]);
        let e = DataSource::from_values("std.data.mnist", &bad_split)
            .err()
            .unwrap_or_default();
        assert!(e.contains("unknown split"), "{e}");
        let missing = DataSource::Mnist {
            prefix: "train",
            path: "/nonexistent/mnist".into(),
        };
        let e = missing.locate(Path::new("/")).err().unwrap_or_default();
        assert!(e.contains("no MNIST train files"), "{e}");
        let e = DataSource::from_values("std.data.kaggle", &BTreeMap::new())
            .err()
            .unwrap_or_default();
        assert!(e.contains("unknown data source"), "{e}");
    }

    #[test]
    fn params_come_from_the_environment() -> Result<(), String> {
        let args: BTreeMap<String, Expr> = serde_json::from_value(serde_json::json!({
            "split": {"expr": "param", "name": "split", "type": "string"},
            "path": {"expr": "literal", "value": {"type": "string", "value": "data/mnist"}}
        }))
        .map_err(|e| e.to_string())?;
        let params = params_from_env(&args, |k| {
            (k == "SFLOW_PARAM_SPLIT").then(|| "train".into())
        })?;
        let scope = eval::Params {
            params: &params,
            app: None,
        };
        let src = DataSource::from_exprs("std.data.mnist", &args, &scope)?;
        assert_eq!(
            src,
            DataSource::Mnist {
                prefix: "train",
                path: "data/mnist".into()
            }
        );
        let e = params_from_env(&args, |_| None).err().unwrap_or_default();
        assert!(e.contains("SFLOW_PARAM_SPLIT"), "{e}");
        Ok(())
    }
}
