//! Sign-ups waiting for their address to be confirmed: `signups` SignUpId(16) → SignUp, the
//! account to be made (its id becomes the user's), kept until the link mailed to it is opened
//! with its password, or until the link expires. Nothing is anyone's meanwhile: the address,
//! a number typed with it and the account itself exist only once the mailbox has been proven, so
//! typing someone's address first holds nothing and signs nobody in.
//!
//! In memory ([`SignUpIndex`]): the sign-ups of each person (an address with case and, when
//! folded, `+tags` ignored), oldest first, at most [`PER_PERSON`]; and when each expires, so the
//! purge reads nothing it does not remove.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Store, StoreError, Trees, decode, encode};
use crate::domain::user::User;

/// Sign-ups kept waiting for one person; a newer one ends the oldest (its link stops working).
pub const PER_PERSON: usize = 3;

/// A sign-up waiting for its link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignUp {
    pub v: u16,
    /// The account made when the link is opened with its password (unconfirmed until then).
    pub user: User,
    /// The person behind the address, as the index groups it (fixed at sign-up: the folding
    /// setting may change before the link is opened).
    pub person: String,
    #[serde(with = "crate::domain::times::micros")]
    pub expires_at: DateTime<Utc>,
}

impl SignUp {
    pub const VERSION: u16 = 1;
}

#[derive(Default)]
struct State {
    by_person: HashMap<String, Vec<Uuid>>,
    /// (expiry in microseconds, as stored; id).
    expiry: BTreeSet<(i64, Uuid)>,
}

impl State {
    fn add(&mut self, s: &SignUp) {
        let ids = self.by_person.entry(s.person.clone()).or_default();
        if let Err(at) = ids.binary_search(&s.user.id) {
            ids.insert(at, s.user.id);
        }
        self.expiry
            .insert((s.expires_at.timestamp_micros(), s.user.id));
    }

    fn remove(&mut self, s: &SignUp) {
        if let Some(ids) = self.by_person.get_mut(&s.person) {
            ids.retain(|id| *id != s.user.id);
            if ids.is_empty() {
                self.by_person.remove(&s.person);
            }
        }
        self.expiry
            .remove(&(s.expires_at.timestamp_micros(), s.user.id));
    }
}

/// The sign-ups of each person and their expiry order.
#[derive(Default)]
pub(crate) struct SignUpIndex(Mutex<State>);

impl SignUpIndex {
    /// Reads every waiting sign-up once (at open).
    pub(crate) fn load(trees: &Trees) -> Result<Self, StoreError> {
        let index = Self::default();
        {
            let mut state = index.0.lock();
            for kv in trees.signups.iter() {
                let (_, v) = kv?;
                state.add(&decode(&v)?);
            }
        }
        Ok(index)
    }
}

pub struct SignUps<'a> {
    store: &'a Store,
}

impl<'a> SignUps<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    fn index(&self) -> &SignUpIndex {
        &self.store.indexes().signups
    }

    /// The sign-up with this id, if it is still waiting (expired ones too, until purged: the
    /// caller compares `expires_at`).
    pub fn get(&self, id: Uuid) -> Result<Option<SignUp>, StoreError> {
        self.store
            .trees()
            .signups
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Keeps a sign-up (one key); past [`PER_PERSON`] for its person the oldest go, and their
    /// ids are returned (one key each, for the caller to drop what else they own). Writer only.
    pub fn add(&self, signup: &SignUp) -> Result<Vec<Uuid>, StoreError> {
        let waiting: Vec<Uuid> = self
            .index()
            .0
            .lock()
            .by_person
            .get(&signup.person)
            .cloned()
            .unwrap_or_default();
        let over = (waiting.len() + 1).saturating_sub(PER_PERSON);
        let mut ended = Vec::with_capacity(over);
        for id in waiting.into_iter().take(over) {
            if self.remove(id)?.is_some() {
                ended.push(id);
            }
        }
        self.store
            .trees()
            .signups
            .insert(signup.user.id.as_bytes(), encode(signup)?)?;
        self.index().0.lock().add(signup);
        Ok(ended)
    }

    /// Removes one sign-up (one key); what it was, if it was there. Writer only.
    pub fn remove(&self, id: Uuid) -> Result<Option<SignUp>, StoreError> {
        let Some(old) = self.store.trees().signups.remove(id.as_bytes())? else {
            return Ok(None);
        };
        let old: SignUp = decode(&old)?;
        self.index().0.lock().remove(&old);
        Ok(Some(old))
    }

    /// Removes every sign-up of `person` (one key each): their ids. Writer only.
    pub fn remove_person(&self, person: &str) -> Result<Vec<Uuid>, StoreError> {
        let ids = self
            .index()
            .0
            .lock()
            .by_person
            .get(person)
            .cloned()
            .unwrap_or_default();
        let mut gone = Vec::with_capacity(ids.len());
        for id in ids {
            if self.remove(id)?.is_some() {
                gone.push(id);
            }
        }
        Ok(gone)
    }

    /// Removes the sign-ups whose link expired by `now`, at most `limit`: their ids. Writer only.
    pub fn purge_expired(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Uuid>, StoreError> {
        let due: Vec<Uuid> = self
            .index()
            .0
            .lock()
            .expiry
            .iter()
            .take_while(|(at, _)| *at <= now.timestamp_micros())
            .take(limit)
            .map(|(_, id)| *id)
            .collect();
        let mut gone = Vec::with_capacity(due.len());
        for id in due {
            if self.remove(id)?.is_some() {
                gone.push(id);
            }
        }
        Ok(gone)
    }

    /// How many sign-ups wait (memory only).
    pub fn waiting(&self) -> usize {
        self.index().0.lock().expiry.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::store::test_support;

    fn signup(email: &str, person: &str, expires_at: DateTime<Utc>) -> SignUp {
        SignUp {
            v: SignUp::VERSION,
            user: User {
                email_verified_at: None,
                ..test_support::user(email)
            },
            person: person.into(),
            expires_at,
        }
    }

    #[test]
    fn a_person_keeps_the_newest_sign_ups_and_they_end_together_or_on_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let store = test_support::store(dir.path());
        let now = Utc::now();
        let s = store.signups();
        let ann: Vec<SignUp> = (0..4)
            .map(|i| {
                signup(
                    &format!("ann+{i}@x.org"),
                    "ann@x.org",
                    now + Duration::hours(1),
                )
            })
            .collect();
        for (i, signup) in ann.iter().enumerate() {
            let ended = s.add(signup).unwrap();
            let want: Vec<Uuid> = if i == PER_PERSON {
                vec![ann[0].user.id]
            } else {
                vec![]
            };
            assert_eq!(ended, want, "sign-up {i}");
        }
        assert!(s.get(ann[0].user.id).unwrap().is_none(), "the oldest ended");
        assert_eq!(
            s.get(ann[3].user.id).unwrap().map(|a| a.user.email),
            Some(ann[3].user.email.clone())
        );
        let bob = signup("bob@x.org", "bob@x.org", now - Duration::seconds(1));
        s.add(&bob).unwrap();
        assert_eq!(s.waiting(), PER_PERSON + 1);

        // Expired ones go with the purge, the others stay.
        assert_eq!(s.purge_expired(now, 10).unwrap(), vec![bob.user.id]);
        assert!(s.get(bob.user.id).unwrap().is_none());
        // A person's sign-ups end together; memory agrees with the records after a reopen.
        let mut gone = s.remove_person("ann@x.org").unwrap();
        gone.sort();
        let mut want: Vec<Uuid> = ann[1..].iter().map(|a| a.user.id).collect();
        want.sort();
        assert_eq!(gone, want);
        assert_eq!(s.waiting(), 0);
        s.add(&ann[0]).unwrap();
        drop(store);
        let store = test_support::store(dir.path());
        assert_eq!(store.signups().waiting(), 1);
        assert_eq!(
            store.signups().remove_person("ann@x.org").unwrap(),
            vec![ann[0].user.id]
        );
    }
}
