//! Admin alerts (tree `notifications`: NotificationId(16) → Notification), newest last.

use uuid::Uuid;

use super::{Store, StoreError, decode, encode, values_after};
use crate::domain::notification::Notification;

pub struct Notifications<'a> {
    store: &'a Store,
}

impl<'a> Notifications<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    pub fn add(&self, n: &Notification) -> Result<(), StoreError> {
        self.store
            .trees()
            .notifications
            .insert(n.id.as_bytes(), encode(n)?)?;
        Ok(())
    }

    /// Removes the notifications about any of `subjects` (a user's deliveries at erasure: their
    /// errors may quote the address); returns how many. Notifications are few (at most one per
    /// kind and subject an hour), so this reads them all. Writer only.
    pub fn erase_about(&self, subjects: &[String]) -> Result<usize, StoreError> {
        if subjects.is_empty() {
            return Ok(0);
        }
        let tree = &self.store.trees().notifications;
        let mut batch = sled::Batch::default();
        let mut erased = 0;
        for kv in tree.iter() {
            let (k, v) = kv?;
            let about = decode::<Notification>(&v).map(|n| subjects.contains(&n.subject));
            if about.unwrap_or(false) {
                batch.remove(k);
                erased += 1;
            }
        }
        tree.apply_batch(batch)?;
        Ok(erased)
    }

    /// Oldest first, after `after`, at most `limit`.
    pub fn list(&self, after: Option<Uuid>, limit: usize) -> Result<Vec<Notification>, StoreError> {
        values_after(&self.store.trees().notifications, after, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::notification::NotificationKind;

    #[test]
    fn notifications_about_erased_deliveries_go_and_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::test_support::store(dir.path());
        let now = chrono::Utc::now();
        let theirs = Uuid::now_v7().to_string();
        let n = |kind, subject: &str, message: &str| {
            Notification::new(kind, subject, message.to_owned(), now)
        };
        let about_them = n(
            NotificationKind::DeliveryFailing,
            &theirs,
            "550 <bye@example.org>: no such mailbox",
        );
        let network = n(NotificationKind::NetworkFailing, "awin", "timeout");
        store.notifications().add(&about_them).unwrap();
        store.notifications().add(&network).unwrap();
        assert_eq!(store.notifications().erase_about(&[theirs]).unwrap(), 1);
        let left: Vec<Uuid> = store
            .notifications()
            .list(None, 10)
            .unwrap()
            .iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(left, vec![network.id]);
    }
}
