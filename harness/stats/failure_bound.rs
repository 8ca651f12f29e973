//! How small a failure rate a run could have missed: with `k` failures in `n`
//! requests, the observed rate `k / n` and its one-sided 95% upper bound, the
//! Clopper-Pearson (exact binomial) bound: the `p` with `P(X ≤ k | n, p) = 0.05`.
//!
//! 0 failures in 600 requests is no proof of a 0% failure rate: a true rate up to
//! 0.50% would show 0 failures in 600 requests more than 5% of the time. With
//! `k = 0` the bound has a closed form, `1 - 0.05^(1/n)` (about `3 / n`); with `k > 0`
//! it is found by bisection on the binomial CDF, summed in log space by the
//! recurrence `P(X = i + 1) = P(X = i) · (n - i) / (i + 1) · p / (1 - p)`.
//!
//! The same bound read the other way gives the lower bound of a success rate
//! ([`lower95`]): `compare --repeat` uses it for a scenario's pass rate.

use std::fmt;

/// The confidence of the bounds: 95%, one-sided.
pub const CONFIDENCE: f64 = 0.95;

/// `k` failures in `n` requests: the observed rate and its one-sided 95% upper bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureBound {
    /// Failures (`k`).
    pub failed: u64,
    /// Requests that ended (`n`), failures included.
    pub requests: u64,
}

impl FailureBound {
    /// `failed` of `requests` (`failed` is capped at `requests`).
    pub fn new(failed: u64, requests: u64) -> FailureBound {
        FailureBound {
            failed: failed.min(requests),
            requests,
        }
    }

    /// `k / n`; none without requests.
    pub fn rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.failed as f64 / self.requests as f64)
    }

    /// The one-sided 95% upper bound of the failure rate; none without requests.
    pub fn upper95(&self) -> Option<f64> {
        upper95(self.failed, self.requests)
    }
}

/// `0 of 612 (≤ 0.49% at 95%)`, `12 of 3000 = 0.40% (≤ 0.64% at 95%)`, or
/// `no requests: no bound` (the bound is rounded up, the rate to nearest).
impl fmt::Display for FailureBound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Some(rate), Some(upper)) = (self.rate(), self.upper95()) else {
            return write!(f, "no requests: no bound");
        };
        write!(f, "{} of {}", self.failed, self.requests)?;
        if self.failed > 0 {
            write!(f, " = {}", percent(rate, Round::Nearest))?;
        }
        write!(f, " (≤ {} at 95%)", percent(upper, Round::Up))
    }
}

/// The one-sided 95% Clopper-Pearson upper bound of a rate seen `k` times in `n`
/// trials: the `p` with `P(X ≤ k | n, p) = 0.05`. None for `n = 0` (nothing was
/// observed, nothing is bounded); 1 for `k ≥ n`.
pub fn upper95(k: u64, n: u64) -> Option<f64> {
    const ALPHA: f64 = 1.0 - CONFIDENCE;
    if n == 0 {
        return None;
    }
    if k >= n {
        return Some(1.0);
    }
    if k == 0 {
        // 1 - α^(1/n), without the cancellation of 1 - (a number near 1).
        return Some(-(ALPHA.ln() / n as f64).exp_m1());
    }
    // P(X ≤ k) falls as p rises; the bound lies above k / n.
    let (mut lo, mut hi) = (k as f64 / n as f64, 1.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if hi - lo <= 1e-13 * hi {
            break;
        }
        if binomial_cdf(k, n, mid) > ALPHA {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(0.5 * (lo + hi))
}

/// The one-sided 95% Clopper-Pearson lower bound of a success rate seen `s` times
/// in `n` trials (`1 - upper95(n - s, n)`). None for `n = 0`.
pub fn lower95(s: u64, n: u64) -> Option<f64> {
    upper95(n - s.min(n), n).map(|u| 1.0 - u)
}

/// `P(X ≤ k)` for `X ~ Binomial(n, p)`, summed in log space. The shorter tail is
/// summed: `P(X ≤ k) = 1 - P(Y ≤ n - k - 1)` with `Y ~ Binomial(n, 1 - p)`.
pub fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n || p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return 0.0;
    }
    if k > n / 2 {
        return 1.0 - lower_tail(n - k - 1, n, 1.0 - p);
    }
    lower_tail(k, n, p)
}

/// `Σ_{i ≤ k} P(X = i)`, `0 < p < 1`, `k < n`: each term from the one before it,
/// in logs, added by log-sum-exp (no term under- or overflows on its own).
fn lower_tail(k: u64, n: u64, p: f64) -> f64 {
    let (ln_p, ln_q) = (p.ln(), (-p).ln_1p());
    let nf = n as f64;
    // ln P(X = 0) = n ln(1 - p); the sum is exp(max) · scaled.
    let mut term = nf * ln_q;
    let (mut max, mut scaled) = (term, 1.0_f64);
    for i in 0..k {
        let i = i as f64;
        term += (nf - i).ln() - (i + 1.0).ln() + ln_p - ln_q;
        if term > max {
            scaled = scaled * (max - term).exp() + 1.0;
            max = term;
        } else {
            scaled += (term - max).exp();
        }
    }
    (max + scaled.ln()).exp().min(1.0)
}

/// Which way [`percent`] rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// To nearest: an observed rate.
    Nearest,
    /// Up: an upper bound is never shown below its value.
    Up,
    /// Down: a lower bound is never shown above its value.
    Down,
}

/// A rate as a percent with two significant digits (at least up to 10%: `0.49%`,
/// `4.7%`, `35%`), rounded as `round` says.
pub fn percent(rate: f64, round: Round) -> String {
    let v = rate * 100.0;
    if v <= 0.0 {
        return "0%".into();
    }
    let decimals = |v: f64| {
        if v >= 10.0 {
            0
        } else {
            (1.0 - v.log10().floor()).max(1.0) as i32
        }
    };
    let scale = 10f64.powi(decimals(v));
    // Ceil or floor what is not already on the grid (1e-9: float noise is not a digit).
    let shown = match round {
        Round::Nearest => (v * scale).round(),
        Round::Up => (v * scale - 1e-9).ceil(),
        Round::Down => (v * scale + 1e-9).floor(),
    } / scale;
    // Rounding may reach the next power of ten (0.0999 → 0.10, not 0.100).
    format!("{shown:.prec$}%", prec = decimals(shown) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values: the p with P(X ≤ k | n, p) = 0.05, by bisection (200 steps)
    /// on the exact binomial CDF in Python (`math.comb`, `decimal` at 60 digits;
    /// scipy was not installed). Recompute with:
    ///
    /// ```text
    /// from decimal import Decimal as D, getcontext; import math; getcontext().prec = 60
    /// cdf = lambda k, n, p: sum(D(math.comb(n, i)) * p**i * (1 - p)**(n - i) for i in range(k + 1))
    /// def upper(k, n):
    ///     lo, hi = D(0), D(1)
    ///     for _ in range(200):
    ///         mid = (lo + hi) / 2
    ///         lo, hi = (mid, hi) if cdf(k, n, mid) > D("0.05") else (lo, mid)
    ///     return float(lo)
    /// ```
    const REFERENCE: &[(u64, u64, f64)] = &[
        // (n, k, bound)
        (600, 0, 0.004_980_443_380_361_348_5),
        (612, 0, 0.004_883_026_448_540_261),
        (1, 0, 0.95),
        (10, 0, 0.258_865_550_893_052_3),
        (100, 1, 0.046_559_811_453_538_95),
        (1000, 10, 0.016_903_175_120_562_504),
        (3000, 30, 0.013_539_307_620_630_348),
        (50_000, 3, 0.000_155_065_759_053_205_54),
        (3, 1, 0.864_649_637_828_416_2),
        (20, 1, 0.216_106_164_206_847_33),
        (10, 5, 0.777_558_898_991_870_9),
        (10, 9, 0.994_883_803_108_176_3),
        (20, 19, 0.997_438_621_223_469_7),
        (5, 4, 0.989_793_781_686_988_5),
    ];

    #[test]
    fn failure_bound_matches_independent_reference_values() {
        for &(n, k, want) in REFERENCE {
            let got = upper95(k, n).unwrap();
            assert!(
                ((got - want) / want).abs() < 1e-9,
                "n={n} k={k}: {got} != {want}"
            );
        }
    }

    #[test]
    fn failure_bound_edges() {
        assert_eq!(upper95(0, 0), None, "nothing observed, nothing bounded");
        assert_eq!(FailureBound::new(0, 0).rate(), None);
        assert_eq!(upper95(1, 1), Some(1.0));
        assert_eq!(upper95(7, 7), Some(1.0));
        assert_eq!(FailureBound::new(9, 7), FailureBound::new(7, 7));
        // k = 0: the closed form, about 3 / n (the rule of three).
        for n in [30_u64, 600, 10_000, 10_000_000] {
            let u = upper95(0, n).unwrap();
            assert!((u * n as f64 - 3.0).abs() < 0.2, "n={n}: {u}");
            assert!((binomial_cdf(0, n, u) - 0.05).abs() < 1e-12);
        }
        assert_eq!(lower95(0, 0), None);
        assert_eq!(lower95(0, 5), Some(0.0));
        // 20 passes of 20: at least 0.05^(1/20) = 86.1%.
        assert!((lower95(20, 20).unwrap() - 0.05_f64.powf(1.0 / 20.0)).abs() < 1e-12);
        assert!((lower95(2, 3).unwrap() - (1.0 - 0.864_649_637_828_416_2)).abs() < 1e-9);
    }

    #[test]
    fn failure_bound_is_where_the_cdf_is_five_percent_and_moves_the_right_way() {
        for n in [2_u64, 17, 250, 4000, 20_000] {
            let mut last = 0.0;
            let mut ks = [0, 1, 2, n / 3, n / 2, n / 2 + 1, n - 1].map(|k| k.min(n - 1));
            ks.sort_unstable();
            for k in ks {
                let u = upper95(k, n).unwrap();
                assert!(u > k as f64 / n as f64 && u <= 1.0, "n={n} k={k}: {u}");
                assert!(u >= last, "n={n} k={k}: rises with k");
                last = u;
                assert!(
                    (binomial_cdf(k, n, u) - 0.05).abs() < 1e-9,
                    "n={n} k={k}: {}",
                    binomial_cdf(k, n, u)
                );
                // More requests with the same rate bound it tighter.
                assert!(upper95(k * 10, n * 10).unwrap() < u, "n={n} k={k}");
            }
        }
    }

    #[test]
    fn binomial_cdf_against_direct_sums() {
        // Small n: the plain sum of C(n, i) p^i q^(n-i) in f64.
        fn direct(k: u64, n: u64, p: f64) -> f64 {
            let mut c = 1.0; // C(n, i)
            let mut sum = 0.0;
            for i in 0..=k {
                sum += c * p.powi(i as i32) * (1.0 - p).powi((n - i) as i32);
                c = c * (n - i) as f64 / (i + 1) as f64;
            }
            sum
        }
        for n in [1_u64, 5, 12, 40] {
            for k in 0..n {
                for p in [0.001, 0.1, 0.5, 0.77, 0.999] {
                    let (a, b) = (binomial_cdf(k, n, p), direct(k, n, p));
                    assert!((a - b).abs() < 1e-12, "n={n} k={k} p={p}: {a} vs {b}");
                }
            }
        }
        assert_eq!(binomial_cdf(3, 3, 0.5), 1.0);
        assert_eq!(binomial_cdf(0, 3, 0.0), 1.0);
        assert_eq!(binomial_cdf(1, 3, 1.0), 0.0);
    }

    #[test]
    fn failure_bound_display() {
        assert_eq!(
            FailureBound::new(0, 612).to_string(),
            "0 of 612 (≤ 0.49% at 95%)"
        );
        assert_eq!(
            FailureBound::new(0, 600).to_string(),
            "0 of 600 (≤ 0.50% at 95%)"
        );
        assert_eq!(
            FailureBound::new(30, 3000).to_string(),
            "30 of 3000 = 1.0% (≤ 1.4% at 95%)"
        );
        assert_eq!(
            FailureBound::new(5, 5).to_string(),
            "5 of 5 = 100% (≤ 100% at 95%)"
        );
        assert_eq!(FailureBound::new(0, 0).to_string(), "no requests: no bound");
        assert_eq!(percent(0.000_155_07, Round::Up), "0.016%");
        assert_eq!(percent(0.35, Round::Nearest), "35%");
        assert_eq!(percent(0.02, Round::Up), "2.0%");
        assert_eq!(percent(0.0, Round::Up), "0%");
        assert_eq!(percent(0.000_998_5, Round::Up), "0.10%");
        assert_eq!(percent(0.0996, Round::Nearest), "10%");
        assert_eq!(percent(0.860_891, Round::Down), "86%");
        assert_eq!(percent(0.135_35, Round::Down), "13%");
        assert_eq!(percent(0.05, Round::Down), "5.0%");
    }
}
