//! ProviderActor: one per `[[providers]]` entry. It asks its voucher-provider server for the codes
//! customers requested, at most `concurrency` requests to the server at once (the rest wait in its
//! queue; past 16 × `concurrency` waiting, the API answers 503):
//!
//! - `POST {url}/codes {request_id, product, callback_url}`: 200 `{code}` fulfils the request at
//!   once; 202 means the provider will call back (`POST /api/v1/providers/{name}/callback`, handled
//!   by the HTTP layer) — meanwhile the actor polls `GET {url}/codes/{request_id}` every
//!   `poll_interval_s` (200 `{code}`; 202 or 404: not yet);
//! - an error or a timeout is retried with backoff; a 4xx refusal fails the request;
//! - `give_up_after_s` after the request was made, a request still without a code fails, and
//!   admins get a `code_request_failed` notification.
//!
//! Every settle goes through `CodeRequests::fulfil` / `fail`, which settle a request once: a
//! callback racing a poll, or a duplicate callback, changes nothing the second time. Its state is
//! the store's: when it starts (or restarts after a panic) it queues every pending request of its
//! provider again.

mod handlers;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix::{Actor, Addr, ArbiterHandle, AsyncContext, Context, Supervised};
use uuid::Uuid;

use super::supervise::{SupervisedActor, note_restart};
use crate::clock::SharedClock;
use crate::config::{ProviderSettings, Settings};
use crate::store::Store;

pub use handlers::Submit;

/// Requests waiting per unit of `concurrency` before the API answers 503.
pub const QUEUE_PER_SLOT: usize = 16;
/// The longest wait between retries after errors.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Tells whoever waits on a request (event streams) that it was settled.
#[derive(Clone)]
pub struct Settlements(tokio::sync::broadcast::Sender<Uuid>);

impl Settlements {
    pub fn new() -> Self {
        Self(tokio::sync::broadcast::channel(4096).0)
    }

    pub fn settled(&self, id: Uuid) {
        let _ = self.0.send(id);
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Uuid> {
        self.0.subscribe()
    }
}

impl Default for Settlements {
    fn default() -> Self {
        Self::new()
    }
}

/// A place in a provider's queue, held from the API's check until the request is handed to the
/// actor; dropping it gives the place back.
#[derive(Debug)]
pub struct Reservation {
    provider: String,
    busy: Option<Arc<AtomicUsize>>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(busy) = self.busy.take() {
            let _ = busy.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                Some(b.saturating_sub(1))
            });
        }
    }
}

/// A provider's actor, how many requests it has waiting or in flight, and how many it may.
type Entry = (Addr<ProviderActor>, Arc<AtomicUsize>, usize);

/// The provider actors by name.
#[derive(Clone)]
pub struct Providers {
    actors: Arc<HashMap<String, Entry>>,
    pub settlements: Settlements,
}

/// What a provider actor needs besides its settings.
pub struct ProviderDeps {
    pub store: Store,
    pub clock: SharedClock,
    pub outbox_wake: Arc<tokio::sync::Notify>,
    pub settlements: Settlements,
    pub callback_base: String,
    pub email_alerts: bool,
}

impl Providers {
    pub fn start(
        arbiter: &ArbiterHandle,
        settings: &Settings,
        deps: &ProviderDeps,
    ) -> anyhow::Result<Self> {
        let mut actors = HashMap::new();
        for p in &settings.providers {
            let busy = Arc::new(AtomicUsize::new(0));
            let actor = ProviderActor::new(p.clone(), deps, busy.clone())?;
            let capacity = p.concurrency as usize * (QUEUE_PER_SLOT + 1);
            let addr = super::supervise::start(arbiter, move |_| actor);
            actors.insert(p.name.clone(), (addr, busy, capacity));
        }
        Ok(Self {
            actors: Arc::new(actors),
            settlements: deps.settlements.clone(),
        })
    }

    pub fn knows(&self, name: &str) -> bool {
        self.actors.contains_key(name)
    }

    /// Takes a place in `name`'s queue for one more request, if it is not full. The place is
    /// given back when the [`Reservation`] is dropped, unless [`Providers::submit`] hands it to
    /// the actor (which then counts it itself): no early return can leak it.
    pub fn reserve(&self, name: &str) -> Option<Reservation> {
        let (_, busy, cap) = self.actors.get(name)?;
        busy.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
            (b < *cap).then_some(b + 1)
        })
        .ok()?;
        Some(Reservation {
            provider: name.to_owned(),
            busy: Some(busy.clone()),
        })
    }

    /// Hands a stored pending request to its provider's actor, with the place reserved for it;
    /// false when the actor cannot take it now (the place is given back; the request stays
    /// pending and is picked up at the actor's next start).
    pub fn submit(&self, mut place: Reservation, id: Uuid) -> bool {
        let Some((addr, _, _)) = self.actors.get(&place.provider) else {
            return false;
        };
        let sent = addr.try_send(Submit(id)).is_ok();
        if sent {
            // The actor counts it now.
            place.busy = None;
        }
        sent
    }

    pub fn addrs(&self) -> impl Iterator<Item = &Addr<ProviderActor>> {
        self.actors.values().map(|(a, _, _)| a)
    }
}

pub struct ProviderActor {
    settings: ProviderSettings,
    store: Store,
    clock: SharedClock,
    client: reqwest::Client,
    /// `…/api/v1/providers/{name}/callback`.
    callback_url: String,
    outbox_wake: Arc<tokio::sync::Notify>,
    settlements: Settlements,
    email_alerts: bool,
    /// Requests waiting for a free slot.
    queue: VecDeque<Uuid>,
    in_flight: usize,
    /// Requests handed to this actor and not yet out of its hands (queued, in flight, or in its
    /// mailbox): raised by [`Providers::reserve`] and by the actor's own timers, lowered when a
    /// call ends. Shared with [`Providers`] for the 503 decision.
    busy: Arc<AtomicUsize>,
    /// Failed calls in a row per request (for the backoff).
    errors: HashMap<Uuid, u32>,
}

impl ProviderActor {
    fn new(
        settings: ProviderSettings,
        deps: &ProviderDeps,
        busy: Arc<AtomicUsize>,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("voucherd/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        let callback_url = format!(
            "{}/api/v1/providers/{}/callback",
            deps.callback_base.trim_end_matches('/'),
            settings.name
        );
        Ok(Self {
            settings,
            store: deps.store.clone(),
            clock: deps.clock.clone(),
            client,
            callback_url,
            outbox_wake: deps.outbox_wake.clone(),
            settlements: deps.settlements.clone(),
            email_alerts: deps.email_alerts,
            queue: VecDeque::new(),
            in_flight: 0,
            busy,
            errors: HashMap::new(),
        })
    }

    /// One more request on its way in (a timer's or a restart's own submit).
    fn take_one(&self) {
        self.busy.fetch_add(1, Ordering::AcqRel);
    }

    /// One request out of this actor's hands.
    fn drop_one(&self) {
        let _ = self
            .busy
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                Some(b.saturating_sub(1))
            });
    }

    /// When to look at a request again after `n` failed calls in a row.
    fn backoff(n: u32) -> Duration {
        Duration::from_secs(1u64 << n.saturating_sub(1).min(6)).min(MAX_BACKOFF)
    }
}

impl Actor for ProviderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(self.settings.concurrency as usize * (QUEUE_PER_SLOT + 1) + 64);
        // Everything pending for this provider: after a start, or a restart after a panic.
        let name = self.settings.name.clone();
        let store = self.store.clone();
        let addr = ctx.address();
        let busy = self.busy.clone();
        actix::spawn(async move {
            let pending = store
                .run(move |s| {
                    let mut mine = Vec::new();
                    for id in s.code_requests().pending() {
                        if s.code_requests()
                            .get(id)?
                            .is_some_and(|r| r.provider == name)
                        {
                            mine.push(id);
                        }
                    }
                    Ok(mine)
                })
                .await;
            match pending {
                Ok(ids) => {
                    if !ids.is_empty() {
                        tracing::info!(requests = ids.len(), "pending code requests resumed");
                    }
                    // Once, at start, bounded by what is pending: not through the mailbox bound.
                    for id in ids {
                        busy.fetch_add(1, Ordering::AcqRel);
                        addr.do_send(Submit(id));
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading pending code requests failed"),
            }
        });
    }
}

impl Supervised for ProviderActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        note_restart::<Self>();
        // What was queued or in flight is queued again by `started` (from the store).
        self.queue.clear();
        self.in_flight = 0;
        self.busy.store(0, Ordering::Release);
    }
}

impl SupervisedActor for ProviderActor {
    const NAME: &'static str = "provider";
}
