//! Async code requests: a customer asks a voucher-provider server for a code; the request is
//! stored `pending` at once, and the code comes back now, later by callback, or by polling. A
//! request gets at most one code, stored before it is delivered.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// How the code reaches the customer besides the request's own status (and its event stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestChannel {
    /// The request's status and its event stream only.
    Web,
    /// Also a text message to the request's phone number.
    Sms,
    /// Also a Web Push notification to the customer's push subscriptions.
    Push,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Pending,
    Fulfilled,
    Failed,
}

/// One request (tree `code_requests`, one key, rewritten as it moves on).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRequest {
    pub v: u32,
    pub id: Uuid,
    pub provider: String,
    pub product: String,
    pub customer: Uuid,
    /// Where an SMS goes (the customer's number unless the request gave one).
    pub phone: Option<String>,
    pub channel: RequestChannel,
    pub status: RequestStatus,
    pub code: Option<String>,
    pub error: Option<String>,
    /// The provider accepted it for later (a 202): it is polled rather than asked again.
    pub accepted: bool,
    #[serde(with = "crate::domain::times::micros")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::domain::times::micros")]
    pub updated_at: DateTime<Utc>,
    #[serde(with = "crate::domain::times::micros_opt")]
    pub fulfilled_at: Option<DateTime<Utc>>,
}

impl CodeRequest {
    pub const VERSION: u32 = 1;
    pub const MAX_PRODUCT_LEN: usize = 200;
    pub const MAX_CODE_LEN: usize = 200;
}

/// A request as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CodeRequestView {
    pub id: Uuid,
    pub provider: String,
    pub product: String,
    pub customer: Uuid,
    pub channel: RequestChannel,
    pub status: RequestStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fulfilled_at: Option<DateTime<Utc>>,
    /// What is happening, in words.
    pub message: String,
}

impl From<&CodeRequest> for CodeRequestView {
    fn from(r: &CodeRequest) -> Self {
        Self {
            id: r.id,
            provider: r.provider.clone(),
            product: r.product.clone(),
            customer: r.customer,
            channel: r.channel,
            status: r.status,
            code: r.code.clone(),
            error: r.error.clone(),
            created_at: r.created_at,
            fulfilled_at: r.fulfilled_at,
            message: match r.status {
                RequestStatus::Pending => "Your code is being processed.".into(),
                RequestStatus::Fulfilled => "Your code is ready.".into(),
                RequestStatus::Failed => "No code could be obtained.".into(),
            },
        }
    }
}
