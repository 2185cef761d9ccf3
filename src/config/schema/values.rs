//! Values the schema reads in weir's own terms (durations, weights), so that a wrong one
//! is reported in words a user knows.

use serde::de::{Error, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// What a [`RawText`] holds, named in the message for a value of the wrong shape.
pub(in crate::config) trait TextKind {
    /// What was expected, e.g. "a duration, e.g. 500ms, 10s, 2m".
    const EXPECTING: &'static str;
}

/// A value in weir's own notation (`10s`, `10m` bytes), kept as written and checked by
/// validation. A bare number is taken as text too, so `interval: 10` is reported as a
/// duration without a unit rather than as a number where text was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::config) struct RawText<K>(String, std::marker::PhantomData<K>);

/// Durations (`500ms`, `10s`, `2m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::config) struct DurationText;

impl TextKind for DurationText {
    const EXPECTING: &'static str = "a duration, e.g. 500ms, 10s, 2m";
}

/// Byte sizes (`512`, `1k`, `10m`, `1g`: powers of 1024, as nginx reads them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::config) struct SizeText;

impl TextKind for SizeText {
    const EXPECTING: &'static str = "a size, e.g. 512, 64k, 10m, 1g";
}

/// A duration as written.
pub(in crate::config) type RawDuration = RawText<DurationText>;

/// A byte size as written.
pub(in crate::config) type RawSize = RawText<SizeText>;

impl<K> std::ops::Deref for RawText<K> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de, K: TextKind> Deserialize<'de> for RawText<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text<K>(std::marker::PhantomData<K>);
        impl<K: TextKind> Visitor<'_> for Text<K> {
            type Value = RawText<K>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(K::EXPECTING)
            }

            fn visit_str<E: Error>(self, v: &str) -> Result<RawText<K>, E> {
                Ok(RawText(v.to_string(), self.0))
            }

            fn visit_u64<E: Error>(self, v: u64) -> Result<RawText<K>, E> {
                Ok(RawText(v.to_string(), self.0))
            }

            fn visit_i64<E: Error>(self, v: i64) -> Result<RawText<K>, E> {
                Ok(RawText(v.to_string(), self.0))
            }

            fn visit_f64<E: Error>(self, v: f64) -> Result<RawText<K>, E> {
                Ok(RawText(v.to_string(), self.0))
            }
        }
        d.deserialize_any(Text(std::marker::PhantomData))
    }
}

/// `weight:` of a target: a whole number; validation caps it at [`crate::config::MAX_WEIGHT`]
/// with its own message. Its expectation names the range, so a negative weight reads
/// "expected a whole number from 0 to 1000".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct RawWeight(pub u32);

impl<'de> Deserialize<'de> for RawWeight {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Weight;
        impl Visitor<'_> for Weight {
            type Value = RawWeight;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a whole number from 0 to {}", crate::config::MAX_WEIGHT)
            }

            fn visit_u64<E: Error>(self, v: u64) -> Result<RawWeight, E> {
                u32::try_from(v)
                    .map(RawWeight)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }

            fn visit_i64<E: Error>(self, v: i64) -> Result<RawWeight, E> {
                let v =
                    u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))?;
                self.visit_u64(v)
            }
        }
        d.deserialize_u32(Weight)
    }
}
