#![allow(clippy::unwrap_used)]
use sflow_ml::data::{mnist, Split};
use sflow_ml::*;
fn main() {
    let threads: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(0);
    if threads > 0 { set_torch_threads(threads); }
    println!("torch threads {}", tch::get_num_threads());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    let train = mnist(&dir, Split::Train).unwrap().shuffled(1);
    let reference = train.take(12000);
    let batch = train.slice(30000, 31000);
    for name in ["ks", "mmd", "autoencoder_ood"] {
        let t = std::time::Instant::now();
        let det = DetectorSpec::from_call(name, &[]).unwrap().fit(&reference, None, 42).unwrap();
        let fit = t.elapsed();
        det.check(&batch).unwrap();
        let t = std::time::Instant::now();
        for _ in 0..10 { det.check(&batch).unwrap(); }
        println!("{name}: fit {fit:.2?} check(1000) {:.2?}", t.elapsed() / 10);
    }
}
