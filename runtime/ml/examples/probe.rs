#![allow(clippy::unwrap_used)]
use std::sync::Arc;
use sflow_ml::corrupt::{corrupt, Corruption};
use sflow_ml::data::{mnist, Split};
use sflow_ml::*;
fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    let train = mnist(&dir, Split::Train).unwrap().shuffled(1);
    let test = mnist(&dir, Split::Test).unwrap().shuffled(2);
    let reference = train.take(12000);
    let tmp = std::env::temp_dir().join("probe-mlp.pt");
    train_classifier(&TrainConfig::new(Arch::Mlp, 1, 1e-3), &train.slice(20000, 30000), None, &tmp).unwrap();
    let model = Arc::new(Classifier::load(&tmp).unwrap());
    let specs = ["ks", "mmd", "autoencoder_ood", "confidence"];
    for name in specs {
        let t = std::time::Instant::now();
        let det = DetectorSpec::from_call(name, &[]).unwrap().fit(&reference, Some(model.clone()), 42).unwrap();
        let fit = t.elapsed();
        let t = std::time::Instant::now();
        let mut fa_test = 0; let mut fa_iid = 0;
        for i in 0..20 {
            if det.check(&test.slice(i*500, (i+1)*500)).unwrap().drifted { fa_test += 1; }
            if det.check(&train.slice(40000 + i*500, 40000+(i+1)*500)).unwrap().drifted { fa_iid += 1; }
        }
        let per = t.elapsed() / 40;
        let mut row = String::new();
        for c in Corruption::ALL {
            let mut hits = 0;
            for s in 0..4 {
                let b = corrupt(&test.slice(s*500, (s+1)*500), c, 3, s as u64).unwrap();
                if det.check(&b).unwrap().drifted { hits += 1; }
            }
            row.push_str(&format!(" {}={hits}/4", c.name()));
        }
        println!("{name}: fit {fit:.2?} check {per:.2?}; FA test {fa_test}/20 iid {fa_iid}/20;{row}");
    }
}
