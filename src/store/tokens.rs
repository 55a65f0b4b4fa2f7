//! Bearer tokens: one key per token (`tokens` sha256(token)(32) → TokenRecord). Sessions belong
//! to a user and expire; API keys have their own role. Which tokens a user holds and when tokens
//! expire are in-memory indexes ([`TokenIndex`]), rebuilt when the store opens; a session whose
//! user is gone (a crash during erasure) is removed then. Issuing a token writes one key.
//! API keys are also indexed by id (list and revoke by id), and when each was last used is kept
//! in memory only: a write per authenticated request would cost more than the figure is worth,
//! so `last_used_at` counts from the server's start.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use parking_lot::Mutex;
use uuid::Uuid;

use super::{Store, StoreError, Trees, decode, encode};
use crate::domain::auth::{TokenKind, TokenRecord};

type Hash = [u8; 32];

/// The in-memory secondary indexes of tokens.
#[derive(Default)]
pub(crate) struct TokenIndex {
    by_user: DashMap<Uuid, Vec<Hash>>,
    /// API key id → its hash.
    api_keys: DashMap<Uuid, Hash>,
    /// API key hash → when it last authenticated a request (since start).
    last_used: DashMap<Hash, DateTime<Utc>>,
    /// Every stored token and what authenticating with it needs: requests are authenticated
    /// from memory (and the rate limiter keys a request by its token only if it is one).
    known: DashMap<Hash, TokenMeta>,
    /// (expires_at in µs, hash), in expiry order.
    expiry: Mutex<BTreeSet<(i64, Hash)>>,
}

impl TokenIndex {
    /// Reads every token once (at open, before the writer starts); removes sessions whose user no
    /// longer exists.
    pub(crate) fn load(trees: &Trees) -> Result<Self, StoreError> {
        let index = Self::default();
        let mut orphans = Vec::new();
        for kv in trees.tokens.iter() {
            let (k, v) = kv?;
            let Ok(hash) = <Hash>::try_from(k.as_ref()) else {
                return Err(StoreError::Corrupt("a token key is not 32 bytes".into()));
            };
            let record: TokenRecord = decode(&v)?;
            if let Some(user) = record.user_id
                && !trees.users.contains_key(user.as_bytes())?
            {
                orphans.push(hash);
                continue;
            }
            index.add(&hash, &record);
        }
        for hash in &orphans {
            trees.tokens.remove(hash)?;
        }
        if !orphans.is_empty() {
            tracing::info!(
                tokens = orphans.len(),
                "removed tokens of erased users at open"
            );
        }
        Ok(index)
    }

    fn add(&self, hash: &Hash, record: &TokenRecord) {
        self.known.insert(
            *hash,
            TokenMeta {
                id: record.id,
                kind: record.kind,
                user_id: record.user_id,
                role: record.role,
                expires_at: record.expires_at,
                created_by: record.created_by,
            },
        );
        if let Some(user) = record.user_id {
            self.by_user.entry(user).or_default().push(*hash);
        }
        if record.kind == TokenKind::ApiKey {
            self.api_keys.insert(record.id, *hash);
        }
        if let Some(at) = record.expires_at {
            self.expiry.lock().insert((at.timestamp_micros(), *hash));
        }
    }

    fn remove(&self, hash: &Hash, record: &TokenRecord) {
        self.known.remove(hash);
        if record.kind == TokenKind::ApiKey {
            self.api_keys.remove(&record.id);
            self.last_used.remove(hash);
        }
        if let Some(user) = record.user_id {
            let empty = match self.by_user.get_mut(&user) {
                Some(mut held) => {
                    held.retain(|h| h != hash);
                    held.is_empty()
                }
                None => false,
            };
            if empty {
                self.by_user.remove_if(&user, |_, held| held.is_empty());
            }
        }
        if let Some(at) = record.expires_at {
            self.expiry.lock().remove(&(at.timestamp_micros(), *hash));
        }
    }
}

/// A stored token as authentication reads it.
#[derive(Debug, Clone, Copy)]
pub struct TokenMeta {
    pub id: Uuid,
    pub kind: TokenKind,
    pub user_id: Option<Uuid>,
    pub role: Option<crate::domain::user::Role>,
    pub expires_at: Option<DateTime<Utc>>,
    /// An API key's creator: a user, or the API key that made it.
    pub created_by: Option<Uuid>,
}

impl TokenMeta {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// An API key's record and when it last authenticated a request (since start).
pub type ApiKeyEntry = (TokenRecord, Option<DateTime<Utc>>);

pub struct Tokens<'a> {
    store: &'a Store,
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    fn index(&self) -> &TokenIndex {
        &self.store.indexes().tokens
    }

    /// Stores a token under its hash. A session is refused with `NotFound` if its user was erased
    /// meanwhile. Writer only.
    pub fn insert(&self, hash: &Hash, record: &TokenRecord) -> Result<(), StoreError> {
        if let Some(user) = record.user_id
            && !self.store.users().exists(user)?
        {
            return Err(StoreError::NotFound);
        }
        self.store
            .trees()
            .tokens
            .insert(&hash[..], encode(record)?)?;
        self.index().add(hash, record);
        Ok(())
    }

    pub fn get(&self, hash: &Hash) -> Result<Option<TokenRecord>, StoreError> {
        self.store
            .trees()
            .tokens
            .get(hash)?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Removes a token; returns whether it existed. Writer only.
    pub fn revoke(&self, hash: &Hash) -> Result<bool, StoreError> {
        let Some(raw) = self.store.trees().tokens.remove(&hash[..])? else {
            return Ok(false);
        };
        let record: TokenRecord = decode(&raw)?;
        self.index().remove(hash, &record);
        Ok(true)
    }

    /// Removes every token of a user (one batch on the one tree); returns how many. Writer only.
    pub fn revoke_user(&self, user: Uuid) -> Result<usize, StoreError> {
        self.revoke_user_except(user, None)
    }

    /// Removes every token of a user but `keep` (the session that changed the password), in one
    /// batch; returns how many. Writer only.
    pub fn revoke_user_except(&self, user: Uuid, keep: Option<&Hash>) -> Result<usize, StoreError> {
        let hashes: Vec<Hash> = match self.index().by_user.get(&user) {
            Some(held) => held.iter().filter(|h| Some(*h) != keep).copied().collect(),
            None => return Ok(0),
        };
        let mut batch = sled::Batch::default();
        let mut records = Vec::with_capacity(hashes.len());
        for hash in &hashes {
            if let Some(raw) = self.store.trees().tokens.get(hash)? {
                records.push((*hash, decode::<TokenRecord>(&raw)?));
            }
            batch.remove(&hash[..]);
        }
        self.store.trees().tokens.apply_batch(batch)?;
        for (hash, record) in &records {
            self.index().remove(hash, record);
        }
        Ok(hashes.len())
    }

    /// Ends the oldest sessions of `user` past the newest `max` (one key each). Writer only.
    pub fn keep_newest_sessions(&self, user: Uuid, max: usize) -> Result<usize, StoreError> {
        let mut sessions: Vec<(Uuid, Hash)> = match self.index().by_user.get(&user) {
            Some(held) => held
                .iter()
                .filter_map(|h| {
                    let meta = self.lookup(h)?;
                    (meta.kind == TokenKind::Session).then_some((meta.id, *h))
                })
                .collect(),
            None => return Ok(0),
        };
        if sessions.len() <= max {
            return Ok(0);
        }
        // Ids are v7: their order is the order the sessions began.
        sessions.sort_unstable();
        let ended = sessions.len() - max;
        for (_, hash) in sessions.iter().take(ended) {
            self.revoke(hash)?;
        }
        Ok(ended)
    }

    /// Whether `hash` is a stored token (memory only; expired ones count until purged).
    pub fn is_known(&self, hash: &Hash) -> bool {
        self.index().known.contains_key(hash)
    }

    /// What authenticating with the token `hash` needs, from memory.
    pub fn lookup(&self, hash: &Hash) -> Option<TokenMeta> {
        self.index().known.get(hash).map(|m| *m)
    }

    /// The API key with this id, as authentication reads it (memory only).
    pub fn api_key(&self, id: Uuid) -> Option<TokenMeta> {
        let hash = *self.index().api_keys.get(&id)?;
        self.lookup(&hash)
    }

    /// Every API key with when it was last used (since start), in id (creation) order.
    pub fn api_keys(&self) -> Result<Vec<ApiKeyEntry>, StoreError> {
        let mut hashes: Vec<(Uuid, Hash)> = self
            .index()
            .api_keys
            .iter()
            .map(|e| (*e.key(), *e.value()))
            .collect();
        hashes.sort_unstable_by_key(|(id, _)| *id);
        let mut keys = Vec::with_capacity(hashes.len());
        for (_, hash) in hashes {
            if let Some(record) = self.get(&hash)? {
                let used = self.index().last_used.get(&hash).map(|t| *t);
                keys.push((record, used));
            }
        }
        Ok(keys)
    }

    /// Erasure: revokes the API keys `user` made (their records name them). Writer only.
    pub fn revoke_keys_made_by(&self, user: Uuid) -> Result<usize, StoreError> {
        let made: Vec<Uuid> = self
            .api_keys()?
            .into_iter()
            .filter(|(k, _)| k.created_by == Some(user))
            .map(|(k, _)| k.id)
            .collect();
        for id in &made {
            self.revoke_api_key(*id)?;
        }
        Ok(made.len())
    }

    /// Revokes the API key with this id; returns whether it existed. Writer only.
    pub fn revoke_api_key(&self, id: Uuid) -> Result<bool, StoreError> {
        let Some(hash) = self.index().api_keys.get(&id).map(|h| *h) else {
            return Ok(false);
        };
        self.revoke(&hash)
    }

    /// Notes that the API key `id` authenticated a request at `now` (memory only; nothing for a
    /// key revoked meanwhile).
    pub fn touch(&self, id: Uuid, hash: &Hash, now: DateTime<Utc>) {
        if self.index().api_keys.get(&id).is_some_and(|h| *h == *hash) {
            self.index().last_used.insert(*hash, now);
        }
    }

    /// Deletes tokens that expired before `now`, walking the in-memory expiry index (no scan).
    /// Writer only.
    pub fn purge_expired(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let end = (now.timestamp_micros(), [0u8; 32]);
        let expired: Vec<Hash> = self
            .index()
            .expiry
            .lock()
            .range(..end)
            .map(|(_, h)| *h)
            .collect();
        let mut purged = 0;
        for hash in &expired {
            if self.revoke(hash)? {
                purged += 1;
            }
        }
        Ok(purged)
    }
}
