//! The outbox's memory and vocabulary, shared by the record families it spans (digests in tree
//! `digests`, other messages in tree `messages`) and by the outbox's operations
//! ([`super::deliveries`]): which record an entry is, when it is due, each open message's channel
//! and status, and the day tallies of how attempts ended. A leaf: it reads no tree, so the
//! families tell it what they open and close, and `deliveries` (which knows both families)
//! builds it at open and claims and settles through it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use parking_lot::Mutex;
use uuid::Uuid;

use crate::domain::delivery::{Channel, Delivery, DeliveryStatus};

/// Which record an open entry is, under its owner: a digest (by period) or a message (by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Slot {
    Digest(NaiveDate),
    Message(Uuid),
}

/// An open message: (next attempt, owner, which record).
pub(crate) type Entry = (DateTime<Utc>, Uuid, Slot);

/// How an attempt ended, as the day tallies count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    Sent,
    /// Failed, another attempt scheduled.
    Failed,
    Dead,
}

impl Outcome {
    pub(crate) const ALL: [Outcome; 3] = [Outcome::Sent, Outcome::Failed, Outcome::Dead];

    pub(crate) fn tag(self) -> u8 {
        match self {
            Outcome::Sent => 0,
            Outcome::Failed => 1,
            Outcome::Dead => 2,
        }
    }
}

/// A day tally: (UTC day, a digest or not, channel, outcome).
pub type TallyKey = (NaiveDate, bool, Channel, Outcome);

/// Key family of the day tallies (in tree `digests` for digests, `messages` for the rest).
pub(crate) const TALLY: u8 = b't';

pub(crate) fn tally_key(day: NaiveDate, channel: Channel, outcome: Outcome) -> [u8; 7] {
    let mut k = [0u8; 7];
    k[0] = TALLY;
    let days = u32::try_from(day.num_days_from_ce()).unwrap_or(0);
    k[1..5].copy_from_slice(&days.to_be_bytes());
    k[5] = channel.tag();
    k[6] = outcome.tag();
    k
}

pub(crate) fn parse_tally(k: &[u8]) -> Option<(NaiveDate, Channel, Outcome)> {
    let days = i32::try_from(u32::from_be_bytes(k.get(1..5)?.try_into().ok()?)).ok()?;
    let day = NaiveDate::from_num_days_from_ce_opt(days)?;
    let channel = Channel::from_tag(*k.get(5)?)?;
    let outcome = Outcome::ALL
        .into_iter()
        .find(|o| Some(&o.tag()) == k.get(6))?;
    Some((day, channel, outcome))
}

/// A day tally's key and its new count, stored with the record it counts.
pub(crate) type Tally = ([u8; 7], u64);

/// Settled attempts the overview lists (since the server started).
pub const RECENT: usize = 20;

#[derive(Default)]
pub(crate) struct Outbox {
    /// The open messages in attempt order.
    pub(crate) due: BTreeSet<Entry>,
    /// Each open message's channel and status; changed only through [`Outbox::mark`].
    pub(crate) open: HashMap<(Uuid, Slot), (Channel, DeliveryStatus)>,
    /// How many open messages each channel has in each status (kept with `open`).
    pub(crate) open_counts: HashMap<(Channel, DeliveryStatus), u64>,
    /// Attempts ended per day, as stored in the tallies.
    pub(crate) days: BTreeMap<TallyKey, u64>,
    /// The last [`RECENT`] attempts settled, newest first.
    pub(crate) recent: VecDeque<Delivery>,
}

impl Outbox {
    /// Records an open message's channel and status, or (`None`) that it is no longer open.
    pub(crate) fn mark(&mut self, owner: Uuid, slot: Slot, now: Option<(Channel, DeliveryStatus)>) {
        let before = match now {
            Some(state) => self.open.insert((owner, slot), state),
            None => self.open.remove(&(owner, slot)),
        };
        if let Some(state) = before
            && let Some(n) = self.open_counts.get_mut(&state)
        {
            *n = n.saturating_sub(1);
        }
        if let Some(state) = now {
            *self.open_counts.entry(state).or_default() += 1;
        }
    }

    /// Forgets the open messages `erased` picks (erasure).
    pub(crate) fn forget(&mut self, erased: impl Fn(&Uuid, &Slot) -> bool) {
        self.due.retain(|(_, u, s)| !erased(u, s));
        let gone: Vec<(Uuid, Slot)> = self
            .open
            .keys()
            .filter(|(u, s)| erased(u, s))
            .copied()
            .collect();
        for (owner, slot) in gone {
            self.mark(owner, slot, None);
        }
    }
}

/// The outbox in memory (see the module comment).
#[derive(Default)]
pub(crate) struct OutboxIndex(pub(crate) Mutex<Outbox>);

impl OutboxIndex {
    /// Records just committed with their markers (pending): due at the given instants.
    pub(crate) fn opened(&self, entries: &[(Entry, Channel)]) {
        let mut outbox = self.0.lock();
        for &((at, owner, slot), channel) in entries {
            outbox.due.insert((at, owner, slot));
            outbox.mark(owner, slot, Some((channel, DeliveryStatus::Pending)));
        }
    }

    /// A user's digests erased with their markers.
    pub(crate) fn closed(&self, user: Uuid, periods: &[NaiveDate]) {
        self.0
            .lock()
            .forget(|u, s| *u == user && matches!(s, Slot::Digest(p) if periods.contains(p)));
    }

    /// Messages erased with their markers.
    pub(crate) fn closed_messages(&self, owner: Uuid, ids: &[Uuid]) {
        self.0
            .lock()
            .forget(|u, s| *u == owner && matches!(s, Slot::Message(id) if ids.contains(id)));
    }
}
