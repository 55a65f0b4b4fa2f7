//! Distributions (tree `distributions`): `d` ‖ DistributionId(16) → Distribution (what was asked,
//! written once) and `p` ‖ id → Progress (rewritten with each batch, in the batch's command with
//! its claims and messages). Running ones are found at start by reading the progress records.

use uuid::Uuid;

use super::{Store, StoreError, decode, encode};
use crate::domain::distribution::{Distribution, Progress};

const DEFINITION: u8 = b'd';
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
