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

/// Signed per-user links (unsubscribe): `<user id, 32 hex>.<HMAC-SHA256 of purpose and id, 64 hex>`.
/// The key is `[auth] secret` or one generated and kept in the store, so links survive restarts.
#[derive(Clone)]
pub struct LinkSigner {
    /// The keyed HMAC state, prepared once and cloned per link.
    keyed: hmac::Hmac<sha2::Sha256>,
}

#[derive(Debug, thiserror::Error)]
#[error("the link-signing key is not usable: {0}")]
pub struct KeyError(String);

impl LinkSigner {
    const UNSUBSCRIBE: &'static [u8] = b"unsubscribe\0";

    pub fn new(key: &[u8]) -> Result<Self, KeyError> {
        use hmac::Mac as _;
        let keyed =
            <hmac::Hmac<sha2::Sha256>>::new_from_slice(key).map_err(|e| KeyError(e.to_string()))?;
        Ok(Self { keyed })
    }

    fn mac(&self, user: uuid::Uuid) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac as _;
        let mut mac = self.keyed.clone();
        mac.update(Self::UNSUBSCRIBE);
        mac.update(user.as_bytes());
        mac
    }

    pub fn unsubscribe_token(&self, user: uuid::Uuid) -> String {
        use hmac::Mac as _;
        format!(
            "{}.{}",
            user.simple(),
            hex::encode(self.mac(user).finalize().into_bytes())
        )
    }

    /// The user a token was made for, if it is genuine (constant-time comparison).
    pub fn verify_unsubscribe(&self, token: &str) -> Option<uuid::Uuid> {
        use hmac::Mac as _;
        let (id, sig) = token.split_once('.')?;
        if id.len() != 32 {
            return None;
        }
        let user = uuid::Uuid::try_parse(id).ok()?;
        let sig = hex::decode(sig).ok()?;
        self.mac(user).verify_slice(&sig).ok()?;
        Some(user)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Failed(String),
    /// Too many password checks are waiting: the caller should retry shortly (503).
    #[error("too many password checks are waiting")]
    Busy,
}

/// Password checks and hashes waiting for a place at once (per place running); past it 503.
pub const WAITING_PER_PLACE: usize = 16;

/// argon2id hashing and verification, a bounded number at once (`concurrency`, each on a blocking
/// thread) with a bounded number waiting; more are refused ([`HashError::Busy`]).
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// Callers holding or waiting for a place.
    queued: Arc<std::sync::atomic::AtomicUsize>,
    max_queued: usize,
    /// How long a real verification takes lately (µs): an unknown email waits as long, without
    /// spending the CPU (anonymous guesses must not slow real logins).
    verify_us: Arc<std::sync::atomic::AtomicU64>,
}

/// A place in the hashing queue, given back when dropped.
struct Queued(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Passwords {
    pub fn new(concurrency: usize) -> Result<Self, HashError> {
        let concurrency = concurrency.max(1);
        // One real verification now: how long an unknown email should take from the start.
        let random: [u8; 16] = rand::random();
        let decoy = hash_blocking(&hex::encode(random))?;
        let started = std::time::Instant::now();
        verify_blocking("not the password", &decoy);
        let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            queued: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            max_queued: concurrency * (WAITING_PER_PLACE + 1),
            verify_us: Arc::new(std::sync::atomic::AtomicU64::new(took)),
        })
    }

    /// A place in the queue, or `Busy` when it is full.
    fn queue(&self) -> Result<Queued, HashError> {
        use std::sync::atomic::Ordering;
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_queued).then_some(n + 1)
            })
            .map_err(|_| {
                metrics::counter!("voucherd_password_checks_total", "result" => "busy")
                    .increment(1);
                HashError::Busy
            })?;
        Ok(Queued(self.queued.clone()))
    }

    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        let _queued = self.queue()?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?;
        tokio::task::spawn_blocking(move || hash_blocking(password.expose()))
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?
    }

    /// Checks `password` against `stored`. With no user (`None`) no hash is computed: the answer
    /// (false) comes after as long as a real check takes lately, so an unknown email answers like
    /// a wrong password without costing the CPU.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        use std::sync::atomic::Ordering;
        let Some(phc) = stored else {
            metrics::counter!("voucherd_password_checks_total", "result" => "unknown").increment(1);
            let us = self.verify_us.load(Ordering::Acquire);
            tokio::time::sleep(std::time::Duration::from_micros(us)).await;
            return Ok(false);
        };
        let _queued = self.queue()?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?;
        metrics::counter!("voucherd_password_checks_total", "result" => "argon2").increment(1);
        let started = std::time::Instant::now();
        let ok = tokio::task::spawn_blocking(move || verify_blocking(&password, &phc))
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?;
        // A moving average (7/8 old, 1/8 new) of how long a check takes.
        let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let _ = self
            .verify_us
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |avg| {
                Some(avg - avg / 8 + took / 8)
            });
        Ok(ok)
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
    fn unsubscribe_tokens_verify_only_unaltered() {
        let signer = LinkSigner::new(&b"k".repeat(32)).unwrap();
        let user = uuid::Uuid::now_v7();
        let token = signer.unsubscribe_token(user);
        assert_eq!(signer.verify_unsubscribe(&token), Some(user));
        let other = uuid::Uuid::now_v7();
        let (_, sig) = token.split_once('.').unwrap();
        assert_eq!(
            signer.verify_unsubscribe(&format!("{}.{sig}", other.simple())),
            None
        );
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            signer.verify_unsubscribe(&String::from_utf8(flipped).unwrap()),
            None
        );
        assert_eq!(
            LinkSigner::new(&b"x".repeat(32))
                .unwrap()
                .verify_unsubscribe(&token),
            None
        );
        for junk in ["", ".", "abc.def", &token[..40]] {
            assert_eq!(signer.verify_unsubscribe(junk), None, "{junk}");
        }
    }

    #[test]
    fn hashes_verify_only_the_right_password() {
        let phc = hash_blocking("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_blocking("correct horse", &phc));
        assert!(!verify_blocking("wrong horse", &phc));
        assert!(!verify_blocking("correct horse", "not a hash"));
    }
}

/// The `X-Signature` value of a signed body: `sha256=<hex HMAC-SHA256 of body with secret>` (sent
/// with webhooks; checked on provider callbacks).
pub fn body_signature(secret: &[u8], body: &[u8]) -> String {
    use hmac::Mac as _;
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mac = <hmac::Hmac<sha2::Sha256>>::new_from_slice(secret).map(|mut m| {
        m.update(body);
        hex::encode(m.finalize().into_bytes())
    });
    format!("sha256={}", mac.unwrap_or_default())
}

/// Whether two secrets are the same, in a time that does not depend on where they differ (their
/// digests are compared in full).
pub fn same_secret(given: &[u8], wanted: &[u8]) -> bool {
    use sha2::Digest as _;
    let (a, b) = (sha2::Sha256::digest(given), sha2::Sha256::digest(wanted));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Whether `header` (`sha256=<hex>`) is the signature of `body` with `secret` (constant-time).
pub fn verify_body_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    use hmac::Mac as _;
    let Some(sig) = header
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    <hmac::Hmac<sha2::Sha256>>::new_from_slice(secret).is_ok_and(|mut m| {
        m.update(body);
        m.verify_slice(&sig).is_ok()
    })
}

#[cfg(test)]
mod signature_tests {
    #[test]
    fn the_body_signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            super::body_signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let body = b"what do ya want for nothing?";
        let good = super::body_signature(b"Jefe", body);
        assert!(super::verify_body_signature(b"Jefe", body, &good));
        assert!(!super::verify_body_signature(b"Jeff", body, &good));
        assert!(!super::verify_body_signature(b"Jefe", b"other", &good));
        assert!(!super::verify_body_signature(b"Jefe", body, "sha256=zz"));
        assert!(!super::verify_body_signature(b"Jefe", body, ""));
    }
}
