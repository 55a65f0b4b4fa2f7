//! Campaigns: one key per campaign (`campaigns` CampaignId(16) → Campaign). Few and small, and
//! read by every claim: all of them are kept in memory ([`CampaignIndex`], loaded at open, changed
//! by the writer with the record). Their counters live in the codes index (`codes.rs`).

use std::sync::Arc;

use dashmap::DashMap;
use uuid::Uuid;

use super::{Store, StoreError, Trees, decode, encode, values_after};
use crate::domain::campaign::Campaign;

/// Every campaign, by id.
#[derive(Default)]
pub(crate) struct CampaignIndex(DashMap<Uuid, Arc<Campaign>>);

impl CampaignIndex {
    pub(crate) fn load(trees: &Trees) -> Result<Self, StoreError> {
        let index = Self::default();
        for kv in trees.campaigns.iter() {
            let (_, v) = kv?;
            let c: Campaign = decode(&v)?;
            index.0.insert(c.id, Arc::new(c));
        }
        Ok(index)
    }

    pub(crate) fn get(&self, id: Uuid) -> Option<Arc<Campaign>> {
        self.0.get(&id).map(|c| c.clone())
    }
}

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
        self.store
            .indexes()
            .campaigns
            .0
            .insert(campaign.id, Arc::new(campaign.clone()));
        Ok(())
    }

    /// From memory.
    pub fn get(&self, id: Uuid) -> Result<Option<Campaign>, StoreError> {
        Ok(self.shared(id).map(|c| (*c).clone()))
    }

    /// From memory, without a copy.
    pub fn shared(&self, id: Uuid) -> Option<Arc<Campaign>> {
        self.store.indexes().campaigns.0.get(&id).map(|c| c.clone())
    }

    /// Every campaign, from memory, in no order.
    pub fn all(&self) -> Vec<Arc<Campaign>> {
        self.store
            .indexes()
            .campaigns
            .0
            .iter()
            .map(|c| c.value().clone())
            .collect()
    }

    /// Oldest first, after `after`, at most `limit`.
    pub fn list(&self, after: Option<Uuid>, limit: usize) -> Result<Vec<Campaign>, StoreError> {
        values_after(&self.store.trees().campaigns, after, limit)
    }
}
