//! Users: one key per user (`users` UserId(16) → User). The email index (case-folded email →
//! user) and the user count live in memory ([`UserIndex`]), rebuilt from the records when the
//! store opens and changed only by the one writer, which is what makes the uniqueness check safe
//! without a transaction. Creating a user writes one key.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use uuid::Uuid;

use super::{Store, StoreError, Trees, decode, encode, values_after};
use crate::domain::user::{User, UserChanges};

/// The in-memory secondary indexes of users.
#[derive(Default)]
pub(crate) struct UserIndex {
    by_email: DashMap<String, Uuid>,
    /// Every user's role: sessions act with their user's current role, read from here.
    roles: DashMap<Uuid, crate::domain::user::Role>,
    /// Phone number → the users giving it, oldest first (a wallet is found by phone).
    by_phone: DashMap<String, Vec<Uuid>>,
    count: AtomicU64,
}

impl UserIndex {
    /// Reads every user record once (at open).
    pub(crate) fn load(trees: &Trees) -> Result<Self, StoreError> {
        let index = Self::default();
        for kv in trees.users.iter() {
            let (_, v) = kv?;
            let user: User = decode(&v)?;
            index.by_email.insert(user.email.folded(), user.id);
            index.count.fetch_add(1, Ordering::Relaxed);
            index.add_phone(&user);
            index.roles.insert(user.id, user.role);
        }
        for mut users in index.by_phone.iter_mut() {
            users.sort_unstable();
        }
        Ok(index)
    }

    fn add_phone(&self, user: &User) {
        if let Some(phone) = &user.phone {
            self.by_phone
                .entry(phone.as_str().to_owned())
                .or_default()
                .push(user.id);
        }
    }

    fn remove_phone(&self, user: &User) {
        if let Some(phone) = &user.phone {
            if let Some(mut users) = self.by_phone.get_mut(phone.as_str()) {
                users.retain(|u| *u != user.id);
            }
            self.by_phone
                .remove_if(phone.as_str(), |_, users| users.is_empty());
        }
    }
}

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

    fn index(&self) -> &UserIndex {
        &self.store.indexes().users
    }

    /// Inserts a new user; `Conflict` when the email is taken. Writer only.
    pub fn create(&self, user: &User) -> Result<(), StoreError> {
        let email = user.email.folded();
        if self.index().by_email.contains_key(&email) {
            return Err(StoreError::Conflict("a user with this email exists"));
        }
        self.phone_is_free(user.phone.as_ref(), user.id)?;
        self.store
            .trees()
            .users
            .insert(user.id.as_bytes(), encode(user)?)?;
        self.index().by_email.insert(email, user.id);
        self.index().count.fetch_add(1, Ordering::Relaxed);
        self.index().add_phone(user);
        self.index().roles.insert(user.id, user.role);
        Ok(())
    }

    /// A phone number belongs to one account at most: a till finds a wallet by it, so whoever
    /// registered someone else's number first would be handed their codes.
    fn phone_is_free(
        &self,
        phone: Option<&crate::domain::user::Phone>,
        user: Uuid,
    ) -> Result<(), StoreError> {
        let taken = phone.is_some_and(|p| {
            self.index()
                .by_phone
                .get(p.as_str())
                .is_some_and(|holders| holders.iter().any(|h| *h != user))
        });
        if taken {
            return Err(StoreError::Conflict(
                "this phone number belongs to another account",
            ));
        }
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

    pub fn exists(&self, id: Uuid) -> Result<bool, StoreError> {
        Ok(self.store.trees().users.contains_key(id.as_bytes())?)
    }

    /// The id of the user with `email` (case-blind), from memory.
    pub fn id_by_email(&self, email: &str) -> Option<Uuid> {
        let folded = email.trim().to_ascii_lowercase();
        self.index().by_email.get(&folded).map(|e| *e.value())
    }

    pub fn by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let folded = email.trim().to_ascii_lowercase();
        let id = self.index().by_email.get(&folded).map(|e| *e.value());
        match id {
            None => Ok(None),
            Some(id) => self.get(id),
        }
    }

    /// A user's current role (memory only); `None` when there is no such user.
    pub fn role(&self, id: Uuid) -> Option<crate::domain::user::Role> {
        self.index().roles.get(&id).map(|r| *r)
    }

    /// The oldest user giving this phone number.
    pub fn by_phone(&self, phone: &crate::domain::user::Phone) -> Result<Option<Uuid>, StoreError> {
        Ok(self
            .index()
            .by_phone
            .get(phone.as_str())
            .and_then(|users| users.first().copied()))
    }

    /// Applies changes; `NotFound` when the user is gone, `Conflict` when the new email belongs to
    /// someone else. Returns the user as stored after the change. Writer only.
    pub fn update(
        &self,
        id: Uuid,
        changes: &UserChanges,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<User, StoreError> {
        let mut user = self.get(id)?.ok_or(StoreError::NotFound)?;
        let before = user.clone();
        let old_email = user.email.folded();
        if !changes.apply(&mut user, now) {
            return Ok(user);
        }
        let new_email = user.email.folded();
        let email_changed = new_email != old_email;
        if email_changed && self.index().by_email.contains_key(&new_email) {
            return Err(StoreError::Conflict("a user with this email exists"));
        }
        if before.phone != user.phone {
            self.phone_is_free(user.phone.as_ref(), id)?;
        }
        self.store
            .trees()
            .users
            .insert(id.as_bytes(), encode(&user)?)?;
        if email_changed {
            self.index().by_email.remove(&old_email);
            self.index().by_email.insert(new_email, id);
        }
        self.index().roles.insert(id, user.role);
        if before.phone != user.phone {
            self.index().remove_phone(&before);
            self.index().add_phone(&user);
            if let Some(phone) = &user.phone
                && let Some(mut users) = self.index().by_phone.get_mut(phone.as_str())
            {
                users.sort_unstable();
            }
        }
        Ok(user)
    }

    /// Users in id (creation) order after `after`, at most `limit`.
    pub fn list(&self, after: Option<Uuid>, limit: usize) -> Result<Vec<User>, StoreError> {
        values_after(&self.store.trees().users, after, limit)
    }

    /// Erases a user and their tokens. Subscriptions and digests are erased by their own modules
    /// first (the HTTP handler does all in one writer command). The user record goes first: a
    /// crash before the tokens are gone leaves tokens of no user, which cannot authenticate and
    /// are removed when the store next opens. `NotFound` when already gone. Writer only.
    pub fn erase(&self, id: Uuid) -> Result<Erased, StoreError> {
        let Some(raw) = self.store.trees().users.remove(id.as_bytes())? else {
            return Err(StoreError::NotFound);
        };
        let user: User = decode(&raw)?;
        self.index().by_email.remove(&user.email.folded());
        self.index().remove_phone(&user);
        self.index().roles.remove(&id);
        self.index().count.fetch_sub(1, Ordering::Relaxed);
        let tokens = self.store.tokens().revoke_user(id)?;
        Ok(Erased { tokens })
    }

    pub fn count(&self) -> Result<u64, StoreError> {
        Ok(self.index().count.load(Ordering::Relaxed))
    }
}
