//! MNIST-C-style corruptions (Mu & Gilmer, 2019), in Rust: the drift the demo's stream turns
//! into. Each is parameterised by a severity from 1 (mild) to 5 (strong) and deterministic
//! given a seed: image `i` of a dataset draws from its own stream, so a subset or a re-run
//! gets the same corrupted pixels.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::error::{MlError, Result};
use crate::rng::Rng;

/// A corruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Corruption {
    /// Rotation about the centre by ±10°…±50°.
    Rotate,
    /// Horizontal shear by ±0.2…±0.8.
    Shear,
    /// Shrinks the digit about the centre (×0.9…×0.5).
    Scale,
    /// Shifts the digit by 2…6 pixels in a random direction.
    Translate,
    /// Poisson (photon) noise.
    ShotNoise,
    /// Salt-and-pepper noise on 3%…27% of the pixels.
    ImpulseNoise,
    /// Additive Gaussian noise (σ 0.08…0.38).
    GaussianNoise,
    /// Gaussian blur (σ 0.6…2.0 pixels).
    Blur,
    /// Motion blur along a random direction (3…11 pixels).
    MotionBlur,
    /// Fog-like: lowered contrast plus smooth low-frequency haze.
    Fog,
    /// Lowered contrast (×0.6…×0.2 about the mean).
    Contrast,
    /// Brightness raised by 0.1…0.5.
    Brightness,
    /// A vertical band of inverted pixels (2…6 wide).
    Stripe,
    /// 1…5 dotted lines across the image.
    DottedLine,
    /// 1…5 zigzag lines across the image.
    Zigzag,
}

impl Corruption {
    /// Every corruption.
    pub const ALL: [Corruption; 15] = [
        Corruption::Rotate,
        Corruption::Shear,
        Corruption::Scale,
        Corruption::Translate,
        Corruption::ShotNoise,
        Corruption::ImpulseNoise,
        Corruption::GaussianNoise,
        Corruption::Blur,
        Corruption::MotionBlur,
        Corruption::Fog,
        Corruption::Contrast,
        Corruption::Brightness,
        Corruption::Stripe,
        Corruption::DottedLine,
        Corruption::Zigzag,
    ];

    /// The snake_case name (`shot_noise`, …).
    pub fn name(self) -> &'static str {
        match self {
            Corruption::Rotate => "rotate",
            Corruption::Shear => "shear",
            Corruption::Scale => "scale",
            Corruption::Translate => "translate",
            Corruption::ShotNoise => "shot_noise",
            Corruption::ImpulseNoise => "impulse_noise",
            Corruption::GaussianNoise => "gaussian_noise",
            Corruption::Blur => "blur",
            Corruption::MotionBlur => "motion_blur",
            Corruption::Fog => "fog",
            Corruption::Contrast => "contrast",
            Corruption::Brightness => "brightness",
            Corruption::Stripe => "stripe",
            Corruption::DottedLine => "dotted_line",
            Corruption::Zigzag => "zigzag",
        }
    }

    fn salt(self) -> u64 {
        Corruption::ALL.iter().position(|&c| c == self).unwrap_or(0) as u64 + 1
    }
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Corruption {
    type Err = MlError;
    fn from_str(s: &str) -> Result<Self> {
        Corruption::ALL
            .iter()
            .copied()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                MlError::arg(format!(
                    "unknown corruption {s:?} (expected one of: {})",
                    Corruption::ALL.map(Corruption::name).join(", ")
                ))
            })
    }
}

fn level(severity: u8, table: [f64; 5]) -> f64 {
    table[usize::from(severity.clamp(1, 5) - 1)]
}

fn check_severity(severity: u8) -> Result<()> {
    if (1..=5).contains(&severity) {
        Ok(())
    } else {
        Err(MlError::arg(format!(
            "severity must be 1 to 5, got {severity}"
        )))
    }
}

/// Every image of `data` corrupted by `c` at `severity` (1–5); labels are kept.
pub fn corrupt(data: &Dataset, c: Corruption, severity: u8, seed: u64) -> Result<Dataset> {
    check_severity(severity)?;
    let (rows, cols) = (data.rows(), data.cols());
    let mut px = data.pixels().to_vec();
    for (i, img) in px.chunks_exact_mut(rows * cols).enumerate() {
        let mut rng = Rng::for_item(seed ^ c.salt().wrapping_mul(0x9E37_79B9), i as u64);
        corrupt_image(img, rows, cols, c, severity, &mut rng);
    }
    Dataset::new(px, rows, cols, data.labels().map(<[u8]>::to_vec))
}

/// Every image of `data` corrupted by one of `mix` (drawn per image), at its severity.
pub fn corrupt_mixed(data: &Dataset, mix: &[(Corruption, u8)], seed: u64) -> Result<Dataset> {
    if mix.is_empty() {
        return Err(MlError::arg("corrupt_mixed: no corruption given"));
    }
    for &(_, s) in mix {
        check_severity(s)?;
    }
    let (rows, cols) = (data.rows(), data.cols());
    let mut px = data.pixels().to_vec();
    for (i, img) in px.chunks_exact_mut(rows * cols).enumerate() {
        let mut rng = Rng::for_item(seed ^ 0x006d_6978, i as u64);
        let (c, s) = mix[rng.below(mix.len())];
        corrupt_image(img, rows, cols, c, s, &mut rng);
    }
    Dataset::new(px, rows, cols, data.labels().map(<[u8]>::to_vec))
}

/// Corrupts one `rows × cols` image in place.
pub fn corrupt_image(
    img: &mut [f32],
    rows: usize,
    cols: usize,
    c: Corruption,
    severity: u8,
    rng: &mut Rng,
) {
    if img.len() != rows * cols || img.is_empty() {
        return;
    }
    let sign = |rng: &mut Rng| if rng.f64() < 0.5 { -1.0 } else { 1.0 };
    match c {
        Corruption::Rotate => {
            let deg = level(severity, [10.0, 20.0, 30.0, 40.0, 50.0])
                * rng.uniform(0.85, 1.15)
                * sign(rng);
            let (s, co) = deg.to_radians().sin_cos();
            // Output → source: the inverse rotation.
            affine(img, rows, cols, [co, s, -s, co], [0.0, 0.0]);
        }
        Corruption::Shear => {
            let k =
                level(severity, [0.2, 0.35, 0.5, 0.65, 0.8]) * rng.uniform(0.85, 1.15) * sign(rng);
            affine(img, rows, cols, [1.0, k, 0.0, 1.0], [0.0, 0.0]);
        }
        Corruption::Scale => {
            let z = level(severity, [0.9, 0.8, 0.7, 0.6, 0.5]);
            affine(img, rows, cols, [1.0 / z, 0.0, 0.0, 1.0 / z], [0.0, 0.0]);
        }
        Corruption::Translate => {
            let d = level(severity, [2.0, 3.0, 4.0, 5.0, 6.0]);
            let a = rng.uniform(0.0, 2.0 * std::f64::consts::PI);
            affine(
                img,
                rows,
                cols,
                [1.0, 0.0, 0.0, 1.0],
                [-d * a.sin(), -d * a.cos()],
            );
        }
        Corruption::ShotNoise => {
            let lam = level(severity, [60.0, 25.0, 12.0, 5.0, 3.0]);
            for p in img.iter_mut() {
                *p = (rng.poisson(f64::from(*p) * lam) / lam).clamp(0.0, 1.0) as f32;
            }
        }
        Corruption::ImpulseNoise => {
            let amount = level(severity, [0.03, 0.06, 0.09, 0.17, 0.27]);
            for p in img.iter_mut() {
                if rng.f64() < amount {
                    *p = if rng.f64() < 0.5 { 0.0 } else { 1.0 };
                }
            }
        }
        Corruption::GaussianNoise => {
            let sigma = level(severity, [0.08, 0.12, 0.18, 0.26, 0.38]);
            for p in img.iter_mut() {
                *p = (f64::from(*p) + sigma * rng.normal()).clamp(0.0, 1.0) as f32;
            }
        }
        Corruption::Blur => {
            let sigma = level(severity, [0.6, 0.9, 1.2, 1.5, 2.0]);
            gaussian_blur(img, rows, cols, sigma);
        }
        Corruption::MotionBlur => {
            let len = level(severity, [3.0, 5.0, 7.0, 9.0, 11.0]);
            let a = rng.uniform(0.0, std::f64::consts::PI);
            motion_blur(img, rows, cols, len, a);
        }
        Corruption::Fog => {
            let contrast = level(severity, [0.75, 0.65, 0.55, 0.45, 0.35]);
            let haze = level(severity, [0.15, 0.22, 0.3, 0.38, 0.45]);
            let fog = smooth_noise(rows, cols, rng);
            let mean = img.iter().map(|&p| f64::from(p)).sum::<f64>() / img.len() as f64;
            for (p, f) in img.iter_mut().zip(fog) {
                let v = (f64::from(*p) - mean) * contrast + mean + haze * f;
                *p = v.clamp(0.0, 1.0) as f32;
            }
        }
        Corruption::Contrast => {
            let c = level(severity, [0.6, 0.5, 0.4, 0.3, 0.2]);
            let mean = img.iter().map(|&p| f64::from(p)).sum::<f64>() / img.len() as f64;
            for p in img.iter_mut() {
                *p = ((f64::from(*p) - mean) * c + mean).clamp(0.0, 1.0) as f32;
            }
        }
        Corruption::Brightness => {
            let b = level(severity, [0.1, 0.2, 0.3, 0.4, 0.5]);
            for p in img.iter_mut() {
                *p = (f64::from(*p) + b).clamp(0.0, 1.0) as f32;
            }
        }
        Corruption::Stripe => {
            let w = level(severity, [2.0, 3.0, 4.0, 5.0, 6.0]) as usize;
            let w = w.min(cols);
            let start = rng.below(cols - w + 1);
            for r in 0..rows {
                for c in start..start + w {
                    if let Some(p) = img.get_mut(r * cols + c) {
                        *p = 1.0 - *p;
                    }
                }
            }
        }
        Corruption::DottedLine | Corruption::Zigzag => {
            let lines = usize::from(severity.clamp(1, 5));
            for _ in 0..lines {
                let (r0, c0) = (rng.uniform(0.0, rows as f64), rng.uniform(0.0, cols as f64));
                let (r1, c1) = (rng.uniform(0.0, rows as f64), rng.uniform(0.0, cols as f64));
                if c == Corruption::DottedLine {
                    draw_line(img, rows, cols, (r0, c0), (r1, c1), 2);
                } else {
                    // Four segments alternating about the straight line.
                    let (dr, dc) = (r1 - r0, c1 - c0);
                    let norm = (dr * dr + dc * dc).sqrt().max(1e-6);
                    let (nr, nc) = (-dc / norm * 2.5, dr / norm * 2.5);
                    let mut prev = (r0, c0);
                    for k in 1..=4 {
                        let t = k as f64 / 4.0;
                        let off = if k % 2 == 1 { 1.0 } else { -1.0 };
                        let next = if k == 4 {
                            (r1, c1)
                        } else {
                            (r0 + dr * t + nr * off, c0 + dc * t + nc * off)
                        };
                        draw_line(img, rows, cols, prev, next, 1);
                        prev = next;
                    }
                }
            }
        }
    }
}

/// Bilinear sample at (r, c) with zero outside.
fn sample(img: &[f32], rows: usize, cols: usize, r: f64, c: f64) -> f32 {
    let (r0, c0) = (r.floor(), c.floor());
    let (fr, fc) = (r - r0, c - c0);
    let get = |rr: f64, cc: f64| -> f64 {
        if rr < 0.0 || cc < 0.0 || rr >= rows as f64 || cc >= cols as f64 {
            0.0
        } else {
            img.get(rr as usize * cols + cc as usize)
                .copied()
                .map_or(0.0, f64::from)
        }
    };
    let v = get(r0, c0) * (1.0 - fr) * (1.0 - fc)
        + get(r0, c0 + 1.0) * (1.0 - fr) * fc
        + get(r0 + 1.0, c0) * fr * (1.0 - fc)
        + get(r0 + 1.0, c0 + 1.0) * fr * fc;
    v as f32
}

/// Resamples: output pixel (r, c), relative to the centre, reads the source at
/// `m · (r, c) + t` (m row-major 2×2 over (row, col)).
fn affine(img: &mut [f32], rows: usize, cols: usize, m: [f64; 4], t: [f64; 2]) {
    let src = img.to_vec();
    let (cr, cc) = ((rows as f64 - 1.0) / 2.0, (cols as f64 - 1.0) / 2.0);
    for r in 0..rows {
        for c in 0..cols {
            let (y, x) = (r as f64 - cr, c as f64 - cc);
            let sy = m[0] * y + m[1] * x + t[0] + cr;
            let sx = m[2] * y + m[3] * x + t[1] + cc;
            img[r * cols + c] = sample(&src, rows, cols, sy, sx);
        }
    }
}

fn convolve_1d(img: &mut [f32], rows: usize, cols: usize, kernel: &[f64], horizontal: bool) {
    let src = img.to_vec();
    let half = (kernel.len() / 2) as isize;
    for r in 0..rows {
        for c in 0..cols {
            let mut acc = 0.0;
            for (k, w) in kernel.iter().enumerate() {
                let off = k as isize - half;
                let (rr, cc) = if horizontal {
                    (r as isize, c as isize + off)
                } else {
                    (r as isize + off, c as isize)
                };
                if rr >= 0 && cc >= 0 && (rr as usize) < rows && (cc as usize) < cols {
                    acc += w * f64::from(src[rr as usize * cols + cc as usize]);
                }
            }
            img[r * cols + c] = acc.clamp(0.0, 1.0) as f32;
        }
    }
}

fn gaussian_blur(img: &mut [f32], rows: usize, cols: usize, sigma: f64) {
    let radius = (3.0 * sigma).ceil() as isize;
    let mut k: Vec<f64> = (-radius..=radius)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|w| *w /= s);
    convolve_1d(img, rows, cols, &k, true);
    convolve_1d(img, rows, cols, &k, false);
}

fn motion_blur(img: &mut [f32], rows: usize, cols: usize, len: f64, angle: f64) {
    let src = img.to_vec();
    let steps = len.round().max(1.0) as usize;
    let (dy, dx) = (angle.sin(), angle.cos());
    for r in 0..rows {
        for c in 0..cols {
            let mut acc = 0.0f64;
            for s in 0..steps {
                let t = s as f64 - (steps as f64 - 1.0) / 2.0;
                acc += f64::from(sample(
                    &src,
                    rows,
                    cols,
                    r as f64 + t * dy,
                    c as f64 + t * dx,
                ));
            }
            img[r * cols + c] = (acc / steps as f64).clamp(0.0, 1.0) as f32;
        }
    }
}

/// Smooth noise in [0, 1]: a coarse random grid, bilinearly upsampled (a one-octave plasma).
fn smooth_noise(rows: usize, cols: usize, rng: &mut Rng) -> Vec<f64> {
    let g = 5usize;
    let grid: Vec<f64> = (0..g * g).map(|_| rng.f64()).collect();
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for c in 0..cols {
            let y = r as f64 / rows.max(2) as f64 * (g - 1) as f64;
            let x = c as f64 / cols.max(2) as f64 * (g - 1) as f64;
            let (y0, x0) = (y.floor() as usize, x.floor() as usize);
            let (y1, x1) = ((y0 + 1).min(g - 1), (x0 + 1).min(g - 1));
            let (fy, fx) = (y - y0 as f64, x - x0 as f64);
            let v = grid[y0 * g + x0] * (1.0 - fy) * (1.0 - fx)
                + grid[y0 * g + x1] * (1.0 - fy) * fx
                + grid[y1 * g + x0] * fy * (1.0 - fx)
                + grid[y1 * g + x1] * fy * fx;
            out.push(v);
        }
    }
    out
}

/// Draws a white line from `a` to `b`, every `every`-th pixel (1: solid, 2: dotted).
fn draw_line(
    img: &mut [f32],
    rows: usize,
    cols: usize,
    a: (f64, f64),
    b: (f64, f64),
    every: usize,
) {
    let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
    for s in (0..=steps).step_by(every.max(1)) {
        let t = s as f64 / steps as f64;
        let (r, c) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
        let (r, c) = (r.round(), c.round());
        if r >= 0.0 && c >= 0.0 && (r as usize) < rows && (c as usize) < cols {
            img[r as usize * cols + c as usize] = 1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_bounded_and_changing() -> Result<()> {
        let mut px = vec![0u8; 2 * 28 * 28];
        for r in 8..20 {
            for c in 12..16 {
                px[r * 28 + c] = 255;
                px[784 + r * 28 + c] = 200;
            }
        }
        let ds = Dataset::from_u8(&px, 28, 28, Some(vec![1, 1]))?;
        for c in Corruption::ALL {
            assert_eq!(c.name().parse::<Corruption>()?, c);
            for s in 1..=5 {
                let a = corrupt(&ds, c, s, 3)?;
                let b = corrupt(&ds, c, s, 3)?;
                assert_eq!(a, b, "{c} {s}");
                assert!(
                    a.pixels().iter().all(|p| (0.0..=1.0).contains(p)),
                    "{c} {s}"
                );
                assert_ne!(a.pixels(), ds.pixels(), "{c} {s} changed nothing");
                assert_eq!(a.labels(), ds.labels());
            }
        }
        assert!(corrupt(&ds, Corruption::Rotate, 6, 0).is_err());
        assert!("nope".parse::<Corruption>().is_err());
        Ok(())
    }
}
