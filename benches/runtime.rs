//! Runtime benchmarks (figures in docs/performance.md):
//!
//! - `executor/noop_steps_1000`: a workflow of 1000 independent `true` steps through the
//!   engine and the local executor (store records, run directories, logs, the step contract),
//!   at the default parallelism (the number of cores);
//! - `executor/spawn_floor_1000`: the floor — spawning the same 1000 `/bin/sh -c true`
//!   processes with the same parallelism and nothing else;
//! - printed with them: the same interleaved comparison for 200 steps of 20 ms (`sleep 0.02`);
//! - `policy/events`: the policy engine's throughput on a stream of metric events (10 policies
//!   reading 20 signals, a quarter of the events flipping a condition);
//! - and, printed after the criterion groups, the event-to-action latency distribution: from
//!   a signal update to the firing decision (in process), and to the firing durably recorded
//!   in the store (what the engine does before acting).
//!
//! `SFLOW_BENCH_ROUNDS=N` sets the number of interleaved rounds (default 7: the machine's
//! load moves the ratio by ±15 % between runs, more rounds narrow the median);
//! `SFLOW_BENCH_ONLY=engine` (or `floor`) runs only that side, one line per round, for
//! profiling it alone (`perf record -g`, docs/performance.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The allocator of the `sflow` binary, so that the engine is measured as it runs there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sflow_compiler::lower::plan::{
    BinaryOp, Expr, PlanType, PolicyPlan, RateLimitPlan, Signal, SourceRef, Value,
};
use sflow_runtime::engine::{Engine, EngineConfig};
use sflow_runtime::policy::{PolicyEngine, Scalar, VerdictKind};
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn noop_program(steps: usize) -> String {
    workload_program(steps, "true")
}

/// A workflow of `steps` independent steps that each run `command`.
fn workload_program(steps: usize, command: &str) -> String {
    let mut s = String::from("app bench { namespace = \"bench\" }\nworkflow noop {\n");
    for i in 0..steps {
        let _ = writeln!(
            s,
            "  step s{i} {{ image = \"busybox:1.36\" run = \"{command}\" }}"
        );
    }
    s.push_str("}\n");
    s
}

/// One run of the 1000-step workflow through a fresh engine; returns the run's wall time.
fn engine_run(rt: &tokio::runtime::Runtime, program: &sflow_runtime::program::Program) -> Duration {
    let state = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig::new(state.path().to_path_buf());
    cfg.progress = Arc::new(sflow_runtime::progress::Silent);
    cfg.parallelism = cores();
    rt.block_on(async {
        let engine = Engine::start(program.clone(), cfg).await.unwrap();
        let t = Instant::now();
        let id = engine
            .run_workflow("noop", &Default::default(), "bench")
            .unwrap();
        let row = engine.wait_run(id).await.unwrap();
        let took = t.elapsed();
        assert_eq!(row.status, "succeeded");
        engine.shutdown().await;
        took
    })
}

fn executor(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.sflow");
    std::fs::write(&file, noop_program(1000)).unwrap();
    let program = sflow_runtime::program::load(&file).unwrap();

    // Interleaved rounds (floor, engine, floor, engine, …), so that load from elsewhere on
    // the machine hits both alike; the ratio of the minima is the overhead.
    let rounds: usize = std::env::var("SFLOW_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(7);
    if let Ok(side) = std::env::var("SFLOW_BENCH_ONLY") {
        for _ in 0..rounds {
            let c0 = cpu();
            let took = if side == "floor" {
                rt.block_on(spawn_floor(1000, cores()))
            } else {
                engine_run(&rt, &program)
            };
            let c1 = cpu();
            println!(
                "executor/{side}: {took:?}, cpu (this process / its children) {:.2} / {:.2} s",
                c1.0 - c0.0,
                c1.1 - c0.1
            );
        }
        return;
    }
    let (mut floor, mut ours) = (Vec::new(), Vec::new());
    let (mut floor_cpu, mut ours_cpu) = ((0.0, 0.0), (0.0, 0.0));
    for _ in 0..rounds {
        let c0 = cpu();
        floor.push(rt.block_on(spawn_floor(1000, cores())));
        let c1 = cpu();
        ours.push(engine_run(&rt, &program));
        let c2 = cpu();
        floor_cpu = (floor_cpu.0 + c1.0 - c0.0, floor_cpu.1 + c1.1 - c0.1);
        ours_cpu = (ours_cpu.0 + c2.0 - c1.0, ours_cpu.1 + c2.1 - c1.1);
    }
    let per = rounds as f64;
    println!(
        "executor/cpu per 1000 steps (this process / its children, seconds): spawn floor {:.2} / {:.2}, engine {:.2} / {:.2} (the engine figure includes starting and stopping the engine)",
        floor_cpu.0 / per,
        floor_cpu.1 / per,
        ours_cpu.0 / per,
        ours_cpu.1 / per
    );
    floor.sort();
    ours.sort();
    println!(
        "executor/interleaved ({rounds} rounds, parallelism {}): spawn floor min {:?} median {:?}; 1000 no-op steps min {:?} median {:?}; ratio of minima {:.2}, of medians {:.2}",
        cores(),
        floor[0],
        floor[rounds / 2],
        ours[0],
        ours[rounds / 2],
        ours[0].as_secs_f64() / floor[0].as_secs_f64(),
        ours[rounds / 2].as_secs_f64() / floor[rounds / 2].as_secs_f64(),
    );

    short_steps(&rt, rounds);

    let mut group = c.benchmark_group("executor");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(1000));
    group.bench_function("noop_steps_1000", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| engine_run(&rt, &program)).sum());
    });
    group.bench_function("spawn_floor_1000", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| rt.block_on(spawn_floor(1000, cores())))
                .sum()
        });
    });
    group.finish();
}

/// The same interleaved comparison with steps that do something: 200 steps of 20 ms
/// (`sleep 0.02`), where the engine's fixed cost per step is a smaller share.
fn short_steps(rt: &tokio::runtime::Runtime, rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("short.sflow");
    std::fs::write(&file, workload_program(200, "sleep 0.02")).unwrap();
    let program = sflow_runtime::program::load(&file).unwrap();
    let (mut floor, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        floor.push(rt.block_on(spawn_floor_of(200, cores(), "sleep 0.02")));
        ours.push(engine_run(rt, &program));
    }
    floor.sort();
    ours.sort();
    println!(
        "executor/interleaved, 200 steps of 20 ms ({rounds} rounds, parallelism {}): spawn floor median {:?}; engine median {:?}; ratio of medians {:.3}",
        cores(),
        floor[rounds / 2],
        ours[rounds / 2],
        ours[rounds / 2].as_secs_f64() / floor[rounds / 2].as_secs_f64(),
    );
}

/// CPU seconds used so far by this process and by its waited-for children (`/proc/self/stat`).
fn cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields 14-17 (utime, stime, cutime, cstime) are at 11-14 after the command; 100 ticks/s.
    let get = |i: usize| f.get(i).copied().unwrap_or(0.0) / 100.0;
    (get(11) + get(12), get(13) + get(14))
}

async fn spawn_floor(n: usize, parallelism: usize) -> Duration {
    spawn_floor_of(n, parallelism, "true").await
}

/// Spawns `sh -c command` `n` times, `parallelism` at a time, and nothing else.
async fn spawn_floor_of(n: usize, parallelism: usize, command: &'static str) -> Duration {
    let permits = Arc::new(tokio::sync::Semaphore::new(parallelism));
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let p = permits.clone();
        set.spawn(async move {
            let _permit = p.acquire().await.unwrap();
            let status = tokio::process::Command::new("/bin/sh")
                .args(["-c", command])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .await
                .unwrap();
            assert!(status.success());
        });
    }
    while set.join_next().await.is_some() {}
    t.elapsed()
}

fn sensor(i: usize) -> Signal {
    Signal::Sensor {
        agent: "a".into(),
        sensor: format!("s{i}"),
        path: vec![],
    }
}

fn gt(i: usize, v: f64) -> Expr {
    Expr::Binary {
        op: BinaryOp::Gt,
        lhs: Box::new(Expr::Signal {
            signal: sensor(i),
            ty: PlanType::Float,
        }),
        rhs: Box::new(Expr::Literal {
            value: Value::Float { value: v },
        }),
        ty: PlanType::Bool,
    }
}

/// 10 policies, each `s{2i} > 0.5 and s{2i+1} < 0.9 or s{(2i+2)%20} > 0.99`, some with guards.
fn policies() -> Vec<PolicyPlan> {
    (0..10)
        .map(|i| {
            let a = gt(2 * i, 0.5);
            let b = Expr::Binary {
                op: BinaryOp::Lt,
                lhs: Box::new(Expr::Signal {
                    signal: sensor(2 * i + 1),
                    ty: PlanType::Float,
                }),
                rhs: Box::new(Expr::Literal {
                    value: Value::Float { value: 0.9 },
                }),
                ty: PlanType::Bool,
            };
            let and = Expr::Binary {
                op: BinaryOp::And,
                lhs: Box::new(a),
                rhs: Box::new(b),
                ty: PlanType::Bool,
            };
            let when = Expr::Binary {
                op: BinaryOp::Or,
                lhs: Box::new(and),
                rhs: Box::new(gt((2 * i + 2) % 20, 0.99)),
                ty: PlanType::Bool,
            };
            let mut reads = vec![sensor(2 * i), sensor(2 * i + 1), sensor((2 * i + 2) % 20)];
            reads.sort();
            PolicyPlan {
                name: format!("p{i}"),
                when,
                hold_for_ms: None,
                then: vec![],
                cooldown_ms: if i % 3 == 0 { Some(10) } else { None },
                rate_limit: if i % 4 == 0 {
                    Some(RateLimitPlan {
                        count: 1000,
                        per_ms: 1000,
                    })
                } else {
                    None
                },
                reads,
                source: SourceRef {
                    file: "bench".into(),
                    line: 1,
                    column: 1,
                },
            }
        })
        .collect()
}

/// A deterministic stream: (slot, value); values cycle so conditions flip now and then.
fn stream(engine: &PolicyEngine, n: usize) -> Vec<(u32, f64)> {
    let slots: Vec<u32> = (0..20).map(|i| engine.slot(&sensor(i)).unwrap()).collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let slot = slots[(x % 20) as usize];
            let v = ((x >> 20) % 1000) as f64 / 1000.0;
            (slot, v)
        })
        .collect()
}

fn policy(c: &mut Criterion) {
    let plans = policies();
    let mut group = c.benchmark_group("policy");
    let n = 1_000_000;
    let base = PolicyEngine::new(&plans);
    let events = stream(&base, n);
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(10);
    group.bench_function("events", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut engine = base.clone();
                let mut out = Vec::with_capacity(1024);
                let mut fired = 0usize;
                let t = Instant::now();
                for (i, &(slot, v)) in events.iter().enumerate() {
                    engine.set(slot, Scalar::Float(v), i as i64, &mut out);
                    fired += out.len();
                    out.clear();
                }
                total += t.elapsed();
                std::hint::black_box(fired);
            }
            total
        });
    });
    group.finish();
    latency(&plans);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Event-to-action latency: per event that fires, the time from the signal update to the
/// decision (in process), and to the decision recorded durably in the store.
fn latency(plans: &[PolicyPlan]) {
    let mut engine = PolicyEngine::new(plans);
    let events = stream(&engine, 200_000);
    let mut in_process = Vec::new();
    let mut out = Vec::new();
    for (i, &(slot, v)) in events.iter().enumerate() {
        let t = Instant::now();
        engine.set(slot, Scalar::Float(v), i as i64, &mut out);
        if out.iter().any(|v| v.kind == VerdictKind::Fire) {
            in_process.push(t.elapsed());
        }
        out.clear();
    }
    in_process.sort();
    let dir = tempfile::tempdir().unwrap();
    let store = sflow_runtime::store::Store::open(&dir.path().join("store.db")).unwrap();
    let mut engine = PolicyEngine::new(plans);
    let mut durable = Vec::new();
    for (i, &(slot, v)) in events.iter().take(50_000).enumerate() {
        let t = Instant::now();
        engine.set(slot, Scalar::Float(v), i as i64, &mut out);
        for (k, verdict) in out.drain(..).enumerate() {
            if verdict.kind != VerdictKind::Fire {
                continue;
            }
            let reads = serde_json::Value::Object(
                verdict
                    .reads
                    .iter()
                    .map(|(k, s)| (k.clone(), s.to_json()))
                    .collect(),
            );
            let state = serde_json::to_value(engine.state(verdict.policy)).unwrap();
            store
                .tx(|c| {
                    sflow_runtime::store::insert_firing(
                        c,
                        &format!("policy:p{}:{i}:{k}", verdict.policy),
                        "policy",
                        "p",
                        &reads,
                        1,
                        i as i64,
                    )?;
                    sflow_runtime::store::kv_set(c, &format!("policy:p{}", verdict.policy), &state)
                })
                .unwrap();
            durable.push(t.elapsed());
        }
    }
    durable.sort();
    println!(
        "policy/event_to_decision (in process): {} firings, p50 {:?}, p99 {:?}, max {:?}",
        in_process.len(),
        percentile(&in_process, 0.5),
        percentile(&in_process, 0.99),
        in_process.last().copied().unwrap_or_default()
    );
    println!(
        "policy/event_to_recorded_firing (store, WAL): {} firings, p50 {:?}, p99 {:?}, max {:?}",
        durable.len(),
        percentile(&durable, 0.5),
        percentile(&durable, 0.99),
        durable.last().copied().unwrap_or_default()
    );
}

criterion_group!(benches, executor, policy);
criterion_main!(benches);
