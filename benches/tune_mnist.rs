//! Random search against TPE on real MNIST (figures in docs/performance.md, "Hyper-parameter
//! tuning"): the strategies of `Improver.tune` (`sflow_runtime::tune`, the same proposals,
//! waves of `parallel` and seeds) over the space of the tuning test — `lr in log(1e-4, 1e-1)`,
//! `epochs in 1..3`, `arch in ["mlp", "cnn"]` — where a trial is a real TorchScript training
//! by `sflow_ml::train_classifier` (what `std.torch.train_classifier` runs, seed 0) on the
//! first `SFLOW_TUNE_DIGITS` (default 5,000) training digits, scored by its held-out accuracy.
//!
//! ```text
//! eval "$(scripts/setup-libtorch.sh --env)"
//! cargo bench -p sflow-benches --features ml --bench tune_mnist
//! ```
//!
//! `SFLOW_TUNE_TRIALS` (12), `SFLOW_TUNE_SEEDS` (3), `SFLOW_TUNE_PARALLEL` (2) and
//! `SFLOW_TUNE_STARTUP` (4, TPE's random start) change the budget. A point both strategies
//! propose (their random draws coincide: trial `i` of a seed draws from the same stream) is
//! trained once. Prints the best-so-far accuracy per trial count, per seed and on average.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sflow_ml::{Arch, Split, TrainConfig};
use sflow_runtime::tune::{self, Coord, Dimension, Domain, Space, Strategy, TpeOptions};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let digits = env_or("SFLOW_TUNE_DIGITS", 5_000);
    let trials = env_or("SFLOW_TUNE_TRIALS", 12);
    let seeds = env_or("SFLOW_TUNE_SEEDS", 3) as u64;
    let parallel = env_or("SFLOW_TUNE_PARALLEL", 2);
    let startup = env_or("SFLOW_TUNE_STARTUP", 4);
    sflow_ml::set_torch_threads(1);
    let mnist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist");
    let data = sflow_ml::data::mnist(&mnist, Split::Train)
        .expect("data/mnist")
        .take(digits);
    let space = Space::new(vec![
        Dimension::new("lr", Domain::log_float(1e-4, 1e-1)),
        Dimension::new("epochs", Domain::int(1, 3)),
        Dimension::new("arch", Domain::Choice { n: 2 }),
    ])
    .expect("the space");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cache: HashMap<String, f64> = HashMap::new();
    let mut trainings = 0usize;
    let started = Instant::now();
    let mut train = |p: &[Coord]| -> Option<f64> {
        let key = format!("{p:?}");
        if let Some(acc) = cache.get(&key) {
            return Some(*acc);
        }
        let (lr, epochs, arch) = match p {
            [Coord::Float(lr), Coord::Int(e), Coord::Choice(a)] => (
                *lr,
                *e as usize,
                if *a == 0 { Arch::Mlp } else { Arch::Cnn },
            ),
            _ => return None,
        };
        let t = Instant::now();
        let report = sflow_ml::train_classifier(
            &TrainConfig::new(arch, epochs, lr),
            &data,
            None,
            &dir.path().join("model.pt"),
        )
        .ok()?;
        trainings += 1;
        eprintln!(
            "  trained {arch} lr={} epochs={epochs}: {:.4} ({:.1}s)",
            tune::format_number(lr),
            report.accuracy,
            t.elapsed().as_secs_f64()
        );
        cache.insert(key, report.accuracy);
        Some(report.accuracy)
    };
    let strategies = [
        ("random", Strategy::Random),
        (
            "tpe",
            Strategy::Tpe(TpeOptions {
                startup,
                ..TpeOptions::default()
            }),
        ),
    ];
    // curves[strategy][seed][trial] = best accuracy so far.
    let mut curves: Vec<Vec<Vec<f64>>> = vec![Vec::new(); strategies.len()];
    for seed in 1..=seeds {
        for (si, (name, strategy)) in strategies.iter().enumerate() {
            eprintln!("{name}, seed {seed}:");
            // Losses are negated accuracies (the objective is maximized).
            let run = tune::run_search(strategy, &space, seed, trials, parallel, |p| {
                train(p).map(|a| -a)
            });
            let mut best = f64::NEG_INFINITY;
            let curve: Vec<f64> = run
                .iter()
                .map(|(_, loss)| {
                    best = best.max(loss.map_or(f64::NEG_INFINITY, |l| -l));
                    best
                })
                .collect();
            curves[si].push(curve);
        }
    }
    println!(
        "\nbest-so-far held-out accuracy, {digits} digits (10% held out), {trials} trials, {parallel} at a time, seeds 1..={seeds}, TPE startup {startup}; {trainings} trainings in {:.0}s\n",
        started.elapsed().as_secs_f64()
    );
    let mut header = String::from("| trials |");
    let mut rule = String::from("| ---: |");
    for (name, _) in &strategies {
        for seed in 1..=seeds {
            header.push_str(&format!(" {name} s{seed} |"));
            rule.push_str(" ---: |");
        }
        header.push_str(&format!(" **{name} mean** |"));
        rule.push_str(" ---: |");
    }
    println!("{header}\n{rule}");
    for t in 0..trials {
        let mut row = format!("| {} |", t + 1);
        for c in &curves {
            for s in c {
                row.push_str(&format!(" {:.4} |", s[t]));
            }
            let mean = c.iter().map(|s| s[t]).sum::<f64>() / c.len() as f64;
            row.push_str(&format!(" **{mean:.4}** |"));
        }
        println!("{row}");
    }
    // When each strategy's mean reaches random search's mean best of the whole budget.
    let mean = |c: &Vec<Vec<f64>>, t: usize| c.iter().map(|s| s[t]).sum::<f64>() / c.len() as f64;
    let target = mean(&curves[0], trials - 1);
    // Per seed: the trial at which TPE first reaches that seed's random best of the budget.
    for (seed, (random, model)) in curves[0].iter().zip(&curves[1]).enumerate() {
        let target = random[trials - 1];
        let reached = model.iter().position(|&b| b >= target);
        println!(
            "seed {}: random's best of {trials} {target:.4}; TPE reaches it after {}, ends at {:.4}",
            seed + 1,
            reached.map_or_else(
                || "— (not within the budget)".to_string(),
                |t| format!("{} trials", t + 1)
            ),
            model[trials - 1]
        );
    }
    for (si, (name, _)) in strategies.iter().enumerate() {
        let reached = (0..trials).find(|&t| mean(&curves[si], t) >= target);
        println!(
            "{name}: mean best {:.4}; reaches random search's mean best of {trials} ({target:.4}) after {}",
            mean(&curves[si], trials - 1),
            reached.map_or_else(|| "— (not within the budget)".to_string(), |t| format!("{} trials", t + 1))
        );
    }
}
