//! Times each stage of the front end on one `.sflow` file (no imports but the stdlib), and the
//! incremental re-analysis after a one-character edit (as the language server does it).
//!
//! `cargo run --release -p sflow-compiler --example phases -- FILE [runs] [incr|full]`: prints
//! the best and the median of `runs` runs. The file must contain `= 3` (the digit is the edit).
//! With `incr` only the incremental loop runs, with `full` only the stages (for `perf stat`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sflow_compiler::analysis::{analyze, analyze_incremental, AnalysisCache};
use sflow_compiler::graph::build::build_workflow_graphs;
use sflow_compiler::resolve;
use sflow_compiler::sources::{NoFiles, Origin, Sources};
use sflow_compiler::span::FileId;
use sflow_compiler::symbols::Symbols;
use sflow_compiler::syntax;
use sflow_compiler::types;
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: phases FILE [runs] [incr|full]");
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let mode = args.next().unwrap_or_default();
    let text = std::fs::read_to_string(&path).expect("readable file");
    println!("{path}: {} lines, {runs} runs", text.lines().count());
    if mode != "full" {
        incremental(&path, &text, runs);
    }
    if mode != "incr" {
        stages(&path, &text, runs);
    }
}

fn report(names: &[&str], times: &[Vec<Duration>]) {
    for (i, name) in names.iter().enumerate() {
        let mut v: Vec<Duration> = times.iter().map(|t| t[i]).collect();
        v.sort();
        println!(
            "{name:<16} best {:>8.3} ms  median {:>8.3} ms",
            v[0].as_secs_f64() * 1e3,
            v[v.len() / 2].as_secs_f64() * 1e3
        );
    }
}

/// The stages of a cold analysis, one by one, then `analyze` as a whole.
fn stages(path: &str, text: &str, runs: usize) {
    let mut times = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let mut sources = Sources::default();
        let root = sources.add(path, text, Origin::User);
        let mut parses = vec![syntax::parse(root, text)];
        let t1 = Instant::now();
        let mut diagnostics = parses[0].diagnostics.clone();
        let prelude =
            resolve::load::load_program(&NoFiles, &mut sources, &mut parses, &mut diagnostics);
        let t2 = Instant::now();
        let mut symbols = Symbols::default();
        let program = resolve::collect(&sources, &parses, prelude, &mut symbols, &mut diagnostics);
        let t3 = Instant::now();
        let facts = types::check(&program, &mut symbols, &mut diagnostics);
        let t4 = Instant::now();
        let dags = build_workflow_graphs(&program, &facts, &symbols, &mut diagnostics);
        let t5 = Instant::now();
        let errors = diagnostics.iter().filter(|d| d.is_error()).count();
        assert_eq!(errors, 0, "the program has errors");
        drop(dags);
        drop(facts);
        drop(program);
        drop(symbols);
        drop(parses);
        drop(sources);
        let t6 = Instant::now();
        let analysis = analyze(path, text, &NoFiles);
        let t7 = Instant::now();
        drop(analysis);
        times.push(vec![
            t1 - t0,
            t2 - t1,
            t3 - t2,
            t4 - t3,
            t5 - t4,
            t6 - t5,
            t7 - t6,
        ]);
    }
    report(
        &[
            "parse file",
            "load (stdlib)",
            "collect",
            "types",
            "graphs",
            "drop",
            "analyze",
        ],
        &times,
    );
}

/// A one-character edit (the digit after the first `= 3` toggles between 3 and 4), then the
/// incremental parse alone and the incremental analysis.
fn incremental(path: &str, text: &str, runs: usize) {
    let at = text.find("= 3").map(|i| i + 2).expect("a `= 3` to edit");
    let edited = |n: usize| {
        let mut t = text.to_string();
        t.replace_range(at..at + 1, if n % 2 == 0 { "4" } else { "3" });
        t
    };
    let mut cache = syntax::ParseCache::new();
    let _ = cache.parse(FileId(0), text);
    let mut acache = AnalysisCache::default();
    let _ = analyze_incremental(path, text, &NoFiles, &mut acache);
    let mut times = Vec::new();
    for n in 0..runs {
        let t = edited(n);
        let t0 = Instant::now();
        let p = cache.parse(FileId(0), &t);
        let t1 = Instant::now();
        drop(p);
        let t2 = Instant::now();
        let a = analyze_incremental(path, &t, &NoFiles, &mut acache);
        let t3 = Instant::now();
        drop(a);
        times.push(vec![t1 - t0, t3 - t2]);
    }
    report(&["incr. parse", "incr. analyze"], &times);
}
