//! Password hashing (argon2id) kept off the async threads and bounded in concurrency.
//!
//! Each argon2id hash takes 19 MiB and tens of milliseconds of CPU. Unbounded, a burst of logins
//! would fill tokio's blocking pool (512 threads × 19 MiB); a semaphore keeps it to a few at once.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::Semaphore;

use crate::domain::user::Password;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Failed(String),
}

#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// A real hash of a random password: verified against when the email is unknown, so an unknown
    /// email costs the same time as a wrong password.
    decoy: Arc<str>,
}

impl Passwords {
    pub fn new(concurrency: usize) -> Result<Self, HashError> {
        let random: [u8; 16] = rand::random();
        let decoy = hash_blocking(&hex::encode(random))?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            decoy: decoy.into(),
        })
    }

    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?;
        tokio::task::spawn_blocking(move || hash_blocking(password.expose()))
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?
    }

    /// Checks `password` against `stored` (or against the decoy when there is no user).
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.decoy.to_string());
        let ok = tokio::task::spawn_blocking(move || verify_blocking(&password, &phc))
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?;
        Ok(known && ok)
    }
}

pub fn hash_blocking(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

pub fn verify_blocking(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_the_right_password() {
        let phc = hash_blocking("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_blocking("correct horse", &phc));
        assert!(!verify_blocking("wrong horse", &phc));
        assert!(!verify_blocking("correct horse", "not a hash"));
    }
}
