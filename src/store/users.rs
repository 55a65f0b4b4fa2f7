//! Users and the email index. Email uniqueness (case-folded) and the user counter are kept in the
//! same transaction as the record.

use sled::Transactional;
use uuid::Uuid;

use super::keys::{KeyBuf, uuid_from};
use super::{Store, StoreError, abort, counters, decode, encode, values_after};
use crate::domain::auth::TokenRecord;
use crate::domain::user::{User, UserChanges};

pub struct Users<'a> {
    store: &'a Store,
}

/// What erasing a user removed, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Erased {
    pub tokens: usize,
}

impl<'a> Users<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// Inserts a new user; `Conflict` when the email is taken.
    pub fn create(&self, user: &User) -> Result<(), StoreError> {
        let t = self.store.trees();
        let value = encode(user)?;
        let email = user.email.folded();
        (&t.users, &t.email_user, &t.counters).transaction(|(users, email_user, counters)| {
            if email_user.get(email.as_bytes())?.is_some() {
                return abort(StoreError::Conflict("a user with this email exists"));
            }
            email_user.insert(email.as_bytes(), user.id.as_bytes())?;
            users.insert(user.id.as_bytes(), value.as_slice())?;
            counters::bump(counters, counters::USERS, 1)?;
            Ok(())
        })?;
        Ok(())
    }

    pub fn get(&self, id: Uuid) -> Result<Option<User>, StoreError> {
        self.store
            .trees()
            .users
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    pub fn by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let folded = email.trim().to_ascii_lowercase();
        match self.store.trees().email_user.get(folded.as_bytes())? {
            None => Ok(None),
            Some(id) => {
                let id = uuid_from(&id).ok_or_else(|| StoreError::Corrupt("email index".into()))?;
                self.get(id)
            }
        }
    }

    /// Applies changes atomically; `NotFound` when the user is gone, `Conflict` when the new email
    /// belongs to someone else. Returns the user as stored after the change.
    pub fn update(
        &self,
        id: Uuid,
        changes: &UserChanges,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<User, StoreError> {
        let t = self.store.trees();
        let user = (&t.users, &t.email_user).transaction(|(users, email_user)| {
            let Some(raw) = users.get(id.as_bytes())? else {
                return abort(StoreError::NotFound);
            };
            let mut user: User = match decode(&raw) {
                Ok(u) => u,
                Err(e) => return abort(e),
            };
            let old_email = user.email.folded();
            if !changes.apply(&mut user, now) {
                return Ok(user);
            }
            let new_email = user.email.folded();
            if new_email != old_email {
                if email_user.get(new_email.as_bytes())?.is_some() {
                    return abort(StoreError::Conflict("a user with this email exists"));
                }
                email_user.remove(old_email.as_bytes())?;
                email_user.insert(new_email.as_bytes(), id.as_bytes())?;
            }
            let value = match encode(&user) {
                Ok(v) => v,
                Err(e) => return abort(e),
            };
            users.insert(id.as_bytes(), value)?;
            Ok(user)
        })?;
        Ok(user)
    }

    /// Users in id (creation) order after `after`, at most `limit`.
    pub fn list(&self, after: Option<Uuid>, limit: usize) -> Result<Vec<User>, StoreError> {
        values_after(&self.store.trees().users, after, limit)
    }

    /// Erases a user, their email index entry and tokens. Subscriptions and digests are erased
    /// by their own modules first (`Subscriptions::erase_user`, `Digests::erase_user`; the HTTP
    /// handler does all three in one durable write). `NotFound` when already gone.
    pub fn erase(&self, id: Uuid) -> Result<Erased, StoreError> {
        let t = self.store.trees();
        // Transactions cannot scan: collect the user's tokens first. A token created after this
        // scan cannot authenticate anyway, since its user is gone.
        let prefix = KeyBuf::new().uuid(id).build();
        let token_hashes: Vec<Vec<u8>> = t
            .user_token
            .scan_prefix(&prefix)
            .keys()
            .map(|k| k.map(|k| k.get(16..).unwrap_or_default().to_vec()))
            .collect::<Result<_, _>>()?;
        let mut expiry_keys = Vec::new();
        for h in &token_hashes {
            if let Some(v) = t.tokens.get(h)? {
                let record: TokenRecord = decode(&v)?;
                if let Some(at) = record.expires_at {
                    expiry_keys.push(KeyBuf::new().time(at).bytes(h).build());
                }
            }
        }
        (
            &t.users,
            &t.email_user,
            &t.counters,
            &t.tokens,
            &t.user_token,
            &t.token_expiry,
        )
            .transaction(
                |(users, email_user, counters, tokens, user_token, token_expiry)| {
                    let Some(raw) = users.remove(id.as_bytes())? else {
                        return abort(StoreError::NotFound);
                    };
                    let user: User = match decode(&raw) {
                        Ok(u) => u,
                        Err(e) => return abort(e),
                    };
                    email_user.remove(user.email.folded().as_bytes())?;
                    counters::bump(counters, counters::USERS, -1)?;
                    for h in &token_hashes {
                        tokens.remove(h.as_slice())?;
                        user_token.remove(KeyBuf::new().uuid(id).bytes(h).build())?;
                    }
                    for k in &expiry_keys {
                        token_expiry.remove(k.as_slice())?;
                    }
                    Ok(())
                },
            )?;
        Ok(Erased {
            tokens: token_hashes.len(),
        })
    }

    pub fn count(&self) -> Result<u64, StoreError> {
        self.store.counters().get(counters::USERS)
    }
}
