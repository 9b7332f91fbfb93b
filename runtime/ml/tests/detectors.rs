//! The drift detectors on real MNIST digits: false-alarm rate on clean batches and power on
//! corrupted ones, over repeated batches.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Instant;

use sflow_ml::corrupt::{corrupt, Corruption};
use sflow_ml::{train_classifier, Arch, Classifier, Dataset, DetectorSpec, TrainConfig};

const BATCH: usize = 500;
const BATCHES: usize = 20;

/// 20 disjoint clean batches of 500 test digits, and 20 corrupted ones (one corruption each,
/// cycling through `corruptions`, at `severity`).
fn batches(corruptions: &[Corruption], severity: u8) -> (Vec<Dataset>, Vec<(Corruption, Dataset)>) {
    let test = common::test();
    let clean: Vec<Dataset> = (0..BATCHES).map(|i| test.slice(i * BATCH, (i + 1) * BATCH)).collect();
    let drifted = (0..BATCHES)
        .map(|i| {
            let c = corruptions[i % corruptions.len()];
            // The same digits as clean batch i+1 (mod 20): corruption is the only difference.
            let src = &clean[(i + 1) % BATCHES];
            (c, corrupt(src, c, severity, 100 + i as u64).unwrap())
        })
        .collect();
    (clean, drifted)
}

fn run(spec: &DetectorSpec, model: Option<Arc<Classifier>>, corruptions: &[Corruption], severity: u8) -> (f64, f64) {
    let reference = common::train().take(12_000);
    let t0 = Instant::now();
    let det = spec.fit(&reference, model, 42).unwrap();
    let fit_s = t0.elapsed().as_secs_f64();
    let (clean, drifted) = batches(corruptions, severity);
    let t1 = Instant::now();
    let false_alarms = clean.iter().filter(|b| det.check(b).unwrap().drifted).count();
    let mut detected = 0;
    let mut missed = Vec::new();
    let mut picked_clean = 0usize;
    for b in &clean {
        picked_clean += det.check(b).unwrap().picked.len();
    }
    let mut picked_drift = 0usize;
    for (c, b) in &drifted {
        let r = det.check(b).unwrap();
        assert_eq!(r.samples, BATCH);
        assert!((0.0..=1.0).contains(&r.score));
        assert!(r.picked.windows(2).all(|w| w[0] < w[1]) && r.picked.iter().all(|&i| i < BATCH));
        picked_drift += r.picked.len();
        if r.drifted {
            detected += 1;
        } else {
            missed.push(format!("{c} (score {:.3}, p {:?})", r.score, r.p_value));
        }
    }
    let checks = 3 * BATCHES;
    let far = false_alarms as f64 / BATCHES as f64;
    let power = detected as f64 / BATCHES as f64;
    eprintln!(
        "{:>15}: fit {fit_s:.1} s, check {:.1} ms/batch; false alarms {false_alarms}/{BATCHES} (FAR {far:.2}), detected {detected}/{BATCHES} (power {power:.2}); picked per batch: clean {:.1}, drifted {:.1}; missed: {missed:?}",
        spec.name(),
        t1.elapsed().as_secs_f64() * 1e3 / checks as f64,
        picked_clean as f64 / BATCHES as f64,
        picked_drift as f64 / BATCHES as f64,
    );
    (far, power)
}

/// The corruptions of the demo's drifted stream.
const STREAM: [Corruption; 5] = [
    Corruption::Rotate,
    Corruption::ShotNoise,
    Corruption::ImpulseNoise,
    Corruption::Fog,
    Corruption::Shear,
];

#[test]
fn ks_flags_corrupted_batches_and_rarely_clean_ones() {
    let (far, power) = run(&DetectorSpec::from_call("ks", &[]).unwrap(), None, &Corruption::ALL, 3);
    assert!(far <= 0.10, "FAR {far}");
    assert!(power >= 0.9, "power {power}");
}

#[test]
fn mmd_flags_corrupted_batches_and_rarely_clean_ones() {
    let (far, power) = run(&DetectorSpec::from_call("mmd", &[]).unwrap(), None, &Corruption::ALL, 3);
    assert!(far <= 0.15, "FAR {far}");
    assert!(power >= 0.9, "power {power}");
}

#[test]
fn autoencoder_flags_corrupted_batches_and_rarely_clean_ones() {
    let (far, power) = run(&DetectorSpec::from_call("autoencoder_ood", &[]).unwrap(), None, &Corruption::ALL, 3);
    assert!(far <= 0.10, "FAR {far}");
    assert!(power >= 0.9, "power {power}");
}

#[test]
fn confidence_flags_corrupted_batches_and_rarely_clean_ones() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.pt");
    train_classifier(&TrainConfig::new(Arch::Mlp, 1, 1e-3), &common::train().take(10_000), None, &p).unwrap();
    let model = Arc::new(Classifier::load(&p).unwrap());
    let (far, power) = run(&DetectorSpec::from_call("confidence", &[]).unwrap(), Some(model), &STREAM, 3);
    assert!(far <= 0.10, "FAR {far}");
    assert!(power >= 0.8, "power {power}");
}

#[test]
fn specs_parse_and_reject_bad_arguments() {
    assert_eq!(
        DetectorSpec::from_call("mmd", &[("permutations", 50.0)]).unwrap(),
        DetectorSpec::Mmd { p_value: 0.05, permutations: 50 }
    );
    assert!(DetectorSpec::from_call("ks", &[("p_value", 1.5)]).is_err());
    assert!(DetectorSpec::from_call("ks", &[("quantile", 0.5)]).is_err());
    assert!(DetectorSpec::from_call("lof", &[]).is_err());
    let spec: DetectorSpec = serde_json::from_str(r#"{"kind":"autoencoder_ood","quantile":0.95}"#).unwrap();
    assert_eq!(spec.name(), "autoencoder_ood");
    // confidence needs the model.
    assert!(DetectorSpec::from_call("confidence", &[]).unwrap().fit(&common::test().take(100), None, 0).is_err());
    // A batch of another image size is an error.
    let det = DetectorSpec::from_call("ks", &[]).unwrap().fit(&common::test().take(200), None, 0).unwrap();
    let odd = Dataset::new(vec![0.0; 4 * 16], 4, 4, None).unwrap();
    assert!(det.check(&odd).is_err());
}
