//! How stored records carry times: integers where the format is compact, text where it is read
//! by people. Serde decides by `is_human_readable`, so one type serves the store and the API.

/// A time as microseconds since the epoch in compact formats (the store's postcard records), as
/// RFC 3339 text in JSON (the API, records of the first release). Use with `#[serde(with = …)]`.
pub mod micros {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            serde::Serialize::serialize(t, s)
        } else {
            s.serialize_i64(t.timestamp_micros())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        if d.is_human_readable() {
            DateTime::<Utc>::deserialize(d)
        } else {
            let micros = i64::deserialize(d)?;
            DateTime::from_timestamp_micros(micros)
                .ok_or_else(|| serde::de::Error::custom("time out of range"))
        }
    }
}

/// [`micros`] for an optional time.
pub mod micros_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            serde::Serialize::serialize(t, s)
        } else {
            serde::Serialize::serialize(&t.map(|t| t.timestamp_micros()), s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        if d.is_human_readable() {
            Option::<DateTime<Utc>>::deserialize(d)
        } else {
            match Option::<i64>::deserialize(d)? {
                None => Ok(None),
                Some(micros) => DateTime::from_timestamp_micros(micros)
                    .map(Some)
                    .ok_or_else(|| serde::de::Error::custom("time out of range")),
            }
        }
    }
}
