//! Search spaces: the dimensions a search draws from, their values ([`Coord`]), and the map of
//! each numeric dimension onto the unit interval that the Parzen estimators work in.
//!
//! A `log` dimension is uniform in the logarithm of its value; an int dimension covers
//! `[min - 0.5, max + 0.5]` before rounding, so every integer gets a bin of the same width
//! (in the log scale for a `log` int).

use super::TuneError;
use rand_chacha::rand_core::RngCore;
use serde::{Deserialize, Serialize};

/// What one dimension ranges over.
#[derive(Clone, Debug, PartialEq)]
pub enum Domain {
    /// Integers `min..=max`, uniform (or log-uniform with `log`).
    Int {
        /// Lower bound (inclusive).
        min: i64,
        /// Upper bound (inclusive).
        max: i64,
        /// Uniform in the logarithm (needs `min >= 1`).
        log: bool,
    },
    /// Reals in `[min, max]`, uniform (or log-uniform with `log`).
    Float {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
        /// Uniform in the logarithm (needs `min > 0`).
        log: bool,
    },
    /// One of `n` choices, by index.
    Choice {
        /// How many there are.
        n: usize,
    },
}

/// One dimension of a space: a workflow param and its domain.
#[derive(Clone, Debug, PartialEq)]
pub struct Dimension {
    /// The param's name.
    pub name: String,
    /// What it ranges over.
    pub domain: Domain,
}

impl Dimension {
    /// The dimension `name` over `domain`.
    pub fn new(name: impl Into<String>, domain: Domain) -> Dimension {
        Dimension {
            name: name.into(),
            domain,
        }
    }
}

/// A value of one dimension.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Coord {
    /// Of an int dimension.
    Int(i64),
    /// Of a float dimension.
    Float(f64),
    /// Of a choice dimension: the index of the choice.
    Choice(usize),
}

/// A validated search space: its dimensions, in order; a point has one [`Coord`] each.
#[derive(Clone, Debug, PartialEq)]
pub struct Space {
    dims: Vec<Dimension>,
}

impl Space {
    /// A space of `dims`; refuses empty spaces and domains that are empty, unordered,
    /// not finite, or `log` without positive bounds.
    pub fn new(dims: Vec<Dimension>) -> Result<Space, TuneError> {
        if dims.is_empty() {
            return Err(TuneError::EmptySpace);
        }
        for d in &dims {
            let bad = |why: &str| TuneError::BadDomain {
                name: d.name.clone(),
                why: why.to_string(),
            };
            match d.domain {
                Domain::Int { min, max, log } => {
                    if min > max {
                        return Err(bad(&format!("its bounds are not ordered ({min} > {max})")));
                    }
                    if log && min < 1 {
                        return Err(bad("a log range of ints needs bounds of at least 1"));
                    }
                }
                Domain::Float { min, max, log } => {
                    if !(min.is_finite() && max.is_finite()) {
                        return Err(bad("its bounds are not finite"));
                    }
                    if min > max {
                        return Err(bad(&format!("its bounds are not ordered ({min} > {max})")));
                    }
                    if log && min <= 0.0 {
                        return Err(bad("a log range needs positive bounds"));
                    }
                }
                Domain::Choice { n } => {
                    if n == 0 {
                        return Err(bad("it has no choices"));
                    }
                }
            }
        }
        Ok(Space { dims })
    }

    /// The dimensions, in order.
    pub fn dims(&self) -> &[Dimension] {
        &self.dims
    }

    /// A point drawn uniformly (log-uniformly along `log` dimensions).
    pub fn sample(&self, rng: &mut impl RngCore) -> Vec<Coord> {
        self.dims
            .iter()
            .map(|d| d.domain.from_unit(uniform(rng)))
            .collect()
    }

    /// Whether `point` lies in the space (one coordinate of the right kind per dimension,
    /// within its domain).
    pub fn contains(&self, point: &[Coord]) -> bool {
        point.len() == self.dims.len()
            && self
                .dims
                .iter()
                .zip(point)
                .all(|(d, c)| d.domain.contains(c))
    }
}

impl Domain {
    /// Integers `min..=max`, uniform.
    pub fn int(min: i64, max: i64) -> Domain {
        Domain::Int {
            min,
            max,
            log: false,
        }
    }

    /// Integers `min..=max`, uniform in the logarithm.
    pub fn log_int(min: i64, max: i64) -> Domain {
        Domain::Int {
            min,
            max,
            log: true,
        }
    }

    /// Reals in `[min, max]`, uniform in the logarithm.
    pub fn log_float(min: f64, max: f64) -> Domain {
        Domain::Float {
            min,
            max,
            log: true,
        }
    }

    /// The transform of a numeric value before the linear map onto [0, 1].
    fn t(&self, x: f64) -> f64 {
        match self {
            Domain::Int { log: true, .. } | Domain::Float { log: true, .. } => x.ln(),
            _ => x,
        }
    }

    fn t_inv(&self, y: f64) -> f64 {
        match self {
            Domain::Int { log: true, .. } | Domain::Float { log: true, .. } => y.exp(),
            _ => y,
        }
    }

    /// The transformed bounds of a numeric domain (ints widened by half a step each side).
    fn bounds(&self) -> (f64, f64) {
        match *self {
            Domain::Int { min, max, .. } => (self.t(min as f64 - 0.5), self.t(max as f64 + 0.5)),
            Domain::Float { min, max, .. } => (self.t(min), self.t(max)),
            Domain::Choice { n } => (0.0, n as f64),
        }
    }

    /// Where a numeric value lies in [0, 1] (0.5 for a domain of one value).
    pub fn to_unit(&self, x: f64) -> f64 {
        let (lo, hi) = self.bounds();
        if hi > lo {
            ((self.t(x) - lo) / (hi - lo)).clamp(0.0, 1.0)
        } else {
            0.5
        }
    }

    /// The value at `u` in [0, 1]: ints rounded, choices by index; always inside the domain.
    pub fn from_unit(&self, u: f64) -> Coord {
        let u = if u.is_finite() {
            u.clamp(0.0, 1.0)
        } else {
            0.5
        };
        match *self {
            Domain::Int { min, max, .. } => {
                let (lo, hi) = self.bounds();
                let x = self.t_inv(lo + u * (hi - lo)).round();
                Coord::Int((x as i64).clamp(min, max))
            }
            Domain::Float { min, max, .. } => {
                let (lo, hi) = self.bounds();
                Coord::Float(self.t_inv(lo + u * (hi - lo)).clamp(min, max))
            }
            Domain::Choice { n } => Coord::Choice(((u * n as f64) as usize).min(n - 1)),
        }
    }

    /// The unit-interval bin of the integer `k` of an int domain.
    pub fn int_bin(&self, k: i64) -> (f64, f64) {
        (self.to_unit(k as f64 - 0.5), self.to_unit(k as f64 + 0.5))
    }

    /// Whether `c` is a value of this domain.
    pub fn contains(&self, c: &Coord) -> bool {
        match (self, c) {
            (Domain::Int { min, max, .. }, Coord::Int(x)) => min <= x && x <= max,
            (Domain::Float { min, max, .. }, Coord::Float(x)) => *min <= *x && *x <= *max,
            (Domain::Choice { n }, Coord::Choice(i)) => i < n,
            _ => false,
        }
    }
}

/// Uniform in [0, 1).
pub fn uniform(rng: &mut impl RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A standard normal draw (Box–Muller).
pub fn normal(rng: &mut impl RngCore) -> f64 {
    let u1 = 1.0 - uniform(rng); // (0, 1]: the logarithm is finite
    let u2 = uniform(rng);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
