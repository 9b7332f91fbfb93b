//! Helpers shared by the end-to-end tests: programs in temporary directories, the `sflow`
//! binary, in-process engines with a test clock, and a tiny HTTP client/server on loopback.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use sflow_runtime::clock::{Clock, TestClock};
use sflow_runtime::engine::{Engine, EngineConfig};
use sflow_runtime::store::Store;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The repository's real MNIST digits (`data/mnist`).
pub fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/mnist")
        .canonicalize()
        .expect("data/mnist")
}

/// The `sflow` binary under test.
pub fn sflow_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sflow"))
}

/// A program written into a fresh temporary directory.
pub struct Prog {
    pub dir: tempfile::TempDir,
    pub file: PathBuf,
}

impl Prog {
    pub fn new(source: &str) -> Prog {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("app.sflow");
        std::fs::write(&file, source).expect("write program");
        Prog { dir, file }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, text).expect("write");
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join(".sflow")
    }

    /// `sflow run app.sflow ARGS…`, waiting for it to exit.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(sflow_bin())
            .arg("run")
            .arg(&self.file)
            .args(args)
            .env("SFLOW_LOG", "info")
            .output()
            .expect("run sflow");
        eprintln!(
            "--- sflow run {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `sflow CMD… --state-dir STATE --format json`, parsed.
    pub fn read_json(&self, cmd: &[&str]) -> Value {
        let out = Command::new(sflow_bin())
            .args(cmd)
            .arg("--state-dir")
            .arg(self.state())
            .arg("--format")
            .arg("json")
            .output()
            .expect("sflow");
        assert!(
            out.status.success(),
            "sflow {cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json")
    }

    pub fn store(&self) -> Store {
        Store::open(&self.state().join("store.db")).expect("store")
    }

    /// An engine for this program, in process, with the given clock.
    pub async fn engine(&self, clock: Arc<dyn Clock>) -> Engine {
        let program = sflow_runtime::program::load(&self.file).expect("program");
        let mut cfg = EngineConfig::new(self.state());
        cfg.clock = clock;
        cfg.self_exe = sflow_bin();
        cfg.progress = Arc::new(sflow_runtime::progress::Logs);
        Engine::start(program, cfg).await.expect("engine")
    }
}

/// 2026-01-01T00:00:00Z
pub const T0: i64 = 1_767_225_600_000;

pub fn test_clock() -> Arc<TestClock> {
    TestClock::new(T0)
}

/// Polls `f` until it is true or `secs` pass.
pub async fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A minimal HTTP/1.1 request on loopback; returns (status, body).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
    extra: &[(&str, &str)],
) -> (u16, String) {
    let host = addr.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).expect("send");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // Chunked bodies: keep the JSON between the first `{`/`[` and the last `}`/`]`.
    let body = match (body.find(['{', '[']), body.rfind(['}', ']'])) {
        (Some(a), Some(b)) if b >= a => body[a..=b].to_string(),
        _ => body,
    };
    (status, body)
}

/// A loopback HTTP server recording the requests it gets (method, path, headers, body);
/// answers 200 after `delay`.
pub struct Recorder {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<(String, String, String)>>>,
    pub count: Arc<AtomicUsize>,
}

impl Recorder {
    pub fn start(delay: Duration) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let (r, c) = (requests.clone(), count.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten().take(1000) {
                let (r, c) = (r.clone(), c.clone());
                std::thread::spawn(move || {
                    let mut stream = stream;
                    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = stream.read(&mut chunk).unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if body.len() >= len {
                                let first = head.lines().next().unwrap_or("").to_string();
                                r.lock()
                                    .unwrap()
                                    .push((first, head.to_string(), body.to_string()));
                                c.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(delay);
                                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
                                break;
                            }
                        }
                    }
                });
            }
        });
        Recorder {
            addr,
            requests,
            count,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Counts lines of a file.
pub fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}
