//! Users: one key per user (`users` UserId(16) → User). The email index (case-folded email →
//! user), the person index (address without its `+tag` → users), every user's role and whether
//! their address is confirmed, their confirmed phone numbers and the user count live in memory
//! ([`UserIndex`]), rebuilt from the records when the store opens and changed only by the one
//! writer, which is what makes the uniqueness checks safe without a transaction. Creating a user
//! writes one key.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use uuid::Uuid;

use super::{Store, StoreError, Trees, decode, encode, values_after};
use crate::domain::user::{Email, Role, User, UserChanges};

/// What requests read of a user on every call, from memory.
#[derive(Debug, Clone)]
struct Account {
    /// Sessions act with their user's current role.
    role: Role,
    /// Whether their email address is confirmed.
    verified: bool,
    /// Their address, so checkouts find what they did before as a guest under it.
    email: Email,
}

impl Account {
    fn of(user: &User) -> Self {
        Self {
            role: user.role,
            verified: user.email_verified(),
            email: user.email.clone(),
        }
    }
}

/// The in-memory secondary indexes of users.
#[derive(Default)]
pub(crate) struct UserIndex {
    by_email: DashMap<String, Uuid>,
    /// The person behind an address ([`crate::domain::user::Email::person`] with `+tags`
    /// folded) → the users with such an address, oldest first.
    by_person: DashMap<String, Vec<Uuid>>,
    accounts: DashMap<Uuid, Account>,
    /// Confirmed phone number → the users it was confirmed for, oldest first (a wallet is found
    /// by phone). A number typed but not confirmed is not here: it reserves nothing.
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
            index.add(&user);
        }
        Ok(index)
    }

    fn add(&self, user: &User) {
        self.by_email.insert(user.email.folded(), user.id);
        insert_sorted(&self.by_person, user.email.person(true), user.id);
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Some(phone) = user.verified_phone() {
            insert_sorted(&self.by_phone, phone.as_str().to_owned(), user.id);
        }
        self.accounts.insert(user.id, Account::of(user));
    }

    /// `before` was rewritten as `after`: only what changed moves, and the account entry is
    /// overwritten in place (a request authenticating meanwhile always finds the user).
    fn changed(&self, before: &User, after: &User) {
        if before.email.folded() != after.email.folded() {
            self.by_email.remove(&before.email.folded());
            self.by_email.insert(after.email.folded(), after.id);
        }
        let (was, is) = (before.email.person(true), after.email.person(true));
        if was != is {
            remove_from(&self.by_person, &was, after.id);
            insert_sorted(&self.by_person, is, after.id);
        }
        if before.verified_phone() != after.verified_phone() {
            if let Some(phone) = before.verified_phone() {
                remove_from(&self.by_phone, phone.as_str(), after.id);
            }
            if let Some(phone) = after.verified_phone() {
                insert_sorted(&self.by_phone, phone.as_str().to_owned(), after.id);
            }
        }
        self.accounts.insert(after.id, Account::of(after));
    }

    fn remove(&self, user: &User) {
        self.by_email.remove(&user.email.folded());
        remove_from(&self.by_person, &user.email.person(true), user.id);
        if let Some(phone) = user.verified_phone() {
            remove_from(&self.by_phone, phone.as_str(), user.id);
        }
        self.accounts.remove(&user.id);
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Puts `id` into the list under `key`, in id (creation) order.
fn insert_sorted(map: &DashMap<String, Vec<Uuid>>, key: String, id: Uuid) {
    let mut users = map.entry(key).or_default();
    if let Err(at) = users.binary_search(&id) {
        users.insert(at, id);
    }
}

/// Takes `id` out of the list under `key`, and the key with its last id.
fn remove_from(map: &DashMap<String, Vec<Uuid>>, key: &str, id: Uuid) {
    if let Some(mut users) = map.get_mut(key) {
        users.retain(|u| *u != id);
    }
    map.remove_if(key, |_, users| users.is_empty());
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
        self.register(user, false)
    }

    /// Inserts a new user; `Conflict` when the address is taken, or, with `fold_plus_tags`,
    /// when the person behind it has an account (`ann+shop@x` when `ann@x` exists). Writer only.
    pub fn register(&self, user: &User, fold_plus_tags: bool) -> Result<(), StoreError> {
        if self.address_taken(&user.email, fold_plus_tags, user.id) {
            return Err(StoreError::Conflict("a user with this email exists"));
        }
        if let Some(phone) = user.verified_phone() {
            self.take_phone(user.id, phone, user.created_at)?;
        }
        self.store
            .trees()
            .users
            .insert(user.id.as_bytes(), encode(user)?)?;
        self.index().add(user);
        Ok(())
    }

    /// Whether someone other than `me` has `email`, or the person behind it (`fold_plus_tags`).
    pub fn address_taken(&self, email: &Email, fold_plus_tags: bool, me: Uuid) -> bool {
        self.address_owner(email, fold_plus_tags, me).is_some()
    }

    /// Who other than `me` has `email`, or (`fold_plus_tags`) the oldest account of the person
    /// behind it. Memory only.
    pub fn address_owner(&self, email: &Email, fold_plus_tags: bool, me: Uuid) -> Option<Uuid> {
        let index = self.index();
        let exact = index
            .by_email
            .get(&email.folded())
            .map(|u| *u)
            .filter(|u| *u != me);
        exact.or_else(|| {
            fold_plus_tags
                .then(|| {
                    index
                        .by_person
                        .get(&email.person(true))
                        .and_then(|users| users.iter().copied().find(|u| *u != me))
                })
                .flatten()
        })
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
    pub fn role(&self, id: Uuid) -> Option<Role> {
        self.index().accounts.get(&id).map(|a| a.role)
    }

    /// Whether a user's email address is confirmed (memory only); `None` when there is no such
    /// user.
    pub fn verified(&self, id: Uuid) -> Option<bool> {
        self.index().accounts.get(&id).map(|a| a.verified)
    }

    /// A user's address (memory only); `None` when there is no such user.
    pub fn email_of(&self, id: Uuid) -> Option<Email> {
        self.index().accounts.get(&id).map(|a| a.email.clone())
    }

    /// The user a checkout's email reference names, from memory: the one with that address
    /// (case-blind), or with `fold_plus_tags` the oldest with an address of that person; only
    /// one whose address is confirmed (an unconfirmed account is not proven to be that person).
    pub fn person(&self, email: &Email, fold_plus_tags: bool) -> Option<Uuid> {
        let index = self.index();
        let found = if fold_plus_tags {
            index
                .by_person
                .get(&email.person(true))
                .and_then(|users| users.first().copied())
        } else {
            index.by_email.get(&email.folded()).map(|u| *u)
        };
        found.filter(|id| self.verified(*id) == Some(true))
    }

    /// The oldest user who confirmed this phone number.
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
        if !changes.apply(&mut user, now) {
            return Ok(user);
        }
        if user.email.folded() != before.email.folded()
            && self.index().by_email.contains_key(&user.email.folded())
        {
            return Err(StoreError::Conflict("a user with this email exists"));
        }
        // A number proven (or vouched for) here is nobody else's any more.
        if let Some(phone) = user.verified_phone()
            && before.verified_phone() != Some(phone)
        {
            self.take_phone(id, phone, now)?;
        }
        self.store
            .trees()
            .users
            .insert(id.as_bytes(), encode(&user)?)?;
        self.index().changed(&before, &user);
        Ok(user)
    }

    /// Gives `phone`, just proven by `user`, to them alone: another account that had confirmed
    /// it loses it (a number belongs to whoever proves it last: carriers give numbers to new
    /// people). The accounts that lost it (one key each). Writer only.
    pub fn take_phone(
        &self,
        user: Uuid,
        phone: &crate::domain::user::Phone,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        let others: Vec<Uuid> = self
            .index()
            .by_phone
            .get(phone.as_str())
            .map(|users| users.iter().copied().filter(|u| *u != user).collect())
            .unwrap_or_default();
        for other in &others {
            let lost = UserChanges {
                phone: Some(None),
                ..UserChanges::default()
            };
            self.update(*other, &lost, now)?;
        }
        Ok(others)
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
        self.index().remove(&user);
        let tokens = self.store.tokens().revoke_user(id)?;
        Ok(Erased { tokens })
    }

    pub fn count(&self) -> Result<u64, StoreError> {
        Ok(self.index().count.load(Ordering::Relaxed))
    }
}
