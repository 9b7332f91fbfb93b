//! Completion on half-typed code. The position is read from the text before the cursor
//! ([`context::scan`]: enclosing blocks, the statement so far, the path before a `.`), never
//! from the parse, which may have dropped the declaration being typed. The names come from
//! the latest analysis of the program (a few keystrokes old at most), looked up by name.
//!
//! Positions served: declaration keywords at the top level; members of each block (`app`,
//! step, service, `resources` fields, the configs of an agent's kind, policy clauses); names
//! in scope in expressions; types after `:`; agent kinds after `agent NAME:`; members after a
//! `.` (steps of a workflow, outputs and metrics of a step, sensors and actions of an agent,
//! the signals of a service, items of a std module); actions after `then` and `->`;
//! workflows after `run`; std steps after `uses =`; argument names inside a call; params,
//! `inputs.`, `outputs.` and `app.` inside a `{{ … }}` template; values of the type a field
//! expects (services for a `Service` config, the std detectors for a `Detector` one — with an
//! edit that imports the one picked —, `maximize`/`minimize` for an `Objective` and
//! `tpe`/`random_search` for a `Search`, `WORKFLOW.STEP.OUTPUT` Model paths for a service's
//! `model`).

use super::context::{scan, BlockKind, Scan};
use super::docs;
use crate::vfs::Document;
use crate::world::Snapshot;
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionResponse, Documentation, InsertTextFormat,
    MarkupContent, MarkupKind, Position,
};
use sflow_compiler::sources::Origin;
use sflow_compiler::span::FileId;
use sflow_compiler::stdlib;
use sflow_compiler::symbols::{Def, DefId, DefKind};
use sflow_compiler::syntax::ast::PortSort;
use sflow_compiler::types::Ty;
use std::collections::BTreeSet;

/// The completions at `pos` of the document `doc` (whose path is `path`).
pub fn completion(
    snap: Option<&Snapshot>,
    path: &str,
    doc: &Document,
    pos: Position,
) -> Option<CompletionResponse> {
    let offset = doc.lines.offset_utf16(&doc.text, pos.line, pos.character);
    let s = scan(&doc.text, offset);
    if s.in_comment {
        return None;
    }
    let names = Names {
        snap,
        file: snap.and_then(|sn| sn.file(path)),
    };
    let mut items = Items::default();
    if let Some(tok) = s.in_string {
        template(&s, &names, tok, offset, &mut items);
    } else if let Some(path) = s.path_before_dot() {
        members(&s, &names, &path, &mut items);
    } else {
        position(&s, &names, &mut items);
    }
    if items.0.is_empty() {
        return None;
    }
    let mut list = items.0;
    list.sort_by(|a, b| a.sort_text.cmp(&b.sort_text).then(a.label.cmp(&b.label)));
    list.dedup_by(|a, b| a.label == b.label);
    Some(CompletionResponse::Array(list))
}

/// The completion items being collected.
#[derive(Default)]
struct Items(Vec<CompletionItem>);

impl Items {
    fn add(
        &mut self,
        label: &str,
        kind: CompletionItemKind,
        detail: Option<String>,
    ) -> &mut CompletionItem {
        self.0.push(CompletionItem {
            label: label.to_string(),
            kind: Some(kind),
            detail,
            sort_text: Some(format!("1{label}")),
            ..Default::default()
        });
        let n = self.0.len() - 1;
        &mut self.0[n]
    }

    fn keyword(&mut self, word: &str) {
        let doc = docs::keyword(word).map(str::to_string);
        self.add(word, CompletionItemKind::KEYWORD, doc).sort_text = Some(format!("2{word}"));
    }

    /// `name = ` for a field.
    fn field(&mut self, name: &str, detail: Option<String>) {
        let item = self.add(name, CompletionItemKind::FIELD, detail);
        item.insert_text = Some(format!("{name} = "));
    }

    fn snippet(&mut self, label: &str, snippet: &str, detail: &str) {
        let item = self.add(label, CompletionItemKind::SNIPPET, Some(detail.to_string()));
        item.insert_text = Some(snippet.to_string());
        item.insert_text_format = Some(InsertTextFormat::SNIPPET);
        item.sort_text = Some(format!("2{label}"));
    }

    fn def(&mut self, snap: &Snapshot, id: DefId) -> &mut CompletionItem {
        let def = snap.def(id);
        let kind = match def.kind {
            DefKind::Workflow | DefKind::Module | DefKind::App => CompletionItemKind::MODULE,
            DefKind::Step | DefKind::ExternFn | DefKind::ExternStep => CompletionItemKind::FUNCTION,
            DefKind::Action => CompletionItemKind::METHOD,
            DefKind::Param | DefKind::ParamSig | DefKind::Agent | DefKind::Service => {
                CompletionItemKind::VARIABLE
            }
            DefKind::Input
            | DefKind::Output
            | DefKind::Metric
            | DefKind::Sensor
            | DefKind::Config => CompletionItemKind::FIELD,
            DefKind::AgentKind => CompletionItemKind::CLASS,
            DefKind::TypeAlias => CompletionItemKind::TYPE_PARAMETER,
            DefKind::Trigger | DefKind::Policy => CompletionItemKind::EVENT,
        };
        let documentation = def.doc.as_ref().map(|d| {
            Documentation::MarkupContent(MarkupContent {
                kind: MarkupKind::Markdown,
                value: d.clone(),
            })
        });
        let detail = if def.kind == DefKind::Module {
            format!("module std.{}", def.name)
        } else {
            tidy(&def.signature)
        };
        let item = self.add(&def.name, kind, Some(detail));
        item.documentation = documentation;
        item
    }
}

/// Name lookups in the latest analysis.
pub(crate) struct Names<'s> {
    snap: Option<&'s Snapshot>,
    /// The document's file in that analysis.
    file: Option<FileId>,
}

impl<'s> Names<'s> {
    fn defs(&self) -> impl Iterator<Item = (DefId, &'s Def)> + '_ {
        self.snap.into_iter().flat_map(|s| {
            s.analysis
                .symbols
                .defs
                .iter()
                .enumerate()
                .map(|(i, d)| (DefId(i as u32), d))
        })
    }

    fn is_std(&self, def: &Def) -> bool {
        self.snap
            .is_some_and(|s| matches!(s.source(def.name_at.file).origin, Origin::Std(_)))
    }

    /// The top-level declaration named `name` of one of `kinds` (user files first).
    fn top(&self, name: &str, kinds: &[DefKind]) -> Option<DefId> {
        let mut found: Vec<(DefId, bool)> = self
            .defs()
            .filter(|(_, d)| self.is_top(d) && d.name == name && kinds.contains(&d.kind))
            .map(|(id, d)| (id, self.is_std(d)))
            .collect();
        found.sort_by_key(|(_, std)| *std);
        found.first().map(|(id, _)| *id)
    }

    /// Whether `def` is declared at the top level (std items are children of their module).
    fn is_top(&self, def: &Def) -> bool {
        match (def.parent, self.snap) {
            (None, _) => true,
            (Some(p), Some(snap)) => snap.def(p).kind == DefKind::Module,
            _ => false,
        }
    }

    fn children(&self, parent: DefId) -> Vec<(DefId, &'s Def)> {
        self.snap
            .map(|s| s.analysis.symbols.children(parent).collect())
            .unwrap_or_default()
    }

    fn child(&self, parent: DefId, name: &str) -> Option<DefId> {
        self.children(parent)
            .into_iter()
            .find(|(_, d)| d.name == name)
            .map(|(id, _)| id)
    }

    /// The ports of a step (std ports merged in), by sort.
    fn ports(&self, step: DefId, sorts: &[PortSort]) -> Vec<DefId> {
        let Some(snap) = self.snap else {
            return Vec::new();
        };
        match snap.analysis.facts.step_ports.get(&step) {
            Some(ports) => ports
                .iter()
                .filter(|p| sorts.contains(&p.sort))
                .map(|p| p.def)
                .collect(),
            None => self
                .children(step)
                .into_iter()
                .filter(|(_, d)| {
                    sorts.iter().any(|s| match s {
                        PortSort::Input => d.kind == DefKind::Input,
                        PortSort::Output => d.kind == DefKind::Output,
                        PortSort::Metric => d.kind == DefKind::Metric,
                    })
                })
                .map(|(id, _)| id)
                .collect(),
        }
    }

    /// The kind of the agent named `agent`.
    fn agent_kind(&self, agent: DefId) -> Option<DefId> {
        let snap = self.snap?;
        snap.analysis
            .facts
            .agent_kinds
            .get(&agent)
            .copied()
            .or_else(|| {
                // `agent NAME: KIND` in the signature, when the checker could not resolve it.
                let sig = &snap.def(agent).signature;
                let kind = sig.rsplit(':').next()?.split_whitespace().next()?;
                self.top(kind, &[DefKind::AgentKind])
            })
    }

    /// Std items and modules this file imports: the items it names in `use` lines, and the
    /// modules it imports whole (`use std.detectors`), which `text` shows.
    fn imported(&self, text: &str) -> Vec<DefId> {
        let (Some(snap), Some(file)) = (self.snap, self.file) else {
            return Vec::new();
        };
        let mut out: BTreeSet<DefId> = BTreeSet::new();
        for r in &snap.analysis.symbols.references {
            if r.at.file == file {
                let d = snap.def(r.def);
                let whole_module = d.kind == DefKind::Module
                    && text
                        .lines()
                        .any(|l| l.trim() == format!("use std.{}", d.name));
                if (self.is_top(d) && matches!(d.kind, DefKind::ExternFn | DefKind::ExternStep))
                    || whole_module
                {
                    out.insert(r.def);
                }
            }
        }
        out.into_iter().collect()
    }

    fn model_metrics(&self, ty: Option<&Ty>) -> Vec<DefId> {
        match ty {
            Some(Ty::Model(Some(step))) => self.ports(*step, &[PortSort::Metric]),
            _ => Vec::new(),
        }
    }
}

/// Inside a string: the names a `{{ … }}` template may use.
fn template(
    s: &Scan<'_>,
    names: &Names<'_>,
    tok: crate::lex::Tok,
    offset: usize,
    items: &mut Items,
) {
    let inside = s.text.get(tok.start..offset).unwrap_or("");
    let Some(open) = inside.rfind("{{") else {
        return;
    };
    let expr = inside.get(open + 2..).unwrap_or("");
    if expr.contains("}}") {
        return;
    }
    let expr = expr.trim_start();
    let step = step_def(s, names);
    let Some(snap) = names.snap else { return };
    match expr.rsplit_once('.') {
        Some((head, _)) => match head.trim() {
            "inputs" => step
                .into_iter()
                .flat_map(|st| names.ports(st, &[PortSort::Input]))
                .for_each(|p| {
                    items.def(snap, p);
                }),
            "outputs" => step
                .into_iter()
                .flat_map(|st| names.ports(st, &[PortSort::Output]))
                .for_each(|p| {
                    items.def(snap, p);
                }),
            "app" => {
                for (field, what) in [
                    ("name", "the app's name"),
                    ("namespace", "the app's namespace"),
                    ("registry", "the app's image registry"),
                ] {
                    items.add(field, CompletionItemKind::FIELD, Some(what.into()));
                }
            }
            _ => {}
        },
        None => {
            if let Some(workflow) = workflow_def(s, names) {
                for (id, d) in names.children(workflow) {
                    if d.kind == DefKind::Param {
                        items.def(snap, id);
                    }
                }
            }
            if step.is_some() {
                items.add(
                    "inputs",
                    CompletionItemKind::MODULE,
                    Some("{{inputs.NAME}}: the path of an input".into()),
                );
                items.add(
                    "outputs",
                    CompletionItemKind::MODULE,
                    Some("{{outputs.NAME}}: the path to write an output to".into()),
                );
            }
            items.add(
                "app",
                CompletionItemKind::MODULE,
                Some("{{app.name}}, {{app.namespace}}, {{app.registry}}".into()),
            );
        }
    }
}

fn workflow_def(s: &Scan<'_>, names: &Names<'_>) -> Option<DefId> {
    names.top(s.workflow()?, &[DefKind::Workflow])
}

fn step_def(s: &Scan<'_>, names: &Names<'_>) -> Option<DefId> {
    names.child(workflow_def(s, names)?, s.step()?)
}

/// Whether the statement is an action position (`then …`, `-> …`).
fn action_position(s: &Scan<'_>) -> bool {
    let stmt = s.stmt();
    let last_clause = stmt.iter().rev().find(|w| {
        matches!(
            **w,
            "then" | "->" | "when" | "for" | "cooldown" | "max" | "every" | "on"
        )
    });
    matches!(last_clause, Some(&"then" | &"->"))
}

/// After `a.b.`: the members of what the path names.
fn members(s: &Scan<'_>, names: &Names<'_>, path: &[&str], items: &mut Items) {
    let stmt = s.stmt();
    // `use std.…`
    if stmt.first() == Some(&"use") {
        match path {
            ["std"] => {
                for m in stdlib::MODULES {
                    items.add(
                        m.name,
                        CompletionItemKind::MODULE,
                        Some(format!("std.{}", m.name)),
                    );
                }
            }
            ["std", module] => {
                if let Some(m) = stdlib::module(module) {
                    let parse = sflow_compiler::syntax::parse(FileId(0), m.text);
                    for item in &parse.file.items {
                        if let Some(name) = item.name() {
                            let kind = CompletionItemKind::FUNCTION;
                            let detail = item
                                .span()
                                .text(m.text)
                                .lines()
                                .find(|l| l.starts_with("extern"))
                                .map(str::to_string);
                            let added = items.add(&name.name, kind, detail);
                            added.documentation =
                                item.doc().map(|d| Documentation::String(d.text.clone()));
                        }
                    }
                }
            }
            _ => {}
        }
        return;
    }
    let Some(snap) = names.snap else { return };
    let Some((&head, rest)) = path.split_first() else {
        return;
    };
    let after_on = stmt.contains(&"on");
    let actions = action_position(s);
    let every = stmt.last() == Some(&"every") || stmt.iter().rev().nth(1) == Some(&"every");
    // A step of the enclosing workflow: its outputs (what an input binds to).
    if let Some(workflow) = workflow_def(s, names) {
        if let Some(step) = names
            .child(workflow, head)
            .filter(|id| snap.def(*id).kind == DefKind::Step)
        {
            if rest.is_empty() {
                for p in names.ports(step, &[PortSort::Output]) {
                    items.def(snap, p);
                }
                return;
            }
        }
    }
    let Some(target) = names.top(
        head,
        &[
            DefKind::Workflow,
            DefKind::Service,
            DefKind::Agent,
            DefKind::Module,
        ],
    ) else {
        return;
    };
    match (snap.def(target).kind, rest) {
        (DefKind::Workflow, []) => {
            for (id, d) in names.children(target) {
                if d.kind == DefKind::Step {
                    items.def(snap, id);
                }
            }
            if after_on {
                for event in ["started", "succeeded", "failed"] {
                    items.add(
                        event,
                        CompletionItemKind::EVENT,
                        Some(format!("the event of a run of `{head}` that {event}")),
                    );
                }
            }
        }
        (DefKind::Workflow, [step]) => {
            if let Some(step) = names.child(target, step) {
                for p in names.ports(step, &[PortSort::Output, PortSort::Metric]) {
                    items.def(snap, p);
                }
            }
        }
        (DefKind::Service, []) => {
            let model = snap
                .analysis
                .facts
                .service_models
                .get(&target)
                .map(|st| format!("Model (of step `{}`)", snap.def(*st).name));
            items.add(
                "model",
                CompletionItemKind::FIELD,
                model.or(Some("Model".into())),
            );
            items.add(
                "latency",
                CompletionItemKind::FIELD,
                Some("latency record: .p50, .p95, .p99 (durations)".into()),
            );
            items.add(
                "requests",
                CompletionItemKind::FIELD,
                Some("int: requests served".into()),
            );
            items.add(
                "errors",
                CompletionItemKind::FIELD,
                Some("ratio: share of failed requests".into()),
            );
            items.add(
                "replicas",
                CompletionItemKind::FIELD,
                Some("int: current replicas".into()),
            );
            if after_on {
                items.add(
                    "scaled",
                    CompletionItemKind::EVENT,
                    Some("the service was scaled".into()),
                );
            }
        }
        (DefKind::Service, ["latency"]) => {
            for p in ["p50", "p95", "p99"] {
                items.add(
                    p,
                    CompletionItemKind::FIELD,
                    Some(format!("duration: the {p} latency")),
                );
            }
        }
        (DefKind::Service, ["model"]) => {
            if after_on {
                items.add(
                    "replaced",
                    CompletionItemKind::EVENT,
                    Some("the served model was replaced".into()),
                );
                items.add(
                    "rolled_back",
                    CompletionItemKind::EVENT,
                    Some("the served model was rolled back".into()),
                );
            }
            if let Some(step) = snap.analysis.facts.service_models.get(&target) {
                for p in names.ports(*step, &[PortSort::Metric]) {
                    items.def(snap, p);
                }
            }
        }
        (DefKind::Agent, []) => {
            let Some(kind) = names.agent_kind(target) else {
                return;
            };
            for (id, d) in names.children(kind) {
                match d.kind {
                    DefKind::Action if actions => {
                        let params: Vec<String> = names
                            .children(id)
                            .iter()
                            .enumerate()
                            .map(|(i, (_, p))| format!("${{{}:{}}}", i + 1, p.name))
                            .collect();
                        let item = items.def(snap, id);
                        item.insert_text = Some(format!("{}({})", d.name, params.join(", ")));
                        item.insert_text_format = Some(InsertTextFormat::SNIPPET);
                    }
                    DefKind::Sensor if !actions => {
                        let int = snap.analysis.facts.def_types.get(&id) == Some(&Ty::Int);
                        if !every || int {
                            items.def(snap, id);
                        }
                    }
                    _ => {}
                }
            }
        }
        (DefKind::Agent, [member]) => {
            let Some(kind) = names.agent_kind(target) else {
                return;
            };
            let Some(sensor) = names.child(kind, member) else {
                return;
            };
            let ty = snap.analysis.facts.def_types.get(&sensor);
            if ty == Some(&Ty::Batch) {
                items.add(
                    "size",
                    CompletionItemKind::FIELD,
                    Some("int: the number of samples".into()),
                );
            }
            for p in names.model_metrics(ty) {
                items.def(snap, p);
            }
        }
        (DefKind::Module, []) => {
            for (id, d) in names.defs() {
                if names.is_top(d) && matches!(d.kind, DefKind::ExternFn | DefKind::ExternStep) {
                    if let Origin::Std(m) = snap.source(d.name_at.file).origin {
                        if m == head {
                            items.def(snap, id);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// Anywhere else: keywords, fields, types, names, by position.
fn position(s: &Scan<'_>, names: &Names<'_>, items: &mut Items) {
    let stmt = s.stmt();
    let back0 = s.back(0);
    let snap = names.snap;
    // `agent NAME:` → kinds; `trigger NAME:` → sources; `NAME:` → types.
    if back0 == Some(":") {
        match stmt.first() {
            Some(&"agent") if stmt.len() == 3 => {
                for (id, d) in names.defs() {
                    if d.kind == DefKind::AgentKind {
                        if let Some(snap) = snap {
                            items.def(snap, id);
                        }
                    }
                }
            }
            Some(&"trigger") if stmt.len() == 3 => {
                items.snippet(
                    "schedule",
                    "schedule \"${1:0 * * * *}\"",
                    "fires on a cron schedule",
                );
                items.snippet(
                    "every",
                    "every ${1:1000} ${2:tracker.new_samples}",
                    "fires when a counter sensor grows by N",
                );
                items.snippet("on", "on ${1:workflow.succeeded}", "fires on an event");
                items.snippet(
                    "webhook",
                    "webhook \"/${1:path}\"",
                    "fires on a POST to the control API",
                );
            }
            _ => types(names, items),
        }
        return;
    }
    if back0 == Some("<") && s.back(1) == Some("list") {
        types(names, items);
        return;
    }
    if back0 == Some("=") && stmt.first() == Some(&"type") {
        types(names, items);
        return;
    }
    // `run` → workflows.
    if back0 == Some("run") {
        for (id, d) in names.defs() {
            if d.kind == DefKind::Workflow {
                if let Some(snap) = snap {
                    items.def(snap, id);
                }
            }
        }
        return;
    }
    // `uses =` → std steps.
    if back0 == Some("=") && s.back(1) == Some("uses") {
        for (id, d) in names.defs() {
            if d.kind == DefKind::ExternStep {
                if let Some(snap) = snap {
                    let item = items.def(snap, id);
                    item.insert_text = Some(format!("{}($1)", d.name));
                    item.insert_text_format = Some(InsertTextFormat::SNIPPET);
                }
            }
        }
        return;
    }
    // Actions after `then`, `,` in a then list, and `->`.
    let after_action_keyword = matches!(back0, Some("then" | "->"))
        || (back0 == Some(",") && s.calls.is_empty() && action_position(s));
    if after_action_keyword {
        if stmt.first() == Some(&"action") {
            items.keyword("run");
            items.keyword("webhook");
            return;
        }
        items.keyword("run");
        if snap.is_some() {
            for (agent, a) in names
                .defs()
                .filter(|(_, d)| d.kind == DefKind::Agent && d.parent.is_none())
            {
                let Some(kind) = names.agent_kind(agent) else {
                    continue;
                };
                for (action, d) in names.children(kind) {
                    if d.kind != DefKind::Action {
                        continue;
                    }
                    let params: Vec<String> = names
                        .children(action)
                        .iter()
                        .enumerate()
                        .map(|(i, (_, p))| format!("${{{}:{}}}", i + 1, p.name))
                        .collect();
                    let label = format!("{}.{}", a.name, d.name);
                    let documentation = d.doc.as_ref().map(|x| Documentation::String(x.clone()));
                    let item =
                        items.add(&label, CompletionItemKind::METHOD, Some(tidy(&d.signature)));
                    item.insert_text = Some(format!("{label}({})", params.join(", ")));
                    item.insert_text_format = Some(InsertTextFormat::SNIPPET);
                    item.documentation = documentation;
                }
            }
        }
        return;
    }
    // A value whose type is known from the field: an agent's config, a service's model.
    if back0 == Some("=") && s.calls.is_empty() {
        if let Some(field) = s.back(1) {
            match s.block() {
                Some(BlockKind::Agent { kind }) => {
                    let config = names
                        .top(kind, &[DefKind::AgentKind])
                        .and_then(|k| names.child(k, field));
                    let ty = config
                        .and_then(|c| snap.and_then(|sn| sn.analysis.facts.def_types.get(&c)));
                    if let Some(ty) = ty {
                        if typed_values(s, names, ty, items) {
                            return;
                        }
                    }
                }
                Some(BlockKind::Service(_)) if field == "model" => {
                    model_paths(names, items);
                    return;
                }
                _ => {}
            }
        }
    }
    // Argument names inside a call.
    if let Some(call) = s.calls.last() {
        if matches!(back0, Some("(" | ",")) {
            if let Some(callee) = resolve_callee(names, &call.callee) {
                if let Some(snap) = snap {
                    for (id, d) in names.children(callee) {
                        if d.kind == DefKind::ParamSig {
                            let item = items.def(snap, id);
                            item.insert_text = Some(format!("{} = ", d.name));
                            item.sort_text = Some(format!("0{}", d.name));
                        }
                    }
                }
            }
            values(s, names, items);
            return;
        }
    }
    // The first word of a member: the block's fields and keywords.
    let at_member_start = s.toks.len() == s.stmt_start || s.fresh_line;
    if at_member_start {
        match s.block() {
            None => {
                for (label, snippet) in [
                    ("app", "app ${1:name} {\n\tnamespace = \"$2\"\n}"),
                    ("workflow", "workflow ${1:name} {\n\t$0\n}"),
                    (
                        "service",
                        "service ${1:name} {\n\tmodel    = $2\n\treplicas = ${3:1..4}\n}",
                    ),
                    ("policy", "policy ${1:name} {\n\twhen $2\n\tthen $3\n}"),
                    ("trigger", "trigger ${1:name}: $2 -> $3"),
                ] {
                    items.snippet(label, snippet, docs::keyword(label).unwrap_or(""));
                }
                for word in ["use", "type", "agent"] {
                    items.keyword(word);
                }
            }
            Some(BlockKind::App) => {
                for (b, f, d) in docs::FIELDS {
                    if *b == "app" {
                        items.field(f, Some(d.to_string()));
                    }
                }
            }
            Some(BlockKind::Step(_) | BlockKind::ExternStep) => {
                for (b, f, d) in docs::FIELDS {
                    if *b == "step" {
                        if matches!(
                            *f,
                            "input" | "output" | "metric" | "resources" | "retry" | "timeout"
                        ) {
                            items
                                .add(f, CompletionItemKind::KEYWORD, Some(d.to_string()))
                                .sort_text = Some(format!("2{f}"));
                        } else {
                            items.field(f, Some(d.to_string()));
                        }
                    }
                }
            }
            Some(BlockKind::Service(_)) => {
                for (b, f, d) in docs::FIELDS {
                    if *b == "service" {
                        if matches!(*f, "slo" | "resources") {
                            items
                                .add(f, CompletionItemKind::KEYWORD, Some(d.to_string()))
                                .sort_text = Some(format!("2{f}"));
                        } else {
                            items.field(f, Some(d.to_string()));
                        }
                    }
                }
            }
            Some(BlockKind::Resources) => {
                for (b, f, d) in docs::FIELDS {
                    if *b == "resources" {
                        items.field(f, Some(d.to_string()));
                    }
                }
            }
            Some(BlockKind::Agent { kind }) => {
                if let (Some(kind), Some(snap)) = (names.top(kind, &[DefKind::AgentKind]), snap) {
                    for (id, d) in names.children(kind) {
                        if d.kind == DefKind::Config {
                            let item = items.def(snap, id);
                            item.insert_text = Some(format!("{} = ", d.name));
                        }
                    }
                }
            }
            Some(BlockKind::AgentKind(_)) => ["config", "sensor", "action"]
                .iter()
                .for_each(|w| items.keyword(w)),
            Some(BlockKind::Workflow(_)) => ["param", "step"].iter().for_each(|w| items.keyword(w)),
            Some(BlockKind::Policy) => ["when", "for", "then", "cooldown", "max"]
                .iter()
                .for_each(|w| items.keyword(w)),
            Some(BlockKind::With(workflow)) => {
                if let (Some(w), Some(snap)) = (names.top(workflow, &[DefKind::Workflow]), snap) {
                    for (id, d) in names.children(w) {
                        if d.kind == DefKind::Param {
                            let item = items.def(snap, id);
                            item.insert_text = Some(format!("{} = ", d.name));
                        }
                    }
                }
            }
            Some(BlockKind::Record) => {}
        }
        return;
    }
    values(s, names, items);
}

/// Built-in types and the program's aliases.
fn types(names: &Names<'_>, items: &mut Items) {
    for (t, d) in docs::TYPES {
        items.add(t, CompletionItemKind::TYPE_PARAMETER, Some(d.to_string()));
    }
    if let Some(snap) = names.snap {
        for (id, d) in names.defs() {
            if d.kind == DefKind::TypeAlias {
                items.def(snap, id);
            }
        }
    }
}

/// The values of type `ty` (an agent config's): services, workflows, or the std functions
/// that make a `Detector`, `LabelSource` or `Dataset` — with an edit that imports them when
/// the file does not yet —, or the prelude's functions that make an `Objective` or a
/// `Search` (in scope everywhere). Returns whether the type was one of those.
fn typed_values(s: &Scan<'_>, names: &Names<'_>, ty: &Ty, items: &mut Items) -> bool {
    let Some(snap) = names.snap else { return false };
    if matches!(ty, Ty::Objective | Ty::Search) {
        let wanted = format!("-> {ty}");
        for (id, d) in names.defs() {
            if d.kind == DefKind::ExternFn
                && d.parent.is_none()
                && names.is_std(d)
                && d.signature.ends_with(&wanted)
            {
                let item = items.def(snap, id);
                if d.signature.contains(&format!("{}()", d.name)) {
                    item.insert_text = Some(format!("{}()", d.name));
                } else {
                    item.insert_text = Some(format!("{}($1)", d.name));
                    item.insert_text_format = Some(InsertTextFormat::SNIPPET);
                }
            }
        }
        return true;
    }
    let kinds: &[DefKind] = match ty {
        Ty::Service(_) => &[DefKind::Service],
        Ty::Workflow(_) => &[DefKind::Workflow],
        Ty::Detector | Ty::LabelSource | Ty::Dataset => &[],
        _ => return false,
    };
    for (id, d) in names.defs() {
        if d.parent.is_none() && kinds.contains(&d.kind) {
            items.def(snap, id);
        }
    }
    if kinds.is_empty() {
        // Std functions returning the type, from the embedded modules (imported or not).
        let imported: BTreeSet<String> = names
            .imported(s.text)
            .into_iter()
            .map(|id| snap.def(id).name.clone())
            .collect();
        let wanted = format!("-> {ty}");
        for module in stdlib::MODULES {
            let parse = sflow_compiler::syntax::parse(FileId(0), module.text);
            for item in &parse.file.items {
                let sflow_compiler::syntax::ast::Item::ExternFn(f) = item else {
                    continue;
                };
                let signature = tidy(f.span.text(module.text).lines().next().unwrap_or(""));
                if !signature.ends_with(&wanted) {
                    continue;
                }
                let label = f.name.name.clone();
                let documentation = f
                    .doc
                    .as_ref()
                    .map(|d| Documentation::String(d.text.clone()));
                let item = items.add(&label, CompletionItemKind::FUNCTION, Some(signature));
                item.documentation = documentation;
                item.insert_text = Some(format!("{label}($1)"));
                item.insert_text_format = Some(InsertTextFormat::SNIPPET);
                if !imported.contains(&label) {
                    item.detail = item
                        .detail
                        .take()
                        .map(|d| format!("{d}  (adds `use std.{}.{label}`)", module.name));
                    item.additional_text_edits = Some(vec![import_edit(
                        s.text,
                        &format!("use std.{}.{label}\n", module.name),
                    )]);
                }
            }
        }
    }
    true
}

/// An edit that inserts `line` after the file's last `use` line (or before its first line).
fn import_edit(text: &str, line: &str) -> lsp_types::TextEdit {
    let mut at_line = 0u32;
    for (i, l) in text.lines().enumerate() {
        if l.trim_start().starts_with("use ") {
            at_line = i as u32 + 1;
        }
    }
    let position = Position {
        line: at_line,
        character: 0,
    };
    lsp_types::TextEdit {
        range: lsp_types::Range {
            start: position,
            end: position,
        },
        new_text: line.to_string(),
    }
}

/// `WORKFLOW.STEP.OUTPUT` of every step output of type `Model`: what a service serves.
fn model_paths(names: &Names<'_>, items: &mut Items) {
    let Some(snap) = names.snap else { return };
    for (workflow, w) in names.defs() {
        if w.kind != DefKind::Workflow || names.is_std(w) {
            continue;
        }
        for (step, st) in names.children(workflow) {
            if st.kind != DefKind::Step {
                continue;
            }
            for port in names.ports(step, &[PortSort::Output]) {
                let ty = snap.analysis.facts.def_types.get(&port);
                if !matches!(ty, Some(Ty::Model(_))) {
                    continue;
                }
                let metrics: Vec<String> = names
                    .ports(step, &[PortSort::Metric])
                    .iter()
                    .map(|m| snap.def(*m).name.clone())
                    .collect();
                let label = format!("{}.{}.{}", w.name, st.name, snap.def(port).name);
                let detail = if metrics.is_empty() {
                    "Model".to_string()
                } else {
                    format!("Model with {}", metrics.join(", "))
                };
                items.add(&label, CompletionItemKind::VALUE, Some(detail));
            }
        }
    }
}

/// Names in scope in an expression.
fn values(s: &Scan<'_>, names: &Names<'_>, items: &mut Items) {
    for word in ["true", "false", "not"] {
        items.keyword(word);
    }
    let Some(snap) = names.snap else { return };
    for (id, d) in names.defs() {
        if d.parent.is_none()
            && !names.is_std(d)
            && matches!(
                d.kind,
                DefKind::Workflow | DefKind::Service | DefKind::Agent
            )
        {
            items.def(snap, id);
        }
    }
    for id in names.imported(s.text) {
        items.def(snap, id);
    }
    if let Some(workflow) = workflow_def(s, names) {
        for (id, d) in names.children(workflow) {
            if matches!(d.kind, DefKind::Param | DefKind::Step) {
                items.def(snap, id).sort_text = Some(format!("0{}", d.name));
            }
        }
    }
}

/// The declaration a call's callee names: a std function or step, an agent's action, or a
/// module's item.
pub(crate) fn resolve_callee(names: &Names<'_>, callee: &[String]) -> Option<DefId> {
    match callee {
        [name] => names.top(name, &[DefKind::ExternFn, DefKind::ExternStep]),
        [head, member] => {
            let target = names.top(head, &[DefKind::Agent, DefKind::Module])?;
            let snap = names.snap?;
            match snap.def(target).kind {
                DefKind::Agent => names.child(names.agent_kind(target)?, member),
                _ => names.top(member, &[DefKind::ExternFn, DefKind::ExternStep]),
            }
        }
        _ => None,
    }
}

/// Lookups for signature help.
pub(crate) fn names_for<'s>(snap: Option<&'s Snapshot>, path: &str) -> Names<'s> {
    Names {
        snap,
        file: snap.and_then(|s| s.file(path)),
    }
}

/// A signature as one tidy line: runs of spaces (alignment padding) outside string literals
/// collapsed to one.
pub(crate) fn tidy(signature: &str) -> String {
    let mut out = String::with_capacity(signature.len());
    let mut in_string = false;
    let mut prev_space = false;
    for c in signature.chars() {
        if c == '"' {
            in_string = !in_string;
        }
        if c.is_whitespace() && !in_string {
            if !prev_space {
                out.push(' ');
            }
            prev_space = true;
        } else {
            out.push(c);
            prev_space = false;
        }
    }
    out.trim().to_string()
}
