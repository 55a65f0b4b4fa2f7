//! Store-wide facts: schema version (see `schema`), generated secrets, one-time flags.

use super::{Store, StoreError, schema};

const HMAC_SECRET: &str = "hmac_secret";
const BOOTSTRAPPED: &str = "bootstrap_admin_done";

pub struct Meta<'a> {
    store: &'a Store,
}

impl<'a> Meta<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self { store }
    }

    pub fn schema_version(&self) -> Result<u32, StoreError> {
        schema::stored_version(self.store.trees())
    }

    /// The HMAC secret for signed links: the configured one, else one generated on first use and
    /// kept, so links stay valid across restarts.
    pub fn hmac_secret(&self, configured: &str) -> Result<Vec<u8>, StoreError> {
        if !configured.is_empty() {
            return Ok(configured.as_bytes().to_vec());
        }
        let fresh: [u8; 32] = rand::random();
        let tree = &self.store.trees().meta;
        // compare_and_swap from "absent" keeps the first generated secret if two callers race.
        let _ = tree.compare_and_swap(HMAC_SECRET, None as Option<&[u8]>, Some(&fresh[..]))?;
        tree.get(HMAC_SECRET)?
            .map(|v| v.to_vec())
            .ok_or_else(|| StoreError::Corrupt("hmac secret vanished".into()))
    }

    pub fn bootstrapped(&self) -> Result<bool, StoreError> {
        Ok(self.store.trees().meta.get(BOOTSTRAPPED)?.is_some())
    }

    pub fn set_bootstrapped(&self) -> Result<(), StoreError> {
        self.store.trees().meta.insert(BOOTSTRAPPED, &[1u8])?;
        Ok(())
    }
}
