//! NetworkActor: one per `[[networks]]` entry. Pulls its feed on its cron schedule (in UTC) and on
//! demand ([`PullNow`](crate::actors::messages::PullNow)), converts it with its adapter
//! (`crate::feeds`), upserts the vouchers, and keeps the network's health in the store
//! (`ok | degraded | failing | disabled`, last error, backoff).
//!
//! At start it pulls at once when a scheduled run was missed (or it never pulled), then follows
//! the schedule. A failed pull never stops the actor or its schedule: the next attempt comes after an
//! exponential backoff with jitter (`catalogue.retry_*`), and once a pull succeeds the cron
//! schedule takes over again. When a network turns `failing`, a `network_failing` notification is
//! stored for the admins. Pulls run as futures on the actor's context: the mailbox stays served
//! (pings, joins) while a pull is in flight, and a second request joins the running pull instead
//! of starting another.

pub mod fetch;
mod handlers;
pub mod pull;

use std::time::Duration;

use actix::{Actor, AsyncContext, Context, SpawnHandle, Supervised};
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::messages::PullOutcome;
use super::supervise::{SupervisedActor, note_restart};
use crate::clock::SharedClock;
use crate::config::{CatalogueSettings, NetworkSettings};
use crate::domain::network::Backoff;
use crate::store::Store;

/// Longest single timer; a later due time is reached by re-arming (keeps clock jumps harmless).
const MAX_TIMER: Duration = Duration::from_secs(3600);

pub struct NetworkActor {
    settings: NetworkSettings,
    schedule: Option<cron::Schedule>,
    puller: pull::Puller,
    backoff: Backoff,
    store: Store,
    clock: SharedClock,
    pulling: bool,
    waiters: Vec<oneshot::Sender<PullOutcome>>,
    timer: Option<SpawnHandle>,
    /// Whether alerts are emailed (`[notify] admin_emails` is not empty).
    email_alerts: bool,
}

impl NetworkActor {
    pub fn new(
        settings: NetworkSettings,
        catalogue: &CatalogueSettings,
        store: Store,
        clock: SharedClock,
        email_alerts: bool,
    ) -> Result<Self, String> {
        let schedule = settings.schedule.cron().clone();
        let fetcher = fetch::Fetcher::new(
            catalogue.max_response_mb as usize * 1024 * 1024,
            clock.clone(),
        )
        .map_err(|e| e.to_string())?;
        Ok(Self {
            schedule: Some(schedule),
            puller: pull::Puller {
                store: store.clone(),
                clock: clock.clone(),
                fetcher,
                retention: chrono::Duration::days(i64::from(catalogue.retention_days)),
                limits: pull::PullLimits::of(catalogue),
            },
            backoff: Backoff {
                base: chrono::Duration::seconds(catalogue.retry_base_s as i64),
                max: chrono::Duration::seconds(catalogue.retry_max_s as i64),
                failing_after: catalogue.failing_after,
            },
            settings,
            store,
            clock,
            pulling: false,
            waiters: Vec::new(),
            timer: None,
            email_alerts,
        })
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The next scheduled pull after `now` (UTC).
    fn next_scheduled(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.as_ref()?.after(&now).next()
    }

    /// Whether a scheduled run passed since `last_pull_at` (never pulled counts): checked at
    /// start, so a network is pulled at once after downtime, and a fresh install shows vouchers.
    fn missed_a_run(&self, last_pull_at: Option<DateTime<Utc>>) -> bool {
        if !self.settings.enabled {
            return false;
        }
        let Some(last) = last_pull_at else {
            return true;
        };
        let now = self.clock.now();
        self.schedule
            .as_ref()
            .and_then(|s| s.after(&now).next_back())
            .is_some_and(|previous| previous > last)
    }

    /// Arms the one timer for the next pull: the backoff time after a failure, else the schedule.
    fn arm(&mut self, ctx: &mut Context<Self>, retry_at: Option<DateTime<Utc>>) {
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        if !self.settings.enabled {
            return;
        }
        let now = self.clock.now();
        let Some(due) = retry_at.or_else(|| self.next_scheduled(now)) else {
            return;
        };
        let wait = (due - now).to_std().unwrap_or(Duration::ZERO);
        let fire = wait <= MAX_TIMER;
        self.timer = Some(ctx.run_later(wait.min(MAX_TIMER), move |act, ctx| {
            act.timer = None;
            if fire {
                act.begin_pull(ctx);
            } else {
                act.arm(ctx, retry_at);
            }
        }));
    }
}

impl Actor for NetworkActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.pulling = false;
        self.timer = None;
        ctx.set_mailbox_capacity(64);
        self.load_state(ctx);
    }
}

impl Supervised for NetworkActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        note_restart::<Self>();
        // Whoever waited on the pull that was running gets an error, not a hang.
        self.waiters.clear();
    }
}

impl SupervisedActor for NetworkActor {
    const NAME: &'static str = "network";
}
