//! SubscriptionManager: one actor per active user, started lazily from the [`Registry`] and
//! stopped after [`IDLE`] without messages. It owns changes to the user's subscriptions (made
//! only through it, so concurrent changes to one user are serialised); the list itself is the
//! store's in-memory index, which digests read directly (building digests starts no manager).
//!
//! Not supervised: a manager that stopped or died is simply started again, from the store, by the
//! next [`Registry::get`] (a dead `Addr` in the registry is replaced).

mod handlers;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use actix::{Actor, Addr, ArbiterHandle, AsyncContext, Context};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::store::Store;

/// A manager with no message for this long stops (its state is in the store).
pub const IDLE: Duration = Duration::from_secs(300);

/// The running managers by user id, each with the generation it was started as.
pub struct Registry {
    managers: DashMap<Uuid, (u64, Addr<SubscriptionManager>)>,
    generation: AtomicU64,
    arbiter: ArbiterHandle,
    store: Store,
    clock: SharedClock,
    max_per_user: usize,
    me: Weak<Registry>,
}

impl Registry {
    pub fn new(
        arbiter: ArbiterHandle,
        store: Store,
        clock: SharedClock,
        max_per_user: usize,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            managers: DashMap::new(),
            generation: AtomicU64::new(0),
            arbiter,
            store,
            clock,
            max_per_user,
            me: me.clone(),
        })
    }

    /// The user's manager, started if none runs. Created through `entry()`, so two callers
    /// racing for the same user get the same actor.
    pub fn get(&self, user: Uuid) -> Addr<SubscriptionManager> {
        match self.managers.entry(user) {
            Entry::Occupied(mut e) => {
                if e.get().1.connected() {
                    e.get().1.clone()
                } else {
                    let started = self.start(user);
                    let addr = started.1.clone();
                    e.insert(started);
                    addr
                }
            }
            Entry::Vacant(e) => e.insert(self.start(user)).1.clone(),
        }
    }

    /// Stops and forgets a user's manager (after erasure or an unsubscribe outside it).
    pub fn forget(&self, user: Uuid) {
        if let Some((_, (_, addr))) = self.managers.remove(&user) {
            addr.do_send(handlers::Stop);
        }
    }

    /// Managers running now.
    pub fn len(&self) -> usize {
        self.managers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.managers.is_empty()
    }

    fn start(&self, user: Uuid) -> (u64, Addr<SubscriptionManager>) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let manager = SubscriptionManager {
            user,
            generation,
            store: self.store.clone(),
            clock: self.clock.clone(),
            max_per_user: self.max_per_user,
            registry: self.me.clone(),
            last_used: Instant::now(),
        };
        metrics::counter!("voucherd_subscription_managers_started_total").increment(1);
        (
            generation,
            SubscriptionManager::start_in_arbiter(&self.arbiter, move |_| manager),
        )
    }

    /// Called by a stopping manager: removes its entry unless a newer one replaced it.
    fn stopped(&self, user: Uuid, generation: u64) {
        self.managers.remove_if(&user, |_, (g, _)| *g == generation);
    }
}

pub struct SubscriptionManager {
    user: Uuid,
    generation: u64,
    store: Store,
    clock: SharedClock,
    /// `[subscriptions] max_per_user`.
    max_per_user: usize,
    registry: Weak<Registry>,
    last_used: Instant,
}

impl Actor for SubscriptionManager {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(64);
        ctx.run_interval(IDLE / 4, |act, ctx| {
            if act.last_used.elapsed() >= IDLE {
                actix::ActorContext::stop(ctx);
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(registry) = self.registry.upgrade() {
            registry.stopped(self.user, self.generation);
        }
    }
}

pub use handlers::{EraseUser, ListSubscriptions, ManagerError, Subscribe, Unsubscribe};
