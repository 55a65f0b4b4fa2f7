//! SubscriptionManager messages.

use std::sync::Arc;
use std::time::Instant;

use actix::{ActorFutureExt, AtomicResponse, Handler, Message, ResponseActFuture, WrapFuture};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::SubscriptionManager;
use crate::domain::digest::{Draft, Subscription, Target};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the subscription manager stopped: {0}")]
    Mailbox(#[from] actix::MailboxError),
}

/// The user's subscriptions, oldest first.
#[derive(Debug, Message)]
#[rtype(result = "Result<Arc<Vec<Subscription>>, ManagerError>")]
pub struct ListSubscriptions;

/// Follow a retailer or category; `Conflict` when already followed.
#[derive(Debug, Message)]
#[rtype(result = "Result<Subscription, ManagerError>")]
pub struct Subscribe(pub Target);

/// Stop following; `NotFound` when the id is not the user's.
#[derive(Debug, Message)]
#[rtype(result = "Result<Subscription, ManagerError>")]
pub struct Unsubscribe(pub Uuid);

/// Build the user's digest for `period` as of `now`: the active vouchers of their retailers and
/// categories first seen since their previous digest.
#[derive(Debug, Message)]
#[rtype(result = "Result<Draft, ManagerError>")]
pub struct BuildDigest {
    pub period: NaiveDate,
    /// The due entry this answers; `None` for an admin run or a preview.
    pub due_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(super) struct Stop;

impl SubscriptionManager {
    fn touch(&mut self) {
        self.last_used = Instant::now();
    }

    /// Keeps a loaded list unless a change landed while it was loading (it may be stale then).
    fn cache(&mut self, subs: Arc<Vec<Subscription>>, changes_at_load: u64) {
        if self.changes == changes_at_load {
            self.subscriptions = Some(subs);
        }
    }

    /// The cached subscriptions, or a future loading them.
    fn load(
        &self,
    ) -> impl std::future::Future<Output = Result<Arc<Vec<Subscription>>, StoreError>> + 'static
    {
        let cached = self.subscriptions.clone();
        let store = self.store.clone();
        let user = self.user;
        async move {
            match cached {
                Some(s) => Ok(s),
                None => Ok(Arc::new(
                    store.run(move |s| s.subscriptions().of_user(user)).await?,
                )),
            }
        }
    }
}

impl Handler<ListSubscriptions> for SubscriptionManager {
    type Result = ResponseActFuture<Self, Result<Arc<Vec<Subscription>>, ManagerError>>;

    fn handle(&mut self, _: ListSubscriptions, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let changes = self.changes;
        Box::pin(self.load().into_actor(self).map(move |loaded, act, _| {
            let subs = loaded?;
            act.cache(subs.clone(), changes);
            Ok(subs)
        }))
    }
}

impl Handler<Subscribe> for SubscriptionManager {
    type Result = AtomicResponse<Self, Result<Subscription, ManagerError>>;

    fn handle(&mut self, msg: Subscribe, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let now = self.clock.now();
        let sub = Subscription {
            v: Subscription::VERSION,
            id: crate::domain::v7_at(now),
            user_id: self.user,
            target: msg.0,
            created_at: now,
        };
        let store = self.store.clone();
        let stored = sub.clone();
        AtomicResponse::new(Box::pin(
            async move { store.write(move |s| s.subscriptions().add(&stored)).await }
                .into_actor(self)
                .map(move |written, act, _| {
                    act.changes += 1;
                    written?;
                    if let Some(cached) = &act.subscriptions {
                        let mut next = cached.as_ref().clone();
                        next.push(sub.clone());
                        act.subscriptions = Some(Arc::new(next));
                    }
                    Ok(sub)
                }),
        ))
    }
}

impl Handler<Unsubscribe> for SubscriptionManager {
    type Result = AtomicResponse<Self, Result<Subscription, ManagerError>>;

    fn handle(&mut self, msg: Unsubscribe, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let store = self.store.clone();
        let user = self.user;
        let id = msg.0;
        AtomicResponse::new(Box::pin(
            async move {
                store
                    .write(move |s| s.subscriptions().remove(user, id))
                    .await
            }
            .into_actor(self)
            .map(move |removed, act, _| {
                act.changes += 1;
                let removed = removed?;
                if let Some(cached) = &act.subscriptions {
                    let next = cached.iter().filter(|s| s.id != id).cloned().collect();
                    act.subscriptions = Some(Arc::new(next));
                }
                Ok(removed)
            }),
        ))
    }
}

impl Handler<BuildDigest> for SubscriptionManager {
    type Result = ResponseActFuture<Self, Result<Draft, ManagerError>>;

    fn handle(&mut self, msg: BuildDigest, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let store = self.store.clone();
        let user = self.user;
        let max = self.max_vouchers;
        let load = self.load();
        let changes = self.changes;
        Box::pin(
            async move {
                let subs = load.await?;
                let s2 = subs.clone();
                let (since, selection) = store
                    .run(move |s| {
                        let since = s.digests().since(user, msg.now)?;
                        Ok((since, s.digests().select(&s2, since, msg.now, max)?))
                    })
                    .await?;
                Ok::<_, StoreError>((subs, since, selection))
            }
            .into_actor(self)
            .map(move |built, act, _| {
                let (subs, since, selection) = built?;
                act.cache(subs, changes);
                Ok(Draft {
                    user_id: user,
                    period: msg.period,
                    due_at: msg.due_at,
                    since,
                    as_of: msg.now,
                    selection,
                })
            }),
        )
    }
}

impl Handler<Stop> for SubscriptionManager {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        actix::ActorContext::stop(ctx);
    }
}
