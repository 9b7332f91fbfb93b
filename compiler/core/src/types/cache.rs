//! The language server's step-check cache: what checking each workflow step produced,
//! reused on the next analysis when neither the step's text nor anything it can see changed.
//!
//! A step is checked in the scope of its workflow: the program's names and declarations, the
//! types of params and ports, the other steps' ports, the std library. All of that is written
//! down, position-free, as the *environment* ([`environment`]) before the steps are checked;
//! a step's check is a function of the environment, its own text, its id, its workflow and
//! its file (the checker reads nothing else: no param default, no other step's body). So when
//! the environment is byte-for-byte the one of the last analysis, a step whose text did not
//! change produces what it produced then: the same diagnostics, references, used
//! declarations, used imports, read outputs and dependencies, with its spans moved to where
//! the step now starts.
//!
//! Invariants:
//! - replaying an entry gives exactly what checking the step gives (the property test
//!   `compiler/core/tests/incremental.rs` compares whole analyses, incremental against full,
//!   over random edit sequences);
//! - the environment is compared exactly (its encoding, not a hash of it); any difference
//!   drops every entry;
//! - an entry is only recorded for a step without syntax errors whose every span lies inside
//!   the step itself or in the (immutable) standard library, so moving it by the step's
//!   displacement is exact;
//! - the cache is a plain value owned by its caller and holds only the steps of the latest
//!   analysis.

use super::{Checker, Dependency};
use crate::diagnostics::Diagnostic;
use crate::sources::Origin;
use crate::span::{FileId, FileSpan, Span};
use crate::symbols::{DefId, DefKind, Reference};
use crate::syntax::ast::{Item, WorkflowMember};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// The check results of the steps of the latest analysis, to make the next type check
/// incremental. See the module's comment.
#[derive(Debug, Default)]
pub struct CheckCache {
    /// The environment the entries were checked in.
    environment: Vec<u8>,
    /// The latest analysis' steps, by id.
    steps: HashMap<DefId, StepEntry>,
    /// The entries of the analysis in progress (they replace `steps` at its end).
    next: HashMap<DefId, StepEntry>,
    /// Whether the entries of `steps` may be used in the analysis in progress.
    live: bool,
    /// How many steps the latest analysis replayed.
    reused: usize,
}

impl CheckCache {
    /// An empty cache.
    pub fn new() -> CheckCache {
        CheckCache::default()
    }

    /// How many steps' checks the latest analysis reused instead of checking them.
    pub fn reused(&self) -> usize {
        self.reused
    }

    /// How many steps' checks are cached (those of the latest analysis).
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// What checking one step produced.
#[derive(Debug)]
struct StepEntry {
    /// The step's text (its key, with the id it is stored under).
    text: String,
    file: FileId,
    workflow: DefId,
    /// Where the step started when it was checked.
    origin: u32,
    diagnostics: Vec<Diagnostic>,
    references: Vec<Reference>,
    used: Vec<DefId>,
    used_imports: Vec<(FileId, u32)>,
    used_ports: Vec<(DefId, DefId)>,
    dependencies: Vec<(DefId, Vec<Dependency>)>,
}

/// What the checker accumulates outside the diagnostics and references, set aside while one
/// step is recorded.
pub(super) struct Saved {
    diagnostics: usize,
    references: usize,
    used: HashSet<DefId>,
    used_imports: HashSet<(FileId, u32)>,
    used_ports: HashSet<(DefId, DefId)>,
    dependencies: HashMap<DefId, Vec<Dependency>>,
}

/// A [`Hasher`] that keeps every byte written to it: `Hash` writes a value's fields in order,
/// length-prefixed or terminated, so equal encodings mean equal values.
struct Encoder(Vec<u8>);

impl Hasher for Encoder {
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn finish(&self) -> u64 {
        0
    }
}

impl Encoder {
    fn put(&mut self, value: impl Hash) {
        value.hash(self);
    }

    /// A map in a deterministic order.
    fn sorted<K: Ord + Hash + Copy, V: Hash>(&mut self, map: &HashMap<K, V>) {
        let mut entries: Vec<(&K, &V)> = map.iter().collect();
        entries.sort_unstable_by_key(|(k, _)| **k);
        self.put(entries);
    }
}

/// Everything a step's check can read besides the step itself, position-free (see the
/// module's comment). Spans appear only where a step's results keep them absolute (imports).
fn environment(c: &Checker<'_, '_>) -> Vec<u8> {
    let p = c.p;
    let mut e = Encoder(Vec::with_capacity(256 * 1024));
    for source in &p.sources.files {
        e.put(&source.path);
        e.put(match source.origin {
            Origin::User => "",
            Origin::Std(name) => name,
        });
    }
    // The declarations: a step refers to them by id, and reads their kind, name and parent
    // (and a call's parameters' signatures). Spans, docs, and the signatures of workflow
    // members (whose first line holds a param's default) are not read by a step's check.
    e.put(c.symbols.defs.len());
    for def in &c.symbols.defs {
        e.put(def.kind);
        e.put(&def.name);
        e.put(def.parent);
        e.put(def.name_at.file);
        let member = matches!(
            def.kind,
            DefKind::Param | DefKind::Step | DefKind::Input | DefKind::Output | DefKind::Metric
        );
        if !member {
            e.put(&def.signature);
        }
    }
    // What the checker learned before the steps.
    e.sorted(&c.def_types);
    e.sorted(&c.step_ports);
    e.sorted(&c.step_uses);
    e.sorted(&c.service_models);
    e.sorted(&c.agent_kinds);
    let mut set: Vec<DefId> = c.defaults.iter().copied().collect();
    set.sort_unstable();
    e.put(&set);
    set = c.optional.iter().copied().collect();
    set.sort_unstable();
    e.put(&set);
    // The program's scopes.
    e.put(p.prelude);
    e.put(p.app.map(|a| (a.file, a.def)));
    e.put(&p.values);
    e.put(&p.types);
    e.put(&p.prelude_values);
    let mut imports: Vec<_> = p.imports.iter().collect();
    imports.sort_unstable_by_key(|(f, _)| **f);
    for (file, list) in imports {
        e.put(file);
        for i in list {
            e.put((&i.name, i.def, i.span));
        }
    }
    e.put(&p.modules);
    let mut failed: Vec<_> = p.failed_imports.iter().collect();
    failed.sort_unstable_by_key(|(f, _)| **f);
    e.put(failed);
    for w in &p.workflows {
        e.put((w.node.file, w.node.def, &w.params, &w.steps, &w.step_names));
    }
    let mut steps: Vec<_> = p.steps.iter().collect();
    steps.sort_unstable_by_key(|(d, _)| **d);
    for (def, s) in steps {
        e.put((def, s.node.file, s.workflow, &s.ports));
    }
    e.sorted(
        &p.params
            .iter()
            .map(|(d, (n, w))| (*d, (n.file, *w)))
            .collect(),
    );
    e.put(
        p.services
            .iter()
            .map(|n| (n.file, n.def))
            .collect::<Vec<_>>(),
    );
    e.put(p.agents.iter().map(|n| (n.file, n.def)).collect::<Vec<_>>());
    e.put(
        p.triggers
            .iter()
            .map(|n| (n.file, n.def))
            .collect::<Vec<_>>(),
    );
    e.put(
        p.policies
            .iter()
            .map(|n| (n.file, n.def))
            .collect::<Vec<_>>(),
    );
    let mut kinds: Vec<_> = p.kinds.iter().collect();
    kinds.sort_unstable_by_key(|(d, _)| **d);
    for (def, k) in kinds {
        e.put((def, k.node.file, &k.members));
        e.sorted(&k.action_params);
    }
    let mut aliases: Vec<_> = p.aliases.iter().map(|(d, n)| (*d, n.file)).collect();
    aliases.sort_unstable();
    e.put(aliases);
    let mut externs: Vec<_> = p.externs.iter().collect();
    externs.sort_unstable_by_key(|(d, _)| **d);
    for (def, x) in externs {
        e.put((def, x.file, &x.params, &x.ports));
    }
    // The user's declarations other than steps, as text (the std library's text never
    // changes): a step's check may read an agent's fields, say. Of a workflow's params, only
    // the name and type: no step reads a param's default or search space.
    for (index, parse) in p.parses.iter().enumerate() {
        let file = FileId(index as u32);
        let source = p.sources.get(file);
        if source.origin != Origin::User {
            continue;
        }
        e.put(file);
        for item in &parse.file.items {
            let Item::Workflow(w) = item else {
                e.put(item.span().text(&source.text));
                continue;
            };
            e.put(&w.name.name);
            for member in &w.members {
                if let WorkflowMember::Param(param) = member {
                    e.put((&param.name.name, param.ty.span.text(&source.text)));
                }
            }
        }
    }
    e.0
}

impl Checker<'_, '_> {
    /// Starts the step checks of an analysis: the cached steps stay usable only if the
    /// environment is the one they were checked in.
    pub(super) fn begin_step_cache(&mut self) {
        if self.cache.is_none() {
            return;
        }
        let environment = environment(self);
        if let Some(cache) = self.cache.as_deref_mut() {
            cache.live = cache.environment == environment;
            if !cache.live {
                cache.steps.clear();
                cache.environment = environment;
            }
            cache.next.clear();
            cache.reused = 0;
        }
    }

    /// Ends them: the entries of this analysis become the cache.
    pub(super) fn end_step_cache(&mut self) {
        if let Some(cache) = self.cache.as_deref_mut() {
            cache.steps = std::mem::take(&mut cache.next);
            cache.live = false;
        }
    }

    /// Replays the cached check of step `def` (whose text is `span` of `file`) if there is
    /// one for it. Returns whether it did.
    pub(super) fn replay_step(
        &mut self,
        file: FileId,
        workflow: DefId,
        def: DefId,
        span: Span,
    ) -> bool {
        let Some(cache) = self.cache.as_deref_mut() else {
            return false;
        };
        if !cache.live {
            return false;
        }
        let text = span.text(&self.p.sources.get(file).text);
        let hit = cache
            .steps
            .get(&def)
            .is_some_and(|e| e.file == file && e.workflow == workflow && e.text == text);
        if !hit {
            return false;
        }
        let Some(entry) = cache.steps.remove(&def) else {
            return false;
        };
        let delta = i64::from(span.start) - i64::from(entry.origin);
        let moved = |at: FileSpan| -> FileSpan {
            if at.file != file {
                return at;
            }
            let by = |x: u32| (i64::from(x) + delta) as u32;
            FileSpan::new(
                file,
                Span::new(by(at.span.start) as usize, by(at.span.end) as usize),
            )
        };
        for d in &entry.diagnostics {
            let mut d = d.clone();
            d.primary.at = moved(d.primary.at);
            for label in &mut d.secondary {
                label.at = moved(label.at);
            }
            for s in &mut d.suggestions {
                s.at = moved(s.at);
            }
            self.diagnostics.push(d);
        }
        self.symbols
            .references
            .extend(entry.references.iter().map(|r| Reference {
                at: moved(r.at),
                def: r.def,
            }));
        self.used.extend(entry.used.iter().copied());
        self.used_imports.extend(entry.used_imports.iter().copied());
        self.used_ports.extend(entry.used_ports.iter().copied());
        for (key, deps) in &entry.dependencies {
            self.dependencies
                .entry(*key)
                .or_default()
                .extend(deps.iter().map(|d| Dependency {
                    span: moved(FileSpan::new(file, d.span)).span,
                    ..d.clone()
                }));
        }
        // Its spans stay those of `origin`: the next replay moves them from there.
        cache.next.insert(def, entry);
        cache.reused += 1;
        true
    }

    /// Whether the check of the step about to be checked should be recorded; if so, sets
    /// aside what the checker accumulated so far, so the step's own results can be told apart.
    pub(super) fn start_recording(&mut self) -> Option<Saved> {
        self.cache.as_ref()?;
        Some(Saved {
            diagnostics: self.diagnostics.len(),
            references: self.symbols.references.len(),
            used: std::mem::take(&mut self.used),
            used_imports: std::mem::take(&mut self.used_imports),
            used_ports: std::mem::take(&mut self.used_ports),
            dependencies: std::mem::take(&mut self.dependencies),
        })
    }

    /// Puts back what [`Checker::start_recording`] set aside, merged with the step's own
    /// results, and records them for step `def` (at `span` of `file`) when they can be moved.
    pub(super) fn finish_recording(
        &mut self,
        saved: Saved,
        file: FileId,
        workflow: DefId,
        def: DefId,
        span: Span,
    ) {
        let used = std::mem::replace(&mut self.used, saved.used);
        let used_imports = std::mem::replace(&mut self.used_imports, saved.used_imports);
        let used_ports = std::mem::replace(&mut self.used_ports, saved.used_ports);
        let dependencies = std::mem::replace(&mut self.dependencies, saved.dependencies);
        self.used.extend(used.iter().copied());
        self.used_imports.extend(used_imports.iter().copied());
        self.used_ports.extend(used_ports.iter().copied());
        for (key, deps) in &dependencies {
            self.dependencies
                .entry(*key)
                .or_default()
                .extend(deps.iter().cloned());
        }
        let diagnostics = &self.diagnostics[saved.diagnostics..];
        let references = &self.symbols.references[saved.references..];
        // Only spans inside the step, or in the std library, move exactly with the step.
        let sources = &self.p.sources;
        let movable = |at: &FileSpan| {
            if at.file == file {
                span.start <= at.span.start && at.span.end <= span.end
            } else {
                sources.get(at.file).origin != Origin::User
            }
        };
        let ok = diagnostics.iter().all(|d| {
            movable(&d.primary.at)
                && d.secondary.iter().all(|l| movable(&l.at))
                && d.suggestions.iter().all(|s| movable(&s.at))
        }) && references.iter().all(|r| movable(&r.at))
            && dependencies
                .values()
                .flatten()
                .all(|d| movable(&FileSpan::new(file, d.span)));
        if !ok {
            return;
        }
        let entry = StepEntry {
            text: span.text(&sources.get(file).text).to_string(),
            file,
            workflow,
            origin: span.start,
            diagnostics: diagnostics.to_vec(),
            references: references.to_vec(),
            used: used.into_iter().collect(),
            used_imports: used_imports.into_iter().collect(),
            used_ports: used_ports.into_iter().collect(),
            dependencies: dependencies.into_iter().collect(),
        };
        if let Some(cache) = self.cache.as_deref_mut() {
            cache.next.insert(def, entry);
        }
    }
}
