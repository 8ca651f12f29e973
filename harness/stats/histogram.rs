//! Latency histograms: dense while being written, sparse once a window is closed.
//!
//! A dense HdrHistogram over 1 µs–100 s at 3 significant digits is ~70 KB; a closed
//! 100 ms window typically has a few hundred distinct buckets. Keeping closed
//! windows sparse is what keeps memory bounded on long runs without losing the
//! mergeability of HdrHistograms.

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

/// A closed window's histogram: (value, count) pairs of the non-empty buckets.
#[derive(Debug, Clone, Default)]
pub struct Sparse {
    buckets: Vec<(u64, u32)>,
}

impl Sparse {
    /// Compacts a dense histogram.
    pub fn from_dense(h: &Histogram<u32>) -> Sparse {
        Sparse {
            buckets: h
                .iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect(),
        }
    }

    /// Adds every sample into `into`.
    pub fn add_to(&self, into: &mut Histogram<u32>) {
        for &(v, c) in &self.buckets {
            let _ = into.record_n(v, c);
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<(u64, u32)>()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_round_trip_keeps_percentiles() {
        let mut h = new_dense();
        for i in 1..=10_000u64 {
            record(&mut h, i * 7);
        }
        let s = Sparse::from_dense(&h);
        let mut back = new_dense();
        s.add_to(&mut back);
        assert_eq!(Percentiles::of(&h), Percentiles::of(&back));
        assert!(s.heap_bytes() < 200 * 1024);
    }

    #[test]
    fn clamps_out_of_range() {
        let mut h = new_dense();
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        assert_eq!(h.len(), 2);
    }
}
