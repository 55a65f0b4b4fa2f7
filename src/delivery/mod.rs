//! Channel transports and message templates. The `DeliveryDispatcher` actor decides *when* to
//! send; this module knows *how*: email over SMTP (lettre on connections of our own, see
//! [`smtp`]) or into `.eml` files, rendered from minijinja templates; signed JSON POSTs to
//! configured [`webhook`] endpoints; text messages through an HTTP [`sms`] gateway; encrypted
//! Web Push notifications ([`push`]).

pub mod email;
pub mod endpoint;
pub mod push;
pub mod render;
pub mod sms;
pub mod smtp;
pub mod templates;
pub mod webhook;

/// Why one attempt failed: `permanent` failures are not retried (a bad address), the rest are.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub message: String,
    pub permanent: bool,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            permanent: true,
        }
    }
}

/// A message that does not render fails the same way every time: not retried.
impl From<templates::TemplateError> for SendError {
    fn from(e: templates::TemplateError) -> Self {
        SendError::permanent(e.to_string())
    }
}

/// A body that does not serialise fails the same way every time: not retried.
impl From<serde_json::Error> for SendError {
    fn from(e: serde_json::Error) -> Self {
        SendError::permanent(e.to_string())
    }
}

/// A store that did not answer may answer the next attempt.
impl From<crate::store::StoreError> for SendError {
    fn from(e: crate::store::StoreError) -> Self {
        SendError::transient(e.to_string())
    }
}
