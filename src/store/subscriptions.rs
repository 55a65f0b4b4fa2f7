//! Subscriptions to retailers and categories: one key per subscription
//! (`subscriptions` UserId(16) ‖ SubscriptionId(16) → Subscription).
//!
//! In memory ([`SubscriptionIndex`], rebuilt when the store opens, changed only by the writer):
//! what each user follows (kind and case-folded key, shared between users: what digests select
//! from, without a store read) and who follows a retailer or category, which is also the
//! uniqueness of (user, target). Listing a user's subscriptions reads their records.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::RwLock;
use uuid::Uuid;

use super::keys::KeyBuf;
use super::vouchers::Named;
use super::{Store, StoreError, Trees, decode, encode};
use crate::domain::digest::{Subscription, Target};

/// What one subscription follows, as digests need it: the kind and the case-folded key (one
/// shared allocation per key, however many users follow it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed {
    pub id: Uuid,
    pub kind: Named,
    pub key: Arc<str>,
}

type TargetKey = (Named, Arc<str>);

fn kind_of(target: &Target) -> Named {
    match target {
        Target::Retailer(_) => Named::Retailer,
        Target::Category(_) => Named::Category,
    }
}

/// The in-memory indexes of subscriptions.
#[derive(Default)]
pub(crate) struct SubscriptionIndex {
    /// What a user follows, oldest first (shared: a digest batch holds it without copying).
    by_user: DashMap<Uuid, Arc<[Followed]>>,
    followers: RwLock<HashMap<TargetKey, BTreeSet<Uuid>>>,
}

impl SubscriptionIndex {
    pub(crate) fn load(trees: &Trees) -> Result<Self, StoreError> {
        let index = Self::default();
        let mut by_user: HashMap<Uuid, Vec<Followed>> = HashMap::new();
        for kv in trees.subscriptions.iter() {
            let (_, v) = kv?;
            let sub: Subscription = decode(&v)?;
            let followed = index.follow(&sub);
            by_user.entry(sub.user_id).or_default().push(followed);
        }
        for (user, list) in by_user {
            index.by_user.insert(user, list.into());
        }
        Ok(index)
    }

    /// Adds `sub` to the followers of its target; returns it as the user's list holds it.
    fn follow(&self, sub: &Subscription) -> Followed {
        let kind = kind_of(&sub.target);
        let key = sub.target.key();
        let mut followers = self.followers.write();
        // The key already in the map, when someone follows it: shared, not copied.
        let shared = followers
            .get_key_value(&(kind, Arc::from(key.as_str())))
            .map(|((_, k), _)| k.clone())
            .unwrap_or_else(|| Arc::from(key));
        followers
            .entry((kind, shared.clone()))
            .or_default()
            .insert(sub.user_id);
        Followed {
            id: sub.id,
            kind,
            key: shared,
        }
    }
}

pub struct Subscriptions<'a> {
    store: &'a Store,
}

fn record_key(user: Uuid, id: Uuid) -> Vec<u8> {
    KeyBuf::new().uuid(user).uuid(id).build()
}

impl<'a> Subscriptions<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    fn index(&self) -> &SubscriptionIndex {
        &self.store.indexes().subscriptions
    }

    /// Adds a subscription; `Conflict` when the user already follows that target,
    /// `LimitReached` when they follow `max` already. Writer only.
    pub fn add(&self, sub: &Subscription, max: usize) -> Result<(), StoreError> {
        // The user may have been erased while this waited for the writer: nothing may outlive
        // them.
        if !self.store.users().exists(sub.user_id)? {
            return Err(StoreError::NotFound);
        }
        if self.followed(sub.user_id).len() >= max {
            return Err(StoreError::LimitReached {
                what: "subscriptions per user",
                max,
            });
        }
        let key = (kind_of(&sub.target), Arc::from(sub.target.key()));
        let taken = self
            .index()
            .followers
            .read()
            .get(&key)
            .is_some_and(|users| users.contains(&sub.user_id));
        if taken {
            return Err(StoreError::Conflict("already subscribed"));
        }
        self.store
            .trees()
            .subscriptions
            .insert(record_key(sub.user_id, sub.id), encode(sub)?)?;
        let followed = self.index().follow(sub);
        let mut list = self.index().by_user.entry(sub.user_id).or_default();
        let next: Vec<Followed> = list.iter().cloned().chain([followed]).collect();
        *list = next.into();
        Ok(())
    }

    /// Removes one of a user's subscriptions; `NotFound` when it is not theirs or gone. Writer
    /// only.
    pub fn remove(&self, user: Uuid, id: Uuid) -> Result<Subscription, StoreError> {
        let Some(raw) = self
            .store
            .trees()
            .subscriptions
            .remove(record_key(user, id))?
        else {
            return Err(StoreError::NotFound);
        };
        let sub: Subscription = decode(&raw)?;
        self.unindex(
            user,
            sub.id,
            (kind_of(&sub.target), Arc::from(sub.target.key())),
        );
        Ok(sub)
    }

    fn unindex(&self, user: Uuid, id: Uuid, key: TargetKey) {
        let mut followers = self.index().followers.write();
        if let Some(users) = followers.get_mut(&key) {
            users.remove(&user);
            if users.is_empty() {
                followers.remove(&key);
            }
        }
        drop(followers);
        if let Some(mut list) = self.index().by_user.get_mut(&user) {
            let next: Vec<Followed> = list.iter().filter(|f| f.id != id).cloned().collect();
            *list = next.into();
        }
        self.index()
            .by_user
            .remove_if(&user, |_, list| list.is_empty());
    }

    /// A user's subscriptions, oldest first (their records).
    pub fn of_user(&self, user: Uuid) -> Result<Vec<Subscription>, StoreError> {
        self.store
            .trees()
            .subscriptions
            .scan_prefix(user.as_bytes())
            .values()
            .map(|v| decode(&v?))
            .collect()
    }

    /// What a user follows, oldest first (from memory).
    pub fn followed(&self, user: Uuid) -> Arc<[Followed]> {
        self.index()
            .by_user
            .get(&user)
            .map(|l| l.value().clone())
            .unwrap_or_else(|| Arc::from([]))
    }

    /// The users following a retailer or category, after `after`, at most `limit`.
    pub fn subscribers(
        &self,
        target: &Target,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Uuid>, StoreError> {
        let followers = self.index().followers.read();
        let Some(users) = followers.get(&(kind_of(target), Arc::from(target.key()))) else {
            return Ok(Vec::new());
        };
        let range = match after {
            Some(u) => users.range((std::ops::Bound::Excluded(u), std::ops::Bound::Unbounded)),
            None => users.range(..),
        };
        Ok(range.take(limit).copied().collect())
    }

    /// Removes every subscription of a user (erasure), one batch on the one tree. Writer only.
    pub fn erase_user(&self, user: Uuid) -> Result<usize, StoreError> {
        let followed = self.followed(user);
        let mut batch = sled::Batch::default();
        for f in followed.iter() {
            batch.remove(record_key(user, f.id));
        }
        self.store.trees().subscriptions.apply_batch(batch)?;
        for f in followed.iter() {
            self.unindex(user, f.id, (f.kind, f.key.clone()));
        }
        Ok(followed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support;

    /// A stored user (subscriptions need one).
    fn user(store: &Store, email: &str) -> Uuid {
        let user = test_support::user(email);
        store.users().create(&user).unwrap();
        user.id
    }

    fn open(dir: &std::path::Path) -> Store {
        test_support::store(dir)
    }

    #[test]
    fn nothing_is_subscribed_for_a_user_erased_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let a = user(&store, "a@x.io");
        store.subscriptions().erase_user(a).unwrap();
        store.users().erase(a).unwrap();
        // A subscribe queued behind the erasure finds no user and writes nothing.
        assert!(matches!(
            store
                .subscriptions()
                .add(&sub(a, Target::Retailer("Acme".into())), 10),
            Err(StoreError::NotFound)
        ));
        assert!(store.trees().subscriptions.is_empty());
        assert!(store.subscriptions().followed(a).is_empty());
    }

    fn sub(user: Uuid, target: Target) -> Subscription {
        Subscription {
            v: Subscription::VERSION,
            id: Uuid::now_v7(),
            user_id: user,
            target,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn subscribers_of_a_target_come_from_the_index_and_follow_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let subs = store.subscriptions();
        let (a, b, c) = (
            user(&store, "a@x.io"),
            user(&store, "b@x.io"),
            user(&store, "c@x.io"),
        );
        let acme_a = sub(a, Target::Retailer("Acme".into()));
        subs.add(&acme_a, 10).unwrap();
        subs.add(&sub(b, Target::Retailer("ACME ".into())), 10)
            .unwrap();
        // Same name, other kind; and a retailer whose key merely starts with "acme".
        subs.add(&sub(c, Target::Category("Acme".into())), 10)
            .unwrap();
        subs.add(&sub(c, Target::Retailer("Acme Outlet".into())), 10)
            .unwrap();
        assert!(matches!(
            subs.add(&sub(a, Target::Retailer("acme".into())), 10),
            Err(StoreError::Conflict(_))
        ));

        let acme = Target::Retailer("acme".into());
        assert_eq!(subs.subscribers(&acme, None, 10).unwrap(), vec![a, b]);
        assert_eq!(subs.subscribers(&acme, None, 1).unwrap(), vec![a]);
        assert_eq!(subs.subscribers(&acme, Some(a), 10).unwrap(), vec![b]);
        assert_eq!(
            subs.subscribers(&Target::Category("ACME".into()), None, 10)
                .unwrap(),
            vec![c]
        );

        subs.remove(a, acme_a.id).unwrap();
        assert_eq!(subs.subscribers(&acme, None, 10).unwrap(), vec![b]);
        assert_eq!(subs.erase_user(c).unwrap(), 2);
        assert!(
            subs.subscribers(&Target::Category("acme".into()), None, 10)
                .unwrap()
                .is_empty()
        );
        assert_eq!(subs.of_user(b).unwrap().len(), 1);
    }
}
