//! `build` on generated binary-tree programs of 10, 100, 1000 and 5000 steps (the shape of the
//! front-end benchmark): everything `sflowc build` does but reading the file and writing the
//! output — check, lower to the plan, emit and serialize every manifest and `plan.json`. The
//! `emit` group measures the back end alone, from a lowered plan. Figures are recorded in
//! docs/performance.md ("Build").

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use sflow_benches::binary_tree_program;
use sflow_compiler::analysis::analyze;
use sflow_compiler::lower::lower;
use sflow_compiler::sources::NoFiles;
use sflow_emit::{build, Options};

/// The allocator `sflowc` ships with, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SIZES: [usize; 4] = [10, 100, 1000, 5000];

fn full(program: &str) -> sflow_emit::Build {
    let analysis = analyze("bench.sflow", program, &NoFiles);
    let plan = lower(&analysis).expect("the generated program lowers");
    build(&plan, &Options::default()).expect("the generated program builds")
}

fn bench_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build");
    group.sample_size(20);
    for steps in SIZES {
        let program = binary_tree_program(steps);
        let analysis = analyze("bench.sflow", &program, &NoFiles);
        assert!(
            !analysis.has_errors(),
            "generated program has errors: {:?}",
            analysis.diagnostics.first()
        );
        let output = full(&program);
        let bytes: usize =
            output.plan_json.len() + output.manifests.iter().map(|m| m.yaml.len()).sum::<usize>();
        eprintln!(
            "build/{steps}: {} objects, {bytes} bytes of output",
            output.manifests.len()
        );
        group.throughput(Throughput::Elements(steps as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(steps),
            &program,
            |b, program| b.iter(|| full(program)),
        );
    }
    group.finish();

    let mut group = c.benchmark_group("emit");
    group.sample_size(20);
    for steps in SIZES {
        let program = binary_tree_program(steps);
        let plan = lower(&analyze("bench.sflow", &program, &NoFiles)).expect("lowers");
        group.throughput(Throughput::Elements(steps as u64));
        group.bench_with_input(BenchmarkId::from_parameter(steps), &plan, |b, plan| {
            b.iter(|| build(plan, &Options::default()).expect("builds"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_build);
criterion_main!(benches);
