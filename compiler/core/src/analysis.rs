//! The driver: load a program's files, then run every stage over them.
//!
//! [`analyze`] is the one entry point the CLI, the language server and the runtime use. It
//! always returns an [`Analysis`], even for broken programs: whatever could be resolved and
//! checked is there, next to the diagnostics (as Gleam's partial results are), so the
//! language server can still hover and complete in a file with errors.

use crate::diagnostics::{self, Diagnostic};
use crate::graph::build::{build_workflow_graphs, WorkflowDag};
use crate::resolve::{self, Program};
use crate::sources::{Origin, SourceLoader, Sources};
use crate::span::FileId;
use crate::symbols::Symbols;
use crate::syntax::{self, Parse, ParseCache};
use crate::types::{self, CheckCache, Facts};
use std::collections::HashMap;

/// Everything known about one program.
#[derive(Debug)]
pub struct Analysis {
    /// Every file: the root first, then user imports, then the stdlib modules.
    pub sources: Sources,
    /// The parse of each file, indexed by `FileId.0`.
    pub parses: Vec<Parse>,
    /// Every diagnostic of every stage, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// Declarations and references.
    pub symbols: Symbols,
    /// What the type checker learned.
    pub facts: Facts,
    /// One DAG per workflow, in source order.
    pub workflows: Vec<WorkflowDag>,
    /// The root file.
    pub root: FileId,
}

impl Analysis {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The parse of file `id`.
    pub fn parse(&self, id: FileId) -> &Parse {
        &self.parses[id.0 as usize]
    }

    /// The indexed program. Collection is deterministic, so its ids are the ids of
    /// [`Analysis::symbols`]; the diagnostics it would report again are dropped.
    pub fn program(&self) -> Program<'_> {
        let prelude = self
            .sources
            .files
            .iter()
            .find(|f| f.origin == Origin::Std("prelude"))
            .map_or(FileId(0), |f| f.id);
        let mut scratch = Symbols::default();
        resolve::collect(
            &self.sources,
            &self.parses,
            prelude,
            &mut scratch,
            &mut Vec::new(),
        )
    }
}

/// Loads the program rooted at `root_path` (whose text is `root_text`), follows its imports
/// through `loader`, and checks it.
pub fn analyze(root_path: &str, root_text: &str, loader: &dyn SourceLoader) -> Analysis {
    analyze_with(
        root_path,
        root_text,
        loader,
        &mut |_, id, text| syntax::parse(id, text),
        None,
    )
}

/// What a later analysis of the same program can reuse: one [`ParseCache`] per file, so that
/// an edit re-parses only the declarations and workflow members it touched, and the
/// [`CheckCache`] of the steps' checks, so that it re-checks only the steps it touched (when
/// it changed nothing they can see). The caller owns it (the language server keeps one per
/// program); the core holds no state of its own.
#[derive(Debug, Default)]
pub struct AnalysisCache {
    files: HashMap<String, ParseCache>,
    checks: CheckCache,
}

impl AnalysisCache {
    /// The type check's cache of step checks (how many the latest analysis reused, say).
    pub fn checks(&self) -> &CheckCache {
        &self.checks
    }
}

/// [`analyze`], parsing incrementally with `cache` (and updating it). The result is the same
/// as [`analyze`]'s for the same files.
pub fn analyze_incremental(
    root_path: &str,
    root_text: &str,
    loader: &dyn SourceLoader,
    cache: &mut AnalysisCache,
) -> Analysis {
    let files = &mut cache.files;
    let analysis = analyze_with(
        root_path,
        root_text,
        loader,
        &mut |path, id, text| files.entry(path.to_string()).or_default().parse(id, text),
        Some(&mut cache.checks),
    );
    // Files no longer part of the program are forgotten.
    files.retain(|path, _| analysis.sources.find(path).is_some());
    analysis
}

/// [`analyze`], parsing each file with `parse(path, id, text)`, and type checking with
/// `checks` when given.
fn analyze_with(
    root_path: &str,
    root_text: &str,
    loader: &dyn SourceLoader,
    parse: &mut dyn FnMut(&str, FileId, &str) -> Parse,
    checks: Option<&mut CheckCache>,
) -> Analysis {
    let mut sources = Sources::default();
    let root = sources.add(root_path, root_text, Origin::User);
    let mut parses = vec![parse(root_path, root, root_text)];
    let mut diagnostics: Vec<Diagnostic> = parses[0].diagnostics.clone();
    let prelude = resolve::load::load_program_with(
        loader,
        &mut sources,
        &mut parses,
        &mut diagnostics,
        parse,
    );

    let mut symbols = Symbols::default();
    let (facts, workflows) = {
        let program = resolve::collect(&sources, &parses, prelude, &mut symbols, &mut diagnostics);
        let facts = match checks {
            Some(cache) => {
                types::check_incremental(&program, &mut symbols, &mut diagnostics, cache)
            }
            None => types::check(&program, &mut symbols, &mut diagnostics),
        };
        let workflows = build_workflow_graphs(&program, &facts, &symbols, &mut diagnostics);
        (facts, workflows)
    };

    diagnostics::sort(&mut diagnostics);
    diagnostics.dedup();
    Analysis {
        sources,
        parses,
        diagnostics,
        symbols,
        facts,
        workflows,
        root,
    }
}
