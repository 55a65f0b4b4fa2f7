use actix::{ActorFutureExt, AsyncContext, Context, Handler, WrapFuture};

use super::Housekeeper;
use crate::actors::messages::{Ping, Sweep, Wake};
use crate::actors::supervise::{ActorPanic, guard};

impl Handler<Ping> for Housekeeper {
    type Result = Result<(), ActorPanic>;

    fn handle(&mut self, _: Ping, ctx: &mut Context<Self>) -> Self::Result {
        guard(self, ctx, |_, _| ())
    }
}

/// The clock moved (a test's manual clock): sweep now.
impl Handler<Wake> for Housekeeper {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        ctx.notify(Sweep);
    }
}

impl Handler<Sweep> for Housekeeper {
    type Result = Result<(), ActorPanic>;

    fn handle(&mut self, _: Sweep, ctx: &mut Context<Self>) -> Self::Result {
        guard(self, ctx, |act, ctx| {
            crate::telemetry::metrics().run_upkeep();
            if act.sweeping {
                return;
            }
            act.sweeping = true;
            let store = act.store.clone();
            let now = act.clock.now();
            let retention = act.retention;
            let work = async move {
                // Unpaid orders past their deadline give their codes back.
                match expire_unpaid(&store, now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(expired = n, "unpaid orders expired"),
                    Err(e) => tracing::warn!(error = %e, "expiring unpaid orders failed"),
                }
                // Sign-ups whose link expired end, with what was mailed for them.
                match purge_signups(&store, now).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(ended = n, "expired sign-ups ended"),
                    Err(e) => tracing::warn!(error = %e, "ending expired sign-ups failed"),
                }
                let tokens = store.write(move |s| s.tokens().purge_expired(now)).await;
                if let Err(e) = store
                    .write(move |s| s.idempotency().purge_expired(now))
                    .await
                {
                    tracing::warn!(error = %e, "purging idempotency keys failed");
                }
                let vouchers = sweep_vouchers(&store, now, retention).await;
                (tokens, vouchers)
            };
            ctx.spawn(work.into_actor(act).map(|(tokens, vouchers), act, _| {
                act.sweeping = false;
                match tokens {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "expired tokens purged"),
                    Err(e) => tracing::warn!(error = %e, "token purge failed"),
                }
                match vouchers {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(moved = n, "voucher phases swept"),
                    Err(e) => tracing::warn!(error = %e, "voucher sweep failed"),
                }
            }));
        })
    }
}

/// Expires the unpaid orders whose deadline passed, a batch at a time (their codes go back to
/// their campaigns): how many. Each expires once, also across a restart (a paid or expired
/// order is no longer due).
async fn expire_unpaid(
    store: &crate::store::Store,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, crate::store::StoreError> {
    const BATCH: usize = 256;
    let mut total = 0;
    loop {
        let expired = store
            .write(move |s| s.orders().expire_due(now, BATCH))
            .await?;
        total += expired.len();
        metrics::counter!("voucherd_orders_total", "result" => "expired")
            .increment(expired.len() as u64);
        if expired.len() < BATCH {
            return Ok(total);
        }
    }
}

/// Ends the sign-ups whose link expired, a batch at a time, and erases their messages (and the
/// file transport's copies): how many. 1 key per sign-up + 2 per message.
async fn purge_signups(
    store: &crate::store::Store,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, crate::store::StoreError> {
    const BATCH: usize = 256;
    let mut total = 0;
    loop {
        let (ended, messages) = store
            .write(move |s| {
                let ended = s.signups().purge_expired(now, BATCH)?;
                let mut messages = Vec::new();
                for id in &ended {
                    messages.extend(s.messages().erase_owner(*id)?);
                }
                Ok((ended.len(), messages))
            })
            .await?;
        total += ended;
        let (path, names) = (
            store.path().to_owned(),
            messages
                .iter()
                .map(uuid::Uuid::to_string)
                .collect::<Vec<_>>(),
        );
        if !names.is_empty() {
            let _ = tokio::task::spawn_blocking(move || {
                crate::delivery::email::erase_files(&path, &names)
            })
            .await;
        }
        if ended < BATCH {
            return Ok(total);
        }
    }
}

/// Sweeps due vouchers in batches until none is due.
async fn sweep_vouchers(
    store: &crate::store::Store,
    now: chrono::DateTime<chrono::Utc>,
    retention: chrono::Duration,
) -> Result<usize, crate::store::StoreError> {
    const BATCH: usize = 1000;
    let mut total = 0;
    loop {
        let n = store
            .write(move |s| s.vouchers().sweep_due(now, retention, BATCH))
            .await?;
        total += n;
        if n < BATCH {
            return Ok(total);
        }
    }
}
