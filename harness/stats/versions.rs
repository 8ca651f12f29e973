//! Interning of the version strings that responses name, so samples carry a small id.

use std::sync::{Arc, Mutex};

/// Id of "no version found in the response".
pub const NO_VERSION: u16 = u16::MAX;

/// The run-wide table of version strings; ids are indexes.
#[derive(Debug, Default, Clone)]
pub struct VersionTable {
    names: Arc<Mutex<Vec<String>>>,
}

impl VersionTable {
    /// The id of `name`, adding it if new (at most 65 534 distinct versions; more map to NO_VERSION).
    pub fn intern(&self, name: &str) -> u16 {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = names.iter().position(|n| n == name) {
            return i as u16;
        }
        if names.len() >= NO_VERSION as usize {
            return NO_VERSION;
        }
        names.push(name.to_string());
        (names.len() - 1) as u16
    }

    /// All names, by id.
    pub fn names(&self) -> Vec<String> {
        self.names.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A worker's cache in front of the shared table: the lock is taken only for a version not seen before.
#[derive(Debug)]
pub struct VersionCache {
    table: VersionTable,
    seen: Vec<(Vec<u8>, u16)>,
}

impl VersionCache {
    /// A cache over `table`.
    pub fn new(table: VersionTable) -> VersionCache {
        VersionCache {
            table,
            seen: Vec::new(),
        }
    }

    /// The id of `name`.
    #[inline]
    pub fn id(&mut self, name: &str) -> u16 {
        self.id_bytes(name.as_bytes())
    }

    /// The id of a version given as raw header bytes (no allocation once seen).
    #[inline]
    pub fn id_bytes(&mut self, name: &[u8]) -> u16 {
        if let Some((_, id)) = self.seen.iter().find(|(n, _)| n == name) {
            return *id;
        }
        let id = self.table.intern(&String::from_utf8_lossy(name));
        if self.seen.len() < 64 {
            self.seen.push((name.to_vec(), id));
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_once() {
        let t = VersionTable::default();
        let mut a = VersionCache::new(t.clone());
        let mut b = VersionCache::new(t.clone());
        assert_eq!(a.id("v1"), 0);
        assert_eq!(b.id("v2"), 1);
        assert_eq!(b.id("v1"), 0);
        assert_eq!(a.id("v2"), 1);
        assert_eq!(t.names(), vec!["v1", "v2"]);
    }
}
