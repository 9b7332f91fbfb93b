//! `std.explain` on real data: gradient saliency of a classifier trained on real MNIST digits
//! lies on the strokes, and permutation importance finds the one feature a tabular label
//! depends on.
#![allow(clippy::unwrap_used)]

mod common;

use sflow_ml::explain::{self, ink_focus, Tabular, TabularModel};
use sflow_ml::{train::train_classifier_with, Arch, Classifier, TrainConfig};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{CModule, Device, Kind, Tensor};

/// Trains `arch` for one epoch on real training digits and explains 100 real test digits:
/// the saliency per pixel within 2 pixels of the ink must be above the saliency per pixel of
/// the empty border by `factor` on average, and above it for nearly every digit.
///
/// The factors differ for a reason: an MLP's weights from the always-empty border pixels get
/// no gradient in training, so they keep their random initial values and the border's
/// saliency is the initialisation's (measured: ×1.6 for the MLP), while a CNN shares its
/// kernels over the image and its border saliency is small (measured: ×5.5).
fn saliency_on_real_digits(arch: Arch, train_n: usize, factor: f64) {
    let data = common::train_shuffled().take(train_n);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.pt");
    let cfg = TrainConfig {
        seed: 3,
        ..TrainConfig::new(arch, 1, 1e-3)
    };
    let rep = train_classifier_with(&cfg, &data, None, &out, &mut |_| {}).unwrap();
    let model = Classifier::load(&out).unwrap();
    let test = common::test_shuffled().take(100);
    let t0 = std::time::Instant::now();
    let ex = explain::saliency(&model, &test).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(ex.len(), 100);
    let mut ratios = Vec::new();
    let (mut near, mut border) = (0.0, 0.0);
    for e in &ex {
        assert_ne!(e.predicted, e.runner_up);
        assert!(e.probability >= e.runner_up_probability);
        let f = ink_focus(test.image(e.index).unwrap(), &e.predicted_map, 28, 28, 2).unwrap();
        near += f.near_ink;
        border += f.border;
        ratios.push(f.ratio());
    }
    let above = ratios.iter().filter(|r| **r > 1.0).count();
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    eprintln!(
        "{arch}: accuracy {:.3}; saliency of 100 digits in {secs:.2}s; per pixel near ink {:.4} vs border {:.4} (x{:.1}); median ratio {:.1}, min {:.2}; {above}/100 digits above 1",
        rep.accuracy,
        near / 100.0,
        border / 100.0,
        near / border.max(f64::MIN_POSITIVE),
        sorted[50],
        sorted[0]
    );
    assert!(near > factor * border, "near {near} vs border {border}");
    assert!(
        above >= 95,
        "{above}/100 digits have more saliency near the ink"
    );

    // The step writes pictures and an index a reviewer can open.
    let maps = dir.path().join("maps");
    let index =
        sflow_ml::steps::saliency_step(&out, &common::test_shuffled().take(20), 5, &maps).unwrap();
    assert_eq!(index.samples.len(), 5);
    for name in [
        "00000.pgm",
        "00004.saliency.pgm",
        "00004.runner-up.pgm",
        "saliency.json",
    ] {
        assert!(maps.join(name).is_file(), "{name}");
    }
    let pgm = std::fs::read(maps.join("00000.saliency.pgm")).unwrap();
    assert!(pgm.starts_with(b"P5\n28 28\n255\n") && pgm.len() == 13 + 784);
    assert!(pgm[13..].contains(&255), "scaled to its maximum");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(maps.join("saliency.json")).unwrap()).unwrap();
    assert_eq!(json["samples"][0]["saliency"], "00000.saliency.pgm");
    assert!(json["samples"][0]["predicted"].is_u64());
}

#[test]
fn mlp_saliency_lies_on_the_strokes_of_real_digits() {
    saliency_on_real_digits(Arch::Mlp, 10_000, 1.3);
}

#[test]
fn cnn_saliency_lies_on_the_strokes_of_real_digits() {
    saliency_on_real_digits(Arch::Cnn, 5_000, 3.0);
}

#[test]
fn saliency_refuses_images_of_another_shape() {
    let data = common::train_shuffled().take(500);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.pt");
    train_classifier_with(
        &TrainConfig::new(Arch::Mlp, 1, 1e-3),
        &data,
        None,
        &out,
        &mut |_| {},
    )
    .unwrap();
    let model = Classifier::load(&out).unwrap();
    let small = sflow_ml::Dataset::from_u8(&[0u8; 16], 4, 4, None).unwrap();
    let e = explain::saliency(&model, &small).unwrap_err().to_string();
    assert!(e.contains("28×28"), "{e}");
}

/// A synthetic table: four features uniform in [0, 1); the label is 1 exactly when `x2`
/// is above 0.5. A logistic regression is trained with tch and traced to TorchScript.
#[test]
fn permutation_importance_ranks_the_feature_that_decides_the_label_first() {
    let n = 2_000;
    let mut rng = sflow_ml::rng::Rng::new(7);
    let mut csv = String::from("x0,x1,x2,x3,label\n");
    let mut xs: Vec<f32> = Vec::with_capacity(n * 4);
    let mut ys = Vec::with_capacity(n);
    for _ in 0..n {
        let row: Vec<f32> = (0..4).map(|_| rng.f64() as f32).collect();
        let y = i64::from(row[2] > 0.5);
        csv.push_str(&format!(
            "{},{},{},{},{y}\n",
            row[0], row[1], row[2], row[3]
        ));
        xs.extend(&row);
        ys.push(y);
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("table.csv");
    std::fs::write(&data, csv).unwrap();

    let mut vs = nn::VarStore::new(Device::Cpu);
    let lin = nn::linear(vs.root(), 4, 2, Default::default());
    let mut opt = nn::Adam::default().build(&vs, 0.1).unwrap();
    let x = Tensor::from_slice(&xs).reshape([n as i64, 4]);
    let y = Tensor::from_slice(&ys);
    for _ in 0..300 {
        let loss = lin.forward(&x).cross_entropy_for_logits(&y);
        opt.backward_step(&loss);
    }
    vs.freeze();
    let example = Tensor::zeros([1, 4], (Kind::Float, Device::Cpu));
    let module = CModule::create_by_tracing("Tab", "forward", &[example], &mut |v| {
        v.iter().map(|t| lin.forward(t)).collect()
    })
    .unwrap();
    let model_path = dir.path().join("tab.pt");
    module.save(&model_path).unwrap();

    let report_path = dir.path().join("report.json");
    let metrics = dir.path().join("metrics.jsonl");
    let report = sflow_ml::steps::permutation_importance_step(
        &model_path,
        dir.path(),
        "label",
        5,
        1,
        &report_path,
        Some(&metrics),
    )
    .unwrap();
    eprintln!("{report:#?}");
    assert!(
        report.baseline_accuracy > 0.9,
        "{}",
        report.baseline_accuracy
    );
    assert_eq!(report.features[0].feature, "x2");
    assert!(report.features[0].importance > 0.3);
    for f in &report.features[1..] {
        assert!(f.importance.abs() < 0.05, "{f:?}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(json["features"][0]["feature"], "x2");
    assert!(std::fs::read_to_string(&metrics)
        .unwrap()
        .contains("\"accuracy\""));

    // A model for another number of features is refused, naming both.
    let table: Tabular = explain::read_csv(&data, "label").unwrap();
    let e = TabularModel::load(&model_path, 3).unwrap_err().to_string();
    assert!(e.contains("[1, 3]"), "{e}");
    assert_eq!(table.len(), n);
}
