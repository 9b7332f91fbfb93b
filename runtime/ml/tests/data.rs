//! The IDX loader on the real MNIST files, and its errors on broken ones.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;

use sflow_ml::data::{files, load_idx_pair, mnist, read_idx, Split};
use sflow_ml::{Dataset, MlError};

#[test]
fn loads_both_splits_with_the_readme_facts() {
    let t0 = std::time::Instant::now();
    let train = common::train();
    let test = common::test();
    eprintln!("loaded 70,000 images in {:.2?}", t0.elapsed());
    assert_eq!(train.len(), 60_000);
    assert_eq!(test.len(), 10_000);
    assert_eq!((train.rows(), train.cols()), (28, 28));
    assert_eq!(
        &train.labels().unwrap()[..10],
        &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    );
    assert_eq!(
        &test.labels().unwrap()[..10],
        &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    );
    assert!(train.pixels().iter().all(|p| (0.0..=1.0).contains(p)));
    // Every class is there, in roughly equal shares.
    let mut counts = [0usize; 10];
    for &l in test.labels().unwrap() {
        counts[l as usize] += 1;
    }
    assert!(
        counts.iter().all(|&c| (800..1200).contains(&c)),
        "{counts:?}"
    );
}

#[test]
fn uncompressed_files_and_the_dataset_format_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let sub = common::test().take(300);
    // Uncompressed MNIST naming.
    sub.save_idx(
        &dir.path().join("t10k-images-idx3-ubyte"),
        Some(&dir.path().join("t10k-labels-idx1-ubyte")),
    )
    .unwrap();
    let back = mnist(dir.path(), Split::Test).unwrap();
    assert_eq!(back, sub);
    // The dataset format (gzipped pair), read by `files`, nested directories concatenated.
    let ds_dir = tempfile::tempdir().unwrap();
    sub.slice(0, 100)
        .save_dir(&ds_dir.path().join("a"))
        .unwrap();
    sub.slice(100, 300)
        .save_dir(&ds_dir.path().join("b"))
        .unwrap();
    let all = files(ds_dir.path()).unwrap();
    assert_eq!(all, sub);
    // A single image file without labels.
    let f = ds_dir.path().join("x-images-idx3-ubyte");
    sub.save_idx(&f, None).unwrap();
    let one = files(&f).unwrap();
    assert!(!one.is_labelled());
    assert_eq!(one.len(), 300);
    assert!(mnist(dir.path(), Split::Train).is_err());
}

fn write(path: &std::path::Path, bytes: &[u8]) {
    std::fs::File::create(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

#[test]
fn truncated_and_malformed_files_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let src = common::mnist_dir().join("t10k-labels-idx1-ubyte.gz");
    let gz = std::fs::read(&src).unwrap();
    // Truncated gzip stream.
    let p = dir.path().join("t-labels-idx1-ubyte.gz");
    write(&p, &gz[..gz.len() / 2]);
    let e = read_idx(&p).unwrap_err();
    assert!(matches!(e, MlError::Idx { .. } | MlError::Io { .. }), "{e}");
    // Every prefix of a small uncompressed file fails cleanly.
    let small = Dataset::from_u8(&[1, 2, 3, 4, 5, 6, 7, 8], 2, 2, Some(vec![0, 1])).unwrap();
    let img = dir.path().join("s-images-idx3-ubyte");
    let lab = dir.path().join("s-labels-idx1-ubyte");
    small.save_idx(&img, Some(&lab)).unwrap();
    let bytes = std::fs::read(&img).unwrap();
    for cut in 0..bytes.len() {
        let q = dir.path().join("cut-images-idx3-ubyte");
        write(&q, &bytes[..cut]);
        let e = read_idx(&q).unwrap_err().to_string();
        assert!(e.contains("not a valid IDX file"), "{cut}: {e}");
    }
    // Labels that do not match the images.
    let lab3 = dir.path().join("three-labels-idx1-ubyte");
    write(&lab3, &[0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]);
    let e = load_idx_pair(&img, Some(&lab3)).unwrap_err().to_string();
    assert!(e.contains("3 labels for the 2 images"), "{e}");
    // An images file given as labels, and an absurd header.
    assert!(load_idx_pair(&img, Some(&img)).is_err());
    let huge = dir.path().join("huge-images-idx3-ubyte");
    write(
        &huge,
        &[
            0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1,
        ],
    );
    let e = read_idx(&huge).unwrap_err().to_string();
    assert!(e.contains("too many elements"), "{e}");
    // Unsupported element type, trailing bytes.
    write(&huge, &[0, 0, 0x0B, 1, 0, 0, 0, 1, 0, 0]);
    assert!(read_idx(&huge)
        .unwrap_err()
        .to_string()
        .contains("unsupported element type"));
    write(&huge, &[0, 0, 8, 1, 0, 0, 0, 1, 7, 7]);
    assert!(read_idx(&huge)
        .unwrap_err()
        .to_string()
        .contains("trailing"));
    // A directory without image files.
    let empty = tempfile::tempdir().unwrap();
    assert!(files(empty.path()).is_err());
}
