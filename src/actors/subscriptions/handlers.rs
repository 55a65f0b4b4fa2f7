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

/// Erase the user and everything that names them (subscriptions, digests, messages and the
/// alerts about them, code requests, push subscriptions, tokens, the user), in one writer
/// command; then the manager stops, so no change queued behind it touches the erased user.
/// Answered with the outbox ids whose copies (the file transport's) are to be removed too, and
/// how many tokens went.
#[derive(Debug, Message)]
#[rtype(result = "Result<(usize, Vec<String>), ManagerError>")]
pub struct EraseUser;

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

impl Handler<EraseUser> for SubscriptionManager {
    type Result = AtomicResponse<Self, Result<(usize, Vec<String>), ManagerError>>;

    fn handle(&mut self, _: EraseUser, _: &mut Self::Context) -> Self::Result {
        self.touch();
        let (store, id, now) = (self.store.clone(), self.user, self.clock.now());
        AtomicResponse::new(Box::pin(
            async move {
                // Everything that names the user first, the user last: a crash half-way leaves
                // a user who can be erased again, never orphaned personal data.
                store
                    .write(move |s| {
                        let Some(user) = s.users().get(id)? else {
                            return Err(StoreError::NotFound);
                        };
                        s.subscriptions().erase_user(id)?;
                        let mut ids = s.digests().erase_user(id)?;
                        ids.extend(s.messages().erase_owner(id)?);
                        s.code_requests().erase_customer(id)?;
                        s.push_subscriptions().erase_user(id)?;
                        // What stays (sales, redemptions, codes) names nobody.
                        s.orders().forget_customer(id, &user.email, now)?;
                        s.codes().forget_holder(id)?;
                        s.idempotency().forget_naming(id, user.email.as_str())?;
                        s.tokens().revoke_keys_made_by(id)?;
                        let mut deliveries: Vec<String> = ids.iter().map(Uuid::to_string).collect();
                        let alerts = s.notifications().erase_about(&deliveries)?;
                        deliveries.extend(alerts.iter().map(Uuid::to_string));
                        Ok((s.users().erase(id)?.tokens, deliveries))
                    })
                    .await
            }
            .into_actor(self)
            .map(|erased, _, ctx| {
                if erased.is_ok() {
                    actix::ActorContext::stop(ctx);
                }
                Ok(erased?)
            }),
        ))
    }
}

impl Handler<Stop> for SubscriptionManager {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        actix::ActorContext::stop(ctx);
    }
}
