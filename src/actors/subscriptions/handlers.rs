//! SubscriptionManager messages.

use std::sync::Arc;
use std::time::Instant;

use actix::{ActorFutureExt, AtomicResponse, Handler, Message, ResponseFuture, WrapFuture};
use uuid::Uuid;

use super::SubscriptionManager;
use crate::domain::digest::{Subscription, Target};
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

#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(super) struct Stop;

impl SubscriptionManager {
    fn touch(&mut self) {
        self.last_used = Instant::now();
    }
}

impl Handler<ListSubscriptions> for SubscriptionManager {
    type Result = ResponseFuture<Result<Arc<Vec<Subscription>>, ManagerError>>;

    fn handle(&mut self, _: ListSubscriptions, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let (store, user) = (self.store.clone(), self.user);
        Box::pin(async move {
            Ok(Arc::new(
                store.run(move |s| s.subscriptions().of_user(user)).await?,
            ))
        })
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
        let max = self.max_per_user;
        AtomicResponse::new(Box::pin(
            async move {
                store
                    .write(move |s| s.subscriptions().add(&stored, max))
                    .await
            }
            .into_actor(self)
            .map(move |written, _, _| {
                written?;
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
            .map(move |removed, _, _| Ok(removed?)),
        ))
    }
}

impl Handler<Stop> for SubscriptionManager {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        actix::ActorContext::stop(ctx);
    }
}
