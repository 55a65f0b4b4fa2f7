//! Digest schedules and the digests sent.
//!
//! Trees:
//! - `digest_schedule` UserId(16) → Schedule (JSON): the user's cadence, next due instant and
//!   period, the last period done and when its vouchers were selected
//! - `digest_due`      timezone ‖ 0xff ‖ due_at(8) ‖ UserId(16) → period(4, days from CE): the
//!   users due next, per timezone, so a `DigestShard` reads only its own timezones, earliest first
//! - `digests`         UserId(16) ‖ period(4) → DigestRecord (JSON): at most one per user and
//!   period — the key is the exactly-once guard
//!
//! [`Digests::commit`] writes digests, their deliveries and outbox entries and moves the
//! schedules on, all in one transaction.

use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use uuid::Uuid;

use super::deliveries::{enqueue, outbox_key};
use super::keys::{KeyBuf, KeyReader};
use super::vouchers::Named;
use super::{Store, StoreError, decode, encode};
use crate::domain::delivery::{Channel, Delivery, Payload};
use crate::domain::digest::{DigestRecord, Draft, Selection, Subscription, Target};
use crate::domain::schedule::{Cadence, Due};
use crate::domain::user::{DigestFrequency, Timezone, User};

/// A user's digest schedule (tree `digest_schedule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub v: u32,
    pub timezone: Timezone,
    pub hour: u8,
    pub frequency: DigestFrequency,
    pub weekday: Weekday,
    #[serde(default)]
    pub due: Option<Due>,
    #[serde(default)]
    pub last_period: Option<NaiveDate>,
    /// When the vouchers of the last digest were selected: the next one lists what is newer.
    #[serde(default)]
    pub last_digest_at: Option<DateTime<Utc>>,
}

impl Schedule {
    pub const VERSION: u32 = 1;

    pub fn cadence(&self) -> Cadence {
        Cadence {
            tz: self.timezone.0,
            hour: self.hour,
            frequency: self.frequency,
            weekday: self.weekday,
        }
    }

    /// Vouchers first seen from this instant on go into the digest built at `now`.
    pub fn since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.last_digest_at
            .unwrap_or_else(|| self.due.map_or(now, |d| d.at) - self.cadence().length())
    }

    fn same_cadence(&self, user: &User, weekday: Weekday) -> bool {
        self.timezone == user.timezone
            && self.hour == user.digest_hour.get()
            && self.frequency == user.digest_frequency
            && self.weekday == weekday
    }
}

/// What [`Digests::schedule`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    /// The next digest, `None` when digests are off.
    pub due: Option<Due>,
    /// Whether the schedule was (re)written: it was new or its settings changed.
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
    /// Digests written with a delivery.
    pub sent: usize,
    /// Already done for that period, nothing to list, or no longer due.
    pub skipped: usize,
}

fn period_bytes(p: NaiveDate) -> [u8; 4] {
    u32::try_from(p.num_days_from_ce())
        .unwrap_or(0)
        .to_be_bytes()
}

fn period_from(b: &[u8]) -> Option<NaiveDate> {
    let days = u32::from_be_bytes(b.get(..4)?.try_into().ok()?);
    NaiveDate::from_num_days_from_ce_opt(i32::try_from(days).ok()?)
}

fn digest_key(user: Uuid, period: NaiveDate) -> Vec<u8> {
    KeyBuf::new()
        .uuid(user)
        .bytes(&period_bytes(period))
        .build()
}

fn due_key(tz: Tz, at: DateTime<Utc>, user: Uuid) -> Vec<u8> {
    KeyBuf::new().str(tz.name()).time(at).uuid(user).build()
}

type TxError = sled::transaction::ConflictableTransactionError<StoreError>;

fn tx_decode<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, TxError> {
    decode(raw).map_err(TxError::Abort)
}

fn tx_encode<T: Serialize>(value: &T) -> Result<Vec<u8>, TxError> {
    encode(value).map_err(TxError::Abort)
}

pub struct Digests<'a> {
    store: &'a Store,
}

impl<'a> Digests<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// (Re)computes a user's schedule from their settings: kept as it is when nothing it depends
    /// on changed, else the old due entry goes and the next one is written.
    pub fn schedule(
        &self,
        user: &User,
        weekday: Weekday,
        now: DateTime<Utc>,
    ) -> Result<Scheduled, StoreError> {
        let t = self.store.trees();
        let id = user.id;
        let scheduled =
            (&t.digest_schedule, &t.digest_due).transaction(|(schedules, due_index)| {
                let old: Option<Schedule> = match schedules.get(id.as_bytes())? {
                    Some(raw) => Some(tx_decode(&raw)?),
                    None => None,
                };
                if let Some(old) = &old
                    && old.same_cadence(user, weekday)
                    && (old.due.is_some() || old.frequency == DigestFrequency::Off)
                {
                    return Ok(Scheduled {
                        due: old.due,
                        changed: false,
                    });
                }
                if let Some(Schedule {
                    timezone,
                    due: Some(d),
                    ..
                }) = &old
                {
                    due_index.remove(due_key(timezone.0, d.at, id))?;
                }
                let mut next = Schedule {
                    v: Schedule::VERSION,
                    timezone: user.timezone,
                    hour: user.digest_hour.get(),
                    frequency: user.digest_frequency,
                    weekday,
                    due: None,
                    last_period: old.as_ref().and_then(|o| o.last_period),
                    last_digest_at: old.as_ref().and_then(|o| o.last_digest_at),
                };
                next.due = next.cadence().next_due(now, next.last_period);
                if let Some(d) = next.due {
                    due_index
                        .insert(due_key(next.timezone.0, d.at, id), &period_bytes(d.period))?;
                }
                schedules.insert(id.as_bytes(), tx_encode(&next)?)?;
                Ok(Scheduled {
                    due: next.due,
                    changed: true,
                })
            })?;
        Ok(scheduled)
    }

    pub fn schedule_of(&self, user: Uuid) -> Result<Option<Schedule>, StoreError> {
        self.store
            .trees()
            .digest_schedule
            .get(user.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Schedules in user-id order after `after`, at most `limit`.
    pub fn schedules_after(
        &self,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<(Uuid, Schedule)>, StoreError> {
        let tree = &self.store.trees().digest_schedule;
        let iter = match after {
            Some(id) => tree.range(KeyBuf::new().uuid(id).bytes(&[0]).build()..),
            None => tree.iter(),
        };
        iter.take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                let id = super::keys::uuid_from(&k)
                    .ok_or_else(|| StoreError::Corrupt("digest_schedule key".into()))?;
                Ok((id, decode(&v)?))
            })
            .collect()
    }

    /// Makes every user's schedule match their settings (at start: a crash between a user
    /// change and its reschedule, a changed `weekly_day`) and drops schedules of erased users.
    /// Returns how many schedules changed.
    pub fn reconcile(&self, weekday: Weekday, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let t = self.store.trees();
        let mut changed = 0;
        for kv in t.users.iter() {
            let (_, raw) = kv?;
            let user: User = decode(&raw)?;
            if self.schedule(&user, weekday, now)?.changed {
                changed += 1;
            }
        }
        for kv in t.digest_schedule.iter() {
            let (k, _) = kv?;
            if t.users.get(&k)?.is_none()
                && let Some(id) = super::keys::uuid_from(&k)
            {
                self.erase_user(id)?;
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Users due at or before `now` in the given timezones, earliest first per timezone, at most
    /// `limit` in all.
    pub fn due(
        &self,
        timezones: &[Tz],
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueUser>, StoreError> {
        let tree = &self.store.trees().digest_due;
        let mut out = Vec::new();
        for tz in timezones {
            let prefix = KeyBuf::new().str(tz.name()).build();
            let end = KeyBuf::new()
                .bytes(&prefix)
                .time(now)
                .bytes(&[0xff; 16])
                .build();
            for kv in tree.range(prefix.clone()..end) {
                if out.len() >= limit {
                    return Ok(out);
                }
                let (k, v) = kv?;
                let mut r = KeyReader::new(&k);
                let (Some(_), Some(at), Some(user_id), Some(period)) =
                    (r.str(), r.time(), r.uuid(), period_from(&v))
                else {
                    continue;
                };
                out.push(DueUser {
                    user_id,
                    due: Due { at, period },
                });
            }
        }
        Ok(out)
    }

    /// The earliest due instant in the given timezones.
    pub fn earliest(&self, timezones: &[Tz]) -> Result<Option<DateTime<Utc>>, StoreError> {
        let tree = &self.store.trees().digest_due;
        let mut earliest: Option<DateTime<Utc>> = None;
        for tz in timezones {
            let prefix = KeyBuf::new().str(tz.name()).build();
            if let Some((k, _)) = tree.scan_prefix(&prefix).next().transpose()?
                && let Some(at) = k.get(prefix.len()..).and_then(|b| KeyReader::new(b).time())
            {
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
        }
        Ok(earliest)
    }

    /// Commits built digests in one transaction: for each draft not yet done for its period, the
    /// digest record (when it lists anything), its delivery and outbox entry; and the user's
    /// schedule moves on to the next period. A draft whose period is already done, or that answers
    /// a due entry that has since moved (settings changed), is skipped.
    pub fn commit(&self, drafts: &[Draft], now: DateTime<Utc>) -> Result<Committed, StoreError> {
        let t = self.store.trees();
        let ids: Vec<(Uuid, Uuid)> = drafts
            .iter()
            .map(|_| (crate::domain::v7_at(now), crate::domain::v7_at(now)))
            .collect();
        let committed = (
            &t.digests,
            &t.deliveries,
            &t.outbox,
            &t.digest_schedule,
            &t.digest_due,
        )
            .transaction(|(digests, deliveries, outbox, schedules, due_index)| {
                let mut out = Committed::default();
                for (draft, (digest_id, delivery_id)) in drafts.iter().zip(&ids) {
                    let user = draft.user_id;
                    let Some(raw) = schedules.get(user.as_bytes())? else {
                        out.skipped += 1; // erased meanwhile
                        continue;
                    };
                    let mut schedule: Schedule = tx_decode(&raw)?;
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
                    let key = digest_key(user, draft.period);
                    if digests.get(&key)?.is_some() || draft.selection.is_empty() {
                        out.skipped += 1;
                    } else {
                        let record = DigestRecord {
                            v: DigestRecord::VERSION,
                            id: *digest_id,
                            user_id: user,
                            local_date: draft.period,
                            created_at: now,
                            voucher_ids: draft.selection.voucher_ids.clone(),
                            more: draft.selection.more,
                            delivery_id: *delivery_id,
                        };
                        digests.insert(key, tx_encode(&record)?)?;
                        let delivery = Delivery::new(
                            *delivery_id,
                            Channel::Email,
                            Payload::Digest {
                                user_id: user,
                                digest_id: *digest_id,
                                local_date: draft.period,
                            },
                            now,
                        );
                        enqueue(deliveries, outbox, &delivery)?;
                        out.sent += 1;
                    }
                    // The period is done: move on, unless the schedule is already past it.
                    if schedule.due.is_none_or(|d| d.period <= draft.period) {
                        if let Some(d) = schedule.due {
                            due_index.remove(due_key(schedule.timezone.0, d.at, user))?;
                        }
                        schedule.last_period = Some(
                            schedule
                                .last_period
                                .map_or(draft.period, |p| p.max(draft.period)),
                        );
                        schedule.last_digest_at = Some(draft.as_of);
                        schedule.due = schedule.cadence().next_due(now, schedule.last_period);
                        if let Some(d) = schedule.due {
                            due_index.insert(
                                due_key(schedule.timezone.0, d.at, user),
                                &period_bytes(d.period),
                            )?;
                        }
                        schedules.insert(user.as_bytes(), tx_encode(&schedule)?)?;
                    }
                }
                Ok(out)
            })?;
        Ok(committed)
    }

    /// From when a digest built at `now` lists vouchers: the previous digest's selection time,
    /// else one period back (a user without a schedule: one day).
    pub fn since(&self, user: Uuid, now: DateTime<Utc>) -> Result<DateTime<Utc>, StoreError> {
        Ok(match self.schedule_of(user)? {
            Some(schedule) => schedule.since(now),
            None => now - chrono::Duration::days(1),
        })
    }

    /// What a digest built at `now` holds for these subscriptions: the active vouchers first seen
    /// since `since`, newest first, at most `max`, and how many more matched.
    pub fn select(
        &self,
        subscriptions: &[Subscription],
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        max: usize,
    ) -> Result<Selection, StoreError> {
        let vouchers = self.store.vouchers();
        let mut found = std::collections::BTreeSet::new();
        for s in subscriptions {
            let which = match s.target {
                Target::Retailer(_) => Named::Retailer,
                Target::Category(_) => Named::Category,
            };
            vouchers.new_since(which, &s.target.key(), since, now, &mut found)?;
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
            .contains_key(digest_key(user, period))?)
    }

    pub fn get(&self, user: Uuid, period: NaiveDate) -> Result<Option<DigestRecord>, StoreError> {
        self.store
            .trees()
            .digests
            .get(digest_key(user, period))?
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
        let start = KeyBuf::new().uuid(user).build();
        let end = match before {
            Some(p) => digest_key(user, p),
            None => KeyBuf::new().uuid(user).bytes(&[0xff; 4]).build(),
        };
        tree.range(start..end)
            .rev()
            .take(limit)
            .map(|kv| decode(&kv?.1))
            .collect()
    }

    /// Removes a user's schedule, digests and their deliveries (erasure).
    pub fn erase_user(&self, user: Uuid) -> Result<usize, StoreError> {
        let t = self.store.trees();
        let records: Vec<DigestRecord> = t
            .digests
            .scan_prefix(user.as_bytes())
            .values()
            .map(|v| decode(&v?))
            .collect::<Result<_, StoreError>>()?;
        let mut outbox_keys = Vec::new();
        for r in &records {
            if let Some(raw) = t.deliveries.get(r.delivery_id.as_bytes())? {
                let d: Delivery = decode(&raw)?;
                outbox_keys.push(outbox_key(d.next_attempt_at, d.id));
            }
        }
        (
            &t.digests,
            &t.deliveries,
            &t.outbox,
            &t.digest_schedule,
            &t.digest_due,
        )
            .transaction(|(digests, deliveries, outbox, schedules, due_index)| {
                if let Some(raw) = schedules.remove(user.as_bytes())? {
                    let s: Schedule = tx_decode(&raw)?;
                    if let Some(d) = s.due {
                        due_index.remove(due_key(s.timezone.0, d.at, user))?;
                    }
                }
                for r in &records {
                    digests.remove(digest_key(user, r.local_date))?;
                    deliveries.remove(r.delivery_id.as_bytes())?;
                }
                for k in &outbox_keys {
                    outbox.remove(k.as_slice())?;
                }
                Ok(())
            })?;
        Ok(records.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreSettings;
    use crate::domain::digest::Selection;
    use crate::domain::user::{DigestHour, Email, Role};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn racing_commits_for_one_period_write_one_digest_and_one_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreSettings {
            path: dir.path().join("data"),
            cache_capacity_mb: 16,
            fsync: false,
            writer_queue: 65_536,
        })
        .unwrap();
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
        };
        store.users().create(&user).unwrap();
        let due = store
            .digests()
            .schedule(&user, Weekday::Mon, now)
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
        let results: Vec<Committed> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|i| {
                    let mut d = draft.clone();
                    if i % 2 == 1 {
                        d.due_at = None; // the admin run's draft
                    }
                    let store = store.clone();
                    scope.spawn(move || store.digests().commit(&[d], at).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            results.iter().map(|c| c.sent).sum::<usize>(),
            1,
            "{results:?}"
        );
        assert_eq!(store.digests().history(user.id, None, 10).unwrap().len(), 1);
        assert_eq!(store.trees().deliveries.len(), 1);
        assert_eq!(store.trees().outbox.len(), 1);
        // The schedule moved on to the next day, 02:00 EDT.
        let s = store.digests().schedule_of(user.id).unwrap().unwrap();
        assert_eq!(s.due.unwrap().at, t("2026-03-09T06:00:00Z"));
        assert_eq!(store.trees().digest_due.len(), 1);
        // And a late, stale draft of that period changes nothing.
        assert_eq!(
            store.digests().commit(&[draft], at).unwrap(),
            Committed {
                sent: 0,
                skipped: 1
            }
        );
        // Erasure takes schedule, digests, deliveries and outbox entries.
        assert_eq!(store.digests().erase_user(user.id).unwrap(), 1);
        for tree in [
            &store.trees().digests,
            &store.trees().deliveries,
            &store.trees().outbox,
            &store.trees().digest_due,
            &store.trees().digest_schedule,
        ] {
            assert!(tree.is_empty());
        }
    }
}
