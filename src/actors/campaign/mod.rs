//! CampaignActor: one per campaign in use, started lazily from the [`CampaignRegistry`] and
//! stopped after [`IDLE`] without messages. It decides the campaign's own changes — edits, the
//! end, codes added, distributions run batch by batch — one at a time, each written before the
//! next is handled.
//!
//! Codes are not handed out here: a claim, an order or a distribution batch is decided where the
//! pool lives, on the store's one writer ([`crate::store::codes::Codes::take`]), under the
//! campaign's rule ([`Campaign::may_hand_out`]) and the campaign as last written — by this actor,
//! on that same thread, so a claim applied after an end sees it ended. Deciding and writing in
//! one step there costs one thread hop less and no reservation to give back (measured with
//! `cargo bench --bench flash_sale`, see docs/benchmarks.md).
//!
//! After a restart or a panic nothing is lost: the store is the truth, and a new actor starts
//! from it.

mod distribute;
mod handlers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorFutureExt, Addr, ArbiterHandle, AsyncContext, Context, WrapFuture};
use dashmap::DashMap;
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::domain::campaign::Campaign;
use crate::store::Store;

pub use distribute::{BATCH, Distribute};
pub use handlers::{AddCodes, CampaignError, EndCampaign, PauseCampaign, UpdateCampaign};

/// An actor with no message for this long stops (its state is in the store).
pub const IDLE: Duration = Duration::from_secs(300);

/// The running campaign actors.
pub struct CampaignRegistry {
    actors: DashMap<Uuid, Addr<CampaignActor>>,
    arbiter: ArbiterHandle,
    store: Store,
    clock: SharedClock,
}

impl CampaignRegistry {
    pub fn new(arbiter: ArbiterHandle, store: Store, clock: SharedClock) -> Arc<Self> {
        Arc::new(Self {
            actors: DashMap::new(),
            arbiter,
            store,
            clock,
        })
    }

    /// The campaign's actor, started if none runs.
    pub fn get(&self, campaign: Uuid) -> Addr<CampaignActor> {
        let mut e = self
            .actors
            .entry(campaign)
            .or_insert_with(|| self.start(campaign));
        if !e.connected() {
            *e = self.start(campaign);
        }
        e.clone()
    }

    fn start(&self, campaign: Uuid) -> Addr<CampaignActor> {
        let actor = CampaignActor {
            id: campaign,
            store: self.store.clone(),
            clock: self.clock.clone(),
            state: None,
            last_used: Instant::now(),
        };
        metrics::counter!("voucherd_campaign_actors_started_total").increment(1);
        CampaignActor::start_in_arbiter(&self.arbiter, move |_| actor)
    }
}

pub struct CampaignActor {
    id: Uuid,
    store: Store,
    clock: SharedClock,
    /// `None` until loaded from the store (or when the campaign does not exist).
    state: Option<Campaign>,
    last_used: Instant,
}

impl Actor for CampaignActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(IDLE / 4, |act, ctx| {
            if act.last_used.elapsed() >= IDLE {
                actix::ActorContext::stop(ctx);
            }
        });
        let (store, id) = (self.store.clone(), self.id);
        // Load before the first message is handled.
        ctx.wait(
            async move { store.run(move |s| s.campaigns().get(id)).await }
                .into_actor(self)
                .map(|loaded, act, ctx| match loaded {
                    Ok(campaign) => act.state = campaign,
                    Err(e) => {
                        tracing::error!(campaign = %act.id, error = %e, "loading a campaign failed");
                        actix::ActorContext::stop(ctx);
                    }
                }),
        );
    }
}
