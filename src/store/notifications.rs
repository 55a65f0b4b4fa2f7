//! Admin alerts (tree `notifications`: NotificationId(16) → Notification JSON), newest last.

use uuid::Uuid;

use super::{Store, StoreError, encode, values_after};
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

    /// Oldest first, after `after`, at most `limit`.
    pub fn list(&self, after: Option<Uuid>, limit: usize) -> Result<Vec<Notification>, StoreError> {
        values_after(&self.store.trees().notifications, after, limit)
    }
}
