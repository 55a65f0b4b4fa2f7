//! Notifier: watches the campaigns for what admins are told about — a pool down to
//! [`LOW_SHARE`] or less (`pool_low`), a campaign that ended by its window or by `POST …/end`
//! (`campaign_ended`) — and raises those notifications. Every notification (these, and the
//! `network_failing` / `delivery_failing` the network actors and the dispatcher raise in their own
//! writes) goes through `Notifications::raise`: stored, at most one per kind and subject an hour,
//! and emailed to `[notify] admin_emails` through the dispatcher's outbox.
//!
//! It looks every [`CHECK_EVERY`] (and when woken) from memory: the campaign index and the code
//! counters, inside one writer command, so its decisions and the stored notifications agree. A
//! campaign alerted as low is not alerted again until its pool grew above the mark (codes added);
//! an ended campaign is alerted once, if it ended within [`ENDED_RECENTLY`] (a restart after a
//! long stop does not replay old news).

mod handlers;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Supervised};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::messages::Wake;
use super::supervise::{SupervisedActor, note_restart};
use crate::clock::SharedClock;
use crate::domain::campaign::CampaignStatus;
use crate::domain::notification::{Notification, NotificationKind};
use crate::store::{Store, StoreError};

pub const CHECK_EVERY: Duration = Duration::from_secs(5);
/// A pool with at most this share of its codes left is low.
pub const LOW_SHARE: f64 = 0.10;
/// How far back an ended campaign is still news.
pub const ENDED_RECENTLY: chrono::TimeDelta = chrono::TimeDelta::days(7);

pub struct Notifier {
    store: Store,
    clock: SharedClock,
    /// Whether alerts are emailed (`[notify] admin_emails` is not empty).
    email: bool,
    /// Wakes the dispatcher when an email was queued.
    outbox_wake: Arc<tokio::sync::Notify>,
    /// Campaigns alerted as low in their current low spell (`None` until seeded from the store).
    low: Option<HashSet<Uuid>>,
    checking: bool,
}

impl Notifier {
    pub fn new(
        store: Store,
        clock: SharedClock,
        email: bool,
        outbox_wake: Arc<tokio::sync::Notify>,
    ) -> Self {
        Self {
            store,
            clock,
            email,
            outbox_wake,
            low: None,
            checking: false,
        }
    }
}

impl Actor for Notifier {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.checking = false;
        ctx.notify(Wake);
        ctx.run_interval(CHECK_EVERY, |_, ctx| ctx.notify(Wake));
    }
}

impl Supervised for Notifier {
    fn restarting(&mut self, _: &mut Context<Self>) {
        note_restart::<Self>();
    }
}

impl SupervisedActor for Notifier {
    const NAME: &'static str = "notifier";
}

/// Whether `left` of `total` codes is low.
pub fn is_low(left: u64, total: u64) -> bool {
    total > 0 && (left as f64) <= (total as f64) * LOW_SHARE
}

/// One look at every campaign (writer only): raises what is due, returns the campaigns now in a
/// low spell and how many notifications were raised.
pub(crate) fn check(
    s: &Store,
    low: Option<HashSet<Uuid>>,
    now: DateTime<Utc>,
    email: bool,
) -> Result<(HashSet<Uuid>, usize), StoreError> {
    let seeded = low.is_some();
    let mut low = low.unwrap_or_default();
    let mut raised = 0;
    for c in s.campaigns().all() {
        let id = c.id.to_string();
        let counts = s.codes().counts(c.id);
        let left = counts.available;
        match c.status(counts.total, now) {
            CampaignStatus::Ended => {
                low.remove(&c.id);
                let recent = now - c.closes_at() <= ENDED_RECENTLY;
                let told = s
                    .notifications()
                    .last_raised(NotificationKind::CampaignEnded, &id)
                    .is_some();
                if recent && !told {
                    let how = if c.ended_at.is_some_and(|e| e < c.ends_at) {
                        "was ended"
                    } else {
                        "reached the end of its window"
                    };
                    let n = Notification::new(
                        NotificationKind::CampaignEnded,
                        &id,
                        format!(
                            "campaign \"{}\" {how}: {} of {} codes claimed, {} redeemed",
                            c.name, counts.claimed, counts.total, counts.redeemed
                        ),
                        now,
                    );
                    raised += usize::from(s.notifications().raise(&n, email)?.is_some());
                }
            }
            CampaignStatus::Draft => {}
            CampaignStatus::Scheduled | CampaignStatus::Active | CampaignStatus::Paused => {
                raised += budgets_low(s, &c, now, email)?;
                if !is_low(left, counts.total) {
                    low.remove(&c.id);
                    continue;
                }
                // After a restart a spell already told about is not told again.
                let told = if seeded {
                    low.contains(&c.id)
                } else {
                    s.notifications()
                        .last_raised(NotificationKind::PoolLow, &id)
                        .is_some()
                };
                low.insert(c.id);
                if !told {
                    let n = Notification::new(
                        NotificationKind::PoolLow,
                        &id,
                        format!(
                            "campaign \"{}\": {left} of {} codes left",
                            c.name, counts.total
                        ),
                        now,
                    );
                    raised += usize::from(s.notifications().raise(&n, email)?.is_some());
                }
            }
        }
    }
    Ok((low, raised))
}

/// A campaign-wide budget at 90 % or more of its limit in the current period raises
/// `budget_low`, once per budget and period (its subject names both). Returns how many were
/// raised.
fn budgets_low(
    s: &Store,
    c: &crate::domain::campaign::Campaign,
    now: DateTime<Utc>,
    email: bool,
) -> Result<usize, StoreError> {
    use crate::domain::promotion::{Per, period_of};
    let mut raised = 0;
    for (i, u) in s.orders().budget_use(c, now).into_iter().enumerate() {
        if u.budget.per != Per::Campaign || u.used.saturating_mul(10) < u.budget.limit * 9 {
            continue;
        }
        let period = period_of(u.budget.period, now, c.timezone.0);
        let subject = format!("{}:{i}:{period}", c.id);
        if s.notifications()
            .last_raised(NotificationKind::BudgetLow, &subject)
            .is_some()
        {
            continue;
        }
        let n = Notification::new(
            NotificationKind::BudgetLow,
            &subject,
            format!(
                "campaign \"{}\": budget {} has used {} of {} {} in its current period",
                c.name,
                i + 1,
                u.used,
                u.budget.limit,
                match u.budget.measure {
                    crate::domain::promotion::Measure::DiscountCents => "discount cents",
                    crate::domain::promotion::Measure::Redemptions => "redemptions",
                },
            ),
            now,
        );
        raised += usize::from(s.notifications().raise(&n, email)?.is_some());
    }
    Ok(raised)
}

#[cfg(test)]
mod tests {
    use super::is_low;

    #[test]
    fn a_pool_is_low_at_a_tenth_or_less() {
        assert!(!is_low(11, 100));
        assert!(is_low(10, 100));
        assert!(is_low(0, 100));
        assert!(!is_low(0, 0), "no codes is a draft, not a low pool");
    }
}
