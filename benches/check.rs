//! `check` on generated binary-tree programs of 10, 100, 1000 and 5000 steps: parse,
//! resolve, type-check and build the DAGs — everything `sflowc check` does but reading the
//! file and printing. Figures are recorded in docs/performance.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use sflow_benches::binary_tree_program;
use sflow_compiler::analysis::analyze;
use sflow_compiler::sources::NoFiles;

/// The allocator `sflowc` ships with, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn check(c: &mut Criterion) {
    let mut group = c.benchmark_group("check");
    for steps in [10usize, 100, 1000, 5000] {
        let program = binary_tree_program(steps);
        // A benchmark of a broken program would measure error paths: insist it is clean.
        let analysis = analyze("bench.sflow", &program, &NoFiles);
        assert!(
            analysis.diagnostics.is_empty(),
            "generated program has diagnostics: {:?}",
            analysis.diagnostics.first()
        );
        group.throughput(Throughput::Bytes(program.len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(steps),
            &program,
            |b, program| {
                b.iter(|| analyze("bench.sflow", program, &NoFiles));
            },
        );
    }
    group.finish();
}

/// Parsing alone, to see how `check`'s time splits between the parser and the later stages.
fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    for steps in [1000usize, 5000] {
        let program = binary_tree_program(steps);
        group.throughput(Throughput::Bytes(program.len() as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(steps),
            &program,
            |b, program| {
                b.iter(|| sflow_compiler::syntax::parse(sflow_compiler::span::FileId(0), program));
            },
        );
    }
    group.finish();
}

criterion_group!(benches, check, parse);
criterion_main!(benches);
