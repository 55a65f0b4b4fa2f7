//! Bearer tokens by hash: sessions (per user, expiring) and API keys (own role, no expiry).

use chrono::{DateTime, Utc};
use sled::Transactional;

use super::keys::KeyBuf;
use super::{Store, StoreError, abort, decode, encode};
use crate::domain::auth::TokenRecord;

pub struct Tokens<'a> {
    store: &'a Store,
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// Stores a token under its hash, with its user and expiry indexes. A session is refused with
    /// `NotFound` if its user was erased meanwhile.
    pub fn insert(&self, hash: &[u8; 32], record: &TokenRecord) -> Result<(), StoreError> {
        let t = self.store.trees();
        let value = encode(record)?;
        (&t.tokens, &t.user_token, &t.token_expiry, &t.users).transaction(
            |(tokens, user_token, token_expiry, users)| {
                if let Some(user) = record.user_id {
                    if users.get(user.as_bytes())?.is_none() {
                        return abort(StoreError::NotFound);
                    }
                    user_token.insert(KeyBuf::new().uuid(user).bytes(hash).build(), &[])?;
                }
                if let Some(at) = record.expires_at {
                    token_expiry.insert(KeyBuf::new().time(at).bytes(hash).build(), &[])?;
                }
                tokens.insert(&hash[..], value.as_slice())?;
                Ok(())
            },
        )?;
        Ok(())
    }

    pub fn get(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError> {
        self.store
            .trees()
            .tokens
            .get(hash)?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Removes a token and its index entries; returns whether it existed.
    pub fn revoke(&self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        let t = self.store.trees();
        let removed = (&t.tokens, &t.user_token, &t.token_expiry).transaction(
            |(tokens, user_token, token_expiry)| {
                let Some(raw) = tokens.remove(&hash[..])? else {
                    return Ok(false);
                };
                let record: TokenRecord = match decode(&raw) {
                    Ok(r) => r,
                    Err(e) => return abort(e),
                };
                if let Some(user) = record.user_id {
                    user_token.remove(KeyBuf::new().uuid(user).bytes(hash).build())?;
                }
                if let Some(at) = record.expires_at {
                    token_expiry.remove(KeyBuf::new().time(at).bytes(hash).build())?;
                }
                Ok(true)
            },
        )?;
        Ok(removed)
    }

    /// Deletes tokens that expired before `now`, walking the expiry index (no full scan).
    pub fn purge_expired(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let end = KeyBuf::new().time(now).build();
        let expired: Vec<[u8; 32]> = self
            .store
            .trees()
            .token_expiry
            .range(..end)
            .keys()
            .filter_map(|k| k.ok())
            .filter_map(|k| k.get(8..40).and_then(|h| <[u8; 32]>::try_from(h).ok()))
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
