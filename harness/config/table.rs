//! A table (`[reload]`, `[app]`) whose keys are split between the scenario (the keys
//! every strategy or app kind has) and a registry entry (its own `Options`, read in a
//! second pass over the text). What both passes share: the [`Table`] an entry's
//! checks locate their errors with, the key list of a serde struct ([`keys_of`]), a
//! table read without the common keys ([`Without`]) and the error for a key the entry
//! does not have ([`Table::unknown_key`]).

use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::Locator;
use crate::error::{Error, Result};

/// A table of a scenario being parsed, for a registry entry's options pass: the source
/// text, and errors located in it (``file:line:col: `table.key`: message``).
pub struct Table<'a> {
    pub(crate) loc: &'a Locator<'a>,
    /// `reload` or `app`.
    pub(crate) name: &'static str,
    /// The key naming the entry (`reload.strategy`, `app.kind`).
    pub(crate) head: &'a Spanned<String>,
    /// `app.kind` as the scenario gives it (its default filled in), for an option
    /// that only some app kinds support.
    pub(crate) app_kind: &'a str,
    /// The scenario's front serves https (`[front] tls = true`).
    pub(crate) front_tls: bool,
}

/// The `[reload]` table, for a strategy's options pass.
pub type ReloadTable<'a> = Table<'a>;

/// The `[app]` table, for an app kind's options pass.
pub type AppTable<'a> = Table<'a>;

impl Table<'_> {
    /// The whole scenario text.
    pub fn src(&self) -> &str {
        self.loc.src
    }

    /// The entry named (the strategy, the app kind).
    pub fn head(&self) -> &str {
        self.head.get_ref()
    }

    /// The strategy named (in `[reload]`).
    pub fn strategy(&self) -> &str {
        self.head()
    }

    /// An error at `span` about `field` (the full name, e.g. `reload.settle`).
    pub fn error(&self, span: std::ops::Range<usize>, field: &str, msg: &str) -> Error {
        self.loc.error(span, Some(field), msg)
    }

    /// An error about a missing `field`, shown at the line naming the entry.
    pub fn missing(&self, field: &str, msg: &str) -> Error {
        self.loc.error(self.head.span(), Some(field), msg)
    }

    /// The scenario's `app.kind` (for a strategy option only some kinds support).
    pub fn app_kind(&self) -> &str {
        self.app_kind
    }

    /// Whether the scenario's front serves https (`[front] tls = true`).
    pub fn front_tls(&self) -> bool {
        self.front_tls
    }

    /// Fails unless `v` is one of `allowed`.
    pub fn one_of(&self, v: &Spanned<String>, field: &str, allowed: &[&str]) -> Result<()> {
        super::one_of(self.loc, v, field, allowed)
    }

    /// A toml error at its location.
    pub fn toml_error(&self, e: &toml::de::Error) -> Error {
        self.loc.toml_error(e)
    }

    /// Where the value of `key` in this table is, if the table has it.
    pub fn value_span(&self, key: &str) -> Option<std::ops::Range<usize>> {
        type Keys = std::collections::BTreeMap<String, Spanned<de::IgnoredAny>>;
        #[derive(Deserialize)]
        struct Doc {
            #[serde(default)]
            reload: Option<Keys>,
            #[serde(default)]
            app: Option<Keys>,
        }
        let doc: Doc = toml::from_str(self.loc.src).ok()?;
        let table = match self.name {
            "app" => doc.app,
            _ => doc.reload,
        };
        table?.get(key).map(Spanned::span)
    }

    /// The error for a toml error `e` of the options pass. A key the entry does not
    /// have but another one (`users`) does is named as such, at its value; a truly
    /// unknown one lists every key the entry accepts (`common` and `own`). `what` names
    /// the kind of entry in messages (`strategy`, `app kind`).
    pub fn unknown_key(
        &self,
        e: &toml::de::Error,
        what: &str,
        common: &[&str],
        own: &[&str],
        users: impl Fn(&str) -> Vec<&'static str>,
    ) -> Error {
        let key = e
            .message()
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(k, _)| k);
        let at_key = e.span().filter(|s| {
            key.is_some_and(|k| {
                self.src()
                    .get(s.clone())
                    .is_some_and(|t| t.trim_matches(['"', '\'']) == k)
            })
        });
        let (Some(key), Some(key_span)) = (key, at_key) else {
            return self.toml_error(e);
        };
        let field = format!("{}.{key}", self.name);
        let users = users(key);
        if users.is_empty() {
            let expected: Vec<String> =
                common.iter().chain(own).map(|k| format!("`{k}`")).collect();
            return self.error(
                key_span,
                &field,
                &format!(
                    "unknown field `{key}`, expected one of {}",
                    expected.join(", ")
                ),
            );
        }
        let span = self.value_span(key).unwrap_or(key_span);
        self.error(
            span,
            &field,
            &format!(
                "not an option of {what} {:?} (it applies to: {})",
                self.head(),
                users.join(", ")
            ),
        )
    }
}

/// The keys a serde struct accepts: the field list its derived `Deserialize` hands to
/// `deserialize_struct`, read by a deserializer that reads nothing else.
pub fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(
            self,
            _: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("only the field list was wanted"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// The common keys of a table, which [`Without`] skips.
pub trait Common {
    /// The keys the scenario itself reads.
    fn keys() -> &'static [&'static str];
}

/// A table deserialized as `O` without the keys of `C`. Values are handed to `O`
/// straight from toml's deserializer, so `toml::Spanned` keeps its spans (what
/// `#[serde(flatten)]` would lose).
pub struct Without<C, O>(pub O, PhantomData<C>);

impl<'de, C: Common, O: Deserialize<'de>> Deserialize<'de> for Without<C, O> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Table<C, O>(PhantomData<(C, O)>);
        impl<'de, C: Common, O: Deserialize<'de>> Visitor<'de> for Table<C, O> {
            type Value = Without<C, O>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table of options")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                O::deserialize(de::value::MapAccessDeserializer::new(SkipKeys {
                    map,
                    skip: C::keys(),
                }))
                .map(|o| Without(o, PhantomData))
            }
        }
        d.deserialize_map(Table::<C, O>(PhantomData))
    }
}

/// A map without the entries whose key is in `skip`.
struct SkipKeys<A> {
    map: A,
    skip: &'static [&'static str],
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for SkipKeys<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> std::result::Result<Option<K::Value>, A::Error> {
        let mut seed = Some(seed);
        loop {
            let key = self.map.next_key_seed(KeySeed {
                seed: &mut seed,
                skip: self.skip,
            })?;
            match key {
                None => return Ok(None),
                Some(Some(k)) => return Ok(Some(k)),
                Some(None) => {
                    self.map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> std::result::Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// Reads a key: `None` if it is to be skipped, else what `seed` makes of it.
struct KeySeed<'a, K> {
    seed: &'a mut Option<K>,
    skip: &'static [&'static str],
}

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for KeySeed<'_, K> {
    type Value = Option<K::Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de, K: DeserializeSeed<'de>> Visitor<'de> for KeySeed<'_, K> {
    type Value = Option<K::Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> std::result::Result<Self::Value, E> {
        if self.skip.contains(&key) {
            return Ok(None);
        }
        match self.seed.take() {
            Some(seed) => seed.deserialize(key.into_deserializer()).map(Some),
            None => Err(E::custom("a key was read twice")),
        }
    }
}
