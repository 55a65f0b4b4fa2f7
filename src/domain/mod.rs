//! Plain types and rules, no I/O: parse-don't-validate newtypes, users and roles, auth policy.
//! Everything here is unit- and property-testable without a store or a server.

pub mod auth;
pub mod delivery;
pub mod digest;
pub mod network;
pub mod notification;
pub mod schedule;
pub mod times;
pub mod user;
pub mod voucher;

/// A UUIDv7 carrying the instant `t` (from the injectable clock), so ids order like the times
/// they record.
pub fn v7_at(t: chrono::DateTime<chrono::Utc>) -> uuid::Uuid {
    let secs = u64::try_from(t.timestamp()).unwrap_or(0);
    uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        secs,
        t.timestamp_subsec_nanos(),
    ))
}

/// A rule broken by input: which field, and why. Shown to clients as 422 `validation_failed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Rejects blank strings, strings longer than `max` characters (as sent) or holding control
/// characters; returns the text trimmed.
pub fn bounded_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<String, ValidationError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}
