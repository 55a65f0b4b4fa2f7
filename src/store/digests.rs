//! Digests: the records sent, each its own outbox entry, and every user's next due time.
//!
//! Tree `digests` (two key families, written together with one `apply_batch`, so atomically):
//! - `r` ‖ UserId(16) ‖ period(4, days from CE) → DigestRecord: at most one per user and period —
//!   the key is the exactly-once guard — holding what the email lists and its delivery state;
//! - `o` ‖ UserId(16) ‖ period(4) → (): present while that email is owed an attempt. It is how the
//!   outbox is found when the store opens without reading the whole history (kept in sled for
//!   that reason); see [`super::deliveries`].
//!
//! Committing a digest writes those two keys of one tree. Nothing else is stored for schedules:
//! a user's cadence is in their user record, and which period is done is the record's key.
//!
//! In memory ([`DigestIndex`], built by [`Digests::load`] at start, changed only by the writer):
//! each user's cadence, next due instant and last period done, and per timezone the users in due
//! order, so a `DigestShard` reads only its own timezones, earliest first.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;
use parking_lot::RwLock;
use uuid::Uuid;

use super::subscriptions::Followed;
use super::{Store, StoreError, decode, encode};
use crate::domain::delivery::{Channel, DeliveryState};
use crate::domain::digest::{DigestRecord, Draft, Selection};
use crate::domain::schedule::{Cadence, Due, local_instant};
use crate::domain::user::User;

/// Key family of digest records.
const RECORD: u8 = b'r';
/// Key family of the open-delivery markers.
const OPEN: u8 = b'o';

fn key(family: u8, user: Uuid, period: NaiveDate) -> [u8; 21] {
    let mut k = [0u8; 21];
    k[0] = family;
    k[1..17].copy_from_slice(user.as_bytes());
    let days = u32::try_from(period.num_days_from_ce()).unwrap_or(0);
    k[17..].copy_from_slice(&days.to_be_bytes());
    k
}

pub(crate) fn record_key(user: Uuid, period: NaiveDate) -> [u8; 21] {
    key(RECORD, user, period)
}

pub(crate) fn open_key(user: Uuid, period: NaiveDate) -> [u8; 21] {
    key(OPEN, user, period)
}

/// The prefix of one family: every key, or one user's.
pub(crate) fn family_prefix(open: bool, user: Option<Uuid>) -> Vec<u8> {
    let mut p = vec![if open { OPEN } else { RECORD }];
    if let Some(u) = user {
        p.extend_from_slice(u.as_bytes());
    }
    p
}

/// The first key after one family.
pub(crate) fn family_end(open: bool) -> Vec<u8> {
    vec![if open { OPEN } else { RECORD } + 1]
}

/// (user, period) of a key of either family.
pub(crate) fn parse_key(k: &[u8]) -> Option<(Uuid, NaiveDate)> {
    let user = Uuid::from_bytes(k.get(1..17)?.try_into().ok()?);
    let days = u32::from_be_bytes(k.get(17..21)?.try_into().ok()?);
    Some((
        user,
        NaiveDate::from_num_days_from_ce_opt(i32::try_from(days).ok()?)?,
    ))
}

/// A user's digest schedule, in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub cadence: Cadence,
    /// The next digest, `None` when digests are off.
    pub due: Option<Due>,
    pub last_period: Option<NaiveDate>,
    /// When the vouchers of the last digest (in this run) were selected.
    pub last_as_of: Option<DateTime<Utc>>,
}

impl Schedule {
    /// Vouchers first seen from this instant on go into the digest built at `now`: the previous
    /// digest's selection time, else one period before the due instant.
    pub fn since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.last_as_of
            .unwrap_or_else(|| self.due.map_or(now, |d| d.at) - self.cadence.length())
    }
}

fn cadence_of(user: &User, weekday: Weekday) -> Cadence {
    Cadence {
        tz: user.timezone.0,
        hour: user.digest_hour.get(),
        frequency: user.digest_frequency,
        weekday,
    }
}

/// What [`Digests::schedule`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    /// The next digest, `None` when digests are off.
    pub due: Option<Due>,
    /// Whether the schedule changed: it was new or its settings changed.
    pub changed: bool,
}

/// A user due for a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueUser {
    pub user_id: Uuid,
    pub due: Due,
}

/// What a commit did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Digests written (each with its email owed).
    pub sent: usize,
    /// Already done for that period, nothing to list, or no longer due.
    pub skipped: usize,
}

#[derive(Default)]
struct State {
    users: BTreeMap<Uuid, Schedule>,
    due: HashMap<Tz, BTreeSet<(DateTime<Utc>, Uuid)>>,
}

impl State {
    fn set(&mut self, user: Uuid, next: Schedule) {
        self.forget(user);
        if let Some(d) = next.due {
            self.due
                .entry(next.cadence.tz)
                .or_default()
                .insert((d.at, user));
        }
        self.users.insert(user, next);
    }

    fn forget(&mut self, user: Uuid) {
        if let Some(old) = self.users.remove(&user)
            && let Some(d) = old.due
            && let Some(set) = self.due.get_mut(&old.cadence.tz)
        {
            set.remove(&(d.at, user));
        }
    }
}

/// The digest schedules in memory (see the module comment).
#[derive(Default)]
pub(crate) struct DigestIndex(RwLock<State>);

pub struct Digests<'a> {
    store: &'a Store,
}

impl<'a> Digests<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    fn index(&self) -> &DigestIndex {
        &self.store.indexes().digests
    }

    /// Builds every user's schedule from their settings and the record of their current period
    /// (at start, before the shards run; `weekday` is the configured weekly day). A period whose
    /// due instant passed while the server was down, and that has no digest, is due at once.
    /// Returns how many users have digests on.
    pub fn load(&self, weekday: Weekday, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let tree = &self.store.trees().digests;
        let mut state = State::default();
        let mut on = 0;
        for kv in self.store.trees().users.iter() {
            let (_, raw) = kv?;
            let user: User = decode(&raw)?;
            let cadence = cadence_of(&user, weekday);
            let current = cadence.current_period(now);
            let done = match current {
                Some(p) => tree.contains_key(record_key(user.id, p))?,
                None => false,
            };
            let last_period = current.filter(|_| done);
            let missed = current
                .filter(|_| !done)
                .map(|p| Due {
                    at: local_instant(cadence.tz, p, cadence.hour),
                    period: p,
                })
                .filter(|d| d.at <= now);
            let due = missed.or_else(|| cadence.next_due(now, last_period));
            on += usize::from(due.is_some());
            state.set(
                user.id,
                Schedule {
                    cadence,
                    due,
                    last_period,
                    last_as_of: None,
                },
            );
        }
        *self.index().0.write() = state;
        Ok(on)
    }

    /// (Re)computes a user's schedule from their settings: kept as it is when nothing it depends
    /// on changed. In memory only (the settings are in the user record). Writer only.
    pub fn schedule(
        &self,
        user: &User,
        weekday: Weekday,
        now: DateTime<Utc>,
    ) -> Result<Scheduled, StoreError> {
        let cadence = cadence_of(user, weekday);
        let mut state = self.index().0.write();
        let old = state.users.get(&user.id).copied();
        if let Some(old) = old
            && old.cadence == cadence
            && (old.due.is_some() || cadence.frequency == crate::domain::user::DigestFrequency::Off)
        {
            return Ok(Scheduled {
                due: old.due,
                changed: false,
            });
        }
        let last_period = old.and_then(|o| o.last_period);
        let next = Schedule {
            cadence,
            due: cadence.next_due(now, last_period),
            last_period,
            last_as_of: old.and_then(|o| o.last_as_of),
        };
        state.set(user.id, next);
        Ok(Scheduled {
            due: next.due,
            changed: true,
        })
    }

    pub fn schedule_of(&self, user: Uuid) -> Result<Option<Schedule>, StoreError> {
        Ok(self.index().0.read().users.get(&user).copied())
    }

    /// Schedules in user-id order after `after`, at most `limit`.
    pub fn schedules_after(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<(Uuid, Schedule)>, StoreError> {
        let state = self.index().0.read();
        let range = match after {
            Some(u) => state
                .users
                .range((std::ops::Bound::Excluded(u), std::ops::Bound::Unbounded)),
            None => state.users.range(..),
        };
        Ok(range.take(limit).map(|(u, s)| (*u, *s)).collect())
    }

    /// Users due at or before `now` in the given timezones, earliest first per timezone, at most
    /// `limit` in all.
    pub fn due(
        &self,
        timezones: &[Tz],
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueUser>, StoreError> {
        let state = self.index().0.read();
        let mut out = Vec::new();
        for tz in timezones {
            let Some(set) = state.due.get(tz) else {
                continue;
            };
            for (at, user) in set.range(..=(now, Uuid::max())) {
                if out.len() >= limit {
                    return Ok(out);
                }
                if let Some(due) = state.users.get(user).and_then(|s| s.due) {
                    debug_assert_eq!(due.at, *at);
                    out.push(DueUser {
                        user_id: *user,
                        due,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The earliest due instant in the given timezones.
    pub fn earliest(&self, timezones: &[Tz]) -> Result<Option<DateTime<Utc>>, StoreError> {
        let state = self.index().0.read();
        Ok(timezones
            .iter()
            .filter_map(|tz| state.due.get(tz).and_then(|s| s.first()).map(|(at, _)| *at))
            .min())
    }

    /// What the user's digest for `period` holds if built at `now`: read only, from the
    /// in-memory subscriptions and catalogue.
    pub fn draft(
        &self,
        user: Uuid,
        period: NaiveDate,
        due_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        max: usize,
    ) -> Result<Draft, StoreError> {
        let followed = self.store.subscriptions().followed(user);
        let since = self.since(user, now)?;
        let selection = self.select(&followed, since, now, max)?;
        Ok(Draft {
            user_id: user,
            period,
            due_at,
            since,
            as_of: now,
            selection,
        })
    }

    /// Commits built digests as one batch: for each draft not yet done for its period and
    /// listing something, the digest record and its open marker; and the user's schedule moves
    /// on to the next period. A draft whose period is already done, or that answers a due time
    /// that has since moved (settings changed), is skipped. Writer only.
    pub fn commit(&self, drafts: &[Draft], now: DateTime<Utc>) -> Result<Committed, StoreError> {
        let tree = &self.store.trees().digests;
        let mut out = Committed::default();
        let mut batch = sled::Batch::default();
        let mut written: BTreeSet<(Uuid, NaiveDate)> = BTreeSet::new();
        let mut opened: Vec<(super::outbox::Entry, Channel)> = Vec::new();
        let mut moved: HashMap<Uuid, Schedule> = HashMap::new();
        {
            let state = self.index().0.read();
            for draft in drafts {
                let user = draft.user_id;
                let Some(mut schedule) = moved
                    .get(&user)
                    .copied()
                    .or_else(|| state.users.get(&user).copied())
                else {
                    out.skipped += 1; // erased meanwhile
                    continue;
                };
                if let Some(at) = draft.due_at
                    && schedule.due
                        != Some(Due {
                            at,
                            period: draft.period,
                        })
                {
                    out.skipped += 1; // rescheduled meanwhile
                    continue;
                }
                let done = written.contains(&(user, draft.period))
                    || tree.contains_key(record_key(user, draft.period))?;
                if done || draft.selection.is_empty() {
                    out.skipped += 1;
                } else {
                    let record = DigestRecord {
                        v: DigestRecord::VERSION,
                        id: crate::domain::v7_at(now),
                        user_id: user,
                        local_date: draft.period,
                        created_at: now,
                        voucher_ids: draft.selection.voucher_ids.clone(),
                        more: draft.selection.more,
                        delivery: DeliveryState::new(now),
                    };
                    batch.insert(&record_key(user, draft.period)[..], encode(&record)?);
                    batch.insert(&open_key(user, draft.period)[..], &[][..]);
                    written.insert((user, draft.period));
                    opened.push((
                        (now, user, super::outbox::Slot::Digest(draft.period)),
                        Channel::Email,
                    ));
                    out.sent += 1;
                }
                // The period is done: move on, unless the schedule is already past it.
                if schedule.due.is_none_or(|d| d.period <= draft.period) {
                    schedule.last_period = Some(
                        schedule
                            .last_period
                            .map_or(draft.period, |p| p.max(draft.period)),
                    );
                    schedule.last_as_of = Some(draft.as_of);
                    schedule.due = schedule.cadence.next_due(now, schedule.last_period);
                    moved.insert(user, schedule);
                }
            }
        }
        tree.apply_batch(batch)?;
        let mut state = self.index().0.write();
        for (user, schedule) in moved {
            // Erased while the batch was built: stays gone.
            if state.users.contains_key(&user) {
                state.set(user, schedule);
            }
        }
        drop(state);
        self.store.indexes().outbox.opened(&opened);
        Ok(out)
    }

    /// From when a digest built at `now` lists vouchers: see [`Schedule::since`] (a user without
    /// a schedule: one day back).
    pub fn since(&self, user: Uuid, now: DateTime<Utc>) -> Result<DateTime<Utc>, StoreError> {
        Ok(match self.schedule_of(user)? {
            Some(schedule) => schedule.since(now),
            None => now - chrono::Duration::days(1),
        })
    }

    /// What a digest built at `now` holds for what a user follows: the active vouchers first
    /// seen since `since`, newest first, at most `max`, and how many more matched. The work is
    /// bounded: at most `MORE_PER_NAME × max` vouchers are read per followed name, so `more`
    /// counts exactly up to that and is a lower bound past it.
    pub fn select(
        &self,
        followed: &[Followed],
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        max: usize,
    ) -> Result<Selection, StoreError> {
        const MORE_PER_NAME: usize = 4;
        let vouchers = self.store.vouchers();
        let mut found = BTreeSet::new();
        let per_name = max.saturating_mul(MORE_PER_NAME).max(1);
        for f in followed {
            vouchers.new_since(f.kind, &f.key, since, now, per_name, &mut found)?;
        }
        let total = found.len();
        let voucher_ids: Vec<Uuid> = found.into_iter().rev().take(max).collect();
        Ok(Selection {
            more: (total - voucher_ids.len()) as u64,
            voucher_ids,
        })
    }

    /// Whether the user's digest for `period` exists.
    pub fn done(&self, user: Uuid, period: NaiveDate) -> Result<bool, StoreError> {
        Ok(self
            .store
            .trees()
            .digests
            .contains_key(record_key(user, period))?)
    }

    pub fn get(&self, user: Uuid, period: NaiveDate) -> Result<Option<DigestRecord>, StoreError> {
        self.store
            .trees()
            .digests
            .get(record_key(user, period))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// A user's digests, newest first, before the period `before`, at most `limit`.
    pub fn history(
        &self,
        user: Uuid,
        before: Option<NaiveDate>,
        limit: usize,
    ) -> Result<Vec<DigestRecord>, StoreError> {
        let tree = &self.store.trees().digests;
        let start = family_prefix(false, Some(user));
        let end = match before {
            Some(p) => record_key(user, p).to_vec(),
            None => {
                let mut e = start.clone();
                e.extend_from_slice(&[0xff; 4]);
                e
            }
        };
        tree.range(start..end)
            .rev()
            .take(limit)
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    /// Removes a user's schedule and digests with their deliveries (erasure), one batch on the
    /// one tree; returns the erased digests' ids (their deliveries' ids, which name what was
    /// sent about them: `.eml` files, `delivery_failing` notifications). Writer only.
    pub fn erase_user(&self, user: Uuid) -> Result<Vec<Uuid>, StoreError> {
        let tree = &self.store.trees().digests;
        let mut batch = sled::Batch::default();
        let mut ids = Vec::new();
        let mut periods = Vec::new();
        for kv in tree.scan_prefix(family_prefix(false, Some(user))) {
            let (k, v) = kv?;
            // An unreadable record is erased all the same; only its id is unknown.
            if let Ok(record) = decode::<DigestRecord>(&v) {
                ids.push(record.id);
            }
            batch.remove(k);
        }
        for k in tree.scan_prefix(family_prefix(true, Some(user))).keys() {
            let k = k?;
            if let Some((_, p)) = parse_key(&k) {
                periods.push(p);
            }
            batch.remove(k);
        }
        tree.apply_batch(batch)?;
        self.index().0.write().forget(user);
        self.store.indexes().outbox.closed(user, &periods);
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreSettings;
    use crate::domain::user::{DigestFrequency, DigestHour, Email, Role, Timezone};

    fn settings(dir: &std::path::Path) -> StoreSettings {
        StoreSettings {
            path: dir.join("data"),
            cache_capacity_mb: 16,
            fsync: false,
            writer_queue: 65_536,
        }
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[actix_web::test]
    async fn racing_commits_for_one_period_write_one_digest_and_one_outbox_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&settings(dir.path())).unwrap();
        let now = t("2026-03-08T05:00:00Z");
        let user = User {
            v: User::VERSION,
            id: Uuid::now_v7(),
            email: Email::parse("a@b.co").unwrap(),
            password_hash: String::new(),
            phone: None,
            timezone: Timezone::parse("America/New_York").unwrap(),
            digest_hour: DigestHour::parse(2).unwrap(),
            digest_frequency: DigestFrequency::Daily,
            role: Role::Customer,
            created_at: now,
            updated_at: now,
            marketing_opt_out_at: None,
            email_verified_at: Some(now),
            pending_email: None,
            phone_verified_at: None,
            phone_challenge: None,
        };
        let u = user.clone();
        let due = store
            .write(move |s| {
                s.users().create(&u)?;
                s.digests().schedule(&u, Weekday::Mon, now)
            })
            .await
            .unwrap()
            .due
            .unwrap();
        assert_eq!(due.at, t("2026-03-08T07:00:00Z"));
        let at = t("2026-03-08T07:00:00Z");
        let draft = Draft {
            user_id: user.id,
            period: due.period,
            due_at: Some(due.at),
            since: due.at - chrono::Duration::days(1),
            as_of: at,
            selection: Selection {
                voucher_ids: vec![Uuid::now_v7()],
                more: 0,
            },
        };
        // Two shards (or a shard and an admin run) commit the same period at once.
        let commits = (0..4).map(|i| {
            let mut d = draft.clone();
            if i % 2 == 1 {
                d.due_at = None; // the admin run's draft
            }
            store.write(move |s| s.digests().commit(&[d], at))
        });
        let results: Vec<Committed> = futures_util::future::join_all(commits)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            results.iter().map(|c| c.sent).sum::<usize>(),
            1,
            "{results:?}"
        );
        assert_eq!(store.digests().history(user.id, None, 10).unwrap().len(), 1);
        assert_eq!(store.deliveries().next_due().unwrap(), Some(at));
        // The schedule moved on to the next day, 02:00 EDT.
        let s = store.digests().schedule_of(user.id).unwrap().unwrap();
        assert_eq!(s.due.unwrap().at, t("2026-03-09T06:00:00Z"));
        // And a late, stale draft of that period changes nothing.
        let stale = draft.clone();
        assert_eq!(
            store
                .write(move |s| s.digests().commit(&[stale], at))
                .await
                .unwrap(),
            Committed {
                sent: 0,
                skipped: 1
            }
        );
        // After a restart the period is known as done: the schedule is rebuilt for the next day.
        drop(store);
        let store = Store::open(&settings(dir.path())).unwrap();
        store
            .write(move |s| s.digests().load(Weekday::Mon, at))
            .await
            .unwrap();
        let s = store.digests().schedule_of(user.id).unwrap().unwrap();
        assert_eq!(s.due.unwrap().at, t("2026-03-09T06:00:00Z"));
        assert_eq!(store.deliveries().next_due().unwrap(), Some(at));
        // Erasure takes schedule, digests and outbox entries.
        let id = user.id;
        assert_eq!(
            store
                .write(move |s| s.digests().erase_user(id))
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(store.trees().digests.is_empty());
        assert_eq!(store.deliveries().next_due().unwrap(), None);
        assert!(store.digests().schedule_of(user.id).unwrap().is_none());
    }
}
