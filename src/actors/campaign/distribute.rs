//! Running a distribution: its recipients in batches of [`BATCH`], each batch sent by the
//! campaign's actor to the store's writer, where one code per recipient is taken under the
//! campaign's rule (the pool, the limit, the window) and written in the same command: the
//! batch's claims (one key each), one message per code in the outbox (two keys each: record and
//! open marker) and the progress (one key). So a batch of n costs 3n + 1 keys and one flush; a
//! restart resumes after the last batch written.
//!
//! A crash between the writer's apply and its flush loses the whole tail it had not flushed
//! (sled recovers a prefix of its log): the batch is then redone from the stored progress.

use std::sync::Arc;
use std::time::Duration;

use actix::{ActorFutureExt, Handler, Message, ResponseActFuture, WrapFuture};

use super::handlers::CampaignError;
use super::{CampaignActor, CampaignRegistry};
use crate::domain::delivery::{MessagePayload, MessageRecord};
use crate::domain::distribution::{Distribution, Progress};
use crate::store::{Store, StoreError};

/// Recipients one batch handles: small enough that claims from the API interleave with a large
/// distribution, large enough to share one flush among many.
pub const BATCH: usize = 256;

/// Hand the next batch of `distribution`'s recipients (from `progress.done`) one code each;
/// answered with the progress as stored.
#[derive(Debug, Message)]
#[rtype(result = "Result<Progress, CampaignError>")]
pub struct Distribute {
    pub distribution: Arc<Distribution>,
    pub progress: Progress,
}

impl Handler<Distribute> for CampaignActor {
    type Result = ResponseActFuture<Self, Result<Progress, CampaignError>>;

    fn handle(&mut self, msg: Distribute, _: &mut Self::Context) -> Self::Result {
        self.touch();
        if self.state.is_none() {
            return Box::pin(actix::fut::ready(Err(CampaignError::NotFound)));
        }
        let d = msg.distribution;
        let mut progress = msg.progress;
        let start = (progress.done as usize).min(d.recipients.len());
        let end = (start + BATCH).min(d.recipients.len());
        progress.done = end as u32;
        let (store, now) = (self.store.clone(), self.clock.now());
        if end == d.recipients.len() {
            progress.finished_at = Some(now);
        }
        let work = async move {
            store
                .write(move |s| write_batch(s, &d, start..end, progress, now))
                .await
        };
        Box::pin(work.into_actor(self).map(|written, _, _| match written {
            Err(StoreError::NotFound) => Err(CampaignError::NotFound),
            other => Ok(other?),
        }))
    }
}

/// One batch, in one writer command (one transaction): the claims, a message per code claimed,
/// the progress. Returns the progress stored. Writer only.
fn write_batch(
    s: &Store,
    d: &Distribution,
    batch: std::ops::Range<usize>,
    progress: Progress,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Progress, StoreError> {
    s.distributions()
        .hand_out(d, &d.recipients[batch], progress, now, |code, customer| {
            MessageRecord::new(
                d.channel,
                MessagePayload::Code {
                    user_id: customer,
                    campaign_id: d.campaign_id,
                    code: code.to_owned(),
                    distribution_id: d.id,
                },
                d.webhook.clone(),
                now,
            )
        })
}

impl CampaignRegistry {
    /// Runs `distribution` from `progress` to its end in the background (on the actors'
    /// arbiter), batch by batch, waking the dispatcher after each.
    pub fn distribute(
        self: &Arc<Self>,
        distribution: Distribution,
        progress: Progress,
        outbox_wake: Arc<tokio::sync::Notify>,
    ) {
        let registry = self.clone();
        let d = Arc::new(distribution);
        self.arbiter.spawn(async move {
            let mut progress = progress;
            let mut retries = 0u32;
            while !progress.finished() {
                let addr = registry.get(d.campaign_id);
                let sent = addr
                    .send(Distribute {
                        distribution: d.clone(),
                        progress: progress.clone(),
                    })
                    .await;
                match sent {
                    Ok(Ok(p)) => {
                        progress = p;
                        retries = 0;
                        outbox_wake.notify_one();
                    }
                    Ok(Err(CampaignError::NotFound)) => {
                        finish_unserved(&registry, &d, progress).await;
                        return;
                    }
                    Ok(Err(CampaignError::Store(StoreError::Closed))) => return,
                    Ok(Err(e)) => {
                        retries += 1;
                        tracing::warn!(distribution = %d.id, error = %e, retries, "distribution batch failed; retrying");
                        tokio::time::sleep(Duration::from_millis(200) * retries.min(25)).await;
                    }
                    // The actor stopped (idle, or the arbiter is going): a new one is started.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            tracing::info!(distribution = %d.id, assigned = progress.assigned, "distribution finished");
        });
    }

    /// At start: distributions a previous run left unfinished go on.
    pub fn resume_distributions(self: &Arc<Self>, outbox_wake: Arc<tokio::sync::Notify>) {
        let registry = self.clone();
        self.arbiter.spawn(async move {
            let running = registry
                .store
                .run(|s| {
                    let mut found = Vec::new();
                    for id in s.distributions().running()? {
                        found.extend(s.distributions().get(id)?);
                    }
                    Ok(found)
                })
                .await;
            match running {
                Ok(running) => {
                    for (d, p) in running {
                        tracing::info!(distribution = %d.id, done = p.done, "distribution resumed");
                        registry.distribute(d, p, outbox_wake.clone());
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading unfinished distributions failed"),
            }
        });
    }
}

/// The campaign is gone: the rest of the recipients are skipped and the distribution finished.
async fn finish_unserved(registry: &CampaignRegistry, d: &Distribution, mut p: Progress) {
    let total = d.recipients.len() as u32;
    p.skipped_other += total.saturating_sub(p.done);
    p.done = total;
    p.finished_at = Some(registry.clock.now());
    let (store, id) = (registry.store.clone(), d.id);
    if let Err(e) = store
        .write(move |s| s.distributions().advance(id, &p))
        .await
    {
        tracing::error!(distribution = %id, error = %e, "finishing a distribution failed");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashSet;

    use uuid::Uuid;

    use super::*;
    use crate::domain::delivery::Channel;
    use crate::domain::distribution::Audience;
    use crate::store::codes::Atomic;
    use crate::store::test_support;

    #[actix_web::test]
    async fn an_unfinished_distribution_resumes_from_its_stored_progress() {
        let dir = tempfile::tempdir().unwrap();
        let store = test_support::store(dir.path());
        let campaign = test_support::campaign(600, 1);
        let users: Vec<_> = (0..600)
            .map(|i| test_support::user(&format!("r{i}@example.org")))
            .collect();
        let recipients: Vec<Uuid> = users.iter().map(|u| u.id).collect();
        let codes: Vec<String> = (0..600).map(|i| format!("RESUME{i:04}")).collect();
        let (c, now) = (campaign.clone(), chrono::Utc::now());
        store
            .write(move |s| {
                for u in &users {
                    s.users().create(u)?;
                }
                s.campaigns().put(&c)?;
                s.codes()
                    .insert_new(c.id, &codes, None, c.pool_size, now, Atomic::Whole, None)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .await
            .unwrap();
        let d = Distribution {
            v: Distribution::VERSION,
            id: Uuid::now_v7(),
            campaign_id: campaign.id,
            channel: Channel::Email,
            webhook: None,
            audience: Audience::Customers,
            recipients: recipients.clone(),
            created_by: Uuid::nil(),
            created_at: now,
        };
        // A previous run wrote its first batch, then stopped.
        let stored = d.clone();
        store
            .write(move |s| {
                let p = s.distributions().create(&stored, Progress::default())?;
                let p = Progress {
                    done: BATCH as u32,
                    ..p
                };
                write_batch(s, &stored, 0..BATCH, p, now).map(|_| ())
            })
            .await
            .unwrap();
        assert_eq!(store.distributions().running().unwrap(), vec![d.id]);

        let registry = CampaignRegistry::new(
            actix::Arbiter::current(),
            store.clone(),
            crate::clock::system(),
        );
        registry.resume_distributions(Arc::new(tokio::sync::Notify::new()));
        let mut progress = Progress::default();
        for _ in 0..200 {
            progress = store.distributions().get(d.id).unwrap().unwrap().1;
            if progress.finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(progress.finished(), "{progress:?}");
        assert_eq!((progress.done, progress.assigned), (600, 600));
        // Every recipient holds exactly one code, each code went to one of them, and each has
        // one message in the outbox.
        let mut held = HashSet::new();
        for u in &recipients {
            let codes = store.codes().held_by(*u).unwrap();
            assert_eq!(codes.len(), 1);
            assert!(held.insert(codes[0].code.clone()));
        }
        let outbox = store.deliveries().list(None, None, 1000).unwrap().items;
        assert_eq!(outbox.len(), 600);
        assert!(store.distributions().running().unwrap().is_empty());
    }
}
