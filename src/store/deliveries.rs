//! The durable outbox. A message is the record it delivers — a digest record in tree `digests`
//! (see [`super::digests`]), or a message record in tree `messages` (a distributed code, an admin
//! alert; see [`super::messages`]) — whose delivery state says `pending`, `sending` (claimed,
//! with a lease), `sent`, `failed` (retry at a time) or `dead`; its `o` marker exists while it is
//! owed an attempt.
//!
//! In memory ([`super::outbox`], built here at open from the markers, changed only by the writer): the
//! open messages ordered by when they may next be attempted, so the dispatcher finds what is due
//! without a scan. Claiming one rewrites its record (status `sending`, attempts + 1, a lease): one
//! key. Settling it rewrites the record and, once it is `sent` or `dead`, removes its marker, both
//! in one batch. A settle is fenced: if the record no longer shows this claim (the lease lapsed
//! and another attempt took it), nothing changes. A crash in the middle of a send leaves the claim
//! to lapse, and the message is sent again after it (or at the next start), never lost.
//!
//! For reports, each settle also counts its outcome (sent, failed and retried, dead) in a day
//! tally of the record's own tree — `t` ‖ UTC day(4) ‖ channel(1) ‖ outcome(1) → count (u64 BE),
//! written in the same batch as the record, so the tallies agree with the records after a crash
//! — and memory keeps every open message's channel and status. An overview reads both from memory.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

use super::digests::{family_end, family_prefix, open_key, parse_key, record_key};
use super::outbox::{Entry, Outbox, OutboxIndex, Slot, TALLY, Tally, parse_tally, tally_key};
pub use super::outbox::{Outcome, RECENT, TallyKey};
use super::{Store, StoreError, Trees, decode, encode, messages};
use crate::domain::delivery::{
    Channel, Delivery, DeliveryState, DeliveryStatus, MessageRecord, Payload,
};
use crate::domain::digest::DigestRecord;

/// Records a listing request reads at most.
pub const SCAN_BUDGET: usize = 5_000;

/// Reads one tree's day tallies into `days`.
fn load_tallies(
    tree: &sled::Tree,
    digest: bool,
    days: &mut BTreeMap<TallyKey, u64>,
) -> Result<(), StoreError> {
    for kv in tree.scan_prefix([TALLY]) {
        let (k, v) = kv?;
        // A damaged tally only skews a report: reported and left out, never a failed open.
        let n = <[u8; 8]>::try_from(v.as_ref()).map(u64::from_be_bytes);
        match (parse_tally(&k), n) {
            (Some((day, channel, outcome)), Ok(n)) => {
                days.insert((day, digest, channel, outcome), n);
            }
            _ => tracing::error!(key = %hex::encode(&k), "outbox: undecodable day tally left out"),
        }
    }
    Ok(())
}

/// The outbox's figures for a report: open messages by channel and status, the day tallies, and
/// the attempts settled last (newest first).
#[derive(Debug, Clone, Default)]
pub struct OutboxFigures {
    pub open: HashMap<(Channel, DeliveryStatus), u64>,
    pub days: BTreeMap<TallyKey, u64>,
    pub recent: Vec<Delivery>,
}

/// The outbox's memory, from every open marker and its record (at open). A marker whose record
/// is gone or closed is dropped; an undecodable record is reported and left out.
pub(crate) fn load_outbox(trees: &Trees) -> Result<OutboxIndex, StoreError> {
    let mut outbox = Outbox::default();
    let mut stale = Vec::new();
    let undecodable = |what: &str, e: &StoreError| {
        tracing::error!(record = what, error = %e, "outbox: undecodable record left out");
        metrics::counter!("voucherd_outbox_undecodable_total").increment(1);
    };
    for k in trees.digests.scan_prefix(family_prefix(true, None)).keys() {
        let k = k?;
        let Some((user, period)) = parse_key(&k) else {
            stale.push(k);
            continue;
        };
        let Some(raw) = trees.digests.get(record_key(user, period))? else {
            stale.push(k);
            continue;
        };
        match decode::<DigestRecord>(&raw) {
            Ok(r) if r.delivery.status.is_open() => {
                let slot = Slot::Digest(period);
                outbox.due.insert((r.delivery.next_attempt_at, user, slot));
                outbox.mark(user, slot, Some((Channel::Email, r.delivery.status)));
            }
            Ok(_) => stale.push(k),
            Err(e) => undecodable(&format!("digest {user} {period}"), &e),
        }
    }
    for k in stale {
        trees.digests.remove(k)?;
    }
    let mut stale = Vec::new();
    for k in trees.messages.scan_prefix(messages::OPEN_PREFIX).keys() {
        let k = k?;
        let Some((owner, id)) = messages::parse_key(&k) else {
            stale.push(k);
            continue;
        };
        let Some(raw) = trees.messages.get(messages::record_key(owner, id))? else {
            stale.push(k);
            continue;
        };
        match decode::<MessageRecord>(&raw) {
            Ok(m) if m.delivery.status.is_open() => {
                let slot = Slot::Message(id);
                outbox.due.insert((m.delivery.next_attempt_at, owner, slot));
                outbox.mark(owner, slot, Some((m.channel, m.delivery.status)));
            }
            Ok(_) => stale.push(k),
            Err(e) => undecodable(&format!("message {id}"), &e),
        }
    }
    for k in stale {
        trees.messages.remove(k)?;
    }
    load_tallies(&trees.digests, true, &mut outbox.days)?;
    load_tallies(&trees.messages, false, &mut outbox.days)?;
    Ok(OutboxIndex(Mutex::new(outbox)))
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
    /// Where the next page starts.
    pub next: Option<Cursor>,
}

/// A record the outbox reads and rewrites: either kind, with its delivery state.
enum Stored {
    Digest(DigestRecord),
    Message(MessageRecord),
}

impl Stored {
    fn state(&mut self) -> &mut DeliveryState {
        match self {
            Stored::Digest(r) => &mut r.delivery,
            Stored::Message(m) => &mut m.delivery,
        }
    }

    fn as_delivery(&self) -> Delivery {
        match self {
            Stored::Digest(r) => r.as_delivery(),
            Stored::Message(m) => m.as_delivery(),
        }
    }

    fn channel(&self) -> Channel {
        match self {
            Stored::Digest(_) => Channel::Email,
            Stored::Message(m) => m.channel,
        }
    }
}

pub struct Deliveries<'a> {
    store: &'a Store,
}

/// The owner and record a delivery is.
fn slot_of(d: &Delivery) -> (Uuid, Slot) {
    match d.payload {
        Payload::Digest {
            user_id,
            local_date,
            ..
        } => (user_id, Slot::Digest(local_date)),
        _ => (
            d.payload.user_id().unwrap_or(Uuid::nil()),
            Slot::Message(d.id),
        ),
    }
}

/// Listing cursors name the tree (`d` digests, then `m` messages) and the key in it.
const DIGESTS_TAG: u8 = b'd';
const MESSAGES_TAG: u8 = b'm';

/// Where a listing goes on: hex of the family's tag and the key to start from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    tag: u8,
    from: Vec<u8>,
}

/// A cursor this server did not give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor")]
pub struct InvalidCursor;

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut bytes = Vec::with_capacity(1 + self.from.len());
        bytes.push(self.tag);
        bytes.extend_from_slice(&self.from);
        f.write_str(&hex::encode(bytes))
    }
}

impl std::str::FromStr for Cursor {
    type Err = InvalidCursor;

    fn from_str(s: &str) -> Result<Self, InvalidCursor> {
        let bytes = hex::decode(s).map_err(|_| InvalidCursor)?;
        match bytes.split_first() {
            Some((&tag, from)) if tag == DIGESTS_TAG || tag == MESSAGES_TAG => Ok(Self {
                tag,
                from: from.to_vec(),
            }),
            _ => Err(InvalidCursor),
        }
    }
}

impl<'a> Deliveries<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    fn index(&self) -> &OutboxIndex {
        &self.store.indexes().outbox
    }

    /// Open messages by channel and status, the day tallies from `since` on, and the attempts
    /// settled last (memory only).
    pub fn figures(&self, since: NaiveDate) -> OutboxFigures {
        let outbox = self.index().0.lock();
        let from = (since, false, Channel::Email, Outcome::Sent);
        OutboxFigures {
            open: outbox
                .open_counts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| (*k, *n))
                .collect(),
            days: outbox.days.range(from..).map(|(k, n)| (*k, *n)).collect(),
            recent: outbox.recent.iter().cloned().collect(),
        }
    }

    /// Every day tally (the totals of a report).
    pub fn totals(&self) -> BTreeMap<(bool, Channel, Outcome), u64> {
        let mut totals = BTreeMap::new();
        for ((_, digest, channel, outcome), n) in &self.index().0.lock().days {
            *totals.entry((*digest, *channel, *outcome)).or_default() += n;
        }
        totals
    }

    fn read(&self, owner: Uuid, slot: Slot) -> Result<Option<Stored>, StoreError> {
        Ok(match slot {
            Slot::Digest(period) => self
                .store
                .trees()
                .digests
                .get(record_key(owner, period))?
                .map(|v| decode(&v))
                .transpose()?
                .map(Stored::Digest),
            Slot::Message(id) => self.store.messages().get(owner, id)?.map(Stored::Message),
        })
    }

    /// Stores a record's new state (dropping its marker when `close`), with a day tally's new
    /// count in the same batch when given.
    fn put(&self, r: &Stored, close: bool, tally: Option<Tally>) -> Result<(), StoreError> {
        match r {
            Stored::Digest(r) => {
                let mut batch = sled::Batch::default();
                batch.insert(&record_key(r.user_id, r.local_date)[..], encode(r)?);
                if close {
                    batch.remove(&open_key(r.user_id, r.local_date)[..]);
                }
                if let Some((k, n)) = tally {
                    batch.insert(&k[..], &n.to_be_bytes()[..]);
                }
                self.store.trees().digests.apply_batch(batch)?;
                Ok(())
            }
            Stored::Message(m) => self.store.messages().put(m, close, tally),
        }
    }

    fn close_marker(&self, owner: Uuid, slot: Slot) -> Result<(), StoreError> {
        match slot {
            Slot::Digest(period) => {
                self.store
                    .trees()
                    .digests
                    .remove(&open_key(owner, period)[..])?;
                Ok(())
            }
            Slot::Message(id) => self.store.messages().close_marker(owner, id),
        }
    }

    /// When the earliest open delivery is due, if any.
    pub fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.index().0.lock().due.first().map(|(at, _, _)| *at))
    }

    /// Claims up to `limit` deliveries due at `now`: each record goes to `sending`
    /// (attempts + 1) with a lease until `lease_until` (one key each). Writer only.
    pub fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let due: Vec<Entry> = self
            .index()
            .0
            .lock()
            .due
            .range(..=(now, Uuid::max(), Slot::Message(Uuid::max())))
            .take(limit)
            .copied()
            .collect();
        let mut claimed = Vec::with_capacity(due.len());
        for entry in due {
            let (_, owner, slot) = entry;
            self.index().0.lock().due.remove(&entry);
            let mut r = match self.read(owner, slot) {
                Ok(Some(r)) => r,
                Ok(None) => continue, // erased with its user
                Err(e) => {
                    // Reported and set aside (the record stays for inspection): one bad record
                    // must not stall every delivery queued behind it.
                    tracing::error!(%owner, ?slot, error = %e, "outbox: undecodable delivery skipped");
                    metrics::counter!("voucherd_outbox_undecodable_total").increment(1);
                    continue;
                }
            };
            if !r.state().status.is_open() {
                self.close_marker(owner, slot)?;
                self.index().0.lock().mark(owner, slot, None);
                continue;
            }
            let s = r.state();
            s.status = DeliveryStatus::Sending;
            s.attempts += 1;
            s.next_attempt_at = lease_until;
            s.updated_at = now;
            self.put(&r, false, None)?;
            let mut outbox = self.index().0.lock();
            outbox.due.insert((lease_until, owner, slot));
            outbox.mark(owner, slot, Some((r.channel(), DeliveryStatus::Sending)));
            drop(outbox);
            claimed.push(r.as_delivery());
        }
        Ok(claimed)
    }

    /// Records how a claimed attempt ended; returns the delivery as stored. Fenced: when the
    /// stored record is no longer this claim (its lease lapsed and another attempt claimed it, or
    /// it was settled already) nothing changes and the answer is `StaleLease`. An alert sent
    /// marks its notification sent. Writer only.
    pub fn settle(
        &self,
        claimed: &Delivery,
        attempt: &Attempt,
        now: DateTime<Utc>,
    ) -> Result<Delivery, StoreError> {
        let (owner, slot) = slot_of(claimed);
        let Some(mut r) = self.read(owner, slot)? else {
            return Err(StoreError::NotFound);
        };
        let s = r.state();
        if s.status != DeliveryStatus::Sending
            || s.attempts != claimed.attempts
            || s.next_attempt_at != claimed.next_attempt_at
        {
            return Err(StoreError::StaleLease);
        }
        let lease = (s.next_attempt_at, owner, slot);
        s.updated_at = now;
        let outcome = match attempt {
            Attempt::Sent => {
                s.status = DeliveryStatus::Sent;
                s.sent_at = Some(now);
                s.last_error = None;
                Outcome::Sent
            }
            Attempt::Failed { error, retry_at } => {
                s.last_error = Some(error.clone());
                match retry_at {
                    Some(at) => {
                        s.status = DeliveryStatus::Failed;
                        s.next_attempt_at = *at;
                        Outcome::Failed
                    }
                    None => {
                        s.status = DeliveryStatus::Dead;
                        Outcome::Dead
                    }
                }
            }
        };
        let (status, next, sent) = (s.status, s.next_attempt_at, s.sent_at);
        let open = status.is_open();
        let channel = r.channel();
        let day: TallyKey = (
            now.date_naive(),
            matches!(slot, Slot::Digest(_)),
            channel,
            outcome,
        );
        let count = self.index().0.lock().days.get(&day).copied().unwrap_or(0) + 1;
        let tally = (tally_key(day.0, channel, outcome), count);
        self.put(&r, !open, Some(tally))?;
        let settled = r.as_delivery();
        let mut outbox = self.index().0.lock();
        outbox.due.remove(&lease);
        if open {
            outbox.due.insert((next, owner, slot));
            outbox.mark(owner, slot, Some((channel, status)));
        } else {
            outbox.mark(owner, slot, None);
        }
        outbox.days.insert(day, count);
        outbox.recent.push_front(settled.clone());
        outbox.recent.truncate(RECENT);
        drop(outbox);
        if let (Payload::Alert { notification_id }, Some(at)) = (&claimed.payload, sent) {
            self.store.notifications().mark_sent(*notification_id, at)?;
        }
        Ok(settled)
    }

    /// At start: deliveries a previous run claimed and never settled are due again now. Writer
    /// only.
    pub fn resume(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let open: Vec<Entry> = self.index().0.lock().due.iter().copied().collect();
        let mut resumed = 0;
        for entry in open {
            let (at, owner, slot) = entry;
            if at <= now {
                continue;
            }
            let Some(mut r) = self.read(owner, slot)? else {
                continue;
            };
            if r.state().status != DeliveryStatus::Sending {
                continue;
            }
            let s = r.state();
            s.status = DeliveryStatus::Failed;
            s.last_error = Some("interrupted by a restart".into());
            s.next_attempt_at = now;
            self.put(&r, false, None)?;
            let mut outbox = self.index().0.lock();
            outbox.due.remove(&entry);
            outbox.due.insert((now, owner, slot));
            outbox.mark(owner, slot, Some((r.channel(), DeliveryStatus::Failed)));
            resumed += 1;
        }
        Ok(resumed)
    }

    /// Deliveries, optionally only one status: digests (by user, newest period first per user),
    /// then other messages (by owner, oldest first), from `cursor` on, at most `limit`; reads at
    /// most [`SCAN_BUDGET`] records per call and gives a cursor when it stopped early.
    pub fn list(
        &self,
        status: Option<DeliveryStatus>,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let (tag, from): (&u8, &[u8]) = match cursor {
            Some(c) => (&c.tag, &c.from),
            None => (&DIGESTS_TAG, &[]),
        };
        let mut items = Vec::new();
        let mut scanned = 0;
        let wanted = |d: &DeliveryStatus| status.is_none_or(|s| s == *d);
        let stop = |tag: u8, k: &[u8]| {
            Some(Cursor {
                tag,
                from: k.to_vec(),
            })
        };
        if *tag == DIGESTS_TAG {
            let tree = &self.store.trees().digests;
            let start = if from.is_empty() {
                family_prefix(false, None)
            } else {
                from.to_vec()
            };
            for kv in tree.range(start..family_end(false)) {
                let (k, raw) = kv?;
                if items.len() == limit || scanned >= SCAN_BUDGET {
                    return Ok(Page {
                        items,
                        next: stop(DIGESTS_TAG, &k),
                    });
                }
                scanned += 1;
                match decode::<DigestRecord>(&raw) {
                    Ok(r) if wanted(&r.delivery.status) => items.push(r.as_delivery()),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(key = %hex::encode(&k), error = %e, "undecodable digest record")
                    }
                }
            }
        }
        let tree = &self.store.trees().messages;
        let start = if *tag == MESSAGES_TAG && !from.is_empty() {
            from.to_vec()
        } else {
            messages::RECORD_PREFIX.to_vec()
        };
        for kv in tree.range(start..) {
            let (k, raw) = kv?;
            if !k.starts_with(messages::RECORD_PREFIX) {
                break;
            }
            if items.len() == limit || scanned >= SCAN_BUDGET {
                return Ok(Page {
                    items,
                    next: stop(MESSAGES_TAG, &k),
                });
            }
            scanned += 1;
            match decode::<MessageRecord>(&raw) {
                Ok(m) if wanted(&m.delivery.status) => items.push(m.as_delivery()),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(key = %hex::encode(&k), error = %e, "undecodable message record")
                }
            }
        }
        Ok(Page { items, next: None })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Weekday;

    use super::*;
    use crate::domain::digest::{Draft, Selection};
    use crate::store::test_support;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A store with one digest per given user committed at `at` (so owed an attempt then).
    async fn outbox_of(
        dir: &std::path::Path,
        users: usize,
        at: DateTime<Utc>,
    ) -> (Store, Vec<Uuid>) {
        let store = test_support::store(dir);
        let mut ids = Vec::new();
        for i in 0..users {
            let mut user = test_support::user(&format!("u{i}@x.io"));
            user.created_at = at;
            user.updated_at = at;
            ids.push(user.id);
            let draft = Draft {
                user_id: user.id,
                period: at.date_naive(),
                due_at: None,
                since: at,
                as_of: at,
                selection: Selection {
                    voucher_ids: vec![Uuid::now_v7()],
                    more: 0,
                },
            };
            store
                .write(move |s| {
                    s.users().create(&user)?;
                    s.digests().schedule(&user, Weekday::Mon, at)?;
                    s.digests().commit(&[draft], at)
                })
                .await
                .unwrap();
        }
        (store, ids)
    }

    #[actix_web::test]
    async fn a_settle_under_a_lapsed_lease_is_refused_and_the_newer_claim_decides() {
        let dir = tempfile::tempdir().unwrap();
        let at = t("2026-11-22T08:00:00Z");
        let (store, _) = outbox_of(dir.path(), 1, at).await;
        let lease = chrono::Duration::minutes(5);
        let first = store
            .write(move |s| s.deliveries().claim_due(at, at + lease, 10))
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        // Nothing is due while the lease holds; after it lapses the message is claimed again.
        let none = store
            .write(move |s| s.deliveries().claim_due(at + lease / 2, at + lease, 10))
            .await
            .unwrap();
        assert!(none.is_empty());
        let later = at + lease + chrono::Duration::seconds(1);
        let second = store
            .write(move |s| s.deliveries().claim_due(later, later + lease, 10))
            .await
            .unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].attempts, 2);
        // The first attempt finishing late changes nothing.
        let stale = first[0].clone();
        let refused = store
            .write(move |s| s.deliveries().settle(&stale, &Attempt::Sent, later))
            .await;
        assert!(
            matches!(refused, Err(StoreError::StaleLease)),
            "{refused:?}"
        );
        let current = second[0].clone();
        let settled = store
            .write(move |s| s.deliveries().settle(&current, &Attempt::Sent, later))
            .await
            .unwrap();
        assert_eq!(settled.status, DeliveryStatus::Sent);
        assert_eq!(store.deliveries().next_due().unwrap(), None);
        // Settling it again (a duplicate answer) is refused as well.
        let again = second[0].clone();
        let twice = store
            .write(move |s| s.deliveries().settle(&again, &Attempt::Sent, later))
            .await;
        assert!(matches!(twice, Err(StoreError::StaleLease)));
    }

    #[actix_web::test]
    async fn every_outcome_is_tallied_by_day_with_its_record_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let at = t("2026-11-22T08:00:00Z");
        let (store, _) = outbox_of(dir.path(), 3, at).await;
        let day = at.date_naive();
        let open_email = |store: &Store, status| {
            store
                .deliveries()
                .figures(day)
                .open
                .get(&(Channel::Email, status))
                .copied()
                .unwrap_or(0)
        };
        assert_eq!(open_email(&store, DeliveryStatus::Pending), 3);
        let lease = at + chrono::Duration::minutes(5);
        let claimed = store
            .write(move |s| s.deliveries().claim_due(at, lease, 10))
            .await
            .unwrap();
        assert_eq!(open_email(&store, DeliveryStatus::Sending), 3);
        let attempts = [
            Attempt::Sent,
            Attempt::Failed {
                error: "451 try later".into(),
                retry_at: Some(lease),
            },
            Attempt::Failed {
                error: "550 no such user".into(),
                retry_at: None,
            },
        ];
        for (d, a) in claimed.into_iter().zip(attempts) {
            store
                .write(move |s| s.deliveries().settle(&d, &a, at))
                .await
                .unwrap();
        }
        let expected: BTreeMap<TallyKey, u64> = [
            ((day, true, Channel::Email, Outcome::Sent), 1),
            ((day, true, Channel::Email, Outcome::Failed), 1),
            ((day, true, Channel::Email, Outcome::Dead), 1),
        ]
        .into();
        let figures = store.deliveries().figures(day);
        assert_eq!(figures.days, expected);
        assert_eq!(
            figures.open,
            HashMap::from([((Channel::Email, DeliveryStatus::Failed), 1)])
        );
        let recent: Vec<DeliveryStatus> = figures.recent.iter().map(|d| d.status).collect();
        assert_eq!(
            recent,
            [
                DeliveryStatus::Dead,
                DeliveryStatus::Failed,
                DeliveryStatus::Sent
            ],
            "newest first"
        );
        // A day later's window leaves them out; the totals keep them.
        assert!(
            store
                .deliveries()
                .figures(day.succ_opt().unwrap())
                .days
                .is_empty()
        );
        assert_eq!(store.deliveries().totals().values().sum::<u64>(), 3);
        // The tallies are stored with the records: the same after a restart.
        drop(store);
        let store = test_support::store(dir.path());
        let figures = store.deliveries().figures(day);
        assert_eq!(figures.days, expected);
        assert_eq!(open_email(&store, DeliveryStatus::Failed), 1);
    }

    #[actix_web::test]
    async fn an_undecodable_record_is_skipped_and_never_stalls_the_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let at = t("2026-11-22T08:00:00Z");
        let (store, users) = outbox_of(dir.path(), 3, at).await;
        // The first message in line is damaged.
        store
            .trees()
            .digests
            .insert(
                record_key(users[0], at.date_naive()),
                &[0x01, 0xff, 0xff][..],
            )
            .unwrap();
        let lease = at + chrono::Duration::minutes(5);
        let claimed = store
            .write(move |s| s.deliveries().claim_due(at, lease, 10))
            .await
            .unwrap();
        let claimed_users: Vec<Uuid> = claimed.iter().map(|d| slot_of(d).0).collect();
        assert_eq!(claimed_users, users[1..].to_vec());
        // And it stays out of line after a restart too (reported, left for inspection).
        drop(store);
        let store = test_support::store(dir.path());
        let claimed = store
            .write(move |s| s.deliveries().claim_due(lease, lease, 10))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 2, "the two good ones, after their lease");
    }
}
