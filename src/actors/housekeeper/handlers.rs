use actix::{ActorFutureExt, AsyncContext, Context, Handler, WrapFuture};

use super::Housekeeper;
use crate::actors::messages::{Ping, Sweep};
use crate::actors::supervise::{ActorPanic, guard};

impl Handler<Ping> for Housekeeper {
    type Result = Result<(), ActorPanic>;

    fn handle(&mut self, _: Ping, ctx: &mut Context<Self>) -> Self::Result {
        guard(self, ctx, |_, _| ())
    }
}

impl Handler<Sweep> for Housekeeper {
    type Result = Result<(), ActorPanic>;

    fn handle(&mut self, _: Sweep, ctx: &mut Context<Self>) -> Self::Result {
        guard(self, ctx, |act, ctx| {
            crate::telemetry::metrics().run_upkeep();
            if act.sweeping {
                return;
            }
            act.sweeping = true;
            let store = act.store.clone();
            let now = act.clock.now();
            let work = async move { store.write(move |s| s.tokens().purge_expired(now)).await };
            ctx.spawn(work.into_actor(act).map(|result, act, _| {
                act.sweeping = false;
                match result {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "expired tokens purged"),
                    Err(e) => tracing::warn!(error = %e, "token purge failed"),
                }
            }));
        })
    }
}
