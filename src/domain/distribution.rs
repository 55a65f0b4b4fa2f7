//! Distributions: a manager hands one code of a campaign to each of a list of customers (or to
//! each subscriber of a retailer or category), and each code goes out by one channel.
//!
//! The recipients are fixed when the distribution is created; the work then runs in batches, each
//! one writer command (the batch's claims, their messages, the progress), so a restart resumes
//! after the last batch written. A recipient at their `per_customer_limit`, or one for whom no
//! code is left, is skipped and counted: a distribution never exceeds a pool or a limit.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::delivery::Channel;
use super::digest::Target;

/// Whom a distribution was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The listed customers.
    Customers,
    /// Whoever followed this retailer or category when it was created.
    SubscribersOf(Target),
}

/// What was asked: fixed at creation (one key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distribution {
    pub v: u32,
    pub id: Uuid,
    pub campaign_id: Uuid,
    pub channel: Channel,
    pub webhook: Option<String>,
    pub audience: Audience,
    pub recipients: Vec<Uuid>,
    pub created_by: Uuid,
    #[serde(with = "crate::domain::times::micros")]
    pub created_at: DateTime<Utc>,
}

impl Distribution {
    pub const VERSION: u32 = 1;
    /// Recipients of one distribution at most.
    pub const MAX_RECIPIENTS: usize = 1_000_000;
}

/// How far it got (one key, rewritten with each batch).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// Recipients handled so far (the next batch starts here).
    pub done: u32,
    /// Codes handed out (each with its message in the outbox).
    pub assigned: u32,
    /// Recipients who already held `per_customer_limit` codes.
    pub skipped_limit_reached: u32,
    /// Recipients for whom no code was left.
    pub skipped_sold_out: u32,
    /// Recipients skipped because the campaign had ended (or not started) or they were erased.
    pub skipped_other: u32,
    /// Recipients with no phone number (SMS), no push subscription (push) or who opted out of
    /// marketing email (email), left out when it was accepted.
    pub skipped_unreachable: u32,
    #[serde(with = "crate::domain::times::micros_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<DateTime<Utc>>,
}

impl Progress {
    pub fn finished(&self) -> bool {
        self.finished_at.is_some()
    }
}

/// A distribution as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DistributionView {
    pub id: Uuid,
    pub campaign_id: Uuid,
    pub channel: Channel,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    pub audience: Audience,
    /// How many recipients it has (for SMS: those with a phone number).
    pub recipients: u32,
    /// `running` until every recipient was handled, then `completed`.
    pub status: DistributionStatus,
    /// How far it got (`done`, `assigned`, the skipped counts, `finished_at`).
    #[serde(flatten)]
    pub progress: Progress,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DistributionStatus {
    Running,
    Completed,
}

impl DistributionView {
    pub fn of(d: &Distribution, p: &Progress) -> Self {
        Self {
            id: d.id,
            campaign_id: d.campaign_id,
            channel: d.channel,
            webhook: d.webhook.clone(),
            audience: d.audience.clone(),
            recipients: u32::try_from(d.recipients.len()).unwrap_or(u32::MAX),
            status: if p.finished() {
                DistributionStatus::Completed
            } else {
                DistributionStatus::Running
            },
            progress: p.clone(),
            created_by: d.created_by,
            created_at: d.created_at,
        }
    }
}
