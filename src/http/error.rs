//! The one HTTP error type. Every failure, extractor errors included, leaves as
//! `application/problem+json` `{type, title, status, detail, code}` with a stable `code`.

use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::ValidationError;
use crate::domain::auth::Denied;
use crate::security::HashError;
use crate::store::StoreError;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine word: `validation_failed`, `unauthorized`, `invalid_credentials`,
    /// `forbidden`, `not_found`,
    /// `conflict`, `sold_out`, `limit_reached`, `campaign_not_active`, `code_not_redeemable`,
    /// `usage_limit_reached`, `customer_limit_reached`, `budget_exhausted`, `duplicate_code`,
    /// `purchase_required`, `order_expired`, `email_unverified`, `method_not_allowed`,
    /// `payload_too_large`, `unsupported_media_type`, `request_timeout`, `rate_limited`,
    /// `overloaded`, `internal_error`.
    pub code: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request cannot be read at all (malformed JSON, bad path or query): 400.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but invalid (wrong types, missing fields, broken rules): 422.
    #[error("{0}")]
    Invalid(String),
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// A sign-in with an unknown email or a wrong password (the same answer for both).
    #[error("email or password is wrong")]
    InvalidCredentials,
    #[error("your role does not allow this")]
    Forbidden,
    /// Allowed to the role, but not without something the request lacks (the password in use).
    #[error("{0}")]
    NotAllowed(String),
    #[error("no such resource")]
    NotFound,
    #[error("this path does not answer this method (see Allow)")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("every code of this campaign is taken")]
    SoldOut,
    #[error("{0}")]
    LimitReached(String),
    #[error("{0}")]
    CampaignNotActive(String),
    /// A code that does not apply to the order (409): `usage_limit_reached`,
    /// `customer_limit_reached` and `budget_exhausted` by their own word, any other reason as
    /// `code_not_redeemable` (the reason in the detail).
    #[error("{} (reason: {})", .0.describe(), .0.as_str())]
    Inapplicable(crate::domain::promotion::Reason),
    #[error("the body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    #[error("too many requests; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// An allowance of the caller's is used up (not a request rate): 429.
    #[error("{0}")]
    Throttled(String),
    /// A priced campaign's codes are bought, never claimed: 409.
    #[error("this campaign's codes are sold: place an order (POST /api/v1/orders) and pay it")]
    PurchaseRequired,
    /// The customer's email address is not confirmed yet: 403.
    #[error("the customer's email address is not confirmed yet: open the link sent to it")]
    EmailUnverified,
    /// One request names a code twice: 422.
    #[error("codes: `{0}` is listed more than once")]
    DuplicateCode(String),
    /// An unpaid order's deadline passed: 409.
    #[error("the order was not paid in time: its codes went back to the campaign")]
    OrderExpired,
    /// The body did not arrive in time: 408.
    #[error("the request body did not arrive within {0} s")]
    RequestTimeout(u64),
    #[error("the server is busy; retry shortly")]
    Overloaded,
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) | ApiError::Invalid(_) => "validation_failed",
            ApiError::Unauthorized => "unauthorized",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Forbidden | ApiError::NotAllowed(_) => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::SoldOut => "sold_out",
            ApiError::LimitReached(_) => "limit_reached",
            ApiError::CampaignNotActive(_) => "campaign_not_active",
            ApiError::Inapplicable(reason) => {
                use crate::domain::promotion::Reason;
                match reason {
                    Reason::UsageLimitReached
                    | Reason::CustomerLimitReached
                    | Reason::BudgetExhausted => reason.as_str(),
                    _ => "code_not_redeemable",
                }
            }
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::RateLimited { .. } | ApiError::Throttled(_) => "rate_limited",
            ApiError::PurchaseRequired => "purchase_required",
            ApiError::EmailUnverified => "email_unverified",
            ApiError::DuplicateCode(_) => "duplicate_code",
            ApiError::OrderExpired => "order_expired",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::Overloaded => "overloaded",
            ApiError::Internal(_) => "internal_error",
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        Problem {
            kind: format!("urn:voucherd:problem:{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            code: self.code().to_owned(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::NotAllowed(_) | ApiError::EmailUnverified => {
                StatusCode::FORBIDDEN
            }
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_)
            | ApiError::SoldOut
            | ApiError::LimitReached(_)
            | ApiError::Inapplicable(_)
            | ApiError::PurchaseRequired
            | ApiError::OrderExpired => StatusCode::CONFLICT,
            ApiError::CampaignNotActive(_) | ApiError::DuplicateCode(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } | ApiError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            tracing::error!(%cause, "internal error");
        }
        let mut res = HttpResponse::build(self.status_code());
        res.content_type("application/problem+json");
        match self {
            ApiError::Unauthorized => {
                res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            ApiError::Throttled(_) => {
                res.insert_header((header::RETRY_AFTER, "60"));
            }
            ApiError::RateLimited { retry_after } => {
                res.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            ApiError::Overloaded => {
                res.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        res.json(self.problem())
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::Invalid(e.to_string())
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Forbidden => ApiError::Forbidden,
            Denied::Hidden => ApiError::NotFound,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::Conflict(m.to_owned()),
            StoreError::NotFound => ApiError::NotFound,
            // A full writer queue, or a store that can no longer make writes durable (a failed
            // flush is fatal: the process restarts and recovers): retry shortly.
            StoreError::Overloaded | StoreError::Failed | StoreError::Flush(_) => {
                ApiError::Overloaded
            }
            e @ StoreError::LimitReached { .. } => ApiError::Conflict(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::actors::subscriptions::ManagerError> for ApiError {
    fn from(e: crate::actors::subscriptions::ManagerError) -> Self {
        match e {
            crate::actors::subscriptions::ManagerError::Store(e) => e.into(),
            crate::actors::subscriptions::ManagerError::Mailbox(_) => ApiError::Overloaded,
        }
    }
}

impl From<crate::service::Error> for ApiError {
    fn from(e: crate::service::Error) -> Self {
        use crate::service::Error;
        match e {
            Error::Invalid(e) => e.into(),
            Error::NotFound => ApiError::NotFound,
            Error::Forbidden => ApiError::Forbidden,
            Error::Conflict(m) => ApiError::Conflict(m),
            Error::SoldOut => ApiError::SoldOut,
            Error::LimitReached(m) => ApiError::LimitReached(m),
            Error::NotActive(m) => ApiError::CampaignNotActive(m),
            Error::Inapplicable(reason) => ApiError::Inapplicable(reason),
            Error::Overloaded => ApiError::Overloaded,
            Error::TooMany(why) => ApiError::Throttled(why),
            Error::PurchaseRequired => ApiError::PurchaseRequired,
            Error::EmailUnverified => ApiError::EmailUnverified,
            Error::DuplicateCode(code) => ApiError::DuplicateCode(code),
            Error::OrderExpired => ApiError::OrderExpired,
            Error::BadCredentials => ApiError::InvalidCredentials,
            Error::Busy => ApiError::Overloaded,
            Error::Store(e) => e.into(),
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(_: actix::MailboxError) -> Self {
        ApiError::Overloaded
    }
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => ApiError::Overloaded,
            e @ HashError::Failed(_) => ApiError::internal(e),
        }
    }
}

fn json_error(err: JsonPayloadError) -> ApiError {
    match err {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => ApiError::PayloadTooLarge { limit },
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(e) if e.is_data() => {
            ApiError::Invalid(format!("invalid body: {e}"))
        }
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!("malformed JSON: {e}")),
        JsonPayloadError::Payload(PayloadError::Overflow) => ApiError::PayloadTooLarge { limit: 0 },
        JsonPayloadError::Payload(p) if timed_out(&p).is_some() => {
            timed_out(&p).unwrap_or(ApiError::RequestTimeout(0))
        }
        other => ApiError::BadRequest(format!("unreadable body: {other}")),
    }
}

/// Extractor configurations routing every extractor failure through [`ApiError`].
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, _req: &HttpRequest| {
            match json_error(err) {
                ApiError::PayloadTooLarge { .. } => ApiError::PayloadTooLarge { limit },
                e => e,
            }
            .into()
        })
}

pub fn payload_config(limit: usize) -> web::PayloadConfig {
    web::PayloadConfig::new(limit)
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _| {
        ApiError::BadRequest(format!("invalid query: {err}")).into()
    })
}

/// A path that does not parse is a 400, unless it is a route of its own that does not answer this
/// method (`PATCH /users/me` reaches `/users/{id}`): then 405 with `Allow`.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, req: &HttpRequest| {
        let literal = req
            .app_data::<web::Data<super::methods::MethodTable>>()
            .and_then(|t| t.literal(req.path()).map(<[_]>::to_vec));
        match literal {
            Some(methods) if !methods.contains(req.method()) => {
                MethodNotAllowed { allow: methods }.into()
            }
            _ => ApiError::BadRequest(format!("invalid path: {err}")).into(),
        }
    })
}

/// 405 with the `Allow` header naming what the path answers.
#[derive(Debug)]
struct MethodNotAllowed {
    allow: Vec<actix_web::http::Method>,
}

impl std::fmt::Display for MethodNotAllowed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        ApiError::MethodNotAllowed.fmt(f)
    }
}

impl ResponseError for MethodNotAllowed {
    fn status_code(&self) -> StatusCode {
        StatusCode::METHOD_NOT_ALLOWED
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = ApiError::MethodNotAllowed.error_response();
        let allow: Vec<&str> = self.allow.iter().map(|m| m.as_str()).collect();
        if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
            res.headers_mut().insert(header::ALLOW, v);
        }
        res
    }
}

/// The answer for requests no route took: 405 with `Allow` when the path exists with other
/// methods, else 404.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    let allowed = req
        .app_data::<web::Data<super::methods::MethodTable>>()
        .map(|t| t.allowed(req.path()))
        .unwrap_or_default();
    if allowed.is_empty() {
        return ApiError::NotFound.error_response();
    }
    MethodNotAllowed { allow: allowed }.error_response()
}

/// Why a body stopped: it did not arrive within its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0} s")]
pub(crate) struct BodyTimedOut(pub(crate) u64);

/// 408 when a body read failed because its deadline passed.
pub fn timed_out(e: &actix_web::error::PayloadError) -> Option<ApiError> {
    match e {
        actix_web::error::PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            let secs = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<BodyTimedOut>())
                .map_or(0, |t| t.0);
            Some(ApiError::RequestTimeout(secs))
        }
        _ => None,
    }
}
