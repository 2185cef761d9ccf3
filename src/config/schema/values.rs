//! Values the schema reads in weir's own terms (durations, weights), so that a wrong one
//! is reported in words a user knows.

use serde::de::{Error, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// A duration as written (`10s`, `500ms`), checked by validation. A bare number is taken
/// as text too, so `interval: 10` is reported as a duration without a unit rather than as
/// a number where text was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::config) struct RawDuration(String);

impl std::ops::Deref for RawDuration {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = RawDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration, e.g. 500ms, 10s, 2m")
            }

            fn visit_str<E: Error>(self, v: &str) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }

            fn visit_u64<E: Error>(self, v: u64) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }

            fn visit_i64<E: Error>(self, v: i64) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }

            fn visit_f64<E: Error>(self, v: f64) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }
        }
        d.deserialize_any(Text)
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
