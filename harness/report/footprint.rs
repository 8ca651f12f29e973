//! The verifier's own footprint: CPU seconds the zdt-check process itself used
//! while the load ran, as a share of one core.
//!
//! The load generator runs inside the zdt-check process; on a small machine (a
//! 2-core CI runner) every cycle it spends is taken from the app under test. The
//! figure is `getrusage(RUSAGE_SELF)` (all threads of this process; children, hence
//! the app servers, excluded) from load start to load finish, over the load's wall
//! time. Above [`MAX_CPU_SHARE`] of one core the report carries a warning.

use std::fmt::Write;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Above this share of one core (CPU seconds per wall second) while the load ran,
/// the report warns that the verifier competed with the app for CPU.
pub const MAX_CPU_SHARE: f64 = 0.5;

/// What the harness process used while the load ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Footprint {
    /// User CPU seconds (all threads of the zdt-check process).
    pub cpu_user_s: f64,
    /// System CPU seconds.
    pub cpu_sys_s: f64,
    /// Wall seconds from load start to load finish.
    pub wall_s: f64,
    /// (user + system) / wall: 1.0 is one core busy the whole time.
    pub share_of_core: f64,
    /// Set when `share_of_core` exceeded the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl Footprint {
    /// The footprint of `user` + `sys` CPU over `wall`, warned about above `max_share`.
    pub fn new(user: Duration, sys: Duration, wall: Duration, max_share: f64) -> Footprint {
        let (cpu_user_s, cpu_sys_s, wall_s) =
            (user.as_secs_f64(), sys.as_secs_f64(), wall.as_secs_f64());
        let share_of_core = if wall_s > 0.0 {
            (cpu_user_s + cpu_sys_s) / wall_s
        } else {
            0.0
        };
        let warning = (share_of_core > max_share).then(|| {
            format!(
                "the verifier used {:.0}% of one core while the load ran (more than {:.0}%): \
                 on a machine with few cores it takes CPU from the app under test; \
                 lower the rate or connections, or run the load from another machine",
                share_of_core * 100.0,
                max_share * 100.0
            )
        });
        Footprint {
            cpu_user_s,
            cpu_sys_s,
            wall_s,
            share_of_core,
            warning,
        }
    }

    /// CPU seconds, user + system.
    pub fn cpu_s(&self) -> f64 {
        self.cpu_user_s + self.cpu_sys_s
    }

    /// The one-line summary: `verifier: 0.41 s CPU over 5.2 s of load (8% of one core)`.
    pub fn line(&self) -> String {
        let mut s = format!(
            "verifier: {:.2} s CPU over {:.1} s of load ({:.0}% of one core)",
            self.cpu_s(),
            self.wall_s,
            self.share_of_core * 100.0
        );
        if let Some(w) = &self.warning {
            let _ = write!(s, "\nwarning: {w}");
        }
        s
    }
}

/// A starting point: the process's CPU times and the wall clock, taken when the
/// load starts; [`CpuMark::footprint`] when it has finished.
#[derive(Debug, Clone, Copy)]
pub struct CpuMark {
    user: Duration,
    sys: Duration,
    at: Instant,
}

impl CpuMark {
    /// Now.
    pub fn now() -> CpuMark {
        let (user, sys) = self_cpu();
        CpuMark {
            user,
            sys,
            at: Instant::now(),
        }
    }

    /// What the process used since the mark, warned about above [`MAX_CPU_SHARE`].
    pub fn footprint(&self) -> Footprint {
        let end = CpuMark::now();
        Footprint::new(
            end.user.saturating_sub(self.user),
            end.sys.saturating_sub(self.sys),
            end.at.duration_since(self.at),
            MAX_CPU_SHARE,
        )
    }
}

/// User and system CPU time of this process (all threads, no children).
fn self_cpu() -> (Duration, Duration) {
    // SAFETY: getrusage writes a plain C struct we own; RUSAGE_SELF is always valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (Duration::ZERO, Duration::ZERO);
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footprint_share_and_warning() {
        let ms = Duration::from_millis;
        let f = Footprint::new(ms(300), ms(110), ms(5200), MAX_CPU_SHARE);
        assert!((f.share_of_core - 0.41 / 5.2).abs() < 1e-9);
        assert!(f.warning.is_none());
        assert_eq!(
            f.line(),
            "verifier: 0.41 s CPU over 5.2 s of load (8% of one core)"
        );

        // Exactly at the limit: no warning; above it: one, naming both shares.
        assert!(Footprint::new(ms(400), ms(100), ms(1000), 0.5)
            .warning
            .is_none());
        let hot = Footprint::new(ms(1000), ms(300), ms(1000), 0.5);
        assert!((hot.share_of_core - 1.3).abs() < 1e-9);
        let w = hot.warning.as_deref().unwrap();
        assert!(
            w.contains("130% of one core") && w.contains("more than 50%"),
            "{w}"
        );
        assert!(hot.line().contains("\nwarning: the verifier used 130%"));

        // No wall time (a load that never ran): share 0, no division by zero.
        let none = Footprint::new(Duration::ZERO, Duration::ZERO, Duration::ZERO, 0.5);
        assert_eq!(none.share_of_core, 0.0);
        assert!(none.warning.is_none());
    }

    #[test]
    fn cpu_mark_measures_this_process() {
        let mark = CpuMark::now();
        // Burn a little CPU (no timing assertion: only that the figures are sane).
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        std::hint::black_box(x);
        let f = mark.footprint();
        assert!(f.cpu_user_s >= 0.0 && f.cpu_sys_s >= 0.0 && f.wall_s > 0.0);
        assert!(f.cpu_s() > 0.0, "{f:?}");
    }
}
