//! Lenient JSON field types: networks send ids and numbers as strings or numbers, and `null` or a
//! missing field for "none". These read any scalar as text and anything else as absent, so one odd
//! field never fails a whole document.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::domain::voucher::RawTime;

/// Any JSON scalar as text; `null`, objects and arrays as `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loose(pub Option<String>);

impl Loose {
    pub fn into_inner(self) -> Option<String> {
        self.0
    }

    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a scalar")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose, E> {
        Ok(Loose(Some(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Loose, E> {
        Ok(Loose(Some(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Loose, E> {
        Ok(Loose(Some(v.to_string())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Loose, E> {
        Ok(Loose(Some(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Loose, E> {
        Ok(Loose(Some(v.to_string())))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Loose, E> {
        Ok(Loose(Some(v.to_string())))
    }

    fn visit_none<E: de::Error>(self) -> Result<Loose, E> {
        Ok(Loose(None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Loose, E> {
        Ok(Loose(None))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Loose, D::Error> {
        d.deserialize_any(LooseVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose(None))
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

/// A date as text, or as epoch milliseconds when a number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LooseTime(pub RawTime);

struct LooseTimeVisitor;

impl<'de> Visitor<'de> for LooseTimeVisitor {
    type Value = LooseTime;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a date")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<LooseTime, E> {
        Ok(LooseTime(RawTime::Text(v.to_owned())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<LooseTime, E> {
        Ok(LooseTime(RawTime::EpochMillis(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<LooseTime, E> {
        Ok(LooseTime(match i64::try_from(v) {
            Ok(v) => RawTime::EpochMillis(v),
            Err(_) => RawTime::Text(v.to_string()),
        }))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<LooseTime, E> {
        Ok(LooseTime(if v.is_finite() && v.abs() < 9.0e15 {
            RawTime::EpochMillis(v as i64)
        } else {
            RawTime::Text(v.to_string())
        }))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<LooseTime, E> {
        Ok(LooseTime(RawTime::Text(v.to_string())))
    }

    fn visit_none<E: de::Error>(self) -> Result<LooseTime, E> {
        Ok(LooseTime(RawTime::None))
    }

    fn visit_unit<E: de::Error>(self) -> Result<LooseTime, E> {
        Ok(LooseTime(RawTime::None))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<LooseTime, D::Error> {
        d.deserialize_any(LooseTimeVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LooseTime, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(LooseTime(RawTime::Text("[array]".into())))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LooseTime, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(LooseTime(RawTime::Text("{object}".into())))
    }
}

impl<'de> Deserialize<'de> for LooseTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseTimeVisitor)
    }
}

/// A nested object read only for its `name`-like field; anything else reads as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Named(pub Option<String>);

impl<'de> Deserialize<'de> for Named {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NamedVisitor;
        impl<'de> Visitor<'de> for NamedVisitor {
            type Value = Named;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object with a name")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Named, A::Error> {
                let mut name = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key.eq_ignore_ascii_case("name") {
                        name = map.next_value::<Loose>()?.0;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Named(name))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Named, E> {
                Ok(Named(Some(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Named, E> {
                Ok(Named(Some(v)))
            }
            fn visit_none<E: de::Error>(self) -> Result<Named, E> {
                Ok(Named(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Named, E> {
                Ok(Named(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Named, D::Error> {
                d.deserialize_any(NamedVisitor)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Named, E> {
                Ok(Named(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Named, E> {
                Ok(Named(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Named, E> {
                Ok(Named(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Named, E> {
                Ok(Named(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Named, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Named(None))
            }
        }
        d.deserialize_any(NamedVisitor)
    }
}

/// Reads each element of a JSON array as its own document, so one broken row rejects that row only.
pub fn rows<'a, T: Deserialize<'a>>(
    items: &[&'a serde_json::value::RawValue],
) -> Vec<Result<T, String>> {
    items
        .iter()
        .map(|raw| serde_json::from_str::<T>(raw.get()).map_err(|e| format!("unreadable row: {e}")))
        .collect()
}
