//! Shared by the sflow-kube tests: programs from the repository built in memory, and the
//! Kubernetes stand-in (tests/standin/kube_standin.py, PyPI kmock) as a child process.
#![allow(dead_code)]

use sflow_compiler::analysis::analyze;
use sflow_compiler::lower::lower;
use sflow_compiler::sources::{join_relative, LoadedText, SourceLoader};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// Errors of the tests' own plumbing.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Reads imported files relative to the workspace root.
pub struct RootLoader;

impl SourceLoader for RootLoader {
    fn load(&self, from: &str, relative: &str) -> Result<LoadedText, String> {
        let path = join_relative(from, relative);
        std::fs::read_to_string(root().join(&path))
            .map(|text| LoadedText { path, text })
            .map_err(|e| e.to_string())
    }
}

/// Builds a program's manifests in memory, as `sflowc build` does.
pub fn build(path: &str, text: &str) -> TestResult<sflow_emit::Build> {
    let analysis = analyze(path, text, &RootLoader);
    if analysis.has_errors() {
        return Err(format!("{path} has errors: {:#?}", analysis.diagnostics).into());
    }
    let plan = lower(&analysis).map_err(|e| e.to_string())?;
    Ok(sflow_emit::build(&plan, &sflow_emit::Options::default())?)
}

/// The north-star program's text.
pub fn north_star() -> TestResult<String> {
    Ok(std::fs::read_to_string(
        root().join("examples/mnist/mnist.sflow"),
    )?)
}

/// A kubeconfig pointing at `server`, written into `dir`.
pub fn write_kubeconfig(dir: &Path, server: &str) -> TestResult<PathBuf> {
    let path = dir.join("kubeconfig.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {server}\n\
             users:\n- name: standin\n  user:\n    token: standin-token\n\
             contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: standin\n    namespace: default\n\
             current-context: standin\n"
        ),
    )?;
    Ok(path)
}

/// The Kubernetes stand-in, running as a child process for the duration of a test. Dropping
/// it kills the process; it also exits by itself when its standard input closes (this test
/// process ended, however it ended) or after its deadline.
pub struct Standin {
    child: Child,
    /// Held open: closing it tells the stand-in to exit.
    _stdin: Option<ChildStdin>,
    /// The API server's URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// A kubeconfig pointing at it.
    pub kubeconfig: PathBuf,
    /// A scratch directory for the test (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Standin {
    /// Starts the stand-in (`extra`: e.g. `--without-argo`) and waits until it listens.
    pub fn start(extra: &[&str]) -> TestResult<Standin> {
        let python = std::env::var_os("SFLOW_KMOCK_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join(".venv-kmock/bin/python"));
        if !python.exists() {
            return Err(format!(
                "{} not found: run scripts/setup-kmock.sh (or set SFLOW_KMOCK_PYTHON)",
                python.display()
            )
            .into());
        }
        let mut child = Command::new(&python)
            .arg(root().join("tests/standin/kube_standin.py"))
            .args(["--deadline", "300"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        // Read the READY line on a thread, so that a stand-in that never starts fails the test
        // after 30 s instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the stand-in did not start within 30 s".into());
            }
        };
        let Some(url) = line.trim().strip_prefix("READY ").map(str::to_string) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the stand-in said {line:?} instead of READY <url>").into());
        };
        let dir = tempfile::tempdir()?;
        let kubeconfig = write_kubeconfig(dir.path(), &url)?;
        Ok(Standin {
            child,
            _stdin: stdin,
            url,
            kubeconfig,
            dir,
        })
    }

    /// Options that reach the stand-in through its kubeconfig.
    pub fn options(&self) -> sflow_kube::ClusterOptions {
        sflow_kube::ClusterOptions {
            kubeconfig: Some(self.kubeconfig.clone()),
            context: None,
        }
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        if let Some(mut stdin) = self._stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
