//! Max gap: the longest interval with no successful response.
//!
//! A bitmap of fixed-width time slots (100 µs by default) marks the slots in which
//! at least one `ok` response completed; the longest run of empty slots between
//! two marked ones is the gap. One bit per slot: a 10-minute run costs 750 KB,
//! whatever the request rate, and the result is exact to one slot.

/// Marks the time slots that saw a successful response.
#[derive(Debug, Clone)]
pub struct GapTracker {
    slot_ns: u64,
    bits: Vec<u64>,
}

/// The longest stretch with no successful response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gap {
    /// Start of the gap (end of the last ok slot before it), ns since load start.
    pub start_ns: u64,
    /// Length in ns (a multiple of the slot width; 0 if fewer than two ok slots).
    pub len_ns: u64,
}

impl GapTracker {
    /// A tracker with slots of `slot_ns` nanoseconds.
    pub fn new(slot_ns: u64) -> GapTracker {
        GapTracker {
            slot_ns: slot_ns.max(1),
            bits: Vec::new(),
        }
    }

    /// Marks an ok response completed at `t_ns`.
    #[inline]
    pub fn mark(&mut self, t_ns: u64) {
        let slot = (t_ns / self.slot_ns) as usize;
        let word = slot / 64;
        if word >= self.bits.len() {
            self.bits.resize(word + 1 + word / 4, 0);
        }
        self.bits[word] |= 1 << (slot % 64);
    }

    /// The longest run of empty slots that lies between two marked slots,
    /// considering only slots that start in `[from_ns, to_ns)`.
    pub fn max_gap(&self, from_ns: u64, to_ns: u64) -> Gap {
        let first = (from_ns / self.slot_ns) as usize;
        let last = ((to_ns / self.slot_ns) as usize).min(self.bits.len() * 64);
        let mut prev: Option<usize> = None;
        let mut best = Gap::default();
        for slot in first..last {
            if self.bits[slot / 64] & (1 << (slot % 64)) != 0 {
                if let Some(p) = prev {
                    let len = (slot - p - 1) as u64 * self.slot_ns;
                    if len > best.len_ns {
                        best = Gap {
                            start_ns: (p as u64 + 1) * self.slot_ns,
                            len_ns: len,
                        };
                    }
                }
                prev = Some(slot);
            }
        }
        best
    }

    /// Like [`max_gap`](Self::max_gap), but a stretch from the last marked slot to
    /// `load_end_ns` (when requests were still being sent and none succeeded) counts
    /// too: an outage that lasts to the end of the load is a gap, not nothing.
    pub fn max_gap_to_end(&self, from_ns: u64, to_ns: u64, load_end_ns: u64) -> Gap {
        let best = self.max_gap(from_ns, to_ns);
        let first = (from_ns / self.slot_ns) as usize;
        let last = ((to_ns / self.slot_ns) as usize).min(self.bits.len() * 64);
        let Some(p) = (first..last)
            .rev()
            .find(|&slot| self.bits[slot / 64] & (1 << (slot % 64)) != 0)
        else {
            return best;
        };
        let start_ns = (p as u64 + 1) * self.slot_ns;
        let trailing = load_end_ns.min(to_ns).saturating_sub(start_ns);
        if trailing > best.len_ns {
            Gap {
                start_ns,
                len_ns: trailing,
            }
        } else {
            best
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_longest_hole() {
        let mut g = GapTracker::new(100_000);
        for t in (0..1_000_000_000u64).step_by(1_000_000) {
            if !(300_000_000..550_000_000).contains(&t) {
                g.mark(t);
            }
        }
        let gap = g.max_gap(0, u64::MAX);
        // Last ok at 299 ms, next at 550 ms: 250.9 ms of empty slots.
        assert_eq!(gap.start_ns, 299_100_000);
        assert_eq!(gap.len_ns, 250_900_000);
        assert_eq!(g.max_gap(600_000_000, u64::MAX).len_ns, 900_000);
    }

    #[test]
    fn an_outage_to_the_end_of_the_load_is_a_gap() {
        let mut g = GapTracker::new(100_000);
        for t in (0..300_000_000u64).step_by(1_000_000) {
            g.mark(t);
        }
        // Nothing succeeded after 299 ms; the load ran to 1 s.
        assert_eq!(g.max_gap(0, u64::MAX).len_ns, 900_000);
        let gap = g.max_gap_to_end(0, u64::MAX, 1_000_000_000);
        assert_eq!((gap.start_ns, gap.len_ns), (299_100_000, 700_900_000));
        // Responses completing after the load stopped sending leave no trailing gap.
        assert_eq!(g.max_gap_to_end(0, u64::MAX, 250_000_000).len_ns, 900_000);
    }

    #[test]
    fn no_gap_without_two_marks() {
        let mut g = GapTracker::new(100_000);
        assert_eq!(g.max_gap(0, u64::MAX), Gap::default());
        g.mark(5);
        assert_eq!(g.max_gap(0, u64::MAX).len_ns, 0);
    }
}
