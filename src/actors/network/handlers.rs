use actix::{ActorFutureExt, AsyncContext, Context, Handler, ResponseFuture, WrapFuture};
use tokio::sync::oneshot;

use super::NetworkActor;
use crate::actors::messages::{Ping, PullNow, PullOutcome};
use crate::actors::supervise::{ActorPanic, guard};
use crate::domain::network::{NetworkRecord, NetworkState};
use crate::domain::notification::{Notification, NotificationKind};

impl Handler<Ping> for NetworkActor {
    type Result = Result<(), ActorPanic>;

    fn handle(&mut self, _: Ping, ctx: &mut Context<Self>) -> Self::Result {
        guard(self, ctx, |_, _| ())
    }
}

impl Handler<PullNow> for NetworkActor {
    type Result = ResponseFuture<Result<PullOutcome, ActorPanic>>;

    fn handle(&mut self, _: PullNow, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        let joined = guard(self, ctx, |act, ctx| {
            act.waiters.push(tx);
            act.begin_pull(ctx);
        });
        Box::pin(async move {
            joined?;
            rx.await.map_err(|_| ActorPanic)
        })
    }
}

impl NetworkActor {
    /// Creates or refreshes the stored record (kind, disabled), then arms the timer from it.
    pub(super) fn load_state(&mut self, ctx: &mut Context<Self>) {
        let (name, kind, enabled) = (
            self.settings.name.clone(),
            self.settings.kind,
            self.settings.enabled,
        );
        let store = self.store.clone();
        let work = async move {
            store
                .write(move |s| {
                    let mut record = s
                        .networks()
                        .get(&name)?
                        .unwrap_or_else(|| NetworkRecord::new(&name, kind, enabled));
                    record.kind = kind;
                    if !enabled {
                        record.state = NetworkState::Disabled;
                    } else if record.state == NetworkState::Disabled {
                        record.state = NetworkState::Ok;
                    }
                    s.networks().put(&record)?;
                    Ok(record)
                })
                .await
        };
        ctx.spawn(work.into_actor(self).map(|result, act, ctx| match result {
            Ok(record) => {
                if record.retry_at.is_none() && act.missed_a_run(record.last_pull_at) {
                    act.begin_pull(ctx);
                } else {
                    act.arm(ctx, record.retry_at);
                }
            }
            Err(e) => {
                tracing::error!(network = act.name(), error = %e, "loading network state failed");
                act.arm(ctx, None);
            }
        }));
    }

    /// Starts a pull unless one is running (callers waiting in `waiters` get its outcome).
    pub(super) fn begin_pull(&mut self, ctx: &mut Context<Self>) {
        if self.pulling {
            return;
        }
        self.pulling = true;
        if let Some(t) = self.timer.take() {
            ctx.cancel_future(t);
        }
        let puller = self.puller.clone();
        let settings = self.settings.clone();
        let backoff = self.backoff;
        let store = self.store.clone();
        let clock = self.clock.clone();
        let email_alerts = self.email_alerts;
        let work = async move {
            let name = settings.name.clone();
            tracing::info!(network = %name, "pull started");
            let result = puller
                .pull(&settings)
                .await
                .map_err(|f| (f.summary, f.error));
            let now = clock.now();
            let jitter = 0.5 + rand::random::<f64>() * 0.5;
            let (kind, enabled) = (settings.kind, settings.enabled);
            let recorded = result.clone();
            let stored = store
                .write(move |s| {
                    let mut record = s
                        .networks()
                        .get(&name)?
                        .unwrap_or_else(|| NetworkRecord::new(&name, kind, enabled));
                    match recorded {
                        Ok(summary) => record.succeeded(summary, now),
                        Err((summary, error)) => {
                            if record.failed(summary, error.clone(), now, &backoff, jitter) {
                                let message = format!(
                                    "network {name} failed {} pulls in a row; last error: {error}",
                                    record.failures
                                );
                                s.notifications().raise(
                                    &Notification::new(
                                        NotificationKind::NetworkFailing,
                                        &name,
                                        message,
                                        now,
                                    ),
                                    email_alerts,
                                )?;
                            }
                        }
                    }
                    s.networks().put(&record)?;
                    Ok(record)
                })
                .await;
            (result, stored)
        };
        ctx.spawn(
            work.into_actor(self)
                .map(|(result, stored), act, ctx| {
                    act.pulling = false;
                    let name = act.name().to_owned();
                    match &result {
                        Ok(s) => tracing::info!(
                            network = %name, fetched = s.fetched, inserted = s.inserted,
                            updated = s.updated, unchanged = s.unchanged, rejected = s.rejected,
                            "pull done"
                        ),
                        Err((_, e)) => tracing::warn!(network = %name, error = %e, "pull failed"),
                    }
                    metrics::counter!(
                        "voucherd_network_pulls_total",
                        "network" => name.clone(),
                        "result" => if result.is_ok() { "ok" } else { "failed" }
                    )
                    .increment(1);
                    let (summary, error) = match result {
                        Ok(s) => (s, None),
                        Err((s, e)) => (s, Some(e)),
                    };
                    let (state, retry_at) = match &stored {
                        Ok(record) => (record.state, record.retry_at),
                        Err(e) => {
                            tracing::error!(network = %name, error = %e, "storing the pull's outcome failed");
                            let state = if error.is_some() {
                                NetworkState::Degraded
                            } else {
                                NetworkState::Ok
                            };
                            (state, None)
                        }
                    };
                    let outcome = PullOutcome {
                        summary,
                        state,
                        error,
                    };
                    for waiter in act.waiters.drain(..) {
                        let _ = waiter.send(outcome.clone());
                    }
                    act.arm(ctx, retry_at);
                }),
        );
    }
}
