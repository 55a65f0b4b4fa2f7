//! Actors: each long-lived moving part in its own folder (`<actor>/{mod.rs, handlers.rs}`),
//! shared messages in `messages.rs`, the supervision layer in `supervise.rs`.
//!
//! [`Actors::start`] starts them all, in order, once, on a dedicated arbiter (outside the
//! HttpServer factory) and hands out their `Addr`s. [`Actors::shutdown`] stops that arbiter, which
//! drops every actor and with it their store handles.

pub mod housekeeper;
pub mod messages;
pub mod supervise;

use std::time::Duration;

use actix::{Addr, Arbiter};

use crate::clock::SharedClock;
use crate::store::Store;

/// What actors need from the application.
pub struct Deps {
    pub store: Store,
    pub clock: SharedClock,
}

/// The running actors and the arbiter they live on.
pub struct Actors {
    arbiter: Arbiter,
    pub housekeeper: Addr<housekeeper::Housekeeper>,
}

impl Actors {
    pub fn start(deps: &Deps) -> Self {
        let arbiter = Arbiter::new();
        let handle = arbiter.handle();
        let (store, clock) = (deps.store.clone(), deps.clock.clone());
        let housekeeper = supervise::start(&handle, move |_| {
            housekeeper::Housekeeper::new(store, clock)
        });
        Self {
            arbiter,
            housekeeper,
        }
    }

    /// The handles the HTTP front uses.
    pub fn addrs(&self) -> ActorAddrs {
        ActorAddrs {
            housekeeper: self.housekeeper.clone(),
        }
    }

    /// Stops every actor; returns when their thread has ended (so their store handles are gone).
    pub async fn shutdown(self) {
        let Self {
            arbiter,
            housekeeper,
        } = self;
        drop(housekeeper);
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
}

impl ActorAddrs {
    /// Whether every actor answers a ping within `within`.
    pub async fn alive(&self, within: Duration) -> bool {
        matches!(
            tokio::time::timeout(within, self.housekeeper.send(messages::Ping)).await,
            Ok(Ok(Ok(())))
        )
    }
}
