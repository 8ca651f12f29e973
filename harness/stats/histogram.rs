//! Latency histograms: HdrHistograms over 1 µs–100 s at 3 significant digits
//! (about 72 KB each, whatever the count), their percentiles, and percentile curves.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency recorded, in microseconds (100 s); larger values are clamped.
pub const MAX_MICROS: u64 = 100_000_000;

/// A new dense histogram with the crate-wide range and precision.
pub fn new_dense() -> Histogram<u32> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("static histogram bounds are valid")
}

/// Records `micros` (clamped into range).
#[inline]
pub fn record(h: &mut Histogram<u32>, micros: u64) {
    // saturating: u32 counts cannot overflow in a 100 ms window in practice.
    h.saturating_record(micros.clamp(1, MAX_MICROS));
}

/// Percentiles of one histogram, in milliseconds (fractional), as reported.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    /// Samples in the histogram.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Percentiles {
    /// Reads the percentiles of `h` (microsecond values) as milliseconds.
    pub fn of(h: &Histogram<u32>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// One point of a percentile curve: the latency at a percentile.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct CurvePoint {
    /// Percentile, 0 to 99.999.
    pub percentile: f64,
    /// Latency at that percentile, milliseconds.
    pub ms: f64,
}

/// Points per decade of `1/(1-percentile)` on a percentile curve.
pub const CURVE_POINTS_PER_DECADE: u32 = 10;
/// Decades of `1/(1-percentile)` a curve covers: 0% up to 99.999%.
pub const CURVE_DECADES: u32 = 5;

/// The latency at percentiles from 0 to 99.999, spaced evenly on a log scale of
/// `1/(1-percentile)` (as HdrHistogram plots them). Empty for an empty histogram.
pub fn percentile_curve(h: &Histogram<u32>) -> Vec<CurvePoint> {
    if h.is_empty() {
        return Vec::new();
    }
    (0..=CURVE_DECADES * CURVE_POINTS_PER_DECADE)
        .map(|i| {
            let x = f64::from(i) / f64::from(CURVE_POINTS_PER_DECADE);
            // Rounded so 90, 99, 99.9 ... come out exact.
            let percentile = ((1.0 - 10f64.powf(-x)) * 100.0 * 1e6).round() / 1e6;
            CurvePoint {
                percentile,
                ms: h.value_at_quantile(percentile / 100.0) as f64 / 1000.0,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_curve_is_log_spaced_and_monotonic() {
        let mut h = new_dense();
        for i in 1..=100_000u64 {
            record(&mut h, i);
        }
        let c = percentile_curve(&h);
        assert_eq!(c.len(), 51);
        assert_eq!(c[0].percentile, 0.0);
        assert_eq!(c[10].percentile, 90.0);
        assert_eq!(c[20].percentile, 99.0);
        assert_eq!(c[50].percentile, 99.999);
        assert!(c
            .windows(2)
            .all(|w| w[0].ms <= w[1].ms && w[0].percentile < w[1].percentile));
        assert!((c[20].ms - 99.0).abs() < 0.1, "{}", c[20].ms);
        assert!(percentile_curve(&new_dense()).is_empty());
    }

    #[test]
    fn clamps_out_of_range() {
        let mut h = new_dense();
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        assert_eq!(h.len(), 2);
    }
}
