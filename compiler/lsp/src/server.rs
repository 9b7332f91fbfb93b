//! The main loop: read a message, update the buffers or answer the request, publish
//! diagnostics when the editor pauses.
//!
//! One thread does everything, in order (lsp-server's synchronous model): an analysis of a
//! 5000-line program takes milliseconds, so nothing needs to run in the background.
//! Diagnostics are debounced by coalescing: an edit marks its program dirty; the loop analyzes
//! dirty programs and publishes their diagnostics once no message has arrived for
//! `diagnosticsDelayMs` (default 0: as soon as the queue of messages is empty), so a burst of
//! edits costs one analysis, not one per keystroke. A request about a dirty program analyzes
//! it first, so answers always describe the buffers as they are.

use crate::convert;
use crate::handlers;
use crate::vfs::{self, Vfs};
use crate::world::Snapshot;
use crossbeam_channel::RecvTimeoutError;
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{self as notif, Notification as _};
use lsp_types::request::{self as req, Request as _};
use lsp_types::*;
use serde::de::DeserializeOwned;
use sflow_compiler::analysis::AnalysisCache;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// The custom request that serves the text of an embedded std module (`sflow-std:` URIs).
pub const STDLIB_SOURCE: &str = "sflow/stdlibSource";

/// Parameters of [`STDLIB_SOURCE`].
#[derive(Debug, serde::Deserialize)]
struct StdlibSourceParams {
    uri: Url,
}

/// The server's state.
pub struct Server {
    /// Open documents.
    pub vfs: Vfs,
    /// Bumped on every edit; snapshots remember the one they saw.
    generation: u64,
    /// The latest analysis of each program, by root path.
    snapshots: HashMap<String, Snapshot>,
    /// What the next analysis of each program can reuse (parses of unchanged declarations and
    /// workflow members), by root path.
    caches: HashMap<String, AnalysisCache>,
    /// Programs edited since their diagnostics were published.
    dirty: BTreeSet<String>,
    /// The root of each open document (recomputed when documents open, close or are saved).
    roots: HashMap<String, String>,
    /// The files each program last published diagnostics for (to clear them later).
    published: HashMap<String, BTreeSet<Url>>,
    /// How long the editor must pause before diagnostics are computed.
    delay: Duration,
    shutdown: bool,
}

/// Runs the server on `connection` until the editor says `exit`.
pub fn run(connection: &Connection) -> Result<(), String> {
    let (id, params) = connection.initialize_start().map_err(|e| e.to_string())?;
    let params: InitializeParams = serde_json::from_value(params).map_err(|e| e.to_string())?;
    let delay = params
        .initialization_options
        .as_ref()
        .and_then(|o| o.get("diagnosticsDelayMs"))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let result = InitializeResult {
        capabilities: capabilities(),
        server_info: Some(ServerInfo {
            name: "sflowc lsp".into(),
            version: Some(env!("CARGO_PKG_VERSION").into()),
        }),
    };
    let result = serde_json::to_value(result).map_err(|e| e.to_string())?;
    connection
        .initialize_finish(id, result)
        .map_err(|e| e.to_string())?;

    let mut server = Server {
        vfs: Vfs::default(),
        generation: 0,
        snapshots: HashMap::new(),
        caches: HashMap::new(),
        dirty: BTreeSet::new(),
        roots: HashMap::new(),
        published: HashMap::new(),
        delay: Duration::from_millis(delay),
        shutdown: false,
    };
    loop {
        let msg = if server.dirty.is_empty() {
            match connection.receiver.recv() {
                Ok(msg) => msg,
                Err(_) => return Ok(()),
            }
        } else {
            match connection.receiver.recv_timeout(server.delay) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => {
                    server.publish_dirty(connection);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        };
        match msg {
            Message::Request(request) => {
                if request.method == req::Shutdown::METHOD {
                    server.shutdown = true;
                    respond(connection, Response::new_ok(request.id, ()));
                    continue;
                }
                if server.shutdown {
                    let response = Response::new_err(
                        request.id,
                        ErrorCode::InvalidRequest as i32,
                        "the server is shutting down".into(),
                    );
                    respond(connection, response);
                    continue;
                }
                let response = server.request(connection, request);
                respond(connection, response);
            }
            Message::Notification(n) => {
                if n.method == notif::Exit::METHOD {
                    return Ok(());
                }
                server.notification(n);
            }
            Message::Response(_) => {}
        }
    }
}

fn respond(connection: &Connection, response: Response) {
    let _ = connection.sender.send(Message::Response(response));
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::INCREMENTAL),
                save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                ..Default::default()
            },
        )),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: Default::default(),
        })),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), "{".into(), ":".into(), "(".into()]),
            ..Default::default()
        }),
        signature_help_provider: Some(SignatureHelpOptions {
            trigger_characters: Some(vec!["(".into(), ",".into()]),
            retrigger_characters: Some(vec![",".into()]),
            work_done_progress_options: Default::default(),
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
            ..Default::default()
        })),
        semantic_tokens_provider: Some(SemanticTokensServerCapabilities::SemanticTokensOptions(
            SemanticTokensOptions {
                legend: handlers::semantic_tokens::legend(),
                full: Some(SemanticTokensFullOptions::Bool(true)),
                range: None,
                work_done_progress_options: Default::default(),
            },
        )),
        ..Default::default()
    }
}

/// What went wrong answering a request.
pub enum Failure {
    /// The request's parameters were not what the method takes.
    BadParams(String),
    /// The request cannot be answered (a message for the user).
    Refused(String),
}

/// A request handler's result.
pub type Answer<T> = Result<T, Failure>;

impl Server {
    fn notification(&mut self, n: Notification) {
        match n.method.as_str() {
            notif::DidOpenTextDocument::METHOD => {
                if let Ok(p) = extract::<DidOpenTextDocumentParams>(n.params) {
                    let doc = p.text_document;
                    self.vfs.open(doc.uri.clone(), doc.text, doc.version);
                    self.roots.clear();
                    self.touch(&doc.uri);
                }
            }
            notif::DidChangeTextDocument::METHOD => {
                if let Ok(p) = extract::<DidChangeTextDocumentParams>(n.params) {
                    let path = vfs::path_of(&p.text_document.uri);
                    let Some(doc) = self.vfs.get(&path) else {
                        return;
                    };
                    let mut text = doc.text.clone();
                    for change in p.content_changes {
                        apply_change(&mut text, change);
                    }
                    self.vfs
                        .set_text(&p.text_document.uri, text, p.text_document.version);
                    self.touch(&p.text_document.uri);
                }
            }
            notif::DidSaveTextDocument::METHOD => {
                if let Ok(p) = extract::<DidSaveTextDocumentParams>(n.params) {
                    if let Some(text) = p.text {
                        let version = self
                            .vfs
                            .get(&vfs::path_of(&p.text_document.uri))
                            .map_or(0, |d| d.version);
                        self.vfs.set_text(&p.text_document.uri, text, version);
                    }
                    self.roots.clear();
                    self.touch(&p.text_document.uri);
                }
            }
            notif::DidCloseTextDocument::METHOD => {
                if let Ok(p) = extract::<DidCloseTextDocumentParams>(n.params) {
                    let root = self.root_of(&vfs::path_of(&p.text_document.uri));
                    self.vfs.close(&p.text_document.uri);
                    self.roots.clear();
                    self.generation += 1;
                    self.dirty.insert(root);
                }
            }
            _ => {}
        }
    }

    /// Records an edit of `uri`: its program must be analyzed again.
    fn touch(&mut self, uri: &Url) {
        self.generation += 1;
        if uri.scheme() == vfs::STD_SCHEME {
            return;
        }
        let root = self.root_of(&vfs::path_of(uri));
        self.dirty.insert(root);
    }

    fn root_of(&mut self, path: &str) -> String {
        if let Some(root) = self.roots.get(path) {
            return root.clone();
        }
        let root = self.vfs.root_of(path);
        self.roots.insert(path.to_string(), root.clone());
        root
    }

    /// Analyzes every dirty program and publishes its diagnostics.
    fn publish_dirty(&mut self, connection: &Connection) {
        for root in std::mem::take(&mut self.dirty) {
            self.refresh(&root);
            self.publish(connection, &root);
        }
    }

    /// Makes the snapshot of `root` current.
    fn refresh(&mut self, root: &str) {
        // Programs made up to view a std module never change.
        let fresh = self
            .snapshots
            .get(root)
            .is_some_and(|s| s.generation == self.generation || root.starts_with(STD_VIEW));
        if !fresh {
            let cache = self.caches.entry(root.to_string()).or_default();
            let snapshot = Snapshot::compute(&self.vfs, root, self.generation, cache);
            if let Some(old) = self.snapshots.insert(root.to_string(), snapshot) {
                // Freeing a large analysis takes milliseconds: not on the editor's time.
                std::thread::spawn(move || drop(old));
            }
        }
    }

    fn publish(&mut self, connection: &Connection, root: &str) {
        let Some(snapshot) = self.snapshots.get(root) else {
            return;
        };
        let by_file = convert::diagnostics_by_file(snapshot);
        let mut now: BTreeSet<Url> = BTreeSet::new();
        let mut messages = Vec::new();
        for (uri, diagnostics) in by_file {
            let version = self.vfs.get(&vfs::path_of(&uri)).map(|d| d.version);
            now.insert(uri.clone());
            messages.push(PublishDiagnosticsParams {
                uri,
                diagnostics,
                version,
            });
        }
        for stale in self.published.get(root).into_iter().flatten() {
            if !now.contains(stale) {
                messages.push(PublishDiagnosticsParams {
                    uri: stale.clone(),
                    diagnostics: Vec::new(),
                    version: None,
                });
            }
        }
        self.published.insert(root.to_string(), now);
        for params in messages {
            let n = Notification::new(notif::PublishDiagnostics::METHOD.to_string(), params);
            let _ = connection.sender.send(Message::Notification(n));
        }
    }

    /// The current snapshot of the program `uri` belongs to, analyzed now if the buffers
    /// changed since (publishing its diagnostics too, as they are then known).
    pub fn fresh(
        &mut self,
        connection: &Connection,
        uri: &Url,
    ) -> Answer<(&Snapshot, sflow_compiler::span::FileId)> {
        let path = vfs::path_of(uri);
        let std = uri.scheme() == vfs::STD_SCHEME;
        let mut root = if std {
            self.std_root(&path)
        } else {
            self.root_of(&path)
        };
        let was_dirty = self.dirty.remove(&root);
        self.refresh(&root);
        if was_dirty {
            self.publish(connection, &root);
        }
        // The program the file was thought to belong to no longer imports it: check it alone.
        if !std
            && self
                .snapshots
                .get(&root)
                .is_some_and(|s| s.file(&path).is_none())
        {
            self.roots.insert(path.clone(), path.clone());
            root = path.clone();
            self.refresh(&root);
        }
        let snapshot = self
            .snapshots
            .get(&root)
            .ok_or_else(|| Failure::Refused("no analysis".into()))?;
        let file = snapshot
            .file(&path)
            .ok_or_else(|| Failure::Refused(format!("{path} is not part of the program")))?;
        Ok((snapshot, file))
    }

    /// The latest snapshot of the program `uri` belongs to, even if a few edits old (for
    /// completion, which reads the current text itself and only needs names from it).
    pub fn latest(&mut self, uri: &Url) -> Option<&Snapshot> {
        let path = vfs::path_of(uri);
        let root = self.root_of(&path);
        if !self.snapshots.contains_key(&root) {
            self.refresh(&root);
        }
        self.snapshots.get(&root)
    }

    /// A root that loads the std module at `path`, so requests inside a std file (opened
    /// through go to definition) can be answered: an existing program that imports it, or a
    /// one-line program that does.
    fn std_root(&mut self, path: &str) -> String {
        if let Some((root, _)) = self.snapshots.iter().find(|(_, s)| s.file(path).is_some()) {
            return root.clone();
        }
        let name = path.trim_start_matches("<std>/").trim_end_matches(".sflow");
        let root = format!("{STD_VIEW}{name}");
        if !self.snapshots.contains_key(&root) {
            let text = if name == "prelude" {
                String::new()
            } else {
                format!("use std.{name}\n")
            };
            let analysis =
                sflow_compiler::analysis::analyze(&root, &text, &sflow_compiler::sources::NoFiles);
            self.snapshots.insert(
                root.clone(),
                Snapshot {
                    root: root.clone(),
                    analysis,
                    generation: u64::MAX,
                },
            );
        }
        root
    }

    fn request(&mut self, connection: &Connection, request: Request) -> Response {
        let id = request.id.clone();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.dispatch(connection, request)
        }));
        match outcome {
            Ok(Ok(value)) => Response {
                id,
                result: Some(value),
                error: None,
            },
            Ok(Err(Failure::BadParams(why))) => {
                Response::new_err(id, ErrorCode::InvalidParams as i32, why)
            }
            Ok(Err(Failure::Refused(why))) => {
                Response::new_err(id, ErrorCode::RequestFailed as i32, why)
            }
            Err(_) => Response::new_err(
                id,
                ErrorCode::InternalError as i32,
                "internal error in the sflow language server (please report it)".into(),
            ),
        }
    }

    fn dispatch(&mut self, connection: &Connection, request: Request) -> Answer<serde_json::Value> {
        let Request { id, method, params } = request;
        let _: RequestId = id;
        match method.as_str() {
            req::HoverRequest::METHOD => {
                let p: HoverParams = extract(params)?;
                let uri = &p.text_document_position_params.text_document.uri;
                let (snap, file) = self.fresh(connection, uri)?;
                to_value(handlers::hover::hover(
                    snap,
                    file,
                    p.text_document_position_params.position,
                ))
            }
            req::GotoDefinition::METHOD => {
                let p: GotoDefinitionParams = extract(params)?;
                let uri = &p.text_document_position_params.text_document.uri;
                let (snap, file) = self.fresh(connection, uri)?;
                to_value(handlers::definition::definition(
                    snap,
                    file,
                    p.text_document_position_params.position,
                ))
            }
            req::References::METHOD => {
                let p: ReferenceParams = extract(params)?;
                let uri = &p.text_document_position.text_document.uri;
                let (snap, file) = self.fresh(connection, uri)?;
                to_value(handlers::references::references(
                    snap,
                    file,
                    p.text_document_position.position,
                    p.context.include_declaration,
                ))
            }
            req::PrepareRenameRequest::METHOD => {
                let p: TextDocumentPositionParams = extract(params)?;
                let (snap, file) = self.fresh(connection, &p.text_document.uri)?;
                to_value(handlers::rename::prepare(snap, file, p.position)?)
            }
            req::Rename::METHOD => {
                let p: RenameParams = extract(params)?;
                let uri = &p.text_document_position.text_document.uri;
                let (snap, file) = self.fresh(connection, uri)?;
                to_value(handlers::rename::rename(
                    snap,
                    file,
                    p.text_document_position.position,
                    &p.new_name,
                )?)
            }
            req::Completion::METHOD => {
                let p: CompletionParams = extract(params)?;
                let uri = p.text_document_position.text_document.uri.clone();
                let path = vfs::path_of(&uri);
                let Some(doc) = self.vfs.get(&path).cloned() else {
                    return to_value(None::<CompletionResponse>);
                };
                let snap = self.latest(&uri);
                to_value(handlers::completion::completion(
                    snap,
                    &path,
                    &doc,
                    p.text_document_position.position,
                ))
            }
            req::SignatureHelpRequest::METHOD => {
                let p: SignatureHelpParams = extract(params)?;
                let uri = p.text_document_position_params.text_document.uri.clone();
                let path = vfs::path_of(&uri);
                let Some(doc) = self.vfs.get(&path).cloned() else {
                    return to_value(None::<SignatureHelp>);
                };
                let snap = self.latest(&uri);
                to_value(handlers::signature_help::signature_help(
                    snap,
                    &path,
                    &doc,
                    p.text_document_position_params.position,
                ))
            }
            req::DocumentSymbolRequest::METHOD => {
                let p: DocumentSymbolParams = extract(params)?;
                let path = vfs::path_of(&p.text_document.uri);
                let text = self.vfs.text(&path).unwrap_or_default();
                to_value(handlers::symbols::document_symbols(&text))
            }
            req::SemanticTokensFullRequest::METHOD => {
                let p: SemanticTokensParams = extract(params)?;
                let (snap, file) = self.fresh(connection, &p.text_document.uri)?;
                to_value(handlers::semantic_tokens::full(snap, file))
            }
            req::Formatting::METHOD => {
                let p: DocumentFormattingParams = extract(params)?;
                let path = vfs::path_of(&p.text_document.uri);
                let Some(doc) = self.vfs.get(&path) else {
                    return to_value(None::<Vec<TextEdit>>);
                };
                to_value(handlers::formatting::format(doc)?)
            }
            req::CodeActionRequest::METHOD => {
                let p: CodeActionParams = extract(params)?;
                let uri = p.text_document.uri.clone();
                let (snap, file) = self.fresh(connection, &uri)?;
                to_value(handlers::code_action::code_actions(
                    snap, file, &uri, p.range,
                ))
            }
            STDLIB_SOURCE => {
                let p: StdlibSourceParams = extract(params)?;
                let path = vfs::path_of(&p.uri);
                match vfs::std_module(&path) {
                    Some(module) => to_value(module.text),
                    None => Err(Failure::Refused(format!(
                        "{} is not a standard library module",
                        p.uri
                    ))),
                }
            }
            _ => Err(Failure::Refused(format!("unsupported request: {method}"))),
        }
    }
}

/// The prefix of the roots made up to view std modules on their own.
const STD_VIEW: &str = "<std-view>/";

fn extract<T: DeserializeOwned>(params: serde_json::Value) -> Answer<T> {
    serde_json::from_value(params).map_err(|e| Failure::BadParams(e.to_string()))
}

fn to_value<T: serde::Serialize>(value: T) -> Answer<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| Failure::Refused(e.to_string()))
}

/// Applies one content change (a range edit, or the whole text) to `text`.
fn apply_change(text: &mut String, change: TextDocumentContentChangeEvent) {
    match change.range {
        None => *text = change.text,
        Some(range) => {
            let lines = sflow_compiler::span::LineIndex::new(text);
            let start = lines.offset_utf16(text, range.start.line, range.start.character);
            let end = lines
                .offset_utf16(text, range.end.line, range.end.character)
                .max(start);
            if text.is_char_boundary(start) && text.is_char_boundary(end) && end <= text.len() {
                text.replace_range(start..end, &change.text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_changes_apply_in_utf16() {
        let mut text = "a = \"😀\"\nb".to_string();
        let change = TextDocumentContentChangeEvent {
            range: Some(Range {
                start: Position {
                    line: 0,
                    character: 8,
                },
                end: Position {
                    line: 1,
                    character: 1,
                },
            }),
            range_length: None,
            text: "\nc".into(),
        };
        apply_change(&mut text, change);
        assert_eq!(text, "a = \"😀\"\nc");
    }
}
