//! DeliveryDispatcher messages.

use actix::Handler;

use super::DeliveryDispatcher;
use crate::actors::messages::{Ping, Wake};
use crate::actors::supervise::{ActorPanic, guard};

impl Handler<Ping> for DeliveryDispatcher {
    type Result = Result<(), ActorPanic>;

    fn handle(&mut self, _: Ping, ctx: &mut Self::Context) -> Self::Result {
        guard(self, ctx, |_, _| ())
    }
}

impl Handler<Wake> for DeliveryDispatcher {
    type Result = ();

    fn handle(&mut self, _: Wake, _: &mut Self::Context) {
        self.wake.notify_one();
    }
}
