//! Campaigns: one key per campaign (`campaigns` CampaignId(16) → Campaign). Few and small: read
//! from the tree; their counters live in the codes index (`codes.rs`).

use uuid::Uuid;

use super::{Store, StoreError, decode, encode, values_after};
use crate::domain::campaign::Campaign;

pub struct Campaigns<'a> {
    store: &'a Store,
}

impl<'a> Campaigns<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// Stores a new or changed campaign (one key). Writer only.
    pub fn put(&self, campaign: &Campaign) -> Result<(), StoreError> {
        self.store
            .trees()
            .campaigns
            .insert(campaign.id.as_bytes(), encode(campaign)?)?;
        Ok(())
    }

    pub fn get(&self, id: Uuid) -> Result<Option<Campaign>, StoreError> {
        self.store
            .trees()
            .campaigns
            .get(id.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Oldest first, after `after`, at most `limit`.
    pub fn list(&self, after: Option<Uuid>, limit: usize) -> Result<Vec<Campaign>, StoreError> {
        values_after(&self.store.trees().campaigns, after, limit)
    }
}
