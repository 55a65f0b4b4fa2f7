//! Deliveries: messages in the durable outbox, their state and retry policy.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// How a message leaves. SMS and webhook join in later issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
        }
    }
}

/// `pending` (waiting for its first attempt) → `sending` (claimed) → `sent`; a failed attempt
/// makes it `failed` (retry scheduled) until `max_attempts`, then `dead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Sending,
    Sent,
    Failed,
    Dead,
}

impl DeliveryStatus {
    /// Still owed an attempt.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Sending | Self::Failed)
    }
}

/// What is being delivered; the dispatcher renders it at send time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    Digest {
        user_id: Uuid,
        digest_id: Uuid,
        local_date: chrono::NaiveDate,
    },
}

impl Payload {
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Payload::Digest { user_id, .. } => Some(*user_id),
        }
    }
}

/// Where a message stands in the outbox; stored inside the record it delivers (a digest record is
/// its own outbox entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryState {
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// When the next attempt may start (for `sending`: when the claim lapses).
    #[serde(with = "crate::domain::times::micros")]
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    #[serde(with = "crate::domain::times::micros")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "crate::domain::times::micros_opt")]
    pub sent_at: Option<DateTime<Utc>>,
}

impl DeliveryState {
    /// Waiting for its first attempt, due at once.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            updated_at: now,
            sent_at: None,
        }
    }
}

/// A delivery as the dispatcher and the API see it: what is delivered and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    pub v: u32,
    pub id: Uuid,
    pub channel: Channel,
    #[serde(flatten)]
    pub payload: Payload,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// When the next attempt may start (for `sending`: when the claim lapses).
    pub next_attempt_at: DateTime<Utc>,
    #[serde(default)]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
}

impl Delivery {
    pub const VERSION: u32 = 1;
}
