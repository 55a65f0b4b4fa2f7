//! Actors: each long-lived moving part in its own folder (`<actor>/{mod.rs, handlers.rs}`),
//! shared messages in `messages.rs`, the supervision layer in `supervise.rs`.
//!
//! [`Actors::start`] starts them all, in order, once, on a dedicated arbiter (outside the
//! HttpServer factory) and hands out their `Addr`s. [`Actors::shutdown`] stops that arbiter, which
//! drops every actor and with it their store handles.

pub mod housekeeper;
pub mod messages;
pub mod network;
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
}

/// The running actors and the arbiter they live on.
pub struct Actors {
    arbiter: Arbiter,
    addrs: ActorAddrs,
}

impl Actors {
    /// Starts the housekeeper, then one network actor per configured network.
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
            )
            .map_err(|e| anyhow::anyhow!("network {}: {e}", n.name))?;
            let addr = supervise::start(&handle, move |_| actor);
            networks.insert(n.name.clone(), addr);
        }
        Ok(Self {
            arbiter,
            addrs: ActorAddrs {
                housekeeper,
                networks: Arc::new(networks),
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
        true
    }
}
