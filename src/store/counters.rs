//! Explicit counters (`Tree::len()` is a full scan). Changed inside the same transaction as the
//! records they count, so they never drift.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::keys::{u64_from, u64_key};
use super::{Store, StoreError};

/// Vouchers stored, every phase.
pub const VOUCHERS: &str = "vouchers";

/// The counter of active vouchers of one retailer, category or network (`scope`), by its key.
pub fn active_key(scope: &str, key: &str) -> Vec<u8> {
    super::keys::KeyBuf::new()
        .str("active")
        .str(scope)
        .str(key)
        .build()
}

pub struct Counters<'a> {
    store: &'a Store,
}

impl<'a> Counters<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    pub fn get(&self, name: impl AsRef<[u8]>) -> Result<u64, StoreError> {
        Ok(self
            .store
            .trees()
            .counters
            .get(name)?
            .and_then(|v| u64_from(&v))
            .unwrap_or(0))
    }
}

/// Adds `delta` (may be negative) to a counter inside a transaction; never goes below zero.
pub(crate) fn bump(
    counters: &TransactionalTree,
    name: impl AsRef<[u8]>,
    delta: i64,
) -> Result<(), ConflictableTransactionError<StoreError>> {
    if delta == 0 {
        return Ok(());
    }
    let name = name.as_ref();
    let current = counters.get(name)?.and_then(|v| u64_from(&v)).unwrap_or(0);
    let next = current.saturating_add_signed(delta);
    counters.insert(name, &u64_key(next))?;
    Ok(())
}
