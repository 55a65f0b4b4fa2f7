//! Subscriptions to retailers and categories.
//!
//! Trees:
//! - `subscriptions`      UserId(16) ‖ SubscriptionId(16) → Subscription (JSON): a user's list
//! - `target_subscriber`  tag(1: `r`|`c`) ‖ name key ‖ 0xff ‖ UserId(16) → SubscriptionId(16):
//!   who follows a retailer or category (and the uniqueness of (user, target))

use sled::Transactional;
use uuid::Uuid;

use super::keys::{KeyBuf, uuid_from};
use super::{Store, StoreError, abort, decode, encode};
use crate::domain::digest::{Subscription, Target};

pub struct Subscriptions<'a> {
    store: &'a Store,
}

fn record_key(user: Uuid, id: Uuid) -> Vec<u8> {
    KeyBuf::new().uuid(user).uuid(id).build()
}

fn target_prefix(target: &Target) -> Vec<u8> {
    KeyBuf::new()
        .bytes(&[target.tag()])
        .str(&target.key())
        .build()
}

fn target_key(target: &Target, user: Uuid) -> Vec<u8> {
    KeyBuf::new()
        .bytes(&target_prefix(target))
        .uuid(user)
        .build()
}

impl<'a> Subscriptions<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// Adds a subscription; `Conflict` when the user already follows that target.
    pub fn add(&self, sub: &Subscription) -> Result<(), StoreError> {
        let t = self.store.trees();
        let value = encode(sub)?;
        let index = target_key(&sub.target, sub.user_id);
        (&t.subscriptions, &t.target_subscriber).transaction(|(subs, by_target)| {
            if by_target.get(&index)?.is_some() {
                return abort(StoreError::Conflict("already subscribed"));
            }
            by_target.insert(index.as_slice(), sub.id.as_bytes())?;
            subs.insert(record_key(sub.user_id, sub.id), value.as_slice())?;
            Ok(())
        })?;
        Ok(())
    }

    /// Removes one of a user's subscriptions; `NotFound` when it is not theirs or gone.
    pub fn remove(&self, user: Uuid, id: Uuid) -> Result<Subscription, StoreError> {
        let t = self.store.trees();
        let key = record_key(user, id);
        let removed =
            (&t.subscriptions, &t.target_subscriber).transaction(|(subs, by_target)| {
                let Some(raw) = subs.remove(key.as_slice())? else {
                    return abort(StoreError::NotFound);
                };
                let sub: Subscription = match decode(&raw) {
                    Ok(s) => s,
                    Err(e) => return abort(e),
                };
                by_target.remove(target_key(&sub.target, user))?;
                Ok(sub)
            })?;
        Ok(removed)
    }

    /// A user's subscriptions, oldest first.
    pub fn of_user(&self, user: Uuid) -> Result<Vec<Subscription>, StoreError> {
        self.store
            .trees()
            .subscriptions
            .scan_prefix(user.as_bytes())
            .values()
            .map(|v| decode(&v?))
            .collect()
    }

    /// The users following a retailer or category, after `after`, at most `limit`.
    pub fn subscribers(
        &self,
        target: &Target,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Uuid>, StoreError> {
        let tree = &self.store.trees().target_subscriber;
        let prefix = target_prefix(target);
        let start = match after {
            Some(u) => KeyBuf::new().bytes(&prefix).uuid(u).bytes(&[0]).build(),
            None => prefix.clone(),
        };
        let mut out = Vec::new();
        for kv in tree.range(start..) {
            let (k, _) = kv?;
            if !k.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            if let Some(u) = k.get(prefix.len()..).and_then(uuid_from) {
                out.push(u);
            }
        }
        Ok(out)
    }

    /// Removes every subscription of a user (erasure).
    pub fn erase_user(&self, user: Uuid) -> Result<usize, StoreError> {
        let subs = self.of_user(user)?;
        let t = self.store.trees();
        (&t.subscriptions, &t.target_subscriber).transaction(|(records, by_target)| {
            for s in &subs {
                records.remove(record_key(user, s.id))?;
                by_target.remove(target_key(&s.target, user))?;
            }
            Ok(())
        })?;
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
