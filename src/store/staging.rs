//! Pages of a multi-page pull, held until the last page arrived (tree `feed_staging`:
//! network ‖ 0xff ‖ seq(8) → Offer JSON). A pull that fails half-way clears its staging and has
//! ingested nothing; memory holds one page at a time however long the feed.

use super::keys::{KeyBuf, u64_from};
use super::{Store, StoreError, decode, encode};
use crate::domain::voucher::Offer;

pub struct Staging<'a> {
    store: &'a Store,
}

fn prefix(network: &str) -> Vec<u8> {
    KeyBuf::new().str(network).build()
}

impl<'a> Staging<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    /// Appends offers numbered from `first_seq`.
    pub fn stage(&self, network: &str, first_seq: u64, offers: &[Offer]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (i, offer) in offers.iter().enumerate() {
            batch.insert(
                KeyBuf::new().str(network).u64(first_seq + i as u64).build(),
                encode(offer)?,
            );
        }
        self.store.trees().feed_staging.apply_batch(batch)?;
        Ok(())
    }

    /// Staged offers with a sequence number of at least `from`, at most `limit`, in order.
    pub fn read(
        &self,
        network: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Offer)>, StoreError> {
        let p = prefix(network);
        let start = KeyBuf::new().bytes(&p).u64(from).build();
        let end = KeyBuf::new().bytes(&p).bytes(&[0xff; 9]).build();
        self.store
            .trees()
            .feed_staging
            .range(start..end)
            .take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                let seq = k
                    .get(p.len()..)
                    .and_then(u64_from)
                    .ok_or_else(|| StoreError::Corrupt("staging key".into()))?;
                Ok((seq, decode(&v)?))
            })
            .collect()
    }

    /// Drops everything staged for `network`; returns how many offers.
    pub fn clear(&self, network: &str) -> Result<usize, StoreError> {
        let tree = &self.store.trees().feed_staging;
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for k in tree.scan_prefix(prefix(network)).keys() {
            batch.remove(k?);
            n += 1;
        }
        tree.apply_batch(batch)?;
        Ok(n)
    }
}
