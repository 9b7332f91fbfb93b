//! Child processes: each attempt runs in its own process group, so a timeout (or a shutdown)
//! kills the whole tree it started, not only its first process.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::sync::watch;

/// What to run.
#[derive(Clone, Debug)]
pub struct ProcessSpec<'a> {
    /// The program.
    pub program: &'a Path,
    /// Its arguments.
    pub args: &'a [String],
    /// Its working directory.
    pub cwd: &'a Path,
    /// Environment added to the runtime's.
    pub env: &'a BTreeMap<String, String>,
    /// Where stdout goes.
    pub stdout: &'a Path,
    /// Where stderr goes.
    pub stderr: &'a Path,
    /// The time limit.
    pub timeout: Option<Duration>,
}

/// How a process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessEnd {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
    /// It ran past its time limit; its process group was killed.
    TimedOut,
    /// The runtime is shutting down; its process group was killed.
    Stopped,
    /// It could not be started.
    SpawnFailed(String),
}

/// How long an attempt runs before its pid is reported for recording.
pub const REPORT_AFTER: Duration = Duration::from_millis(50);

/// Runs a process to its end. `started` receives its pid (also its process group id) once it
/// has run for [`REPORT_AFTER`], so the caller can record it while it runs. `slot` (the
/// executor's permit to run a process) is released as soon as the process has ended, before
/// its last output is written to the logs, so that the next process can start meanwhile.
pub async fn run<Slot>(
    spec: ProcessSpec<'_>,
    started: impl FnOnce(u32),
    mut shutdown: watch::Receiver<bool>,
    slot: Slot,
) -> ProcessEnd {
    let mut cmd = tokio::process::Command::new(spec.program);
    cmd.args(spec.args)
        .current_dir(spec.cwd)
        .envs(spec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return ProcessEnd::SpawnFailed(format!("cannot start {}: {e}", spec.program.display()))
        }
    };
    // The streams are copied to their log files, created on the first byte: a quiet step
    // creates no file (creating files is most of what a short step costs beyond its process).
    // One task copies both (a task per stream was measurable per-step work).
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let (out_path, err_path) = (spec.stdout.to_path_buf(), spec.stderr.to_path_buf());
    let copies = tokio::spawn(async move {
        tokio::join!(copy_lazily(out, out_path), copy_lazily(err, err_path));
    });
    let pid = child.id().unwrap_or(0);
    let mut started = Some(started);
    let deadline = async {
        match spec.timeout {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let stop = async {
        loop {
            if *shutdown.borrow_and_update() {
                return;
            }
            if shutdown.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::pin!(deadline);
    tokio::pin!(stop);
    // The pid is reported once the attempt has run for a while: a short attempt is recorded
    // once, when it ends (a crash in its first moments is covered by `reap_by_env`).
    let report = tokio::time::sleep(REPORT_AFTER);
    tokio::pin!(report);
    let end = loop {
        tokio::select! {
            status = child.wait() => break match status {
                Ok(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                    (Some(code), _) => ProcessEnd::Exited(code),
                    (None, Some(sig)) => ProcessEnd::Signaled(sig),
                    _ => ProcessEnd::Exited(-1),
                },
                Err(e) => ProcessEnd::SpawnFailed(format!("cannot wait for the process: {e}")),
            },
            () = &mut deadline => {
                kill_group(pid);
                let _ = child.wait().await;
                break ProcessEnd::TimedOut;
            }
            () = &mut stop => {
                kill_group(pid);
                let _ = child.wait().await;
                break ProcessEnd::Stopped;
            }
            () = &mut report, if started.is_some() => {
                if let Some(f) = started.take() {
                    f(pid);
                }
            }
        }
    };
    drop(slot);
    // The copies end when the last writer closes the streams; a background process the step
    // left running may hold them open, so do not wait for it for long (its output still goes
    // to the log files).
    let _ = tokio::time::timeout(Duration::from_secs(2), copies).await;
    end
}

/// Copies a stream to `path`, creating the file when the first bytes arrive.
async fn copy_lazily<R: tokio::io::AsyncRead + Unpin>(src: Option<R>, path: std::path::PathBuf) {
    use std::io::Write;
    use tokio::io::AsyncReadExt;
    let Some(mut src) = src else { return };
    // The first read (for a quiet step, the end of the stream) needs no buffer of its own.
    let mut first = [0u8; 512];
    let n = match src.read(&mut first).await {
        Ok(0) | Err(_) => return,
        Ok(n) => n,
    };
    let mut file = match std::fs::File::create(&path) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot write the log: {e}");
            return;
        }
    };
    if file.write_all(&first[..n]).is_err() {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match src.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if file.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// Kills process group `pgid` (SIGKILL). Errors (the group is gone) are ignored.
pub fn kill_group(pgid: u32) {
    if let Some(pid) = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`), which tells a process
/// from a later one that reused its pid.
pub fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19).map(str::to_string)
}

/// Kills the process group of an attempt recorded as running, if its leader is still the
/// process that was recorded. Returns whether something was killed.
pub fn reap(pid: i64, recorded_start: Option<&str>) -> bool {
    let Ok(pid) = u32::try_from(pid) else {
        return false;
    };
    match (start_time(pid), recorded_start) {
        (Some(now), Some(then)) if now == then => {
            kill_group(pid);
            true
        }
        _ => false,
    }
}

/// Kills what is left of an attempt whose pid was never recorded (the runtime stopped in its
/// first moments): the processes whose environment names the attempt (`SFLOW_RUN_DIR`,
/// `SFLOW_STEP`, `SFLOW_ATTEMPT`), with their process groups. Returns how many were found.
pub fn reap_by_env(run_dir: &str, step: &str, attempt: i64) -> usize {
    reap_matching(&[
        format!("SFLOW_RUN_DIR={run_dir}"),
        format!("SFLOW_STEP={step}"),
        format!("SFLOW_ATTEMPT={attempt}"),
    ])
}

/// Kills what is left of any attempt of the run in `run_dir` (its processes, found by
/// `SFLOW_RUN_DIR`, with their process groups): an attempt's row is only written once it has
/// run for [`REPORT_AFTER`] or when it ends, so a runtime that stopped in an attempt's first
/// moments left no row to find it by. Only for a run that no live runtime is executing (at
/// start, under the state directory's lock). Returns how many were found.
pub fn reap_run_by_env(run_dir: &str) -> usize {
    reap_matching(&[format!("SFLOW_RUN_DIR={run_dir}")])
}

/// Kills the process groups of the processes whose environment holds every `wanted` entry.
fn reap_matching(wanted: &[String]) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut found = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let vars: Vec<&[u8]> = env.split(|b| *b == 0).collect();
        if !wanted.iter().all(|w| vars.contains(&w.as_bytes())) {
            continue;
        }
        let pgid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rfind(')').and_then(|i| {
                    s[i + 1..]
                        .split_whitespace()
                        .nth(2)
                        .and_then(|g| g.parse::<u32>().ok())
                })
            });
        if let Some(pgid) = pgid {
            kill_group(pgid);
            found += 1;
        }
    }
    found
}
