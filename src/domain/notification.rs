//! Admin alerts (`pool_low`, `campaign_ended`, `network_failing`, `delivery_failing`): stored when
//! raised (at most one per kind and subject an hour) and emailed to `[notify] admin_emails`
//! through the delivery dispatcher.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    PoolLow,
    CampaignEnded,
    NetworkFailing,
    DeliveryFailing,
    /// A provider server gave no code for a request in time (or refused it).
    CodeRequestFailed,
    /// A campaign's budget for the current period is 90 % used.
    BudgetLow,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    pub v: u32,
    pub id: Uuid,
    pub kind: NotificationKind,
    /// What it is about (a network name, a campaign id).
    pub subject: String,
    pub message: String,
    #[serde(with = "crate::domain::times::micros")]
    pub created_at: DateTime<Utc>,
    /// Set when the dispatcher has sent it to the admins.
    #[serde(default)]
    #[serde(with = "crate::domain::times::micros_opt")]
    pub sent_at: Option<DateTime<Utc>>,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PoolLow => "pool_low",
            Self::CampaignEnded => "campaign_ended",
            Self::NetworkFailing => "network_failing",
            Self::DeliveryFailing => "delivery_failing",
            Self::CodeRequestFailed => "code_request_failed",
            Self::BudgetLow => "budget_low",
        }
    }
}

impl Notification {
    pub const VERSION: u32 = 1;
    /// At most one notification per kind and subject within this long.
    pub const QUIET: chrono::TimeDelta = chrono::TimeDelta::hours(1);

    pub fn new(kind: NotificationKind, subject: &str, message: String, now: DateTime<Utc>) -> Self {
        Self {
            v: Self::VERSION,
            id: Uuid::now_v7(),
            kind,
            subject: subject.to_owned(),
            message,
            created_at: now,
            sent_at: None,
        }
    }
}
