//! What load a user may ask for: the bounds of the rate and the connections (one
//! check for `zdt-check load`, `compare` and the scenario keys), the open-file limit
//! the connections must fit in, and the warning for a rate the connections cannot carry.

/// The highest open-loop rate accepted, in requests/s (the load generator tops out
/// well below it on one machine; see docs/benchmarks.md).
pub const MAX_RATE: f64 = 1_000_000.0;

/// The most connections accepted. Each costs a file descriptor and about 6 KB of the
/// load generator's memory (measured: peak RSS 16.8 MB with `-c 1000`, 70.7 MB with
/// `-c 10000`; docs/guide/load-generator.md), so 50 000 take about 300 MB.
pub const MAX_CONNECTIONS: usize = 50_000;

/// File descriptors kept for the harness itself (runtime, timers, logs, pipes to
/// children) on top of one per connection.
pub const FD_HEADROOM: u64 = 64;

/// Above this many requests/s per connection, a request would have to complete in
/// under 1 ms for the connections to carry the rate.
pub const RATE_PER_CONNECTION: f64 = 1000.0;

/// What is wrong with an open-loop `rate`, if anything: it must be a finite number
/// of requests/s, more than 0 and at most [`MAX_RATE`].
pub fn rate_problem(rate: f64) -> Option<String> {
    if !(rate.is_finite() && rate > 0.0) {
        Some(format!(
            "{rate} is not a rate: give requests/s, more than 0 and at most {MAX_RATE}"
        ))
    } else if rate > MAX_RATE {
        Some(format!(
            "{rate} requests/s is more than the load generator can send: at most {MAX_RATE}"
        ))
    } else {
        None
    }
}

/// What is wrong with `connections`, if anything: from 1 to [`MAX_CONNECTIONS`], and
/// (one file descriptor each) within the soft open-file limit `nofile` less
/// [`FD_HEADROOM`].
pub fn connections_problem(connections: usize, nofile: Option<u64>) -> Option<String> {
    if !(1..=MAX_CONNECTIONS).contains(&connections) {
        return Some(format!(
            "{connections} connections: must be between 1 and {MAX_CONNECTIONS}"
        ));
    }
    let nofile = nofile?;
    let fit = nofile.saturating_sub(FD_HEADROOM);
    (connections as u64 > fit).then(|| {
        format!(
            "{connections} connections do not fit the open-file limit (ulimit -n is {nofile}; \
             one file per connection and {FD_HEADROOM} for zdt-check itself: at most {fit}); \
             raise it with `ulimit -n` or use fewer connections"
        )
    })
}

/// A warning for an open-loop `rate` the `connections` can only carry if every
/// request completes in under 1 ms (more than [`RATE_PER_CONNECTION`] requests/s each):
/// the rest would wait in the queue and end as late or hung.
pub fn rate_warning(rate: f64, connections: usize) -> Option<String> {
    let carried = connections as f64 * RATE_PER_CONNECTION;
    (rate > carried).then(|| {
        format!(
            "a rate of {rate} requests/s over {connections} connections needs each to complete \
             a request every {:.0} µs; at 1 ms a request they carry at most {carried} requests/s, \
             and the rest will be late or hung (use more connections or a lower rate)",
            connections as f64 / rate * 1e6
        )
    })
}

/// The soft limit on open files (`RLIMIT_NOFILE`, `ulimit -n`), if it can be read
/// (unlimited is `u64::MAX`).
pub fn nofile_soft_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we own.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0).then_some(r.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_bounded() {
        assert!(rate_problem(500.0).is_none());
        assert!(rate_problem(MAX_RATE).is_none());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(
                rate_problem(bad).unwrap().contains("is not a rate"),
                "{bad}"
            );
        }
        assert!(rate_problem(1e9).unwrap().contains("at most 1000000"));
    }

    #[test]
    fn connections_are_bounded_by_the_fd_limit() {
        assert!(connections_problem(64, Some(1024)).is_none());
        assert!(connections_problem(960, Some(1024)).is_none());
        let e = connections_problem(961, Some(1024)).unwrap();
        assert!(
            e.contains("ulimit -n is 1024") && e.contains("at most 960"),
            "{e}"
        );
        assert!(connections_problem(0, None)
            .unwrap()
            .contains("between 1 and 50000"));
        assert!(connections_problem(50_001, None).is_some());
        assert!(connections_problem(50_000, None).is_none());
        assert!(connections_problem(10, Some(10)).is_some());
    }

    #[test]
    fn a_rate_beyond_the_connections_is_warned_about() {
        assert!(rate_warning(64_000.0, 64).is_none());
        let w = rate_warning(1e6, 64).unwrap();
        assert!(
            w.contains("every 64 µs") && w.contains("at most 64000 requests/s"),
            "{w}"
        );
    }
}
