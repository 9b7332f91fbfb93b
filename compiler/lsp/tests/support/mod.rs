//! A language client for tests: starts the real `sflowc lsp` process, speaks JSON-RPC to it
//! over its stdin/stdout, and draws requests and answers as text for snapshots (the cursor as
//! `↑` under the line it is on, ranges as `^^^` under the text they cover), as Gleam's server
//! tests do.
//!
//! Fixtures are files written into a fresh temporary folder; `$0` in a fixture marks the
//! cursor.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::OnceLock;
use std::time::Duration;

/// The `sflowc` binary, built once per test run (so it is never stale).
pub fn sflowc() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(bin) = std::env::var("SFLOWC") {
            return PathBuf::from(bin);
        }
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| manifest.join("../../target"));
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "sflowc", "--bin", "sflowc"])
            .current_dir(manifest)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building sflowc failed");
        target
            .join("debug")
            .join(format!("sflowc{}", std::env::consts::EXE_SUFFIX))
    })
}

/// A running server and the fixture folder it works in.
pub struct Client {
    child: Child,
    stdin: ChildStdin,
    messages: Receiver<Value>,
    /// Notifications received and not yet looked at.
    pub notifications: Vec<Value>,
    next_id: i64,
    /// The fixture folder.
    pub dir: PathBuf,
    versions: std::collections::HashMap<String, i32>,
    /// Current text of each opened file, by relative path.
    pub texts: std::collections::HashMap<String, String>,
}

/// A cursor: file and byte offset, with the text it was taken from.
#[derive(Clone, Debug)]
pub struct Cursor {
    pub file: String,
    pub offset: usize,
}

/// Removes the `$0` marker from `text`, returning the text and the marker's offset.
pub fn take_cursor(text: &str) -> (String, Option<usize>) {
    match text.find("$0") {
        Some(at) => (format!("{}{}", &text[..at], &text[at + 2..]), Some(at)),
        None => (text.to_string(), None),
    }
}

impl Client {
    /// Writes `files` (relative path, text with an optional `$0`) into a new folder, starts
    /// the server and initializes it. Returns the client and the cursor, if a file had one.
    pub fn start(files: &[(&str, &str)]) -> (Client, Option<Cursor>) {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("sflow-lsp-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        let mut cursor = None;
        let mut texts = std::collections::HashMap::new();
        for (path, text) in files {
            let (text, at) = take_cursor(text);
            if let Some(offset) = at {
                cursor = Some(Cursor {
                    file: path.to_string(),
                    offset,
                });
            }
            let full = dir.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, &text).unwrap();
            texts.insert(path.to_string(), text);
        }
        let mut child = Command::new(sflowc())
            .args(["lsp", "--stdio"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sflowc lsp starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length: ") {
                        length = v.parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let Ok(value) = serde_json::from_slice::<Value>(&body) else {
                    return;
                };
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        let mut client = Client {
            child,
            stdin,
            messages: rx,
            notifications: Vec::new(),
            next_id: 1,
            dir,
            versions: Default::default(),
            texts,
        };
        let root = client.uri("");
        client.request(
            "initialize",
            json!({ "processId": null, "rootUri": root, "capabilities": {}, "initializationOptions": {} }),
        );
        client.notify("initialized", json!({}));
        (client, cursor)
    }

    /// The URI of a fixture file.
    pub fn uri(&self, path: &str) -> String {
        let full = if path.is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(path)
        };
        format!("file://{}", full.display())
    }

    fn send(&mut self, value: Value) {
        let body = serde_json::to_string(&value).unwrap();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{}", body.len(), body).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Sends a notification.
    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    fn recv(&mut self) -> Value {
        self.messages
            .recv_timeout(Duration::from_secs(30))
            .expect("the server answers within 30 s")
    }

    /// Sends a request and waits for its response (the whole response object: `result` or
    /// `error`).
    pub fn request_raw(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let msg = self.recv();
            if msg.get("id") == Some(&json!(id)) && msg.get("method").is_none() {
                return msg;
            }
            if msg.get("method").is_some() && msg.get("id").is_none() {
                self.notifications.push(msg);
            }
        }
    }

    /// Sends a request and returns its result (panics on an error response).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let response = self.request_raw(method, params);
        if let Some(error) = response.get("error") {
            panic!("{method} failed: {error}");
        }
        response.get("result").cloned().unwrap_or(Value::Null)
    }

    /// Waits for the next `publishDiagnostics` of `path` (at `version`, when given).
    pub fn diagnostics(&mut self, path: &str, version: Option<i32>) -> Vec<Value> {
        let uri = self.uri(path);
        let matches = |n: &Value| {
            n["method"] == "textDocument/publishDiagnostics"
                && n["params"]["uri"] == json!(uri)
                && version.is_none_or(|v| n["params"]["version"] == json!(v))
        };
        if let Some(i) = self.notifications.iter().position(matches) {
            let n = self.notifications.remove(i);
            return n["params"]["diagnostics"]
                .as_array()
                .cloned()
                .unwrap_or_default();
        }
        loop {
            let msg = self.recv();
            if matches(&msg) {
                return msg["params"]["diagnostics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
            }
            if msg.get("method").is_some() {
                self.notifications.push(msg);
            }
        }
    }

    /// Opens a fixture file in the editor.
    pub fn open(&mut self, path: &str) {
        let text = self
            .texts
            .get(path)
            .cloned()
            .unwrap_or_else(|| std::fs::read_to_string(self.dir.join(path)).unwrap());
        self.versions.insert(path.to_string(), 1);
        let uri = self.uri(path);
        self.notify("textDocument/didOpen", json!({ "textDocument": { "uri": uri, "languageId": "sflow", "version": 1, "text": text } }));
    }

    /// Replaces a file's whole text in the editor (unsaved) and returns the new version.
    pub fn change(&mut self, path: &str, text: &str) -> i32 {
        let version = self.versions.get(path).copied().unwrap_or(1) + 1;
        self.versions.insert(path.to_string(), version);
        self.texts.insert(path.to_string(), text.to_string());
        let uri = self.uri(path);
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": version }, "contentChanges": [{ "text": text }] }),
        );
        version
    }

    /// The protocol position of a byte offset in an opened file.
    pub fn position(&self, path: &str, offset: usize) -> Value {
        let text = &self.texts[path];
        let before = &text[..offset];
        let line = before.matches('\n').count();
        let col: usize = before
            .rsplit('\n')
            .next()
            .unwrap_or("")
            .encode_utf16()
            .count();
        json!({ "line": line, "character": col })
    }

    /// `{ textDocument, position }` for a cursor.
    pub fn at(&self, cursor: &Cursor) -> Value {
        json!({ "textDocument": { "uri": self.uri(&cursor.file) }, "position": self.position(&cursor.file, cursor.offset) })
    }

    /// The fixture path of a URI (or the URI itself for `sflow-std:`).
    pub fn path_of(&self, uri: &str) -> String {
        let prefix = format!("file://{}/", self.dir.display());
        uri.strip_prefix(&prefix)
            .map(str::to_string)
            .unwrap_or_else(|| uri.to_string())
    }

    /// The text of a URI: a fixture file or a std module.
    fn text_of(&mut self, uri: &str) -> String {
        if uri.starts_with("sflow-std:") {
            return self
                .request("sflow/stdlibSource", json!({ "uri": uri }))
                .as_str()
                .unwrap_or("")
                .to_string();
        }
        let path = self.path_of(uri);
        self.texts
            .get(&path)
            .cloned()
            .unwrap_or_else(|| std::fs::read_to_string(self.dir.join(&path)).unwrap_or_default())
    }

    /// Draws the cursor under its line: the line, then `↑` at the cursor's column.
    pub fn draw_cursor(&self, cursor: &Cursor) -> String {
        let text = &self.texts[&cursor.file];
        let start = text[..cursor.offset].rfind('\n').map_or(0, |i| i + 1);
        let end = text[cursor.offset..]
            .find('\n')
            .map_or(text.len(), |i| cursor.offset + i);
        let column = text[start..cursor.offset].chars().count();
        format!(
            "{}:\n{}\n{}↑\n",
            cursor.file,
            &text[start..end],
            " ".repeat(column)
        )
    }

    /// Draws a protocol location: `path:line:col`, the line, `^` under the range.
    pub fn draw_location(&mut self, uri: &str, range: &Value) -> String {
        let text = self.text_of(uri);
        let line = range["start"]["line"].as_u64().unwrap_or(0) as usize;
        let start_col = range["start"]["character"].as_u64().unwrap_or(0) as usize;
        let end_col = if range["end"]["line"] == range["start"]["line"] {
            range["end"]["character"].as_u64().unwrap_or(0) as usize
        } else {
            start_col + 1
        };
        let line_text = text.lines().nth(line).unwrap_or("");
        format!(
            "{}:{}:{}\n{}\n{}{}\n",
            self.path_of(uri),
            line + 1,
            start_col + 1,
            line_text,
            " ".repeat(start_col),
            "^".repeat(end_col.saturating_sub(start_col).max(1))
        )
    }

    /// Shuts the server down and checks it exits cleanly.
    pub fn shutdown(mut self) {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let status = self.child.wait().expect("the server exits");
        assert!(status.success(), "the server exited with {status}");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
