//! DigestShard: one per shard of timezones (`[digest] shards`). Each reads the in-memory due times
//! of its own timezones, wakes at the earliest with one timer (re-armed when a user change brings
//! an earlier one: [`Wake`]), selects a due batch from the in-memory subscription and catalogue
//! indexes in one pass (on a store read thread), and commits it as one writer command (one
//! record and one outbox marker per digest). Then it wakes the DeliveryDispatcher.
//!
//! Exactly once per user and period comes from the store (the digest key), so a restart, a second
//! run or an admin run racing a shard never sends twice. After a restart the due times are
//! rebuilt from the users' settings; a period that fell due while the process was down and has no
//! digest is sent at once.

mod handlers;

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, SpawnHandle, Supervised};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use tokio::sync::Notify;
use uuid::Uuid;

use super::supervise::{SupervisedActor, note_restart};
use crate::clock::SharedClock;
use crate::store::digests::Committed;
use crate::store::{Store, StoreError};

pub use crate::actors::messages::Wake;

/// Users handled per writer command.
pub const BATCH: usize = 512;
/// The timer never sleeps longer than this, so a wall-clock jump is noticed.
pub const MAX_TIMER: Duration = Duration::from_secs(60);

/// The shard a timezone belongs to: a stable hash (FNV-1a) of its name, so the split does not
/// depend on the Rust version or the order of anything.
pub fn shard_of(tz: Tz, shards: u16) -> u16 {
    let mut h: u32 = 0x811c_9dc5;
    for b in tz.name().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % u32::from(shards.max(1))) as u16
}

/// The timezones of one shard.
pub fn timezones_of(shard: u16, shards: u16) -> Vec<Tz> {
    chrono_tz::TZ_VARIANTS
        .iter()
        .copied()
        .filter(|tz| shard_of(*tz, shards) == shard)
        .collect()
}

pub struct DigestShard {
    index: u16,
    timezones: Arc<Vec<Tz>>,
    store: Store,
    clock: SharedClock,
    composing: Composing,
    dispatcher: Arc<Notify>,
    running: bool,
    again: bool,
    timer: Option<SpawnHandle>,
}

impl DigestShard {
    pub fn new(
        index: u16,
        shards: u16,
        store: Store,
        clock: SharedClock,
        composing: Composing,
        dispatcher: Arc<Notify>,
    ) -> Self {
        Self {
            index,
            timezones: Arc::new(timezones_of(index, shards)),
            store,
            clock,
            composing,
            dispatcher,
            running: false,
            again: false,
            timer: None,
        }
    }

    /// Sleeps until `earliest` (or [`MAX_TIMER`]), then wakes itself.
    fn arm(&mut self, ctx: &mut Context<Self>, earliest: Option<DateTime<Utc>>) {
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        let wait = earliest
            .map(|at| (at - self.clock.now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(MAX_TIMER)
            .min(MAX_TIMER);
        self.timer = Some(ctx.run_later(wait, |act, ctx| {
            act.timer = None;
            ctx.notify(Wake);
        }));
    }
}

impl Actor for DigestShard {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.running = false;
        self.again = false;
        ctx.notify(Wake);
    }
}

impl Supervised for DigestShard {
    fn restarting(&mut self, _: &mut Context<Self>) {
        note_restart::<Self>();
    }
}

impl SupervisedActor for DigestShard {
    const NAME: &'static str = "digest_shard";
}

/// Builds the digests of these `(user, period, due time)` from the in-memory indexes (one read
/// hop for the batch) and commits them as one writer command (durable when this returns).
/// What goes into a digest: at most `max_vouchers` vouchers (`[digest] max_vouchers`), and with
/// `confirmed_only` (`[accounts] verify_email`) none for a user whose address is not confirmed:
/// their period passes with nothing sent (a digest to an address nobody confirmed would be mail
/// to whoever typed it).
#[derive(Debug, Clone, Copy)]
pub struct Composing {
    pub max_vouchers: usize,
    pub confirmed_only: bool,
}

impl Composing {
    pub fn of(settings: &crate::config::Settings) -> Self {
        Self {
            max_vouchers: usize::from(settings.digest.max_vouchers),
            confirmed_only: settings.accounts.verify_email,
        }
    }
}

pub async fn build_and_commit(
    store: &Store,
    items: Vec<(Uuid, NaiveDate, Option<DateTime<Utc>>)>,
    now: DateTime<Utc>,
    composing: Composing,
) -> Result<Committed, StoreError> {
    if items.is_empty() {
        return Ok(Committed::default());
    }
    let drafts = store
        .run(move |s| {
            let digests = s.digests();
            items
                .iter()
                .map(|(user, period, due_at)| {
                    let unconfirmed =
                        composing.confirmed_only && s.users().verified(*user) != Some(true);
                    let max = if unconfirmed {
                        0
                    } else {
                        composing.max_vouchers
                    };
                    digests.draft(*user, *period, *due_at, now, max)
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let committed = store
        .write(move |s| s.digests().commit(&drafts, now))
        .await?;
    metrics::counter!("voucherd_digests_total", "result" => "sent")
        .increment(committed.sent as u64);
    metrics::counter!("voucherd_digests_total", "result" => "skipped")
        .increment(committed.skipped as u64);
    Ok(committed)
}

/// `POST /admin/digests/run`: every digest not yet sent for the user's current local period
/// (one user, or all), ignoring the hour. Returns (sent, skipped).
pub async fn run_now(
    store: &Store,
    dispatcher: &Notify,
    clock: &SharedClock,
    composing: Composing,
    user: Option<Uuid>,
) -> Result<Committed, StoreError> {
    let now = clock.now();
    let mut total = Committed::default();
    let mut after: Option<Uuid> = None;
    loop {
        let (batch, last) = store
            .run(move |s| {
                let digests = s.digests();
                let schedules = match user {
                    Some(u) => digests
                        .schedule_of(u)?
                        .map(|sc| vec![(u, sc)])
                        .unwrap_or_default(),
                    None => digests.schedules_after(after, BATCH)?,
                };
                let last = schedules.last().map(|(u, _)| *u);
                let mut items = Vec::new();
                let mut skipped = 0;
                for (u, sc) in schedules {
                    match sc.cadence.current_period(now) {
                        Some(p) if !digests.done(u, p)? => items.push((u, p, None)),
                        _ => skipped += 1,
                    }
                }
                Ok((items, last.map(|l| (l, skipped))))
            })
            .await?;
        let Some((last, skipped)) = last else {
            break;
        };
        total.skipped += skipped;
        if !batch.is_empty() {
            let c = build_and_commit(store, batch, now, composing).await?;
            total.sent += c.sent;
            total.skipped += c.skipped;
        }
        if user.is_some() {
            break;
        }
        after = Some(last);
    }
    dispatcher.notify_one();
    Ok(total)
}
