//! Datasets: the MNIST IDX loader (`std.data.mnist`), `files(path)` (`std.data.files`), the
//! in-memory [`Dataset`], and the on-disk dataset format.
//!
//! # The dataset format
//!
//! A dataset on disk (a `Dataset` artifact, the Improver's `SFLOW_INPUT_LABELLED`, a step's
//! `Dataset` output) is a **directory of IDX files**, gzipped or not — the format MNIST itself
//! ships in:
//!
//! - every file whose name contains `idx3` is an image file (`N × rows × cols`, unsigned bytes
//!   or IEEE floats);
//! - its labels, if any, are the file of the same name with `images` → `labels` and
//!   `idx3` → `idx1` (`train-images-idx3-ubyte.gz` → `train-labels-idx1-ubyte.gz`);
//! - image files are read in path order (recursively) and concatenated; either every image
//!   file has labels or none has.
//!
//! [`Dataset::save_dir`] writes `images-idx3-ubyte.gz` and, when labelled,
//! `labels-idx1-ubyte.gz`. IDX: a big-endian u32 magic `0x0000TTDD` (TT the element type:
//! 0x08 unsigned byte, 0x0D f32; DD the number of dimensions), one big-endian u32 per
//! dimension, then the elements row-major.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use flate2::read::MultiGzDecoder;
use tch::{Kind, Tensor};

use crate::error::{MlError, Result};
use crate::rng::Rng;

/// MNIST image height and width.
pub const MNIST_SIDE: usize = 28;

/// The IDX element type code of unsigned bytes.
const IDX_U8: u8 = 0x08;
/// The IDX element type code of big-endian IEEE 754 single-precision floats.
const IDX_F32: u8 = 0x0D;
/// No IDX file sflow reads may declare more elements than this (a corrupt header must not
/// make the loader try to allocate terabytes).
const MAX_IDX_ELEMENTS: u64 = 1 << 32;

/// A labelled (or unlabelled) set of grey images, pixels as f32 in [0, 1], row-major.
#[derive(Clone, PartialEq)]
pub struct Dataset {
    images: Vec<f32>,
    len: usize,
    rows: usize,
    cols: usize,
    labels: Option<Vec<u8>>,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset")
            .field("len", &self.len)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("labelled", &self.labels.is_some())
            .finish()
    }
}

/// How [`Dataset::to_tensor`] shapes the images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[N, rows·cols]`.
    Flat,
    /// `[N, 1, rows, cols]` (what sflow models take).
    Nchw,
}

impl Dataset {
    /// A dataset of `images.len() / (rows·cols)` images; `labels`, when given, has one label
    /// per image.
    pub fn new(
        images: Vec<f32>,
        rows: usize,
        cols: usize,
        labels: Option<Vec<u8>>,
    ) -> Result<Self> {
        let side = rows * cols;
        if side == 0 {
            return Err(MlError::dataset(format!("images of {rows}×{cols} pixels")));
        }
        if images.len() % side != 0 {
            return Err(MlError::dataset(format!(
                "{} pixel values are not a whole number of {rows}×{cols} images",
                images.len()
            )));
        }
        let len = images.len() / side;
        if let Some(l) = &labels {
            if l.len() != len {
                return Err(MlError::dataset(format!(
                    "{len} images but {} labels",
                    l.len()
                )));
            }
        }
        Ok(Dataset {
            images,
            len,
            rows,
            cols,
            labels,
        })
    }

    /// A dataset from bytes (0–255 → 0–1).
    pub fn from_u8(
        pixels: &[u8],
        rows: usize,
        cols: usize,
        labels: Option<Vec<u8>>,
    ) -> Result<Self> {
        Self::new(
            pixels.iter().map(|&p| f32::from(p) / 255.0).collect(),
            rows,
            cols,
            labels,
        )
    }

    /// An empty dataset of `rows × cols` images.
    pub fn empty(rows: usize, cols: usize, labelled: bool) -> Self {
        Dataset {
            images: Vec::new(),
            len: 0,
            rows,
            cols,
            labels: labelled.then(Vec::new),
        }
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Image height.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Image width.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Pixels per image.
    pub fn features(&self) -> usize {
        self.rows * self.cols
    }

    /// All pixels, image after image.
    pub fn pixels(&self) -> &[f32] {
        &self.images
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> Option<&[f32]> {
        let d = self.features();
        self.images.get(i * d..(i + 1) * d)
    }

    /// The labels, when the dataset has them.
    pub fn labels(&self) -> Option<&[u8]> {
        self.labels.as_deref()
    }

    /// Whether the dataset is labelled.
    pub fn is_labelled(&self) -> bool {
        self.labels.is_some()
    }

    /// The labels, or an error naming `what` needed them.
    pub fn require_labels(&self, what: &str) -> Result<&[u8]> {
        self.labels.as_deref().ok_or_else(|| {
            MlError::dataset(format!(
                "{what} needs a labelled dataset; this one has no labels"
            ))
        })
    }

    /// The same images with `labels`.
    pub fn with_labels(self, labels: Vec<u8>) -> Result<Self> {
        Self::new(self.images, self.rows, self.cols, Some(labels))
    }

    /// The same images without labels.
    pub fn without_labels(mut self) -> Self {
        self.labels = None;
        self
    }

    /// The images as a float tensor (a copy).
    pub fn to_tensor(&self, layout: Layout) -> Tensor {
        let t = Tensor::from_slice(&self.images);
        let n = self.len as i64;
        match layout {
            Layout::Flat => t.reshape([n, self.features() as i64]),
            Layout::Nchw => t.reshape([n, 1, self.rows as i64, self.cols as i64]),
        }
    }

    /// The labels as an int64 tensor.
    pub fn labels_tensor(&self) -> Result<Tensor> {
        let l = self.require_labels("a label tensor")?;
        Ok(Tensor::from_slice(l).to_kind(Kind::Int64))
    }

    /// The images at `indices`, in that order (an index may repeat).
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        let d = self.features();
        let mut images = Vec::with_capacity(indices.len() * d);
        let mut labels = self
            .labels
            .as_ref()
            .map(|_| Vec::with_capacity(indices.len()));
        for &i in indices {
            let img = self.image(i).ok_or_else(|| {
                MlError::dataset(format!(
                    "index {i} out of range (the dataset has {} images)",
                    self.len
                ))
            })?;
            images.extend_from_slice(img);
            if let (Some(out), Some(src)) = (labels.as_mut(), self.labels.as_ref()) {
                if let Some(&l) = src.get(i) {
                    out.push(l);
                }
            }
        }
        Self::new(images, self.rows, self.cols, labels)
    }

    /// The first `n` images (all of them when there are fewer).
    pub fn take(&self, n: usize) -> Self {
        let n = n.min(self.len);
        let d = self.features();
        Dataset {
            images: self.images[..n * d].to_vec(),
            len: n,
            rows: self.rows,
            cols: self.cols,
            labels: self.labels.as_ref().map(|l| l[..n].to_vec()),
        }
    }

    /// Images `start..end` (clamped to the dataset).
    pub fn slice(&self, start: usize, end: usize) -> Self {
        let end = end.min(self.len);
        let start = start.min(end);
        let d = self.features();
        Dataset {
            images: self.images[start * d..end * d].to_vec(),
            len: end - start,
            rows: self.rows,
            cols: self.cols,
            labels: self.labels.as_ref().map(|l| l[start..end].to_vec()),
        }
    }

    /// This dataset followed by `other`: same image size, and both labelled or neither.
    pub fn concat(&self, other: &Dataset) -> Result<Self> {
        if other.is_empty() {
            return Ok(self.clone());
        }
        if self.is_empty() && self.labels.is_none() == other.labels.is_none() {
            return Ok(other.clone());
        }
        if (self.rows, self.cols) != (other.rows, other.cols) {
            return Err(MlError::dataset(format!(
                "cannot join {}×{} images with {}×{} images",
                self.rows, self.cols, other.rows, other.cols
            )));
        }
        let labels = match (&self.labels, &other.labels) {
            (Some(a), Some(b)) => Some([a.as_slice(), b.as_slice()].concat()),
            (None, None) => None,
            _ => {
                return Err(MlError::dataset(
                    "cannot join a labelled dataset with an unlabelled one",
                ))
            }
        };
        let mut images = Vec::with_capacity(self.images.len() + other.images.len());
        images.extend_from_slice(&self.images);
        images.extend_from_slice(&other.images);
        Self::new(images, self.rows, self.cols, labels)
    }

    /// The images in a random order fixed by `seed`.
    pub fn shuffled(&self, seed: u64) -> Self {
        let perm = Rng::new(seed).permutation(self.len);
        // Indices come from 0..len: subset cannot fail.
        self.subset(&perm).unwrap_or_else(|_| self.clone())
    }

    /// Splits into (rest, held-out) with `round(len·holdout)` random images held out, fixed by
    /// `seed`; each part keeps the dataset's order.
    pub fn split(&self, holdout: f64, seed: u64) -> Result<(Self, Self)> {
        if !(0.0..1.0).contains(&holdout) {
            return Err(MlError::arg(format!(
                "holdout must be in [0, 1), got {holdout}"
            )));
        }
        let n_hold = ((self.len as f64) * holdout).round() as usize;
        let mut perm = Rng::new(seed).permutation(self.len);
        let (hold, rest) = perm.split_at_mut(n_hold);
        hold.sort_unstable();
        rest.sort_unstable();
        Ok((self.subset(rest)?, self.subset(hold)?))
    }

    /// Writes the images (bytes, 0–1 → 0–255 rounded) to `images` and, when labelled, the
    /// labels to `labels`; a path ending in `.gz` is gzipped.
    pub fn save_idx(&self, images: &Path, labels: Option<&Path>) -> Result<()> {
        let bytes: Vec<u8> = self
            .images
            .iter()
            .map(|&p| (p.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect();
        write_idx(
            images,
            IDX_U8,
            &[self.len as u32, self.rows as u32, self.cols as u32],
            &bytes,
        )?;
        if let (Some(path), Some(l)) = (labels, &self.labels) {
            write_idx(path, IDX_U8, &[self.len as u32], l)?;
        }
        Ok(())
    }

    /// Writes the images as float IDX (lossless), and labels as [`Dataset::save_idx`] does.
    pub fn save_idx_f32(&self, images: &Path, labels: Option<&Path>) -> Result<()> {
        let mut bytes = Vec::with_capacity(self.images.len() * 4);
        for p in &self.images {
            bytes.extend_from_slice(&p.to_be_bytes());
        }
        write_idx(
            images,
            IDX_F32,
            &[self.len as u32, self.rows as u32, self.cols as u32],
            &bytes,
        )?;
        if let (Some(path), Some(l)) = (labels, &self.labels) {
            write_idx(path, IDX_U8, &[self.len as u32], l)?;
        }
        Ok(())
    }

    /// Writes the dataset in the dataset format: `dir/images-idx3-ubyte.gz` and, when labelled,
    /// `dir/labels-idx1-ubyte.gz` (creating `dir`). [`files`] reads it back.
    pub fn save_dir(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| MlError::io(dir, e))?;
        self.save_idx(
            &dir.join("images-idx3-ubyte.gz"),
            Some(&dir.join("labels-idx1-ubyte.gz")),
        )
    }

    /// Writes image `i` as a binary PGM picture (for people who label samples).
    pub fn write_pgm(&self, i: usize, path: &Path) -> Result<()> {
        let img = self
            .image(i)
            .ok_or_else(|| MlError::dataset(format!("no image {i}")))?;
        let mut out = format!("P5\n{} {}\n255\n", self.cols, self.rows).into_bytes();
        out.extend(
            img.iter()
                .map(|&p| (p.clamp(0.0, 1.0) * 255.0).round() as u8),
        );
        std::fs::write(path, out).map_err(|e| MlError::io(path, e))
    }
}

/// An IDX array as read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    /// The dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The elements, row-major.
    pub data: IdxData,
}

/// The elements of an IDX array.
#[derive(Debug, Clone, PartialEq)]
pub enum IdxData {
    /// Unsigned bytes (type 0x08).
    U8(Vec<u8>),
    /// Floats (type 0x0D).
    F32(Vec<f32>),
}

fn open_maybe_gz(path: &Path) -> Result<Box<dyn Read>> {
    let mut f = File::open(path).map_err(|e| MlError::io(path, e))?;
    let mut magic = [0u8; 2];
    let n = read_full(&mut f, &mut magic).map_err(|e| MlError::io(path, e))?;
    drop(f);
    let f = File::open(path).map_err(|e| MlError::io(path, e))?;
    let r = BufReader::with_capacity(1 << 16, f);
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(MultiGzDecoder::new(r)))
    } else {
        Ok(Box::new(r))
    }
}

/// Reads as many bytes as there are, up to `buf.len()`; returns how many.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads an IDX file, gzipped or not (detected from its first bytes, not its name). A wrong
/// magic number, an unsupported element type, a truncated file or trailing bytes are errors.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let mut r = open_maybe_gz(path)?;
    let io = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::InvalidInput
            || e.kind() == std::io::ErrorKind::InvalidData
        {
            MlError::idx(path, format!("corrupt gzip stream ({e})"))
        } else {
            MlError::io(path, e)
        }
    };
    let mut head = [0u8; 4];
    let n = read_full(&mut r, &mut head).map_err(io)?;
    if n < 4 {
        return Err(MlError::idx(
            path,
            format!("{n} bytes: too short for an IDX header"),
        ));
    }
    if head[0] != 0 || head[1] != 0 {
        return Err(MlError::idx(
            path,
            format!(
                "bad magic number 0x{:08x} (IDX files start with two zero bytes, e.g. 0x00000803 for images)",
                u32::from_be_bytes(head)
            ),
        ));
    }
    let kind = head[2];
    let ndims = head[3] as usize;
    let elem = match kind {
        IDX_U8 => 1u64,
        IDX_F32 => 4u64,
        other => {
            return Err(MlError::idx(
                path,
                format!("unsupported element type 0x{other:02x} (sflow reads 0x08 unsigned bytes and 0x0D floats)"),
            ))
        }
    };
    if ndims == 0 {
        return Err(MlError::idx(path, "zero dimensions"));
    }
    let mut dim_bytes = vec![0u8; 4 * ndims];
    let n = read_full(&mut r, &mut dim_bytes).map_err(io)?;
    if n < dim_bytes.len() {
        return Err(MlError::idx(
            path,
            format!(
                "truncated header: {ndims} dimensions declared, {n} of their {} bytes present",
                dim_bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&c| c <= MAX_IDX_ELEMENTS)
        .ok_or_else(|| {
            MlError::idx(
                path,
                format!("dimensions {dims:?} declare too many elements"),
            )
        })?;
    let want = count * elem;
    let mut body = Vec::new();
    (&mut r).take(want).read_to_end(&mut body).map_err(io)?;
    if (body.len() as u64) < want {
        return Err(MlError::idx(
            path,
            format!(
                "truncated: dimensions {dims:?} need {want} bytes of data, the file has {}",
                body.len()
            ),
        ));
    }
    let mut extra = [0u8; 1];
    if read_full(&mut r, &mut extra).map_err(io)? > 0 {
        return Err(MlError::idx(
            path,
            format!(
                "trailing bytes after the {want} bytes of data that dimensions {dims:?} declare"
            ),
        ));
    }
    let data = match kind {
        IDX_F32 => IdxData::F32(
            body.chunks_exact(4)
                .map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        _ => IdxData::U8(body),
    };
    Ok(IdxArray { dims, data })
}

fn write_idx(path: &Path, kind: u8, dims: &[u32], body: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| MlError::io(parent, e))?;
    }
    let f = File::create(path).map_err(|e| MlError::io(path, e))?;
    let mut w: Box<dyn Write> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::write::GzEncoder::new(
            BufWriter::new(f),
            flate2::Compression::new(6),
        ))
    } else {
        Box::new(BufWriter::new(f))
    };
    let mut head = vec![0u8, 0u8, kind, dims.len() as u8];
    for d in dims {
        head.extend_from_slice(&d.to_be_bytes());
    }
    w.write_all(&head).map_err(|e| MlError::io(path, e))?;
    w.write_all(body).map_err(|e| MlError::io(path, e))?;
    w.flush().map_err(|e| MlError::io(path, e))?;
    Ok(())
}

/// Reads an image file (3 dimensions) and, when given, its labels file (1 dimension, as many
/// labels as images, bytes).
pub fn load_idx_pair(images: &Path, labels: Option<&Path>) -> Result<Dataset> {
    let img = read_idx(images)?;
    let [n, rows, cols] = img.dims[..] else {
        return Err(MlError::idx(
            images,
            format!(
                "an image file has 3 dimensions (count, rows, columns); this one has {:?}",
                img.dims
            ),
        ));
    };
    let labels = match labels {
        None => None,
        Some(lp) => {
            let lab = read_idx(lp)?;
            if lab.dims.len() != 1 {
                return Err(MlError::idx(
                    lp,
                    format!("a label file has 1 dimension; this one has {:?}", lab.dims),
                ));
            }
            let IdxData::U8(l) = lab.data else {
                return Err(MlError::idx(
                    lp,
                    "labels must be unsigned bytes (type 0x08)",
                ));
            };
            if l.len() != n {
                return Err(MlError::idx(
                    lp,
                    format!(
                        "{} labels for the {n} images of {}",
                        l.len(),
                        images.display()
                    ),
                ));
            }
            Some(l)
        }
    };
    match img.data {
        IdxData::U8(px) => Dataset::from_u8(&px, rows, cols, labels),
        IdxData::F32(px) => Dataset::new(px, rows, cols, labels),
    }
    .map_err(|e| MlError::idx(images, e.to_string()))
}

/// The MNIST split to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The 60,000 training images (`train-*`).
    Train,
    /// The 10,000 test images (`t10k-*`).
    Test,
}

impl FromStr for Split {
    type Err = MlError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(Split::Train),
            "test" | "t10k" => Ok(Split::Test),
            other => Err(MlError::arg(format!(
                "unknown MNIST split {other:?} (expected \"train\" or \"test\")"
            ))),
        }
    }
}

fn find_existing(dir: &Path, names: &[String]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// `std.data.mnist(split, path)`: the MNIST images and labels of `split` from the directory
/// `dir` (`train-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`, …, or the
/// `train-images.idx3-ubyte` spelling).
pub fn mnist(dir: &Path, split: Split) -> Result<Dataset> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let candidates = |kind: &str, idx: &str| -> Vec<String> {
        let mut v = Vec::new();
        for sep in ['-', '.'] {
            for gz in ["", ".gz"] {
                v.push(format!("{prefix}-{kind}{sep}{idx}-ubyte{gz}"));
            }
        }
        v
    };
    let images = find_existing(dir, &candidates("images", "idx3")).ok_or_else(|| {
        MlError::dataset(format!(
            "no MNIST {prefix} images in {} (expected {prefix}-images-idx3-ubyte or {prefix}-images-idx3-ubyte.gz)",
            dir.display()
        ))
    })?;
    let labels = find_existing(dir, &candidates("labels", "idx1")).ok_or_else(|| {
        MlError::dataset(format!(
            "no MNIST {prefix} labels in {} (expected {prefix}-labels-idx1-ubyte or {prefix}-labels-idx1-ubyte.gz)",
            dir.display()
        ))
    })?;
    load_idx_pair(&images, Some(&labels))
}

fn labels_path_for(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_str()?;
    let base = name.replace("images", "labels").replace("idx3", "idx1");
    let dir = images.parent()?;
    let plain = base.trim_end_matches(".gz");
    [plain.to_owned(), format!("{plain}.gz")]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

fn collect_image_files(path: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<()> {
    if depth > 32 {
        return Err(MlError::dataset(format!(
            "{}: directories nested too deep",
            path.display()
        )));
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| MlError::io(path, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_image_files(&p, out, depth + 1)?;
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("idx3"))
        {
            out.push(p);
        }
    }
    Ok(())
}

/// `std.data.files(path)`: every IDX image file under `path` (a directory, searched
/// recursively in path order, or one image file), each with its labels file when there is
/// one, as one dataset. See the module documentation for the naming rule.
pub fn files(path: &Path) -> Result<Dataset> {
    let mut found = Vec::new();
    if path.is_dir() {
        collect_image_files(path, &mut found, 0)?;
    } else if path.is_file() {
        found.push(path.to_path_buf());
    } else {
        return Err(MlError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    }
    if found.is_empty() {
        return Err(MlError::dataset(format!(
            "no IDX image file (a name containing `idx3`) under {}",
            path.display()
        )));
    }
    let mut all: Option<Dataset> = None;
    for img in &found {
        let labels = labels_path_for(img);
        let ds = load_idx_pair(img, labels.as_deref())?;
        all = Some(match all {
            None => ds,
            Some(acc) => acc.concat(&ds).map_err(|e| {
                MlError::dataset(format!(
                    "{}: {e} (either every image file has its labels file or none has)",
                    img.display()
                ))
            })?,
        });
    }
    all.ok_or_else(|| MlError::dataset(format!("no images under {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_errors() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| MlError::io("tmp", e))?;
        let ds = Dataset::from_u8(&[0, 128, 255, 7, 1, 2, 3, 4], 2, 2, Some(vec![3, 9]))?;
        ds.save_dir(dir.path())?;
        let back = files(dir.path())?;
        assert_eq!(back, ds);
        // Uncompressed, floats.
        let p = dir.path().join("sub/x-images-idx3-float");
        ds.save_idx_f32(&p, None)?;
        let arr = read_idx(&p)?;
        assert_eq!(arr.dims, vec![2, 2, 2]);
        // Truncated file.
        let bytes = std::fs::read(&p).map_err(|e| MlError::io(&p, e))?;
        let t = dir.path().join("trunc-images-idx3-ubyte");
        std::fs::write(&t, &bytes[..bytes.len() - 3]).map_err(|e| MlError::io(&t, e))?;
        let err = read_idx(&t)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("truncated"), "{err}");
        // Bad magic.
        std::fs::write(&t, b"\x01\x02\x08\x01\0\0\0\x01x").map_err(|e| MlError::io(&t, e))?;
        let err = read_idx(&t)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("magic"), "{err}");
        // Mixed labelled/unlabelled under one directory.
        let err = files(dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!err.is_empty());
        Ok(())
    }

    #[test]
    fn split_is_deterministic_and_disjoint() -> Result<()> {
        let px: Vec<u8> = (0..100u8).collect();
        let ds = Dataset::from_u8(&px, 1, 1, Some((0..100u8).collect()))?;
        let (a, b) = ds.split(0.2, 5)?;
        let (a2, b2) = ds.split(0.2, 5)?;
        assert_eq!((a.len(), b.len()), (80, 20));
        assert_eq!(a, a2);
        assert_eq!(b, b2);
        let mut all: Vec<u8> = a.labels().unwrap_or_default().to_vec();
        all.extend_from_slice(b.labels().unwrap_or_default());
        all.sort_unstable();
        assert_eq!(all, (0..100u8).collect::<Vec<_>>());
        Ok(())
    }
}
