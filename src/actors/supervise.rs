//! The supervision layer: a panic in a handler restarts the actor instead of killing it.
//!
//! actix's `Supervisor` restarts an actor that *stops*; a panic instead unwinds through the arbiter
//! and the actor is simply gone, its mailbox closed. Handlers of long-lived actors therefore run
//! their body through [`guard`]: a panic is caught, logged, counted in
//! `voucherd_actor_panics_total{actor}`, answered as [`ActorPanic`], and the actor is stopped, so
//! the Supervisor restarts it (`Supervised::restarting`, then `started` again). The `Addr` held by
//! everyone else stays valid and the next message is handled by the restarted actor.

use std::panic::{AssertUnwindSafe, catch_unwind};

use actix::{Actor, Addr, ArbiterHandle, Context, Supervised, Supervisor};

/// A long-lived actor run under the supervision layer.
pub trait SupervisedActor: Actor<Context = Context<Self>> + Supervised {
    /// The actor's name in logs and metrics.
    const NAME: &'static str;
}

/// The reply a message gets when its handler panicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the actor panicked while handling this message and was restarted")]
pub struct ActorPanic;

/// Runs a handler body; on panic stops the actor so its Supervisor restarts it.
pub fn guard<A, R>(
    act: &mut A,
    ctx: &mut Context<A>,
    body: impl FnOnce(&mut A, &mut Context<A>) -> R,
) -> Result<R, ActorPanic>
where
    A: SupervisedActor,
{
    match catch_unwind(AssertUnwindSafe(|| body(act, ctx))) {
        Ok(r) => Ok(r),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".to_owned());
            tracing::error!(actor = A::NAME, panic = %message, "actor handler panicked; restarting");
            metrics::counter!("voucherd_actor_panics_total", "actor" => A::NAME).increment(1);
            actix::ActorContext::stop(ctx);
            Err(ActorPanic)
        }
    }
}

/// Called from `Supervised::restarting`: counts the restart.
pub fn note_restart<A: SupervisedActor>() {
    tracing::warn!(actor = A::NAME, "actor restarting");
    metrics::counter!("voucherd_actor_restarts_total", "actor" => A::NAME).increment(1);
}

/// Starts an actor under a Supervisor on the given arbiter.
pub fn start<A, F>(arbiter: &ArbiterHandle, make: F) -> Addr<A>
where
    A: SupervisedActor,
    F: FnOnce(&mut Context<A>) -> A + Send + 'static,
{
    Supervisor::start_in_arbiter(arbiter, make)
}

#[cfg(test)]
mod tests {
    use actix::{Handler, Message};

    use super::*;

    /// A stand-in long-lived actor with a handler that panics on demand.
    struct Flaky {
        handled: u32,
        starts: std::sync::Arc<std::sync::atomic::AtomicU32>,
    }

    impl Actor for Flaky {
        type Context = Context<Self>;
        fn started(&mut self, _: &mut Context<Self>) {
            self.starts
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl Supervised for Flaky {
        fn restarting(&mut self, _: &mut Context<Self>) {
            note_restart::<Self>();
        }
    }

    impl SupervisedActor for Flaky {
        const NAME: &'static str = "flaky_test_actor";
    }

    #[derive(Message)]
    #[rtype(result = "Result<u32, ActorPanic>")]
    struct Work {
        panic: bool,
    }

    impl Handler<Work> for Flaky {
        type Result = Result<u32, ActorPanic>;
        fn handle(&mut self, msg: Work, ctx: &mut Context<Self>) -> Self::Result {
            guard(self, ctx, |act, _| {
                act.handled += 1;
                if msg.panic {
                    panic!("boom in a handler");
                }
                act.handled
            })
        }
    }

    #[actix_web::test]
    async fn a_panicking_handler_restarts_the_actor_and_the_same_addr_answers() {
        let handle = crate::telemetry::metrics();
        let starts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let arbiter = actix::Arbiter::current();
        let s = starts.clone();
        let addr = start(&arbiter, move |_| Flaky {
            handled: 0,
            starts: s,
        });

        assert_eq!(addr.send(Work { panic: false }).await.unwrap(), Ok(1));
        assert_eq!(
            addr.send(Work { panic: true }).await.unwrap(),
            Err(ActorPanic)
        );
        // Same Addr, still answering; the actor kept its state across the restart.
        assert_eq!(addr.send(Work { panic: false }).await.unwrap(), Ok(3));
        assert_eq!(
            starts.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "started, then restarted once"
        );
        let rendered = handle.render();
        assert!(
            rendered.contains("voucherd_actor_panics_total{actor=\"flaky_test_actor\"} 1"),
            "{rendered}"
        );
        assert!(rendered.contains("voucherd_actor_restarts_total{actor=\"flaky_test_actor\"} 1"));
    }
}
