//! Distributions (tree `distributions`): `d` ‖ DistributionId(16) → Distribution (what was asked,
//! written once) and `p` ‖ id → Progress (rewritten with each batch, in the batch's command with
//! its claims and messages: one sled transaction over the three trees, so a batch stands whole or
//! not at all after an error or a crash). Running ones are found at start by reading the progress
//! records.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;
use uuid::Uuid;

use super::messages::Messages;
use super::{Store, StoreError, decode, encode, unwrap_transaction};
use crate::domain::campaign::{CodeStatus, Refusal};
use crate::domain::delivery::MessageRecord;
use crate::domain::distribution::{Distribution, Progress};

const DEFINITION: u8 = b'd';
/// Definitions a listing reads at most per page (every campaign's are in one key range).
pub const LIST_SCAN: usize = 2_000;
const PROGRESS: u8 = b'p';

fn key(family: u8, id: Uuid) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[0] = family;
    k[1..].copy_from_slice(id.as_bytes());
    k
}

pub struct Distributions<'a> {
    store: &'a Store,
}

impl<'a> Distributions<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// Stores a new distribution with its starting progress: two keys. Writer only.
    pub fn create(&self, d: &Distribution, progress: Progress) -> Result<Progress, StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(&key(DEFINITION, d.id)[..], encode(d)?);
        batch.insert(&key(PROGRESS, d.id)[..], encode(&progress)?);
        self.store.trees().distributions.apply_batch(batch)?;
        Ok(progress)
    }

    /// Records how far `id` got: one key. Writer only.
    pub fn advance(&self, id: Uuid, progress: &Progress) -> Result<(), StoreError> {
        self.store
            .trees()
            .distributions
            .insert(key(PROGRESS, id), encode(progress)?)?;
        Ok(())
    }

    /// One batch of a distribution, all or nothing: each `(code, customer)` claimed (a code no
    /// longer available fails alone), a message per code claimed (made by `message`), and the
    /// progress with what was assigned — 3n + 1 keys in one transaction. Returns the progress
    /// stored and which claims failed (by position). Writer only.
    /// One batch of a distribution, decided and written in one step: each recipient who still
    /// has an account gets one code if the campaign's rule allows it (or counts as skipped, by
    /// why), a message per code goes to the outbox, and the progress is stored — in one
    /// transaction. Writer only.
    pub fn hand_out(
        &self,
        d: &Distribution,
        recipients: &[Uuid],
        mut progress: Progress,
        now: chrono::DateTime<chrono::Utc>,
        message: impl Fn(&str, Uuid) -> MessageRecord,
    ) -> Result<Progress, StoreError> {
        let campaign = self
            .store
            .campaigns()
            .shared(d.campaign_id)
            .ok_or(StoreError::NotFound)?;
        let codes = self.store.codes();
        let mut records = Vec::with_capacity(recipients.len());
        for &customer in recipients {
            match codes.take(&campaign, customer, 1, None, CodeStatus::Claimed, now) {
                Ok(taken) => records.extend(taken),
                Err(Refusal::LimitReached(_)) => progress.skipped_limit_reached += 1,
                Err(Refusal::SoldOut) => progress.skipped_sold_out += 1,
                // Erased since, or the campaign stopped.
                Err(Refusal::NotActive(_) | Refusal::NoCustomer) => progress.skipped_other += 1,
            }
        }
        progress.assigned += records.len() as u32;
        let messages: Vec<MessageRecord> = records
            .iter()
            .filter_map(|r| r.holder.map(|h| message(&r.code, h)))
            .collect();
        codes.written(&records, || {
            let mut claimed = Vec::with_capacity(records.len());
            for r in &records {
                claimed.push((r.code.as_bytes().to_vec(), encode(r)?));
            }
            let outbox = Messages::encoded(&messages)?;
            let stored = encode(&progress)?;
            let trees = self.store.trees();
            (&trees.codes, &trees.messages, &trees.distributions)
                .transaction(|(c, m, dist)| {
                    for (k, v) in &claimed {
                        c.insert(k.as_slice(), v.as_slice())?;
                    }
                    self.store
                        .between_keys()
                        .map_err(ConflictableTransactionError::Abort)?;
                    for (k, v) in &outbox {
                        m.insert(k.as_slice(), v.as_slice())?;
                    }
                    dist.insert(&key(PROGRESS, d.id)[..], stored.as_slice())?;
                    Ok(())
                })
                .map_err(unwrap_transaction)
        })?;
        self.store.messages().index_enqueued(&messages);
        metrics::counter!("voucherd_claims_total", "result" => "ok")
            .increment(records.len() as u64);
        Ok(progress)
    }

    pub fn get(&self, id: Uuid) -> Result<Option<(Distribution, Progress)>, StoreError> {
        let tree = &self.store.trees().distributions;
        let Some(d) = tree.get(key(DEFINITION, id))? else {
            return Ok(None);
        };
        let progress = match tree.get(key(PROGRESS, id))? {
            Some(p) => decode(&p)?,
            None => Progress::default(),
        };
        Ok(Some((decode(&d)?, progress)))
    }

    /// A campaign's distributions, newest first, from before `before` (the last id of the
    /// previous page), at most `limit`; reads at most [`LIST_SCAN`] definitions, and returns the
    /// cursor to go on from when there may be more.
    #[allow(clippy::type_complexity)]
    pub fn list(
        &self,
        campaign: Uuid,
        before: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<(Distribution, Progress)>, Option<Uuid>), StoreError> {
        let tree = &self.store.trees().distributions;
        let end = key(DEFINITION, before.unwrap_or(Uuid::max()));
        let start = key(DEFINITION, Uuid::nil());
        let mut out = Vec::new();
        for (read, kv) in tree.range(start..end).rev().enumerate() {
            let (k, v) = kv?;
            let id = k.get(1..17).and_then(|b| Uuid::from_slice(b).ok());
            let d: Distribution = decode(&v)?;
            if d.campaign_id == campaign {
                let progress = match tree.get(key(PROGRESS, d.id))? {
                    Some(p) => decode(&p)?,
                    None => Progress::default(),
                };
                out.push((d, progress));
                if out.len() == limit {
                    return Ok((out, id));
                }
            }
            if read + 1 >= LIST_SCAN {
                return Ok((out, id));
            }
        }
        Ok((out, None))
    }

    /// The ids of distributions not finished (at start, to resume them).
    pub fn running(&self) -> Result<Vec<Uuid>, StoreError> {
        let mut ids = Vec::new();
        for kv in self.store.trees().distributions.scan_prefix([PROGRESS]) {
            let (k, v) = kv?;
            let Some(id) = k.get(1..17).and_then(|b| Uuid::from_slice(b).ok()) else {
                continue;
            };
            match decode::<Progress>(&v) {
                Ok(p) if !p.finished() => ids.push(id),
                Ok(_) => {}
                Err(e) => tracing::error!(distribution = %id, error = %e, "undecodable progress"),
            }
        }
        Ok(ids)
    }
}
