//! Messages other than digests (tree `messages`): a code a distribution assigned, an admin alert,
//! later SMS and push. `r` ‖ owner(16) ‖ MessageId(16) → MessageRecord (what it delivers and its
//! delivery state: its own outbox entry), and `o` ‖ owner ‖ id → () while it is owed an attempt,
//! so the outbox is found at open without reading every message ever sent. The owner is the user
//! the message is about (nil for admin alerts), so erasure finds a user's messages by prefix.
//!
//! Claiming, settling and listing go through [`super::deliveries`], which treats digests and
//! messages alike.

use uuid::Uuid;

use super::outbox::{Slot, Tally};
use super::{Store, StoreError, decode, encode};
use crate::domain::delivery::MessageRecord;

const RECORD: u8 = b'r';
const OPEN: u8 = b'o';

fn key(family: u8, owner: Uuid, id: Uuid) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = family;
    k[1..17].copy_from_slice(owner.as_bytes());
    k[17..].copy_from_slice(id.as_bytes());
    k
}

pub(crate) fn record_key(owner: Uuid, id: Uuid) -> [u8; 33] {
    key(RECORD, owner, id)
}

pub(crate) fn open_key(owner: Uuid, id: Uuid) -> [u8; 33] {
    key(OPEN, owner, id)
}

/// The open markers' prefix, and the record family's.
pub(crate) const OPEN_PREFIX: &[u8] = &[OPEN];
pub(crate) const RECORD_PREFIX: &[u8] = &[RECORD];

/// (owner, id) of a key of either family.
pub(crate) fn parse_key(k: &[u8]) -> Option<(Uuid, Uuid)> {
    let owner = Uuid::from_bytes(k.get(1..17)?.try_into().ok()?);
    let id = Uuid::from_bytes(k.get(17..33)?.try_into().ok()?);
    Some((owner, id))
}

pub struct Messages<'a> {
    store: &'a Store,
}

impl<'a> Messages<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// Adds messages to the outbox, each due at its `next_attempt_at`: two keys each (record and
    /// open marker), one batch. Writer only.
    pub fn enqueue(&self, messages: &[MessageRecord]) -> Result<(), StoreError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        let mut due = Vec::with_capacity(messages.len());
        for m in messages {
            batch.insert(&record_key(m.owner(), m.id)[..], encode(m)?);
            batch.insert(&open_key(m.owner(), m.id)[..], &[][..]);
            due.push((
                (m.delivery.next_attempt_at, m.owner(), Slot::Message(m.id)),
                m.channel,
            ));
        }
        self.store.trees().messages.apply_batch(batch)?;
        self.store.indexes().outbox.opened(&due);
        Ok(())
    }

    /// The keys and values that add `messages` to the outbox (record and open marker each).
    pub(crate) fn encoded(messages: &[MessageRecord]) -> Result<Vec<super::Kv>, StoreError> {
        let mut kvs = Vec::with_capacity(messages.len() * 2);
        for m in messages {
            kvs.push((record_key(m.owner(), m.id).to_vec(), encode(m)?));
            kvs.push((open_key(m.owner(), m.id).to_vec(), Vec::new()));
        }
        Ok(kvs)
    }

    /// The outbox's memory after `messages` were written.
    pub(crate) fn index_enqueued(&self, messages: &[MessageRecord]) {
        let due: Vec<_> = messages
            .iter()
            .map(|m| {
                (
                    (m.delivery.next_attempt_at, m.owner(), Slot::Message(m.id)),
                    m.channel,
                )
            })
            .collect();
        self.store.indexes().outbox.opened(&due);
    }

    pub fn get(&self, owner: Uuid, id: Uuid) -> Result<Option<MessageRecord>, StoreError> {
        self.store
            .trees()
            .messages
            .get(record_key(owner, id))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Stores a message's new state, dropping its open marker when it is closed, with a day
    /// tally's new count in the same batch when given.
    pub(crate) fn put(
        &self,
        m: &MessageRecord,
        close: bool,
        tally: Option<Tally>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(&record_key(m.owner(), m.id)[..], encode(m)?);
        if close {
            batch.remove(&open_key(m.owner(), m.id)[..]);
        }
        if let Some((k, n)) = tally {
            batch.insert(&k[..], &n.to_be_bytes()[..]);
        }
        self.store.trees().messages.apply_batch(batch)?;
        Ok(())
    }

    pub(crate) fn close_marker(&self, owner: Uuid, id: Uuid) -> Result<(), StoreError> {
        self.store.trees().messages.remove(open_key(owner, id))?;
        Ok(())
    }

    /// Removes every message about `user` with its marker (erasure); returns their ids (the
    /// names of what was sent about them). Writer only.
    pub fn erase_owner(&self, user: Uuid) -> Result<Vec<Uuid>, StoreError> {
        let tree = &self.store.trees().messages;
        let mut batch = sled::Batch::default();
        let mut ids = Vec::new();
        for family in [RECORD, OPEN] {
            let mut prefix = vec![family];
            prefix.extend_from_slice(user.as_bytes());
            for k in tree.scan_prefix(&prefix).keys() {
                let k = k?;
                if let Some((_, id)) = parse_key(&k)
                    && family == RECORD
                {
                    ids.push(id);
                }
                batch.remove(k);
            }
        }
        tree.apply_batch(batch)?;
        self.store.indexes().outbox.closed_messages(user, &ids);
        Ok(ids)
    }

    /// The alerts (owner nil) sent about any of `notifications`, removed (erasure of what they
    /// quote); returns their ids. Writer only.
    pub fn erase_alerts_of(&self, notifications: &[Uuid]) -> Result<Vec<Uuid>, StoreError> {
        if notifications.is_empty() {
            return Ok(Vec::new());
        }
        let tree = &self.store.trees().messages;
        let mut prefix = vec![RECORD];
        prefix.extend_from_slice(Uuid::nil().as_bytes());
        let mut batch = sled::Batch::default();
        let mut ids = Vec::new();
        for kv in tree.scan_prefix(&prefix) {
            let (k, v) = kv?;
            let Ok(m) = decode::<MessageRecord>(&v) else {
                continue;
            };
            if let crate::domain::delivery::MessagePayload::Alert { notification_id } = m.payload
                && notifications.contains(&notification_id)
            {
                batch.remove(k);
                batch.remove(&open_key(Uuid::nil(), m.id)[..]);
                ids.push(m.id);
            }
        }
        tree.apply_batch(batch)?;
        self.store
            .indexes()
            .outbox
            .closed_messages(Uuid::nil(), &ids);
        Ok(ids)
    }
}
