//! The durable outbox.
//!
//! Trees:
//! - `deliveries`  DeliveryId(16) → Delivery (JSON): every message and its state, kept as history
//! - `outbox`      next_attempt_at(8) ‖ DeliveryId(16) → (): the open ones, time-ordered, so the
//!   dispatcher reads what is due with one range scan
//!
//! A delivery is written (with its outbox entry) in the same transaction as what it delivers (a
//! digest). The dispatcher claims a due entry by compare-and-swap on the record (status →
//! `sending`, attempts + 1, lease) and moves its outbox entry to the end of the lease, so a crash
//! in the middle of a send retries it after the lease (or at the next start), never loses it.

use chrono::{DateTime, Utc};
use sled::Transactional;
use sled::transaction::TransactionalTree;
use uuid::Uuid;

use super::keys::{KeyBuf, KeyReader};
use super::{Store, StoreError, abort, decode, encode};
use crate::domain::delivery::{Delivery, DeliveryStatus};

/// Entries a listing request reads at most.
pub const SCAN_BUDGET: usize = 5_000;

pub struct Deliveries<'a> {
    store: &'a Store,
}

pub(crate) fn outbox_key(at: DateTime<Utc>, id: Uuid) -> Vec<u8> {
    KeyBuf::new().time(at).uuid(id).build()
}

/// Inserts a new delivery and its outbox entry inside a transaction of the caller.
pub(crate) fn enqueue(
    deliveries: &TransactionalTree,
    outbox: &TransactionalTree,
    d: &Delivery,
) -> Result<(), sled::transaction::ConflictableTransactionError<StoreError>> {
    let value = match encode(d) {
        Ok(v) => v,
        Err(e) => return abort(e),
    };
    deliveries.insert(d.id.as_bytes(), value)?;
    outbox.insert(outbox_key(d.next_attempt_at, d.id), &[])?;
    Ok(())
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub enum Attempt {
    Sent,
    /// Failed; `retry_at` when another attempt is allowed, `None` for dead-letter.
    Failed {
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
}

/// One page of the history.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Delivery>,
    pub next: Option<Uuid>,
}

impl<'a> Deliveries<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    pub fn get(&self, id: Uuid) -> Result<Option<Delivery>, StoreError> {
        self.store
            .trees()
            .deliveries
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// When the earliest open delivery is due, if any.
    pub fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self
            .store
            .trees()
            .outbox
            .first()?
            .and_then(|(k, _)| KeyReader::new(&k).time()))
    }

    /// Claims up to `limit` deliveries due at `now`: each is compare-and-swapped to `sending`
    /// (attempts + 1) with a lease until `lease_until`, and its outbox entry moved there.
    pub fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let t = self.store.trees();
        let end = KeyBuf::new().time(now).bytes(&[0xff; 17]).build();
        let mut claimed = Vec::new();
        for kv in t.outbox.range(..end) {
            if claimed.len() >= limit {
                break;
            }
            let (key, _) = kv?;
            let mut reader = KeyReader::new(&key);
            let (Some(_), Some(id)) = (reader.time(), reader.uuid()) else {
                t.outbox.remove(&key)?;
                continue;
            };
            let Some(old) = t.deliveries.get(id.as_bytes())? else {
                t.outbox.remove(&key)?; // the delivery was erased with its user
                continue;
            };
            let mut d: Delivery = match decode(&old) {
                Ok(d) => d,
                Err(e) => {
                    // Reported and set aside (the record stays for inspection): one bad record
                    // must not stall every delivery queued behind it.
                    tracing::error!(delivery = %id, error = %e, "outbox: undecodable delivery skipped");
                    metrics::counter!("voucherd_outbox_undecodable_total").increment(1);
                    t.outbox.remove(&key)?;
                    continue;
                }
            };
            if !d.status.is_open() {
                t.outbox.remove(&key)?;
                continue;
            }
            d.status = DeliveryStatus::Sending;
            d.attempts += 1;
            d.next_attempt_at = lease_until;
            d.updated_at = now;
            let new = encode(&d)?;
            if t.deliveries
                .compare_and_swap(id.as_bytes(), Some(&old[..]), Some(new))?
                .is_err()
            {
                continue; // changed under us: someone else has it
            }
            t.outbox.remove(&key)?;
            t.outbox.insert(outbox_key(lease_until, id), &[])?;
            claimed.push(d);
        }
        Ok(claimed)
    }

    /// Records how a claimed attempt ended; returns the delivery as stored. Fenced: when the
    /// stored record is no longer this claim (its lease lapsed and another attempt claimed it, or
    /// it was settled already) nothing changes and the answer is `StaleLease`.
    pub fn settle(
        &self,
        claimed: &Delivery,
        attempt: &Attempt,
        now: DateTime<Utc>,
    ) -> Result<Delivery, StoreError> {
        let t = self.store.trees();
        let id = claimed.id;
        let lease_key = outbox_key(claimed.next_attempt_at, id);
        let stored = (&t.deliveries, &t.outbox).transaction(|(deliveries, outbox)| {
            let Some(raw) = deliveries.get(id.as_bytes())? else {
                outbox.remove(lease_key.as_slice())?;
                return abort(StoreError::NotFound);
            };
            let mut d: Delivery = match decode(&raw) {
                Ok(d) => d,
                Err(e) => return abort(e),
            };
            if d.status != DeliveryStatus::Sending
                || d.attempts != claimed.attempts
                || d.next_attempt_at != claimed.next_attempt_at
            {
                return abort(StoreError::StaleLease);
            }
            outbox.remove(lease_key.as_slice())?;
            d.updated_at = now;
            match attempt {
                Attempt::Sent => {
                    d.status = DeliveryStatus::Sent;
                    d.sent_at = Some(now);
                    d.last_error = None;
                }
                Attempt::Failed { error, retry_at } => {
                    d.last_error = Some(error.clone());
                    match retry_at {
                        Some(at) => {
                            d.status = DeliveryStatus::Failed;
                            d.next_attempt_at = *at;
                            outbox.insert(outbox_key(*at, id), &[])?;
                        }
                        None => d.status = DeliveryStatus::Dead,
                    }
                }
            }
            let value = match encode(&d) {
                Ok(v) => v,
                Err(e) => return abort(e),
            };
            deliveries.insert(id.as_bytes(), value)?;
            Ok(d)
        })?;
        Ok(stored)
    }

    /// At start: deliveries a previous run claimed and never settled are due again now.
    pub fn resume(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let t = self.store.trees();
        let mut resumed = 0;
        for kv in t.outbox.iter() {
            let (key, _) = kv?;
            let mut reader = KeyReader::new(&key);
            let (Some(_), Some(id)) = (reader.time(), reader.uuid()) else {
                continue;
            };
            let Some(raw) = t.deliveries.get(id.as_bytes())? else {
                continue;
            };
            let mut d: Delivery = decode(&raw)?;
            if d.status != DeliveryStatus::Sending || d.next_attempt_at <= now {
                continue;
            }
            d.status = DeliveryStatus::Failed;
            d.last_error = Some("interrupted by a restart".into());
            d.next_attempt_at = now;
            let value = encode(&d)?;
            (&t.deliveries, &t.outbox).transaction(|(deliveries, outbox)| {
                outbox.remove(key.as_ref())?;
                outbox.insert(outbox_key(now, id), &[])?;
                deliveries.insert(id.as_bytes(), value.as_slice())?;
                Ok::<_, sled::transaction::ConflictableTransactionError<StoreError>>(())
            })?;
            resumed += 1;
        }
        Ok(resumed)
    }

    /// Newest first, optionally only one status, before `before` (exclusive), at most `limit`;
    /// reads at most [`SCAN_BUDGET`] records per call and gives a cursor when it stopped early.
    pub fn list(
        &self,
        status: Option<DeliveryStatus>,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let tree = &self.store.trees().deliveries;
        let iter = match before {
            Some(id) => tree.range(..id.as_bytes().to_vec()),
            None => tree.range::<Vec<u8>, _>(..),
        };
        let mut items = Vec::new();
        let mut last = None;
        for (scanned, kv) in iter.rev().enumerate() {
            let (_, raw) = kv?;
            let d: Delivery = decode(&raw)?;
            if items.len() == limit || scanned >= SCAN_BUDGET {
                return Ok(Page { items, next: last });
            }
            last = Some(d.id);
            if status.is_none_or(|s| s == d.status) {
                items.push(d);
            }
        }
        Ok(Page { items, next: None })
    }
}
