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
    const CONFIRM_EMAIL: &'static [u8] = b"confirm-email\0";
    const PHONE_CODE: &'static [u8] = b"phone-code\0";

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

    fn confirm_mac(&self, user: uuid::Uuid, expires: i64, email: &str) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac as _;
        let mut mac = self.keyed.clone();
        mac.update(Self::CONFIRM_EMAIL);
        mac.update(user.as_bytes());
        mac.update(&expires.to_be_bytes());
        mac.update(email.to_ascii_lowercase().as_bytes());
        mac
    }

    /// The link token confirming `email` for `user` until `expires` (seconds since the epoch):
    /// `<user, 32 hex>.<expires>.<HMAC of purpose, user, expiry and address, 64 hex>`. It names
    /// the address without holding it: a link for an address the account no longer asks for
    /// confirms nothing.
    pub fn confirm_email_token(&self, user: uuid::Uuid, email: &str, expires: i64) -> String {
        use hmac::Mac as _;
        format!(
            "{}.{expires}.{}",
            user.simple(),
            hex::encode(
                self.confirm_mac(user, expires, email)
                    .finalize()
                    .into_bytes()
            )
        )
    }

    /// The user and expiry a confirmation token names, if it is well formed (not yet checked).
    pub fn read_confirm_token(token: &str) -> Option<(uuid::Uuid, i64)> {
        let mut parts = token.split('.');
        let (id, expires, sig) = (parts.next()?, parts.next()?, parts.next()?);
        // One spelling only: lower-case hex, the expiry in plain digits (as made).
        let lower_hex = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if parts.next().is_some()
            || id.len() != 32
            || sig.len() != 64
            || !lower_hex(id)
            || !lower_hex(sig)
        {
            return None;
        }
        let when: i64 = expires.parse().ok()?;
        if when.to_string() != expires {
            return None;
        }
        Some((uuid::Uuid::try_parse(id).ok()?, when))
    }

    /// Whether `token` is genuine for `user` confirming `email` (constant-time comparison).
    pub fn confirms(&self, token: &str, user: uuid::Uuid, email: &str) -> bool {
        use hmac::Mac as _;
        let Some((id, expires)) = Self::read_confirm_token(token) else {
            return false;
        };
        let Some(sig) = token.rsplit('.').next().and_then(|s| hex::decode(s).ok()) else {
            return false;
        };
        id == user
            && self
                .confirm_mac(user, expires, email)
                .verify_slice(&sig)
                .is_ok()
    }

    /// The six-digit code proving `phone` for `user` under the challenge `challenge`: worked
    /// out again when sent and when entered, stored nowhere.
    pub fn phone_code(&self, challenge: uuid::Uuid, user: uuid::Uuid, phone: &str) -> String {
        use hmac::Mac as _;
        let mut mac = self.keyed.clone();
        mac.update(Self::PHONE_CODE);
        mac.update(challenge.as_bytes());
        mac.update(user.as_bytes());
        mac.update(phone.as_bytes());
        let digest = mac.finalize().into_bytes();
        let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        format!("{:06}", n % 1_000_000)
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
    /// A hash of a random password: an unknown email is checked against it, so it takes the
    /// same path, the same queue and the same time as a known one (no answer, no delay and no
    /// refusal under load tells whether an address has an account).
    decoy: Arc<str>,
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
        let random: [u8; 16] = rand::random();
        let decoy = hash_blocking(&hex::encode(random))?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            queued: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            max_queued: concurrency * (WAITING_PER_PLACE + 1),
            decoy: decoy.into(),
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

    /// Checks `password` against `stored`; with no user (`None`) against a decoy hash, the same
    /// way (false): an unknown email costs and answers what a wrong password does, also when the
    /// queue is full (503 for both).
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.decoy.to_string());
        let _queued = self.queue()?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?;
        metrics::counter!("voucherd_password_checks_total", "result" => "argon2").increment(1);
        let ok = tokio::task::spawn_blocking(move || verify_blocking(&password, &phc))
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?;
        Ok(ok && known)
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
    fn confirmation_links_confirm_only_their_user_and_address() {
        let signer = LinkSigner::new(&b"k".repeat(32)).unwrap();
        let user = uuid::Uuid::now_v7();
        let token = signer.confirm_email_token(user, "Ann@Example.org", 1_900_000_000);
        assert_eq!(
            LinkSigner::read_confirm_token(&token),
            Some((user, 1_900_000_000))
        );
        assert!(signer.confirms(&token, user, "ann@example.org"));
        assert!(!signer.confirms(&token, user, "bob@example.org"));
        assert!(!signer.confirms(&token, uuid::Uuid::now_v7(), "ann@example.org"));
        let later = token.replacen(".1900000000.", ".1900000001.", 1);
        assert!(
            !signer.confirms(&later, user, "ann@example.org"),
            "expiry is signed"
        );
        let other = LinkSigner::new(&b"x".repeat(32)).unwrap();
        assert!(!other.confirms(&token, user, "ann@example.org"));
        let upper = token.to_uppercase();
        let padded = token.replacen(".1900000000.", ".01900000000.", 1);
        for junk in ["", "a.b.c", &token[..40], &upper, &padded] {
            assert!(!signer.confirms(junk, user, "ann@example.org"));
        }
    }

    #[test]
    fn phone_codes_are_six_digits_bound_to_their_challenge() {
        let signer = LinkSigner::new(&b"k".repeat(32)).unwrap();
        let (c, u) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let code = signer.phone_code(c, u, "+4915112345678");
        assert_eq!(code.len(), 6);
        assert!(code.chars().all(|ch| ch.is_ascii_digit()));
        assert_eq!(code, signer.phone_code(c, u, "+4915112345678"));
        assert_ne!(
            code,
            signer.phone_code(uuid::Uuid::now_v7(), u, "+4915112345678")
        );
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
