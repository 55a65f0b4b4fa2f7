//! Push subscriptions (tree `push_subscriptions`: UserId(16) ‖ SubscriptionId(16) →
//! PushSubscription, one key each). A user's are found by prefix (a few per user).

use uuid::Uuid;

use super::{Store, StoreError, decode, encode};
use crate::domain::push::PushSubscription;

fn key(user: Uuid, id: Uuid) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(user.as_bytes());
    k[16..].copy_from_slice(id.as_bytes());
    k
}

/// How adding a subscription went.
pub enum Added {
    New(PushSubscription),
    /// The same endpoint was there already (it is kept, its keys updated).
    Existing(PushSubscription),
}

pub struct PushSubscriptions<'a> {
    store: &'a Store,
}

impl<'a> PushSubscriptions<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    pub fn of_user(&self, user: Uuid) -> Result<Vec<PushSubscription>, StoreError> {
        self.store
            .trees()
            .push_subscriptions
            .scan_prefix(user.as_bytes())
            .values()
            .map(|v| decode(&v?))
            .collect()
    }

    /// Adds `sub`, or refreshes the user's subscription with the same endpoint; `LimitReached`
    /// past [`PushSubscription::MAX_PER_USER`]. One key. Writer only.
    pub fn add(&self, sub: PushSubscription) -> Result<Added, StoreError> {
        if self.store.users().role(sub.user_id).is_none() {
            return Err(StoreError::NotFound);
        }
        let mine = self.of_user(sub.user_id)?;
        let tree = &self.store.trees().push_subscriptions;
        if let Some(mut same) = mine.into_iter().find(|s| s.endpoint == sub.endpoint) {
            same.p256dh = sub.p256dh;
            same.auth = sub.auth;
            tree.insert(key(same.user_id, same.id), encode(&same)?)?;
            return Ok(Added::Existing(same));
        }
        if self.of_user(sub.user_id)?.len() >= PushSubscription::MAX_PER_USER {
            return Err(StoreError::Conflict(
                "at most 20 push subscriptions per user",
            ));
        }
        tree.insert(key(sub.user_id, sub.id), encode(&sub)?)?;
        Ok(Added::New(sub))
    }

    /// Removes one; whether it was there. Writer only.
    pub fn remove(&self, user: Uuid, id: Uuid) -> Result<bool, StoreError> {
        Ok(self
            .store
            .trees()
            .push_subscriptions
            .remove(key(user, id))?
            .is_some())
    }

    /// Removes all of a user's (erasure). Writer only.
    pub fn erase_user(&self, user: Uuid) -> Result<usize, StoreError> {
        let mine = self.of_user(user)?;
        for s in &mine {
            self.remove(user, s.id)?;
        }
        Ok(mine.len())
    }
}
