//! Subscriptions to retailers and categories: one key per subscription
//! (`subscriptions` UserId(16) ‖ SubscriptionId(16) → Subscription).
//!
//! In memory ([`SubscriptionIndex`], rebuilt when the store opens, changed only by the writer):
//! each user's subscriptions (what digests select from, without a store read) and who follows a
//! retailer or category (by kind and case-folded key), which is also the uniqueness of
//! (user, target).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use dashmap::DashMap;
use parking_lot::RwLock;
use uuid::Uuid;

use super::keys::KeyBuf;
use super::{Store, StoreError, Trees, decode, encode};
use crate::domain::digest::{Subscription, Target};

/// A target as the index knows it: its kind tag and case-folded key.
type TargetKey = (u8, String);

fn target_key(target: &Target) -> TargetKey {
    (target.tag(), target.key())
}

/// The in-memory indexes of subscriptions.
#[derive(Default)]
pub(crate) struct SubscriptionIndex {
    /// A user's subscriptions, oldest first (shared: a digest batch holds them without copying).
    by_user: DashMap<Uuid, Arc<Vec<Subscription>>>,
    followers: RwLock<HashMap<TargetKey, BTreeSet<Uuid>>>,
}

impl SubscriptionIndex {
    pub(crate) fn load(trees: &Trees) -> Result<Self, StoreError> {
        let index = Self::default();
        let mut by_user: HashMap<Uuid, Vec<Subscription>> = HashMap::new();
        {
            let mut followers = index.followers.write();
            for kv in trees.subscriptions.iter() {
                let (_, v) = kv?;
                let sub: Subscription = decode(&v)?;
                followers
                    .entry(target_key(&sub.target))
                    .or_default()
                    .insert(sub.user_id);
                by_user.entry(sub.user_id).or_default().push(sub);
            }
        }
        for (user, subs) in by_user {
            index.by_user.insert(user, Arc::new(subs));
        }
        Ok(index)
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

    /// Adds a subscription; `Conflict` when the user already follows that target. Writer only.
    pub fn add(&self, sub: &Subscription) -> Result<(), StoreError> {
        let key = target_key(&sub.target);
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
        self.index()
            .followers
            .write()
            .entry(key)
            .or_default()
            .insert(sub.user_id);
        let mut list = self.index().by_user.entry(sub.user_id).or_default();
        let mut next = list.as_ref().clone();
        next.push(sub.clone());
        *list = Arc::new(next);
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
        self.unindex(&sub);
        Ok(sub)
    }

    fn unindex(&self, sub: &Subscription) {
        let key = target_key(&sub.target);
        let mut followers = self.index().followers.write();
        if let Some(users) = followers.get_mut(&key) {
            users.remove(&sub.user_id);
            if users.is_empty() {
                followers.remove(&key);
            }
        }
        drop(followers);
        if let Some(mut list) = self.index().by_user.get_mut(&sub.user_id) {
            let next: Vec<Subscription> = list.iter().filter(|s| s.id != sub.id).cloned().collect();
            *list = Arc::new(next);
        }
        self.index()
            .by_user
            .remove_if(&sub.user_id, |_, list| list.is_empty());
    }

    /// A user's subscriptions, oldest first (from memory).
    pub fn of_user(&self, user: Uuid) -> Result<Arc<Vec<Subscription>>, StoreError> {
        Ok(self
            .index()
            .by_user
            .get(&user)
            .map(|l| l.value().clone())
            .unwrap_or_default())
    }

    /// The users following a retailer or category, after `after`, at most `limit`.
    pub fn subscribers(
        &self,
        target: &Target,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Uuid>, StoreError> {
        let followers = self.index().followers.read();
        let Some(users) = followers.get(&target_key(target)) else {
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
        let subs = self.of_user(user)?;
        let mut batch = sled::Batch::default();
        for s in subs.iter() {
            batch.remove(record_key(user, s.id));
        }
        self.store.trees().subscriptions.apply_batch(batch)?;
        for s in subs.iter() {
            self.unindex(s);
        }
        Ok(subs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreSettings;

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
        let store = Store::open(&StoreSettings {
            path: dir.path().join("data"),
            cache_capacity_mb: 16,
            fsync: false,
            writer_queue: 65_536,
        })
        .unwrap();
        let subs = store.subscriptions();
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let acme_a = sub(a, Target::Retailer("Acme".into()));
        subs.add(&acme_a).unwrap();
        subs.add(&sub(b, Target::Retailer("ACME ".into()))).unwrap();
        // Same name, other kind; and a retailer whose key merely starts with "acme".
        subs.add(&sub(c, Target::Category("Acme".into()))).unwrap();
        subs.add(&sub(c, Target::Retailer("Acme Outlet".into())))
            .unwrap();
        assert!(matches!(
            subs.add(&sub(a, Target::Retailer("acme".into()))),
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
