//! Parzen estimators, the densities TPE compares: a mixture of Gaussians truncated to the unit
//! interval for numeric dimensions, smoothed frequencies for choices.
//!
//! The numeric estimator is the one of Bergstra et al. (2011) as hyperopt and Optuna build
//! it: one kernel per observation plus a broad prior kernel (centre 0.5, width 1, the whole
//! range) that keeps every region possible; each observation's bandwidth is the larger of the
//! distances to its neighbours (the interval's ends count as neighbours), clipped to
//! `[1 / min(100, n + 1), 1]`, so dense regions get narrow kernels and lone points wide ones.

use super::space::{normal, uniform};
use rand_chacha::rand_core::RngCore;

/// A mixture of truncated Gaussians on [0, 1].
#[derive(Clone, Debug)]
pub struct Parzen {
    mus: Vec<f64>,
    sigmas: Vec<f64>,
    /// Normalized weights.
    weights: Vec<f64>,
    /// Each kernel's mass inside [0, 1] (the truncation's normalizer).
    mass: Vec<f64>,
}

/// The prior kernel's weight, relative to one observation's.
const PRIOR_WEIGHT: f64 = 1.0;

impl Parzen {
    /// The estimator of observations `xs` (points in [0, 1]).
    pub fn fit(xs: &[f64]) -> Parzen {
        let mut mus: Vec<f64> = xs.iter().map(|x| x.clamp(0.0, 1.0)).collect();
        mus.push(0.5);
        let n = mus.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| mus[a].total_cmp(&mus[b]));
        let min_sigma = 1.0 / (n as f64).min(100.0);
        let mut sigmas = vec![1.0; n];
        for (rank, &i) in order.iter().enumerate() {
            let left = if rank == 0 { 0.0 } else { mus[order[rank - 1]] };
            let right = if rank + 1 == n {
                1.0
            } else {
                mus[order[rank + 1]]
            };
            sigmas[i] = (mus[i] - left).max(right - mus[i]).clamp(min_sigma, 1.0);
        }
        // The prior (last) keeps the whole range as its width.
        sigmas[n - 1] = 1.0;
        let mut weights = vec![1.0; n];
        weights[n - 1] = PRIOR_WEIGHT;
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        let mass = mus
            .iter()
            .zip(&sigmas)
            .map(|(m, s)| (phi((1.0 - m) / s) - phi((0.0 - m) / s)).max(1e-300))
            .collect();
        Parzen {
            mus,
            sigmas,
            weights,
            mass,
        }
    }

    /// A draw in [0, 1]: a kernel by weight, then its Gaussian until it falls inside.
    pub fn sample(&self, rng: &mut impl RngCore) -> f64 {
        let k = pick(&self.weights, uniform(rng));
        let (m, s) = (self.mus[k], self.sigmas[k]);
        // Each kernel keeps at least a third of its mass inside (|m - 0.5| <= 0.5, s <= 1),
        // so this ends quickly; the uniform fallback only guards against pathological input.
        for _ in 0..256 {
            let x = m + s * normal(rng);
            if (0.0..=1.0).contains(&x) {
                return x;
            }
        }
        uniform(rng)
    }

    /// The log density at `x` in [0, 1].
    pub fn log_pdf(&self, x: f64) -> f64 {
        let terms: Vec<f64> = (0..self.mus.len())
            .map(|k| {
                let z = (x - self.mus[k]) / self.sigmas[k];
                self.weights[k].ln()
                    - 0.5 * z * z
                    - (self.sigmas[k] * (std::f64::consts::TAU).sqrt() * self.mass[k]).ln()
            })
            .collect();
        log_sum_exp(&terms)
    }

    /// The log of the mass in `[a, b]` (the probability of an int's bin).
    pub fn log_mass(&self, a: f64, b: f64) -> f64 {
        let p: f64 = (0..self.mus.len())
            .map(|k| {
                let (m, s) = (self.mus[k], self.sigmas[k]);
                self.weights[k] * (phi((b - m) / s) - phi((a - m) / s)).max(0.0) / self.mass[k]
            })
            .sum();
        p.max(1e-300).ln()
    }
}

/// Smoothed frequencies of `n` choices: each observation counts 1, and a prior of weight 1
/// is spread evenly, so an unseen choice keeps a chance.
#[derive(Clone, Debug)]
pub struct Categorical {
    probs: Vec<f64>,
}

impl Categorical {
    /// The estimator of observed choice indices `xs` among `n`.
    pub fn fit(xs: &[usize], n: usize) -> Categorical {
        let n = n.max(1);
        let mut counts = vec![PRIOR_WEIGHT / n as f64; n];
        for &x in xs {
            if let Some(c) = counts.get_mut(x) {
                *c += 1.0;
            }
        }
        let total: f64 = counts.iter().sum();
        Categorical {
            probs: counts.into_iter().map(|c| c / total).collect(),
        }
    }

    /// A draw.
    pub fn sample(&self, rng: &mut impl RngCore) -> usize {
        pick(&self.probs, uniform(rng))
    }

    /// The log probability of choice `i`.
    pub fn log_p(&self, i: usize) -> f64 {
        self.probs.get(i).copied().unwrap_or(0.0).max(1e-300).ln()
    }
}

/// The index whose cumulative weight first exceeds `u` (weights sum to 1).
fn pick(weights: &[f64], u: f64) -> usize {
    let mut acc = 0.0;
    for (i, w) in weights.iter().enumerate() {
        acc += w;
        if u < acc {
            return i;
        }
    }
    weights.len().saturating_sub(1)
}

fn log_sum_exp(xs: &[f64]) -> f64 {
    let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// The standard normal CDF.
pub fn phi(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The complementary error function, with a fractional error below 1.2e-7 everywhere
/// (Numerical Recipes' Chebyshev fit), so tail masses keep their relative precision.
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn the_normal_cdf_is_accurate() {
        assert!((phi(0.0) - 0.5).abs() < 1e-7);
        assert!((phi(1.0) - 0.841_344_746).abs() < 1e-6);
        assert!((phi(-1.96) - 0.024_997_895).abs() < 1e-6);
        assert!((phi(3.0) - 0.998_650_102).abs() < 1e-6);
    }

    #[test]
    fn the_density_integrates_to_one_on_the_unit_interval() {
        let p = Parzen::fit(&[0.1, 0.15, 0.8]);
        let n = 20_000;
        let integral: f64 = (0..n)
            .map(|i| p.log_pdf((i as f64 + 0.5) / n as f64).exp() / n as f64)
            .sum();
        assert!((integral - 1.0).abs() < 1e-3, "{integral}");
        assert!((p.log_mass(0.0, 1.0).exp() - 1.0).abs() < 1e-6);
        // The mass of a bin agrees with the density.
        let (a, b) = (0.1, 0.2);
        let m: f64 = (0..1000)
            .map(|i| p.log_pdf(a + (b - a) * (i as f64 + 0.5) / 1000.0).exp() * (b - a) / 1000.0)
            .sum();
        assert!((p.log_mass(a, b).exp() - m).abs() < 1e-4);
    }

    #[test]
    fn draws_stay_inside_and_follow_the_observations() {
        let share = |xs: &[f64], lo: f64, hi: f64| {
            xs.iter().filter(|x| (lo..hi).contains(*x)).count() as f64 / xs.len() as f64
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        // Few observations: wide kernels (at least 1/5 of the range), still centred on them.
        let p = Parzen::fit(&[0.2, 0.21, 0.22, 0.23]);
        let xs: Vec<f64> = (0..4000).map(|_| p.sample(&mut rng)).collect();
        assert!(xs.iter().all(|x| (0.0..=1.0).contains(x)));
        assert!(share(&xs, 0.1, 0.35) > 0.4, "{}", share(&xs, 0.1, 0.35));
        assert!(share(&xs, 0.75, 1.0) < 0.15, "{}", share(&xs, 0.75, 1.0));
        // Many: narrow kernels.
        let obs: Vec<f64> = (0..60).map(|i| 0.6 + 0.001 * i as f64).collect();
        let p = Parzen::fit(&obs);
        let xs: Vec<f64> = (0..4000).map(|_| p.sample(&mut rng)).collect();
        assert!(share(&xs, 0.55, 0.72) > 0.8, "{}", share(&xs, 0.55, 0.72));
        assert!(p.log_pdf(0.63) > p.log_pdf(0.2) + 3.0);
    }

    #[test]
    fn categorical_frequencies_are_smoothed() {
        let c = Categorical::fit(&[1, 1, 1], 2);
        assert!(c.log_p(1) > c.log_p(0));
        assert!(c.log_p(0).is_finite());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let ones = (0..1000).filter(|_| c.sample(&mut rng) == 1).count();
        // p(1) = 3.5 / 4.
        assert!((800..950).contains(&ones), "{ones}");
    }
}
