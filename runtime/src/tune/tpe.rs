//! The Tree-structured Parzen Estimator (Bergstra et al., 2011), univariate as in hyperopt
//! and Optuna's default.
//!
//! After `startup` random trials, the completed trials are split at the `gamma` quantile of
//! their loss: the best `ceil(gamma · n)` are *good*, the rest *bad*. Each dimension gets two
//! Parzen estimators, `l` over the good values and `g` over the bad ones; `candidates` points
//! are drawn from `l`, and the one with the highest `l(x) / g(x)` (the expected improvement's
//! maximizer under this model) is proposed.

use super::parzen::{Categorical, Parzen};
use super::space::{Coord, Domain, Space};
use super::{Observation, TpeOptions};
use rand_chacha::rand_core::RngCore;

/// The good/bad model of one dimension.
enum Model {
    Numeric { l: Parzen, g: Parzen },
    Choice { l: Categorical, g: Categorical },
}

/// Proposes a point from the completed `history` (at least one observation).
pub fn propose(
    space: &Space,
    history: &[&Observation],
    opts: &TpeOptions,
    rng: &mut impl RngCore,
) -> Vec<Coord> {
    let mut sorted: Vec<&Observation> = history.to_vec();
    sorted.sort_by(|a, b| a.loss.total_cmp(&b.loss));
    let n_good = ((opts.gamma * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    let (good, bad) = sorted.split_at(n_good);
    let models: Vec<Model> = space
        .dims()
        .iter()
        .enumerate()
        .map(|(i, d)| fit(&d.domain, i, good, bad))
        .collect();
    let mut best: Option<(f64, Vec<Coord>)> = None;
    for _ in 0..opts.candidates.max(1) {
        let point: Vec<Coord> = space
            .dims()
            .iter()
            .zip(&models)
            .map(|(d, m)| match m {
                Model::Numeric { l, .. } => d.domain.from_unit(l.sample(rng)),
                Model::Choice { l, .. } => Coord::Choice(l.sample(rng)),
            })
            .collect();
        let score: f64 = space
            .dims()
            .iter()
            .zip(&models)
            .zip(&point)
            .map(|((d, m), c)| log_ratio(&d.domain, m, c))
            .sum();
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, point));
        }
    }
    match best {
        Some((_, p)) => p,
        // Unreachable (at least one candidate), but never panic: a random point.
        None => space.sample(rng),
    }
}

fn fit(domain: &Domain, i: usize, good: &[&Observation], bad: &[&Observation]) -> Model {
    match domain {
        Domain::Choice { n } => {
            let idx = |obs: &[&Observation]| -> Vec<usize> {
                obs.iter()
                    .filter_map(|o| match o.point.get(i) {
                        Some(Coord::Choice(c)) => Some(*c),
                        _ => None,
                    })
                    .collect()
            };
            Model::Choice {
                l: Categorical::fit(&idx(good), *n),
                g: Categorical::fit(&idx(bad), *n),
            }
        }
        _ => {
            let unit = |obs: &[&Observation]| -> Vec<f64> {
                obs.iter()
                    .filter_map(|o| match o.point.get(i) {
                        Some(Coord::Int(x)) => Some(domain.to_unit(*x as f64)),
                        Some(Coord::Float(x)) => Some(domain.to_unit(*x)),
                        _ => None,
                    })
                    .collect()
            };
            Model::Numeric {
                l: Parzen::fit(&unit(good)),
                g: Parzen::fit(&unit(bad)),
            }
        }
    }
}

/// `log l(x) - log g(x)` for one coordinate: densities for reals, bin masses for ints.
fn log_ratio(domain: &Domain, m: &Model, c: &Coord) -> f64 {
    match (m, c) {
        (Model::Numeric { l, g }, Coord::Int(k)) => {
            let (a, b) = domain.int_bin(*k);
            l.log_mass(a, b) - g.log_mass(a, b)
        }
        (Model::Numeric { l, g }, Coord::Float(x)) => {
            let u = domain.to_unit(*x);
            l.log_pdf(u) - g.log_pdf(u)
        }
        (Model::Choice { l, g }, Coord::Choice(i)) => l.log_p(*i) - g.log_p(*i),
        _ => 0.0,
    }
}
