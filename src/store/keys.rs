//! Every key encoding of the store, in one place.
//!
//! Rules: numbers are big-endian so byte order is numeric order; signed numbers and timestamps
//! have their sign bit flipped so negatives sort first; UUIDv7 ids are their 16 bytes (time
//! ordered); a string in a composite key ends with `0xff`, a byte UTF-8 never contains, so a
//! prefix scan for one string never matches another that merely starts with it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Terminates a string inside a composite key.
pub const SEP: u8 = 0xff;

pub fn u64_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub fn u64_from(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

pub fn i64_key(n: i64) -> [u8; 8] {
    ((n as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn i64_from(bytes: &[u8]) -> Option<i64> {
    Some((u64_from(bytes)? ^ (1 << 63)) as i64)
}

/// A timestamp at microsecond precision, ordered.
pub fn time_key(t: DateTime<Utc>) -> [u8; 8] {
    i64_key(t.timestamp_micros())
}

pub fn time_from(bytes: &[u8]) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(i64_from(bytes)?)
}

pub fn uuid_from(bytes: &[u8]) -> Option<Uuid> {
    Some(Uuid::from_bytes(bytes.get(..16)?.try_into().ok()?))
}

/// The smallest UUIDv7 of the millisecond of `t`: ids carrying an instant at or after `t` sort at
/// or after it.
pub fn uuid_floor(t: DateTime<Utc>) -> [u8; 16] {
    let millis = u64::try_from(t.timestamp_millis()).unwrap_or(0);
    let mut out = [0u8; 16];
    if let Some(ms) = millis.to_be_bytes().get(2..) {
        out[..6].copy_from_slice(ms);
    }
    out
}

/// Builds a composite key from parts, in order.
#[derive(Debug, Default, Clone)]
pub struct KeyBuf(Vec<u8>);

impl KeyBuf {
    pub fn new() -> Self {
        Self(Vec::with_capacity(32))
    }

    pub fn str(mut self, s: &str) -> Self {
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(SEP);
        self
    }

    pub fn uuid(mut self, id: Uuid) -> Self {
        self.0.extend_from_slice(id.as_bytes());
        self
    }

    pub fn u64(mut self, n: u64) -> Self {
        self.0.extend_from_slice(&u64_key(n));
        self
    }

    pub fn time(mut self, t: DateTime<Utc>) -> Self {
        self.0.extend_from_slice(&time_key(t));
        self
    }

    pub fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }

    pub fn build(self) -> Vec<u8> {
        self.0
    }
}

/// Reads a composite key back, part by part, in the order it was built.
pub struct KeyReader<'a>(&'a [u8]);

impl<'a> KeyReader<'a> {
    pub fn new(key: &'a [u8]) -> Self {
        Self(key)
    }

    pub fn str(&mut self) -> Option<&'a str> {
        let end = self.0.iter().position(|b| *b == SEP)?;
        let (s, rest) = self.0.split_at(end);
        self.0 = rest.get(1..)?;
        std::str::from_utf8(s).ok()
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    pub fn uuid(&mut self) -> Option<Uuid> {
        uuid_from(self.take(16)?)
    }

    pub fn u64(&mut self) -> Option<u64> {
        u64_from(self.take(8)?)
    }

    pub fn time(&mut self) -> Option<DateTime<Utc>> {
        time_from(self.take(8)?)
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        self.take(n)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn time(micros: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(micros).unwrap()
    }

    // Dates between year 1000 and 9000: the range chrono represents at microsecond precision.
    const MICROS: std::ops::Range<i64> = -30_000_000_000_000_000..220_000_000_000_000_000;

    proptest! {
        #[test]
        fn u64_round_trips_and_orders(a: u64, b: u64) {
            prop_assert_eq!(u64_from(&u64_key(a)), Some(a));
            prop_assert_eq!(a.cmp(&b), u64_key(a).cmp(&u64_key(b)));
        }

        #[test]
        fn i64_round_trips_and_orders(a: i64, b: i64) {
            prop_assert_eq!(i64_from(&i64_key(a)), Some(a));
            prop_assert_eq!(a.cmp(&b), i64_key(a).cmp(&i64_key(b)));
        }

        #[test]
        fn time_round_trips_and_orders(a in MICROS, b in MICROS) {
            let (ta, tb) = (time(a), time(b));
            prop_assert_eq!(time_from(&time_key(ta)), Some(ta));
            prop_assert_eq!(ta.cmp(&tb), time_key(ta).cmp(&time_key(tb)));
        }

        #[test]
        fn composite_round_trips(s in "\\PC{0,40}", id: u128, n: u64, t in MICROS) {
            let id = Uuid::from_u128(id);
            let key = KeyBuf::new().str(&s).uuid(id).u64(n).time(time(t)).build();
            let mut r = KeyReader::new(&key);
            prop_assert_eq!(r.str(), Some(s.as_str()));
            prop_assert_eq!(r.uuid(), Some(id));
            prop_assert_eq!(r.u64(), Some(n));
            prop_assert_eq!(r.time(), Some(time(t)));
            prop_assert!(r.is_empty());
        }

        /// Within one string, keys order by the number that follows; and a string's prefix scan
        /// never matches a key of another string.
        #[test]
        fn composite_orders_within_a_string_and_is_prefix_free(
            s in "\\PC{0,20}", other in "\\PC{0,20}", a: u64, b: u64,
        ) {
            let ka = KeyBuf::new().str(&s).u64(a).build();
            let kb = KeyBuf::new().str(&s).u64(b).build();
            prop_assert_eq!(a.cmp(&b), ka.cmp(&kb));
            let prefix = KeyBuf::new().str(&s).build();
            let ko = KeyBuf::new().str(&other).u64(a).build();
            prop_assert_eq!(ko.starts_with(&prefix), other == s);
        }

        #[test]
        fn v7_ids_order_by_creation(a in 0u64..1 << 47, b in 0u64..1 << 47) {
            let ida = Uuid::new_v7(uuid::Timestamp::from_unix_time(a / 1000, ((a % 1000) * 1_000_000) as u32, 0, 0));
            let idb = Uuid::new_v7(uuid::Timestamp::from_unix_time(b / 1000, ((b % 1000) * 1_000_000) as u32, 0, 0));
            if a != b {
                prop_assert_eq!(a.cmp(&b), ida.as_bytes().cmp(idb.as_bytes()));
            }
        }
    }

    #[test]
    fn short_keys_do_not_decode() {
        assert_eq!(u64_from(&[1, 2, 3]), None);
        assert_eq!(KeyReader::new(b"no-separator").str(), None);
        assert_eq!(KeyReader::new(&[1u8; 15]).uuid(), None);
    }
}
