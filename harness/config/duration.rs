//! Durations in scenario files: `"500ms"`, `"5s"`, `"1m 30s"`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A human-written duration.
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
                humantime::parse_duration(s.trim()).map(Dur).map_err(|e| {
                    E::custom(format!(
                        "invalid duration {s:?}: {e} (write e.g. \"500ms\" or \"5s\")"
                    ))
                })
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
