//! The record codec: every stored record is one format byte, then the record in postcard.
//!
//! postcard is compact and fast, and not self-describing: stored types use no
//! `skip_serializing_if`, `flatten`, untagged or internally tagged enums, and times go as
//! integers (see [`crate::domain::times`]). A record the first release wrote is JSON (its first byte is `{`):
//! [`decode`] still reads it, so the migrations that rewrite such records can decode them; after
//! them every record is postcard. Export files stay JSON lines around these bytes.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;

/// The format byte of a postcard record (version 1 of the encoding).
pub const POSTCARD_V1: u8 = 1;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![POSTCARD_V1];
    postcard::to_io(value, &mut out).map_err(|e| StoreError::Codec(e.to_string()))?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&POSTCARD_V1, rest)) => {
            postcard::from_bytes(rest).map_err(|e| StoreError::Codec(e.to_string()))
        }
        Some((b'{', _)) => {
            serde_json::from_slice(bytes).map_err(|e| StoreError::Codec(e.to_string()))
        }
        Some((other, _)) => Err(StoreError::Codec(format!("unknown record format {other}"))),
        None => Err(StoreError::Codec("empty record".into())),
    }
}

/// Whether a record is still in the first release's JSON.
pub fn is_legacy(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b'{')
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Rec {
        name: String,
        #[serde(with = "crate::domain::times::micros")]
        at: DateTime<Utc>,
        #[serde(with = "crate::domain::times::micros_opt")]
        until: Option<DateTime<Utc>>,
        id: uuid::Uuid,
    }

    #[test]
    fn records_are_compact_postcard_and_legacy_json_still_reads() {
        let at: DateTime<Utc> = "2026-11-22T01:02:03.456789Z".parse().unwrap();
        let rec = Rec {
            name: "x".into(),
            at,
            until: Some(at),
            id: uuid::Uuid::now_v7(),
        };
        let bytes = encode(&rec).unwrap();
        assert_eq!(bytes[0], POSTCARD_V1);
        let json = serde_json::to_vec(&rec).unwrap();
        assert!(
            bytes.len() * 3 < json.len(),
            "{} vs {}",
            bytes.len(),
            json.len()
        );
        assert_eq!(decode::<Rec>(&bytes).unwrap(), rec);
        // JSON keeps RFC 3339 text, and a JSON record decodes as before.
        assert!(String::from_utf8_lossy(&json).contains("2026-11-22T01:02:03.456789Z"));
        assert!(is_legacy(&json));
        assert_eq!(decode::<Rec>(&json).unwrap(), rec);
        assert!(decode::<Rec>(&[9, 1, 2]).is_err());
        assert!(decode::<Rec>(&[]).is_err());
        assert!(decode::<Rec>(&bytes[..bytes.len() - 3]).is_err());
    }
}
