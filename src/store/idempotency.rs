//! Idempotency keys: the first answer to a creating request sent with an `Idempotency-Key`,
//! replayed to every retry for 24 hours. One key per remembered answer (`idempotency`
//! sha256(scope ‖ key)(32) → Remembered); when each expires is kept in memory
//! ([`IdempotencyIndex`]), so the purge reads nothing it does not remove.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, Trees, decode, encode};

type Hash = [u8; 32];

/// How long an answer is replayed.
pub const KEEP_HOURS: i64 = 24;

/// A remembered answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    pub v: u16,
    /// sha256 of the method, path and body of the first request: another request under the same
    /// key is refused (422).
    pub request: Hash,
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    #[serde(with = "crate::domain::times::micros")]
    pub created_at: DateTime<Utc>,
}

/// When each remembered answer expires, in order.
#[derive(Default)]
pub(crate) struct IdempotencyIndex(Mutex<BTreeSet<(i64, Hash)>>);

impl IdempotencyIndex {
    pub(crate) fn load(trees: &Trees) -> Result<Self, StoreError> {
        let index = Self::default();
        {
            let mut expiry = index.0.lock();
            for kv in trees.idempotency.iter() {
                let (k, v) = kv?;
                let Ok(hash) = <Hash>::try_from(k.as_ref()) else {
                    continue;
                };
                let r: Remembered = decode(&v)?;
                expiry.insert((expires(r.created_at), hash));
            }
        }
        Ok(index)
    }
}

fn expires(created_at: DateTime<Utc>) -> i64 {
    (created_at + chrono::Duration::hours(KEEP_HOURS)).timestamp_micros()
}

pub struct Idempotency<'a> {
    store: &'a Store,
}

impl<'a> Idempotency<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// The answer remembered under `key`, unless it has expired.
    pub fn get(&self, key: &Hash, now: DateTime<Utc>) -> Result<Option<Remembered>, StoreError> {
        let found: Option<Remembered> = self
            .store
            .trees()
            .idempotency
            .get(key)?
            .map(|v| decode(&v))
            .transpose()?;
        Ok(found.filter(|r| expires(r.created_at) > now.timestamp_micros()))
    }

    /// Remembers an answer (one key). Writer only.
    pub fn remember(&self, key: &Hash, answer: &Remembered) -> Result<(), StoreError> {
        self.store
            .trees()
            .idempotency
            .insert(key, encode(answer)?)?;
        self.store
            .indexes()
            .idempotency
            .0
            .lock()
            .insert((expires(answer.created_at), *key));
        Ok(())
    }

    /// Erasure: forgets the remembered answers that name `user` (their bodies hold the user's id
    /// or email). Reads the answers of the last 24 hours. Writer only.
    pub fn forget_naming(&self, user: uuid::Uuid, email: &str) -> Result<usize, StoreError> {
        let (id, email) = (user.to_string(), email.as_bytes());
        let tree = &self.store.trees().idempotency;
        let mut gone = Vec::new();
        for kv in tree.iter() {
            let (k, v) = kv?;
            let r: Remembered = decode(&v)?;
            let names = |needle: &[u8]| r.body.windows(needle.len()).any(|w| w == needle);
            if names(id.as_bytes()) || (!email.is_empty() && names(email)) {
                gone.push(k);
            }
        }
        let mut batch = sled::Batch::default();
        for k in &gone {
            batch.remove(k.clone());
        }
        tree.apply_batch(batch)?;
        let mut index = self.store.indexes().idempotency.0.lock();
        index.retain(|(_, hash)| !gone.iter().any(|k| k.as_ref() == hash.as_slice()));
        Ok(gone.len())
    }

    /// Forgets the answers whose 24 hours are over; returns how many. Writer only.
    pub fn purge_expired(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let end = (now.timestamp_micros(), [0u8; 32]);
        let expired: Vec<(i64, Hash)> = self
            .store
            .indexes()
            .idempotency
            .0
            .lock()
            .range(..end)
            .copied()
            .collect();
        let mut batch = sled::Batch::default();
        for (_, key) in &expired {
            batch.remove(&key[..]);
        }
        self.store.trees().idempotency.apply_batch(batch)?;
        let mut index = self.store.indexes().idempotency.0.lock();
        for e in &expired {
            index.remove(e);
        }
        Ok(expired.len())
    }
}
