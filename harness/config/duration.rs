//! Durations in scenario files and on the command line: `"500ms"`, `"5s"`, `"1m 30s"`,
//! each at most [`MAX_DURATION`] (one check, [`parse`], for every duration a user writes).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The longest duration zdt-check accepts anywhere (24 h): a run, a timeout, a delay.
/// Longer is a typo, and an `Instant` plus a much longer one overflows.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Parses a human-written duration (`500ms`, `10s`, `1m 30s`) of at most
/// [`MAX_DURATION`]; the error says what to write instead.
pub fn parse(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?}: {e} (write e.g. \"500ms\" or \"5s\")"))?;
    if d > MAX_DURATION {
        return Err(format!("duration {s:?} is too long: at most 24h"));
    }
    Ok(d)
}

/// [`parse`], and more than zero (a run length, a time limit).
pub fn parse_positive(s: &str) -> Result<Duration, String> {
    let d = parse(s)?;
    if d.is_zero() {
        return Err(format!("duration {s:?} must be more than 0"));
    }
    Ok(d)
}

/// A human-written duration (at most [`MAX_DURATION`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl Dur {
    /// From milliseconds.
    pub const fn ms(ms: u64) -> Dur {
        Dur(Duration::from_millis(ms))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string such as \"500ms\" or \"5s\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Dur, E> {
                parse(s).map(Dur).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "bare number {n} is ambiguous: write a unit, e.g. \"{n}s\" or \"{n}ms\""
                )))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "bare number {n} is ambiguous: write a unit, e.g. \"{n}s\""
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_bounded() {
        assert_eq!(parse(" 1m 30s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse("24h"), Ok(MAX_DURATION));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
        let e = parse("25h").unwrap_err();
        assert_eq!(e, "duration \"25h\" is too long: at most 24h");
        assert!(parse("500000000000y").unwrap_err().contains("too long"));
        assert!(parse("soon").unwrap_err().contains("invalid duration"));
        assert!(parse_positive("0ms").unwrap_err().contains("more than 0"));
        assert_eq!(parse_positive("1ms"), Ok(Duration::from_millis(1)));
        let e =
            toml::from_str::<std::collections::BTreeMap<String, Dur>>("t = \"48h\"").unwrap_err();
        assert!(e.message().contains("too long: at most"), "{e}");
    }
}
