//! The language server's latency on a 5000-line program, in process (lsp-server's in-memory
//! connection: the same server loop as `sflowc lsp`, without the pipe):
//! - `didChange` → `publishDiagnostics`: a one-character edit, until the diagnostics of that
//!   version arrive (targets: < 20 ms p95);
//! - completion: after `step.` in an input binding deep in the program, and at the start of a
//!   step member (target: < 10 ms p95);
//! - hover on a reference.
//!
//! First it prints p50/p95/p99 over 200 samples of each (criterion reports means, not tails),
//! then runs the criterion groups. Figures are recorded in docs/performance.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::Criterion;

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use serde_json::{json, Value};
use sflow_benches::binary_tree_program;
use std::time::{Duration, Instant};

/// The allocator `sflowc` ships with, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A binary-tree program of about 5000 lines (8 lines per step).
fn program() -> String {
    let text = binary_tree_program(624);
    assert!(
        (4900..5200).contains(&text.lines().count()),
        "{} lines",
        text.lines().count()
    );
    text
}

struct Client {
    conn: Connection,
    next: i32,
    version: i32,
    uri: String,
    /// Where the edited digit is (the default of the first param).
    digit: (u32, u32),
    _server: std::thread::JoinHandle<()>,
}

impl Client {
    fn start(text: &str) -> Client {
        let (server, conn) = Connection::memory();
        let handle = std::thread::spawn(move || {
            let _ = sflow_lsp::run(&server);
        });
        let (line, col) = find(text, "param depth: int   = ");
        let mut client = Client {
            conn,
            next: 0,
            version: 1,
            uri: "file:///bench/main.sflow".into(),
            digit: (line, col),
            _server: handle,
        };
        client.request(
            "initialize",
            json!({ "capabilities": {}, "processId": null, "rootUri": null }),
        );
        client.notify("initialized", json!({}));
        let uri = client.uri.clone();
        client.notify("textDocument/didOpen", json!({ "textDocument": { "uri": uri, "languageId": "sflow", "version": 1, "text": text } }));
        client.wait_diagnostics(1);
        client
    }

    fn notify(&self, method: &str, params: Value) {
        self.conn
            .sender
            .send(Message::Notification(Notification::new(
                method.into(),
                params,
            )))
            .unwrap();
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = RequestId::from(self.next);
        self.conn
            .sender
            .send(Message::Request(Request::new(
                id.clone(),
                method.into(),
                params,
            )))
            .unwrap();
        loop {
            match self
                .conn
                .receiver
                .recv_timeout(Duration::from_secs(60))
                .expect("the server answers")
            {
                Message::Response(r) if r.id == id => return r.result.unwrap_or(Value::Null),
                _ => {}
            }
        }
    }

    fn wait_diagnostics(&self, version: i32) -> usize {
        loop {
            if let Message::Notification(n) = self
                .conn
                .receiver
                .recv_timeout(Duration::from_secs(60))
                .expect("diagnostics arrive")
            {
                if n.method == "textDocument/publishDiagnostics"
                    && n.params["version"] == json!(version)
                {
                    return n.params["diagnostics"].as_array().map_or(0, Vec::len);
                }
            }
        }
    }

    /// Types one character over the first param's default (`3` ↔ `4`) and waits for the
    /// diagnostics of the new version.
    fn edit(&mut self) -> Duration {
        self.version += 1;
        let digit = if self.version % 2 == 0 { "4" } else { "3" };
        let uri = self.uri.clone();
        let (line, col) = self.digit;
        let start = Instant::now();
        self.notify(
            "textDocument/didChange",
            json!({
                "textDocument": { "uri": uri, "version": self.version },
                "contentChanges": [{ "range": { "start": { "line": line, "character": col }, "end": { "line": line, "character": col + 1 } }, "text": digit }]
            }),
        );
        let count = self.wait_diagnostics(self.version);
        let elapsed = start.elapsed();
        assert_eq!(count, 0, "the edit introduced diagnostics");
        elapsed
    }

    fn timed(&mut self, method: &str, line: u32, character: u32) -> (Duration, Value) {
        let uri = self.uri.clone();
        let start = Instant::now();
        let result = self.request(method, json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": character } }));
        (start.elapsed(), result)
    }
}

fn percentiles(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |p: f64| {
        samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)].as_secs_f64() * 1000.0
    };
    println!(
        "{name:<44} p50 {:>7.2} ms   p95 {:>7.2} ms   p99 {:>7.2} ms   (n = {})",
        at(0.5),
        at(0.95),
        at(0.99),
        samples.len()
    );
}

/// The line and column right after `needle` on the line that contains it.
fn find(text: &str, needle: &str) -> (u32, u32) {
    let at = text.find(needle).unwrap() + needle.len();
    let line = text[..at].matches('\n').count() as u32;
    let col = (at - text[..at].rfind('\n').map_or(0, |i| i + 1)) as u32;
    (line, col)
}

fn main() {
    let text = program();
    // An input binding deep in the file: `input  data: Dataset = s300.data` → complete after `s300.`.
    let (member_line, member_col) = find(&text, "= s300.");
    // The start of a step member line (field and keyword completion), near the end.
    let (field_line, _) = find(&text, "  step s600 {\n    image");
    let (ref_line, ref_col) = find(&text, "= s300");
    let mut client = Client::start(&text);
    assert!(client
        .timed("textDocument/completion", member_line, member_col)
        .1
        .as_array()
        .is_some_and(|a| !a.is_empty()));

    let n = 200;
    println!(
        "language server, {}-line program ({} bytes):",
        text.lines().count(),
        text.len()
    );
    // Baselines: what the core itself takes (parse only; the whole analysis).
    let parse: Vec<Duration> = (0..50)
        .map(|_| {
            let start = Instant::now();
            let _ = sflow_compiler::syntax::parse(sflow_compiler::span::FileId(0), &text);
            start.elapsed()
        })
        .collect();
    percentiles("(core) parse", parse);
    let analysis: Vec<Duration> = (0..50)
        .map(|_| {
            let start = Instant::now();
            let _ = sflow_compiler::analysis::analyze(
                "bench.sflow",
                &text,
                &sflow_compiler::sources::NoFiles,
            );
            start.elapsed()
        })
        .collect();
    percentiles("(core) analyze", analysis);
    percentiles(
        "didChange → publishDiagnostics",
        (0..n).map(|_| client.edit()).collect(),
    );
    percentiles(
        "completion after `s300.` (step outputs)",
        (0..n)
            .map(|_| {
                client
                    .timed("textDocument/completion", member_line, member_col)
                    .0
            })
            .collect(),
    );
    percentiles(
        "completion at a step member start",
        (0..n)
            .map(|_| client.timed("textDocument/completion", field_line + 1, 4).0)
            .collect(),
    );
    percentiles(
        "hover on a step reference",
        (0..n)
            .map(|_| client.timed("textDocument/hover", ref_line, ref_col - 2).0)
            .collect(),
    );
    // Completion right after an edit (the analysis is then a few keystrokes old).
    let after_edit: Vec<Duration> = (0..n)
        .map(|_| {
            client.edit();
            client
                .timed("textDocument/completion", member_line, member_col)
                .0
        })
        .collect();
    percentiles("completion right after an edit", after_edit);

    let mut c = Criterion::default().configure_from_args().sample_size(50);
    let mut group = c.benchmark_group("lsp_5000_lines");
    group.bench_function("did_change_to_diagnostics", |b| b.iter(|| client.edit()));
    group.bench_function("completion_step_outputs", |b| {
        b.iter(|| client.timed("textDocument/completion", member_line, member_col))
    });
    group.finish();
    c.final_summary();
}
