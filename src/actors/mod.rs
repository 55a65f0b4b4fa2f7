//! Actors: each long-lived moving part in its own folder (`<actor>/{mod.rs, handlers.rs}`),
//! shared messages in `messages.rs`, the supervision layer in `supervise.rs`.
//!
//! [`Actors::start`] starts them all, in order, once, on a dedicated arbiter (outside the
//! HttpServer factory) and hands out their `Addr`s. [`Actors::shutdown`] stops that arbiter, which
//! drops every actor and with it their store handles.

pub mod campaign;
pub mod digest;
pub mod dispatcher;
pub mod housekeeper;
pub mod messages;
pub mod network;
pub mod notifier;
pub mod provider;
pub mod subscriptions;
pub mod supervise;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, Arbiter};

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::store::Store;

/// What actors need from the application.
pub struct Deps {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub clock: SharedClock,
    pub signer: crate::security::LinkSigner,
    pub templates: Arc<crate::delivery::templates::Templates>,
    pub vapid: Arc<crate::delivery::push::Vapid>,
}

/// The running actors and the arbiter they live on.
pub struct Actors {
    arbiter: Arbiter,
    addrs: ActorAddrs,
}

impl Actors {
    /// Starts the housekeeper, one network actor per configured network, the delivery
    /// dispatcher, the notifier, one provider actor per `[[providers]]` entry, the subscription
    /// and campaign registries and one digest shard per `[digest] shards`.
    pub fn start(deps: &Deps) -> anyhow::Result<Self> {
        let arbiter = Arbiter::new();
        let handle = arbiter.handle();
        let (store, clock) = (deps.store.clone(), deps.clock.clone());
        let catalogue = deps.settings.catalogue.clone();
        let housekeeper = supervise::start(&handle, move |_| {
            housekeeper::Housekeeper::new(store, clock, &catalogue)
        });
        let mut networks = HashMap::new();
        for n in &deps.settings.networks {
            // Built here, so a bad entry fails the start; rebuilt by the Supervisor on restart.
            let actor = network::NetworkActor::new(
                n.clone(),
                &deps.settings.catalogue,
                deps.store.clone(),
                deps.clock.clone(),
                !deps.settings.notify.admin_emails.is_empty(),
            )
            .map_err(|e| anyhow::anyhow!("network {}: {e}", n.name))?;
            let addr = supervise::start(&handle, move |_| actor);
            networks.insert(n.name.clone(), addr);
        }
        let outbox_wake = Arc::new(tokio::sync::Notify::new());
        let outbound = Arc::new(dispatcher::Outbound::new(
            &deps.settings,
            deps.store.clone(),
            deps.clock.clone(),
            deps.templates.clone(),
            deps.signer.clone(),
            deps.vapid.clone(),
        )?);
        let wake = outbox_wake.clone();
        let sends = dispatcher::SendRuntime::new()?;
        let dispatcher = supervise::start(&handle, move |_| {
            dispatcher::DeliveryDispatcher::new(outbound, wake, sends)
        });
        let (store, clock, wake) = (deps.store.clone(), deps.clock.clone(), outbox_wake.clone());
        let email_alerts = !deps.settings.notify.admin_emails.is_empty();
        let notifier = supervise::start(&handle, move |_| {
            notifier::Notifier::new(store, clock, email_alerts, wake)
        });
        let providers = provider::Providers::start(
            &handle,
            &deps.settings,
            &provider::ProviderDeps {
                store: deps.store.clone(),
                clock: deps.clock.clone(),
                outbox_wake: outbox_wake.clone(),
                settlements: provider::Settlements::new(),
                callback_base: deps.settings.http.public_url.to_string(),
                email_alerts,
            },
        )?;
        let registry = subscriptions::Registry::new(
            handle.clone(),
            deps.store.clone(),
            deps.clock.clone(),
            deps.settings.subscriptions.max_per_user as usize,
        );
        let campaigns =
            campaign::CampaignRegistry::new(handle.clone(), deps.store.clone(), deps.clock.clone());
        campaigns.resume_distributions(outbox_wake.clone());
        let shards = deps.settings.digest.shards;
        let composing = digest::Composing::of(&deps.settings);
        let shard_addrs = (0..shards)
            .map(|i| {
                let (store, clock, wake) =
                    (deps.store.clone(), deps.clock.clone(), outbox_wake.clone());
                supervise::start(&handle, move |_| {
                    digest::DigestShard::new(i, shards, store, clock, composing, wake)
                })
            })
            .collect();
        Ok(Self {
            arbiter,
            addrs: ActorAddrs {
                housekeeper,
                networks: Arc::new(networks),
                dispatcher,
                notifier,
                providers,
                outbox_wake,
                registry,
                campaigns,
                shards: Arc::new(shard_addrs),
            },
        })
    }

    /// The handles the HTTP front uses.
    pub fn addrs(&self) -> ActorAddrs {
        self.addrs.clone()
    }

    /// Stops every actor; returns when their thread has ended (so their store handles are gone).
    pub async fn shutdown(self) {
        let Self { arbiter, addrs } = self;
        drop(addrs);
        arbiter.stop();
        let joined = tokio::task::spawn_blocking(move || arbiter.join());
        if tokio::time::timeout(Duration::from_secs(10), joined)
            .await
            .is_err()
        {
            tracing::warn!("actors did not stop within 10 s");
        }
    }
}

/// Cloneable `Addr`s for request handlers.
#[derive(Clone)]
pub struct ActorAddrs {
    pub housekeeper: Addr<housekeeper::Housekeeper>,
    /// By network name.
    pub networks: Arc<HashMap<String, Addr<network::NetworkActor>>>,
    pub dispatcher: Addr<dispatcher::DeliveryDispatcher>,
    /// Watches campaigns for admin alerts.
    pub notifier: Addr<notifier::Notifier>,
    /// The ProviderActors (async code requests) and who waits on their requests.
    pub providers: provider::Providers,
    /// Wakes the dispatcher (new outbox entries).
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// The SubscriptionManagers.
    pub registry: Arc<subscriptions::Registry>,
    /// The CampaignActors.
    pub campaigns: Arc<campaign::CampaignRegistry>,
    /// DigestShards by index.
    pub shards: Arc<Vec<Addr<digest::DigestShard>>>,
}

impl ActorAddrs {
    /// Whether every actor answers a ping within `within`.
    pub async fn alive(&self, within: Duration) -> bool {
        let answered = |r: Result<Result<Result<(), _>, _>, _>| matches!(r, Ok(Ok(Ok(()))));
        if !answered(tokio::time::timeout(within, self.housekeeper.send(messages::Ping)).await) {
            return false;
        }
        for addr in self.networks.values() {
            if !answered(tokio::time::timeout(within, addr.send(messages::Ping)).await) {
                return false;
            }
        }
        for addr in self.shards.iter() {
            if !answered(tokio::time::timeout(within, addr.send(messages::Ping)).await) {
                return false;
            }
        }
        if !answered(tokio::time::timeout(within, self.notifier.send(messages::Ping)).await) {
            return false;
        }
        for addr in self.providers.addrs() {
            if !answered(tokio::time::timeout(within, addr.send(messages::Ping)).await) {
                return false;
            }
        }
        answered(tokio::time::timeout(within, self.dispatcher.send(messages::Ping)).await)
    }

    /// Tells the shard owning `tz` that a schedule there changed (it re-reads its earliest entry).
    pub fn schedule_changed(&self, tz: chrono_tz::Tz) {
        let i = digest::shard_of(tz, self.shards.len() as u16);
        if let Some(shard) = self.shards.get(usize::from(i)) {
            shard.do_send(messages::Wake);
        }
    }

    /// Every shard, the notifier, the housekeeper and the dispatcher look at their schedules
    /// now (after the clock moved).
    pub fn wake_all(&self) {
        for shard in self.shards.iter() {
            shard.do_send(messages::Wake);
        }
        self.notifier.do_send(messages::Wake);
        self.housekeeper.do_send(messages::Wake);
        self.outbox_wake.notify_one();
    }
}
