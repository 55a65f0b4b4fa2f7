use actix::{ActorFutureExt, Context, Handler, WrapFuture};

use super::{Notifier, check};
use crate::actors::messages::{Ping, Wake};
use crate::actors::supervise::{ActorPanic, guard};

impl Handler<Ping> for Notifier {
    type Result = Result<(), ActorPanic>;

    fn handle(&mut self, _: Ping, ctx: &mut Context<Self>) -> Self::Result {
        guard(self, ctx, |_, _| ())
    }
}

impl Handler<Wake> for Notifier {
    type Result = ();

    /// Looks at the campaigns now (unless a look is running).
    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        let _ = guard(self, ctx, |act, ctx| {
            if act.checking {
                return;
            }
            act.checking = true;
            let (store, now, email) = (act.store.clone(), act.clock.now(), act.email);
            let low = act.low.clone();
            let work = async move { store.write(move |s| check(s, low, now, email)).await };
            actix::AsyncContext::spawn(
                ctx,
                work.into_actor(act).map(|result, act, _| {
                    act.checking = false;
                    match result {
                        Ok((low, raised)) => {
                            act.low = Some(low);
                            if raised > 0 && act.email {
                                act.outbox_wake.notify_one();
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "notifier: checking campaigns failed"),
                    }
                }),
            );
        });
    }
}
