//! Subscriptions and digests: what a user follows and what was sent to them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::ValidationError;
use super::delivery::{Channel, Delivery, DeliveryState, Payload};
use super::voucher::name_key;

/// What a subscription follows: one retailer or one category (by name, matched case-folded).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Retailer(String),
    Category(String),
}

impl Target {
    pub const MAX_LEN: usize = 200;

    /// From the request body: exactly one of the two, a non-empty name.
    pub fn parse(retailer: Option<&str>, category: Option<&str>) -> Result<Self, ValidationError> {
        let target = match (retailer, category) {
            (Some(r), None) => Target::Retailer(super::bounded_text("retailer", r, Self::MAX_LEN)?),
            (None, Some(c)) => Target::Category(super::bounded_text("category", c, Self::MAX_LEN)?),
            _ => {
                return Err(ValidationError::new(
                    "retailer",
                    "give exactly one of `retailer` or `category`",
                ));
            }
        };
        Ok(target)
    }

    /// The case-folded key the catalogue indexes by.
    pub fn key(&self) -> String {
        match self {
            Target::Retailer(n) | Target::Category(n) => name_key(n),
        }
    }

    /// One byte telling the kinds apart in index keys.
    pub fn tag(&self) -> u8 {
        match self {
            Target::Retailer(_) => b'r',
            Target::Category(_) => b'c',
        }
    }
}

/// A stored subscription (tree `subscriptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub v: u32,
    pub id: Uuid,
    pub user_id: Uuid,
    pub target: Target,
    #[serde(with = "crate::domain::times::micros")]
    pub created_at: DateTime<Utc>,
}

impl Subscription {
    pub const VERSION: u32 = 1;
}

/// What a digest holds: the vouchers to list, newest first, and how many more matched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub voucher_ids: Vec<Uuid>,
    /// Matching vouchers beyond `max_vouchers` ("and N more").
    pub more: u64,
}

impl Selection {
    pub fn is_empty(&self) -> bool {
        self.voucher_ids.is_empty()
    }
}

/// A digest built for a user and period, not yet committed.
#[derive(Debug, Clone)]
pub struct Draft {
    pub user_id: Uuid,
    pub period: NaiveDate,
    /// The due-index entry this draft answers (`None` for an admin run outside the schedule).
    pub due_at: Option<DateTime<Utc>>,
    /// Vouchers first seen from this instant on were selected (the previous digest's `as_of`).
    pub since: DateTime<Utc>,
    /// When the vouchers were selected: the next digest lists what was first seen after it.
    pub as_of: DateTime<Utc>,
    pub selection: Selection,
}

/// A committed digest (tree `digests`): one per user and period, and its own outbox entry: the
/// email's delivery state lives in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRecord {
    pub v: u32,
    pub id: Uuid,
    pub user_id: Uuid,
    /// The period's local date (daily: the day; weekly: the configured weekday).
    pub local_date: NaiveDate,
    #[serde(with = "crate::domain::times::micros")]
    pub created_at: DateTime<Utc>,
    pub voucher_ids: Vec<Uuid>,
    pub more: u64,
    pub delivery: DeliveryState,
}

impl DigestRecord {
    pub const VERSION: u32 = 1;

    /// Its email as the outbox shows it.
    pub fn as_delivery(&self) -> Delivery {
        let payload = Payload::Digest {
            user_id: self.user_id,
            digest_id: self.id,
            local_date: self.local_date,
        };
        self.delivery
            .to_delivery(self.id, Channel::Email, payload, None, self.created_at)
    }

    /// The `Message-ID` of its email: the same for every attempt, so a resend after a crash in
    /// the middle of an SMTP exchange is recognisably the same mail.
    pub fn message_id(&self, host: &str) -> String {
        format!("<digest-{}@{host}>", self.id)
    }
}
