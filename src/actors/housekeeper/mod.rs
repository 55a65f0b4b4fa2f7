//! Housekeeper: periodic upkeep that belongs to no request. At start and every `INTERVAL` it
//! expires unpaid orders past their deadline (their codes go back; the payment itself checks the
//! deadline, so a late sweep only returns codes later), purges expired tokens (through the
//! expiry index), moves vouchers whose phase changed (started, ended) and removes expired ones
//! past retention (through the `voucher_due` index), runs the metrics exporter's upkeep,
//! purges expired idempotency keys, and ends sign-ups whose confirmation link expired (with the
//! messages mailed for them).

mod handlers;

use std::time::Duration;

use actix::{Actor, AsyncContext, Context, Supervised};

use super::messages::Sweep;
use super::supervise::{SupervisedActor, note_restart};
use crate::clock::SharedClock;
use crate::config::CatalogueSettings;
use crate::store::Store;

pub const INTERVAL: Duration = Duration::from_secs(60);

pub struct Housekeeper {
    store: Store,
    clock: SharedClock,
    retention: chrono::Duration,
    /// A sweep is running; the next tick is skipped rather than stacked.
    sweeping: bool,
}

impl Housekeeper {
    pub fn new(store: Store, clock: SharedClock, catalogue: &CatalogueSettings) -> Self {
        Self {
            store,
            clock,
            retention: chrono::Duration::days(i64::from(catalogue.retention_days)),
            sweeping: false,
        }
    }
}

impl Actor for Housekeeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.sweeping = false;
        // Orders that lapsed while the server was down expire now.
        ctx.notify(Sweep);
        ctx.run_interval(INTERVAL, |_, ctx| ctx.notify(Sweep));
    }
}

impl Supervised for Housekeeper {
    fn restarting(&mut self, _: &mut Context<Self>) {
        note_restart::<Self>();
    }
}

impl SupervisedActor for Housekeeper {
    const NAME: &'static str = "housekeeper";
}
