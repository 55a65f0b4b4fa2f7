//! Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payload encryption (RFC 8291), by
//! `web-push-native`, sent with reqwest. The VAPID key pair is generated at first start and kept
//! in the store (`meta`); browsers subscribe with its public half
//! (`GET /api/v1/push/vapid-public-key`).

use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding as _};
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike as _, ES256KeyPair};
use web_push_native::{Auth, WebPushBuilder, p256};

use super::SendError;
use crate::config::PushSettings;
use crate::domain::push::PushSubscription;

/// Why one push failed.
#[derive(Debug)]
pub enum PushError {
    /// The push service says the subscription is gone (404, 410): drop it.
    Gone,
    Failed(SendError),
}

/// The server's VAPID identity.
pub struct Vapid {
    keys: ES256KeyPair,
    /// The uncompressed P-256 public key, base64url without padding.
    pub public_key: String,
}

impl Vapid {
    /// A fresh private key (32 bytes), for the store to keep.
    pub fn generate() -> Vec<u8> {
        ES256KeyPair::generate().to_bytes()
    }

    pub fn from_private(private: &[u8]) -> anyhow::Result<Self> {
        let keys = ES256KeyPair::from_bytes(private)
            .map_err(|e| anyhow::anyhow!("the stored VAPID key is not usable: {e}"))?;
        let public_key = Base64UrlUnpadded::encode_string(
            &keys.public_key().public_key().to_bytes_uncompressed(),
        );
        Ok(Self { keys, public_key })
    }
}

/// Whether a subscription's keys are usable: `p256dh` a P-256 point, `auth` 16 bytes (base64url).
pub fn check_keys(p256dh: &str, auth: &str) -> Result<(), &'static str> {
    decode_keys(p256dh, auth).map(|_| ())
}

fn decode_keys(p256dh: &str, auth: &str) -> Result<(p256::PublicKey, Auth), &'static str> {
    let point = Base64UrlUnpadded::decode_vec(p256dh.trim_end_matches('='))
        .map_err(|_| "keys.p256dh is not base64url")?;
    let public =
        p256::PublicKey::from_sec1_bytes(&point).map_err(|_| "keys.p256dh is not a P-256 key")?;
    let auth = Base64UrlUnpadded::decode_vec(auth.trim_end_matches('='))
        .map_err(|_| "keys.auth is not base64url")?;
    if auth.len() != 16 {
        return Err("keys.auth must be 16 bytes");
    }
    Ok((public, Auth::clone_from_slice(&auth)))
}

pub struct Push {
    client: reqwest::Client,
    allowed: super::endpoint::Allowed,
    vapid: std::sync::Arc<Vapid>,
    subject: String,
    timeout: Duration,
}

impl Push {
    pub fn new(
        settings: &PushSettings,
        vapid: std::sync::Arc<Vapid>,
    ) -> Result<Self, reqwest::Error> {
        let allowed = super::endpoint::Allowed {
            loopback: settings.allow_loopback,
        };
        // Names resolve to allowed addresses only, at every send: an endpoint that was public
        // when it was given cannot be pointed at the private network later.
        let client = reqwest::Client::builder()
            .user_agent(concat!("voucherd/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .dns_resolver(super::endpoint::PublicResolver::shared(allowed))
            .build()?;
        Ok(Self {
            client,
            allowed,
            vapid,
            subject: settings.subject.clone(),
            timeout: Duration::from_secs(settings.timeout_s),
        })
    }

    /// Encrypts `payload` for `sub` and POSTs it to its endpoint.
    pub async fn send(&self, sub: &PushSubscription, payload: &[u8]) -> Result<(), PushError> {
        let permanent = |m: String| PushError::Failed(SendError::permanent(m));
        let (public, auth) =
            decode_keys(&sub.p256dh, &sub.auth).map_err(|m| permanent(m.into()))?;
        url::Url::parse(&sub.endpoint)
            .map_err(|e| e.to_string())
            .and_then(|u| self.allowed.url(&u))
            .map_err(|m| permanent(format!("the endpoint is refused: {m}")))?;
        let endpoint: http::Uri = sub
            .endpoint
            .parse()
            .map_err(|_| permanent("the endpoint is not a URL".into()))?;
        let request = WebPushBuilder::new(endpoint, public, auth)
            .with_valid_duration(Duration::from_secs(24 * 3600))
            .with_vapid(&self.vapid.keys, &self.subject)
            .build(payload.to_vec())
            .map_err(|e| permanent(format!("encrypting the push: {e}")))?;
        let mut request = reqwest::Request::try_from(request)
            .map_err(|e| permanent(format!("the push request: {e}")))?;
        *request.timeout_mut() = Some(self.timeout);
        match self.client.execute(request).await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) if matches!(r.status().as_u16(), 404 | 410) => Err(PushError::Gone),
            Ok(r) => Err(PushError::Failed(SendError::transient(format!(
                "the push service answered {}",
                r.status()
            )))),
            Err(e) => Err(PushError::Failed(SendError::transient(format!(
                "the push service: {e}"
            )))),
        }
    }
}
