//! Pull state of each affiliate network (tree `networks`: name → NetworkRecord JSON), kept so a
//! restart shows the same health and resumes backoff where it was.

use super::{Store, StoreError, decode, encode};
use crate::domain::network::NetworkRecord;

pub struct Networks<'a> {
    store: &'a Store,
}

impl<'a> Networks<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    pub fn get(&self, name: &str) -> Result<Option<NetworkRecord>, StoreError> {
        self.store
            .trees()
            .networks
            .get(name.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    pub fn put(&self, record: &NetworkRecord) -> Result<(), StoreError> {
        self.store
            .trees()
            .networks
            .insert(record.name.as_bytes(), encode(record)?)?;
        Ok(())
    }
}
