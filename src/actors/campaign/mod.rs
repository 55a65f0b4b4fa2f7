//! CampaignActor: one per campaign in use, started lazily from the [`CampaignRegistry`] and
//! stopped after [`IDLE`] without messages. It holds the campaign's unclaimed codes and how many
//! each customer holds, so it answers sold-out, limit-reached and not-active from memory, and it
//! hands each code out once: a claim reserves a code here and joins the next group of claims; the
//! actor keeps one group with the store's writer at a time, as one command (one key per claim),
//! and answers each claim only once its group is durable. A failed write puts the code back. When
//! the pool is empty the actor marks the campaign sold out in the registry, so further claims are
//! answered without coming here.
//!
//! After a restart or a panic nothing is lost: the store is the truth, and a new actor starts from
//! its index (`Codes::claim_state`). Claims in flight per campaign are bounded
//! ([`MAX_IN_FLIGHT`]); past that the API answers 503 `overloaded`.

mod distribute;
mod handlers;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::{Actor, ActorFutureExt, Addr, ArbiterHandle, AsyncContext, Context, WrapFuture};
use dashmap::DashMap;
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::domain::campaign::Campaign;
use crate::store::Store;

pub use distribute::{BATCH, Distribute};
pub use handlers::{AddCodes, Claim, ClaimError, EndCampaign, PlaceOrder, UpdateCampaign};

/// An actor with no message for this long stops (its state is in the store).
pub const IDLE: Duration = Duration::from_secs(300);
/// Claims waiting for one campaign at once; more are refused (503) rather than queued.
pub const MAX_IN_FLIGHT: usize = 8192;

/// The running campaign actors.
pub struct CampaignRegistry {
    actors: DashMap<Uuid, Entry>,
    arbiter: ArbiterHandle,
    store: Store,
    clock: SharedClock,
}

#[derive(Clone)]
struct Entry {
    addr: Addr<CampaignActor>,
    in_flight: Arc<AtomicUsize>,
    /// Set by the actor when its pool is empty, cleared when codes are added: a claim on a
    /// sold-out campaign is answered without a trip to the actor.
    sold_out: Arc<AtomicBool>,
}

/// A slot among a campaign's claims in flight; freed when dropped.
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
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

    fn entry(&self, campaign: Uuid) -> Entry {
        let mut e = self
            .actors
            .entry(campaign)
            .or_insert_with(|| self.start(campaign));
        if !e.addr.connected() {
            *e = self.start(campaign);
        }
        e.clone()
    }

    /// The campaign's actor, started if none runs.
    pub fn get(&self, campaign: Uuid) -> Addr<CampaignActor> {
        self.entry(campaign).addr
    }

    /// Whether the campaign's actor last saw its pool empty (a claim may be answered `sold_out`
    /// at once; an order or a claim racing an addition of codes still goes to the actor).
    pub fn sold_out(&self, campaign: Uuid) -> bool {
        self.actors
            .get(&campaign)
            .is_some_and(|e| e.sold_out.load(Ordering::Acquire) && e.addr.connected())
    }

    /// The campaign's actor and a slot for one claim, or `None` when [`MAX_IN_FLIGHT`] claims
    /// are already waiting.
    pub fn for_claim(&self, campaign: Uuid) -> Option<(Addr<CampaignActor>, Slot)> {
        let e = self.entry(campaign);
        if e.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            e.in_flight.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("voucherd_campaign_mailbox_rejections_total").increment(1);
            return None;
        }
        Some((e.addr, Slot(e.in_flight)))
    }

    fn start(&self, campaign: Uuid) -> Entry {
        let sold_out = Arc::new(AtomicBool::new(false));
        let actor = CampaignActor {
            sold_out: sold_out.clone(),
            id: campaign,
            store: self.store.clone(),
            clock: self.clock.clone(),
            state: None,
            last_used: Instant::now(),
            waiting: Vec::new(),
            writing: false,
        };
        metrics::counter!("voucherd_campaign_actors_started_total").increment(1);
        Entry {
            addr: CampaignActor::start_in_arbiter(&self.arbiter, move |_| actor),
            in_flight: Arc::new(AtomicUsize::new(0)),
            sold_out,
        }
    }
}

/// What the actor knows once loaded.
struct Loaded {
    campaign: Campaign,
    /// Unclaimed codes, oldest first.
    pool: VecDeque<Arc<str>>,
    /// Codes each customer holds (claimed or reserved).
    held: HashMap<Uuid, u32>,
}

pub struct CampaignActor {
    id: Uuid,
    store: Store,
    clock: SharedClock,
    /// `None` until loaded from the store (or when the campaign does not exist).
    state: Option<Loaded>,
    last_used: Instant,
    /// Claims reserved while the previous group was being written: the next group.
    waiting: Vec<handlers::Waiting>,
    /// Whether a group of claims is with the writer now.
    writing: bool,
    /// Shared with the registry: the pool is empty.
    sold_out: Arc<AtomicBool>,
}

impl Actor for CampaignActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Claims are bounded by the registry's slots; the mailbox only needs room for them.
        ctx.set_mailbox_capacity(MAX_IN_FLIGHT + 64);
        ctx.run_interval(IDLE / 4, |act, ctx| {
            if act.last_used.elapsed() >= IDLE {
                actix::ActorContext::stop(ctx);
            }
        });
        let (store, id) = (self.store.clone(), self.id);
        // Load before the first message is handled.
        ctx.wait(
            async move {
                store
                    .run(move |s| {
                        let campaign = s.campaigns().get(id)?;
                        Ok(campaign.map(|c| (c, s.codes().claim_state(id))))
                    })
                    .await
            }
            .into_actor(self)
            .map(|loaded, act, ctx| match loaded {
                Ok(Some((campaign, claims))) => {
                    act.state = Some(Loaded {
                        campaign,
                        pool: claims.available.into(),
                        held: claims.held,
                    });
                }
                Ok(None) => act.state = None,
                Err(e) => {
                    tracing::error!(campaign = %act.id, error = %e, "loading a campaign failed");
                    actix::ActorContext::stop(ctx);
                }
            }),
        );
    }
}
