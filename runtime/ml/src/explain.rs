//! `std.explain`: why a model decides what it decides.
//!
//! - **Gradient saliency** ([`saliency`]) for image classifiers: for each image, the absolute
//!   gradient of the predicted class's logit with respect to every pixel (Simonyan et al.,
//!   2013: "vanilla" gradients), and the same for the runner-up class. The first map shows
//!   the pixels the decision is most sensitive to; the second, next to it, what would have
//!   pushed the model to its second choice — together they show a reviewer why the model
//!   hesitated between two digits. [`write_maps`] writes them as PGM pictures.
//! - **Permutation importance** ([`permutation_importance`]) for tabular classifiers: the
//!   drop in accuracy when one feature's column is shuffled (Breiman, 2001), averaged over
//!   `repeats` shuffles. The tabular format is a CSV file ([`read_csv`]) and the model a
//!   TorchScript module taking `[N, features]` floats and returning logits `[N, classes]`
//!   ([`TabularModel`]).

use std::path::{Path, PathBuf};

use serde::Serialize;
use tch::{CModule, Device, Kind, Tensor};

use crate::data::{Dataset, Layout};
use crate::error::{MlError, Result};
use crate::model::Classifier;
use crate::rng::Rng;

/// Images per forward/backward pass.
const CHUNK: usize = 256;

/// A pixel at least this bright is ink (MNIST pixels are in [0, 1]).
pub const INK: f32 = 0.5;

/// The width of the frame [`ink_focus`] calls the border.
pub const BORDER: usize = 3;

/// One image's explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The image's index in the explained dataset.
    pub index: usize,
    /// Its label, when the dataset has labels.
    pub label: Option<u8>,
    /// The class the model predicts.
    pub predicted: u8,
    /// Its softmax probability.
    pub probability: f32,
    /// The second most probable class.
    pub runner_up: u8,
    /// Its softmax probability.
    pub runner_up_probability: f32,
    /// `|∂ logit[predicted] / ∂ pixel|`, row-major, one value per pixel.
    #[serde(skip)]
    pub predicted_map: Vec<f32>,
    /// `|∂ logit[runner_up] / ∂ pixel|`, row-major.
    #[serde(skip)]
    pub runner_up_map: Vec<f32>,
}

/// Gradient saliency of every image of `data` (see the module documentation).
pub fn saliency(model: &Classifier, data: &Dataset) -> Result<Vec<Explanation>> {
    if (data.rows(), data.cols()) != model.image_shape() {
        let (r, c) = model.image_shape();
        return Err(MlError::dataset(format!(
            "the model takes {r}×{c} images; the dataset has {}×{}",
            data.rows(),
            data.cols()
        )));
    }
    let classes = model.classes();
    let pixels = data.features();
    let mut out = Vec::with_capacity(data.len());
    let mut start = 0;
    while start < data.len() {
        let chunk = data.slice(start, start + CHUNK);
        let x = chunk.to_tensor(Layout::Nchw);
        let probs = Vec::<f32>::try_from(model.probabilities(&x)?.f_flatten(0, -1)?)?;
        let mut top = Vec::with_capacity(chunk.len());
        let mut second = Vec::with_capacity(chunk.len());
        for row in probs.chunks_exact(classes) {
            let (a, b) = top_two(row);
            top.push(a as i64);
            second.push(b as i64);
        }
        let abs_flat = |g: Tensor| -> Result<Vec<f32>> {
            Ok(Vec::<f32>::try_from(g.f_abs()?.f_flatten(0, -1)?)?)
        };
        let g_top = abs_flat(model.logit_gradients(&x, &top)?)?;
        let g_second = abs_flat(model.logit_gradients(&x, &second)?)?;
        for i in 0..chunk.len() {
            let row = &probs[i * classes..(i + 1) * classes];
            let (a, b) = (top[i] as usize, second[i] as usize);
            out.push(Explanation {
                index: start + i,
                label: data.labels().and_then(|l| l.get(start + i).copied()),
                predicted: a as u8,
                probability: row[a],
                runner_up: b as u8,
                runner_up_probability: row[b],
                predicted_map: g_top[i * pixels..(i + 1) * pixels].to_vec(),
                runner_up_map: g_second[i * pixels..(i + 1) * pixels].to_vec(),
            });
        }
        start += CHUNK;
    }
    Ok(out)
}

/// The indices of the largest and second largest values (the first on ties).
fn top_two(row: &[f32]) -> (usize, usize) {
    let mut a = 0usize;
    for (i, &v) in row.iter().enumerate() {
        if v > row[a] {
            a = i;
        }
    }
    let mut b = usize::from(a == 0);
    for (i, &v) in row.iter().enumerate() {
        if i != a && v > row[b] {
            b = i;
        }
    }
    (a, b)
}

/// How much of a saliency map lies on the strokes: the mean saliency per pixel within
/// `radius` pixels (Chebyshev distance) of ink, and in the empty border (the outer
/// [`BORDER`] pixels of the image, farther than `radius` from any ink).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct InkFocus {
    /// Mean saliency per pixel near the ink.
    pub near_ink: f64,
    /// Mean saliency per pixel in the empty border.
    pub border: f64,
}

impl InkFocus {
    /// `near_ink / border` (infinite when the border has no saliency at all).
    pub fn ratio(&self) -> f64 {
        if self.border > 0.0 {
            self.near_ink / self.border
        } else {
            f64::INFINITY
        }
    }
}

/// [`InkFocus`] of `map` over `image` (`rows × cols`, row-major); `None` when the image has
/// no ink or no empty border pixel.
pub fn ink_focus(
    image: &[f32],
    map: &[f32],
    rows: usize,
    cols: usize,
    radius: usize,
) -> Option<InkFocus> {
    if image.len() != rows * cols || map.len() != rows * cols {
        return None;
    }
    let ink: Vec<(usize, usize)> = (0..rows * cols)
        .filter(|&i| image[i] >= INK)
        .map(|i| (i / cols, i % cols))
        .collect();
    if ink.is_empty() {
        return None;
    }
    let mut near = vec![false; rows * cols];
    for &(r, c) in &ink {
        for rr in r.saturating_sub(radius)..=(r + radius).min(rows - 1) {
            for cc in c.saturating_sub(radius)..=(c + radius).min(cols - 1) {
                near[rr * cols + cc] = true;
            }
        }
    }
    let (mut near_sum, mut near_n, mut border_sum, mut border_n) = (0.0, 0usize, 0.0, 0usize);
    for r in 0..rows {
        for c in 0..cols {
            let i = r * cols + c;
            let v = f64::from(map[i]);
            let in_border = r < BORDER || c < BORDER || r + BORDER >= rows || c + BORDER >= cols;
            if near[i] {
                near_sum += v;
                near_n += 1;
            } else if in_border {
                border_sum += v;
                border_n += 1;
            }
        }
    }
    (near_n > 0 && border_n > 0).then(|| InkFocus {
        near_ink: near_sum / near_n as f64,
        border: border_sum / border_n as f64,
    })
}

/// Writes `map` as a binary PGM picture, scaled so that its largest value is white.
pub fn write_map_pgm(map: &[f32], rows: usize, cols: usize, path: &Path) -> Result<()> {
    if map.len() != rows * cols {
        return Err(MlError::arg(format!(
            "a {rows}×{cols} map needs {} values, got {}",
            rows * cols,
            map.len()
        )));
    }
    let max = map.iter().copied().fold(0.0f32, f32::max);
    let scale = if max > 0.0 { 255.0 / max } else { 0.0 };
    let mut out = format!("P5\n{cols} {rows}\n255\n").into_bytes();
    out.extend(
        map.iter()
            .map(|&v| (v.max(0.0) * scale).round().min(255.0) as u8),
    );
    std::fs::write(path, out).map_err(|e| MlError::io(path, e))
}

/// The file names [`write_maps`] gives sample `i`: image, predicted-class map, runner-up map.
pub fn map_names(i: usize) -> (String, String, String) {
    (
        format!("{i:05}.pgm"),
        format!("{i:05}.saliency.pgm"),
        format!("{i:05}.runner-up.pgm"),
    )
}

/// What [`write_maps`] wrote, as its `saliency.json`.
#[derive(Debug, Clone, Serialize)]
pub struct MapsIndex {
    /// `"gradient"`.
    pub method: &'static str,
    /// What the files are, in words.
    pub what: &'static str,
    /// The mean [`InkFocus::ratio`] over the samples that have one (finite ratios only).
    pub mean_ink_focus: Option<f64>,
    /// One entry per sample.
    pub samples: Vec<MapEntry>,
}

/// One sample of a [`MapsIndex`].
#[derive(Debug, Clone, Serialize)]
pub struct MapEntry {
    /// Its position in the batch or dataset (the `id` of a label request).
    pub id: usize,
    /// The image, as PGM.
    pub image: String,
    /// The predicted class's saliency map, as PGM.
    pub saliency: String,
    /// The runner-up class's saliency map, as PGM.
    pub runner_up_saliency: String,
    /// The prediction and the figures.
    #[serde(flatten)]
    pub explanation: Explanation,
    /// Saliency near the ink versus in the empty border (radius 2).
    pub ink_focus: Option<InkFocus>,
}

/// Writes `explanations` of `data` to `dir` (created): `NNNNN.pgm` (the image),
/// `NNNNN.saliency.pgm` (predicted class), `NNNNN.runner-up.pgm` (runner-up class), each map
/// scaled to its own maximum, and `saliency.json` (a [`MapsIndex`]).
pub fn write_maps(data: &Dataset, explanations: &[Explanation], dir: &Path) -> Result<MapsIndex> {
    std::fs::create_dir_all(dir).map_err(|e| MlError::io(dir, e))?;
    let (rows, cols) = (data.rows(), data.cols());
    let mut samples = Vec::with_capacity(explanations.len());
    for (id, ex) in explanations.iter().enumerate() {
        let (image, sal, second) = map_names(id);
        data.write_pgm(ex.index, &dir.join(&image))?;
        write_map_pgm(&ex.predicted_map, rows, cols, &dir.join(&sal))?;
        write_map_pgm(&ex.runner_up_map, rows, cols, &dir.join(&second))?;
        let focus = data
            .image(ex.index)
            .and_then(|img| ink_focus(img, &ex.predicted_map, rows, cols, 2));
        samples.push(MapEntry {
            id,
            image,
            saliency: sal,
            runner_up_saliency: second,
            explanation: ex.clone(),
            ink_focus: focus,
        });
    }
    let ratios: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.ink_focus.map(|f| f.ratio()))
        .filter(|r| r.is_finite())
        .collect();
    let index = MapsIndex {
        method: "gradient",
        what: "NNNNN.pgm is the image; NNNNN.saliency.pgm the absolute gradient of the predicted class's logit per pixel, NNNNN.runner-up.pgm the same for the second most probable class (each scaled to its own maximum: white is where the decision is most sensitive)",
        mean_ink_focus: (!ratios.is_empty()).then(|| ratios.iter().sum::<f64>() / ratios.len() as f64),
        samples,
    };
    let path = dir.join("saliency.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&index)?).map_err(|e| MlError::io(&path, e))?;
    Ok(index)
}

/// A tabular dataset: named float features and an integer class per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Tabular {
    /// The feature columns' names, in file order (the label column left out).
    pub features: Vec<String>,
    /// The features, row-major (`rows × features`).
    pub x: Vec<f32>,
    /// The class of each row.
    pub y: Vec<u8>,
}

impl Tabular {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// Reads a tabular dataset: a CSV file (or a directory holding exactly one `*.csv`) whose
/// first line names the columns; every other non-empty line has one number per column;
/// the column named `label` holds the class (an integer 0–255), every other column is a
/// feature (a float). Fields are separated by `,` and trimmed; quoting is not supported.
pub fn read_csv(path: &Path, label: &str) -> Result<Tabular> {
    let file = csv_file(path)?;
    let text = std::fs::read_to_string(&file).map_err(|e| MlError::io(&file, e))?;
    let bad =
        |line: usize, why: String| MlError::dataset(format!("{}:{line}: {why}", file.display()));
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or_else(|| MlError::dataset(format!("{}: empty file", file.display())))?;
    let names: Vec<String> = header.split(',').map(|s| s.trim().to_string()).collect();
    let label_col = names.iter().position(|n| n == label).ok_or_else(|| {
        bad(
            1,
            format!(
                "no column named {label:?} (the columns: {})",
                names.join(", ")
            ),
        )
    })?;
    let features: Vec<String> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != label_col)
        .map(|(_, n)| n.clone())
        .collect();
    if features.is_empty() {
        return Err(bad(1, "no feature column besides the label".into()));
    }
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for (i, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != names.len() {
            return Err(bad(
                i + 1,
                format!("{} fields, the header has {}", fields.len(), names.len()),
            ));
        }
        for (j, f) in fields.iter().enumerate() {
            if j == label_col {
                let c: u8 = f.parse().map_err(|_| {
                    bad(
                        i + 1,
                        format!("label {f:?} is not a class (an integer 0–255)"),
                    )
                })?;
                y.push(c);
            } else {
                let v: f32 = f
                    .parse()
                    .ok()
                    .filter(|v: &f32| v.is_finite())
                    .ok_or_else(|| bad(i + 1, format!("{:?} = {f:?} is not a number", names[j])))?;
                x.push(v);
            }
        }
    }
    if y.is_empty() {
        return Err(MlError::dataset(format!("{}: no rows", file.display())));
    }
    Ok(Tabular { features, x, y })
}

fn csv_file(path: &Path) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| MlError::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "csv"))
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(MlError::dataset(format!(
            "no *.csv file in {}",
            path.display()
        ))),
        n => Err(MlError::dataset(format!(
            "{n} *.csv files in {}: a tabular dataset is one CSV file",
            path.display()
        ))),
    }
}

/// A TorchScript tabular classifier: `forward` takes `[N, features]` floats and returns
/// logits `[N, classes]`.
#[derive(Debug)]
pub struct TabularModel {
    module: CModule,
    features: usize,
    classes: usize,
}

impl TabularModel {
    /// Loads the module and checks it with one forward pass on a row of zeros.
    pub fn load(path: &Path, features: usize) -> Result<Self> {
        let model_err = |reason: String| MlError::Model {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_file() {
            return Err(model_err("no such file".into()));
        }
        let mut module = CModule::load_on_device(path, Device::Cpu)
            .map_err(|e| model_err(format!("not a TorchScript module libtorch can load: {e}")))?;
        module.f_set_eval()?;
        let probe = Tensor::zeros([1, features as i64], (Kind::Float, Device::Cpu));
        let out = tch::no_grad(|| module.forward_ts(&[probe]))
            .map_err(|e| model_err(format!("forward on a [1, {features}] row failed: {e}")))?;
        let size = out.size();
        let classes = match size[..] {
            [1, c] if c >= 2 => c as usize,
            _ => {
                return Err(model_err(format!(
                    "forward on a [1, {features}] row returned shape {size:?}; a tabular classifier returns logits [N, classes]"
                )))
            }
        };
        Ok(TabularModel {
            module,
            features,
            classes,
        })
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The predicted class of each row of `x` (row-major, `features` per row).
    pub fn predict(&self, x: &[f32]) -> Result<Vec<u8>> {
        let n = x.len() / self.features.max(1);
        let t = Tensor::from_slice(x).f_reshape([n as i64, self.features as i64])?;
        let logits = tch::no_grad(|| self.module.forward_ts(&[t]))?;
        let pred = Vec::<i64>::try_from(logits.f_argmax(-1, false)?)?;
        Ok(pred.into_iter().map(|p| p.clamp(0, 255) as u8).collect())
    }
}

/// One feature's permutation importance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureImportance {
    /// The column's name.
    pub feature: String,
    /// The mean drop in accuracy when the column is shuffled (can be slightly negative for a
    /// feature the model ignores).
    pub importance: f64,
    /// The standard deviation of the drop over the repeats.
    pub std: f64,
}

/// What [`permutation_importance`] reports (the JSON of the step's `report`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportanceReport {
    /// `"permutation"`.
    pub method: &'static str,
    /// Accuracy on the unshuffled data.
    pub baseline_accuracy: f64,
    /// Rows.
    pub samples: usize,
    /// Shuffles per feature.
    pub repeats: usize,
    /// The features, most important first.
    pub features: Vec<FeatureImportance>,
}

fn accuracy(pred: &[u8], y: &[u8]) -> f64 {
    let right = pred.iter().zip(y).filter(|(p, y)| p == y).count();
    right as f64 / y.len().max(1) as f64
}

/// Permutation importance of each feature of `data` for `model` (see the module
/// documentation); shuffles are drawn from `seed`, so the report is reproducible.
pub fn permutation_importance(
    model: &TabularModel,
    data: &Tabular,
    repeats: usize,
    seed: u64,
) -> Result<ImportanceReport> {
    let f = data.features.len();
    if f != model.features {
        return Err(MlError::dataset(format!(
            "the model takes {} features; the data has {f}",
            model.features
        )));
    }
    if repeats == 0 {
        return Err(MlError::arg("repeats must be at least 1"));
    }
    if let Some(&bad) = data.y.iter().find(|&&c| usize::from(c) >= model.classes) {
        return Err(MlError::dataset(format!(
            "label {bad} is not one of the model's {} classes",
            model.classes
        )));
    }
    let n = data.len();
    let baseline = accuracy(&model.predict(&data.x)?, &data.y);
    let mut features = Vec::with_capacity(f);
    for j in 0..f {
        let mut drops = Vec::with_capacity(repeats);
        for r in 0..repeats {
            let perm = Rng::for_item(seed, (j * repeats + r) as u64).permutation(n);
            let mut x = data.x.clone();
            for (row, &from) in perm.iter().enumerate() {
                x[row * f + j] = data.x[from * f + j];
            }
            drops.push(baseline - accuracy(&model.predict(&x)?, &data.y));
        }
        let mean = drops.iter().sum::<f64>() / repeats as f64;
        let var = drops.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / repeats as f64;
        features.push(FeatureImportance {
            feature: data.features[j].clone(),
            importance: mean,
            std: var.sqrt(),
        });
    }
    features.sort_by(|a, b| b.importance.total_cmp(&a.importance));
    Ok(ImportanceReport {
        method: "permutation",
        baseline_accuracy: baseline,
        samples: n,
        repeats,
        features,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_two_and_ink_focus() {
        assert_eq!(top_two(&[0.1, 0.7, 0.2]), (1, 2));
        assert_eq!(top_two(&[0.9, 0.05, 0.05]), (0, 1));
        // A 8×8 image with ink in the middle; a map that is 1 near the ink, 0.1 elsewhere.
        let (rows, cols) = (8, 8);
        let mut img = vec![0.0f32; 64];
        img[3 * 8 + 4] = 1.0;
        let map: Vec<f32> = (0..64)
            .map(|i: usize| {
                let (r, c) = (i / 8, i % 8);
                if r.abs_diff(3) <= 1 && c.abs_diff(4) <= 1 {
                    1.0
                } else {
                    0.1
                }
            })
            .collect();
        let f = ink_focus(&img, &map, rows, cols, 1);
        assert!(f.is_some_and(|f| (f.near_ink - 1.0).abs() < 1e-9 && (f.border - 0.1).abs() < 1e-6));
        assert_eq!(ink_focus(&[0.0; 64], &map, rows, cols, 1), None);
    }

    #[test]
    fn csv_errors_name_the_line() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| MlError::io("tmp", e))?;
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "a, b, label\n1, 2, 0\n\n3.5, 4, 1\n")
            .map_err(|e| MlError::io(&p, e))?;
        let t = read_csv(dir.path(), "label")?;
        assert_eq!(t.features, vec!["a", "b"]);
        assert_eq!(t.x, vec![1.0, 2.0, 3.5, 4.0]);
        assert_eq!(t.y, vec![0, 1]);
        let e = read_csv(&p, "class")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("no column named \"class\""), "{e}");
        std::fs::write(&p, "a,label\n1,0\nx,1\n").map_err(|e| MlError::io(&p, e))?;
        let e = read_csv(&p, "label")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains(":3:") && e.contains("not a number"), "{e}");
        std::fs::write(&p, "a,label\n1,0,3\n").map_err(|e| MlError::io(&p, e))?;
        assert!(read_csv(&p, "label").is_err());
        Ok(())
    }
}
