//! Web Push subscriptions: what a browser's `pushManager.subscribe` gives (RFC 8030 endpoint, the
//! P-256 public key `p256dh` and the 16-byte `auth` secret, both base64url), kept per user.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscription {
    pub v: u32,
    pub id: Uuid,
    pub user_id: Uuid,
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    #[serde(with = "crate::domain::times::micros")]
    pub created_at: DateTime<Utc>,
}

impl PushSubscription {
    pub const VERSION: u32 = 1;
    /// Subscriptions one user may keep (browsers, devices).
    pub const MAX_PER_USER: usize = 20;
}

/// A subscription as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PushSubscriptionView {
    pub id: Uuid,
    pub endpoint: String,
    pub created_at: DateTime<Utc>,
}

impl From<&PushSubscription> for PushSubscriptionView {
    fn from(s: &PushSubscription) -> Self {
        Self {
            id: s.id,
            endpoint: s.endpoint.clone(),
            created_at: s.created_at,
        }
    }
}
