//! Training on real MNIST digits: accuracy, TorchScript round trip, determinism.
#![allow(clippy::unwrap_used)]

mod common;

use sflow_ml::corrupt::{corrupt, Corruption};
use sflow_ml::{evaluate, evaluate_file, train_classifier, Arch, Classifier, Layout, TrainConfig};

fn cfg(arch: Arch, seed: u64) -> TrainConfig {
    TrainConfig {
        seed,
        ..TrainConfig::new(arch, 1, 1e-3)
    }
}

#[test]
fn mlp_one_epoch_on_10k_reaches_a_sensible_accuracy_and_reloads_identically() {
    let data = common::train().take(10_000);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mlp.pt");
    let mut epochs = Vec::new();
    let rep =
        sflow_ml::train::train_classifier_with(&cfg(Arch::Mlp, 1), &data, None, &out, &mut |e| {
            epochs.push(e.clone())
        })
        .unwrap();
    eprintln!(
        "MLP 1 epoch on {} images ({} held out): accuracy {:.4} in {:.1} s",
        rep.train_size, rep.holdout_size, rep.accuracy, rep.seconds
    );
    assert_eq!((rep.train_size, rep.holdout_size), (9_000, 1_000));
    assert_eq!(epochs.len(), 1);
    assert!(rep.accuracy > 0.85, "held-out accuracy {}", rep.accuracy);

    // The saved file is plain TorchScript: tch::CModule loads it and predicts the same as the
    // Classifier wrapper; on the MNIST test set, the accuracy is in line.
    let test = common::test().take(2_000);
    let m = Classifier::load(&out).unwrap();
    assert_eq!(m.classes(), 10);
    let ev = evaluate(&m, &test).unwrap();
    eprintln!("MLP test accuracy (2,000 test images): {:.4}", ev.accuracy);
    assert!(ev.accuracy > 0.85);
    assert_eq!(ev.confusion.len(), 10);
    assert_eq!(ev.confusion.iter().flatten().sum::<u64>(), 2_000);
    let raw = tch::CModule::load(&out).unwrap();
    let x = test.take(64).to_tensor(Layout::Nchw);
    let logits = tch::no_grad(|| raw.forward_ts(&[&x])).unwrap();
    let raw_pred: Vec<i64> = Vec::try_from(logits.argmax(-1, false)).unwrap();
    let pred = m.predict(&test.take(64)).unwrap();
    assert_eq!(raw_pred, pred.iter().map(|&p| p as i64).collect::<Vec<_>>());
    let json = serde_json::to_value(&ev).unwrap();
    assert!(json["confusion"].is_array() && json["accuracy"].is_number());
    assert_eq!(evaluate_file(&out, &test).unwrap(), ev);
}

#[test]
fn training_is_deterministic_given_the_seed() {
    let data = common::train().take(3_000);
    let dir = tempfile::tempdir().unwrap();
    let a = train_classifier(&cfg(Arch::Mlp, 7), &data, None, &dir.path().join("a.pt")).unwrap();
    let b = train_classifier(&cfg(Arch::Mlp, 7), &data, None, &dir.path().join("b.pt")).unwrap();
    let c = train_classifier(&cfg(Arch::Mlp, 8), &data, None, &dir.path().join("c.pt")).unwrap();
    assert_eq!(a.accuracy, b.accuracy);
    assert_eq!(a.epochs[0].loss, b.epochs[0].loss);
    let test = common::test().take(500);
    let pa = Classifier::load(&dir.path().join("a.pt"))
        .unwrap()
        .predict_proba(&test)
        .unwrap();
    let pb = Classifier::load(&dir.path().join("b.pt"))
        .unwrap()
        .predict_proba(&test)
        .unwrap();
    assert_eq!(pa, pb);
    assert_ne!(a.epochs[0].loss, c.epochs[0].loss);
}

#[test]
fn cnn_trains_and_extra_labelled_samples_join_the_training_set() {
    let data = common::train().take(6_000);
    let dir = tempfile::tempdir().unwrap();
    let rep =
        train_classifier(&cfg(Arch::Cnn, 3), &data, None, &dir.path().join("cnn.pt")).unwrap();
    eprintln!(
        "CNN 1 epoch on {} images: held-out accuracy {:.4} in {:.1} s",
        rep.train_size, rep.accuracy, rep.seconds
    );
    assert!(rep.accuracy > 0.9, "{}", rep.accuracy);

    // Rotated digits: a model trained with some labelled rotated samples does better on them.
    let rotated = corrupt(&common::test().take(3_000), Corruption::Rotate, 4, 11).unwrap();
    let (extra, eval) = (rotated.slice(0, 1_500), rotated.slice(1_500, 3_000));
    let base = dir.path().join("base.pt");
    let plus = dir.path().join("plus.pt");
    let small = data.take(3_000);
    train_classifier(&cfg(Arch::Mlp, 3), &small, None, &base).unwrap();
    let r = train_classifier(&cfg(Arch::Mlp, 3), &small, Some(&extra), &plus).unwrap();
    assert_eq!((r.train_size, r.extra_size), (2_700 + 1_500, 1_500));
    let acc_base = evaluate_file(&base, &eval).unwrap().accuracy;
    let acc_plus = evaluate_file(&plus, &eval).unwrap().accuracy;
    eprintln!("rotated digits (severity 4): {acc_base:.3} without, {acc_plus:.3} with 1,500 labelled rotated samples");
    assert!(acc_plus > acc_base + 0.05);
}

#[test]
fn bad_arguments_are_errors() {
    let data = common::test().take(100);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.pt");
    assert!("transformer".parse::<Arch>().is_err());
    let mut c = cfg(Arch::Mlp, 0);
    c.epochs = 0;
    assert!(train_classifier(&c, &data, None, &p).is_err());
    let unlabelled = data.clone().without_labels();
    assert!(train_classifier(&cfg(Arch::Mlp, 0), &unlabelled, None, &p).is_err());
    assert!(Classifier::load(&dir.path().join("missing.pt")).is_err());
    std::fs::write(&p, b"not a model").unwrap();
    let e = Classifier::load(&p).unwrap_err().to_string();
    assert!(e.contains("not a TorchScript module"), "{e}");
}

/// The north-star program's training (`mlp`, 3 epochs, lr 0.001, the whole training split)
/// and a CNN, evaluated on the 10,000 test digits. Slow in a debug build: run with
/// `cargo test --release -p sflow-ml --test train -- --ignored --nocapture`.
#[test]
#[ignore]
fn full_mnist_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    for (arch, epochs) in [(Arch::Mlp, 3), (Arch::Cnn, 2)] {
        let c = TrainConfig::new(arch, epochs, 1e-3);
        let out = dir.path().join(format!("{arch}.pt"));
        let rep = train_classifier(&c, common::train(), None, &out).unwrap();
        let ev = evaluate_file(&out, common::test()).unwrap();
        eprintln!(
            "{arch}, {epochs} epochs on {} digits: held-out {:.4}, test {:.4}, {:.1} s ({} libtorch threads)",
            rep.train_size,
            rep.accuracy,
            ev.accuracy,
            rep.seconds,
            tch::get_num_threads()
        );
        assert!(ev.accuracy > 0.95);
    }
}

#[test]
fn std_steps_follow_the_step_contract() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::train_shuffled().take(2_000);
    // The Improver's labelled samples: a dataset directory.
    let labelled = dir.path().join("labelled");
    corrupt(&common::test().take(200), Corruption::Fog, 3, 1)
        .unwrap()
        .save_dir(&labelled)
        .unwrap();
    let model = dir.path().join("out/model");
    let metrics = dir.path().join("metrics.json");
    let rep = sflow_ml::steps::train_classifier_step(
        &TrainConfig::new(Arch::Mlp, 2, 1e-3),
        &data,
        Some(&labelled),
        &model,
        Some(&metrics),
    )
    .unwrap();
    assert_eq!(rep.extra_size, 200);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "two epochs, then the final metrics");
    assert_eq!(lines[0]["epoch"], 1);
    assert_eq!(lines[2]["accuracy"].as_f64().unwrap(), rep.accuracy);
    let report = dir.path().join("report.json");
    let m2 = dir.path().join("m2.json");
    let ev = sflow_ml::steps::evaluate_step(&model, &common::test().take(500), &report, Some(&m2))
        .unwrap();
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(j["accuracy"].as_f64().unwrap(), ev.accuracy);
    assert_eq!(j["confusion"].as_array().unwrap().len(), 10);
    // A labelled directory that holds no dataset is an error, not a silent no-op.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(sflow_ml::steps::train_classifier_step(
        &TrainConfig::new(Arch::Mlp, 1, 1e-3),
        &data,
        Some(&empty),
        &model,
        None
    )
    .is_err());
}
