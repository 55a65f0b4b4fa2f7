//! Deliveries: messages in the durable outbox, their state and retry policy.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// How a message leaves.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    /// A JSON POST to a named `[[webhooks]]` endpoint, signed with its secret.
    Webhook,
    /// A text message to the customer's phone through the `[delivery.sms]` gateway.
    Sms,
    /// A Web Push notification to each of the customer's push subscriptions.
    Push,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::Email,
        Channel::Webhook,
        Channel::Sms,
        Channel::Push,
    ];

    /// Its stored tag (report tallies); never reuse one.
    pub fn tag(self) -> u8 {
        match self {
            Channel::Email => 0,
            Channel::Webhook => 1,
            Channel::Sms => 2,
            Channel::Push => 3,
        }
    }

    pub fn from_tag(tag: u8) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.tag() == tag)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
            Channel::Sms => "sms",
            Channel::Push => "push",
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

/// What is being delivered; the dispatcher renders it at send time from what it names (so a
/// message holds references, not copies: erasing what it names empties it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    Digest {
        user_id: Uuid,
        digest_id: Uuid,
        local_date: chrono::NaiveDate,
    },
    /// A code a distribution assigned to a customer.
    Code {
        user_id: Uuid,
        campaign_id: Uuid,
        code: String,
        distribution_id: Uuid,
    },
    /// An admin notification, emailed to `[notify] admin_emails`.
    Alert { notification_id: Uuid },
    /// The code a provider server gave for a customer's request.
    Requested { user_id: Uuid, request_id: Uuid },
    /// An email about the account itself: the link that confirms an address, or the notice
    /// that someone tried to sign up again with it.
    Account { user_id: Uuid, mail: AccountMail },
    /// The one-time code that proves a phone number is the customer's (by SMS).
    PhoneCode { user_id: Uuid, challenge_id: Uuid },
}

impl Payload {
    /// Its `kind` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Digest { .. } => "digest",
            Payload::Code { .. } => "code",
            Payload::Alert { .. } => "alert",
            Payload::Requested { .. } => "requested",
            Payload::Account { .. } => "account",
            Payload::PhoneCode { .. } => "phone_code",
        }
    }

    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Payload::Digest { user_id, .. }
            | Payload::Code { user_id, .. }
            | Payload::Requested { user_id, .. }
            | Payload::Account { user_id, .. }
            | Payload::PhoneCode { user_id, .. } => Some(*user_id),
            Payload::Alert { .. } => None,
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
    /// The delivery as the dispatcher and the API see it: what it carries, and this state.
    pub fn to_delivery(
        &self,
        id: Uuid,
        channel: Channel,
        payload: Payload,
        webhook: Option<String>,
        created_at: DateTime<Utc>,
    ) -> Delivery {
        Delivery {
            v: Delivery::VERSION,
            id,
            channel,
            payload,
            webhook,
            status: self.status,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error.clone(),
            created_at,
            updated_at: self.updated_at,
            sent_at: self.sent_at,
        }
    }

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
    /// The `[[webhooks]]` endpoint, for the webhook channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
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

/// A message other than a digest in the outbox (tree `messages`): what it delivers, by which
/// channel, and where its delivery stands. One key, plus its open marker while it is owed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub v: u32,
    pub id: Uuid,
    pub channel: Channel,
    pub payload: MessagePayload,
    pub webhook: Option<String>,
    pub delivery: DeliveryState,
    #[serde(with = "crate::domain::times::micros")]
    pub created_at: DateTime<Utc>,
}

/// What a message record carries: [`Payload`] without digests, in the store's encoding (an
/// externally tagged enum: postcard cannot read `Payload`'s internal tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessagePayload {
    Code {
        user_id: Uuid,
        campaign_id: Uuid,
        code: String,
        distribution_id: Uuid,
    },
    Alert {
        notification_id: Uuid,
    },
    Requested {
        user_id: Uuid,
        request_id: Uuid,
    },
    Account {
        user_id: Uuid,
        mail: AccountMail,
    },
    PhoneCode {
        user_id: Uuid,
        challenge_id: Uuid,
    },
}

/// Which account email (externally tagged: the store's encoding reads it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountMail {
    /// The signed link confirming `email` (the account's address, or the one it asked to change
    /// to), working until `expires_at`.
    ConfirmEmail {
        email: String,
        #[serde(with = "crate::domain::times::micros")]
        #[schema(value_type = String, format = DateTime)]
        expires_at: DateTime<Utc>,
    },
    /// Someone tried to sign up with an address that has an account: its owner is told (the
    /// one signing up is told nothing either way).
    AlreadyRegistered,
}

impl MessagePayload {
    pub fn to_payload(&self) -> Payload {
        match self.clone() {
            Self::Code {
                user_id,
                campaign_id,
                code,
                distribution_id,
            } => Payload::Code {
                user_id,
                campaign_id,
                code,
                distribution_id,
            },
            Self::Alert { notification_id } => Payload::Alert { notification_id },
            Self::Requested {
                user_id,
                request_id,
            } => Payload::Requested {
                user_id,
                request_id,
            },
            Self::Account { user_id, mail } => Payload::Account { user_id, mail },
            Self::PhoneCode {
                user_id,
                challenge_id,
            } => Payload::PhoneCode {
                user_id,
                challenge_id,
            },
        }
    }

    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::Code { user_id, .. }
            | Self::Requested { user_id, .. }
            | Self::Account { user_id, .. }
            | Self::PhoneCode { user_id, .. } => Some(*user_id),
            Self::Alert { .. } => None,
        }
    }
}

impl MessageRecord {
    pub const VERSION: u32 = 1;

    /// A message due at once.
    pub fn new(
        channel: Channel,
        payload: MessagePayload,
        webhook: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            v: Self::VERSION,
            id: crate::domain::v7_at(now),
            channel,
            payload,
            webhook,
            delivery: DeliveryState::new(now),
            created_at: now,
        }
    }

    /// Whose message it is: the user it is about, or nobody (nil) for admin alerts.
    pub fn owner(&self) -> Uuid {
        self.payload.user_id().unwrap_or(Uuid::nil())
    }

    pub fn as_delivery(&self) -> Delivery {
        self.delivery.to_delivery(
            self.id,
            self.channel,
            self.payload.to_payload(),
            self.webhook.clone(),
            self.created_at,
        )
    }
}
