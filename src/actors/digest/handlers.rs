//! DigestShard messages.

use actix::{ActorFutureExt, AsyncContext, Handler, ResponseActFuture, WrapFuture};

use super::{BATCH, DigestShard, Wake, build_and_commit};
use crate::actors::messages::Ping;
use crate::actors::supervise::{ActorPanic, guard};

impl Handler<Ping> for DigestShard {
    type Result = Result<(), ActorPanic>;

    fn handle(&mut self, _: Ping, ctx: &mut Self::Context) -> Self::Result {
        guard(self, ctx, |_, _| ())
    }
}

impl Handler<Wake> for DigestShard {
    type Result = ResponseActFuture<Self, ()>;

    /// Sends every digest due now, batch by batch, then sleeps until the next one.
    fn handle(&mut self, _: Wake, _: &mut Self::Context) -> Self::Result {
        if self.running {
            self.again = true;
            return Box::pin(actix::fut::ready(()));
        }
        self.running = true;
        self.again = false;
        let (store, max, clock, tzs, dispatcher, index) = (
            self.store.clone(),
            self.composing,
            self.clock.clone(),
            self.timezones.clone(),
            self.dispatcher.clone(),
            self.index,
        );
        let work = async move {
            let mut previous_first = None;
            loop {
                let now = clock.now();
                let t = tzs.clone();
                let due = store.run(move |s| s.digests().due(&t, now, BATCH)).await?;
                let first = due.first().map(|d| (d.user_id, d.due));
                if first.is_none() || first == previous_first {
                    // Nothing due, or the same entry again (it could not be moved): wait.
                    break;
                }
                previous_first = first;
                let items = due
                    .iter()
                    .map(|d| (d.user_id, d.due.period, Some(d.due.at)))
                    .collect();
                let committed = build_and_commit(&store, items, now, max).await?;
                if committed.sent > 0 {
                    dispatcher.notify_one();
                }
                tracing::debug!(
                    shard = index,
                    due = due.len(),
                    sent = committed.sent,
                    "digests committed"
                );
            }
            let t = tzs.clone();
            store
                .run(move |s| s.digests().earliest(&t))
                .await
                .map_err(anyhow::Error::from)
        };
        Box::pin(work.into_actor(self).map(|earliest, act, ctx| {
            act.running = false;
            let earliest = earliest.unwrap_or_else(|e| {
                tracing::error!(shard = act.index, error = %e, "digest run failed; retrying within a minute");
                None
            });
            if act.again {
                ctx.notify(Wake);
            } else {
                act.arm(ctx, earliest);
            }
        }))
    }
}
