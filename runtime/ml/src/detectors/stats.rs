//! Statistics the detectors share: the two-sample Kolmogorov–Smirnov test, binomial tails,
//! quantiles.

/// The two-sample KS statistic `D = sup |F_a − F_b|` of two **sorted** samples.
pub fn ks_statistic(a: &[f32], b: &[f32]) -> f64 {
    let (n, m) = (a.len(), b.len());
    if n == 0 || m == 0 {
        return 0.0;
    }
    let (mut i, mut j) = (0usize, 0usize);
    let mut d = 0.0f64;
    while i < n && j < m {
        let x = if a[i] <= b[j] { a[i] } else { b[j] };
        while i < n && a[i] <= x {
            i += 1;
        }
        while j < m && b[j] <= x {
            j += 1;
        }
        let gap = (i as f64 / n as f64 - j as f64 / m as f64).abs();
        if gap > d {
            d = gap;
        }
    }
    d
}

/// The asymptotic p-value of a two-sample KS statistic `d` for sample sizes `n` and `m`
/// (Kolmogorov's distribution with Stephens' small-sample correction, as in Numerical Recipes).
pub fn ks_p_value(d: f64, n: usize, m: usize) -> f64 {
    if n == 0 || m == 0 {
        return 1.0;
    }
    let en = ((n * m) as f64 / (n + m) as f64).sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    kolmogorov_q(lambda)
}

/// `Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} exp(−2 j² λ²)`, clamped to [0, 1].
fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda < 1e-3 {
        return 1.0;
    }
    let a2 = -2.0 * lambda * lambda;
    let mut sum = 0.0;
    let mut sign = 1.0;
    let mut prev = 0.0f64;
    for j in 1..=100 {
        let j = j as f64;
        let term = sign * 2.0 * (a2 * j * j).exp();
        sum += term;
        if term.abs() <= 1e-10 * prev.abs() || term.abs() <= 1e-300 {
            return sum.clamp(0.0, 1.0);
        }
        prev = term;
        sign = -sign;
    }
    // No convergence happens only for tiny λ, where the p-value is 1.
    1.0
}

/// `P(X ≥ k)` for `X ~ Binomial(n, p)`, summed in log space (exact; fine for n up to 10⁶).
pub fn binomial_upper_tail(k: usize, n: usize, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    // log pmf(j) by recurrence from log pmf(0) = n ln(1-p).
    let mut log_pmf = n as f64 * lq;
    let mut terms = Vec::with_capacity(n - k + 1);
    for j in 1..=n {
        log_pmf += ((n - j + 1) as f64).ln() - (j as f64).ln() + lp - lq;
        if j >= k {
            terms.push(log_pmf);
        }
    }
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return 0.0;
    }
    let s: f64 = terms.iter().map(|t| (t - max).exp()).sum();
    (max + s.ln()).exp().clamp(0.0, 1.0)
}

/// The `q` quantile of `values` (linear interpolation between order statistics); `None` when
/// empty.
pub fn quantile(values: &[f32], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v: Vec<f32> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (f64::from(v[lo]), f64::from(v[hi.min(v.len() - 1)]));
    Some(a + (b - a) * (pos - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_basics() {
        let a: Vec<f32> = (0..100).map(|i| i as f32).collect();
        assert_eq!(ks_statistic(&a, &a), 0.0);
        let b: Vec<f32> = (0..100).map(|i| i as f32 + 1000.0).collect();
        assert_eq!(ks_statistic(&a, &b), 1.0);
        assert!(ks_p_value(1.0, 100, 100) < 1e-10);
        assert!(ks_p_value(0.05, 100, 100) > 0.99);
        // D = 0.2 with n = m = 100: scipy gives p ≈ 0.0314 (exact) / 0.0366 (asymptotic).
        let p = ks_p_value(0.2, 100, 100);
        assert!((0.025..0.045).contains(&p), "{p}");
    }

    #[test]
    fn binomial_tail() {
        // P(X >= 3), X ~ Bin(10, 0.1) = 0.0701908
        assert!((binomial_upper_tail(3, 10, 0.1) - 0.070_190_8).abs() < 1e-6);
        assert_eq!(binomial_upper_tail(0, 10, 0.1), 1.0);
        assert!(binomial_upper_tail(500, 1000, 0.01) < 1e-100);
        assert!(quantile(&[1.0, 2.0, 3.0], 0.5) == Some(2.0));
    }
}
