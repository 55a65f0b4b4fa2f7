//! Admin alerts (tree `notifications`: NotificationId(16) → Notification), newest last.
//!
//! [`Notifications::raise`] is the one way to raise one: at most one per kind and subject within
//! [`Notification::QUIET`] (the last time of each, in memory, rebuilt at open), stored with, when
//! alerts are emailed, one message to the admins in the outbox (tree `messages`), in the caller's
//! command: 1 key, or 3 with the email.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

use super::{Store, StoreError, Trees, decode, encode, values_after};
use crate::domain::delivery::{Channel, MessagePayload, MessageRecord};
use crate::domain::notification::{Notification, NotificationKind};

/// When each (kind, subject) was last raised.
#[derive(Default)]
pub(crate) struct NotificationIndex(Mutex<HashMap<(NotificationKind, String), DateTime<Utc>>>);

impl NotificationIndex {
    pub(crate) fn load(trees: &Trees) -> Result<Self, StoreError> {
        let mut last = HashMap::new();
        for v in trees.notifications.iter().values() {
            let Ok(n) = decode::<Notification>(&v?) else {
                continue;
            };
            let at = last.entry((n.kind, n.subject)).or_insert(n.created_at);
            *at = (*at).max(n.created_at);
        }
        Ok(Self(Mutex::new(last)))
    }
}

pub struct Notifications<'a> {
    store: &'a Store,
}

impl<'a> Notifications<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    fn index(&self) -> &NotificationIndex {
        &self.store.indexes().notifications
    }

    /// Stores `n` unless one of its kind and subject was raised within [`Notification::QUIET`]
    /// before it; with `email`, queues one message to the admins in the same batch of commands.
    /// Returns it when raised. Writer only.
    pub fn raise(&self, n: &Notification, email: bool) -> Result<Option<Notification>, StoreError> {
        let key = (n.kind, n.subject.clone());
        if self
            .index()
            .0
            .lock()
            .get(&key)
            .is_some_and(|at| n.created_at < *at + Notification::QUIET)
        {
            return Ok(None);
        }
        self.store
            .trees()
            .notifications
            .insert(n.id.as_bytes(), encode(n)?)?;
        self.index().0.lock().insert(key, n.created_at);
        if email {
            let message = MessageRecord::new(
                Channel::Email,
                MessagePayload::Alert {
                    notification_id: n.id,
                },
                None,
                n.created_at,
            );
            self.store.messages().enqueue(&[message])?;
        }
        metrics::counter!("voucherd_notifications_total", "kind" => n.kind.as_str()).increment(1);
        Ok(Some(n.clone()))
    }

    /// When a notification of this kind about this subject was last raised, if ever (since the
    /// oldest kept).
    pub fn last_raised(&self, kind: NotificationKind, subject: &str) -> Option<DateTime<Utc>> {
        self.index()
            .0
            .lock()
            .get(&(kind, subject.to_owned()))
            .copied()
    }

    pub fn get(&self, id: Uuid) -> Result<Option<Notification>, StoreError> {
        self.store
            .trees()
            .notifications
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Records when the admins were sent `id`. Writer only.
    pub(crate) fn mark_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        if let Some(mut n) = self.get(id)?
            && n.sent_at.is_none()
        {
            n.sent_at = Some(at);
            self.store
                .trees()
                .notifications
                .insert(n.id.as_bytes(), encode(&n)?)?;
        }
        Ok(())
    }

    /// Removes the notifications about any of `subjects` (a user's deliveries at erasure: their
    /// errors may quote the address) and the emails that carry them; returns the ids of those
    /// emails (whatever was written about them goes too). Notifications are few (at most one
    /// per kind and subject an hour), so this reads them all. Writer only.
    pub fn erase_about(&self, subjects: &[String]) -> Result<Vec<Uuid>, StoreError> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        let tree = &self.store.trees().notifications;
        let mut batch = sled::Batch::default();
        let mut erased = Vec::new();
        for kv in tree.iter() {
            let (k, v) = kv?;
            if let Ok(n) = decode::<Notification>(&v)
                && subjects.contains(&n.subject)
            {
                batch.remove(k);
                erased.push(n.id);
            }
        }
        tree.apply_batch(batch)?;
        self.store.messages().erase_alerts_of(&erased)
    }

    /// Oldest first, after `after`, at most `limit`.
    pub fn list(&self, after: Option<Uuid>, limit: usize) -> Result<Vec<Notification>, StoreError> {
        values_after(&self.store.trees().notifications, after, limit)
    }

    /// Newest first, before `before` (exclusive).
    pub fn list_newest(
        &self,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<Notification>, StoreError> {
        super::values_before(&self.store.trees().notifications, before, limit)
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
        for n in [&about_them, &network] {
            assert!(store.notifications().raise(n, true).unwrap().is_some());
        }
        let alerts = store.deliveries().list(None, None, 10).unwrap().items;
        assert_eq!(alerts.len(), 2, "one email each");
        let erased = store.notifications().erase_about(&[theirs]).unwrap();
        let left = store.deliveries().list(None, None, 10).unwrap().items;
        assert_eq!(left.len(), 1);
        assert!(!erased.contains(&left[0].id) && erased.len() == 1);
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
