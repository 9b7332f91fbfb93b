//! Prints, for every corruption at severities 1, 3 and 5, the accuracy of an MLP trained on
//! clean digits and how each detector reacts to batches of 500 corrupted test digits (share of
//! batches flagged, mean share of samples picked). The reference is 12,000 random training
//! digits; the table in docs/ml.md comes from this program:
//!
//!     cargo run --release -p sflow-ml --example detector_matrix [BATCHES]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use sflow_ml::corrupt::{corrupt, Corruption};
use sflow_ml::data::{mnist, Split};
use sflow_ml::{evaluate, train_classifier, Arch, Classifier, DetectorSpec, TrainConfig};

fn main() {
    sflow_ml::set_torch_threads(1);
    let batches: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    let train = mnist(&dir, Split::Train).unwrap().shuffled(1);
    let test = mnist(&dir, Split::Test).unwrap().shuffled(2);
    let tmp = tempfile::tempdir().unwrap();
    let model_path = tmp.path().join("mlp.pt");
    let rep = train_classifier(
        &TrainConfig::new(Arch::Mlp, 3, 1e-3),
        &train.slice(12_000, 60_000),
        None,
        &model_path,
    )
    .unwrap();
    let model = Arc::new(Classifier::load(&model_path).unwrap());
    let reference = train.take(12_000);
    let names = ["ks", "mmd", "autoencoder_ood", "confidence"];
    let dets: Vec<_> = names
        .iter()
        .map(|n| {
            DetectorSpec::from_call(n, &[])
                .unwrap()
                .fit(&reference, Some(model.clone()), 7)
                .unwrap()
        })
        .collect();
    let eval = test.take(batches * 500);
    let clean_acc = evaluate(&model, &eval).unwrap().accuracy;
    println!("MLP, 3 epochs on 48,000 digits (held-out accuracy {:.3}); {batches} batches of 500 per cell; cell = flagged batches / mean % picked", rep.accuracy);
    println!();
    println!(
        "| corruption | severity | MLP accuracy | {} |",
        names.join(" | ")
    );
    println!("| --- | ---: | ---: |{}", " ---: |".repeat(names.len()));
    let row = |label: &str, sev: &str, data: &sflow_ml::Dataset, acc: f64| {
        let mut cells = Vec::new();
        for d in &dets {
            let (mut flagged, mut picked) = (0, 0.0);
            for b in 0..batches {
                let r = d.check(&data.slice(b * 500, (b + 1) * 500)).unwrap();
                flagged += usize::from(r.drifted);
                picked += r.picked.len() as f64 / 500.0;
            }
            cells.push(format!(
                "{flagged}/{batches} · {:.0}%",
                100.0 * picked / batches as f64
            ));
        }
        println!("| {label} | {sev} | {:.3} | {} |", acc, cells.join(" | "));
    };
    row("none (test digits)", "–", &eval, clean_acc);
    for c in Corruption::ALL {
        for s in [1u8, 3, 5] {
            let data = corrupt(&eval, c, s, 5).unwrap();
            let acc = evaluate(&model, &data).unwrap().accuracy;
            row(c.name(), &s.to_string(), &data, acc);
        }
    }
}
